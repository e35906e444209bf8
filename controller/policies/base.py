"""What every policy implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import Observation
from controller.estimate import Estimate
from intersections.network import Network

__all__ = ["Policy", "PolicyContext"]


@dataclass(frozen=True)
class PolicyContext:
    """Read-only view of the signal state the supervisor is serving."""

    time_s: float
    dt_s: float
    target: np.ndarray  # (N,) stage currently requested/served, -1 none
    state: np.ndarray  # (N, G) int8 states shown
    state_time_s: np.ndarray  # (N, G) seconds in the current state


class Policy(Protocol):
    """``reads`` (optional): the :data:`~controller.backend.OBSERVATION_FIELDS` the
    policy uses; a backend may leave the others unread (NaN). Absent means all."""

    name: str

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        """Bind to a network before the first tick (precompute arrays)."""

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        """Stage request per intersection, shape (N,), or HOLD (-1)."""
