"""The timing each intersection actually runs, measured from the stage the engine serves.

One job of the control centre, apart from the engine runner that feeds it: per intersection,
the last complete cycle, its splits (green + intergreen of each stage) and its offset, compared
with the running plan's. A cycle starts when the first stage of the running plan (stage 0 when
adaptive) is served again; its start, taken modulo the plan's cycle, is the actual offset (the
plan's convention: stage 0 starts at ``offset_s`` on the controller clock's cycle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from api.server.control import OverridePolicy
from intersections.network import Network

__all__ = ["ActualTiming", "COORDINATED_WITHIN_S"]

#: How far the actual offset may be from the plan's and still count as coordinated: about two
#: headways, what a platoon tolerates.
COORDINATED_WITHIN_S = 5.0


class ActualTiming:
    """Actual cycle, splits and offset of ``n`` intersections, one row each."""

    def __init__(self, n: int) -> None:
        self.prev_target = np.full(n, -1, np.int64)
        self.stage_start = np.full(n, np.nan)
        self.cycle_start = np.full(n, np.nan)
        self.cycle_s = np.full(n, np.nan)
        self.offset_s = np.full(n, np.nan)
        self.splits: list[dict[str, float]] = [{} for _ in range(n)]
        self.current: list[dict[str, float]] = [{} for _ in range(n)]

    def restart(self, r: int) -> None:
        """A new control on row ``r``: its cycles are measured afresh."""
        self.cycle_start[r] = self.cycle_s[r] = self.offset_s[r] = np.nan
        self.splits[r], self.current[r] = {}, {}

    def track(self, target: np.ndarray, t: float, network: Network, policy: OverridePolicy) -> None:
        """Note the stages served at time ``t`` (``target``: one stage index per row)."""
        target = np.asarray(target, np.int64)
        changed = np.flatnonzero(target != self.prev_target)
        for r in changed.tolist():
            inter = network.intersections[r]
            prev = int(self.prev_target[r])
            if prev >= 0 and np.isfinite(self.stage_start[r]) and prev < len(inter.stages):
                self.current[r][inter.stages[prev].id] = round(t - self.stage_start[r], 1)
            new = int(target[r])
            self.prev_target[r] = new
            self.stage_start[r] = t
            plan = policy.fixed_plan(r)
            first = int(policy.stage_index[r, 0]) if plan is not None else 0
            if new == first:
                if np.isfinite(self.cycle_start[r]):
                    self.cycle_s[r] = t - self.cycle_start[r]
                    self.splits[r] = self.current[r]
                self.current[r] = {}
                self.cycle_start[r] = t
                self.offset_s[r] = (t % plan.cycle_s) if plan is not None else np.nan

    def of(self, r: int, policy: OverridePolicy) -> dict[str, Any]:
        """Actual timing of row ``r``'s last complete cycle against the running plan, and coordination status.

        ``coordination``: ``coordinated`` when a fixed plan runs and the actual offset is within
        :data:`COORDINATED_WITHIN_S` of the plan's, ``transition`` when it is further off (the
        plan just changed, a hold or a preemption pushed it), ``free`` when no plan runs.
        """
        plan = policy.fixed_plan(r)
        cyc = self.cycle_s[r]
        out: dict[str, Any] = {
            "cycle_s": None if not np.isfinite(cyc) else round(float(cyc), 1),
            "splits_s": self.splits[r],
            "coordination": "free",
        }
        if plan is None:
            return out  # no plan: nothing to compare with (offset, plan, offset_error_s absent)
        out.update(offset_s=None, offset_error_s=None)
        out["plan"] = {
            "cycle_s": plan.cycle_s,
            "offset_s": plan.offset_s,
            "splits_s": {st.stage: round(st.green_s + st.intergreen_s, 1) for st in plan.stages},
        }
        off = self.offset_s[r]
        if np.isfinite(off):
            c = plan.cycle_s
            err = (off - plan.offset_s + c / 2) % c - c / 2
            out["offset_s"] = round(float(off), 1)
            out["offset_error_s"] = round(float(err), 1)
            out["coordination"] = "coordinated" if abs(err) <= COORDINATED_WITHIN_S else "transition"
        else:
            out["coordination"] = "transition"
        return out
