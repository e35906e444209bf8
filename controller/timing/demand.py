"""Demand for timing: flow in veh/h per intersection, signal group and vehicle class.

:class:`Demand` holds, for each intersection, an array ``(groups, classes)`` of
flows in veh/h, rows in ``Intersection.groups`` order and columns in
:data:`~controller.timing.pcu.VEHICLE_CLASSES` order, plus the part of it
known per movement ``(from_edge, to_edge)`` (for lane groups and turning
proportions). :func:`load_demand` reads it from two kinds of files (several
files may be combined):

**Turning-movement counts** (``.csv`` or ``.json``), one record per
intersection, movement (or signal group) and vehicle class:

==============  ========  ==========================================================
field           required  meaning
==============  ========  ==========================================================
intersection    yes       intersection id (as in the network)
from_edge       \\*        incoming edge id (road-graph / SUMO edge)
to_edge         \\*        outgoing edge id
group           \\*        signal group id, instead of from_edge/to_edge
class           yes       motorcycle, car, bus, truck, bicycle (aliases: motorbike,
                          moped, scooter, passenger, coach, lorry, hgv, bike)
veh_h           yes       hourly volume, veh/h (``flow_veh_h`` also accepted)
phf             no        peak-hour factor in (0, 1]; the flow rate used is
                          ``veh_h / phf`` (HCM analysis flow rate), default 1
==============  ========  ==========================================================

\\* either ``group`` or both ``from_edge`` and ``to_edge``. Records for the
same movement and class add up. A movement served by several groups (e.g.
two lanes in different groups) is split in proportion to the lanes each
group's movement lists (equally if none are listed). CSV has a header row;
other columns are ignored. JSON is a list of such objects or
``{"counts": [...]}``.

**SUMO demand** (``.xml``: ``.rou.xml``, flow and trip files, additional files
with ``vType``\\s): ``<flow>`` (``vehsPerHour``, ``period`` (also
``exp(rate)``), ``probability`` or ``number`` over ``begin``..``end``),
``<vehicle>`` and ``<trip>`` (counted in the analysis window and divided by
its length in hours), routes as ``route="id"`` (a ``<route>`` or
``<routeDistribution>``), an embedded ``<route edges=...>`` or ``from``/``to``
(+ ``via``) edges, which are routed on the road graph by shortest travel time
(``length_m / free_speed_m_s``; the node graph knows no turn restrictions).
Routes over edges the road graph leaves out (rail, tram, footpaths: the graph's
``other_edges``) are valid and load no road movement.
Vehicle classes come from ``vType``/``vTypeDistribution`` ``vClass``
(:func:`~controller.timing.pcu.vehicle_class_from_sumo`); pedestrians, rail
and persons are not counted. Every consecutive edge pair of a route that a
signal group's movements contain adds the vehicle to that group. The analysis
window defaults to the span of the file (earliest begin/depart to latest
end/depart); pass ``begin_s``/``end_s`` for an exact period.

Bad input raises :class:`~intersections.errors.DemandError` naming the file,
the line (and element) and the field.

Pure: no sumolib; XML is read with the standard library (expat, for line numbers).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from xml.parsers import expat

import networkx as nx
import numpy as np

from controller.timing.pcu import (
    VEHICLE_CLASSES,
    PcuSet,
    VehicleClass,
    flows_to_pcu_h,
    vehicle_class,
    vehicle_class_from_sumo,
)
from intersections.errors import DemandError
from intersections.model import GroupKind, Intersection
from intersections.network import Network

__all__ = ["Demand", "load_demand", "load_turning_counts", "load_sumo_demand", "movement_index"]

_N_CLASSES = len(VEHICLE_CLASSES)
_DAY_S = 86400.0


# ---- the Demand value ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Demand:
    """Flows in veh/h per intersection, signal group and vehicle class.

    ``flows_veh_h[intersection_id]`` is ``(groups, classes)``: the group
    totals, which are authoritative. ``movement_veh_h[intersection_id]`` maps
    ``(from_edge, to_edge)`` to a ``(classes,)`` array for the part of the
    demand known per movement (edge-based counts, SUMO routes); timing uses it
    to load each approach and lane group and to get turning proportions.
    Group totals without movement detail (counts by ``group``) are spread over
    the group's approaches in proportion to their lanes. Intersections absent
    from the mapping have no demand. Arrays are validated (finite, >= 0, last
    axis = vehicle classes) and frozen.
    """

    flows_veh_h: Mapping[str, np.ndarray]
    movement_veh_h: Mapping[str, Mapping[tuple[str, str], np.ndarray]] = field(default_factory=dict)
    source: str = ""
    begin_s: float | None = None
    end_s: float | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        flows: dict[str, np.ndarray] = {}
        for iid, a in dict(self.flows_veh_h).items():
            arr = np.array(a, dtype=float, copy=True)
            where = f"{self.source or 'demand'}: intersection {iid}"
            if arr.ndim != 2 or arr.shape[1] != _N_CLASSES:
                raise DemandError(f"flows must be (groups, {_N_CLASSES}) veh/h, got shape {arr.shape}", where=where)
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise DemandError("flows must be finite and >= 0 veh/h", where=where)
            arr.setflags(write=False)
            flows[str(iid)] = arr
        moves: dict[str, Mapping[tuple[str, str], np.ndarray]] = {}
        for iid, by_pair in dict(self.movement_veh_h).items():
            where = f"{self.source or 'demand'}: intersection {iid}"
            if str(iid) not in flows:
                raise DemandError("movement flows given for an intersection without group flows", where=where)
            inner: dict[tuple[str, str], np.ndarray] = {}
            for key, vec in dict(by_pair).items():
                v = np.array(vec, dtype=float, copy=True)
                if v.shape != (_N_CLASSES,) or not np.isfinite(v).all() or (v < 0).any():
                    raise DemandError(f"movement {key}: flows must be {_N_CLASSES} finite values >= 0", where=where)
                v.setflags(write=False)
                inner[(str(key[0]), str(key[1]))] = v
            moves[str(iid)] = MappingProxyType(inner)
        object.__setattr__(self, "flows_veh_h", MappingProxyType(flows))
        object.__setattr__(self, "movement_veh_h", MappingProxyType(moves))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def zeros(cls, network: Network | Iterable[Intersection], source: str = "") -> Demand:
        return cls({i.id: np.zeros((len(i.groups), _N_CLASSES)) for i in network}, source=source)

    @classmethod
    def from_group_flows(
        cls,
        network: Network | Iterable[Intersection],
        flows: Mapping[str, Mapping[str, Mapping[str, float] | float]],
        source: str = "",
    ) -> Demand:
        """From ``{intersection: {group: {class: veh_h}}}`` (a bare number means cars)."""
        inters = {i.id: i for i in network}
        out: dict[str, np.ndarray] = {}
        for iid, groups in flows.items():
            if iid not in inters:
                raise DemandError(f"unknown intersection {iid!r}", where=source or "demand")
            inter = inters[iid]
            arr = np.zeros((len(inter.groups), _N_CLASSES))
            for gid, by_class in groups.items():
                gi = _group_index(inter, gid, where=f"{source or 'demand'}: intersection {iid}")
                if not isinstance(by_class, Mapping):
                    by_class = {VehicleClass.CAR.value: by_class}
                for cname, v in by_class.items():
                    arr[gi, VEHICLE_CLASSES.index(vehicle_class(cname))] += float(v)
            out[iid] = arr
        return cls(out, source=source)

    @classmethod
    def from_movement_flows(
        cls,
        network: Network | Iterable[Intersection],
        flows: Mapping[str, Mapping[tuple[str, str], Mapping[str, float] | float]],
        source: str = "",
    ) -> Demand:
        """From ``{intersection: {(from_edge, to_edge): {class: veh_h}}}`` (a bare number means cars)."""
        inters = {i.id: i for i in network}
        acc = _Accumulator(inters)
        for iid, by_pair in flows.items():
            if iid not in inters:
                raise DemandError(f"unknown intersection {iid!r}", where=source or "demand")
            index = movement_index(inters[iid])
            for pair, by_class in by_pair.items():
                if pair not in index:
                    raise DemandError(
                        f"unknown edge pair {pair[0]} -> {pair[1]}: no signal group of intersection {iid} serves it",
                        where=source or "demand",
                    )
                if not isinstance(by_class, Mapping):
                    by_class = {VehicleClass.CAR.value: by_class}
                vec = np.zeros(_N_CLASSES)
                for cname, v in by_class.items():
                    vec[VEHICLE_CLASSES.index(vehicle_class(cname))] += float(v)
                acc.add_movement(iid, pair, index[pair], vec)
        return acc.demand(source=source)

    # -- queries -------------------------------------------------------------------------------
    def for_intersection(self, inter: Intersection) -> np.ndarray:
        """``(groups, classes)`` veh/h for ``inter`` (zeros when absent); checks the shape."""
        a = self.flows_veh_h.get(inter.id)
        if a is None:
            return np.zeros((len(inter.groups), _N_CLASSES))
        if a.shape[0] != len(inter.groups):
            raise DemandError(
                f"demand has {a.shape[0]} signal groups, the intersection has {len(inter.groups)}",
                where=f"{self.source or 'demand'}: intersection {inter.id}",
            )
        return a

    def pcu_h(self, inter: Intersection, pcu: PcuSet | str = "hanoi") -> np.ndarray:
        """Flow per signal group of ``inter`` in pcu/h."""
        return flows_to_pcu_h(self.for_intersection(inter), pcu)

    def movement_pcu_h(self, inter: Intersection, pcu: PcuSet | str = "hanoi") -> dict[tuple[str, str], float]:
        """Flow per known movement ``(from_edge, to_edge)`` of ``inter`` in pcu/h."""
        by_pair = self.movement_veh_h.get(inter.id, {})
        if not by_pair:
            return {}
        keys = list(by_pair)
        values = flows_to_pcu_h(np.stack([by_pair[k] for k in keys]), pcu)
        return {k: float(v) for k, v in zip(keys, values, strict=True)}

    def check(self, network: Network | Iterable[Intersection]) -> None:
        """Raise :class:`DemandError` if an intersection, a group count or a movement does not fit."""
        inters = {i.id: i for i in network}
        for iid in self.flows_veh_h:
            if iid not in inters:
                raise DemandError(f"unknown intersection {iid!r}", where=self.source or "demand")
            self.for_intersection(inters[iid])
        for iid, by_pair in self.movement_veh_h.items():
            index = movement_index(inters[iid])
            for pair in by_pair:
                if pair not in index:
                    raise DemandError(
                        f"unknown edge pair {pair[0]} -> {pair[1]}: no signal group of intersection {iid} serves it",
                        where=self.source or "demand",
                    )

    def total_veh_h(self) -> float:
        return float(sum(a.sum() for a in self.flows_veh_h.values()))

    def __add__(self, other: Demand) -> Demand:
        if not isinstance(other, Demand):
            return NotImplemented
        flows = {k: np.array(v) for k, v in self.flows_veh_h.items()}
        for k, v in other.flows_veh_h.items():
            if k in flows:
                if flows[k].shape != v.shape:
                    raise DemandError(f"cannot add demands with different groups at intersection {k}")
                flows[k] = flows[k] + v
            else:
                flows[k] = np.array(v)
        moves: dict[str, dict[tuple[str, str], np.ndarray]] = {
            k: {p: np.array(v) for p, v in d.items()} for k, d in self.movement_veh_h.items()
        }
        for k, d in other.movement_veh_h.items():
            inner = moves.setdefault(k, {})
            for p, v in d.items():
                inner[p] = inner[p] + v if p in inner else np.array(v)
        source = ",".join(s for s in (self.source, other.source) if s)
        return Demand(
            flows,
            moves,
            source=source,
            begin_s=self.begin_s if self.begin_s is not None else other.begin_s,
            end_s=self.end_s if self.end_s is not None else other.end_s,
            warnings=self.warnings + other.warnings,
        )


class _Accumulator:
    """Mutable sums of group and movement flows while a file is read."""

    def __init__(self, inters: Mapping[str, Intersection]) -> None:
        self.inters = inters
        self.groups: dict[str, np.ndarray] = {}
        self.moves: dict[str, dict[tuple[str, str], np.ndarray]] = {}

    def _group_array(self, iid: str) -> np.ndarray:
        arr = self.groups.get(iid)
        if arr is None:
            arr = self.groups[iid] = np.zeros((len(self.inters[iid].groups), _N_CLASSES))
        return arr

    def add_group(self, iid: str, gi: int, vec: np.ndarray) -> None:
        self._group_array(iid)[gi] += vec

    def add_movement(
        self, iid: str, pair: tuple[str, str], targets: Sequence[tuple[int, float]], vec: np.ndarray
    ) -> None:
        arr = self._group_array(iid)
        for gi, share in targets:
            arr[gi] += share * vec
        inner = self.moves.setdefault(iid, {})
        inner[pair] = inner[pair] + vec if pair in inner else np.array(vec, dtype=float)

    def demand(self, *, source: str, scale: float = 1.0, **kw: Any) -> Demand:
        return Demand(
            {k: v * scale for k, v in self.groups.items()},
            {k: {p: v * scale for p, v in d.items()} for k, d in self.moves.items()},
            source=source,
            **kw,
        )


def _group_index(inter: Intersection, gid: str, where: str) -> int:
    ids = inter.group_ids
    if gid not in ids:
        raise DemandError(
            f"unknown signal group {gid!r} of intersection {inter.id} (known: {', '.join(ids)})", where=where
        )
    return ids.index(gid)


def movement_index(inter: Intersection) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """``(from_edge, to_edge) -> [(group index, share)]`` for the vehicle movements of ``inter``.

    Shares of one movement sum to 1, in proportion to the lanes each group's
    movement lists (1 when none are listed). Pedestrian groups are left out.
    """
    raw: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for gi, g in enumerate(inter.groups):
        if g.kind is GroupKind.PEDESTRIAN:
            continue
        for mv in g.movements:
            if mv.turn == "p":
                continue
            raw[(mv.from_edge, mv.to_edge)].append((gi, float(max(len(mv.lanes), 1))))
    out: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for key, items in raw.items():
        merged: dict[int, float] = defaultdict(float)
        for gi, w in items:
            merged[gi] += w
        tot = sum(merged.values())
        out[key] = [(gi, w / tot) for gi, w in sorted(merged.items())]
    return out


# ---- entry point -----------------------------------------------------------------------------


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    if suffix == ".xml":
        return "xml"
    try:
        with path.open("r", encoding="utf-8-sig") as f:
            head = f.read(512).lstrip()
    except OSError:
        return "csv"
    if head.startswith("<"):
        return "xml"
    if head.startswith(("[", "{")):
        return "json"
    return "csv"


def load_demand(
    path: str | Path | Sequence[str | Path],
    network: Network,
    *,
    begin_s: float | None = None,
    end_s: float | None = None,
) -> Demand:
    """Read demand from one file or several (see the module docstring for the formats).

    Count files (CSV/JSON) are read one by one; SUMO XML files are read
    together (a ``vType`` defined in one file may be used in another) over
    one analysis window ``[begin_s, end_s)`` (default: the files' span).
    The result is the sum.
    """
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not paths:
        raise DemandError("no demand file given", where="demand")
    for p in paths:
        if not p.is_file():
            raise DemandError("file not found", where=str(p))
    xml = [p for p in paths if _kind(p) == "xml"]
    total: Demand | None = None
    for p in paths:
        if p in xml:
            continue
        d = load_turning_counts(p, network)
        total = d if total is None else total + d
    if xml:
        d = load_sumo_demand(xml, network, begin_s=begin_s, end_s=end_s)
        total = d if total is None else total + d
    assert total is not None
    return total


# ---- turning counts --------------------------------------------------------------------------

_FIELD_ALIASES = {
    "intersection": "intersection",
    "intersection_id": "intersection",
    "from_edge": "from_edge",
    "to_edge": "to_edge",
    "group": "group",
    "signal_group": "group",
    "class": "class",
    "vehicle_class": "class",
    "veh_h": "veh_h",
    "flow_veh_h": "veh_h",
    "phf": "phf",
}


def _rows_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DemandError(f"not UTF-8 text: {e.reason}", where=str(path)) from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise DemandError("empty CSV file (expected a header row)", where=str(path))
    header = {h: _FIELD_ALIASES.get(h.strip().lower()) for h in reader.fieldnames if h is not None}
    present = set(header.values())
    for need in ("intersection", "class", "veh_h"):
        if need not in present:
            raise DemandError(
                f"missing column {need!r} in the header (have: {', '.join(reader.fieldnames)})", where=f"{path}: line 1"
            )
    if "group" not in present and not {"from_edge", "to_edge"} <= present:
        raise DemandError("need a 'group' column or both 'from_edge' and 'to_edge' columns", where=f"{path}: line 1")
    for row in reader:
        rec = {
            header[k]: (v.strip() if isinstance(v, str) else v)
            for k, v in row.items()
            if k is not None and header.get(k)
        }
        if all(v in (None, "") for v in rec.values()):
            continue
        yield f"{path}: line {reader.line_num}", rec


def _rows_json(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DemandError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", where=str(path)) from None
    key = "counts"
    if isinstance(data, Mapping):
        if "counts" not in data or not isinstance(data["counts"], list):
            raise DemandError('expected a list of count records or {"counts": [...]}', where=str(path))
        data = data["counts"]
    elif not isinstance(data, list):
        raise DemandError('expected a list of count records or {"counts": [...]}', where=str(path))
    for k, rec in enumerate(data):
        where = f"{path}: {key}[{k}]"
        if not isinstance(rec, Mapping):
            raise DemandError("each count record must be a JSON object", where=where)
        yield where, {_FIELD_ALIASES[f.lower()]: v for f, v in rec.items() if f.lower() in _FIELD_ALIASES}


def _as_float(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool):
        raise DemandError(f"must be a number, got {value!r}", where=f"{where}, field {name!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DemandError(f"must be a number, got {value!r}", where=f"{where}, field {name!r}") from None
    if not math.isfinite(v):
        raise DemandError(f"must be a finite number, got {value!r}", where=f"{where}, field {name!r}")
    return v


def load_turning_counts(path: str | Path, network: Network) -> Demand:
    """Read a CSV or JSON turning-count file (schema in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DemandError("file not found", where=str(path))
    inters = {i.id: i for i in network}
    lookups: dict[str, dict[tuple[str, str], list[tuple[int, float]]]] = {}
    acc = _Accumulator(inters)
    rows = _rows_json(path) if _kind(path) == "json" else _rows_csv(path)
    n_rows = 0
    for where, rec in rows:
        n_rows += 1
        iid = rec.get("intersection")
        if iid in (None, ""):
            raise DemandError("missing intersection id", where=f"{where}, field 'intersection'")
        iid = str(iid)
        if iid not in inters:
            known = sorted(inters)
            more = ", ..." if len(known) > 10 else ""
            raise DemandError(
                f"unknown intersection {iid!r} (known: {', '.join(known[:10])}{more})",
                where=f"{where}, field 'intersection'",
            )
        inter = inters[iid]
        cname = rec.get("class")
        if cname in (None, ""):
            raise DemandError("missing vehicle class", where=f"{where}, field 'class'")
        try:
            cls = vehicle_class(str(cname))
        except ValueError as e:
            raise DemandError(str(e), where=f"{where}, field 'class'") from None
        if rec.get("veh_h") in (None, ""):
            raise DemandError("missing flow", where=f"{where}, field 'veh_h'")
        veh_h = _as_float(rec["veh_h"], where, "veh_h")
        if veh_h < 0:
            raise DemandError(f"must be >= 0 veh/h, got {rec['veh_h']!r}", where=f"{where}, field 'veh_h'")
        phf = 1.0
        if rec.get("phf") not in (None, ""):
            phf = _as_float(rec["phf"], where, "phf")
            if not 0 < phf <= 1:
                raise DemandError(
                    f"peak-hour factor must be in (0, 1], got {rec['phf']!r}", where=f"{where}, field 'phf'"
                )
        vec = np.zeros(_N_CLASSES)
        vec[VEHICLE_CLASSES.index(cls)] = veh_h / phf
        gid = rec.get("group")
        if gid not in (None, ""):
            acc.add_group(iid, _group_index(inter, str(gid), where=f"{where}, field 'group'"), vec)
        else:
            fe, te = rec.get("from_edge"), rec.get("to_edge")
            for name, v in (("from_edge", fe), ("to_edge", te)):
                if v in (None, ""):
                    raise DemandError(
                        "need 'group' or both 'from_edge' and 'to_edge'", where=f"{where}, field {name!r}"
                    )
            if iid not in lookups:
                lookups[iid] = movement_index(inter)
            key = (str(fe), str(te))
            if key not in lookups[iid]:
                froms = sorted({a for a, _ in lookups[iid]})
                field_name = "from_edge" if key[0] not in froms else "to_edge"
                hint = (
                    f"incoming edges: {', '.join(froms)}"
                    if field_name == "from_edge"
                    else f"from {key[0]} it serves: {', '.join(sorted(b for a, b in lookups[iid] if a == key[0]))}"
                )
                raise DemandError(
                    f"unknown edge pair {key[0]} -> {key[1]}: no signal group of intersection {iid} serves it ({hint})",
                    where=f"{where}, field {field_name!r}",
                )
            acc.add_movement(iid, key, lookups[iid][key], vec)
    if n_rows == 0:
        raise DemandError("no count records", where=str(path))
    return acc.demand(source=str(path))


# ---- SUMO XML --------------------------------------------------------------------------------


@dataclass
class _El:
    tag: str
    attrib: dict[str, str]
    line: int
    path: Path
    children: list[_El] = field(default_factory=list)

    def where(self, name: str | None = None) -> str:
        ident = f" id={self.attrib['id']!r}" if "id" in self.attrib else ""
        out = f"{self.path}: line {self.line}, <{self.tag}{ident}>"
        return f"{out}, field {name!r}" if name else out


def _parse_xml(path: Path) -> _El:
    parser = expat.ParserCreate()
    root = _El("#document", {}, 0, path)
    stack = [root]

    def start(tag: str, attrs: dict[str, str]) -> None:
        el = _El(tag, dict(attrs), parser.CurrentLineNumber, path)
        stack[-1].children.append(el)
        stack.append(el)

    def end(tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        with path.open("rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as e:
        raise DemandError(
            f"not well-formed XML: {expat.ErrorString(e.code)} (column {e.offset})", where=f"{path}: line {e.lineno}"
        ) from None
    if not root.children:
        raise DemandError("empty XML document", where=str(path))
    return root.children[0]


def _time_s(el: _El, name: str, default: float | None = None) -> float:
    raw = el.attrib.get(name)
    if raw is None:
        if default is None:
            raise DemandError("missing time", where=el.where(name))
        return default
    text = raw.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) not in (3, 4):
                raise ValueError
            mult = [86400.0, 3600.0, 60.0, 1.0][-len(parts) :]
            v = sum(p * m for p, m in zip(parts, mult, strict=True))
        else:
            v = float(text)
    except ValueError:
        raise DemandError(f"must be a time in seconds or [D:]HH:MM:SS, got {raw!r}", where=el.where(name)) from None
    if not math.isfinite(v) or v < 0:
        raise DemandError(f"must be a finite time >= 0 s, got {raw!r}", where=el.where(name))
    return v


def _positive(el: _El, name: str, *, allow_zero: bool = False) -> float:
    raw = el.attrib[name]
    try:
        v = float(raw)
    except ValueError:
        raise DemandError(f"must be a number, got {raw!r}", where=el.where(name)) from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise DemandError(f"must be a finite number {'>=' if allow_zero else '>'} 0, got {raw!r}", where=el.where(name))
    return v


_DEFAULT_TYPES: Mapping[str, VehicleClass | None] = MappingProxyType(
    {
        "DEFAULT_VEHTYPE": VehicleClass.CAR,
        "DEFAULT_TAXITYPE": VehicleClass.CAR,
        "DEFAULT_BIKETYPE": VehicleClass.BICYCLE,
        "DEFAULT_PEDTYPE": None,
        "DEFAULT_CONTAINERTYPE": None,
        "DEFAULT_RAILTYPE": None,
    }
)


def _class_vector(cls: VehicleClass | None) -> np.ndarray:
    v = np.zeros(_N_CLASSES)
    if cls is not None:
        v[VEHICLE_CLASSES.index(cls)] = 1.0
    return v


class _SumoReader:
    """Collects definitions, then counts vehicles per route and class over a window."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.types: dict[str, np.ndarray] = {k: _class_vector(v) for k, v in _DEFAULT_TYPES.items()}
        self.type_prob: dict[str, float] = {}
        self.routes: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        self.edge_nodes: dict[str, tuple[Any, Any]] = {}
        graph = network.graph
        for u, v, data in graph.edges(data=True):
            if "id" in data:
                self.edge_nodes[str(data["id"])] = (u, v)
        self.known_edges = set(self.edge_nodes)
        # Edges the source network has but the road graph leaves out (rail, tram, footpaths, and
        # parallel edges between two junctions): a route over them is valid, it just loads no
        # road movement of ours (a tram line in a city's route file is not an error).
        self.known_edges.update(str(e) for e in graph.graph.get("other_edges", ()))
        self.pairs: dict[tuple[str, str], list[tuple[str, list[tuple[int, float]]]]] = defaultdict(list)
        for inter in network:
            for key, targets in movement_index(inter).items():
                self.known_edges.update(key)
                self.pairs[key].append((inter.id, targets))
        self._route_cache: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.unmatched: Counter[tuple[str, str, str]] = Counter()

    # -- definitions ---------------------------------------------------------------------------
    def vtype(self, el: _El) -> None:
        tid = el.attrib.get("id")
        if not tid:
            raise DemandError("a vType needs an id", where=el.where("id"))
        vclass = el.attrib.get("vClass", "passenger")
        cls = vehicle_class_from_sumo(vclass)
        if cls is None and vclass not in {
            "pedestrian",
            "rail",
            "rail_urban",
            "rail_electric",
            "rail_fast",
            "tram",
            "ship",
            "container",
            "cable_car",
            "subway",
            "aircraft",
            "wheelchair",
            "drone",
            "ignoring",
        }:
            raise DemandError(f"unknown SUMO vClass {vclass!r}", where=el.where("vClass"))
        self.types[tid] = _class_vector(cls)
        if "probability" in el.attrib:
            self.type_prob[tid] = _positive(el, "probability", allow_zero=True)

    def vtype_distribution(self, el: _El) -> None:
        did = el.attrib.get("id")
        if not did:
            raise DemandError("a vTypeDistribution needs an id", where=el.where("id"))
        members: list[tuple[str, float]] = []
        for child in el.children:
            if child.tag == "vType":
                self.vtype(child)
                members.append((child.attrib["id"], self.type_prob.get(child.attrib["id"], 1.0)))
        if "vTypes" in el.attrib:
            names = el.attrib["vTypes"].split()
            probs: list[float]
            if "probabilities" in el.attrib:
                try:
                    probs = [float(p) for p in el.attrib["probabilities"].split()]
                except ValueError:
                    raise DemandError("probabilities must be numbers", where=el.where("probabilities")) from None
                if len(probs) != len(names):
                    raise DemandError("needs one probability per vType", where=el.where("probabilities"))
            else:
                probs = [self.type_prob.get(n, 1.0) for n in names]
            for n, p in zip(names, probs, strict=True):
                if n not in self.types:
                    raise DemandError(f"unknown vType {n!r}", where=el.where("vTypes"))
                members.append((n, p))
        tot = sum(p for _, p in members)
        if not members or tot <= 0:
            raise DemandError("a vTypeDistribution needs vTypes with positive probability", where=el.where())
        self.types[did] = sum((p / tot) * self.types[n] for n, p in members)

    def _edges(self, el: _El) -> tuple[str, ...]:
        raw = el.attrib.get("edges")
        if raw is None:
            raise DemandError("a route needs 'edges'", where=el.where("edges"))
        edges = tuple(raw.split())
        if not edges:
            raise DemandError("empty route", where=el.where("edges"))
        self._check_edges(el, "edges", edges)
        return edges

    def _check_edges(self, el: _El, name: str, edges: Iterable[str]) -> None:
        if not self.known_edges:
            return
        for e in edges:
            if e not in self.known_edges:
                raise DemandError(f"edge {e!r} is not in the network", where=el.where(name))

    def route(self, el: _El) -> tuple[str, ...]:
        if "refId" in el.attrib:
            return self._route_ref(el, el.attrib["refId"], "refId")[0][0]
        edges = self._edges(el)
        if "id" in el.attrib:
            self.routes[el.attrib["id"]] = [(edges, 1.0)]
        return edges

    def route_distribution(self, el: _El) -> list[tuple[tuple[str, ...], float]]:
        members: list[tuple[tuple[str, ...], float]] = []
        for child in el.children:
            if child.tag == "route":
                p = _positive(child, "probability", allow_zero=True) if "probability" in child.attrib else 1.0
                if "refId" in child.attrib:
                    for edges, q in self._route_ref(child, child.attrib["refId"], "refId"):
                        members.append((edges, p * q))
                else:
                    members.append((self._edges(child), p))
                    if "id" in child.attrib:
                        self.routes[child.attrib["id"]] = [(members[-1][0], 1.0)]
        if "routes" in el.attrib:
            names = el.attrib["routes"].split()
            probs = [1.0] * len(names)
            if "probabilities" in el.attrib:
                try:
                    probs = [float(p) for p in el.attrib["probabilities"].split()]
                except ValueError:
                    raise DemandError("probabilities must be numbers", where=el.where("probabilities")) from None
                if len(probs) != len(names):
                    raise DemandError("needs one probability per route", where=el.where("probabilities"))
            for n, p in zip(names, probs, strict=True):
                for edges, q in self._route_ref(el, n, "routes"):
                    members.append((edges, p * q))
        tot = sum(p for _, p in members)
        if not members or tot <= 0:
            raise DemandError("a routeDistribution needs routes with positive probability", where=el.where())
        dist = [(e, p / tot) for e, p in members]
        if "id" in el.attrib:
            self.routes[el.attrib["id"]] = dist
        return dist

    def _route_ref(self, el: _El, rid: str, name: str) -> list[tuple[tuple[str, ...], float]]:
        if rid not in self.routes:
            raise DemandError(f"unknown route {rid!r}", where=el.where(name))
        return self.routes[rid]

    def define(self, root: _El) -> None:
        for el in root.children:
            if el.tag == "vType":
                self.vtype(el)
            elif el.tag == "vTypeDistribution":
                self.vtype_distribution(el)
            elif el.tag == "route":
                self.route(el)
            elif el.tag == "routeDistribution":
                self.route_distribution(el)

    # -- vehicles ------------------------------------------------------------------------------
    def _shortest(self, el: _El, stops: Sequence[str]) -> tuple[str, ...]:
        key = tuple(stops)
        if key in self._route_cache:
            return self._route_cache[key]
        graph = self.network.graph
        other = graph.graph.get("other_edges", frozenset())
        for name, e in zip(("from",) + ("via",) * (len(stops) - 2) + ("to",), stops, strict=True):
            if e in other:
                return ()  # starts, passes or ends off the road graph (a parallel or non-road edge): no load
            if e not in self.edge_nodes:
                raise DemandError(f"edge {e!r} is not in the road graph", where=el.where(name))

        def weight(u: Any, v: Any, d: Mapping[str, Any]) -> float:
            return float(d.get("length_m", 1.0)) / max(float(d.get("free_speed_m_s", 1.0)), 0.1)

        out = [stops[0]]
        for a, b in itertools.pairwise(stops):
            if a == b:
                continue
            src, dst = self.edge_nodes[a][1], self.edge_nodes[b][0]
            try:
                nodes = nx.shortest_path(graph, src, dst, weight=weight)
            except nx.NetworkXNoPath:
                if other:  # a real network: SUMO routes what the node graph cannot (turn-level links)
                    self._route_cache[key] = ()
                    return ()
                raise DemandError(
                    f"no path from edge {a!r} to edge {b!r} on the road graph", where=el.where()
                ) from None
            for u, v in itertools.pairwise(nodes):
                out.append(str(graph.edges[u, v]["id"]))
            out.append(b)
        self._route_cache[key] = tuple(out)
        return self._route_cache[key]

    def vehicle_routes(self, el: _El) -> list[tuple[tuple[str, ...], float]]:
        for child in el.children:
            if child.tag == "route":
                return [(self._edges(child), 1.0)]
            if child.tag == "routeDistribution":
                return self.route_distribution(child)
        if "route" in el.attrib:
            return self._route_ref(el, el.attrib["route"], "route")
        if "from" in el.attrib or "to" in el.attrib:
            for name in ("from", "to"):
                if not el.attrib.get(name):
                    raise DemandError("needs both 'from' and 'to' edges", where=el.where(name))
            stops = [el.attrib["from"].strip(), *el.attrib.get("via", "").split(), el.attrib["to"].strip()]
            return [(self._shortest(el, stops), 1.0)]
        if any(k in el.attrib for k in ("fromJunction", "toJunction", "fromTaz", "toTaz", "fromXY", "toXY")):
            raise DemandError(
                "junction/TAZ/XY origins are not supported; give from/to edges or a route", where=el.where()
            )
        raise DemandError("needs a route (route=, <route edges=...>) or from/to edges", where=el.where())

    def vehicle_type(self, el: _El) -> np.ndarray:
        tid = el.attrib.get("type", "DEFAULT_VEHTYPE")
        if tid not in self.types:
            raise DemandError(f"unknown vType {tid!r}", where=el.where("type"))
        return self.types[tid]

    def flow_span(self, el: _El) -> tuple[float, float, float]:
        """(begin, end, vehicles per second) of a ``<flow>``."""
        begin = _time_s(el, "begin", 0.0)
        specs = [k for k in ("vehsPerHour", "period", "probability") if k in el.attrib]
        if len(specs) > 1:
            raise DemandError(
                f"give only one of vehsPerHour, period, probability (got {', '.join(specs)})", where=el.where(specs[1])
            )
        rate: float | None = None
        if specs == ["vehsPerHour"]:
            rate = _positive(el, "vehsPerHour", allow_zero=True) / 3600.0
        elif specs == ["period"]:
            raw = el.attrib["period"].strip()
            if raw.startswith("exp(") and raw.endswith(")"):
                try:
                    rate = float(raw[4:-1])
                except ValueError:
                    raise DemandError(f"must be a number or exp(rate), got {raw!r}", where=el.where("period")) from None
                if not math.isfinite(rate) or rate < 0:
                    raise DemandError(f"exp() rate must be >= 0, got {raw!r}", where=el.where("period"))
            else:
                rate = 1.0 / _positive(el, "period")
        elif specs == ["probability"]:
            rate = _positive(el, "probability", allow_zero=True)
            if rate > 1:
                raise DemandError(
                    f"probability per second must be <= 1, got {el.attrib['probability']!r}",
                    where=el.where("probability"),
                )
        number = _positive(el, "number", allow_zero=True) if "number" in el.attrib else None
        if rate is None and number is None:
            raise DemandError("a flow needs vehsPerHour, period, probability or number", where=el.where())
        end_attr = _time_s(el, "end") if "end" in el.attrib else None
        if rate is not None and number is not None:
            end = begin + (number / rate if rate > 0 else 0.0)
            if end_attr is not None:
                end = min(end, end_attr)
        else:
            end = end_attr if end_attr is not None else _DAY_S
        if end < begin:
            raise DemandError(f"end ({end:g} s) is before begin ({begin:g} s)", where=el.where("end"))
        if rate is None:
            assert number is not None
            rate = number / (end - begin) if end > begin else 0.0
        return begin, end, rate

    def count(self, roots: Sequence[_El], begin_s: float | None, end_s: float | None) -> Demand:
        items: list[tuple[_El, str, float, float, float]] = []  # (el, kind, t0, t1, rate or 1)
        for root in roots:
            for el in root.children:
                if el.tag in ("vehicle", "trip"):
                    raw = el.attrib.get("depart")
                    if raw is None:
                        raise DemandError("missing departure time", where=el.where("depart"))
                    if raw in ("triggered", "containerTriggered", "split", "begin"):
                        continue
                    t = _time_s(el, "depart")
                    items.append((el, "vehicle", t, t, 1.0))
                elif el.tag == "flow":
                    b, e, r = self.flow_span(el)
                    items.append((el, "flow", b, e, r))
        if not items:
            raise DemandError("no vehicle, trip or flow elements", where=",".join(str(r.path) for r in roots))
        t0 = begin_s if begin_s is not None else min(i[2] for i in items)
        t1 = end_s if end_s is not None else max(i[3] for i in items)
        if t1 < t0:
            raise DemandError(f"analysis window end {t1:g} s is before its begin {t0:g} s", where="demand window")
        span = t1 - t0 if t1 - t0 >= 1.0 else 3600.0
        inters = self.network.by_id if isinstance(self.network, Network) else {i.id: i for i in self.network}
        acc = _Accumulator(inters)
        for el, kind, a, b, rate in items:
            if kind == "vehicle":
                # The default window ends at the last departure, which counts.
                inside = t0 <= a < t1 or (a == t1 and end_s is None)
                n = 1.0 if inside else 0.0
            else:
                n = rate * max(0.0, min(b, t1) - max(a, t0))
            if n <= 0:
                continue
            classes = self.vehicle_type(el)
            if not classes.any():
                continue
            for edges, p in self.vehicle_routes(el):
                self._assign(acc, inters, edges, n * p * classes)
        hours = span / 3600.0
        warnings = []
        for (iid, a, b), n in self.unmatched.most_common(10):
            warnings.append(
                f"route edges {a} -> {b} cross signalised intersection {iid} but no signal group "
                f"serves that movement ({n:g} vehicles ignored)"
            )
        if len(self.unmatched) > 10:
            warnings.append(f"... and {len(self.unmatched) - 10} more unserved movements")
        return acc.demand(
            source=",".join(str(r.path) for r in roots),
            scale=1.0 / hours,
            begin_s=t0,
            end_s=t0 + span,
            warnings=tuple(warnings),
        )

    def _assign(
        self, acc: _Accumulator, inters: Mapping[str, Intersection], edges: Sequence[str], vec: np.ndarray
    ) -> None:
        graph = self.network.graph
        for a, b in itertools.pairwise(edges):
            served = self.pairs.get((a, b))
            if served:
                for iid, targets in served:
                    acc.add_movement(iid, (a, b), targets, vec)
            elif a in self.edge_nodes:
                node = self.edge_nodes[a][1]
                iid = str(graph.nodes[node].get("tls") or node) if node in graph.nodes else str(node)
                if iid in inters:
                    self.unmatched[(iid, a, b)] += float(vec.sum())


def load_sumo_demand(
    paths: str | Path | Sequence[str | Path],
    network: Network,
    *,
    begin_s: float | None = None,
    end_s: float | None = None,
) -> Demand:
    """Read SUMO route/flow/trip files (read together) into a :class:`Demand` (veh/h over the window)."""
    ps = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    for p in ps:
        if not p.is_file():
            raise DemandError("file not found", where=str(p))
    roots = [_parse_xml(p) for p in ps]
    reader = _SumoReader(network)
    for r in roots:
        reader.define(r)
    return reader.count(roots, begin_s, end_s)
