"""Offline fixed-time signal plans, motorcycle-aware.

Front door::

    compute_plans(network, demand, method="webster", **params) -> list[TimingPlan]
    compute_timings(network, demand, method="webster", **params) -> list[IntersectionTiming]

The front door converts each signal group's demand (veh/h per vehicle class,
:class:`~controller.timing.demand.Demand`) to pcu/h with a PCU set
(:mod:`controller.timing.pcu`; ``pcu="hanoi"`` by default), groups the
lanes of each approach into lane groups and derives their saturation flow
(:mod:`controller.timing.groups`; ``saturation="hcm"``, ``"width"`` or
``"network"``), then calls the timing method by name from
:data:`METHODS`. Every plan a method returns is run through
:func:`intersections.plan.check_plan` here before it is handed out.

Methods (one module each): ``"webster"`` (:func:`controller.timing.webster.plan_webster`,
Webster 1958). Register more with :func:`register_method`; a method takes
``(intersections, lane_groups, **params)`` (``lane_groups[i]``: the
lane groups, :class:`~controller.timing.groups.LaneGroup`, of intersection ``i`` with flow
and saturation flow in pcu/h) and returns one
:class:`~controller.timing.result.IntersectionTiming` per intersection.

Front-door parameters (the rest go to the method): ``pcu``, ``saturation``,
``lane_width_m`` (3.6), ``base_saturation_pc_h_ln`` (1900),
``width_k_pcu_h_m`` (600), ``cbd`` (False), ``saturation_pcu_h`` (overrides,
``{(intersection_id, signal group id or approach edge id): pcu/h}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from controller.timing.demand import Demand, load_demand
from controller.timing.groups import LaneGroup, edge_index, lane_groups
from controller.timing.pcu import PCU_SETS, PcuSet, get_pcu_set
from controller.timing.result import IntersectionTiming
from controller.timing.webster import plan_webster
from intersections.errors import InputError
from intersections.model import Intersection
from intersections.network import Network
from intersections.plan import TimingPlan, check_plan

__all__ = [
    "METHODS",
    "TimingMethod",
    "register_method",
    "compute_plans",
    "compute_timings",
    "Demand",
    "load_demand",
    "IntersectionTiming",
    "LaneGroup",
    "PCU_SETS",
    "PcuSet",
]

TimingMethod = Callable[..., list[IntersectionTiming]]

_METHODS: dict[str, TimingMethod] = {}
#: Timing methods by name (read-only view; add with :func:`register_method`).
METHODS: Mapping[str, TimingMethod] = MappingProxyType(_METHODS)


def register_method(name: str, func: TimingMethod) -> None:
    """Add a timing method; a name can be registered once."""
    if not name or not isinstance(name, str):
        raise ValueError("a method needs a non-empty name")
    if name in _METHODS:
        raise ValueError(f"timing method {name!r} is already registered")
    _METHODS[name] = func


register_method("webster", plan_webster)


def compute_timings(
    network: Network | Iterable[Intersection],
    demand: Demand,
    method: str = "webster",
    *,
    pcu: PcuSet | str = "hanoi",
    saturation: str = "hcm",
    lane_width_m: float = 3.6,
    base_saturation_pc_h_ln: float = 1900.0,
    width_k_pcu_h_m: float = 600.0,
    cbd: bool = False,
    saturation_pcu_h: Mapping[tuple[str, str], float] | None = None,
    **params: Any,
) -> list[IntersectionTiming]:
    """Plans with their design figures (Y, L, v/c, delay, LOS), one per intersection, in network order."""
    try:
        func = METHODS[method]
    except KeyError:
        raise InputError(
            f"unknown timing method {method!r} (known: {', '.join(sorted(METHODS))})", where="method"
        ) from None
    pcu_set = get_pcu_set(pcu)
    inters: Sequence[Intersection] = tuple(network)
    graph = network.graph if isinstance(network, Network) else None
    demand.check(inters)
    overrides: dict[str, dict[str, float]] = {}
    for (iid, key), v in (saturation_pcu_h or {}).items():
        overrides.setdefault(iid, {})[key] = v
    known = {i.id for i in inters}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"saturation flow overrides name unknown intersections {unknown}", where="saturation")
    edge_attrs = edge_index(graph)
    groups = [
        lane_groups(
            i,
            graph,
            edge_attrs=edge_attrs,
            group_flow_pcu_h=demand.pcu_h(i, pcu_set),
            movement_flow_pcu_h=demand.movement_pcu_h(i, pcu_set),
            method=saturation,
            lane_width_m=lane_width_m,
            base_pc_h_ln=base_saturation_pc_h_ln,
            width_k_pcu_h_m=width_k_pcu_h_m,
            cbd=cbd,
            overrides=overrides.get(i.id),
        )
        for i in inters
    ]
    results = func(inters, groups, **params)
    if len(results) != len(inters):
        raise RuntimeError(f"timing method {method!r} returned {len(results)} plans for {len(inters)} intersections")
    for inter, r in zip(inters, results, strict=True):
        check_plan(r.plan, inter, source=f"method {method}")
    return list(results)


def compute_plans(
    network: Network | Iterable[Intersection], demand: Demand, method: str = "webster", **params: Any
) -> list[TimingPlan]:
    """One checked fixed-time plan per intersection (see :func:`compute_timings` for parameters)."""
    return [r.plan for r in compute_timings(network, demand, method, **params)]
