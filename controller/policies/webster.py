"""The ``webster`` controller: fixed time, re-optimised from the demand (Webster 1958).

Plays the plans :func:`controller.timing.compute_plans` computes from the
run's demand (the simulation runner passes them as ``plans``), so it is the
textbook engineer's baseline: a good fixed-time plan for this demand, not the
network's stale program.
"""

from __future__ import annotations

from controller.policies import register_policy
from controller.policies.base import PlanDesign
from controller.policies.fixed_time import FixedTimePolicy

__all__ = ["WebsterPolicy"]


@register_policy("webster")
class WebsterPolicy(FixedTimePolicy):
    name = "webster"
    plans_from_demand = PlanDesign("webster")


@register_policy("webster-coordinated")
class CoordinatedWebsterPolicy(FixedTimePolicy):
    """Webster plans on a common cycle with offsets optimised for green waves
    (:func:`controller.timing.coordination.coordinate`)."""

    name = "webster-coordinated"
    plans_from_demand = PlanDesign("webster", coordinate=True)
