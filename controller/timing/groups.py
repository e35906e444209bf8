"""Lane groups: where flow meets saturation flow.

A signal group is the wrong unit for flow ratios: SUMO (and many controllers)
drive opposite approaches from one group, and several groups can share one
lane (a through-right group and a permissive-left group on a single-lane
approach). Webster's and the HCM's critical ratio is per **lane group**: the
lanes of one approach that discharge together. :func:`lane_groups` builds
them per intersection:

1. one unit per (vehicle signal group, incoming edge) with the lanes its
   movements list;
2. units on the same edge are merged when they share a lane, or when either
   lists no lanes (unknown lanes: assumed shared, the safe side);
3. a lane group's flow (pcu/h) is the demand of its movements (movement
   detail from :class:`~controller.timing.demand.Demand`; a group total
   without detail is spread over the group's approaches pro rata lanes), with
   left- and right-turn proportions from the movements' turn codes;
4. it is served by the stages in which all its signal groups are green (a
   shared lane discharges only then), or, if there is no such stage, by any of
   their stages;
5. saturation flow (pcu/h), ``method``:

   ``"hcm"`` (default)
       ``s = s0 · N · f_w · f_a · f_LU · f_LT · f_RT``
       (:func:`~controller.timing.saturation.saturation_flow_pc_h`): ``N``
       lanes, ``f_w`` from ``lane_width_m``, ``f_a`` = 0.90 with ``cbd``,
       ``f_LU`` the HCM 2000 Exhibit 10-23 default for N lanes, ``f_LT`` =
       0.95 for an exclusive (left-turns-only) lane group else
       ``1 / (1 + 0.05 P_LT)``, ``f_RT`` = 0.85 exclusive else ``1 - 0.15
       P_RT`` (``1 - 0.135 P_RT`` for a single-lane group). These are the
       *protected* left-turn factors; permitted left turns across opposing
       flow get no extra reduction (the HCM opposed-flow procedure is not
       implemented). ``f_HV`` stays 1: flows are already in pcu.
   ``"width"``
       ``S = k · N · lane_width_m`` (:func:`~controller.timing.saturation.width_saturation_flow_pcu_h`,
       IHCM k = 600 pcu/h/m) for motorcycle-dominated approaches where lanes
       are not kept; no turning factors.
   ``"network"``
       the road graph's ``saturation_flow_pcu_h`` of the approach edge pro rata
       its lanes (inventory data wins).

   ``overrides`` (pcu/h) replace the result for lane groups containing a
   given signal group id, or on a given approach edge id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike

from controller.timing.saturation import (
    BASE_SATURATION_FLOW_PC_H_LN,
    IHCM_WIDTH_SATURATION_PCU_H_M,
    area_type_factor,
    default_lane_utilization_factor,
    lane_width_factor,
    saturation_flow_pc_h,
    width_saturation_flow_pcu_h,
)
from intersections.errors import InputError
from intersections.model import GroupKind, Intersection, Movement
from intersections.plan import TimingPlan

__all__ = [
    "SATURATION_METHODS",
    "LaneGroup",
    "lane_groups",
    "edge_index",
    "stage_sets",
    "effective_green_s",
    "group_effective_greens_s",
    "lane_group_effective_greens_s",
]

SATURATION_METHODS = ("hcm", "width", "network")
_LEFT = frozenset("lLtT")
_RIGHT = frozenset("rR")


@dataclass(frozen=True)
class LaneGroup:
    """Lanes of one approach that discharge together (HCM lane group).

    ``stages`` are indices into ``Intersection.stages``; flows and saturation
    flow in pcu/h; ``left_share``/``right_share`` are turning proportions of
    the flow (of the movements when there is no flow).
    """

    approach: str
    groups: tuple[str, ...]
    lanes: int
    stages: frozenset[int]
    flow_pcu_h: float
    left_share: float
    right_share: float
    exclusive_left: bool
    exclusive_right: bool
    saturation_pcu_h: float

    @property
    def id(self) -> str:
        return f"{self.approach}:{'+'.join(self.groups)}"

    @property
    def flow_ratio(self) -> float:
        """``y = q / s`` (0 without flow; ``inf`` with flow but no saturation flow)."""
        if self.flow_pcu_h <= 0:
            return 0.0
        return self.flow_pcu_h / self.saturation_pcu_h if self.saturation_pcu_h > 0 else float("inf")


def edge_index(graph: nx.DiGraph[str] | None) -> dict[str, Mapping[str, Any]]:
    """Road-graph edge attributes by edge ``id``."""
    if graph is None:
        return {}
    return {str(d["id"]): d for _, _, d in graph.edges(data=True) if "id" in d}


def stage_sets(inter: Intersection) -> list[frozenset[int]]:
    """Per signal group, the indices of the stages in which it is green."""
    mask = inter.stage_mask()
    return [frozenset(int(k) for k in np.flatnonzero(mask[:, gi])) for gi in range(len(inter.groups))]


class _Units:
    def __init__(self) -> None:
        self.parent: dict[tuple[int, str], tuple[int, str]] = {}

    def find(self, a: tuple[int, str]) -> tuple[int, str]:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: tuple[int, str], b: tuple[int, str]) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def lane_groups(
    inter: Intersection,
    graph: nx.DiGraph[str] | None = None,
    *,
    group_flow_pcu_h: ArrayLike | None = None,
    movement_flow_pcu_h: Mapping[tuple[str, str], float] | None = None,
    method: str = "hcm",
    lane_width_m: float = 3.6,
    base_pc_h_ln: float = BASE_SATURATION_FLOW_PC_H_LN,
    width_k_pcu_h_m: float = IHCM_WIDTH_SATURATION_PCU_H_M,
    cbd: bool = False,
    overrides: Mapping[str, float] | None = None,
    edge_attrs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[LaneGroup]:
    """The lane groups of ``inter`` with their flow and saturation flow (see the module docstring).

    ``group_flow_pcu_h`` is per signal group (``inter.groups`` order, the
    authoritative totals); ``movement_flow_pcu_h`` the part of it known per
    ``(from_edge, to_edge)``. ``edge_attrs`` is ``edge_index(graph)`` when the
    caller times many intersections of one graph (indexing a city's graph once
    per intersection is quadratic).
    """
    if method not in SATURATION_METHODS:
        raise InputError(
            f"unknown saturation method {method!r} (known: {', '.join(SATURATION_METHODS)})", where="saturation"
        )
    where = f"intersection {inter.id}"
    edges = edge_index(graph) if edge_attrs is None else edge_attrs
    n_groups = len(inter.groups)
    q_group = np.zeros(n_groups) if group_flow_pcu_h is None else np.asarray(group_flow_pcu_h, dtype=float)
    if q_group.shape != (n_groups,):
        raise ValueError(f"{where}: group_flow_pcu_h needs one value per signal group")
    lanes, moves, units = _approach_units(inter)

    def unit_lanes(key: _Key) -> int:
        if lanes[key]:
            return len(lanes[key])
        return max(int(edges[key[1]].get("lanes", 1)), 1) if key[1] in edges else 1

    flows = _unit_flows(inter, where, lanes, moves, q_group, movement_flow_pcu_h, unit_lanes)
    rows = _lane_group_rows(inter, lanes, moves, units, flows, unit_lanes)
    if method == "hcm":
        sat = _hcm_saturation(rows, lane_width_m, base_pc_h_ln, cbd)
    elif method == "width":
        n_l = np.array([r["lanes"] for r in rows], dtype=float)
        sat = width_saturation_flow_pcu_h(n_l * lane_width_m, width_k_pcu_h_m)
    else:
        sat = _graph_saturation(rows, edges, where)
    sat = np.asarray(sat, dtype=float).reshape(len(rows))
    _apply_overrides(rows, sat, overrides or {}, where)
    return [LaneGroup(**r, saturation_pcu_h=float(s)) for r, s in zip(rows, sat, strict=True)]


_Key = tuple[int, str]  # (signal group row, approach edge): one unit of a lane group


def _approach_units(inter: Intersection) -> tuple[dict[_Key, set[str]], dict[_Key, list[Movement]], _Units]:
    """Step 1: units (group, approach edge) with their lanes and movements, joined where they share
    a lane (or one of them lists none) on the same approach."""
    lanes: dict[_Key, set[str]] = {}
    moves: dict[_Key, list[Movement]] = {}
    for gi, g in enumerate(inter.groups):
        if g.kind is GroupKind.PEDESTRIAN:
            continue
        for mv in g.movements:
            if mv.turn == "p":
                continue
            key = (gi, mv.from_edge)
            lanes.setdefault(key, set()).update(mv.lanes)
            moves.setdefault(key, []).append(mv)
    units = _Units()
    for key in lanes:
        units.parent[key] = key
    by_edge: dict[str, list[_Key]] = {}
    for key in lanes:
        by_edge.setdefault(key[1], []).append(key)
    for keys in by_edge.values():
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                if not lanes[a] or not lanes[b] or lanes[a] & lanes[b]:
                    units.union(a, b)
    return lanes, moves, units


@dataclass
class _Flows:
    total: dict[_Key, float]
    left: dict[_Key, float]
    right: dict[_Key, float]


def _unit_flows(
    inter: Intersection,
    where: str,
    lanes: dict[_Key, set[str]],
    moves: dict[_Key, list[Movement]],
    q_group: np.ndarray,
    movement_flow_pcu_h: Mapping[tuple[str, str], float] | None,
    unit_lanes: Callable[[_Key], int],
) -> _Flows:
    """Step 2: flow per unit (total, left, right): the movements' known flows shared by lanes,
    then the rest of each group's total shared over its units by lanes."""
    flow: dict[_Key, float] = dict.fromkeys(lanes, 0.0)
    left: dict[_Key, float] = dict.fromkeys(lanes, 0.0)
    right: dict[_Key, float] = dict.fromkeys(lanes, 0.0)
    n_groups = len(inter.groups)
    known = np.zeros(n_groups)
    if movement_flow_pcu_h:
        shares: dict[tuple[str, str], list[tuple[int, float, str]]] = {}
        for key, mvs in moves.items():
            for mv in mvs:
                w = float(max(len(mv.lanes), 1))
                shares.setdefault((mv.from_edge, mv.to_edge), []).append((key[0], w, mv.turn))
        for pair, q in movement_flow_pcu_h.items():
            targets = shares.get(pair)
            if not targets:
                raise InputError(f"no signal group serves the movement {pair[0]} -> {pair[1]}", where=where)
            tot = sum(w for _, w, _ in targets)
            for gi, w, turn in targets:
                part = float(q) * w / tot
                key = (gi, pair[0])
                flow[key] += part
                known[gi] += part
                if turn in _LEFT:
                    left[key] += part
                elif turn in _RIGHT:
                    right[key] += part
    for gi in range(n_groups):
        rest = float(q_group[gi]) - known[gi]
        if rest <= 1e-9 * max(1.0, float(q_group[gi])):
            continue
        keys = [k for k in lanes if k[0] == gi]
        if not keys:
            raise InputError(f"signal group {inter.groups[gi].id} has demand but no vehicle movement", where=where)
        weights = [unit_lanes(k) for k in keys]
        for k, w in zip(keys, weights, strict=True):
            flow[k] += rest * w / sum(weights)
    return _Flows(flow, left, right)


def _lane_group_rows(
    inter: Intersection,
    lanes: dict[_Key, set[str]],
    moves: dict[_Key, list[Movement]],
    units: _Units,
    flows: _Flows,
    unit_lanes: Callable[[_Key], int],
) -> list[dict[str, Any]]:
    """Step 3: one lane group per joined component: its lanes, stages, flow and turning shares."""
    members: dict[_Key, list[_Key]] = {}
    for key in sorted(lanes, key=lambda k: (k[1], k[0])):
        members.setdefault(units.find(key), []).append(key)
    served = stage_sets(inter)
    rows: list[dict[str, Any]] = []
    for keys in members.values():
        approach = keys[0][1]
        gis = sorted({k[0] for k in keys})
        listed = set().union(*(lanes[k] for k in keys))
        n_lanes = len(listed) if listed else max(unit_lanes(k) for k in keys)
        common = frozenset.intersection(*(served[gi] for gi in gis))
        stages = common if common else frozenset.union(*(served[gi] for gi in gis))
        q = sum(flows.total[k] for k in keys)
        turns = [mv.turn for k in keys for mv in moves[k]]
        if q > 0:
            p_lt, p_rt = sum(flows.left[k] for k in keys) / q, sum(flows.right[k] for k in keys) / q
        else:
            p_lt = sum(t in _LEFT for t in turns) / len(turns)
            p_rt = sum(t in _RIGHT for t in turns) / len(turns)
        rows.append(
            {
                "approach": approach,
                "groups": tuple(inter.groups[gi].id for gi in gis),
                "lanes": int(n_lanes),
                "stages": stages,
                "flow_pcu_h": float(q),
                "left_share": float(p_lt),
                "right_share": float(p_rt),
                "exclusive_left": all(t in _LEFT for t in turns),
                "exclusive_right": all(t in _RIGHT for t in turns),
            }
        )
    return rows


def _hcm_saturation(rows: list[dict[str, Any]], lane_width_m: float, base_pc_h_ln: float, cbd: bool) -> np.ndarray:
    """Step 4, ``hcm``: the HCM adjusted saturation flow (module docstring) with the turn and
    lane-utilisation factors, vectorised over the lane groups."""
    n_l = np.array([r["lanes"] for r in rows], dtype=float)
    left_share = np.array([r["left_share"] for r in rows])
    right_share = np.array([r["right_share"] for r in rows])
    ex_l = np.array([r["exclusive_left"] for r in rows], dtype=bool)
    ex_r = np.array([r["exclusive_right"] for r in rows], dtype=bool)
    f_lt = np.where(ex_l, 0.95, 1.0 / (1.0 + 0.05 * left_share))
    f_rt = np.where(ex_r, 0.85, 1.0 - np.where(n_l == 1, 0.135, 0.15) * right_share)
    movement = np.where(ex_l, "left", np.where(ex_r, "right", "through"))
    f_lu = np.array(
        [default_lane_utilization_factor(n, str(m)) for n, m in zip(n_l, movement, strict=True)], dtype=float
    ).reshape(n_l.shape)
    return np.asarray(
        saturation_flow_pc_h(
            n_l,
            base_pc_h_ln=base_pc_h_ln,
            f_w=lane_width_factor(lane_width_m),
            f_a=area_type_factor(cbd),
            f_lu=f_lu,
            f_lt=f_lt,
            f_rt=f_rt,
        )
    )


def _graph_saturation(rows: list[dict[str, Any]], edges: Mapping[str, Mapping[str, Any]], where: str) -> np.ndarray:
    """Step 4, ``graph``: the approach edge's own saturation flow, shared by lanes."""
    sat = np.zeros(len(rows))
    for i, r in enumerate(rows):
        d = edges.get(r["approach"])
        if d is None or "saturation_flow_pcu_h" not in d:
            raise InputError(
                f"approach edge {r['approach']!r} has no saturation_flow_pcu_h in the road graph", where=where
            )
        sat[i] = float(d["saturation_flow_pcu_h"]) / max(int(d.get("lanes", 1)), 1) * r["lanes"]
    return sat


def _apply_overrides(rows: list[dict[str, Any]], sat: np.ndarray, overrides: Mapping[str, float], where: str) -> None:
    """The user's saturation flows, by signal group or approach edge, in place of the computed ones."""
    for name, value in overrides.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        if not np.isfinite(v) or v <= 0:
            raise InputError(f"saturation flow override for {name!r} must be > 0 pcu/h, got {value!r}", where=where)
        hit = [i for i, r in enumerate(rows) if name in r["groups"] or name == r["approach"]]
        if not hit:
            raise InputError(f"saturation flow override {name!r} names no signal group or approach", where=where)
        sat[hit] = v


def effective_green_s(
    plan: TimingPlan, on: Sequence[bool], *, startup_lost_s: float = 2.0, green_extension_s: float = 2.0
) -> float:
    """Effective green (s) of a movement green in the plan stages flagged ``on``.

    Each contiguous run of such stages (the transitions inside a run stay
    green) counts ``run - l1 + e``; green in every stage gives the whole cycle.
    """
    n = len(plan.stages)
    if len(on) != n:
        raise ValueError("need one flag per plan stage")
    if all(on):
        return float(plan.cycle_s)
    if not any(on):
        return 0.0
    first_off = list(on).index(False)
    run = total = 0.0
    for step in range(1, n + 1):
        k = (first_off + step) % n
        if on[k]:
            run += plan.stages[k].green_s
            if on[(k + 1) % n]:
                run += plan.stages[k].intergreen_s
            else:
                total += max(run - startup_lost_s + green_extension_s, 0.0)
                run = 0.0
    return total


def _plan_stage_members(plan: TimingPlan, inter: Intersection) -> list[frozenset[str]]:
    return [s.groups if s.groups else inter.stage(s.stage).groups for s in plan.stages]


def group_effective_greens_s(
    plan: TimingPlan, inter: Intersection, *, startup_lost_s: float = 2.0, green_extension_s: float = 2.0
) -> np.ndarray:
    """Effective green per signal group in a plan, s (see :func:`effective_green_s`)."""
    members = _plan_stage_members(plan, inter)
    return np.array(
        [
            effective_green_s(
                plan, [g.id in m for m in members], startup_lost_s=startup_lost_s, green_extension_s=green_extension_s
            )
            for g in inter.groups
        ]
    )


def lane_group_effective_greens_s(
    plan: TimingPlan,
    inter: Intersection,
    groups: Iterable[LaneGroup],
    *,
    startup_lost_s: float = 2.0,
    green_extension_s: float = 2.0,
) -> np.ndarray:
    """Effective green per lane group: over the plan stages that are its serving stages."""
    stage_index = {s.id: k for k, s in enumerate(inter.stages)}
    members = _plan_stage_members(plan, inter)
    out = []
    for lg in groups:
        on = []
        for ps, m in zip(plan.stages, members, strict=True):
            k = stage_index.get(ps.stage)
            on.append(k in lg.stages if k is not None and not ps.groups else set(lg.groups) <= m)
        out.append(effective_green_s(plan, on, startup_lost_s=startup_lost_s, green_extension_s=green_extension_s))
    return np.array(out, dtype=float)
