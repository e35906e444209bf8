"""Fallback plans for emulated controllers."""

from __future__ import annotations

from field_io.commands import quantize_plan
from intersections.model import Intersection
from intersections.plan import PlanStage, TimingPlan, check_plan

__all__ = ["default_fallback_plan", "DEFAULT_STAGE_GREEN_S"]

#: Green of each stage in the built-in fallback plan, unless a group's minimum green needs more.
DEFAULT_STAGE_GREEN_S = 15.0


def default_fallback_plan(inter: Intersection, green_s: float = DEFAULT_STAGE_GREEN_S) -> TimingPlan:
    """Every stage in inventory order for ``green_s`` (or its longest minimum green / WALK), then its clearance.

    The transition after each stage is the intersection's required
    clearance (:meth:`Intersection.transition_s`), rounded up to whole seconds
    (so that both protocols carry it exactly); the plan is checked with
    :func:`check_plan` before it is returned. A conservative plan for a
    controller that has no agency-approved time-of-day plan yet: commissioning
    replaces it (``greenwave commission --plan``).
    """
    stages = inter.stages
    out = []
    for k, st in enumerate(stages):
        need = max(inter.group(g).required_green_s for g in st.groups)
        nxt = stages[(k + 1) % len(stages)]
        ig = inter.transition_s(st.id, nxt.id) if len(stages) > 1 else 0.0
        out.append(PlanStage(st.id, max(green_s, need), ig))
    cycle = sum(s.green_s + s.intergreen_s for s in out)
    plan = quantize_plan(TimingPlan(inter.id, cycle, 0.0, tuple(out), name="fallback"), 1.0)
    return check_plan(plan, inter, source="default fallback plan")
