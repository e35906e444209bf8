"""The ``sumo`` controller: the backend's own signal programs, untouched.

A *passive* policy: the engine still reads every tick (so KPIs, queues and
events are measured the same way) but sends no signal commands, so SUMO runs
the network's own programs exactly as it would without greenwave — the
baseline every other controller is compared with. On a field controller it
means "leave the controller on its local plan".
"""

from __future__ import annotations

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import Observation
from controller.estimate import Estimate
from controller.policies import register_policy
from controller.policies.base import Policy, PolicyContext
from controller.safety import HOLD
from intersections.network import Network

__all__ = ["NativeProgramPolicy"]


@register_policy("sumo")
class NativeProgramPolicy(Policy):
    name = "sumo"
    passive = True
    reads: frozenset[str] = frozenset()

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        self.n = packed.n

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        return np.full(self.n, HOLD)
