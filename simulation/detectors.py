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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from intersections.model import Detector, DetectorKind, GroupKind
from intersections.network import Network

__all__ = [
    "SumoDetectors",
    "generate_detectors",
    "upstream_chain",
    "STOP_LINE_LENGTH_M",
    "ADVANCE_DISTANCE_M",
    "MIN_SINGLE_LANE_ZONE_M",
]

STOP_LINE_LENGTH_M = 100.0
ADVANCE_DISTANCE_M = 60.0
#: A stop-line lane shorter than this (about three queued cars) cannot hold a queue
#: measurement of its own: its zone extends upstream over the lanes that feed it.
MIN_SINGLE_LANE_ZONE_M = 20.0
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


def _sumo_id(kind: str, lane: str) -> str:
    return f"gw_{kind}_{lane}"


def generate_detectors(network: Network, net_file: str | Path, out_file: str | Path) -> SumoDetectors:
    """Write the additional file and return the network carrying the detectors."""
    import sumolib

    net = sumolib.net.readNet(str(net_file))
    tls_nodes = _tls_of_nodes(net)
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
    )


def _tls_of_nodes(net: Any) -> dict[str, str]:
    """Junction id -> the traffic light controlling it (joined lights control several)."""
    out: dict[str, str] = {}
    for tls in net.getTrafficLights():
        for in_lane, _out, _i in tls.getConnections():
            out[in_lane.getEdge().getToNode().getID()] = tls.getID()
    return out


def upstream_chain(lane: Any, want_m: float, tls_nodes: dict[str, str], own_tls: str) -> list[Any]:
    """Consecutive normal lanes ending at ``lane``, reaching ``want_m`` upstream where possible.

    Walks feeding lanes (a straight connection first, then the longest) and stops at the
    network's edge, at a junction signalised by a traffic light other than ``own_tls`` (its
    queue is that light's business), at a non-road lane, or at a lane already taken: the chain
    is exactly what SUMO's E2 ``lanes`` attribute accepts (each lane connected to the next).
    """
    chain = [lane]
    total = float(lane.getLength())
    seen = {lane.getID()}
    while total < want_m:
        first = chain[0]
        node = first.getEdge().getFromNode().getID()
        if tls_nodes.get(node, own_tls) != own_tls:
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
        if to_end + length > ADVANCE_DISTANCE_M + 5.0 or (len(chain) == 1 and length > ADVANCE_DISTANCE_M + 5.0):
            pos = length - (ADVANCE_DISTANCE_M - to_end)
            if pos < 0 or pos >= length:
                return None
            return (
                f"    <inductionLoop id={quoteattr(det_id)} lane={quoteattr(ln.getID())} "
                f'pos="{pos:.2f}" period="{INTERVAL_S}" file="NUL"/>'
            )
        to_end += length
    return None
