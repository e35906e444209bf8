"""Read a SUMO ``.net.xml`` into the intersection model.

Every traffic light (``tlLogic``) becomes one :class:`~intersections.model.Intersection`
(a joined traffic light that controls several junctions is still one). The
translation from SUMO's link-based programs to group-based signal control:

**Signal groups.** Link indices whose state character is the same in every
phase of the program always show the same aspect, so they are one signal group
(the usual reading of a SUMO program, and how ``netconvert --tls.group-signals``
groups them). Vehicle links and pedestrian crossings are never mixed in one
group. Links that are never green in the program (always red or off) carry no
traffic and form no group; link indices without a connection are ignored.
Group ids are readable and deterministic: ``<fromEdge>_<turns>`` joined by ``+``
(e.g. ``top0A1_rs+A0A1_rs``) for vehicles, ``ped_<crossing>`` for crossings,
with ``.2``, ``.3`` appended in the rare case of a clash.

**Conflicts.** Two groups conflict when some pair of their links are foes in
the junction's right-of-way matrix (``<request foes=...>``, read by sumolib)
*and* the program never shows both green. Pairs that the program greens
together (a permissive left ``g`` yielding to the oncoming ``G``, a right turn
yielding to pedestrians) are compatible: the driver yields, the controller does
not separate them. A junction without a right-of-way matrix is treated as if
all its links were foes (the safe side).

**Clearances**, measured on the program's own timeline:

* ``intergreen_s[i, j]`` = least time, over the cycle, from the end of ``i``'s
  green to the start of ``j``'s green (conflicting pairs only), counting only
  *direct* transitions: a gap that holds another group's whole green is
  sequencing, not clearance (in a program S1 -> S2 -> S3, the gap from the
  end of S3 to the start of S2 spans all of S1);
* vehicle ``yellow_s`` = the longest ``y`` interval that follows the group's
  green; ``all_red_s`` = least direct intergreen to a conflicting group minus
  that yellow (SUMO's generated programs have no all-red: 0 s is faithful);
* pedestrian ``ped_clearance_s`` = the MUTCD crossing time of the crossing
  lane (:func:`intersections.clearance.ped_clearance_s`), bounded by the least
  direct intergreen so the program stays valid (SUMO times the flashing DON'T
  WALK as vehicle green carrying on after the crossing turns red);
  ``walk_s`` = min(7 s, shortest green); ``min_green_s`` = ``walk_s``.

Where the program shows no such transition, the ITE formulas of
:mod:`intersections.clearance` fill in: a vehicle group that never shows
yellow gets the ITE yellow; a group with no direct transition the ITE all-red;
a conflicting pair with no direct transition ``max(yellow + ITE all-red, the
group's own yellow + all-red)`` (pedestrians: the crossing time). The approach
speed is the fastest incoming lane of the group; the crossing width ``W`` is
the larger side of the junction shape's bounding box, a rough
stop-line-to-far-side distance (:data:`DEFAULT_CROSSING_WIDTH_M` when the
junction has no shape). Every intergreen covers the ending group's yellow (or
ped clearance), as the model requires.

**Greens.** ``min_green_s`` = the sum of ``minDur`` over the shortest green run
for actuated programs (phases with ``minDur < duration``), otherwise
:data:`DEFAULT_MIN_GREEN_S` bounded by the shortest green in the program (so
the net's own program passes :func:`~intersections.plan.check_plan`);
``max_green_s`` = max(longest green run, its ``maxDur`` sum, 60 s).

**Stages.** One stage per distinct set of green groups over the program's green
phases (a green and no ``y``/``u``), in program order, ids ``S1``, ``S2``, ...
A group green only during phases with a yellow gets the green sets of those
phases appended as stages (they are compatible by construction). A set that
is a proper subset of another, with no group better protected in it, is
dropped (:func:`maximal_stages`): it only sequences the program's overlaps.

**Road graph.** Nodes are all non-internal junctions (``x_m``, ``y_m``,
``signalised``, ``tls``); edges are the non-internal SUMO edges with at least
one motor-vehicle lane (of parallel edges between two junctions, which a
DiGraph cannot hold, the one with most lanes; the ids of the edges left out
are the graph attribute ``other_edges``); ``saturation_flow_pcu_h`` = vehicle lanes x
:data:`SATURATION_FLOW_PCU_H_PER_LANE` (motorcycle-aware saturation is
``controller/timing``'s business). Detectors are not read: the simulation layer
generates them from the model.

**A light over several junctions** (SUMO's ``--tls.join``, common in imported city
networks) is one intersection per *part*: junctions of the light that a road
shorter than :data:`JOINED_PART_LINK_M` links (either way) are one part, the
others are parts of their own, ids ``<tls>@<junction>+<junction>...`` (a light
with one part keeps its id; ``@``, not ``/``, so the id stays one segment of
the API's ``/intersections/{id}`` paths). netconvert's programs for such a
light can serve the junctions' side roads one junction after the other (a generated spider's ring
of eight: 16 green phases, a 544-s cycle), and stages taken from that program
could never serve two junctions' side roads at once, though links of
different junctions never conflict. A part's groups, clearances and stages
come from the same program read over its own links. Junctions closer than
20 m stay together (netconvert's own ``--tls.join-dist`` default): with no
room for a queue between them they need one sequence. Only a program that
serves its junctions in turn is split (in no green phase do two junctions show
other than their own most shown green set, as netconvert writes them); one
that moves several junctions at once (a pair that clears the link between
them, offsets: Hamburg's engineered joined programs) stays one intersection,
as the program's sequence is its coordination: serving the junctions of such
programs independently cost actuated and adaptive 5-30 % more delay near
capacity on generated grids. The backend writes the parts of one light as one
state string.

**The program SUMO actually runs.** A scenario's additional files may hold
``tlLogic`` elements that replace or add to the net's programs, and ``WAUT``
schedules that switch programs by time of day (SUMO docs, "Simulation/Traffic
Lights"; ``../shared/reference/real-networks.md``). Given the additional files,
the loader picks per traffic light the program a WAUT schedules at the run's
begin time, else the last program loaded (net first, then the additional files
in order), which is the one SUMO activates.

**A junction the model cannot hold** (a program whose states differ in length,
link indices beyond its state, no link ever green, a zero cycle, or a model the
intersection checks refuse) keeps its own program: it is left out of
``Network.intersections`` and listed in ``Network.unmodelled`` with the reason,
so the engine never controls it and the run goes on. Only a file with no
traffic light greenwave can model fails as a whole.

sumolib is imported inside :func:`load_sumo_net` only, so importing this
module keeps the core free of SUMO (``tests/test_import_purity.py``).
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
import xml.sax
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from intersections.clearance import ite_all_red_s, ite_yellow_s, ped_clearance_s
from intersections.errors import InputError, NetworkFileError
from intersections.model import GroupKind, Intersection, Movement, SignalGroup, Stage
from intersections.network import Network, add_link

__all__ = [
    "load_sumo_net",
    "tls_of_junctions",
    "running_programs",
    "additional_programs",
    "sumo_time_s",
    "maximal_stages",
    "ProgramTiming",
    "program_timing",
    "SATURATION_FLOW_PCU_H_PER_LANE",
    "DEFAULT_MIN_GREEN_S",
    "DEFAULT_MAX_GREEN_S",
    "DEFAULT_WALK_S",
    "DEFAULT_CROSSING_WIDTH_M",
    "JOINED_PART_LINK_M",
]

#: Base saturation flow per lane, HCM 7th ed. (2022) ch. 19, signalized
#: intersections: 1,900 pc/h/ln in metropolitan areas of 250,000 or more.
SATURATION_FLOW_PCU_H_PER_LANE = 1900.0
#: Minimum green when the program has no ``minDur`` (a static program). A
#: conservative floor; the controller database's value should replace it.
DEFAULT_MIN_GREEN_S = 5.0
#: Maximum-green floor (a plan may stretch any green up to this).
DEFAULT_MAX_GREEN_S = 60.0
#: WALK: "typically at least 7 s" (MUTCD 2009 §4E.06); capped by the program's green.
DEFAULT_WALK_S = 7.0
#: Stop line to far-side clearance point when a junction has no shape.
DEFAULT_CROSSING_WIDTH_M = 20.0
#: Junctions of one traffic light linked by a road shorter than this are one intersection
#: (module docstring: a light over several junctions); netconvert's ``--tls.join-dist`` default.
JOINED_PART_LINK_M = 20.0

GREEN_CHARS = frozenset("Ggs")  # 's': green right-turn arrow, stop then go
YELLOW_CHARS = frozenset("y")
TRANSITION_CHARS = frozenset("yu")  # yellow, red+yellow: not a stage
TURNS = {"s": "s", "l": "l", "L": "l", "r": "r", "R": "r", "t": "t", "T": "t"}
ROAD_MOTOR_CLASSES = frozenset(
    {"passenger", "hov", "taxi", "bus", "coach", "delivery", "truck", "trailer", "motorcycle", "moped", "evehicle"}
)


# ---- the program timeline (pure: no sumolib) -------------------------------------------


@dataclass(frozen=True)
class ProgramTiming:
    """What one signal program says about a set of groups (one row per group).

    ``green`` is bool (groups x phases). Times in seconds. ``yellow_s`` is the
    longest yellow after a green (0 when the group never shows one);
    ``intergreen_s[i, j]`` the least time from the end of ``i``'s green to the
    start of ``j``'s over direct transitions (``inf`` where there is none; see
    :func:`program_timing`). ``stages`` are the distinct green sets, as group
    indices, in program order.
    """

    green: np.ndarray
    yellow_s: np.ndarray
    intergreen_s: np.ndarray
    shortest_green_s: np.ndarray
    longest_green_s: np.ndarray
    shortest_min_green_s: np.ndarray  # sum of minDur over the shortest run (nan: static)
    longest_max_green_s: np.ndarray  # sum of maxDur over the longest run
    cycle_s: float
    stages: tuple[frozenset[int], ...] = field(default=())


def _runs(on: np.ndarray) -> list[list[int]]:
    """Cyclic runs of consecutive True phases, each a list of phase indices."""
    n = len(on)
    if on.all():
        return [list(range(n))]
    runs: list[list[int]] = []
    for p in range(n):
        if on[p] and not on[p - 1]:
            run = [p]
            q = (p + 1) % n
            while on[q]:
                run.append(q)
                q = (q + 1) % n
            runs.append(run)
    return runs


def _mod(x: float, cycle: float) -> float:
    """``x`` modulo the cycle, snapping float noise at 0 and ``cycle`` to 0."""
    r = x % cycle
    return 0.0 if r < 1e-6 or cycle - r < 1e-6 else r


def _yellow_hands_to_running_green(col: str, columns: Sequence[str], n_ph: int) -> bool:
    """Does this group's yellow end into a phase where greens only carry on (none starts)?"""
    for p in range(n_ph):
        nxt = (p + 1) % n_ph
        if col[p] in YELLOW_CHARS and col[nxt] not in YELLOW_CHARS:
            running = any(c[nxt] in GREEN_CHARS for c in columns)
            starting = any(c[nxt] in GREEN_CHARS and c[p] not in GREEN_CHARS for c in columns)
            if running and not starting:
                return True
    return False


def _program_all_red_s(columns: Sequence[str], dur: np.ndarray) -> float | None:
    """Least all-red the program shows right after a yellow; None if it never ends a yellow."""
    n_ph = len(dur)
    found: list[float] = []
    for p in range(n_ph):
        nxt = (p + 1) % n_ph
        if not any(c[p] in YELLOW_CHARS and c[nxt] not in YELLOW_CHARS for c in columns):
            continue
        # Only where the yellow hands over to an all-red or to a green that starts there; a
        # green that merely carries on (a protected left after the through's yellow) says
        # nothing about the clearance.
        if not any(c[nxt] in GREEN_CHARS and c[p] not in GREEN_CHARS for c in columns) and any(
            c[nxt] in GREEN_CHARS for c in columns
        ):
            continue
        ar, q = 0.0, nxt
        while all(c[q] not in GREEN_CHARS and c[q] not in TRANSITION_CHARS for c in columns) and q != p:
            ar += float(dur[q])
            q = (q + 1) % n_ph
        found.append(ar)
    return min(found) if found else None


def program_timing(
    columns: Sequence[str],
    durations_s: Sequence[float],
    *,
    min_durations_s: Sequence[float] | None = None,
    max_durations_s: Sequence[float] | None = None,
) -> ProgramTiming:
    """Measure greens, yellows and intergreens of groups on a cyclic program.

    ``columns[g][p]`` is group ``g``'s SUMO state character in phase ``p``;
    ``min/max_durations_s`` are the phases' ``minDur``/``maxDur`` (negative
    when absent).

    Intergreen ``i -> j`` is measured from an end of ``i``'s green to the next
    start of ``j``'s green around the cycle, minimum over the *direct*
    transitions: those with no complete green of another group in between. A
    gap that contains another stage's whole green is sequencing, not
    clearance (in a program S1 -> S2 -> S3, the gap S3 -> S2 spans S1), so it
    is left ``inf`` for the caller to fill from the ITE formulas. Green that
    merely carries on across the gap (SUMO times a pedestrian clearance as
    vehicles' green continuing after the crossing turns red) does not break
    directness. O(groups³ x runs³), trivial for real programs.
    """
    dur = np.asarray(durations_s, dtype=float)
    n_ph = len(dur)
    n = len(columns)
    mins = np.asarray(min_durations_s if min_durations_s is not None else [-1.0] * n_ph, dtype=float)
    maxs = np.asarray(max_durations_s if max_durations_s is not None else [-1.0] * n_ph, dtype=float)
    cycle = float(dur.sum())
    green = np.array([[c[p] in GREEN_CHARS for p in range(n_ph)] for c in columns], dtype=bool).reshape(n, n_ph)
    runs = _green_run_stats(columns, green, dur, mins, maxs)
    ig = _direct_intergreens(runs.spans, cycle)
    # The program's own all-red: all-red phases that directly follow a yellow (0 when the
    # program goes straight from yellow to a conflicting green, as netgenerate's do). A
    # vehicle group's clearance is its yellow plus that all-red; a longer gap to a
    # conflicting green (another stage served in between, such as a protected left that
    # carries on after the through movement's yellow) is sequencing, not clearance, and
    # must not become a minimum the engine has to wait for.
    all_red_prog = _program_all_red_s(columns, dur)
    if all_red_prog is not None:
        for i in range(n):
            if runs.yellow[i] > 0 and _yellow_hands_to_running_green(columns[i], columns, n_ph):
                ig[i] = np.minimum(ig[i], runs.yellow[i] + all_red_prog)
    runs.short[np.isinf(runs.short)] = 0.0
    return ProgramTiming(
        green=green,
        yellow_s=runs.yellow,
        intergreen_s=ig,
        shortest_green_s=runs.short,
        longest_green_s=runs.long,
        shortest_min_green_s=runs.short_min,
        longest_max_green_s=runs.long_max,
        cycle_s=cycle,
        stages=_program_stages(columns, green),
    )


@dataclass
class _RunStats:
    """Per group, over its green runs in the program (seconds)."""

    yellow: np.ndarray  # longest yellow after a run
    short: np.ndarray  # shortest run (inf: never green)
    long: np.ndarray  # longest run
    short_min: np.ndarray  # shortest run at the phases' minDur (NaN: not actuated)
    long_max: np.ndarray  # longest run at the phases' maxDur
    spans: list[list[tuple[float, float]]]  # (start, length) of each run that starts and ends


def _green_run_stats(
    columns: Sequence[str], green: np.ndarray, dur: np.ndarray, mins: np.ndarray, maxs: np.ndarray
) -> _RunStats:
    n, n_ph = green.shape
    start = np.concatenate([[0.0], np.cumsum(dur)[:-1]])
    yellow = np.zeros(n)
    short = np.full(n, np.inf)
    long_ = np.zeros(n)
    short_min = np.full(n, np.nan)
    long_max = np.zeros(n)
    runs_t: list[list[tuple[float, float]]] = []  # (start, length) of each green run, seconds
    for g in range(n):
        spans: list[tuple[float, float]] = []
        for run in _runs(green[g]):
            length = float(dur[run].sum())
            short[g] = min(short[g], length)
            long_[g] = max(long_[g], length)
            if any(0 <= mins[p] < dur[p] for p in run):  # actuated: minDur below duration
                m = float(sum(mins[p] if mins[p] >= 0 else dur[p] for p in run))
                short_min[g] = m if np.isnan(short_min[g]) else min(short_min[g], m)
            long_max[g] = max(long_max[g], float(sum(maxs[p] if maxs[p] >= 0 else dur[p] for p in run)))
            if len(run) == n_ph:
                continue  # always green: no start, no end
            spans.append((float(start[run[0]]), length))
            y, q = 0.0, (run[-1] + 1) % n_ph
            while columns[g][q] in YELLOW_CHARS and q != run[0]:
                y += dur[q]
                q = (q + 1) % n_ph
            yellow[g] = max(yellow[g], y)
        runs_t.append(spans)
    return _RunStats(yellow, short, long_, short_min, long_max, runs_t)


def _direct_intergreens(runs_t: list[list[tuple[float, float]]], cycle: float) -> np.ndarray:
    """Intergreen ``i -> j`` over the direct transitions only (:func:`program_timing`), ``inf`` elsewhere."""
    n = len(runs_t)
    ig = np.full((n, n), np.inf)
    if cycle > 0:
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                for s_j, _len in runs_t[j]:
                    # The latest end of i before this start of j.
                    gaps = [_mod(s_j - (s_i + len_i), cycle) for s_i, len_i in runs_t[i]]
                    if not gaps:
                        break
                    gap = min(gaps)
                    e_i = s_j - gap
                    direct = not any(
                        _mod(s_k - e_i, cycle) + len_k <= gap + 1e-6
                        for k in range(n)
                        if k not in (i, j)
                        for s_k, len_k in runs_t[k]
                    )
                    if direct:
                        ig[i, j] = min(ig[i, j], gap)
    return ig


def _program_stages(columns: Sequence[str], green: np.ndarray) -> tuple[frozenset[int], ...]:
    """The program's stages: the green groups of each phase with no transition (yellow/red) in
    it, then the groups green only while something else is yellow, each set once."""
    n_ph = green.shape[1]
    stages: list[frozenset[int]] = []
    for p in range(n_ph):
        members = frozenset(int(g) for g in np.flatnonzero(green[:, p]))
        if members and not any(c[p] in TRANSITION_CHARS for c in columns) and members not in stages:
            stages.append(members)
    served = frozenset().union(*stages) if stages else frozenset()
    for p in range(n_ph):  # groups green only while something else is yellow
        members = frozenset(int(g) for g in np.flatnonzero(green[:, p]))
        if members - served and members not in stages:
            stages.append(members)
            served |= members
    return tuple(stages)


#: How much right of way a green character gives: yielding green < green after a stop < priority green.
_GREEN_RANK = {"g": 1, "s": 2, "G": 3}


def _green_ranks(stages: Sequence[frozenset[int]], columns: Sequence[str], green: np.ndarray) -> list[dict[int, int]]:
    """Per green set, each member's best right of way over the program's phases with that set."""
    rank: list[dict[int, int]] = []
    for members in stages:
        best: dict[int, int] = {}
        for p in range(green.shape[1]):
            if frozenset(np.flatnonzero(green[:, p]).tolist()) == members:
                for gi in members:
                    best[gi] = max(best.get(gi, 0), _GREEN_RANK.get(columns[gi][p], 0))
        rank.append(best)
    return rank


def yielding_members(
    stages: Sequence[frozenset[int]], columns: Sequence[str], green: np.ndarray
) -> tuple[frozenset[int], ...]:
    """Per stage, the members green there only as a yielding ``g`` that another stage protects.

    A permissive left turn (``g``) that the program also serves with a protected
    ``G`` (Wildau's main junction: ``GGgg`` then ``GGGG``) moves through gaps in
    the oncoming flow in the first set and freely in the second; a demand model
    that counted it as served in both would never call the protected phase.
    """
    rank = _green_ranks(stages, columns, green)
    best: dict[int, int] = {}
    for r in rank:
        for gi, v in r.items():
            best[gi] = max(best.get(gi, 0), v)
    return tuple(
        frozenset(gi for gi in members if rank[k].get(gi, 0) == _GREEN_RANK["g"] < best[gi])
        for k, members in enumerate(stages)
    )


def maximal_stages(
    stages: Sequence[frozenset[int]], columns: Sequence[str], green: np.ndarray
) -> tuple[frozenset[int], ...]:
    """The program's green sets without those another one dominates.

    A set A is dominated by a set B when A is a proper subset of B and no group of A has more
    right of way in A than in B (a protected left ``G`` that is permissive ``g`` in B keeps A).
    Serving A instead of B never moves more traffic: the programs of real junctions step
    through such subsets only to sequence overlaps and pedestrian clearances (the Braunschweig
    research intersection's program has 16 green sets, 7 of them maximal), and the safety
    supervisor already times every group's own clearances, so a controller choosing among
    subsets only loses capacity. Order is kept.
    """
    rank = _green_ranks(stages, columns, green)
    kept = []
    for a, members in enumerate(stages):
        dominated = any(
            members < other and all(rank[a].get(gi, 0) <= rank[b].get(gi, 0) for gi in members)
            for b, other in enumerate(stages)
            if b != a
        )
        if not dominated:
            kept.append(members)
    return tuple(kept)


# ---- reading the file --------------------------------------------------------------------


def _fail(path: Path, message: str) -> NetworkFileError:
    return NetworkFileError(message, where=str(path))


def _open(path: Path) -> Any:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _check_root(path: Path) -> None:
    """Fail early, with the parser's line, on non-XML and on XML that is not a SUMO net."""
    try:
        with _open(path) as f:
            for _event, elem in ET.iterparse(f, events=("start",)):
                if elem.tag != "net":
                    raise _fail(path, f"not a SUMO network: the root element is <{elem.tag}>, expected <net>")
                return
    except ET.ParseError as e:
        line, col = e.position
        reason = str(e).split(":", 1)[0]
        raise _fail(path, f"not well-formed XML at line {line}, column {col}: {reason}") from None
    except (OSError, EOFError) as e:
        raise _fail(path, f"cannot read the file: {e}") from None
    raise _fail(path, "not well-formed XML: no element found")


def _read_net(path: Path) -> Any:
    import sumolib  # lazily: the core must not import SUMO (DESIGN.md)

    try:
        return sumolib.net.readNet(
            str(path), withPrograms=True, withInternal=True, withPedestrianConnections=True, lxml=False
        )
    except xml.sax.SAXParseException as e:
        raise _fail(
            path, f"not well-formed XML at line {e.getLineNumber()}, column {e.getColumnNumber()}: {e.getMessage()}"
        ) from None
    except KeyError as e:
        raise _fail(path, f"not a valid SUMO network: missing attribute or element {e}") from None
    except (ValueError, AttributeError, IndexError, TypeError) as e:
        raise _fail(path, f"not a valid SUMO network: {e}") from None


# ---- one traffic light --------------------------------------------------------------------


@dataclass
class _Link:
    index: int
    conn: Any
    junction: Any
    junction_index: int
    pedestrian: bool


def _junction_link_indices(node: Any) -> dict[int, int] | None:
    """Right-of-way index of every connection of a junction, in one pass.

    The same enumeration as sumolib's ``Node.getLinkIndex`` (incoming lanes in
    ``incLanes`` order, each lane's connections in file order, walking-area
    links other than onto a crossing skipped), which is O(links) per call:
    too slow for a city. ``None`` when the junction's lanes cannot be
    resolved; callers then fall back to ``getLinkIndex``.
    """
    inc = getattr(node, "_incLanes", None)
    if inc is None:
        return None
    edges = {e.getID(): e for e in node.getIncoming()}
    out: dict[int, int] = {}
    k = 0
    for lane_id in inc:
        if not lane_id:
            continue
        edge_id, _, index = lane_id.rpartition("_")
        edge = edges.get(edge_id)
        if edge is None or not index.isdigit() or int(index) >= edge.getLaneNumber():
            return None
        for conn in edge.getLane(int(index)).getOutgoing():
            to_fn = conn.getToLane().getEdge().getFunction()
            from_fn = conn.getFromLane().getEdge().getFunction()
            if to_fn == "walkingarea" or (from_fn == "walkingarea" and to_fn != "crossing"):
                continue
            out[id(conn)] = k
            k += 1
    return out


def _links(tls: Any) -> list[_Link]:
    """The tls's controlled connections with their junction right-of-way index."""
    tls_id = tls.getID()
    junctions = {in_lane.getEdge().getToNode() for in_lane, _out, _i in tls.getConnections()}
    out: list[_Link] = []
    for node in sorted(junctions, key=lambda n: n.getID()):
        indices = _junction_link_indices(node)
        for conn in node.getConnections():
            if conn.getTLSID() != tls_id:
                continue
            ped = conn.getTo().getFunction() == "crossing"
            j_index = indices.get(id(conn), -1) if indices is not None else node.getLinkIndex(conn)
            for index in (conn.getTLLinkIndex(), conn.getTLLinkIndex2()):
                if index >= 0:
                    out.append(_Link(index, conn, node, j_index, ped))
    out.sort(key=lambda lk: (lk.index, lk.conn.getFromLane().getID()))
    return out


def _are_foes(a: _Link, b: _Link) -> bool:
    if a.junction is not b.junction:
        return False  # different junctions of a joined tls never share conflict area
    if a.junction_index < 0 or b.junction_index < 0:
        return True
    try:
        return bool(
            a.junction.areFoes(a.junction_index, b.junction_index)
            or a.junction.areFoes(b.junction_index, a.junction_index)
        )
    except (KeyError, IndexError):
        return True  # no right-of-way matrix: assume the worst


def _group_kind(links: list[_Link]) -> GroupKind:
    if links[0].pedestrian:
        return GroupKind.PEDESTRIAN
    motor: set[str] = set()
    others: set[str] = set()
    for lk in links:
        perms = set(lk.conn.getFromLane().getPermissions())
        motor |= perms & ROAD_MOTOR_CLASSES
        others |= perms
    if motor and motor <= {"bus", "coach"}:
        return GroupKind.BUS
    if not motor and "bicycle" in others:
        return GroupKind.BICYCLE
    return GroupKind.VEHICLE


def _group_id(links: list[_Link], kind: GroupKind) -> str:
    if kind is GroupKind.PEDESTRIAN:
        names: list[str] = []
        for lk in links:
            c = lk.conn.getTo().getID().lstrip(":")
            if c not in names:
                names.append(c)
        return "ped_" + "+".join(names)
    turns: dict[str, str] = {}
    for lk in links:
        e = lk.conn.getFrom().getID()
        t = TURNS.get(lk.conn.getDirection(), "s")
        if t not in turns.get(e, ""):
            turns[e] = turns.get(e, "") + t
    return "+".join(f"{e}_{t}" for e, t in turns.items())


def _movements(links: list[_Link], kind: GroupKind) -> tuple[Movement, ...]:
    by_pair: dict[tuple[str, str], tuple[list[str], str]] = {}
    for lk in links:
        c = lk.conn
        key = (c.getFrom().getID(), c.getTo().getID())
        turn = "p" if kind is GroupKind.PEDESTRIAN else TURNS.get(c.getDirection(), "s")
        lanes, _t = by_pair.setdefault(key, ([], turn))
        lane = c.getFromLane().getID()
        if lane not in lanes:
            lanes.append(lane)
    return tuple(Movement(f, t, tuple(sorted(lanes)), turn) for (f, t), (lanes, turn) in by_pair.items())


def _junction_width_m(node: Any) -> float:
    shape = node.getShape() or []
    if len(shape) < 3:
        return DEFAULT_CROSSING_WIDTH_M
    xy = np.asarray(shape, dtype=float)
    extent = xy.max(axis=0) - xy.min(axis=0)
    return float(extent.max()) or DEFAULT_CROSSING_WIDTH_M


@dataclass(frozen=True)
class _AddedProgram:
    tls_id: str
    program_id: str
    offset: float
    type: str
    phases: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class _Waut:
    ref_time_s: float
    start_program: str
    switches: tuple[tuple[float, str], ...]
    tls_ids: tuple[str, ...] = ()


def sumo_time_s(text: str | None, default: float = 0.0) -> float:
    """A SUMO time value in seconds: ``S`` or the clock form ``[[D:]H:]M:S`` (ValueError otherwise)."""
    if text is None or not text.strip():
        return default
    parts = [float(x) for x in text.strip().split(":")]
    if len(parts) > 4:
        raise ValueError(f"not a time: {text!r}")
    return float(sum(v * f for v, f in zip(reversed(parts), (1.0, 60.0, 3600.0, 86400.0), strict=False)))


def additional_programs(files: Sequence[str | Path]) -> tuple[list[_AddedProgram], dict[str, _Waut]]:
    """``tlLogic`` and ``WAUT`` elements of a scenario's additional files, in load order.

    Returns the programs and, per traffic light, the WAUT that schedules it. Files that
    do not exist or are not XML are the simulation's business (SUMO names them); here
    they are skipped.
    """
    programs: list[_AddedProgram] = []
    wauts: dict[str, _Waut] = {}
    junction_waut: list[tuple[str, str]] = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            continue
        try:
            with _open(path) as fh:
                for _ev, el in ET.iterparse(fh, events=("end",)):
                    if el.tag == "tlLogic":
                        phases = tuple(dict(ph.attrib) for ph in el if ph.tag == "phase")
                        programs.append(
                            _AddedProgram(
                                el.get("id", ""),
                                el.get("programID", "0"),
                                sumo_time_s(el.get("offset")),
                                el.get("type", "static"),
                                phases,
                            )
                        )
                        el.clear()
                    elif el.tag == "WAUT":
                        switches = tuple(
                            sorted(
                                (sumo_time_s(sw.get("time")), sw.get("to", "")) for sw in el if sw.tag == "wautSwitch"
                            )
                        )
                        wauts[el.get("id", "")] = _Waut(
                            sumo_time_s(el.get("refTime")), el.get("startProg", ""), switches
                        )
                    elif el.tag == "wautJunction":
                        junction_waut.append((el.get("wautID", ""), el.get("junctionID", "")))
        except (ET.ParseError, OSError, EOFError, ValueError):
            continue  # SUMO itself names what is wrong with the file when it loads it
    by_tls: dict[str, _Waut] = {}
    for waut_id, tls_id in junction_waut:
        if waut_id in wauts:
            by_tls[tls_id] = wauts[waut_id]
    return programs, by_tls


def _waut_program(waut: _Waut, begin_s: float) -> str:
    """The program a WAUT runs at ``begin_s``: the last switch at or before it, else its start."""
    current = waut.start_program
    for t, to in waut.switches:
        if waut.ref_time_s + t <= begin_s + 1e-9:
            current = to
    return current


def _add_programs(net: Any, added: Sequence[_AddedProgram]) -> dict[str, str]:
    """Attach the additional files' programs to the net's lights; returns tls -> last loaded id."""
    import sumolib

    last: dict[str, str] = {}
    for tls in net.getTrafficLights():
        progs = tls.getPrograms()
        if progs:
            last[tls.getID()] = list(progs)[-1]
    by_id = {t.getID(): t for t in net.getTrafficLights()}
    for ap in added:
        tls = by_id.get(ap.tls_id)
        if tls is None:
            continue  # a program for a junction the net does not signalise: SUMO's business
        prog = sumolib.net.TLSProgram(ap.program_id, ap.offset, ap.type)
        for ph in ap.phases:
            prog.addPhase(
                ph.get("state", ""),
                sumo_time_s(ph.get("duration")),
                sumo_time_s(ph.get("minDur"), -1.0),
                sumo_time_s(ph.get("maxDur"), -1.0),
                None,
                ph.get("name", ""),
            )
        tls.getPrograms().pop(ap.program_id, None)
        tls.addProgram(prog)
        last[ap.tls_id] = ap.program_id
    return last


def _select_programs(
    tlss: list[Any],
    program_id: str | None,
    path: Path,
    *,
    last: dict[str, str] | None = None,
    wauts: dict[str, _Waut] | None = None,
    begin_s: float = 0.0,
) -> list[Any]:
    """One program per traffic light: ``program_id``, or the one SUMO would run."""
    if program_id is None:
        chosen = []
        for tls in tlss:
            progs = tls.getPrograms()
            pid = (last or {}).get(tls.getID(), list(progs)[-1])
            waut = (wauts or {}).get(tls.getID())
            if waut is not None and _waut_program(waut, begin_s) in progs:
                pid = _waut_program(waut, begin_s)
            chosen.append(progs[pid])
        return chosen
    lacking = [tls for tls in tlss if program_id not in tls.getPrograms()]
    if lacking:
        first = lacking[0]
        more = f"; {len(lacking) - 1} more traffic lights lack it" if len(lacking) > 1 else ""
        raise _fail(
            path,
            f"unknown program {program_id!r}: traffic light {first.getID()} has no such program "
            f"(its programs: {', '.join(sorted(first.getPrograms()))}){more}",
        )
    return [tls.getPrograms()[program_id] for tls in tlss]


def _junction_parts(links: list[_Link]) -> list[list[_Link]]:
    """A light's links split by part (module docstring: a light over several junctions): junctions
    linked by a road shorter than :data:`JOINED_PART_LINK_M` share a part; parts in the order of
    their lowest link index."""
    root = {lk.junction.getID(): lk.junction.getID() for lk in links}

    def find(j: str) -> str:
        while root[j] != j:
            root[j] = root[root[j]]
            j = root[j]
        return j

    if len(root) > 1:
        for node in {lk.junction for lk in links}:
            for edge in node.getOutgoing():
                other = edge.getToNode().getID()
                if other in root and float(edge.getLength()) < JOINED_PART_LINK_M:
                    root[find(node.getID())] = find(other)
    parts: dict[str, list[_Link]] = {}
    for lk in links:
        parts.setdefault(find(lk.junction.getID()), []).append(lk)
    return sorted(parts.values(), key=lambda part: min(lk.index for lk in part))


def _serves_in_turn(states: Sequence[str], durations: Sequence[float], parts: Sequence[Sequence[_Link]]) -> bool:
    """Whether the program serves its parts one at a time: in no green phase (no yellow) do two parts
    show other than their own most shown green set (by time). netconvert's programs for joined
    junctions do so (each junction's side road in turn while the others keep their main road); a
    coordinated program moves several junctions at once (a pair that clears the link between them,
    offsets), and that is its coordination."""
    local: list[list[frozenset[int] | None]] = []
    for part in parts:
        sets: list[frozenset[int] | None] = []
        for state in states:
            chars = [state[lk.index] for lk in part]
            no_transition = not TRANSITION_CHARS & set(chars)
            sets.append(frozenset(k for k, c in enumerate(chars) if c in GREEN_CHARS) if no_transition else None)
        local.append(sets)
    mains = []
    for sets in local:
        shown: dict[frozenset[int], float] = {}
        for green, d in zip(sets, durations, strict=True):
            if green:
                shown[green] = shown.get(green, 0.0) + d
        mains.append(max(shown, key=lambda g: shown[g]) if shown else frozenset())
    for p in range(len(states)):
        if any(sets[p] is None for sets in local) or not any(sets[p] for sets in local):
            continue  # a transition somewhere, or all red: not a stage
        if sum(sets[p] != main for sets, main in zip(local, mains, strict=True)) > 1:
            return False
    return True


def _intersections(tls: Any, program: Any, path: Path) -> list[tuple[Intersection, frozenset[str]]]:
    """One traffic light and its running program as intersections, one per part, each with the ids
    of its junctions. A part none of whose links is ever green is left to the program (its links
    stay red, as the program shows them)."""
    tls_id = tls.getID()
    phases, states, links = _checked_program(tls, program, path)
    parts = _junction_parts(links)
    if len(parts) > 1 and not _serves_in_turn(states, [float(p.duration) for p in phases], parts):
        parts = [links]  # the program moves its junctions together: one sequence, as programmed
    if len(parts) > 1:
        parts = [p for p in parts if any(GREEN_CHARS & {s[lk.index] for s in states} for lk in p)] or parts[:1]
    out = []
    for part in parts:
        junctions = frozenset(lk.junction.getID() for lk in part)
        iid = tls_id if len(parts) == 1 else f"{tls_id}@{'+'.join(sorted(junctions))}"
        out.append((_intersection(tls_id, iid, program, phases, states, part, path), junctions))
    return out


def _intersection(
    tls_id: str, iid: str, program: Any, phases: list[Any], states: list[str], links: list[_Link], path: Path
) -> Intersection:
    """The links of one part of a traffic light and its running program as an intersection (module
    docstring: groups, conflicts, clearances, stages), in steps: its links grouped by state column,
    the program's timing, conflicts, clearances, then the groups and stages themselves."""
    columns, group_links = _link_groups(tls_id, program, links, states, path)
    timing = program_timing(
        columns,
        [float(p.duration) for p in phases],
        min_durations_s=[float(p.minDur) for p in phases],
        max_durations_s=[float(p.maxDur) for p in phases],
    )
    kinds = [_group_kind(gl) for gl in group_links]
    conflicts = _link_conflicts(timing, group_links)
    clear = _clearances(timing, group_links, kinds, conflicts)
    groups = _signal_groups(timing, group_links, kinds, clear)
    kept = maximal_stages(timing.stages, columns, timing.green)
    yielding = yielding_members(kept, columns, timing.green)
    stages = tuple(
        Stage(f"S{k + 1}", frozenset(groups[g].id for g in members), frozenset(groups[g].id for g in yielding[k]))
        for k, members in enumerate(kept)
    )
    junctions = {lk.junction for lk in links}
    coords = np.array([j.getCoord() for j in junctions], dtype=float)
    return Intersection(
        id=iid,
        groups=tuple(groups),
        conflicts=conflicts,
        intergreen_s=clear.intergreen_s,
        stages=stages,
        x_m=float(coords[:, 0].mean()),
        y_m=float(coords[:, 1].mean()),
        approach_speed_m_s=_approach_speeds(group_links, kinds),
        tls_id=tls_id,
    )


def _checked_program(tls: Any, program: Any, path: Path) -> tuple[list[Any], list[str], list[_Link]]:
    """The program's phases and states and the light's links, or one error naming what is unusable."""
    tls_id = tls.getID()
    phases = program.getPhases()
    if not phases:
        raise _fail(path, f"traffic light {tls_id}: program {program._id!r} has no phases")
    states = [p.state for p in phases]
    if sum(float(p.duration) for p in phases) <= 0:
        raise _fail(path, f"traffic light {tls_id}: program {program._id!r} has a zero cycle")
    width = min(len(s) for s in states)
    if width != max(len(s) for s in states):
        raise _fail(path, f"traffic light {tls_id}: phase states of program {program._id!r} differ in length")
    links = _links(tls)
    if not links:
        raise _fail(path, f"traffic light {tls_id} controls no connections")
    too_big = sorted({lk.index for lk in links if lk.index >= width})
    if too_big:
        raise _fail(path, f"traffic light {tls_id}: link indices {too_big} are beyond its {width}-character state")
    return phases, states, links


def _link_groups(
    tls_id: str, program: Any, links: list[_Link], states: list[str], path: Path
) -> tuple[list[str], list[list[_Link]]]:
    """Signal groups as links with identical state columns (and the same kind of road user),
    in the order of their lowest link index; their columns beside them."""
    by_key: dict[tuple[bool, str], list[_Link]] = {}
    for lk in links:
        column = "".join(s[lk.index] for s in states)
        if not GREEN_CHARS & set(column):
            continue
        by_key.setdefault((lk.pedestrian, column), []).append(lk)
    if not by_key:
        raise _fail(path, f"traffic light {tls_id}: no link is ever green in program {program._id!r}")
    keys = sorted(by_key, key=lambda k: min(lk.index for lk in by_key[k]))
    return [k[1] for k in keys], [by_key[k] for k in keys]


def _link_conflicts(timing: ProgramTiming, group_links: list[list[_Link]]) -> np.ndarray:
    """Groups in conflict: never green together in the program, and foes at the junction."""
    n = len(group_links)
    conflicts = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            if (timing.green[i] & timing.green[j]).any():
                continue
            if any(_are_foes(a, b) for a in group_links[i] for b in group_links[j]):
                conflicts[i, j] = conflicts[j, i] = True
    return conflicts


@dataclass(frozen=True)
class _Clearances:
    yellow_s: np.ndarray  # (G,)
    all_red_s: np.ndarray  # (G,)
    ped_clearance_s: np.ndarray  # (G,)
    intergreen_s: np.ndarray  # (G, G)


def _clearances(
    timing: ProgramTiming, group_links: list[list[_Link]], kinds: list[GroupKind], conflicts: np.ndarray
) -> _Clearances:
    """Yellow, all-red, pedestrian clearance and intergreens: the program's own clearance from
    its direct transitions, ITE / MUTCD where it shows none."""
    speeds = np.array(
        [max((lk.conn.getFromLane().getSpeed() for lk in gl), default=1.0) for gl in group_links], dtype=float
    )
    widths = np.array([max(_junction_width_m(lk.junction) for lk in gl) for gl in group_links])
    is_ped = np.array([k is GroupKind.PEDESTRIAN for k in kinds])
    crossing_clear = np.array(
        [
            float(ped_clearance_s(max(lk.conn.getToLane().getLength() for lk in gl))) if ped else 0.0
            for gl, ped in zip(group_links, is_ped, strict=True)
        ]
    )

    yellow = timing.yellow_s.copy()
    no_yellow = (yellow <= 0) & ~is_ped
    if no_yellow.any():
        yellow[no_yellow] = ite_yellow_s(speeds[no_yellow])
    yellow[is_ped] = 0.0
    measured = np.where(conflicts, timing.intergreen_s, np.inf)
    direct_min = measured.min(axis=1)
    has_direct = np.isfinite(direct_min)
    ite_red = ite_all_red_s(speeds, crossing_width_m=widths)
    ped_clear = np.where(has_direct, np.minimum(crossing_clear, direct_min), crossing_clear)
    must_cover = np.where(is_ped, ped_clear, yellow)  # what the model requires every intergreen to cover
    all_red = np.where(
        has_direct,
        np.maximum(direct_min - must_cover, 0.0),
        np.where(conflicts.any(axis=1) & ~is_ped, ite_red, 0.0),
    )
    fallback = np.maximum(must_cover + all_red, np.where(is_ped, crossing_clear, yellow + ite_red))
    ig = np.where(np.isfinite(measured), measured, fallback[:, None])
    ig = np.where(conflicts, np.maximum(ig, must_cover[:, None]), 0.0)
    return _Clearances(yellow, all_red, ped_clear, ig)


def _signal_groups(
    timing: ProgramTiming, group_links: list[list[_Link]], kinds: list[GroupKind], clear: _Clearances
) -> list[SignalGroup]:
    """The groups with unique ids, their greens bounded by the program's and the defaults."""
    groups: list[SignalGroup] = []
    ids: set[str] = set()
    for g, (gl, kind) in enumerate(zip(group_links, kinds, strict=True)):
        gid = base = _group_id(gl, kind)
        k = 2
        while gid in ids:
            gid, k = f"{base}.{k}", k + 1
        ids.add(gid)
        shortest = float(timing.shortest_green_s[g])
        max_green = max(DEFAULT_MAX_GREEN_S, float(timing.longest_green_s[g]), float(timing.longest_max_green_s[g]))
        common: dict[str, Any] = {
            "id": gid,
            "kind": kind,
            "movements": _movements(gl, kind),
            "link_indices": tuple(sorted({lk.index for lk in gl})),
            "all_red_s": float(clear.all_red_s[g]),
        }
        if kind is GroupKind.PEDESTRIAN:
            walk = min(DEFAULT_WALK_S, shortest) if shortest > 0 else DEFAULT_WALK_S
            groups.append(
                SignalGroup(
                    **common,
                    min_green_s=walk,
                    max_green_s=max(max_green, walk),
                    yellow_s=0.0,
                    walk_s=walk,
                    ped_clearance_s=float(clear.ped_clearance_s[g]),
                )
            )
        else:
            if not np.isnan(timing.shortest_min_green_s[g]):
                min_green = float(timing.shortest_min_green_s[g])
            else:
                min_green = min(DEFAULT_MIN_GREEN_S, shortest) if shortest > 0 else DEFAULT_MIN_GREEN_S
            groups.append(
                SignalGroup(
                    **common,
                    min_green_s=min_green,
                    max_green_s=max(max_green, min_green),
                    yellow_s=float(clear.yellow_s[g]),
                )
            )
    return groups


def _approach_speeds(group_links: list[list[_Link]], kinds: list[GroupKind]) -> dict[str, float]:
    """Each vehicle approach edge's fastest lane speed (m/s), by edge id."""
    approach: dict[str, float] = {}
    for gl, kind in zip(group_links, kinds, strict=True):
        if kind is GroupKind.PEDESTRIAN:
            continue
        for lk in gl:
            e = lk.conn.getFrom()
            approach[e.getID()] = max(lane.getSpeed() for lane in e.getLanes())
    return dict(sorted(approach.items()))


# ---- the road graph ---------------------------------------------------------------------


def tls_of_junctions(tlss: Iterable[Any]) -> dict[str, str]:
    """Junction id -> the sumolib traffic light controlling it (a joined light controls several)."""
    return {
        in_lane.getEdge().getToNode().getID(): tls.getID()
        for tls in tlss
        for in_lane, _out, _i in tls.getConnections()
    }


def _road_graph(net: Any, tls_of: dict[str, str]) -> nx.DiGraph[str]:
    graph: nx.DiGraph[str] = nx.DiGraph()
    for node in net.getNodes():
        nid = node.getID()
        if nid.startswith(":") or node.getCoord3D() is None:
            continue
        x, y = node.getCoord()
        graph.add_node(nid, x_m=float(x), y_m=float(y), signalised=nid in tls_of, tls=tls_of.get(nid, ""))
    chosen: dict[tuple[str, str], tuple[int, Any]] = {}
    for edge in net.getEdges(withInternal=False):
        lanes = [ln for ln in edge.getLanes() if set(ln.getPermissions()) & ROAD_MOTOR_CLASSES]
        if not lanes:
            continue  # footpaths, cycle paths, rail
        key = (edge.getFromNode().getID(), edge.getToNode().getID())
        # A DiGraph holds one link per node pair: keep the widest of parallel edges.
        if key not in chosen or len(lanes) > chosen[key][0]:
            chosen[key] = (len(lanes), edge)
    kept = {edge.getID() for _n, edge in chosen.values()}
    graph.graph["other_edges"] = frozenset(e.getID() for e in net.getEdges(withInternal=False)) - kept
    for (a, b), (n_lanes, edge) in chosen.items():
        speed = max(ln.getSpeed() for ln in edge.getLanes() if set(ln.getPermissions()) & ROAD_MOTOR_CLASSES)
        add_link(
            graph,
            a,
            b,
            id=edge.getID(),
            length_m=float(edge.getLength()),
            free_speed_m_s=float(speed),
            lanes=n_lanes,
            saturation_flow_pcu_h=n_lanes * SATURATION_FLOW_PCU_H_PER_LANE,
        )
    return graph


#: Why a controlled junction without any ``tlLogic`` is left alone: SUMO runs rail signals and
#: rail crossings by its own logic (they have link indices but no signal program).
RAIL_REASON = "no signal program (a rail signal or rail crossing): SUMO runs it by its own logic"


def _programs_in_use(
    path: Path, additional_files: Sequence[str | Path], program_id: str | None, begin_s: float
) -> tuple[Any, list[Any], list[Any], list[str]]:
    """The net (sumolib), its programmed traffic lights in id order, the program each runs, and
    the ids of controlled junctions without a program (rail signals and crossings)."""
    net = _read_net(path)
    added, wauts = additional_programs(additional_files)
    last = _add_programs(net, added)
    every = sorted(net.getTrafficLights(), key=lambda t: t.getID())
    tlss = [t for t in every if t.getPrograms()]
    rail = [t.getID() for t in every if not t.getPrograms()]
    if not tlss:
        raise _fail(path, "no traffic-light-controlled junctions (no <tlLogic> with controlled connections)")
    programs = _select_programs(tlss, program_id, path, last=last, wauts=wauts, begin_s=begin_s)
    return net, tlss, programs, rail


def running_programs(
    path: str | Path, additional_files: Sequence[str | Path] = (), *, begin_s: float = 0.0
) -> dict[str, list[str]]:
    """Phase state strings of the program SUMO runs per traffic light (see the module docstring)."""
    path = Path(path)
    _net, tlss, programs, _rail = _programs_in_use(path, additional_files, None, begin_s)
    return {t.getID(): [ph.state for ph in p.getPhases()] for t, p in zip(tlss, programs, strict=True)}


def load_sumo_net(
    path: str | Path,
    *,
    program_id: str | None = None,
    additional_files: Sequence[str | Path] = (),
    begin_s: float = 0.0,
    programs_out: dict[str, list[str]] | None = None,
) -> Network:
    """Load a SUMO network: one intersection per traffic light, plus the road graph.

    ``program_id`` picks the signal program of every traffic light (each must
    have it); by default each uses the program SUMO runs at ``begin_s`` given
    the scenario's ``additional_files`` (their ``tlLogic`` and ``WAUT``
    elements). Intersections come in traffic-light id order. A traffic light
    the model cannot hold keeps its own program and is listed in
    ``Network.unmodelled`` with the reason. Raises
    :class:`~intersections.errors.NetworkFileError` (``where`` = the file) for a
    missing or malformed file, a file that is not a SUMO net, a net without
    traffic lights, an unknown program, or a net none of whose traffic lights
    can be modelled. The conversion rules are in the module docstring. ``programs_out``, when
    given, receives what :func:`running_programs` returns, from the same parse (a run needs
    both, and a city's net takes seconds to read).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found" if not path.exists() else "not a file")
    _check_root(path)
    net, tlss, programs, rail = _programs_in_use(path, additional_files, program_id, begin_s)
    if programs_out is not None:
        for t, prog in zip(tlss, programs, strict=True):
            programs_out[t.getID()] = [ph.state for ph in prog.getPhases()]
    intersections = []
    unmodelled: list[tuple[str, str]] = [(r, RAIL_REASON) for r in rail]
    # the graph's ``tls`` attribute: the intersection a junction belongs to (a part of a joined light)
    tls_of = tls_of_junctions(tlss)
    for tls, program in zip(tlss, programs, strict=True):
        try:
            parts = _intersections(tls, program, path)
        except NetworkFileError as e:
            unmodelled.append((tls.getID(), e.message))
            continue
        except InputError as e:
            unmodelled.append((tls.getID(), f"traffic light {tls.getID()}: {e.message}"))
            continue
        for inter, junctions in parts:
            intersections.append(inter)
            tls_of.update(dict.fromkeys(junctions, inter.id))
    if not intersections:
        reasons = "; ".join(r for _t, r in unmodelled[:3])
        raise _fail(path, f"no traffic light greenwave can model ({len(unmodelled)} refused: {reasons})")
    return Network(tuple(intersections), _road_graph(net, tls_of), str(path), unmodelled=tuple(sorted(unmodelled)))
