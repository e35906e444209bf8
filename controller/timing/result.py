"""A timing plan with the HCM-style figures engineers check it by.

:func:`evaluate_plan` computes, per lane group (:class:`~controller.timing.groups.LaneGroup`),
the effective green, capacity ``c = s g / C``, degree of saturation
``X = v / c``, HCM uniform delay d1, control delay ``d1 + d2`` (PF = 1,
pretimed k = 0.5, T = 0.25 h), Webster's delay and LOS; per stage the
critical flow ratio and ``X_k = y_k C / g_k``; per intersection the critical
``X_c = Y C / (C - L)`` (HCM 2000 Eq. 16-9) and the flow-weighted control
delay with its LOS. These are *analytical* (HCM/Webster) figures, not
simulation results. Flows are in pcu/h, so delays are per pcu.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controller.timing.delay import hcm_control_delay_s, hcm_uniform_delay_s, level_of_service, webster_delay_s
from controller.timing.groups import LaneGroup, lane_group_effective_greens_s
from intersections.model import Intersection
from intersections.plan import TimingPlan

__all__ = ["IntersectionTiming", "evaluate_plan"]


@dataclass(frozen=True, eq=False)
class IntersectionTiming:
    """A plan for one intersection plus its design figures.

    Stage arrays follow ``plan.stages``; lane-group arrays follow ``lane_groups``.
    """

    plan: TimingPlan
    method: str
    flow_ratio_sum: float
    lost_time_s: float
    optimal_cycle_s: float
    critical_v_c: float
    stage_flow_ratio: np.ndarray
    stage_effective_green_s: np.ndarray
    stage_v_c: np.ndarray
    lane_groups: tuple[LaneGroup, ...]
    effective_green_s: np.ndarray
    capacity_pcu_h: np.ndarray
    v_c: np.ndarray
    uniform_delay_s: np.ndarray
    control_delay_s: np.ndarray
    webster_delay_s: np.ndarray
    lane_group_los: tuple[str, ...]
    delay_s: float
    los: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def intersection_id(self) -> str:
        return self.plan.intersection_id

    @property
    def cycle_s(self) -> float:
        return self.plan.cycle_s

    @property
    def max_v_c(self) -> float:
        loaded = [float(x) for x, lg in zip(self.v_c, self.lane_groups, strict=True) if lg.flow_pcu_h > 0]
        return max(loaded, default=0.0)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready report (non-finite numbers become ``null``)."""

        def num(v: float, nd: int = 3) -> float | None:
            v = float(v)
            return round(v, nd) if math.isfinite(v) else None

        return {
            "method": self.method,
            "cycle_s": num(self.cycle_s),
            "webster_optimal_cycle_s": num(self.optimal_cycle_s),
            "flow_ratio_sum_Y": num(self.flow_ratio_sum, 4),
            "lost_time_s": num(self.lost_time_s),
            "critical_v_c": num(self.critical_v_c, 4),
            "control_delay_s_per_pcu": num(self.delay_s, 1),
            "los": self.los,
            "stages": [
                {"stage": st.stage, "flow_ratio_y": num(y, 4), "effective_green_s": num(g), "v_c": num(x, 4)}
                for st, y, g, x in zip(
                    self.plan.stages, self.stage_flow_ratio, self.stage_effective_green_s, self.stage_v_c, strict=True
                )
            ],
            "lane_groups": [
                {
                    "approach": lg.approach,
                    "signal_groups": list(lg.groups),
                    "lanes": lg.lanes,
                    "flow_pcu_h": num(lg.flow_pcu_h, 1),
                    "saturation_pcu_h": num(lg.saturation_pcu_h, 1),
                    "flow_ratio_y": num(lg.flow_ratio, 4),
                    "left_share": num(lg.left_share, 3),
                    "right_share": num(lg.right_share, 3),
                    "effective_green_s": num(g),
                    "capacity_pcu_h": num(c, 1),
                    "v_c": num(x, 4),
                    "uniform_delay_d1_s": num(d1, 1),
                    "control_delay_s": num(d, 1),
                    "webster_delay_s": num(w, 1),
                    "los": los,
                }
                for lg, g, c, x, d1, d, w, los in zip(
                    self.lane_groups,
                    self.effective_green_s,
                    self.capacity_pcu_h,
                    self.v_c,
                    self.uniform_delay_s,
                    self.control_delay_s,
                    self.webster_delay_s,
                    self.lane_group_los,
                    strict=True,
                )
            ],
            "warnings": list(self.warnings),
        }


def evaluate_plan(
    plan: TimingPlan,
    inter: Intersection,
    lane_groups: Sequence[LaneGroup],
    *,
    method: str,
    stage_flow_ratio: np.ndarray,
    lost_time_s: float,
    optimal_cycle_s: float,
    startup_lost_s: float = 2.0,
    green_extension_s: float = 2.0,
    warnings: tuple[str, ...] = (),
) -> IntersectionTiming:
    """Figures for ``plan`` with the demand carried by ``lane_groups`` (see the module docstring)."""
    lgs = tuple(lane_groups)
    q = np.array([lg.flow_pcu_h for lg in lgs], dtype=float)
    s = np.array([lg.saturation_pcu_h for lg in lgs], dtype=float)
    c_s = float(plan.cycle_s)
    g = lane_group_effective_greens_s(
        plan, inter, lgs, startup_lost_s=startup_lost_s, green_extension_s=green_extension_s
    )
    cap = s * g / c_s if c_s > 0 else np.zeros_like(s)
    has_flow = q > 0
    x = np.divide(q, cap, out=np.where(has_flow, np.inf, 0.0), where=cap > 0)
    nan = np.full_like(q, np.nan)
    d1 = np.where(has_flow, hcm_uniform_delay_s(c_s, g, x), nan)
    dc = np.where(has_flow, hcm_control_delay_s(c_s, g, x, cap), nan)
    wd = np.where(has_flow, webster_delay_s(q, s, g, c_s), nan)
    letters = level_of_service(np.nan_to_num(dc, nan=0.0), x)
    los = tuple(str(v) if f else "-" for v, f in zip(letters, has_flow, strict=True))
    if has_flow.any():
        loaded = dc[has_flow]
        delay = float(np.sum(q[has_flow] * loaded) / np.sum(q[has_flow])) if np.isfinite(loaded).all() else math.inf
        x_max = float(x[has_flow].max())
    else:
        delay, x_max = 0.0, 0.0
    inter_los = str(level_of_service(np.array([delay]), np.array([x_max]))[0])
    y_stage = np.asarray(stage_flow_ratio, dtype=float)
    g_stage = plan.greens_s + (green_extension_s - startup_lost_s)
    x_stage = np.divide(y_stage * c_s, g_stage, out=np.zeros_like(y_stage), where=g_stage > 0)
    big_y = float(y_stage.sum())
    x_c = big_y * c_s / (c_s - lost_time_s) if c_s > lost_time_s else math.inf
    return IntersectionTiming(
        plan=plan,
        method=method,
        flow_ratio_sum=big_y,
        lost_time_s=float(lost_time_s),
        optimal_cycle_s=float(optimal_cycle_s),
        critical_v_c=x_c,
        stage_flow_ratio=y_stage,
        stage_effective_green_s=g_stage,
        stage_v_c=x_stage,
        lane_groups=lgs,
        effective_green_s=g,
        capacity_pcu_h=cap,
        v_c=x,
        uniform_delay_s=d1,
        control_delay_s=dc,
        webster_delay_s=wd,
        lane_group_los=los,
        delay_s=delay,
        los=inter_los,
        warnings=tuple(warnings),
    )
