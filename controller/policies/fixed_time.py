"""Fixed-time control: play each intersection's timing plan.

Stage ``k`` is requested from the end of stage ``k-1``'s green to the end of
its own green; the supervisor fills the intergreen between (yellow, all-red),
so the displayed sequence is the plan's. Position in cycle is
``(t - offset) mod cycle``. Vectorised: one ``searchsorted``-like count per
tick over an ``(N, K)`` array of green end times.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import Observation
from controller.estimate import Estimate
from controller.policies import register_policy
from controller.policies.base import Policy, PolicyContext
from intersections.errors import PlanError
from intersections.network import Network
from intersections.plan import TimingPlan, check_plan

__all__ = ["FixedTimePolicy", "plan_arrays"]


def plan_arrays(
    network: Network, plans: Mapping[str, TimingPlan]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(cycle_s (N,), offset_s (N,), green_end_s (N, K), stage_index (N, K))``.

    Every plan is checked against its intersection first (``check_plan``);
    plan stages must be stages of the intersection (by id or by group set).
    Padding green ends are +inf so they are never passed.
    """
    n = len(network)
    k_max = max((len(p.stages) for p in plans.values()), default=1)
    cycle = np.ones(n)
    offset = np.zeros(n)
    ends = np.full((n, k_max), np.inf)
    idx = np.full((n, k_max), -1, dtype=np.int64)
    for r, inter in enumerate(network.intersections):
        plan = plans.get(inter.id)
        if plan is None:
            raise PlanError([f"no timing plan for intersection {inter.id}"], where=f"intersection {inter.id}")
        check_plan(plan, inter)
        by_groups = {s.groups: k for k, s in enumerate(inter.stages)}
        by_id = {s.id: k for k, s in enumerate(inter.stages)}
        starts = plan.stage_starts_s()
        for k, st in enumerate(plan.stages):
            si = by_groups.get(st.groups) if st.groups else by_id.get(st.stage)
            if si is None:
                raise PlanError(
                    [f"stages[{k}]: groups {sorted(st.groups)} are not a stage of the intersection"],
                    where=f"intersection {inter.id}",
                )
            idx[r, k] = si
            ends[r, k] = starts[k] + st.green_s
        cycle[r] = plan.cycle_s
        offset[r] = plan.offset_s
    return cycle, offset, ends, idx


@register_policy("fixed")
class FixedTimePolicy(Policy):
    name = "fixed"
    reads: frozenset[str] = frozenset()  # runs its plan whatever the detectors say

    def __init__(self, plans: Mapping[str, TimingPlan] | None = None) -> None:
        self.plans = dict(plans or {})

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        self.cycle_s, self.offset_s, self.green_end_s, self.stage_index = plan_arrays(network, self.plans)
        self.n_stages = (self.stage_index >= 0).sum(axis=1)
        # Coordination pattern in force from the first tick: Indiana events 131 (pattern),
        # 132 (cycle length, s) and 133 (offset, s), logged by the engine's hi-res recorder.
        self.pending_events: list[tuple[int, int, int]] = []
        for r in range(len(self.cycle_s)):
            self.pending_events += [
                (r, 131, 1),
                (r, 132, round(float(self.cycle_s[r]))),
                (r, 133, round(float(self.offset_s[r]))),
            ]

    def requests_at(self, time_s: float) -> np.ndarray:
        pos = np.mod(time_s - self.offset_s, self.cycle_s)
        k = (self.green_end_s <= pos[:, None]).sum(axis=1) % self.n_stages
        result: np.ndarray = self.stage_index[np.arange(len(k)), k]
        return result

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        return self.requests_at(ctx.time_s)
