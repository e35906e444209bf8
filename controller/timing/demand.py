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
with ``vType``\\s), read by :mod:`intersections.loaders.sumo_routes` (the
elements it understands are listed there): every consecutive edge pair of a
route that a signal group's movements contain adds the vehicle to that group,
counted over an analysis window and divided by its length in hours.

Bad input raises :class:`~intersections.errors.DemandError` naming the file,
the line (and element) and the field.

Pure: no sumolib; XML is read with the standard library (expat, for line numbers).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from controller.timing.pcu import (
    VEHICLE_CLASSES,
    PcuSet,
    VehicleClass,
    flows_to_pcu_h,
    vehicle_class,
)
from intersections.errors import DemandError
from intersections.loaders.sumo_routes import movement_index, read_sumo_routes
from intersections.model import Intersection
from intersections.network import Network

__all__ = ["Demand", "load_demand", "load_turning_counts", "load_sumo_demand", "movement_index"]

_N_CLASSES = len(VEHICLE_CLASSES)


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
        rec: dict[str, Any] = {}
        for k, v in row.items():
            name = header.get(k) if k is not None else None
            if name:
                rec[name] = v.strip() if isinstance(v, str) else v
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


def load_sumo_demand(
    paths: str | Path | Sequence[str | Path],
    network: Network,
    *,
    begin_s: float | None = None,
    end_s: float | None = None,
) -> Demand:
    """Read SUMO route/flow/trip files (read together) into a :class:`Demand` (veh/h over the window).

    The reading is :func:`intersections.loaders.sumo_routes.read_sumo_routes`; this
    sums its movements into signal groups.
    """
    inters = network.by_id if isinstance(network, Network) else {i.id: i for i in network}
    acc = _Accumulator(inters)
    window = read_sumo_routes(paths, network, acc, begin_s=begin_s, end_s=end_s)
    return acc.demand(
        source=window.source,
        scale=1.0 / window.hours,
        begin_s=window.begin_s,
        end_s=window.end_s,
        warnings=window.warnings,
    )
