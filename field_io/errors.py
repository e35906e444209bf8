"""Errors of the field I/O layer, below :class:`~intersections.errors.FieldIOError`.

::

    FieldIOError                    talking to a field controller failed
    ├── DeviceTimeout               no answer within timeout x (retries + 1)
    ├── DeviceUnreachable           no connection (refused, no route, TLS handshake failed)
    ├── ProtocolError               an answer that does not fit the protocol or the profile
    │   ├── DeviceException         a Modbus exception response / an SNMP error status
    │   └── ProfileMismatch         wrong profile version, wrong device, inventory disagrees
    ├── CommandRejected             the controller refused a command block (reject code)
    ├── NeverCommandError           greenwave itself refused to send a forbidden write
    └── ModbusTransportError        one Modbus/TCP transaction failed (field_io.modbus.transport):
        ├── ModbusTimeout, ModbusConnectionLost, ModbusMalformed, ModbusExceptionAnswer
        └── (the Modbus backend words each as its private _Fail, a FieldIOError, for the operator)

Every error carries ``where``: the controller (intersection id and address).
"""

from __future__ import annotations

from intersections.errors import DeviceTimeout, FieldIOError, ProtocolError

__all__ = [
    "FieldIOError",
    "DeviceTimeout",
    "DeviceUnreachable",
    "ProtocolError",
    "DeviceException",
    "ProfileMismatch",
    "CommandRejected",
    "NeverCommandError",
]


class DeviceUnreachable(FieldIOError):
    pass


class DeviceException(ProtocolError):
    """The device answered with an error code (``code``: Modbus exception or SNMP error status)."""

    def __init__(self, message: str, *, code: int, where: str | None = None) -> None:
        self.code = int(code)
        super().__init__(message, where=where)


class ProfileMismatch(ProtocolError):
    pass


class CommandRejected(FieldIOError):
    def __init__(self, message: str, *, reason: int, where: str | None = None) -> None:
        self.reason = int(reason)
        super().__init__(message, where=where)


class NeverCommandError(FieldIOError):
    """A write on the never-command list (``../shared/reference/field-io.md`` §3.5) was attempted."""
