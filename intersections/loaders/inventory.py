"""Read an intersection inventory (TOML or YAML) that field technicians maintain.

The schema, field by field, is in ``docs/inventory.md``; a complete example is
``examples/intersection.toml``. In short::

    [[intersection]]            id, name, x_m, y_m, tls_id, approach_speed_m_s {edge: m/s},
                                grade, crossing_width_m, conflicts [[a, b], ...]
      [[intersection.group]]    id, kind, phase, movements [{from, to, turn, lanes}],
                                min_green_s, max_green_s, yellow_s, all_red_s, walk_s,
                                ped_clearance_s, approach_speed_m_s, grade, crossing_width_m,
                                link_indices
      [[intersection.intergreen]]  from, to, intergreen_s
      [[intersection.stage]]    id, groups
      [[intersection.detector]] id, lane, group, kind, position_m, length_m, channel
    [[node]]                    id, x_m, y_m               (unsignalised road-graph nodes)
    [[link]]                    id, from, to, length_m, free_speed_m_s, lanes, saturation_flow_pcu_h

Values the technician leaves out are computed, with their sources:

* vehicle ``yellow_s``: ITE kinematic yellow from the approach speed and grade;
  ``all_red_s``: ITE all-red ``(W + L) / v`` from the approach speed and
  ``crossing_width_m`` (:mod:`intersections.clearance`; ITE 2020, MUTCD 2009 §4D.26);
* pedestrian ``walk_s``: 7 s; ``ped_clearance_s``: crossing length at 1.07 m/s
  (MUTCD 2009 §4E.06); ``all_red_s``: 0 s (set the agency's buffer interval);
* ``intergreen_s`` of a conflicting pair without an explicit entry: the ending
  group's yellow + all-red (pedestrians: ped clearance + all-red);
* link ``saturation_flow_pcu_h``: lanes x 1,900 pc/h/ln (HCM 7th ed. ch. 19).

Field data is typed by hand, so the reader is strict: an unknown key is an
error (with a "did you mean"), numbers must be numbers, durations non-negative,
speeds plausible in m/s (a km/h figure is caught), grades decimal (a percent
figure is caught). Every error is an :class:`~intersections.errors.InventoryError`
whose text names the file, the intersection and the field, e.g.
``examples/intersection.toml: intersection J1: group[2].min_green_s: must be a
number of seconds, got 'abc'`` (list positions count from 0).
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import networkx as nx
import numpy as np

from intersections.clearance import ite_all_red_s, ite_yellow_s, ped_clearance_s
from intersections.errors import InputError, InventoryError
from intersections.model import Detector, DetectorKind, GroupKind, Intersection, Movement, SignalGroup, Stage
from intersections.network import Network, add_link

__all__ = [
    "load_inventory",
    "inventory_from_dict",
    "DEFAULT_VEHICLE_MIN_GREEN_S",
    "DEFAULT_MAX_GREEN_S",
    "DEFAULT_WALK_S",
    "SATURATION_FLOW_PCU_H_PER_LANE",
]

#: Vehicle minimum green when not given: a conservative floor; the agency's value should replace it.
DEFAULT_VEHICLE_MIN_GREEN_S = 5.0
DEFAULT_MAX_GREEN_S = 60.0
#: WALK "typically at least 7 s" (MUTCD 2009 §4E.06).
DEFAULT_WALK_S = 7.0
#: HCM 7th ed. (2022) ch. 19 base saturation flow, metropolitan areas >= 250,000.
SATURATION_FLOW_PCU_H_PER_LANE = 1900.0
#: Plausibility bounds that catch unit mistakes (km/h typed as m/s, percent typed as decimal).
MAX_SPEED_M_S = 40.0  # 144 km/h
MAX_GRADE = 0.2  # 20 %
MAX_NTCIP_PHASE = 255

_TOP_KEYS = ("schema_version", "description", "intersection", "node", "link")
_INTERSECTION_KEYS = (
    "id", "name", "x_m", "y_m", "tls_id", "approach_speed_m_s", "grade", "crossing_width_m",
    "group", "conflicts", "intergreen", "stage", "detector",
)  # fmt: skip
_GROUP_KEYS = (
    "id", "kind", "phase", "movements", "min_green_s", "max_green_s", "yellow_s", "all_red_s",
    "walk_s", "ped_clearance_s", "approach_speed_m_s", "grade", "crossing_width_m", "link_indices",
)  # fmt: skip
_MOVEMENT_KEYS = ("from", "to", "turn", "lanes")
_INTERGREEN_KEYS = ("from", "to", "intergreen_s")
_STAGE_KEYS = ("id", "groups")
_DETECTOR_KEYS = ("id", "lane", "group", "kind", "position_m", "length_m", "channel")
_NODE_KEYS = ("id", "x_m", "y_m")
_LINK_KEYS = ("id", "from", "to", "length_m", "free_speed_m_s", "lanes", "saturation_flow_pcu_h")
_TURNS = ("l", "s", "r", "t", "p")
_MISSING = object()


class _Reader:
    """Typed access to one table, raising errors that name the file, intersection and field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, message: str) -> NoReturn:
        raise InventoryError(f"{field}: {message}" if field else message, where=self.where)

    @staticmethod
    def at(prefix: str, key: str) -> str:
        return f"{prefix}.{key}" if prefix else key

    def table(self, value: Any, field: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(field, f"must be a table of keys, got {_show(value)}")
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                did = f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(allowed)})"
                self.fail(field, f"unknown key {key!r}{did}")
        return value

    def tables(
        self, d: Mapping[str, Any], key: str, prefix: str, allowed: tuple[str, ...], *, toml: str = ""
    ) -> list[Mapping[str, Any]]:
        value = d.get(key, [])
        name = self.at(prefix, key)
        if not isinstance(value, list):
            self.fail(name, f"must be a list of tables ([[{toml or name}]] in TOML), got {_show(value)}")
        return [self.table(v, f"{name}[{k}]", allowed) for k, v in enumerate(value)]

    def string(self, d: Mapping[str, Any], key: str, prefix: str, default: str | None = None) -> str:
        value = d.get(key, _MISSING)
        if value is _MISSING:
            if default is None:
                self.fail(self.at(prefix, key), "required field missing")
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(self.at(prefix, key), f"must be a non-empty text, got {_show(value)}")
        return value

    def number(self, d: Mapping[str, Any], key: str, prefix: str, *, unit: str, default: Any = _MISSING) -> Any:
        value = d.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.fail(self.at(prefix, key), "required field missing")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(self.at(prefix, key), f"must be a number of {unit}, got {_show(value)}")
        return float(value)

    def seconds(self, d: Mapping[str, Any], key: str, prefix: str, default: Any = _MISSING) -> Any:
        value = self.number(d, key, prefix, unit="seconds", default=default)
        if key in d and value < 0:
            self.fail(self.at(prefix, key), f"must be >= 0 seconds, got {d[key]!r}")
        return value

    def metres(
        self, d: Mapping[str, Any], key: str, prefix: str, *, positive: bool = False, default: Any = _MISSING
    ) -> Any:
        value = self.number(d, key, prefix, unit="metres", default=default)
        if key in d and (value < 0 or (positive and value == 0)):
            self.fail(self.at(prefix, key), f"must be {'> 0' if positive else '>= 0'} metres, got {d[key]!r}")
        return value

    def speed(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(field, f"must be a speed in m/s, got {_show(value)}")
        if value <= 0:
            self.fail(field, f"must be > 0 m/s, got {value!r}")
        if value > MAX_SPEED_M_S:
            self.fail(
                field,
                f"{value:g} m/s ({value * 3.6:.0f} km/h) is implausible for a signalised approach; "
                f"the unit is m/s (50 km/h = 13.9 m/s)",
            )
        return float(value)

    def grade(self, d: Mapping[str, Any], key: str, prefix: str, default: Any) -> Any:
        value = self.number(d, key, prefix, unit="grade (a decimal, 0.03 = 3 % uphill)", default=default)
        if key in d and abs(value) > MAX_GRADE:
            self.fail(self.at(prefix, key), f"grade is a decimal (0.03 = 3 % uphill), got {d[key]!r}")
        return value

    def integer(
        self, d: Mapping[str, Any], key: str, prefix: str, *, low: int, high: int | None = None, default: Any = _MISSING
    ) -> Any:
        value = d.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.fail(self.at(prefix, key), "required field missing")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(self.at(prefix, key), f"must be a whole number, got {_show(value)}")
        if value < low or (high is not None and value > high):
            rng = f"between {low} and {high}" if high is not None else f">= {low}"
            self.fail(self.at(prefix, key), f"must be {rng}, got {value!r}")
        return value

    def strings(self, d: Mapping[str, Any], key: str, prefix: str, *, required: bool = False) -> list[str]:
        value = d.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.fail(self.at(prefix, key), "required field missing")
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(self.at(prefix, key), f"must be a list of texts, got {_show(value)}")
        return list(value)

    def choice(self, d: Mapping[str, Any], key: str, prefix: str, options: tuple[str, ...], default: str) -> str:
        value = d.get(key, default)
        if not isinstance(value, str) or value not in options:
            self.fail(self.at(prefix, key), f"must be one of {', '.join(options)}, got {_show(value)}")
        return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- one intersection -------------------------------------------------------------------------


def _group(
    r: _Reader,
    g: Mapping[str, Any],
    k: int,
    approach: Mapping[str, float],
    grade_default: float,
    width_default: float | None,
) -> SignalGroup:
    """One signal group, with the clearances it leaves out computed (module docstring)."""
    p = f"group[{k}]"
    gid = r.string(g, "id", p)
    kind = GroupKind(r.choice(g, "kind", p, tuple(x.value for x in GroupKind), GroupKind.VEHICLE.value))
    ped = kind is GroupKind.PEDESTRIAN
    phase = r.integer(g, "phase", p, low=0, high=MAX_NTCIP_PHASE, default=0)
    movements = []
    raw_moves = g.get("movements", [])
    if not isinstance(raw_moves, list):
        r.fail(f"{p}.movements", f"must be a list of {{from, to, turn, lanes}} tables, got {_show(raw_moves)}")
    for m_k, m in enumerate(raw_moves):
        mp = f"{p}.movements[{m_k}]"
        r.table(m, mp, _MOVEMENT_KEYS)
        turn = r.choice(m, "turn", mp, _TURNS, "p" if ped else "s")
        movements.append(
            Movement(r.string(m, "from", mp), r.string(m, "to", mp), tuple(r.strings(m, "lanes", mp)), turn)
        )
    for wrong in ("walk_s", "ped_clearance_s") if not ped else ("yellow_s",):
        if wrong in g:
            why = (
                "pedestrian groups have no yellow; their clearance is ped_clearance_s"
                if ped
                else f'{wrong} applies to pedestrian groups only (kind = "pedestrian")'
            )
            r.fail(f"{p}.{wrong}", why)
    speed = None
    if "approach_speed_m_s" in g:
        speed = r.speed(g["approach_speed_m_s"], f"{p}.approach_speed_m_s")
    else:
        known = [approach[m.from_edge] for m in movements if m.from_edge in approach]
        speed = max(known) if known else None
    grade = r.grade(g, "grade", p, default=grade_default)
    width = r.metres(g, "crossing_width_m", p, positive=True, default=width_default)

    def need(field: str, what: str) -> NoReturn:
        r.fail(f"{p}.{field}", f"not given and cannot be computed: give {field}, or {what}")

    if ped:
        walk = r.seconds(g, "walk_s", p, default=DEFAULT_WALK_S)
        clear = r.seconds(g, "ped_clearance_s", p, default=None)
        if clear is None:
            if width is None:
                need("ped_clearance_s", "crossing_width_m (the crossing length) for the MUTCD 3.5 ft/s walk")
            clear = float(ped_clearance_s(width))
        yellow = 0.0
        all_red = r.seconds(g, "all_red_s", p, default=0.0)
        min_green = r.seconds(g, "min_green_s", p, default=walk)
    else:
        walk, clear = 0.0, 0.0
        yellow = r.seconds(g, "yellow_s", p, default=None)
        if yellow is None:
            if speed is None:
                need(
                    "yellow_s",
                    "approach_speed_m_s (group, or intersection for its movements' edges) for the ITE formula",
                )
            yellow = float(ite_yellow_s(speed, grade=grade))
        all_red = r.seconds(g, "all_red_s", p, default=None)
        if all_red is None:
            if speed is None or width is None:
                need("all_red_s", "approach_speed_m_s and crossing_width_m for the ITE formula (W + L) / v")
            all_red = float(ite_all_red_s(speed, crossing_width_m=width))
        min_green = r.seconds(g, "min_green_s", p, default=DEFAULT_VEHICLE_MIN_GREEN_S)
    max_green = r.seconds(g, "max_green_s", p, default=max(DEFAULT_MAX_GREEN_S, min_green))
    if max_green < min_green:
        r.fail(f"{p}.max_green_s", f"{max_green:g} s is below min_green_s {min_green:g} s")
    raw_links = g.get("link_indices", [])
    if not isinstance(raw_links, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in raw_links
    ):
        r.fail(f"{p}.link_indices", f"must be a list of whole numbers >= 0, got {_show(raw_links)}")
    return SignalGroup(
        id=gid,
        kind=kind,
        movements=tuple(movements),
        min_green_s=min_green,
        max_green_s=max_green,
        yellow_s=yellow,
        all_red_s=all_red,
        walk_s=walk,
        ped_clearance_s=clear,
        link_indices=tuple(raw_links),
        phase=phase,
    )


def _intersection(r: _Reader, d: Mapping[str, Any]) -> Intersection:
    iid = r.string(d, "id", "")
    r.string(d, "name", "", default="")  # for people; the model has no field for it
    x = r.number(d, "x_m", "", unit="metres", default=0.0)
    y = r.number(d, "y_m", "", unit="metres", default=0.0)
    tls_id = r.string(d, "tls_id", "", default="")
    approach_raw = d.get("approach_speed_m_s", {})
    if not isinstance(approach_raw, Mapping):
        r.fail("approach_speed_m_s", f"must be a table of edge id = speed in m/s, got {_show(approach_raw)}")
    approach = {str(e): r.speed(v, f"approach_speed_m_s.{e}") for e, v in approach_raw.items()}
    grade = r.grade(d, "grade", "", default=0.0)
    width = r.metres(d, "crossing_width_m", "", positive=True, default=None)

    raw_groups = r.tables(d, "group", "", _GROUP_KEYS, toml="intersection.group")
    if not raw_groups:
        r.fail("group", "an intersection needs at least one [[intersection.group]]")
    groups: list[SignalGroup] = []
    for k, raw in enumerate(raw_groups):
        group = _group(r, raw, k, approach, grade, width)
        if group.id in {x.id for x in groups}:
            r.fail(f"group[{k}].id", f"duplicate signal group id {group.id!r}")
        groups.append(group)
    ids = [g.id for g in groups]
    index = {g: k for k, g in enumerate(ids)}
    vehicle_phases: dict[int, str] = {}
    for k, g in enumerate(groups):
        if g.phase and not g.is_pedestrian:
            if g.phase in vehicle_phases:
                r.fail(f"group[{k}].phase", f"NTCIP phase {g.phase} is already used by group {vehicle_phases[g.phase]}")
            vehicle_phases[g.phase] = g.id

    def known(group_id: Any, field: str) -> int:
        if not isinstance(group_id, str) or group_id not in index:
            r.fail(field, f"unknown signal group {_show(group_id)} (known: {', '.join(ids)})")
        return index[group_id]

    n = len(groups)
    conflicts = np.zeros((n, n), dtype=bool)
    raw_conflicts = d.get("conflicts", [])
    if not isinstance(raw_conflicts, list):
        r.fail("conflicts", f"must be a list of [group, group] pairs, got {_show(raw_conflicts)}")
    for k, pair in enumerate(raw_conflicts):
        if not isinstance(pair, list) or len(pair) != 2:
            r.fail(f"conflicts[{k}]", f"must be a pair [group, group], got {_show(pair)}")
        a, b = known(pair[0], f"conflicts[{k}]"), known(pair[1], f"conflicts[{k}]")
        if a == b:
            r.fail(f"conflicts[{k}]", f"a signal group cannot conflict with itself ({ids[a]})")
        conflicts[a, b] = conflicts[b, a] = True

    own = np.array([g.ped_clearance_s + g.all_red_s if g.is_pedestrian else g.yellow_s + g.all_red_s for g in groups])
    intergreen = np.where(conflicts, own[:, None], 0.0)
    given: set[tuple[int, int]] = set()
    for k, e in enumerate(r.tables(d, "intergreen", "", _INTERGREEN_KEYS, toml="intersection.intergreen")):
        p = f"intergreen[{k}]"
        a = known(r.string(e, "from", p), f"{p}.from")
        b = known(r.string(e, "to", p), f"{p}.to")
        seconds = r.seconds(e, "intergreen_s", p)
        if not conflicts[a, b]:
            r.fail(
                p,
                f"{ids[a]} and {ids[b]} are not in conflict; an intergreen only applies to a conflicting "
                f"pair (add it to conflicts)",
            )
        if (a, b) in given:
            r.fail(p, f"intergreen {ids[a]} -> {ids[b]} is given twice")
        ending = groups[a]
        floor = ending.ped_clearance_s if ending.is_pedestrian else ending.yellow_s
        if seconds < floor:
            what = "ped clearance" if ending.is_pedestrian else "yellow"
            r.fail(f"{p}.intergreen_s", f"{seconds:g} s is shorter than {ending.id}'s {what} {floor:g} s")
        given.add((a, b))
        intergreen[a, b] = seconds

    stages: list[Stage] = []
    for k, s in enumerate(r.tables(d, "stage", "", _STAGE_KEYS, toml="intersection.stage")):
        p = f"stage[{k}]"
        sid = r.string(s, "id", p)
        if sid in {x.id for x in stages}:
            r.fail(f"{p}.id", f"duplicate stage id {sid!r}")
        members = r.strings(s, "groups", p, required=True)
        if not members:
            r.fail(f"{p}.groups", "a stage needs at least one signal group")
        idx = [known(m, f"{p}.groups") for m in members]
        for a_k, a in enumerate(idx):
            for b in idx[a_k + 1 :]:
                if conflicts[a, b]:
                    r.fail(f"{p}.groups", f"groups {ids[a]} and {ids[b]} are in conflict and cannot be green together")
        stages.append(Stage(sid, frozenset(members)))
    if stages:
        served = frozenset().union(*(s.groups for s in stages))
        unserved = [g for g in ids if g not in served]
        if unserved:
            r.fail("stage", f"signal groups {', '.join(unserved)} are served by no stage")

    detectors: list[Detector] = []
    channels: dict[int, str] = {}
    for k, t in enumerate(r.tables(d, "detector", "", _DETECTOR_KEYS, toml="intersection.detector")):
        p = f"detector[{k}]"
        did = r.string(t, "id", p)
        if did in {x.id for x in detectors}:
            r.fail(f"{p}.id", f"duplicate detector id {did!r}")
        group_id = r.string(t, "group", p)
        known(group_id, f"{p}.group")
        channel = r.integer(t, "channel", p, low=0, default=0)
        if channel and channel in channels:
            r.fail(f"{p}.channel", f"channel {channel} is already used by detector {channels[channel]}")
        if channel:
            channels[channel] = did
        detectors.append(
            Detector(
                id=did,
                lane=r.string(t, "lane", p),
                group=group_id,
                kind=DetectorKind(
                    r.choice(t, "kind", p, tuple(x.value for x in DetectorKind), DetectorKind.STOP_LINE.value)
                ),
                position_m=r.metres(t, "position_m", p, default=0.0),
                length_m=r.metres(t, "length_m", p, positive=True, default=2.0),
                channel=channel,
            )
        )
    return Intersection(
        id=iid,
        groups=tuple(groups),
        conflicts=conflicts,
        intergreen_s=intergreen,
        stages=tuple(stages),
        detectors=tuple(detectors),
        x_m=x,
        y_m=y,
        approach_speed_m_s=approach,
        tls_id=tls_id,
    )


# ---- the whole file ---------------------------------------------------------------------------


def inventory_from_dict(data: Any, *, source: str = "inventory") -> Network:
    """Build a :class:`Network` from parsed inventory data (the TOML/YAML document as a dict).

    ``source`` names the file in error messages.
    """
    top = _Reader(source)
    top.table(data, "", _TOP_KEYS)
    if "schema_version" in data:
        version = top.integer(data, "schema_version", "", low=1)
        if version != 1:
            top.fail("schema_version", f"this greenwave reads schema_version 1, got {version}")
    if "description" in data:
        top.string(data, "description", "")
    raw = data.get("intersection", _MISSING)
    if raw is _MISSING or (isinstance(raw, list) and not raw):
        top.fail("intersection", "the inventory needs at least one [[intersection]]")
    if not isinstance(raw, list):
        top.fail("intersection", f"must be a list of tables ([[intersection]] in TOML), got {_show(raw)}")
    intersections: list[Intersection] = []
    for k, d in enumerate(raw):
        label = f"intersection[{k}]"
        if isinstance(d, Mapping) and isinstance(d.get("id"), str) and d["id"].strip():
            label = f"intersection {d['id']}"
        r = _Reader(f"{source}: {label}")
        r.table(d, "", _INTERSECTION_KEYS)
        try:
            inter = _intersection(r, d)
        except InventoryError:
            raise
        except InputError as e:  # the model's own checks, worded by the model
            raise InventoryError(e.message, where=f"{source}: {label}") from None
        if inter.id in {x.id for x in intersections}:
            top.fail(f"intersection[{k}].id", f"duplicate intersection id {inter.id!r}")
        intersections.append(inter)

    graph: nx.DiGraph[str] = nx.DiGraph()
    for inter in intersections:
        graph.add_node(inter.id, x_m=inter.x_m, y_m=inter.y_m, signalised=True, tls=inter.tls_id)
    for k, t in enumerate(top.tables(data, "node", "", _NODE_KEYS)):
        p = f"node[{k}]"
        nid = top.string(t, "id", p)
        if nid in graph:
            top.fail(f"{p}.id", f"node {nid!r} is already defined (as an intersection or an earlier node)")
        graph.add_node(
            nid,
            x_m=top.number(t, "x_m", p, unit="metres", default=0.0),
            y_m=top.number(t, "y_m", p, unit="metres", default=0.0),
            signalised=False,
            tls="",
        )
    link_ids: dict[tuple[str, str], str] = {}
    for k, t in enumerate(top.tables(data, "link", "", _LINK_KEYS)):
        p = f"link[{k}]"
        lid = top.string(t, "id", p)
        ends: list[str] = []
        for key in ("from", "to"):
            node = top.string(t, key, p)
            if node not in graph:
                top.fail(f"{p}.{key}", f"unknown node {node!r} (declare it as an [[intersection]] or a [[node]])")
            ends.append(node)
        if (ends[0], ends[1]) in link_ids:
            top.fail(
                p,
                f"a link from {ends[0]} to {ends[1]} is already defined ({link_ids[ends[0], ends[1]]!r}); "
                f"the road graph holds one link per direction between two nodes",
            )
        if lid in link_ids.values():
            top.fail(f"{p}.id", f"duplicate link id {lid!r}")
        link_ids[(ends[0], ends[1])] = lid
        lanes = top.integer(t, "lanes", p, low=1, default=1)
        if "free_speed_m_s" not in t:
            top.fail(f"{p}.free_speed_m_s", "required field missing")
        speed = top.speed(t["free_speed_m_s"], f"{p}.free_speed_m_s")
        sat = top.number(t, "saturation_flow_pcu_h", p, unit="pcu/h", default=lanes * SATURATION_FLOW_PCU_H_PER_LANE)
        if sat < 0:
            top.fail(f"{p}.saturation_flow_pcu_h", f"must be >= 0 pcu/h, got {t['saturation_flow_pcu_h']!r}")
        add_link(
            graph,
            ends[0],
            ends[1],
            id=lid,
            length_m=top.metres(t, "length_m", p),
            free_speed_m_s=speed,
            lanes=lanes,
            saturation_flow_pcu_h=sat,
        )
    return Network(tuple(intersections), graph, source)


def load_inventory(path: str | Path) -> Network:
    """Load an inventory file (``.toml``, or ``.yaml``/``.yml``) into a :class:`Network`.

    Intersections keep their file order (the row order of every engine array).
    Raises :class:`~intersections.errors.InventoryError` naming the file, the
    intersection and the field for anything malformed.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError("file not found", where=where) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(f"cannot read the file: {e}", where=where) from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InventoryError(f"not valid TOML: {e}", where=where) from None
    elif suffix in (".yaml", ".yml"):
        import yaml  # lazily: only YAML inventories need it

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise InventoryError(f"not valid YAML{at}: {problem}", where=where) from None
        if data is None:
            raise InventoryError("the file is empty", where=where)
    else:
        raise InventoryError("an inventory must be a .toml, .yaml or .yml file", where=where)
    return inventory_from_dict(data, source=where)
