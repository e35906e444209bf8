"""What every policy implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import OBSERVATION_FIELDS, Observation
from controller.estimate import Estimate
from intersections.network import Network

__all__ = ["PlanDesign", "Policy", "PolicyContext", "declared"]


@dataclass(frozen=True)
class PolicyContext:
    """Read-only view of the signal state the supervisor is serving."""

    time_s: float
    dt_s: float
    target: np.ndarray  # (N,) stage currently requested/served, -1 none
    state: np.ndarray  # (N, G) int8 states shown
    state_time_s: np.ndarray  # (N, G) seconds in the current state
    # (N, G) bool: crossings of the current stage that have shown their WALK and rest in
    # DON'T WALK until a later stage (SafetySupervisor.walked); None: none has.
    served: np.ndarray | None = None


@dataclass(frozen=True)
class PlanDesign:
    """Timing plans a policy plays, designed from the run's demand before the run starts.

    ``method`` names a :func:`controller.timing.compute_plans` method; ``coordinate``
    puts the plans on a common cycle with green-wave offsets
    (:func:`controller.timing.coordination.coordinate`). Whoever starts a run
    (the simulation runner) reads it and passes the plans as ``plans``.
    """

    method: str = "webster"
    coordinate: bool = False


class Policy(Protocol):
    """Everything the engine may ask of a control policy; the values below are the defaults.

    A policy subclasses this protocol explicitly (``class MyPolicy(Policy)``) and so
    inherits the defaults (PEP 544) and declares only where it differs:

    ``reads``
        the :data:`~controller.backend.OBSERVATION_FIELDS` the policy uses; a
        backend may leave the others unread (NaN).
    ``passive``
        the policy sends no signal commands: the backend's own programs run (the
        ``sumo`` baseline), while the engine still reads and measures.
    ``plans_from_demand``
        a :class:`PlanDesign` when the policy plays plans designed from the run's
        demand (``webster``), handed to its constructor as ``plans``.
    ``last_termination``
        (N,) why each intersection's last stage ended (Indiana codes 4/5/6: gap-out,
        max-out, force-off; 0 none), for the engine's high-resolution event log.
    ``detector_failed``
        (D,) detectors the policy has found failed; the engine reports changes.
    ``pending_events``
        ``(row, Indiana code, parameter)`` events raised since the last tick; the
        engine logs them and empties the list.
    ``tune_grid``
        ``{parameter: [values, ...]}`` that ``greenwave optimize --tune`` tries when the
        caller gives no ``--param`` (empty: nothing to tune by default).
    """

    name: str
    reads: frozenset[str] = OBSERVATION_FIELDS
    passive: bool = False
    plans_from_demand: PlanDesign | None = None
    last_termination: np.ndarray | None = None
    detector_failed: np.ndarray | None = None
    pending_events: Sequence[tuple[int, int, int]] = ()
    tune_grid: Mapping[str, Sequence[Any]] = MappingProxyType({})

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        """Bind to a network before the first tick (precompute arrays)."""

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        """Stage request per intersection, shape (N,), or HOLD (-1)."""


_DECLARED = (
    "reads", "passive", "plans_from_demand", "last_termination", "detector_failed", "pending_events", "tune_grid",
)  # fmt: skip


def declared(policy: object, member: str) -> Any:
    """``policy``'s value of a :class:`Policy` member, or the protocol's default if it declares none.

    The one place the engine and the runner ask a policy (or a registered policy
    factory) what it declares. Policies that subclass :class:`Policy` always have
    the member; the default covers policies written before the protocol declared
    it (a class with only ``reset``/``decide``, as in tests, or a factory function).
    """
    if member not in _DECLARED:
        raise AttributeError(f"{member!r} is not a declared member of the Policy protocol")
    return getattr(policy, member, getattr(Policy, member))
