"""KPIs from SUMO's own outputs, overall and per vehicle class.

Sources (all written by SUMO itself, none re-derived from the controller):

* ``--tripinfo-output`` with ``--tripinfo-output.write-unfinished``: one
  ``<tripinfo>`` per vehicle, finished or still running at the end;
* ``--statistic-output``: teleports, vehicles loaded/inserted/running/waiting;
* an ``<edgeData>`` mean-data output: time loss per edge, for the control
  delay per intersection (HCM level of service);
* the vehicles still waiting to be inserted at the end (``pending``), whose
  depart delay the runner reads from SUMO before closing.

Definitions (JSON keys are stable; README "KPI keys"):

* delay of a vehicle = ``timeLoss + departDelay`` (s): time lost against
  free flow, including time waiting to enter the network;
* ``mean_delay_s``, ``p95_delay_s`` over every vehicle that departed or was
  due to depart (finished, running and pending);
* ``mean_travel_time_s`` (``duration``), ``mean_waiting_time_s``
  (``waitingTime``: time at speed < 0.1 m/s), ``mean_stops`` (``waitingCount``);
* ``throughput_veh``: vehicles that arrived; ``unfinished_veh``: running +
  pending at the end; ``teleports``: SUMO's teleport count;
* ``general_delay_s``: mean delay of all but buses (the cost of transit
  priority to general traffic);
* ``bus_person_delay_s``: delay per bus passenger (each bus weighted by its
  occupancy), ``bus_person_delay_h``: total passenger-hours of delay;
* per intersection: ``control_delay_s`` = Σ time loss on its incoming edges /
  vehicles that left them, and ``los`` by HCM 6th ed. Exhibit 19-8 thresholds
  (A ≤ 10, B ≤ 20, C ≤ 35, D ≤ 55, E ≤ 80, F > 80 s/veh). This is
  simulation-derived, not the HCM procedure.

A vehicle's class is its vType's ``vClass`` through
:func:`intersections.vehicle_classes.vehicle_class_from_sumo`, the map timing
uses too; bicycles and classes that are not road traffic count as cars.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from intersections.errors import SimulationError
from intersections.vehicle_classes import vehicle_class_from_sumo

__all__ = [
    "VEHICLE_CLASSES",
    "TripRecord",
    "read_tripinfo",
    "read_statistics",
    "read_vtype_classes",
    "trip_kpis",
    "hcm_los",
    "intersection_delays",
    "DEFAULT_BUS_OCCUPANCY",
    "mean_ci95",
]

VEHICLE_CLASSES = ("motorcycle", "car", "bus", "truck")
# Mean bus load for person-delay when the vType gives none: an assumption for Hanoi's
# city buses at peak (engineering judgement), overridable per vType with personNumber.
DEFAULT_BUS_OCCUPANCY = 40.0
LOS_THRESHOLDS_S = (10.0, 20.0, 35.0, 55.0, 80.0)


@dataclass(frozen=True)
class TripRecord:
    vehicle: str
    vtype: str
    vclass: str  # one of VEHICLE_CLASSES
    depart_s: float
    depart_delay_s: float
    duration_s: float
    waiting_time_s: float
    stops: int
    time_loss_s: float
    finished: bool
    occupancy: float = 1.0

    @property
    def delay_s(self) -> float:
        return self.time_loss_s + self.depart_delay_s


def _class_of(vtype: str, vclass: str | None) -> str:
    if vclass:
        cls = vehicle_class_from_sumo(vclass)
        # Bicycles and anything that is not road traffic fall in with cars, as the KPIs have no such class.
        return cls.value if cls is not None and cls.value in VEHICLE_CLASSES else "car"
    low = vtype.lower()
    for key, name in (("moto", "motorcycle"), ("moped", "motorcycle"), ("bus", "bus"), ("truck", "truck")):
        if key in low:
            return name
    return "car"


def read_vtype_classes(files: Iterable[str | Path]) -> dict[str, tuple[str, float]]:
    """vType id -> (greenwave class, persons per vehicle) from route/additional files."""
    out: dict[str, tuple[str, float]] = {}
    for f in files:
        try:
            for _ev, el in ET.iterparse(str(f), events=("end",)):
                if el.tag == "vType":
                    vid = el.get("id", "")
                    cls = _class_of(vid, el.get("vClass"))
                    persons = el.get("personNumber")
                    occ = float(persons) if persons else (DEFAULT_BUS_OCCUPANCY if cls == "bus" else 1.0)
                    out[vid] = (cls, occ)
                elif el.tag in ("flow", "vehicle", "trip") and el.get("personNumber"):
                    # Occupancy given per flow/vehicle (as bus lines are): keyed "@<id>".
                    out["@" + el.get("id", "")] = ("", float(el.get("personNumber", 1)))
                el.clear()
        except (ET.ParseError, OSError):
            continue  # malformed route files are reported by SUMO itself, with its own message
    return out


def read_tripinfo(path: str | Path, vtypes: Mapping[str, tuple[str, float]] | None = None) -> list[TripRecord]:
    vtypes = vtypes or {}
    out: list[TripRecord] = []
    try:
        for _ev, el in ET.iterparse(str(path), events=("end",)):
            if el.tag != "tripinfo":
                continue
            a = el.attrib
            vt = a.get("vType", "")
            cls, occ = vtypes.get(vt, (_class_of(vt, None), DEFAULT_BUS_OCCUPANCY if "bus" in vt.lower() else 1.0))
            # Per-flow occupancy: vehicle "line.3" of flow "line", or the vehicle itself.
            vid = a["id"]
            per = vtypes.get("@" + vid) or vtypes.get("@" + vid.rsplit(".", 1)[0])
            if per is not None:
                occ = per[1]
            out.append(
                TripRecord(
                    vehicle=a["id"],
                    vtype=vt,
                    vclass=cls,
                    depart_s=float(a.get("depart", "nan")),
                    depart_delay_s=float(a.get("departDelay", 0.0)),
                    duration_s=float(a.get("duration", 0.0)),
                    waiting_time_s=float(a.get("waitingTime", 0.0)),
                    stops=int(float(a.get("waitingCount", 0))),
                    time_loss_s=float(a.get("timeLoss", 0.0)),
                    finished=float(a.get("arrival", -1)) >= 0 and a.get("vaporized", "") in ("", "false"),
                    occupancy=occ,
                )
            )
            el.clear()
    except FileNotFoundError:
        raise SimulationError("SUMO wrote no tripinfo output", where=str(path)) from None
    except ET.ParseError as e:
        raise SimulationError(f"tripinfo output is not valid XML: {e}", where=str(path)) from None
    return out


def read_statistics(path: str | Path) -> dict[str, float]:
    try:
        root = ET.parse(str(path)).getroot()
    except (FileNotFoundError, ET.ParseError) as e:
        raise SimulationError(f"cannot read SUMO statistics output: {e}", where=str(path)) from None
    out: dict[str, float] = {}
    v = root.find("vehicles")
    if v is not None:
        for k in ("loaded", "inserted", "running", "waiting"):
            out[f"vehicles_{k}"] = float(v.get(k, 0))
    t = root.find("teleports")
    out["teleports"] = float(t.get("total", 0)) if t is not None else 0.0
    s = root.find("safety")
    out["collisions"] = float(s.get("collisions", 0)) if s is not None else 0.0
    return out


def _summary(trips: list[TripRecord], pending_delay_s: np.ndarray) -> dict[str, float]:
    delays = np.array([t.delay_s for t in trips] + list(pending_delay_s), dtype=float)
    n_trips = len(trips)
    fin = sum(t.finished for t in trips)
    out: dict[str, float] = {
        "vehicles": float(delays.size),
        "mean_delay_s": float(delays.mean()) if delays.size else 0.0,
        "p95_delay_s": float(np.percentile(delays, 95)) if delays.size else 0.0,
        "mean_travel_time_s": float(np.mean([t.duration_s for t in trips])) if n_trips else 0.0,
        "mean_waiting_time_s": float(np.mean([t.waiting_time_s for t in trips])) if n_trips else 0.0,
        "mean_stops": float(np.mean([t.stops for t in trips])) if n_trips else 0.0,
        "throughput_veh": float(fin),
        "unfinished_veh": float(n_trips - fin + len(pending_delay_s)),
    }
    return out


def trip_kpis(
    trips: list[TripRecord],
    stats: Mapping[str, float],
    *,
    pending: Mapping[str, tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """Overall and per-class KPIs; ``pending``: vehicle -> (class, depart delay) not yet inserted."""
    pending = pending or {}
    pend_all = np.array([d for _c, d in pending.values()], dtype=float)
    out: dict[str, Any] = _summary(trips, pend_all)
    out["teleports"] = float(stats.get("teleports", 0.0))
    out["collisions"] = float(stats.get("collisions", 0.0))
    by_class: dict[str, dict[str, float]] = {}
    for cls in VEHICLE_CLASSES:
        sub = [t for t in trips if t.vclass == cls]
        pend = np.array([d for c, d in pending.values() if c == cls], dtype=float)
        if sub or pend.size:
            by_class[cls] = _summary(sub, pend)
    out["by_class"] = by_class
    general = [t for t in trips if t.vclass != "bus"]
    gen_pend = np.array([d for c, d in pending.values() if c != "bus"], dtype=float)
    out["general_delay_s"] = _summary(general, gen_pend)["mean_delay_s"] if general or gen_pend.size else 0.0
    buses = [t for t in trips if t.vclass == "bus"]
    if buses:
        occ = np.array([t.occupancy for t in buses])
        d = np.array([t.delay_s for t in buses])
        out["bus_person_delay_s"] = float((occ * d).sum() / occ.sum())
        out["bus_person_delay_h"] = float((occ * d).sum() / 3600.0)
    else:
        out["bus_person_delay_s"] = 0.0
        out["bus_person_delay_h"] = 0.0
    return out


def hcm_los(control_delay_s: float) -> str:
    """HCM 6th ed. Exhibit 19-8 level of service for signalised intersections."""
    for letter, limit in zip("ABCDE", LOS_THRESHOLDS_S, strict=True):
        if control_delay_s <= limit:
            return letter
    return "F"


def intersection_delays(edgedata: str | Path, incoming: Mapping[str, Iterable[str]]) -> dict[str, dict[str, Any]]:
    """Control delay and LOS per intersection from an edgeData output.

    ``incoming``: intersection id -> its incoming edge ids. Time loss summed
    over all intervals; vehicles counted as they ``left`` the edge.
    """
    loss: dict[str, float] = {}
    left: dict[str, float] = {}
    try:
        for _ev, el in ET.iterparse(str(edgedata), events=("end",)):
            if el.tag == "edge":
                eid = el.get("id", "")
                loss[eid] = loss.get(eid, 0.0) + float(el.get("timeLoss", 0.0))
                left[eid] = left.get(eid, 0.0) + float(el.get("left", 0.0))
            elif el.tag == "interval":
                el.clear()
    except (FileNotFoundError, ET.ParseError) as e:
        raise SimulationError(f"cannot read SUMO edge data: {e}", where=str(edgedata)) from None
    out: dict[str, dict[str, Any]] = {}
    for inter, edges in incoming.items():
        edges = list(edges)
        tl = sum(loss.get(e, 0.0) for e in edges)
        n = sum(left.get(e, 0.0) for e in edges)
        d = tl / n if n > 0 else 0.0
        out[inter] = {"control_delay_s": round(d, 2), "los": hcm_los(d), "vehicles": int(n)}
    return out


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (Student's t, seeds as samples).

    Seeds are few (3-5), so the normal 1.96 would understate the interval by a
    third or more; one value has no spread (0). An empty input is (NaN, NaN).
    """
    v = np.asarray(list(values), dtype=float)
    if not v.size:
        return float("nan"), float("nan")
    if v.size < 2:
        return float(v.mean()), 0.0
    from scipy.stats import t

    return float(v.mean()), float(t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
