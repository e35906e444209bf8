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
figure is caught). The file is read as every configuration file is
(:mod:`intersections.config`): pydantic models describe its tables and types, and
the checks between fields (known groups, conflicts, stages, clearances) follow on
the typed tables. Every error is one :class:`~intersections.errors.InventoryError`
line naming the file, the table and the field, e.g.
``examples/intersection.toml:intersection[0].group[2].min_green_s: must be a
number of seconds, got 'abc'`` (list positions count from 0).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import networkx as nx
import numpy as np
from pydantic import BeforeValidator, Field, field_validator

from intersections.clearance import ite_all_red_s, ite_yellow_s, ped_clearance_s
from intersections.config import ConfigModel, validate, where_of
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
_TURNS = ("l", "s", "r", "t", "p")

Loc = tuple[int | str, ...]


# ---- value types: the technician's units in the message ----------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a number of {unit}, got {_show(value)}")
    return float(value)


def _at_least(unit: str, *, positive: bool = False) -> BeforeValidator:
    """A number of ``unit`` that is >= 0 (``positive``: > 0)."""

    def check(value: Any) -> float:
        x = _number(value, unit)
        if x < 0 or (positive and x == 0):
            raise ValueError(f"must be {'> 0' if positive else '>= 0'} {unit}, got {value!r}")
        return x

    return BeforeValidator(check)


def _speed(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a speed in m/s, got {_show(value)}")
    if value <= 0:
        raise ValueError(f"must be > 0 m/s, got {value!r}")
    if value > MAX_SPEED_M_S:
        raise ValueError(
            f"{value:g} m/s ({value * 3.6:.0f} km/h) is implausible for a signalised approach; "
            f"the unit is m/s (50 km/h = 13.9 m/s)"
        )
    return float(value)


def _grade(value: Any) -> float:
    x = _number(value, "grade (a decimal, 0.03 = 3 % uphill)")
    if abs(x) > MAX_GRADE:
        raise ValueError(f"grade is a decimal (0.03 = 3 % uphill), got {value!r}")
    return x


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty text, got {_show(value)}")
    return value


def _one_of(options: tuple[str, ...]) -> BeforeValidator:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {_show(value)}")
        return value

    return BeforeValidator(check)


Seconds = Annotated[float, _at_least("seconds")]
MaybeSeconds = Annotated[float | None, _at_least("seconds")]
Metres = Annotated[float, _at_least("metres")]
PositiveMetres = Annotated[float, _at_least("metres", positive=True)]
MaybePositiveMetres = Annotated[float | None, _at_least("metres", positive=True)]
Coordinate = Annotated[float, BeforeValidator(lambda v: _number(v, "metres"))]
Speed = Annotated[float, BeforeValidator(_speed)]
MaybeSpeed = Annotated[float | None, BeforeValidator(_speed)]
Grade = Annotated[float, BeforeValidator(_grade)]
MaybeGrade = Annotated[float | None, BeforeValidator(_grade)]
Text = Annotated[str, BeforeValidator(_text)]


# ---- the file's tables ----------------------------------------------------------------------


class _Movement(ConfigModel):
    from_: Text = Field(alias="from")
    to: Text
    turn: Annotated[str | None, _one_of(_TURNS)] = None  # default by the group's kind
    lanes: list[Text] = Field(default_factory=list)


class _Group(ConfigModel):
    id: Text
    kind: Annotated[str, _one_of(tuple(k.value for k in GroupKind))] = GroupKind.VEHICLE.value
    phase: int = Field(0, ge=0, le=MAX_NTCIP_PHASE)
    movements: list[_Movement] = Field(default_factory=list)
    min_green_s: MaybeSeconds = None
    max_green_s: MaybeSeconds = None
    yellow_s: MaybeSeconds = None
    all_red_s: MaybeSeconds = None
    walk_s: MaybeSeconds = None
    ped_clearance_s: MaybeSeconds = None
    approach_speed_m_s: MaybeSpeed = None
    grade: MaybeGrade = None
    crossing_width_m: MaybePositiveMetres = None
    link_indices: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)


class _Intergreen(ConfigModel):
    from_: Text = Field(alias="from")
    to: Text
    intergreen_s: Seconds


class _Stage(ConfigModel):
    id: Text
    groups: list[Text]


class _Detector(ConfigModel):
    id: Text
    lane: Text
    group: Text
    kind: Annotated[str, _one_of(tuple(k.value for k in DetectorKind))] = DetectorKind.STOP_LINE.value
    position_m: Metres = 0.0
    length_m: PositiveMetres = 2.0
    channel: int = Field(0, ge=0)


class _Intersection(ConfigModel):
    id: Text
    name: Text = ""  # for people; the model has no field for it
    x_m: Coordinate = 0.0
    y_m: Coordinate = 0.0
    tls_id: Text = ""
    approach_speed_m_s: dict[str, Speed] = Field(default_factory=dict)
    grade: Grade = 0.0
    crossing_width_m: MaybePositiveMetres = None
    group: list[_Group] = Field(default_factory=list)
    conflicts: list[list[Text]] = Field(default_factory=list)
    intergreen: list[_Intergreen] = Field(default_factory=list)
    stage: list[_Stage] = Field(default_factory=list)
    detector: list[_Detector] = Field(default_factory=list)


class _Node(ConfigModel):
    id: Text
    x_m: Coordinate = 0.0
    y_m: Coordinate = 0.0


class _Link(ConfigModel):
    id: Text
    from_: Text = Field(alias="from")
    to: Text
    length_m: Metres
    free_speed_m_s: Speed
    lanes: int = Field(1, ge=1)
    saturation_flow_pcu_h: Annotated[float | None, _at_least("pcu/h")] = None


class _Inventory(ConfigModel):
    schema_version: int = Field(1, ge=1)
    description: Text = ""
    intersection: list[_Intersection] = Field(default_factory=list)
    node: list[_Node] = Field(default_factory=list)
    link: list[_Link] = Field(default_factory=list)

    @field_validator("schema_version")
    @classmethod
    def _readable(cls, v: int) -> int:
        if v != 1:
            raise ValueError(f"this greenwave reads schema_version 1, got {v}")
        return v


# ---- the checks between fields ---------------------------------------------------------------


class _Place:
    """Where a table sits in the file; ``fail`` raises the one-line error at one of its fields."""

    def __init__(self, source: str, loc: Loc = ()) -> None:
        self.source, self.loc = source, loc

    def fail(self, *field: int | str, message: str) -> NoReturn:
        raise InventoryError(message, where=where_of(self.source, (*self.loc, *field)))


def _group(at: _Place, k: int, g: _Group, inter: _Intersection) -> SignalGroup:
    """One signal group, with the clearances it leaves out computed (module docstring)."""
    p: Loc = ("group", k)
    kind = GroupKind(g.kind)
    ped = kind is GroupKind.PEDESTRIAN
    movements = tuple(Movement(m.from_, m.to, tuple(m.lanes), m.turn or ("p" if ped else "s")) for m in g.movements)
    for wrong in ("walk_s", "ped_clearance_s") if not ped else ("yellow_s",):
        if getattr(g, wrong) is not None:
            at.fail(
                *p,
                wrong,
                message=(
                    "pedestrian groups have no yellow; their clearance is ped_clearance_s"
                    if ped
                    else f'{wrong} applies to pedestrian groups only (kind = "pedestrian")'
                ),
            )
    speed = g.approach_speed_m_s
    if speed is None:
        known = [inter.approach_speed_m_s[m.from_edge] for m in movements if m.from_edge in inter.approach_speed_m_s]
        speed = max(known) if known else None
    grade = inter.grade if g.grade is None else g.grade
    width = inter.crossing_width_m if g.crossing_width_m is None else g.crossing_width_m

    def computed(field: str, given: float | None, formula: Callable[[], float | None], what: str) -> float:
        if given is not None:
            return given
        value = formula()
        if value is None:
            at.fail(*p, field, message=f"not given and cannot be computed: give {field}, or {what}")
        return value

    if ped:
        walk = DEFAULT_WALK_S if g.walk_s is None else g.walk_s
        clear = computed(
            "ped_clearance_s",
            g.ped_clearance_s,
            lambda: None if width is None else float(ped_clearance_s(width)),
            "crossing_width_m (the crossing length) for the MUTCD 3.5 ft/s walk",
        )
        yellow, all_red = 0.0, 0.0 if g.all_red_s is None else g.all_red_s
        min_green = walk if g.min_green_s is None else g.min_green_s
    else:
        walk, clear = 0.0, 0.0
        yellow = computed(
            "yellow_s",
            g.yellow_s,
            lambda: None if speed is None else float(ite_yellow_s(speed, grade=grade)),
            "approach_speed_m_s (group, or intersection for its movements' edges) for the ITE formula",
        )
        all_red = computed(
            "all_red_s",
            g.all_red_s,
            lambda: None if speed is None or width is None else float(ite_all_red_s(speed, crossing_width_m=width)),
            "approach_speed_m_s and crossing_width_m for the ITE formula (W + L) / v",
        )
        min_green = DEFAULT_VEHICLE_MIN_GREEN_S if g.min_green_s is None else g.min_green_s
    max_green = max(DEFAULT_MAX_GREEN_S, min_green) if g.max_green_s is None else g.max_green_s
    if max_green < min_green:
        at.fail(*p, "max_green_s", message=f"{max_green:g} s is below min_green_s {min_green:g} s")
    return SignalGroup(
        id=g.id,
        kind=kind,
        movements=movements,
        min_green_s=min_green,
        max_green_s=max_green,
        yellow_s=yellow,
        all_red_s=all_red,
        walk_s=walk,
        ped_clearance_s=clear,
        link_indices=tuple(g.link_indices),
        phase=g.phase,
    )


def _groups(at: _Place, inter: _Intersection) -> list[SignalGroup]:
    """The signal groups, each id once and each vehicle NTCIP phase once."""
    if not inter.group:
        at.fail("group", message="an intersection needs at least one [[intersection.group]]")
    groups: list[SignalGroup] = []
    vehicle_phases: dict[int, str] = {}
    for k, raw in enumerate(inter.group):
        g = _group(at, k, raw, inter)
        if g.id in {x.id for x in groups}:
            at.fail("group", k, "id", message=f"duplicate signal group id {g.id!r}")
        if g.phase and not g.is_pedestrian:
            if g.phase in vehicle_phases:
                used = f"NTCIP phase {g.phase} is already used by group {vehicle_phases[g.phase]}"
                at.fail("group", k, "phase", message=used)
            vehicle_phases[g.phase] = g.id
        groups.append(g)
    return groups


class _Groups:
    """The intersection's group ids by row, for the tables that name groups."""

    def __init__(self, at: _Place, groups: list[SignalGroup]) -> None:
        self.at, self.groups = at, groups
        self.ids = [g.id for g in groups]
        self.index = {g: k for k, g in enumerate(self.ids)}

    def row(self, group_id: str, *field: int | str) -> int:
        if group_id not in self.index:
            self.at.fail(*field, message=f"unknown signal group {group_id!r} (known: {', '.join(self.ids)})")
        return self.index[group_id]


def _conflicts(at: _Place, inter: _Intersection, known: _Groups) -> np.ndarray:
    n = len(known.ids)
    conflicts = np.zeros((n, n), dtype=bool)
    for k, pair in enumerate(inter.conflicts):
        if len(pair) != 2:
            at.fail("conflicts", k, message=f"must be a pair [group, group], got {_show(pair)}")
        a, b = known.row(pair[0], "conflicts", k), known.row(pair[1], "conflicts", k)
        if a == b:
            at.fail("conflicts", k, message=f"a signal group cannot conflict with itself ({known.ids[a]})")
        conflicts[a, b] = conflicts[b, a] = True
    return conflicts


def _intergreens(at: _Place, inter: _Intersection, known: _Groups, conflicts: np.ndarray) -> np.ndarray:
    """The ending group's own clearance for every conflicting pair, or the explicit entry (>= yellow)."""
    groups, ids = known.groups, known.ids
    own = np.array([g.ped_clearance_s + g.all_red_s if g.is_pedestrian else g.yellow_s + g.all_red_s for g in groups])
    intergreen = np.where(conflicts, own[:, None], 0.0)
    given: set[tuple[int, int]] = set()
    for k, e in enumerate(inter.intergreen):
        p: Loc = ("intergreen", k)
        a, b = known.row(e.from_, *p, "from"), known.row(e.to, *p, "to")
        if not conflicts[a, b]:
            at.fail(
                *p,
                message=(
                    f"{ids[a]} and {ids[b]} are not in conflict; an intergreen only applies to a conflicting "
                    f"pair (add it to conflicts)"
                ),
            )
        if (a, b) in given:
            at.fail(*p, message=f"intergreen {ids[a]} -> {ids[b]} is given twice")
        ending = groups[a]
        floor = ending.ped_clearance_s if ending.is_pedestrian else ending.yellow_s
        if e.intergreen_s < floor:
            what = "ped clearance" if ending.is_pedestrian else "yellow"
            short = f"{e.intergreen_s:g} s is shorter than {ending.id}'s {what} {floor:g} s"
            at.fail(*p, "intergreen_s", message=short)
        given.add((a, b))
        intergreen[a, b] = e.intergreen_s
    return intergreen


def _stages(at: _Place, inter: _Intersection, known: _Groups, conflicts: np.ndarray) -> list[Stage]:
    """Stages of compatible groups; when there are stages, every group is served by one."""
    ids = known.ids
    stages: list[Stage] = []
    for k, s in enumerate(inter.stage):
        if s.id in {x.id for x in stages}:
            at.fail("stage", k, "id", message=f"duplicate stage id {s.id!r}")
        if not s.groups:
            at.fail("stage", k, "groups", message="a stage needs at least one signal group")
        idx = [known.row(m, "stage", k, "groups") for m in s.groups]
        for a_k, a in enumerate(idx):
            for b in idx[a_k + 1 :]:
                if conflicts[a, b]:
                    at.fail(
                        "stage",
                        k,
                        "groups",
                        message=(f"groups {ids[a]} and {ids[b]} are in conflict and cannot be green together"),
                    )
        stages.append(Stage(s.id, frozenset(s.groups)))
    if stages:
        served = frozenset().union(*(s.groups for s in stages))
        unserved = [g for g in ids if g not in served]
        if unserved:
            at.fail("stage", message=f"signal groups {', '.join(unserved)} are served by no stage")
    return stages


def _detectors(at: _Place, inter: _Intersection, known: _Groups) -> list[Detector]:
    """Detectors of known groups, each id once and each controller input channel once."""
    detectors: list[Detector] = []
    channels: dict[int, str] = {}
    for k, t in enumerate(inter.detector):
        if t.id in {x.id for x in detectors}:
            at.fail("detector", k, "id", message=f"duplicate detector id {t.id!r}")
        known.row(t.group, "detector", k, "group")
        if t.channel and t.channel in channels:
            used = f"channel {t.channel} is already used by detector {channels[t.channel]}"
            at.fail("detector", k, "channel", message=used)
        if t.channel:
            channels[t.channel] = t.id
        detectors.append(
            Detector(
                id=t.id,
                lane=t.lane,
                group=t.group,
                kind=DetectorKind(t.kind),
                position_m=t.position_m,
                length_m=t.length_m,
                channel=t.channel,
            )
        )
    return detectors


def _intersection(at: _Place, inter: _Intersection) -> Intersection:
    groups = _groups(at, inter)
    known = _Groups(at, groups)
    conflicts = _conflicts(at, inter, known)
    try:
        return Intersection(
            id=inter.id,
            groups=tuple(groups),
            conflicts=conflicts,
            intergreen_s=_intergreens(at, inter, known, conflicts),
            stages=tuple(_stages(at, inter, known, conflicts)),
            detectors=tuple(_detectors(at, inter, known)),
            x_m=inter.x_m,
            y_m=inter.y_m,
            approach_speed_m_s=dict(inter.approach_speed_m_s),
            tls_id=inter.tls_id,
        )
    except InventoryError:
        raise
    except InputError as e:  # the model's own checks, worded by the model
        at.fail(message=e.message)


def _road_graph(top: _Place, doc: _Inventory, intersections: list[Intersection]) -> nx.DiGraph[str]:
    """Intersections and unsignalised nodes, and one link per direction between two of them."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    for inter in intersections:
        graph.add_node(inter.id, x_m=inter.x_m, y_m=inter.y_m, signalised=True, tls=inter.tls_id)
    for k, node in enumerate(doc.node):
        if node.id in graph:
            top.fail(
                "node",
                k,
                "id",
                message=(f"node {node.id!r} is already defined (as an intersection or an earlier node)"),
            )
        graph.add_node(node.id, x_m=node.x_m, y_m=node.y_m, signalised=False, tls="")
    link_ids: dict[tuple[str, str], str] = {}
    for k, link in enumerate(doc.link):
        for key, end in (("from", link.from_), ("to", link.to)):
            if end not in graph:
                top.fail(
                    "link", k, key, message=(f"unknown node {end!r} (declare it as an [[intersection]] or a [[node]])")
                )
        ends = (link.from_, link.to)
        if ends in link_ids:
            top.fail(
                "link",
                k,
                message=(
                    f"a link from {ends[0]} to {ends[1]} is already defined ({link_ids[ends]!r}); "
                    f"the road graph holds one link per direction between two nodes"
                ),
            )
        if link.id in link_ids.values():
            top.fail("link", k, "id", message=f"duplicate link id {link.id!r}")
        link_ids[ends] = link.id
        sat = link.saturation_flow_pcu_h
        add_link(
            graph,
            *ends,
            id=link.id,
            length_m=link.length_m,
            free_speed_m_s=link.free_speed_m_s,
            lanes=link.lanes,
            saturation_flow_pcu_h=link.lanes * SATURATION_FLOW_PCU_H_PER_LANE if sat is None else sat,
        )
    return graph


# ---- the whole file ---------------------------------------------------------------------------


def inventory_from_dict(data: Any, *, source: str = "inventory") -> Network:
    """Build a :class:`Network` from parsed inventory data (the TOML/YAML document as a dict).

    ``source`` names the file in error messages.
    """
    doc = validate(_Inventory, data, path=source, error=InventoryError)
    top = _Place(source)
    if not doc.intersection:
        top.fail("intersection", message="the inventory needs at least one [[intersection]]")
    intersections: list[Intersection] = []
    for k, raw in enumerate(doc.intersection):
        inter = _intersection(_Place(source, ("intersection", k)), raw)
        if inter.id in {x.id for x in intersections}:
            top.fail("intersection", k, "id", message=f"duplicate intersection id {inter.id!r}")
        intersections.append(inter)
    return Network(tuple(intersections), _road_graph(top, doc, intersections), source)


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
