"""Detectors generated from the intersection model, written as a SUMO additional file.

Every incoming lane of every vehicle signal group gets:

* a **stop-line lane-area detector** (E2) covering the last
  ``STOP_LINE_LENGTH_M`` metres before the stop line (or the whole lane when
  shorter): presence/occupancy for calls and the halting count used as the
  queue. The zone is as long as a video/AI-camera detection zone (Hanoi's
  2025 upgrade detects from cameras, ``../shared/reference/motorcycles-and-algorithms.md``
  D1), so queues are measured, not capped at a loop's length;
* an **advance loop** (E1) ``ADVANCE_DISTANCE_M`` upstream of the stop line
  (where the lane is long enough): arrival counts, as in a field
  installation's advance detectors.

A lane shared by several groups (a shared through/right lane) gets one SUMO
detector per kind; the model gets one :class:`Detector` per (lane, group) pair
that points at it, so each group sees its lane.

**Short lanes.** Networks imported from real cities leave lanes of a few
decimetres between the parts of one junction (``../shared/reference/real-networks.md``).
A lane shorter than :data:`MIN_SINGLE_LANE_ZONE_M` gets its stop-line zone
extended upstream across the chain of lanes that feed it (SUMO's E2 "explicit
sequence of lanes", ``lanes="L1 .. LN"``), as far as the designed zone length,
the network's end, a junction signalised by another traffic light, or a lane
already in the chain; the advance loop then lies on that chain too. A detector
is never placed where SUMO would refuse to start. Lane lengths come from the
network file through sumolib (this is the simulation layer: SUMO libraries are
allowed here).

**Exit zones.** Every lane a vehicle movement of a modelled intersection leads to (the
``to`` lane of the group's links in SUMO) gets an **exit lane-area detector** covering
the first :data:`EXIT_ZONE_M` metres after the junction (the whole lane when shorter;
a lane shorter than :data:`MIN_SINGLE_LANE_ZONE_M` extends downstream across the lanes
it feeds, up to the next signalised junction, the network's end or a non-road lane).
It answers one question per tick: does a standing queue reach back to the junction, so
that a green would send vehicles into the junction with nowhere to go
(``../shared/reference/real-networks.md``, "Giving green into a full link")? The
backend turns it into ``Observation.exit_blocked`` (see :data:`EXIT_BLOCKED_OCCUPANCY`):
per group, the share of its standing queue (of its lanes, where none stands) on incoming
lanes with a link into a jammed exit (a lane is first in, first out: one vehicle for the
jammed exit at its head stops everyone behind it, so a shared lane counts as held up
when any of its exits is jammed).
These zones are not in ``Intersection.detectors`` (whose order is the per-detector
observation arrays, the field profile's channels and the ATSPM configuration): they
are kept beside it, in :attr:`SumoDetectors.exit_detectors`, one model detector of kind
:attr:`~intersections.model.DetectorKind.EXIT` per (exit lane, group), since a lane can
receive several groups' movements.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from controller.backend import ZONE_COVERED_OCCUPANCY
from intersections.loaders.sumo_net import tls_of_junctions
from intersections.model import Detector, DetectorKind, GroupKind
from intersections.network import Network

__all__ = [
    "SumoDetectors",
    "generate_detectors",
    "upstream_chain",
    "downstream_chain",
    "EXIT_ZONE_M",
    "EXIT_BLOCKED_OCCUPANCY",
    "STOP_LINE_LENGTH_M",
    "ADVANCE_DISTANCE_M",
    "MIN_SINGLE_LANE_ZONE_M",
]

STOP_LINE_LENGTH_M = 100.0
ADVANCE_DISTANCE_M = 60.0
#: A stop-line lane shorter than this (about three queued cars) cannot hold a queue
#: measurement of its own: its zone extends upstream over the lanes that feed it.
MIN_SINGLE_LANE_ZONE_M = 20.0
#: Length of the exit zone after the junction: four cars at SUMO's jam spacing (5 m car + 2.5 m
#: minGap), so that "most of it stands still" means the queue's tail is within one car of the junction.
EXIT_ZONE_M = 30.0
#: An exit zone is blocked when a vehicle halts on it and vehicles cover at least this share of its
#: length. A zone packed at jam density is covered at length / (length + minGap) = 5 / 7.5 = 0.67 by
#: cars; 0.5 is three of the four car places of a 30-m zone standing, i.e. less than one car's room
#: left after the junction: a green there releases at most one vehicle before the next one stops in
#: the junction. The threshold follows from the vehicle geometry, not from any scenario.
#: Capacity-aware back-pressure (Gregoire, Qian, Frazzoli, de La Fortelle, Wongpiromsarn, IEEE
#: Trans. Control of Network Systems, 2015) weights pressure by the room left downstream; this is
#: that room, measured where it matters, at the junction's exit.
EXIT_BLOCKED_OCCUPANCY = ZONE_COVERED_OCCUPANCY
# Period of the E1/E2 aggregated output: long, so nothing is written during a
# run; counts are read as differences of the cumulative interval counters.
INTERVAL_S = 1_000_000


@dataclass(frozen=True)
class SumoDetectors:
    """The generated detectors: a network with them, and the SUMO ids to read."""

    network: Network
    additional: Path
    e2_ids: tuple[str, ...]  # SUMO lane-area ids, read once per tick
    e1_ids: tuple[str, ...]  # SUMO induction-loop ids
    model_to_sumo: dict[str, str]  # model detector id -> SUMO detector id
    exit_ids: tuple[str, ...] = ()  # SUMO exit-zone lane-area ids (read for ``exit_blocked``)
    # Per intersection (network order): the EXIT model detectors, one per (exit lane, group).
    exit_detectors: tuple[tuple[Detector, ...], ...] = ()
    # EXIT model detector id -> the group's incoming lanes whose links lead to its exit lane.
    exit_feeds: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


def _sumo_id(kind: str, lane: str) -> str:
    return f"gw_{kind}_{lane}"


def generate_detectors(
    network: Network, net_file: str | Path, out_file: str | Path, *, exits: bool = True, sumo_net: Any = None
) -> SumoDetectors:
    """Write the additional file and return the network carrying the detectors.

    ``exits=False`` leaves out the exit zones (a run whose controller does not read
    ``exit_blocked`` need not make SUMO keep them). ``sumo_net``: ``net_file`` already read
    by ``sumolib.net.readNet`` with its default options (a run reads it once for this and the
    meso loops: a city's net takes seconds to parse); read here when None.
    """
    import sumolib

    net = sumo_net if sumo_net is not None else sumolib.net.readNet(str(net_file))
    tls_nodes = tls_of_junctions(net.getTrafficLights())
    ex: dict[str, tuple[str, float]] = {}  # exit lane -> (SUMO id, zone length)
    exit_dets: list[tuple[Detector, ...]] = []
    feeds: dict[str, tuple[str, ...]] = {}  # EXIT model detector id -> incoming lanes leading to its lane
    # Detector elements by SUMO id: written and read in id order (see below).
    lines: dict[str, str] = {}
    e2: dict[str, str] = {}
    e1: dict[str, str] = {}
    zone_m: dict[str, float] = {}
    model_to_sumo: dict[str, str] = {}
    inters = []
    for inter in network.intersections:
        dets: list[Detector] = []
        own = inter.tls_id or inter.id
        for grp in inter.groups:
            if grp.kind is GroupKind.PEDESTRIAN:
                continue
            for lane_id in sorted({ln for m in grp.movements for ln in m.lanes}):
                try:
                    lane = net.getLane(lane_id)
                except KeyError:
                    continue
                if lane_id not in e2:
                    chain = [lane]
                    if float(lane.getLength()) < MIN_SINGLE_LANE_ZONE_M:
                        chain = upstream_chain(lane, STOP_LINE_LENGTH_M + 0.5, tls_nodes, own)
                    e2[lane_id] = _sumo_id("e2", lane_id)
                    lines[e2[lane_id]], zone_m[lane_id] = _e2_element(e2[lane_id], chain)
                    adv = _e1_element(_sumo_id("e1", lane_id), chain)
                    if adv is not None:
                        e1[lane_id] = _sumo_id("e1", lane_id)
                        lines[e1[lane_id]] = adv
                mid = f"{lane_id}@{grp.id}"
                model_to_sumo[mid] = e2[lane_id]
                dets.append(
                    Detector(mid, lane_id, grp.id, DetectorKind.STOP_LINE, position_m=0.0, length_m=zone_m[lane_id])
                )
                if lane_id in e1:
                    aid = f"{lane_id}@{grp.id}@adv"
                    model_to_sumo[aid] = e1[lane_id]
                    dets.append(
                        Detector(
                            aid, lane_id, grp.id, DetectorKind.ADVANCE, position_m=ADVANCE_DISTANCE_M, length_m=1.0
                        )
                    )
        inters.append(dataclasses.replace(inter, detectors=tuple(dets)))
        exit_dets.append(_exit_detectors(net, inter, tls_nodes, ex, lines, model_to_sumo, feeds) if exits else ())
    # SUMO keeps detectors in an id-ordered map and allocates them in file order:
    # with both in id order, the per-tick getter sweep walks memory in sequence
    # (measured on the 10x10 grid: 10 % less per read right after a step).
    out = Path(out_file)
    body = [lines[k] for k in sorted(lines)]
    out.write_text("\n".join(["<additional>", *body, "</additional>"]) + "\n", encoding="utf-8")
    return SumoDetectors(
        network=Network(tuple(inters), network.graph, network.source),
        additional=out,
        e2_ids=tuple(sorted(e2.values())),
        e1_ids=tuple(sorted(e1.values())),
        model_to_sumo=model_to_sumo,
        exit_ids=tuple(sorted(sid for sid, _zone in ex.values())),
        exit_detectors=tuple(exit_dets),
        exit_feeds=feeds,
    )


def _exit_links(net: Any, inter: Any, grp: Any) -> dict[str, tuple[Any, set[str]]]:
    """Exit lane id -> (the lane, the group's incoming lanes that lead to it), from SUMO's links."""
    out: dict[str, tuple[Any, set[str]]] = {}
    tls = None
    if grp.link_indices:
        try:
            tls = net.getTLS(inter.tls_id)
        except KeyError:
            tls = None
    if tls is not None:
        wanted = set(grp.link_indices)
        for in_lane, out_lane, index in tls.getConnections():
            if index in wanted and not out_lane.getID().startswith(":"):
                out.setdefault(out_lane.getID(), (out_lane, set()))[1].add(in_lane.getID())
        return out
    for m in grp.movements:  # no links known: every lane of the movement's exit edge, fed by all its lanes
        if m.turn == "p" or not net.hasEdge(m.to_edge):
            continue
        for lane in net.getEdge(m.to_edge).getLanes():
            out.setdefault(lane.getID(), (lane, set()))[1].update(m.lanes)
    return out


def _exit_detectors(
    net: Any,
    inter: Any,
    tls_nodes: dict[str, str],
    ex: dict[str, tuple[str, float]],
    lines: dict[str, str],
    to_sumo: dict[str, str],
    feeds: dict[str, tuple[str, ...]],
) -> tuple[Detector, ...]:
    """One EXIT model detector per (exit lane, vehicle group) of ``inter``; SUMO elements added to
    ``lines``, and to ``feeds`` the group's incoming lanes that lead to each detector's exit lane."""
    dets: list[Detector] = []
    for grp in inter.groups:
        if grp.kind is GroupKind.PEDESTRIAN:
            continue
        links = _exit_links(net, inter, grp)
        for lane_id in sorted(links):
            lane, from_lanes = links[lane_id]
            if lane.getEdge().getFunction() not in ("", "normal") or not from_lanes:
                continue
            if lane_id not in ex:
                chain = [lane]
                if float(lane.getLength()) < MIN_SINGLE_LANE_ZONE_M:
                    chain = downstream_chain(lane, EXIT_ZONE_M, tls_nodes)
                sid = _sumo_id("ex", lane_id)
                lines[sid], zone = _exit_element(sid, chain)
                ex[lane_id] = (sid, zone)
            mid = f"{lane_id}@{grp.id}@exit"
            to_sumo[mid] = ex[lane_id][0]
            feeds[mid] = tuple(sorted(from_lanes))
            dets.append(Detector(mid, lane_id, grp.id, DetectorKind.EXIT, position_m=0.0, length_m=ex[lane_id][1]))
    return tuple(dets)


def downstream_chain(lane: Any, want_m: float, tls_nodes: dict[str, str]) -> list[Any]:
    """Consecutive normal lanes starting at ``lane``, reaching ``want_m`` downstream where possible.

    The mirror of :func:`upstream_chain` for exit zones: follows the lane's successors (a
    straight connection first, then the longest) and stops at a signalised junction (any
    light's: what stands beyond a stop line is that light's queue, not this exit's), at
    the network's end, at a non-road lane or at a lane already in the chain.
    """
    chain = [lane]
    total = float(lane.getLength())
    seen = {lane.getID()}
    while total < want_m:
        last = chain[-1]
        if last.getEdge().getToNode().getID() in tls_nodes:
            break
        options = []
        for conn in last.getOutgoing():
            nxt = conn.getToLane()
            if nxt.getID() in seen or nxt.getID().startswith(":"):
                continue
            if nxt.getEdge().getFunction() not in ("", "normal"):
                continue
            options.append((conn.getDirection() != "s", -float(nxt.getLength()), nxt.getID(), nxt))
        if not options:
            break
        nxt = min(options, key=lambda o: o[:3])[3]
        chain.append(nxt)
        seen.add(nxt.getID())
        total += float(nxt.getLength())
    return chain


def _exit_element(det_id: str, chain: list[Any]) -> tuple[str, float]:
    """The ``laneAreaDetector`` over the first :data:`EXIT_ZONE_M` metres of ``chain`` (from the junction)."""
    lengths = [float(ln.getLength()) for ln in chain]
    if len(chain) == 1:
        end = min(EXIT_ZONE_M, lengths[0])
        return (
            f"    <laneAreaDetector id={quoteattr(det_id)} lane={quoteattr(chain[0].getID())} "
            f'pos="0.00" endPos="{end:.2f}" period="{INTERVAL_S}" file="NUL"/>',
            end,
        )
    before_last = sum(lengths[:-1])
    end = min(lengths[-1], max(0.1, EXIT_ZONE_M - before_last))
    ids = " ".join(ln.getID() for ln in chain)
    return (
        f"    <laneAreaDetector id={quoteattr(det_id)} lanes={quoteattr(ids)} "
        f'pos="0.00" endPos="{end:.2f}" period="{INTERVAL_S}" file="NUL"/>',
        before_last + end,
    )


def upstream_chain(lane: Any, want_m: float, tls_nodes: dict[str, str], own_tls: str) -> list[Any]:
    """Consecutive normal lanes ending at ``lane``, reaching ``want_m`` upstream where possible.

    Walks feeding lanes (a straight connection first, then the longest) and stops at the
    network's edge, at a junction signalised by a traffic light other than ``own_tls`` (its
    queue is that light's business), at a non-road lane, or at a lane already taken: the chain
    is exactly what SUMO's E2 ``lanes`` attribute accepts (each lane connected to the next).
    The one exception is another light whose stop line stands less than
    :data:`MIN_SINGLE_LANE_ZONE_M` before ours (a mid-block crossing signal 12 m ahead of a
    junction, Berlin's Doerpfeldstr): the gap holds no queue, so our queue stands behind that
    light, and a zone cut there saw two cars of a queue reaching back over 100 m - the approach
    looked empty to every controller while it spilled back into the junctions behind it.
    """
    chain = [lane]
    total = float(lane.getLength())
    seen = {lane.getID()}
    while total < want_m:
        first = chain[0]
        node = first.getEdge().getFromNode().getID()
        if tls_nodes.get(node, own_tls) != own_tls and total >= MIN_SINGLE_LANE_ZONE_M:
            break
        options = []
        for conn in first.getIncomingConnections():
            pred = conn.getFromLane()
            if pred.getID() in seen or pred.getID().startswith(":"):
                continue
            if pred.getEdge().getFunction() not in ("", "normal"):
                continue
            options.append((conn.getDirection() != "s", -float(pred.getLength()), pred.getID(), pred))
        if not options:
            break
        pred = min(options, key=lambda o: o[:3])[3]
        chain.insert(0, pred)
        seen.add(pred.getID())
        total += float(pred.getLength())
    return chain


def _e2_element(det_id: str, chain: list[Any]) -> tuple[str, float]:
    """The ``laneAreaDetector`` over the last metres of ``chain`` (which ends at the stop line)."""
    lengths = [float(ln.getLength()) for ln in chain]
    last = lengths[-1]
    if len(chain) == 1:
        zone = max(min(1.0, last), min(STOP_LINE_LENGTH_M, last - 0.5))
        start = max(0.0, last - zone)
        return (
            f"    <laneAreaDetector id={quoteattr(det_id)} lane={quoteattr(chain[0].getID())} "
            f'pos="{start:.2f}" endPos="{last:.2f}" period="{INTERVAL_S}" file="NUL"/>',
            last - start,
        )
    upstream = sum(lengths[1:])
    first_part = min(lengths[0], max(0.0, STOP_LINE_LENGTH_M - upstream))
    start = max(0.0, lengths[0] - max(first_part, 0.1))
    ids = " ".join(ln.getID() for ln in chain)
    return (
        f"    <laneAreaDetector id={quoteattr(det_id)} lanes={quoteattr(ids)} "
        f'pos="{start:.2f}" endPos="{last:.2f}" period="{INTERVAL_S}" file="NUL"/>',
        upstream + lengths[0] - start,
    )


def _e1_element(det_id: str, chain: list[Any]) -> str | None:
    """The advance loop ``ADVANCE_DISTANCE_M`` before the stop line, on whichever chain lane holds it."""
    to_end = 0.0
    for ln in reversed(chain):
        length = float(ln.getLength())
        if to_end + length > ADVANCE_DISTANCE_M + 5.0:
            pos = length - (ADVANCE_DISTANCE_M - to_end)
            if pos < 0 or pos >= length:
                return None
            return (
                f"    <inductionLoop id={quoteattr(det_id)} lane={quoteattr(ln.getID())} "
                f'pos="{pos:.2f}" period="{INTERVAL_S}" file="NUL"/>'
            )
        to_end += length
    return None
