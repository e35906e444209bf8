"""SUMO's mesoscopic model under greenwave's engine: its options, what it measures, and what is estimated.

``--model meso`` runs SUMO's queue-based mesoscopic model (Eissfeldt's model as
implemented in SUMO, ``--mesosim``) with junction control (``--meso-junction-control``:
vehicles cross a junction only on green, so the traffic lights greenwave sets
matter, SUMO "Simulation/Meso", section "Intersection Model"). Each edge is a chain of
segments of about 98 m (``--meso-edgelength``), and a segment is one queue for all its
lanes. That changes what can be detected:

* **Lane-area detectors (E2) read nothing**: SUMO accepts them in meso but reports zero
  vehicles, so the stop-line queues, zone counts and occupancy micro reads from them,
  and the exit zones behind ``exit_blocked``, have no measurement.
* **Induction loops (E1) count per segment**, not per lane: a loop counts every vehicle
  that enters the segment holding it (measured on SUMO 1.28: loops on the three lanes
  of one segment report the same count; with the light held red the count stops at the
  vehicles the segment holds). Only their interval counts can be read (no per-vehicle
  data, no last-step values).
* Vehicles have no lane position, so ``getNextTLS`` answers nothing.

What the engine's :class:`~controller.backend.Observation` gets instead (the table
:data:`MESO_FIELDS`, reported with every meso run):

* ``queue_veh``: the delayed input-output estimate of :class:`InputOutputQueue` (pure
  numpy, arrays in and out), per signal group, from a loop where
  the group's stop-line zone begins (arrivals, split over the approach's stop lanes) and
  loops at the start of each exit edge (departures through the junction, attributed to
  the groups feeding that exit that are green, or were within :data:`RECENT_GREEN_S`).
  The zone is the one micro measures (:mod:`simulation.detectors`), so both models
  report the queue over the same stretch of road;
* ``counts``: the zone-entry loop's count, split over the approach's stop lanes, in whole
  vehicles (:class:`MesoReader`);
* ``occupancy``: the estimated queue's cover of the zone (vehicle length over jam
  spacing, at most 5 / 7.5 = 0.67 when full, what a lane-area detector over a packed
  queue shows);
* ``extra`` (buses, emergency vehicles): the next controlled movement on the vehicle's
  route, with the distance to it from its position on the edge;
* ``exit_blocked``: not available (no exit zones); NaN, which the Observation contract
  reads as "not known to be blocked", as for field controllers.

A controller that reads a field the table marks absent is refused before SUMO starts
(:func:`refuse_unmet`), in one line naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
from numba import njit

from controller.arrays import PackedNetwork
from controller.backend import DetectorLayout
from intersections.errors import InputError
from intersections.loaders.sumo_net import tls_of_junctions
from intersections.model import DetectorKind, GroupKind, SignalState
from intersections.network import Network
from simulation.detectors import INTERVAL_S, MIN_SINGLE_LANE_ZONE_M, STOP_LINE_LENGTH_M, upstream_chain
from simulation.native_reads import CheckedReads

__all__ = [
    "Model",
    "MODEL_OPTIONS",
    "model_of",
    "Provision",
    "MESO_FIELDS",
    "refuse_unmet",
    "estimated_fields",
    "MesoLoops",
    "generate_meso_loops",
    "MesoReader",
    "RECENT_GREEN_S",
    "InputOutputQueue",
    "meso_reader",
    "meso_loops",
    "reader_over",
    "MESO_UNSUPPORTED",
    "without_options",
]

#: A car's length and its jam spacing (5 m + SUMO's default 2.5 m minGap): the queue a zone holds.
VEHICLE_LENGTH_M = 5.0
JAM_SPACING_M = 7.5
#: Vehicles entering an exit edge this long after their group's green ended still left on that green
#: (the yellow is part of the group's state; this covers the all-red clearance that follows).
RECENT_GREEN_S = 3.0
#: SUMO's default segment length (``--meso-edgelength``): where a loop's segment begins, its count begins.
MESO_EDGE_LENGTH_M = 98.0
#: A group green this long with no vehicle leaving through it has no standing queue (input-output re-anchor).
CLEAR_S = 5.0
#: How many edges ahead on a route a special vehicle's next controlled movement is looked for.
ROUTE_LOOKAHEAD_EDGES = 8


class Model(StrEnum):
    """SUMO's traffic model for a run."""

    MICRO = "micro"
    MESO = "meso"


#: The SUMO options of each model (``sumo_command`` adds them, before the scenario's and the user's own).
#: Meso also switches the sublane model off (``--lateral-resolution -1``, SUMO's default): a scenario's
#: configuration may set it (hanoi_mixed's motorcycles filter between cars), and meso refuses it.
MODEL_OPTIONS: dict[Model, tuple[str, ...]] = {
    Model.MICRO: (),
    Model.MESO: ("--mesosim", "true", "--meso-junction-control", "true", "--lateral-resolution", "-1"),
}

#: Options a scenario may set that SUMO's meso refuses ("Sublane dynamics are not supported by mesoscopic
#: simulation"): meso has no lanes, let alone sublanes. A meso run leaves them out of the scenario's options.
MESO_UNSUPPORTED = frozenset({"lateral-resolution"})


def without_options(args: Sequence[str], names: frozenset[str]) -> list[str]:
    """``args`` minus the options in ``names`` (``--name value`` or ``--name=value``) and their values."""
    out: list[str] = []
    skipping = False
    for tok in args:
        if tok.startswith("-") and len(tok) > 1 and not tok[1].isdigit():
            skipping = tok.lstrip("-").split("=", 1)[0] in names
            if not skipping:
                out.append(tok)
        elif not skipping:
            out.append(tok)
    return out


def model_of(args: Sequence[str]) -> Model:
    """The model a SUMO command line runs: meso where its last ``--mesosim`` is true.

    A user's ``--sumo-arg "--mesosim true"`` runs meso as surely as ``--model meso``, and
    the backend must then know: micro's lane-area detectors read zero there.
    """
    value: str | None = None
    tokens = list(args)
    for i, tok in enumerate(tokens):
        if tok == "--mesosim":
            nxt = tokens[i + 1] if i + 1 < len(tokens) else "true"
            value = "true" if nxt.startswith("-") else nxt
        elif tok.startswith("--mesosim="):
            value = tok.split("=", 1)[1]
    return Model.MESO if value is not None and value.lower() in ("true", "1", "on", "yes", "x") else Model.MICRO


class Provision(StrEnum):
    """How a model supplies an observation field."""

    MEASURED = "measured"
    ESTIMATED = "estimated"
    UNKNOWN = "unknown"  # not available; the Observation contract defines the unknown value's meaning
    ABSENT = "absent"  # not available and no meaning without it: a controller reading it is refused


#: Per observation field: how meso supplies it and from what (reported with every meso run).
MESO_FIELDS: dict[str, tuple[Provision, str]] = {
    "queue_veh": (
        Provision.ESTIMATED,
        "input-output from zone-entry and exit-edge loop counts and the signal states (no lane-area detectors in meso)",
    ),
    "counts": (Provision.ESTIMATED, "zone-entry loop counts per segment, split over the approach's stop lanes"),
    "occupancy": (Provision.ESTIMATED, "the estimated queue's cover of the stop-line zone"),
    "extra": (Provision.ESTIMATED, "next controlled movement from the vehicle's route (meso has no lane positions)"),
    "exit_blocked": (Provision.UNKNOWN, "no exit zones in meso: not known, read as not blocked"),
}


def refuse_unmet(controller: str, reads: frozenset[str], table: dict[str, tuple[Provision, str]] | None = None) -> None:
    """Refuse, in one line, a meso run of a controller that reads a field meso can neither measure nor estimate."""
    table = MESO_FIELDS if table is None else table
    missing = sorted(f for f in reads if table.get(f, (Provision.ABSENT, ""))[0] is Provision.ABSENT)
    if missing:
        raise InputError(
            f"controller {controller!r} reads {', '.join(missing)}, which the mesoscopic model cannot measure "
            "and greenwave cannot estimate from its loops; run it with --model micro",
            where="--model meso",
        )


def estimated_fields(reads: frozenset[str]) -> dict[str, str]:
    """The run report's note: each field the run reads that meso does not measure, and how it is filled."""
    return {
        f: f"{prov.value}: {how}"
        for f, (prov, how) in MESO_FIELDS.items()
        if f in reads and prov is not Provision.MEASURED
    }


class InputOutputQueue:
    """Queues per signal group from loop counts and signal states: delayed input-output.

    For each group, vehicles counted entering its detection zone (``arrivals``) join the
    queue at the stop line after the zone's free-flow travel time (``delay_ticks``), and
    vehicles counted leaving through the junction (``departures``) leave it:

    ``Q(t) = min(max(0, Q(t-1) + A(t - tau) - D(t)), N(t), storage)``,
    ``N(t) = max(0, N(t-1) + A(t) - D(t))`` (vehicles in the zone, moving or not).

    This is the input-output model of Sharma, Bullock and Bonneson (2007, "Input-output
    and hybrid techniques for real-time prediction of delay and maximum queue length at
    signalized intersections", TRR 2035, pp. 69-80): arrivals at an advance detector
    shifted by the travel time to the stop line, departures at the stop line. Counting
    errors accumulate in any input-output count, so the estimate is re-anchored where
    the signal gives the answer (their hybrid method's idea): a group that has shown
    green for ``clear_ticks`` ticks without a single departure has no standing queue,
    and only the vehicles that entered within the last ``tau`` are still in its zone.
    ``storage_veh`` caps the queue at what the zone can hold (the queue a lane-area
    detector of the same length would measure at most).

    Arrays in, arrays out, shape ``(N, G)``: one tick is one compiled pass over the
    groups (:func:`_io_step`), with no Python loop whatever the network's size.
    ``fed``: the flat indices of the groups that can ever count a vehicle (None: all); the
    pass skips the others, whose arrivals and departures are zero by construction and whose
    queue therefore stays zero (a city's pedestrian and padding columns, half of its
    ``(N, G)`` array).
    """

    def __init__(
        self, delay_ticks: np.ndarray, storage_veh: np.ndarray, *, clear_ticks: int = 5, fed: np.ndarray | None = None
    ) -> None:
        delay = np.asarray(delay_ticks, np.int64)
        if delay.ndim != 2 or (delay < 0).any():
            raise ValueError("delay_ticks must be an (N, G) array of ticks >= 0")
        storage = np.broadcast_to(np.asarray(storage_veh, float), delay.shape)
        if (storage < 0).any():
            raise ValueError("storage_veh must be >= 0")
        if clear_ticks < 1:
            raise ValueError("clear_ticks must be >= 1")
        self.shape = delay.shape
        self.storage_veh = storage.copy()
        self.clear_ticks = int(clear_ticks)
        size = delay.size
        self._delay = np.ascontiguousarray(delay.ravel())
        # Each group's ring of its last tau + 1 arrivals, side by side in one flat array (a group's read
        # and write share a cache line or two, and the whole is a few times smaller than a ring of the
        # longest tau for every group): at tick t, slot t % (tau + 1) of it is written and slot
        # (t - tau) % (tau + 1) holds the arrivals of tau ticks ago.
        self._ring_len = self._delay + 1
        self._ring_start = np.cumsum(self._ring_len) - self._ring_len
        self._ring = np.zeros(int(self._ring_len.sum()))
        self._tick = 0
        # Arrivals of the last tau ticks, still on their way to the queue: a running sum, O(size) a tick.
        self._transit = np.zeros(size)
        self._storage = self.storage_veh.ravel()
        self._q = np.zeros(size)
        self._n = np.zeros(size)
        self._quiet = np.zeros(size, np.int64)
        self.queue_veh = self._q.reshape(self.shape)
        self.in_zone_veh = self._n.reshape(self.shape)
        every = fed is None or len(np.unique(fed)) == size
        self._fed = np.arange(size) if fed is None else np.unique(np.asarray(fed, np.int64))
        if len(self._fed) and not 0 <= self._fed[0] <= self._fed[-1] < size:
            raise ValueError(f"fed must index the {size} groups")
        self._out = np.empty if every else np.zeros  # the groups skipped keep a zero queue and zone

    def update(self, arrivals: np.ndarray, departures: np.ndarray, green: np.ndarray) -> np.ndarray:
        """Advance one tick; returns the queue estimate ``(N, G)`` (vehicles)."""
        a = np.ascontiguousarray(arrivals, np.float64).reshape(-1)
        d = np.ascontiguousarray(departures, np.float64).reshape(-1)
        g = np.ascontiguousarray(green, np.bool_).reshape(-1)
        if not (a.size == d.size == g.size == self._q.size):
            raise ValueError(f"arrivals, departures and green must each have {self._q.size} values")
        self._tick += 1
        # Fresh queue and zone arrays every tick: a caller may keep the previous ones.
        q, n = self._out(self._q.size), self._out(self._n.size)
        _io_step(a, d, g, self._ring, self._ring_start, self._ring_len, self._tick, self._delay, self._transit,
                 self._q, self._n, self._quiet, self.clear_ticks, self._storage, self._fed, q, n)  # fmt: skip
        self._q = q
        self._n = n
        self.queue_veh = self._q.reshape(self.shape)
        self.in_zone_veh = n.reshape(self.shape)
        return self.queue_veh


# numpy's maximum and minimum, element by element (NaN wins, the first of equals is kept).
@njit(cache=True, inline="always")
def _np_max(x, y):
    return x if (x >= y or x != x) else y


@njit(cache=True, inline="always")
def _np_min(x, y):
    return x if (x <= y or x != x) else y


# fmt: off
@njit(cache=True)
def _io_step(
    a, d, green, ring, ring_start, ring_len, tick, delay, transit, q_prev, n_prev, quiet, clear_ticks, storage,
    fed, q, n,  # outputs: q and n, the groups not fed left as they are
):
# fmt: on
    """One tick of :meth:`InputOutputQueue.update`, one element at a time in compiled code.

    The same operations in the same order as the equations in the class docstring,
    element by element, so the results are those of the array form bit for bit; the
    array form cost a dozen numpy calls over a city's ~8,500 groups each tick. The ring,
    the transit sums and the quiet counters are updated in place.
    """
    for k in fed:
        ring[ring_start[k] + tick % ring_len[k]] = a[k]
        at_line = ring[ring_start[k] + (tick - delay[k]) % ring_len[k]]
        transit[k] += a[k] - at_line
        nk = _np_max(n_prev[k] + a[k] - d[k], 0.0)
        qk = _np_min(_np_max(q_prev[k] + at_line - d[k], 0.0), nk)
        quiet[k] = quiet[k] + 1 if (green[k] and d[k] <= 0.0) else 0
        if quiet[k] >= clear_ticks:
            qk = 0.0
            nk = _np_min(nk, _np_max(transit[k], 0.0))
        q[k] = _np_min(qk, storage[k])
        n[k] = nk


@dataclass(frozen=True)
class MesoLoops:
    """The loops of a meso run and how their counts map onto the engine's arrays.

    An *approach pair* is (zone-entry loop, signal group): the vehicles of one group
    entering over one loop. Arrays are flat, for ``np.bincount``: ``pair_*`` (P,) per
    pair, with ``pair_w0`` its stop lanes' share of the loop's vehicles; ``dep_*`` per
    (exit loop, pair) link, with the number of SUMO links; ``det_*`` per model detector: its pair, and the share of the
    pair's vehicles it sees (one over the pair's detectors of its kind).
    """

    additional: Path
    loop_ids: tuple[str, ...]
    pair_loop: np.ndarray
    pair_flat: np.ndarray
    pair_w0: np.ndarray
    dep_loop: np.ndarray
    dep_pair: np.ndarray
    dep_w: np.ndarray
    det_pair: np.ndarray  # (D,) pair of each model detector, -1 none
    det_w: np.ndarray  # (D,)
    det_lane: tuple[str, ...]  # (D,) each model detector's lane
    delay_s: np.ndarray  # (N, G) free-flow time across the stop-line zone
    storage_veh: np.ndarray  # (N, G) vehicles the group's zones hold
    stop_lanes: np.ndarray  # (N, G) stop lanes per group
    zone_m: np.ndarray  # (D,) zone length of each stop-line detector (0 for others)
    movement: dict[tuple[str, str], tuple[int, int]]  # (from edge, to edge) -> (row, group)
    edge_length_m: dict[str, float]


def _zone_entry(
    net: Any, lane: Any, zone_m: float, tls_nodes: dict[str, str], own: str
) -> tuple[Any, float, float]:
    """(lane, position) where the stop-line zone of ``lane`` begins (the chain micro's lane-area detector
    covers), and the distance from that lane's start to the stop line."""
    chain = [lane]
    if float(lane.getLength()) < MIN_SINGLE_LANE_ZONE_M:
        chain = upstream_chain(lane, STOP_LINE_LENGTH_M + 0.5, tls_nodes, own)
    back, to_line = zone_m, 0.0
    for ln in reversed(chain):
        length = float(ln.getLength())
        to_line += length
        if back <= length:
            return ln, max(0.0, length - back), to_line
        back -= length
    return chain[0], 0.0, to_line


def _segment_index(length: float, pos: float) -> int:
    """Which meso segment of an edge of ``length`` holds ``pos`` (SUMO's ``MELoop::numSegmentsFor``: the
    edge cut into ``round(length / meso-edgelength)`` equal segments, at least one; the default length)."""
    segments = max(1, math.floor(length / MESO_EDGE_LENGTH_M + 0.5))
    return min(math.floor(pos * segments / length), segments - 1) if length > 0 else 0


def _segment_start_m(length: float, pos: float) -> float:
    """Where the meso segment holding ``pos`` begins: a loop counts a vehicle when it enters that segment,
    not when it passes the loop."""
    segments = max(1, math.floor(length / MESO_EDGE_LENGTH_M + 0.5))
    return _segment_index(length, pos) * length / segments


class _Segments:
    """The loops placed so far, one per meso segment (a loop counts its whole segment, so two in one
    segment would count the same vehicles: hanoi_city's 7,496 wanted places fall in 5,176 segments)."""

    def __init__(self) -> None:
        self.loops: dict[tuple[str, int], tuple[str, float]] = {}  # (edge, segment) -> (lane, position)
        self._index: dict[tuple[str, int], int] = {}

    def at(self, lane: Any, pos: float) -> int:
        """The index of the loop counting ``pos`` on ``lane`` (placed there if its segment has none)."""
        length = float(lane.getLength())
        pos = min(max(pos + 0.1, 0.1), max(length - 0.1, 0.0))
        key = (lane.getEdge().getID(), _segment_index(length, pos))
        if key not in self._index:
            self._index[key] = len(self.loops)
            self.loops[key] = (lane.getID(), pos)
        return self._index[key]


@dataclass
class _Zones:
    """Where each model detector's arrivals are counted, and per group what its stop-line zones hold."""

    det_loop: np.ndarray  # (D,) loop counting each detector's zone entry, -1 none
    zone_m: np.ndarray  # (D,) stop-line zone length (0 for other detectors)
    delay_s: np.ndarray  # (N, G) mean free-flow time from the count to the stop line
    storage_veh: np.ndarray  # (N, G)
    stop_lanes: np.ndarray  # (N, G)
    entry_of_lane: dict[str, int]  # stop lane -> its zone-entry loop


def _zone_entries(network: Network, net: Any, segments: _Segments, packed: PackedNetwork, n_det: int) -> _Zones:
    """One loop where each stop-line (or advance) detector's zone begins, and each group's zone figures."""
    tls_nodes = tls_of_junctions(net.getTrafficLights())
    n, g = packed.n, packed.g
    det_loop = np.full(n_det, -1, np.int64)
    zone_m = np.zeros(n_det)
    delay_sum, storage, lanes = np.zeros((n, g)), np.zeros((n, g)), np.zeros((n, g))
    entry_of_lane: dict[str, int] = {}
    entry_m: dict[str, float] = {}  # stop lane -> from where its arrivals are counted to the stop line
    k = 0
    for r, inter in enumerate(network.intersections):
        own = inter.tls_id or inter.id
        for det in inter.detectors:
            col = inter.group_index(det.group)
            if det.kind in (DetectorKind.STOP_LINE, DetectorKind.ADVANCE):
                try:
                    lane = net.getLane(det.lane)
                except KeyError:
                    k += 1
                    continue
                if det.lane not in entry_of_lane:
                    zl = det.length_m if det.kind is DetectorKind.STOP_LINE else STOP_LINE_LENGTH_M
                    start_lane, pos, to_line = _zone_entry(net, lane, float(zl), tls_nodes, own)
                    entry_of_lane[det.lane] = segments.at(start_lane, pos)
                    # Counted on entering the loop's segment: the travel to the stop line starts there.
                    entry_m[det.lane] = to_line - _segment_start_m(float(start_lane.getLength()), pos)
                det_loop[k] = entry_of_lane[det.lane]
                if det.kind is DetectorKind.STOP_LINE:
                    zone_m[k] = det.length_m
                    speed = max(float(lane.getSpeed()), 1.0)
                    delay_sum[r, col] += entry_m[det.lane] / speed
                    storage[r, col] += det.length_m / JAM_SPACING_M
                    lanes[r, col] += 1
            k += 1
    delay_s = np.divide(delay_sum, lanes, out=np.zeros((n, g)), where=lanes > 0)
    return _Zones(det_loop, zone_m, delay_s, storage, lanes, entry_of_lane)


def _approach_pairs(
    network: Network, zones: _Zones, n_loops: int, g: int
) -> tuple[dict[tuple[int, int], int], list[float], np.ndarray, np.ndarray]:
    """The approach pairs (entry loop, flat group) in first-seen order, each pair's share of its loop's
    vehicles, and per model detector its pair (-1 none) and its share of the pair's vehicles.

    Before any departure is seen, each stop lane gets an equal share of the vehicles entering its
    approach's zone (a loop counts them all); a detector sees its pair's vehicles over as many
    detectors of its kind as the pair has.
    """
    det_loop = zones.det_loop
    d = len(det_loop)
    sharing = np.bincount(np.array(list(zones.entry_of_lane.values()), np.int64), minlength=n_loops)
    pair_of: dict[tuple[int, int], int] = {}
    w0: list[float] = []
    det_pair = np.full(d, -1, np.int64)
    kinds: list[str] = []
    k = 0
    for r, inter in enumerate(network.intersections):
        for det in inter.detectors:
            if det_loop[k] >= 0:
                key = (int(det_loop[k]), r * g + inter.group_index(det.group))
                if key not in pair_of:
                    pair_of[key] = len(pair_of)
                    w0.append(0.0)
                det_pair[k] = pair_of[key]
                if det.kind is DetectorKind.STOP_LINE:
                    w0[pair_of[key]] += 1.0 / sharing[det_loop[k]]
            kinds.append(det.kind.value)
            k += 1
    per_kind: dict[tuple[int, str], int] = {}
    for kk in range(d):
        if det_pair[kk] >= 0:
            per_kind[(int(det_pair[kk]), kinds[kk])] = per_kind.get((int(det_pair[kk]), kinds[kk]), 0) + 1
    det_w = np.array([1.0 / per_kind[(int(det_pair[kk]), kinds[kk])] if det_pair[kk] >= 0 else 0.0 for kk in range(d)])
    return pair_of, w0, det_pair, det_w


def _departures(
    network: Network, net: Any, segments: _Segments, entry_of_lane: dict[str, int],
    pair_of: dict[tuple[int, int], int], g: int,
) -> tuple[dict[tuple[int, int], float], dict[tuple[str, str], tuple[int, int]]]:  # fmt: skip
    """The loop at the start of every exit edge and the approach pairs whose SUMO links feed it (with
    the number of links: (exit loop, pair) -> links), and each controlled movement's (row, group)."""
    dep: dict[tuple[int, int], float] = {}
    movement: dict[tuple[str, str], tuple[int, int]] = {}
    for r, inter in enumerate(network.intersections):
        group_of: dict[int, int] = {}
        for col, grp in enumerate(inter.groups):
            if grp.kind is GroupKind.PEDESTRIAN:
                continue
            for li in grp.link_indices:
                group_of[li] = col
            for m in grp.movements:
                if m.turn != "p":
                    movement.setdefault((m.from_edge, m.to_edge), (r, col))
        try:
            tls = net.getTLS(inter.tls_id) if inter.tls_id else None
        except KeyError:
            tls = None
        if tls is None:
            continue
        for in_lane, out_lane, index in tls.getConnections():
            served = group_of.get(index)
            entry = entry_of_lane.get(in_lane.getID())
            pair = pair_of.get((entry, r * g + served)) if entry is not None and served is not None else None
            if pair is None or out_lane.getEdge().getFunction() not in ("", "normal"):
                continue
            key = (segments.at(out_lane, 0.0), pair)
            dep[key] = dep.get(key, 0.0) + 1.0
    return dep, movement


def _write_loops(loops: dict[tuple[str, int], tuple[str, float]], out_file: str | Path) -> tuple[Path, tuple[str, ...]]:
    """Write the loops as an additional file; returns it and the loops' ids in read order.

    Short ids, numbered in read order: every tick reads each loop by id, and SUMO looks it up in
    a map ordered by id; ids under 16 characters need no heap copy on the way in (C++'s
    small-string buffer), and zero-padded ones make read order the map's own order.
    """
    width = len(str(max(len(loops) - 1, 0)))
    ids = tuple(f"gw_m{k:0{width}d}" for k in range(len(loops)))
    out = Path(out_file)
    body = [
        f'    <inductionLoop id={quoteattr(lid)} lane={quoteattr(lane)} pos="{pos:.2f}" '
        f'period="{INTERVAL_S}" file="NUL"/>'
        for lid, (lane, pos) in zip(ids, loops.values(), strict=True)
    ]
    out.write_text("\n".join(["<additional>", *body, "</additional>"]) + "\n", encoding="utf-8")
    return out, ids


def generate_meso_loops(network: Network, net_file: str | Path, out_file: str | Path, packed: PackedNetwork,
                        layout: DetectorLayout, sumo_net: Any = None) -> MesoLoops:  # fmt: skip
    """Write the meso run's loops (an additional file) for ``network`` (carrying its stop-line detectors).

    One loop where each stop-line zone begins and one at the start of each exit edge of a
    controlled movement, one per meso segment (a loop counts its whole segment, so two in
    one segment would count the same vehicles). This assumes SUMO's default segment length
    (:data:`MESO_EDGE_LENGTH_M`): with another ``--meso-edgelength`` two places merged here
    may lie in different segments, and both then get the first one's count. ``sumo_net``:
    ``net_file`` as ``sumolib.net.readNet`` reads it by default, when the caller has it
    already (the detectors read the same; parsing hanoi_city's net costs seconds).
    """
    import sumolib

    net = sumo_net if sumo_net is not None else sumolib.net.readNet(str(net_file))
    g = packed.g
    segments = _Segments()
    zones = _zone_entries(network, net, segments, packed, len(layout.ids))
    pair_of, w0, det_pair, det_w = _approach_pairs(network, zones, len(segments.loops), g)
    dep, movement = _departures(network, net, segments, zones.entry_of_lane, pair_of, g)
    additional, ids = _write_loops(segments.loops, out_file)
    return MesoLoops(
        additional=additional,
        loop_ids=ids,
        pair_loop=np.asarray([lp for lp, _f in pair_of], np.int64),
        pair_flat=np.asarray([f for _lp, f in pair_of], np.int64),
        pair_w0=np.asarray(w0, float),
        dep_loop=np.asarray([lp for lp, _p in dep], np.int64),
        dep_pair=np.asarray([pr for _lp, pr in dep], np.int64),
        dep_w=np.asarray(list(dep.values()), float),
        det_pair=det_pair,
        det_w=det_w,
        det_lane=tuple(det.lane for inter in network.intersections for det in inter.detectors),
        delay_s=zones.delay_s,
        storage_veh=zones.storage_veh,
        stop_lanes=zones.stop_lanes,
        zone_m=zones.zone_m,
        movement=movement,
        edge_length_m={e.getID(): float(e.getLength()) for e in net.getEdges()},
    )


_GREEN = int(SignalState.GREEN)
_YELLOW = int(SignalState.YELLOW)
VAR_INTERVAL_NUMBER = 0x25  # traci.constants (identical in libsumo)


class MesoReader:
    """Turns the meso loops' counts and the shown signal states into the observation's arrays, each tick.

    A zone-entry loop counts every vehicle of its segment, whatever lane and group it is
    for. Its vehicles are split over the approach's groups by their share of its stop
    lanes (Sharma et al. 2007 count lane by lane, which meso cannot). Departures are
    counted where they are: at the exit-edge loops, each given to the approach pairs
    whose SUMO links feed that exit and that show green (or did within
    :data:`RECENT_GREEN_S`), by their links and the vehicles each holds (a green movement
    with nobody in its zone sends nobody through). A model detector reports whole
    vehicles: its expected share accumulates and a vehicle is counted each time one more
    is complete, so a lane with a third of an approach's traffic sees every third
    vehicle and gaps as long as its own, instead of a third of every vehicle (an
    actuation on every lane at each arrival: measured on arterial, adaptive's mean delay
    37.2 s with fractions, 30.1 s with whole vehicles, seed 1: docs/results/meso.md).

    Learning the turning shares from the attributed departures instead of the lane
    shares was tried and left out: neutral on arterial and hanoi_mixed, 2-4 s worse on
    grid4x4 (exits fed by several green movements at once are shared by links, not by
    the traffic that used them).

    Per tick: every loop's interval count (in process one compiled pass over libsumo's C++
    getter, :mod:`simulation.native_reads`, else one SWIG getter call per loop; over TraCI one
    subscription result), then three compiled passes (:func:`_attribute`, the estimator's,
    :func:`_observe`): no Python loop over intersections or groups.
    """

    def __init__(self, loops: MesoLoops, packed: PackedNetwork, layout: DetectorLayout, dt_s: float,
                 e2_lanes: Sequence[str] = ()) -> None:  # fmt: skip
        self.loops = loops
        self.n, self.g = packed.n, packed.g
        self.dt_s = float(dt_s)
        self.group_valid = packed.group_valid
        self.estimator = InputOutputQueue(
            np.rint(loops.delay_s / self.dt_s).astype(np.int64),
            loops.storage_veh,
            clear_ticks=max(1, round(CLEAR_S / self.dt_s)),
            fed=loops.pair_flat,  # arrivals and departures only ever go to a pair's group
        )
        self._cum = np.zeros(len(loops.loop_ids))
        self._since_green = np.full(self.n * self.g, np.inf)
        self._stop = layout.stop_line & (loops.det_pair >= 0)
        n_loops = len(loops.loop_ids)
        # Each pair's share of its loop's vehicles: its stop lanes' (a lane shared by two groups counted once).
        per_loop = np.bincount(loops.pair_loop, loops.pair_w0, n_loops).take(loops.pair_loop)
        self._turn = np.divide(loops.pair_w0, per_loop, out=np.zeros(len(loops.pair_w0)), where=per_loop > 0)
        self._carry = np.zeros(len(loops.det_pair))
        self._dep_pair_flat = loops.pair_flat.take(loops.dep_pair) if len(loops.dep_pair) else np.zeros(0, np.int64)
        self._stop_flat = (layout.row * self.g + layout.group)[self._stop]
        self._zone = np.where(loops.zone_m > 0, loops.zone_m, 1.0)[self._stop]
        # Queue KPIs per stop lane (the micro run's lane-area detector order): lanes' share of their groups' queue.
        order = {ln: i for i, ln in enumerate(e2_lanes)}
        stop_all = np.flatnonzero(layout.stop_line)
        self._kpi_src = np.array([order.get(loops.det_lane[k], -1) for k in stop_all.tolist()], np.int64)
        self._kpi_flat = (layout.row * self.g + layout.group)[stop_all]
        self.n_e2 = len(e2_lanes)
        self._ids: tuple[str, ...] = loops.loop_ids
        self._get: Any = None
        self._conn: Any = None
        self._in_process = True
        self._reads: CheckedReads | None = None
        # Each tracked vehicle's route by its route id (SUMO gives a replaced route a new id): fetching
        # the edges is the dearest of the calls :meth:`next_signal` makes for a bus each tick.
        self._routes: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._precompute()

    def bind(self, conn: Any, getter: Any, in_process: bool) -> None:
        """Attach to a started SUMO: over TraCI, subscribe every loop's interval count once; in process,
        read them in one compiled pass where libsumo allows (:mod:`simulation.native_reads`)."""
        self._conn, self._get, self._in_process = conn, getter, in_process
        self._reads = None
        if not in_process:
            for lid in self._ids:
                conn.inductionloop.subscribe(lid, (VAR_INTERVAL_NUMBER,))
        else:
            self._reads = CheckedReads(conn, "inductionloop", "getIntervalVehicleNumber", self._ids, getter)

    def _loop_counts(self) -> np.ndarray:
        n = len(self._ids)
        if self._reads is not None:  # in process
            cum = self._reads.read()
        else:
            res = self._conn.inductionloop.getAllSubscriptionResults()
            cum = np.fromiter((res[k][VAR_INTERVAL_NUMBER] for k in self._ids), float, n)
        new = cum - self._cum
        self._cum = cum
        return np.where(new >= 0, new, cum)

    def read(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Counts (D,), occupancy (D,), queue (N, G) and per stop lane queue (the KPI's lanes) for this tick."""
        return self.update(self._loop_counts(), state)

    def _precompute(self) -> None:
        """Index and weight arrays of :meth:`update`'s kernels, built once."""
        lp = self.loops
        self._det_idx = np.maximum(lp.det_pair, 0)
        self._det_w = np.where(lp.det_pair >= 0, lp.det_w, 0.0)
        lanes = lp.stop_lanes.ravel()
        self._inv_lanes = np.divide(1.0, lanes, out=np.zeros_like(lanes), where=lanes > 0)
        self._occ_scale = VEHICLE_LENGTH_M / self._zone
        ok = self._kpi_src >= 0
        self._kpi_src_ok, self._kpi_flat_ok = self._kpi_src[ok], self._kpi_flat[ok]
        groups_on = np.bincount(self._kpi_src_ok, minlength=self.n_e2).astype(float)
        self._kpi_inv = np.divide(1.0, groups_on, out=np.zeros_like(groups_on), where=groups_on > 0)
        self._valid = np.ascontiguousarray(self.group_valid, np.bool_).ravel()
        self._stop_idx = np.flatnonzero(self._stop)

    def update(self, c: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The tick's arrays from loop counts ``c`` (vehicles since the last tick, per loop) and the shown states."""
        lp = self.loops
        size = self.n * self.g
        c = np.ascontiguousarray(c, np.float64)
        state = np.ascontiguousarray(state, np.int8).reshape(-1)
        if c.shape != self._cum.shape or state.size != size:
            raise ValueError(f"expected {len(self._cum)} loop counts and {size} signal states")
        # Two compiled passes around the estimator's (the arrays' operations element by element, in the
        # order numpy's bincounts sum, so bit-identical to the array form): a city's tick was ~20 numpy calls.
        arr_pair, green = np.empty(len(lp.pair_loop)), np.empty(size, np.bool_)
        arrivals, departures = np.zeros(size), np.zeros(size)
        _attribute(c, state, self.dt_s, lp.pair_loop, self._turn, lp.pair_flat, lp.dep_loop, lp.dep_pair,
                   self._dep_pair_flat, lp.dep_w, self.estimator.in_zone_veh.reshape(-1), self._since_green,
                   arr_pair, green, arrivals, departures)  # fmt: skip
        raw = self.estimator.update(arrivals, departures, green).reshape(-1)
        n_det = len(self._carry)
        queue, counts, occ, e2 = np.empty(size), np.empty(n_det), np.zeros(n_det), np.zeros(self.n_e2)
        _observe(raw, self._valid, arr_pair, self._det_idx, self._det_w, self._carry, self._inv_lanes, self._stop_idx,
                 self._stop_flat, self._occ_scale, self._kpi_src_ok, self._kpi_flat_ok, self._kpi_inv,
                 queue, counts, occ, e2)  # fmt: skip
        return counts, occ, queue.reshape(self.n, self.g), e2

    def forget(self, vid: str) -> None:
        """``vid`` is no longer tracked (arrived, or gone): its kept route goes too."""
        self._routes.pop(vid, None)

    def next_signal(self, conn: Any, vid: str) -> tuple[int, int, float] | None:
        """(row, group, distance m) of the next controlled movement on ``vid``'s route, or None."""
        veh = conn.vehicle
        route_id = veh.getRouteID(vid)
        kept = self._routes.get(vid)
        if kept is None or kept[0] != route_id:
            kept = self._routes[vid] = (route_id, tuple(veh.getRoute(vid)))
        route = kept[1]
        at = int(veh.getRouteIndex(vid))
        if at < 0:
            return None
        pos = float(veh.getLanePosition(vid))
        dist = 0.0
        lengths, movement = self.loops.edge_length_m, self.loops.movement
        for k in range(at, min(len(route) - 1, at + ROUTE_LOOKAHEAD_EDGES)):
            dist += lengths.get(route[k], 0.0) - (pos if k == at else 0.0)
            hit = movement.get((route[k], route[k + 1]))
            if hit is not None:
                return hit[0], hit[1], max(dist, 0.0)
        return None


# fmt: off
@njit(cache=True)
def _attribute(
    c, state, dt, pair_loop, turn, pair_flat, dep_loop, dep_pair, dep_pair_flat, dep_w, in_zone, since_green,
    arr_pair, green, arrivals, departures,  # outputs (arrivals, departures zeroed); since_green updated in place
):
# fmt: on
    """:meth:`MesoReader.update` before the estimator: arrivals and departures per group from loop counts ``c``.

    An exit's vehicles go to the feeders that are (just) green, by their links and the
    vehicles they hold: a green movement with nobody in its zone sends nobody (+0.01: by
    links alone when all look empty). Sums run in entry order, as ``np.bincount``'s.
    """
    for p in range(len(pair_loop)):
        arr_pair[p] = c[pair_loop[p]] * turn[p]
        arrivals[pair_flat[p]] += arr_pair[p]
    for k in range(state.size):
        s = state[k]
        green[k] = s == _GREEN
        since_green[k] = 0.0 if (s == _GREEN or s == _YELLOW) else since_green[k] + dt
    n_dep = len(dep_loop)
    active = np.empty(n_dep)
    total = np.zeros(len(c))
    for e in range(n_dep):
        f = dep_pair_flat[e]
        active[e] = dep_w[e] * (in_zone[f] + 0.01) * (1.0 if since_green[f] <= RECENT_GREEN_S else 0.0)
        total[dep_loop[e]] += active[e]
    dep_of_pair = np.zeros(len(pair_loop))
    for e in range(n_dep):
        share = active[e] / total[dep_loop[e]] if active[e] > 0 else 0.0
        dep_of_pair[dep_pair[e]] += c[dep_loop[e]] * share
    for p in range(len(pair_loop)):
        departures[pair_flat[p]] += dep_of_pair[p]


# fmt: off
@njit(cache=True)
def _observe(
    raw, valid, arr_pair, det_idx, det_w, carry, inv_lanes, stop_idx, stop_flat, occ_scale, kpi_src, kpi_flat,
    kpi_inv, queue, counts, occ, e2,  # outputs (occ, e2 zeroed); carry updated in place
):
# fmt: on
    """:meth:`MesoReader.update` after the estimator: queues of valid groups, whole-vehicle detector counts,
    occupancy of the stop-line zones and the queue per stop lane (the KPI's), element by element."""
    for k in range(raw.size):
        queue[k] = raw[k] * (1.0 if valid[k] else 0.0)
    for d in range(len(det_idx)):
        carry[d] += arr_pair[det_idx[d]] * det_w[d]
        whole = np.floor(carry[d] + 1e-9)
        counts[d] = whole
        carry[d] -= whole
    for j in range(len(stop_idx)):
        f = stop_flat[j]
        occ[stop_idx[j]] = _np_min(queue[f] * inv_lanes[f] * occ_scale[j], 1.0)
    for j in range(len(kpi_src)):
        f = kpi_flat[j]
        e2[kpi_src[j]] += queue[f] * inv_lanes[f]
    for j in range(len(e2)):
        e2[j] *= kpi_inv[j]


def meso_reader(detectors: Any, net_file: str | Path, out_dir: str | Path, dt_s: float,
                sumo_net: Any = None) -> tuple[Path, MesoReader]:  # fmt: skip
    """The loops file SUMO loads instead of ``detectors``' lane-area file, and the reader over it.

    ``detectors`` is :func:`simulation.detectors.generate_detectors`' result: the model
    detectors (the engine's arrays) stay those of micro; only what SUMO measures changes.
    """
    loops = meso_loops(detectors, net_file, out_dir, sumo_net)
    return loops.additional, reader_over(detectors, loops, dt_s)


def meso_loops(detectors: Any, net_file: str | Path, out_dir: str | Path, sumo_net: Any = None) -> MesoLoops:
    """The loops of :func:`meso_reader`, written to ``out_dir/gw_meso_loops.add.xml``."""
    from controller.arrays import pack
    from controller.backend import detector_layout

    network = detectors.network
    packed, layout = pack(network.intersections), detector_layout(network)
    return generate_meso_loops(network, net_file, Path(out_dir) / "gw_meso_loops.add.xml", packed, layout, sumo_net)


def reader_over(detectors: Any, loops: MesoLoops, dt_s: float) -> MesoReader:
    """The reader of :func:`meso_reader` over loops already generated (or kept from an earlier run)."""
    from controller.arrays import pack
    from controller.backend import detector_layout

    network = detectors.network
    packed, layout = pack(network.intersections), detector_layout(network)
    lanes = [sid.removeprefix("gw_e2_") for sid in detectors.e2_ids]
    return MesoReader(loops, packed, layout, dt_s, e2_lanes=lanes)
