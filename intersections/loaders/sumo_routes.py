"""SUMO route, flow and trip files -> vehicles per intersection movement and vehicle class.

Read beside the network loader (:mod:`intersections.loaders.sumo_net`) because it
is a SUMO file format; :func:`controller.timing.demand.load_sumo_demand` turns
what it reads into a timing :class:`~controller.timing.demand.Demand`.

Files (``.rou.xml``, flow and trip files, additional files with
``vType``\\s) give ``<flow>`` (``vehsPerHour``, ``period`` (also
``exp(rate)``), ``probability`` or ``number`` over ``begin``..``end``),
``<vehicle>`` and ``<trip>`` (counted in the analysis window and divided by
its length in hours), routes as ``route="id"`` (a ``<route>`` or
``<routeDistribution>``), an embedded ``<route edges=...>`` or ``from``/``to``
(+ ``via``) edges, which are routed on the road graph by shortest travel time
(``length_m / free_speed_m_s``; the node graph knows no turn restrictions).
Routes over edges the road graph leaves out (rail, tram, footpaths: the graph's
``other_edges``) are valid and load no road movement.
Vehicle classes come from ``vType``/``vTypeDistribution`` ``vClass``
(:func:`~intersections.vehicle_classes.vehicle_class_from_sumo`); pedestrians, rail
and persons are not counted. Every consecutive edge pair of a route that a
signal group's movements contain is handed on as that vehicle's load on it. The analysis
window defaults to the span of the file (earliest begin/depart to latest
end/depart); pass ``begin_s``/``end_s`` for an exact period.

Bad input raises :class:`~intersections.errors.DemandError` naming the file,
the line (and element) and the field.

Pure: no sumolib; XML is read with the standard library (expat, for line numbers).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol
from xml.parsers import expat

import networkx as nx
import numpy as np

from intersections.errors import DemandError
from intersections.model import GroupKind, Intersection
from intersections.network import Network
from intersections.vehicle_classes import (
    SUMO_NOT_ROAD_TRAFFIC,
    VEHICLE_CLASSES,
    VehicleClass,
    vehicle_class_from_sumo,
)

__all__ = ["MovementSink", "RouteWindow", "movement_index", "read_sumo_routes"]

_N_CLASSES = len(VEHICLE_CLASSES)
_DAY_S = 86400.0


class MovementSink(Protocol):
    """Receives each vehicle's load on a movement: ``vec`` vehicles per class over the window.

    ``targets`` are the movement's ``(group index, share)`` from :func:`movement_index`.
    """

    def add_movement(
        self, iid: str, pair: tuple[str, str], targets: Sequence[tuple[int, float]], vec: np.ndarray
    ) -> None: ...


@dataclass(frozen=True)
class RouteWindow:
    """The analysis window read: divide the vehicles handed to the sink by ``hours`` for veh/h."""

    source: str
    hours: float
    begin_s: float
    end_s: float
    warnings: tuple[str, ...] = ()


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
        #: Vehicles (a fractional count: flows times route shares) per unserved (intersection, from, to) movement.
        self.unmatched: defaultdict[tuple[str, str, str], float] = defaultdict(float)

    # -- definitions ---------------------------------------------------------------------------
    def vtype(self, el: _El) -> None:
        tid = el.attrib.get("id")
        if not tid:
            raise DemandError("a vType needs an id", where=el.where("id"))
        vclass = el.attrib.get("vClass", "passenger")
        cls = vehicle_class_from_sumo(vclass)
        if cls is None and vclass not in SUMO_NOT_ROAD_TRAFFIC:
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
        start = np.zeros_like(self.types[members[0][0]])
        self.types[did] = sum(((p / tot) * self.types[n] for n, p in members), start)

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

    def count(
        self, roots: Sequence[_El], begin_s: float | None, end_s: float | None, sink: MovementSink
    ) -> RouteWindow:
        """Hand every vehicle's movements to ``sink`` (vehicles, not yet per hour); the window read."""
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
                self._assign(sink, inters, edges, n * p * classes)
        hours = span / 3600.0
        warnings = []
        worst = sorted(self.unmatched.items(), key=lambda kv: kv[1], reverse=True)[:10]
        for (iid, from_edge, to_edge), ignored in worst:
            warnings.append(
                f"route edges {from_edge} -> {to_edge} cross signalised intersection {iid} but no signal group "
                f"serves that movement ({ignored:g} vehicles ignored)"
            )
        if len(self.unmatched) > 10:
            warnings.append(f"... and {len(self.unmatched) - 10} more unserved movements")
        return RouteWindow(
            source=",".join(str(r.path) for r in roots),
            hours=hours,
            begin_s=t0,
            end_s=t0 + span,
            warnings=tuple(warnings),
        )

    def _assign(
        self, sink: MovementSink, inters: Mapping[str, Intersection], edges: Sequence[str], vec: np.ndarray
    ) -> None:
        graph = self.network.graph
        for a, b in itertools.pairwise(edges):
            served = self.pairs.get((a, b))
            if served:
                for iid, targets in served:
                    sink.add_movement(iid, (a, b), targets, vec)
            elif a in self.edge_nodes:
                node = self.edge_nodes[a][1]
                iid = str(graph.nodes[node].get("tls") or node) if node in graph.nodes else str(node)
                if iid in inters:
                    self.unmatched[(iid, a, b)] += float(vec.sum())


def read_sumo_routes(
    paths: str | Path | Sequence[str | Path],
    network: Network,
    sink: MovementSink,
    *,
    begin_s: float | None = None,
    end_s: float | None = None,
) -> RouteWindow:
    """Read SUMO route/flow/trip files (together: a vType of one may be used in another) into ``sink``.

    The sink sees vehicles in file order, one call per vehicle (or flow) and
    movement, so sums come out the same as they always have.
    """
    ps = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    for p in ps:
        if not p.is_file():
            raise DemandError("file not found", where=str(p))
    roots = [_parse_xml(p) for p in ps]
    reader = _SumoReader(network)
    for r in roots:
        reader.define(r)
    return reader.count(roots, begin_s, end_s, sink)
