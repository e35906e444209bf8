"""Detector configuration for the measures: which channel serves which phase, and how.

An event log says *that* channel 5 turned on; the measures also need to know
which phase channel 5 belongs to, what kind of detection it is, how far it
sits from the stop bar and how fast traffic approaches (to project advance
hits to the stop bar), and which approach, lane and movement it watches.
ATSPM keeps this per detector as a set of *detection types*
(``DetectionTypes.cs``; ``../shared/reference/atspm-and-operations.md`` §1.3):

====  =========================================  ===========================================
code  type                                       measures that use it here
====  =========================================  ===========================================
AC    advance count                              PCD, arrivals on green, platoon ratio,
                                                 approach delay, approach volume
SBP   stop-bar presence (lane or lane group)     split failure (GOR / ROR5)
LLC   lane-by-lane count                         turning movement counts
LLS   lane-by-lane with speed restriction        yellow and red actuations
====  =========================================  ===========================================

(the other ATSPM codes, B AS AP P D IQ EQ PP, are accepted and carried.)

Two sources, one shape (:class:`DetectorConfig` per channel):

* :func:`config_from_network`: from greenwave's intersection model, with the
  same phase and channel numbering the event recorder uses
  (:func:`controller.events.phase_numbers`, :func:`controller.events.detector_channels`);
  advance loops (one per lane) become AC and LLC; stop-line zones become SBP
  only when short enough to mean "a vehicle is at the stop bar"
  (``max_presence_zone_m``, default 40 m: the camera zones greenwave generates
  in SUMO are 100 m long and would make every green look fully occupied), and
  basic (B, unused) otherwise. A presence zone is never a count detector: one
  long "on" covers a whole standing queue;
* :func:`load_detector_config`: an explicit JSON mapping for field data::

    {"intersections": {"J3": {"detectors": [
        {"channel": 5, "phase": 2, "types": ["AC"], "distance_m": 110, "speed_m_s": 13.9,
         "approach": "EB", "lane": "EB-1", "movement": "T"}]}}}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.events import detector_channels, phase_numbers
from intersections.errors import InputError
from intersections.model import DetectorKind, Intersection
from intersections.network import Network

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "DetectionType",
    "DetectorConfig",
    "IntersectionDetectors",
    "config_from_network",
    "load_detector_config",
    "save_detector_config",
    "MAX_PRESENCE_ZONE_M",
    "sidecar_path",
    "config_for_sumo_net",
]

MAX_PRESENCE_ZONE_M = 40.0


class DetectionType(StrEnum):
    BASIC = "B"
    ADVANCE_COUNT = "AC"
    ADVANCE_SPEED = "AS"
    LANE_COUNT = "LLC"
    LANE_SPEED = "LLS"
    STOP_BAR_PRESENCE = "SBP"
    ADVANCE_PRESENCE = "AP"
    PASSAGE = "P"
    DEMAND = "D"
    INTERMEDIATE_QUEUE = "IQ"
    EXCESSIVE_QUEUE = "EQ"
    PRIORITY = "PP"


@dataclass(frozen=True)
class DetectorConfig:
    """One detector channel of one intersection.

    ``distance_m``: from the stop bar upstream to the detector (0 at the bar);
    ``speed_m_s``: approach speed for projecting hits to the stop bar;
    ``offset_s``: added to every projected time (detector latency, ATSPM's
    "decision point" adjustment); ``zone_m``: detection zone length.
    ``movement``: ``L``, ``T``, ``R`` or a combination (``TR``, ``LTR``).
    """

    channel: int
    phase: int
    types: frozenset[DetectionType]
    distance_m: float = 0.0
    speed_m_s: float = 13.89
    offset_s: float = 0.0
    zone_m: float = 2.0
    approach: str = ""
    lane: str = ""
    movement: str = "T"

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", frozenset(DetectionType(t) for t in self.types))
        where = f"detector channel {self.channel}"
        if self.channel < 1 or self.phase < 1:
            raise InputError("channel and phase must be >= 1", where=where)
        if not (self.distance_m >= 0 and self.speed_m_s > 0 and math.isfinite(self.distance_m)):
            raise InputError("distance_m must be >= 0 and speed_m_s > 0", where=where)

    @property
    def travel_s(self) -> float:
        """Seconds from the detector to the stop bar at the approach speed, plus the offset."""
        return self.distance_m / self.speed_m_s + self.offset_s

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["types"] = sorted(t.value for t in self.types)
        return d


@dataclass(frozen=True)
class IntersectionDetectors:
    """All detector channels of one intersection, and phase descriptions."""

    intersection: str
    detectors: tuple[DetectorConfig, ...]
    phase_names: Mapping[int, str] = field(default_factory=dict)

    def of(self, kind: DetectionType, phase: int | None = None) -> tuple[DetectorConfig, ...]:
        return tuple(d for d in self.detectors if kind in d.types and (phase is None or d.phase == phase))

    def phases_with(self, kind: DetectionType) -> list[int]:
        return sorted({d.phase for d in self.detectors if kind in d.types})

    def to_json(self) -> dict[str, Any]:
        return {
            "detectors": [d.to_json() for d in self.detectors],
            "phase_names": {str(k): v for k, v in self.phase_names.items()},
        }


def _heading(graph: nx.DiGraph[str], edge_id: str) -> str:
    """NB/SB/EB/WB from the road graph's node coordinates (direction of travel)."""
    for u, v, data in graph.edges(data=True):
        if data.get("id") == edge_id:
            a, b = graph.nodes[u], graph.nodes[v]
            dx = float(b.get("x_m", 0.0)) - float(a.get("x_m", 0.0))
            dy = float(b.get("y_m", 0.0)) - float(a.get("y_m", 0.0))
            if abs(dx) >= abs(dy):
                return "EB" if dx >= 0 else "WB"
            return "NB" if dy >= 0 else "SB"
    return ""


def _edge_speed(graph: nx.DiGraph[str]) -> dict[str, float]:
    return {d["id"]: float(d.get("free_speed_m_s", 13.89)) for _u, _v, d in graph.edges(data=True) if "id" in d}


_TURN = {"l": "L", "L": "L", "s": "T", "t": "L", "r": "R", "R": "R"}


def _intersection_config(
    inter: Intersection, graph: nx.DiGraph[str], speeds: Mapping[str, float], max_presence_zone_m: float
) -> IntersectionDetectors:
    phases = phase_numbers(inter)
    channels = detector_channels(inter)
    group_index = {g.id: k for k, g in enumerate(inter.groups)}
    headings: dict[str, str] = {}
    lane_turns: dict[str, set[str]] = {}  # every movement a lane serves, whatever group
    for grp in inter.groups:
        for m in grp.movements:
            for ln in m.lanes:
                lane_turns.setdefault(ln, set()).add(_TURN.get(m.turn, "T"))
    out: list[DetectorConfig] = []
    for d, ch in zip(inter.detectors, channels, strict=True):
        k = group_index.get(d.group)
        if k is None or d.kind in (DetectorKind.PEDESTRIAN, DetectorKind.BUS):
            continue
        grp = inter.groups[k]
        movs = [m for m in grp.movements if d.lane in m.lanes] or list(grp.movements)
        edge = movs[0].from_edge if movs else d.lane.rsplit("_", 1)[0]
        if edge not in headings:
            headings[edge] = _heading(graph, edge)
        served = lane_turns.get(d.lane) or {_TURN.get(m.turn, "T") for m in movs}
        turns = "".join(sorted(served, key="LTR".index)) or "T"
        if d.kind is DetectorKind.ADVANCE:
            # One loop per lane: it counts arrivals (PCD) and, lane by lane, movements (TMC).
            types = {DetectionType.ADVANCE_COUNT, DetectionType.LANE_COUNT}
        elif d.length_m <= max_presence_zone_m:
            types = {DetectionType.STOP_BAR_PRESENCE}
        else:
            types = {DetectionType.BASIC}  # a long presence zone neither counts nor means "at the bar"
        out.append(
            DetectorConfig(
                channel=ch,
                phase=phases[k],
                types=frozenset(types),
                distance_m=d.position_m,
                speed_m_s=speeds.get(edge, 13.89),
                zone_m=d.length_m,
                approach=headings[edge] or edge,
                lane=d.lane,
                movement=turns,
            )
        )
    names: dict[int, str] = {}
    for k, grp in enumerate(inter.groups):
        if grp.is_pedestrian:
            names[phases[k]] = f"{grp.id} (ped)"
            continue
        dirs = sorted({headings.get(m.from_edge) or _heading(graph, m.from_edge) for m in grp.movements} - {""})
        turns = "".join(sorted({_TURN.get(m.turn, "T") for m in grp.movements}, key="LTR".index))
        names[phases[k]] = f"{'/'.join(dirs)} {turns} ({grp.id})".strip()
    return IntersectionDetectors(inter.id, tuple(out), names)


def config_from_network(
    network: Network, *, max_presence_zone_m: float = MAX_PRESENCE_ZONE_M
) -> dict[str, IntersectionDetectors]:
    """Detector configuration of every intersection of a model (with its detectors)."""
    speeds = _edge_speed(network.graph)
    return {i.id: _intersection_config(i, network.graph, speeds, max_presence_zone_m) for i in network.intersections}


def save_detector_config(configs: Mapping[str, IntersectionDetectors], path: str | Path) -> Path:
    p = Path(path)
    doc = {"intersections": {k: v.to_json() for k, v in configs.items()}}
    p.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return p


def load_detector_config(path: str | Path) -> dict[str, IntersectionDetectors]:
    """Read the JSON mapping (module docstring); errors name the file and the entry."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("detector configuration not found", where=str(p)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON: {e}", where=str(p)) from None
    inters = doc.get("intersections") if isinstance(doc, dict) else None
    if not isinstance(inters, dict):
        raise InputError('expected {"intersections": {ID: {"detectors": [...]}}}', where=str(p))
    out: dict[str, IntersectionDetectors] = {}
    known = {f for f in DetectorConfig.__dataclass_fields__}
    for iid, body in inters.items():
        dets = []
        for k, row in enumerate((body or {}).get("detectors", [])):
            where = f"{p}: intersections.{iid}.detectors[{k}]"
            if not isinstance(row, dict) or not {"channel", "phase", "types"} <= row.keys():
                raise InputError("each detector needs channel, phase and types", where=where)
            extra = set(row) - known
            if extra:
                raise InputError(f"unknown keys {sorted(extra)}", where=where)
            try:
                dets.append(DetectorConfig(**{**row, "types": frozenset(row["types"])}))
            except (TypeError, ValueError) as e:
                raise InputError(str(e), where=where) from None
        names = {int(k): str(v) for k, v in (body or {}).get("phase_names", {}).items()}
        out[str(iid)] = IntersectionDetectors(str(iid), tuple(dets), names)
    return out


def sidecar_path(events_path: str | Path) -> Path:
    """Where a detector configuration written next to an event log lives: ``X.csv.gz`` -> ``X.detectors.json``."""
    p = Path(events_path)
    name = p.name
    for ext in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(f"{name}.detectors.json")


def config_for_sumo_net(net_file: str | Path) -> dict[str, IntersectionDetectors]:
    """The configuration of the detectors greenwave generates for a SUMO network (same ids and channels)."""
    import tempfile

    from intersections.loaders.sumo_net import load_sumo_net
    from simulation.detectors import generate_detectors

    network = load_sumo_net(net_file)
    with tempfile.TemporaryDirectory(prefix="gw-det-") as tmp:
        det = generate_detectors(network, net_file, Path(tmp) / "detectors.add.xml")
    return config_from_network(det.network)
