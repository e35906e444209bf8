"""The one exception tree of greenwave.

::

    GreenwaveError                 base of everything greenwave raises on purpose
    ├── InputError                 a file or value supplied by a user is malformed
    │   ├── NetworkFileError       a SUMO .net.xml / route / cfg file cannot be used
    │   ├── InventoryError         an intersection inventory (TOML/YAML) is malformed
    │   └── DemandError            a demand file (turning counts, routes) is malformed
    ├── PlanError                  a timing plan fails check_plan (carries every problem)
    ├── SafetyViolation            the supervisor saw an unsafe signal state
    ├── SimulationError            SUMO failed to start or died
    ├── AuthError                  an account operation refused (api.server.auth)
    │   └── PasswordPolicyError    a password the policy rejects
    ├── EmulatorStopped            the emulator's tick loop was asked to stop (field_io.emulator.core)
    └── FieldIOError               talking to a field controller failed (the rest: field_io.errors)
        ├── DeviceTimeout
        └── ProtocolError
            └── SnmpError          the emulated controller's agent refuses a SET (field_io.ntcip.agent)

Every error carries ``where`` (file, intersection or device id and field) so the
command line can print one line that says what and where, without a traceback.
It lives in ``intersections/`` because that package depends on nothing of ours;
the other packages re-export it through ``intersections``.
"""

from __future__ import annotations

__all__ = [
    "GreenwaveError",
    "InputError",
    "NetworkFileError",
    "InventoryError",
    "DemandError",
    "PlanError",
    "SafetyViolation",
    "SimulationError",
    "FieldIOError",
    "DeviceTimeout",
    "ProtocolError",
]


class GreenwaveError(Exception):
    """Base class; ``where`` names the file / intersection / field at fault."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class InputError(GreenwaveError):
    pass


class NetworkFileError(InputError):
    pass


class InventoryError(InputError):
    pass


class DemandError(InputError):
    pass


class PlanError(GreenwaveError):
    """A plan that fails :func:`intersections.plan.check_plan`.

    ``problems`` lists every problem found, not only the first, so an engineer
    fixes a plan in one round trip.
    """

    def __init__(self, problems: list[str], *, where: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid plan", where=where)


class SafetyViolation(GreenwaveError):
    pass


class SimulationError(GreenwaveError):
    pass


class FieldIOError(GreenwaveError):
    pass


class DeviceTimeout(FieldIOError):
    pass


class ProtocolError(FieldIOError):
    pass
