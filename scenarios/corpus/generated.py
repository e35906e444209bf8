"""The generated half of the development corpus: irregular netgenerate networks at three demand levels.

Issue #15. Each :class:`NetworkRecipe` is one ``netgenerate`` call (``--rand``, ``--spider`` or
``--grid``) with a fixed seed, optionally followed by a ``netconvert`` pass that makes some streets
one-way. The recipes are chosen to carry the features that real city networks have and plain grids
lack (``/work/shared/reference/real-networks.md``): closely spaced junctions joined into one
``tlLogic`` (``--tls.join``) or into one node (``--junctions.join``), very short lanes between them,
turn pockets (``--turn-lanes``), one-way streets (``--bidi-probability`` < 1, or one direction
removed with ``--remove-edges.explicit``), pedestrian crossings with their own link indices
(``--sidewalks.guess --crossings.guess``), permissive ``g`` left turns and prohibited lefts
(``--tls.left-green.time``, ``--no-left-connections``), actuated programs with ``minDur``/``maxDur``
(``--tls.default-type actuated``), and junctions of which only some are signalised
(``--tls.guess.threshold``, ``--tls.set``).

Demand (one rule for every network, no per-network tuning)
    The network's signalised capacity is estimated from its own structure (:func:`capacity_pcu_h`):
    a lane of a signalised approach carries 1,900 pcu/h (HCM 6th ed. base saturation flow) x 0.45
    (effective green ratio), and the capacity is the smaller of the sum of that over the fringe
    entry lanes and the total demand at which the most loaded signalised approach, given how 500
    trips drawn like the demand are routed, reaches its own. The three levels of
    :data:`~scenarios.corpus.DEMAND_LEVELS` are 0.35, 0.8 and 1.2 of it.
    Vehicles per hour follow from the mix's mean passenger-car units: motorcycle 0.3 (Vietnamese
    practice 0.25-0.3, Sugiarto et al. 2021: 0.24), car 1.0, truck 2.0, bus 2.5 (buses / 2-axle
    trucks 2.0-2.5): ``/work/shared/reference/motorcycles-and-algorithms.md`` D2. randomTrips.py
    draws fringe-to-fringe trips (``--fringe-factor max``) at least half the network's smaller
    extent long, departing at random over the whole horizon (``--period`` = 3600 / veh_h,
    ``--random-depart``), and checks each with duarouter (``--validate``), so every trip has a
    route. Vehicle types are then dealt to the trips in exact shares, shuffled with the seed.

Mixes
    ``moto``: the library's Hanoi mix (:data:`scenarios.library.VEHICLE_MIX`: 80 % motorcycles,
    15 % cars, 2 % buses, 3 % trucks; counted streams at Hanoi signals are 80-95 % motorcycles,
    Nguyen & Montgomery 2007) with the library's Hanoi-calibrated vTypes (those of
    ``scenarios/defs/hanoi_mixed.toml``, not the older lane-based ones of
    :func:`scenarios.library.write_vtypes`: only the calibrated scooter, ~6,100/h from one lane,
    is worth the 0.3 pcu the demand assumes) and SUMO's sublane model
    (``--lateral-resolution`` 0.7 m, no wider than a 0.7 m scooter, reference D4); ``car``: 95 %
    cars and 5 % trucks, lane-based. Each network gets both mixes over its three levels (the mix
    alternates by level, starting with ``moto`` or ``car`` by recipe index); recipes marked
    ``all_mixes`` get all six combinations. Pedestrian recipes also get person trips on their
    sidewalks.

Every entry runs 0-1800 s with teleporting off (``--time-to-teleport -1``: the protocol of
independent evaluations, reference real-networks.md), so a gridlock stays a gridlock; only a
vehicle standing 60 s inside a junction stops blocking it (:data:`JUNCTION_BLOCKER_S`).

Layout and cache::

    <out>/gen/<net>/<net>.net.xml
    <out>/gen/<net>/<demand>_<mix>.rou.xml      vTypes and the trips
    <out>/gen/<net>/<demand>.ped.rou.xml        pedestrian recipes only
    <out>/gen/<net>/<demand>_<mix>.sumocfg
    <out>/gen/<net>/build.json                  recipe + SUMO version + what was found in the net

A folder whose ``build.json`` key matches the recipe, the builder version and the SUMO version,
and whose files all exist, is reused untouched.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intersections.errors import InputError, SimulationError
from scenarios.corpus import DEMAND_LEVELS, CorpusEntry
from scenarios.library import (
    _CFG_SECTIONS,
    VEHICLE_MIX,
    SumoSpec,
    _fmt,
    _run,
    _strip_timestamp,
    _sumo_version,
    _xml_attrs,
    load_scenario_def,
)
from simulation.detectors import MIN_SINGLE_LANE_ZONE_M
from simulation.sumo_home import sumo_binary, sumo_home

__all__ = [
    "GENERATED_NETWORKS",
    "LEVEL_FRACTION",
    "MIXES",
    "NetworkRecipe",
    "PCU",
    "build_generated",
    "capacity_pcu_h",
    "entry_mixes",
    "net_features",
]

# Bump when the generated files change for the same recipe (invalidates caches).
_BUILD_VERSION = "2"

BEGIN_S = 0.0
END_S = 1800.0

#: Demand as a fraction of the estimated signalised capacity (issue #15).
LEVEL_FRACTION: dict[str, float] = {"light": 0.35, "near": 0.8, "over": 1.2}

#: Saturation flow per lane (HCM 6th ed. base, pc/h/ln) and the effective green ratio assumed on
#: every lane of a signalised approach (capacity_pcu_h).
SATURATION_PCU_H_LANE = 1900.0
GREEN_RATIO = 0.45

#: Passenger-car units per vType (motorcycles-and-algorithms.md D2: motorcycle 0.25-0.3, buses / 2-axle trucks 2.0-2.5).
PCU: dict[str, float] = {"motorcycle": 0.3, "car": 1.0, "bus": 2.5, "truck": 2.0}

#: Vehicle shares of each mix; ``moto`` is the library's Hanoi mix.
MIXES: dict[str, dict[str, float]] = {"moto": dict(VEHICLE_MIX), "car": {"car": 0.95, "truck": 0.05}}

#: A vehicle standing this long inside a junction no longer blocks the others (SUMO's
#: --ignore-junction-blocker). With teleporting off, a single left-turner stuck on an internal
#: lane of the sublane model otherwise locks a light-demand net for the rest of the run, a SUMO
#: artefact rather than a control failure. It is not a teleport: the blocker stays and drives on.
JUNCTION_BLOCKER_S = 60.0

#: Trips drawn (and routed) to find how demand spreads over the approaches (capacity_pcu_h).
PROBE_TRIPS = 500

#: Library scenario whose vTypes the corpus uses: its motorcycle discharges ~6,100/h from one
#: 3.5 m lane in the sublane model (docs/scenarios.md, capacity check), about 0.3 pcu, the
#: factor the demand assumes.
VTYPES_FROM = "hanoi_mixed"

#: Pedestrians per hour per signal at the ``near`` level, scaled like the vehicles at the others.
PEDESTRIANS_PER_SIGNAL_H = 120.0

#: Sublane resolution of the moto mix: no wider than the library's 0.7 m motorcycle.
LATERAL_RESOLUTION_M = 0.7

_KIND_FLAG = {"random": "--rand", "spider": "--spider", "grid": "--grid"}
_ONE_WAY_RULES = ("", "rows", "cols", "ring")
_FEATURES = frozenset(
    "short_lanes additional_programs waut joined permissive pedestrians never_green actuated_phases "
    "one_way turn_pockets".split()
)
# netconvert options that rebuild programs and must be given again when a net is re-read
_TLS_REPEAT_PREFIXES = ("--tls.", "--no-left-connections")


@dataclass(frozen=True)
class NetworkRecipe:
    """One generated network: a seeded ``netgenerate`` call and an optional one-way pass.

    ``params`` are netgenerate options beyond the common ones (speed, lane width, seed);
    ``features`` the failure classes the recipe is meant to exercise (checked against what the
    built net holds); ``one_way`` removes one direction of whole streets after generation:
    ``rows`` / ``cols`` alternate the direction of horizontal / vertical streets (one-way
    couplets), ``ring`` keeps one direction of a spider's circles; ``all_mixes`` builds every
    level with both mixes.
    """

    name: str
    kind: str
    params: tuple[str, ...]
    seed: int
    features: tuple[str, ...] = ()
    one_way: str = ""
    all_mixes: bool = False

    def __post_init__(self) -> None:
        if self.kind not in _KIND_FLAG:
            raise InputError(f"kind must be one of {sorted(_KIND_FLAG)}, got {self.kind!r}", where=self.name)
        if self.one_way not in _ONE_WAY_RULES:
            raise InputError(f"one_way must be one of {_ONE_WAY_RULES}, got {self.one_way!r}", where=self.name)
        unknown = set(self.features) - _FEATURES
        if unknown:
            raise InputError(f"unknown features {sorted(unknown)}", where=self.name)

    @property
    def pedestrians(self) -> bool:
        return "--sidewalks.guess" in self.params

    def netgenerate_args(self, out: str) -> list[str]:
        return [
            sumo_binary("netgenerate"),
            _KIND_FLAG[self.kind],
            "--default.speed=13.89",
            "--default.lanewidth=3.5",
            f"--seed={self.seed}",
            *self.params,
            "-o",
            out,
        ]


# --------------------------------------------------------------------------------------
# The recipes
# --------------------------------------------------------------------------------------

_ACT = "--tls.default-type=actuated"
_PED = ("--sidewalks.guess", "--crossings.guess")
_NO_LEFT = "--no-left-connections"
_PERMISSIVE = "--tls.left-green.time=0"  # no protected left phases: lefts filter through (g)


def _random(
    name: str,
    seed: int,
    *,
    iterations: int,
    lanes: int = 2,
    bidi: float = 1.0,
    min_m: float = 100.0,
    max_m: float = 250.0,
    extra: Sequence[str] = (),
    features: Sequence[str] = (),
    all_mixes: bool = False,
) -> NetworkRecipe:
    params = [
        f"--rand.iterations={iterations}",
        f"--rand.min-distance={_fmt(min_m)}",
        f"--rand.max-distance={_fmt(max_m)}",
        f"--default.lanenumber={lanes}",
        f"--bidi-probability={_fmt(bidi)}",
        "--tls.guess",
        *extra,
    ]
    feats = list(features)
    if bidi < 1.0:
        feats.append("one_way")
    return NetworkRecipe(name, "random", tuple(params), seed, tuple(sorted(set(feats))), all_mixes=all_mixes)


def _spider(
    name: str,
    seed: int,
    *,
    arms: int,
    circles: int,
    radius_m: float,
    lanes: int = 2,
    attach_m: float = 150.0,
    extra: Sequence[str] = (),
    features: Sequence[str] = (),
    one_way: str = "",
    all_mixes: bool = False,
) -> NetworkRecipe:
    params = [
        f"--spider.arm-number={arms}",
        f"--spider.circle-number={circles}",
        f"--spider.space-radius={_fmt(radius_m)}",
        f"--spider.attach-length={_fmt(attach_m)}",
        f"--default.lanenumber={lanes}",
    ]
    return _shaped("spider", name, seed, params, extra, features, one_way, all_mixes)


def _grid(
    name: str,
    seed: int,
    *,
    x: int,
    y: int,
    x_m: float,
    y_m: float,
    lanes: int = 2,
    attach_m: float = 150.0,
    extra: Sequence[str] = (),
    features: Sequence[str] = (),
    one_way: str = "",
    all_mixes: bool = False,
) -> NetworkRecipe:
    params = [
        f"--grid.x-number={x}",
        f"--grid.y-number={y}",
        f"--grid.x-length={_fmt(x_m)}",
        f"--grid.y-length={_fmt(y_m)}",
        f"--grid.attach-length={_fmt(attach_m)}",
        f"--default.lanenumber={lanes}",
    ]
    return _shaped("grid", name, seed, params, extra, features, one_way, all_mixes)


def _shaped(
    kind: str,
    name: str,
    seed: int,
    params: list[str],
    extra: Sequence[str],
    features: Sequence[str],
    one_way: str,
    all_mixes: bool,
) -> NetworkRecipe:
    """Spider and grid recipes: guessed signals unless set, one-way and pocket features from the options."""
    params = [*params, *extra]
    if not any(p.startswith("--tls.set") for p in extra):
        params.append("--tls.guess")
    feats = list(features) + (["one_way"] if one_way else [])
    if any(p.startswith("--turn-lanes=") for p in extra):
        feats.append("turn_pockets")
    return NetworkRecipe(
        name, kind, tuple(params), seed, tuple(sorted(set(feats))), one_way=one_way, all_mixes=all_mixes
    )


def _turn(n: int, length_m: float) -> tuple[str, str]:
    return (f"--turn-lanes={n}", f"--turn-lanes.length={_fmt(length_m)}")


#: The generated networks. Seeds are fixed, so every build is the same net.
# fmt: off
GENERATED_NETWORKS: tuple[NetworkRecipe, ...] = (
    # ---- random: irregular street patterns, varied node degree, lanes and one-way share
    _random("rand01", 101, iterations=30, all_mixes=True),
    _random("rand02", 102, iterations=30, lanes=3, extra=("--random-lanenumber",)),
    _random("rand03", 103, iterations=40, bidi=0.8, extra=(_ACT,), features=("actuated_phases",)),
    _random("rand04", 104, iterations=60, lanes=2, extra=("--random-lanenumber", _PERMISSIVE),
            features=("permissive",)),
    _random("rand05", 105, iterations=35, min_m=30, max_m=200, extra=("--tls.join", "--tls.join-dist=45"),
            features=("joined",)),
    _random("rand06", 106, iterations=50, bidi=0.7, lanes=2, extra=("--random-lanenumber",), all_mixes=True),
    _random("rand07", 107, iterations=25, lanes=1, extra=("--tls.guess.threshold=35",)),
    _random("rand08", 108, iterations=40, extra=(*_PED,), features=("pedestrians",)),
    _random("rand09", 109, iterations=55, min_m=20, max_m=180,
            extra=("--junctions.join", "--junctions.join-dist=25", "--tls.join", "--tls.join-dist=40"),
            features=("joined",)),
    _random("rand10", 110, iterations=35, extra=(*_turn(1, 30), _ACT), features=("turn_pockets", "actuated_phases")),
    _random("rand11", 111, iterations=45, bidi=0.9, extra=(_NO_LEFT,)),
    _random("rand12", 112, iterations=30, lanes=3, extra=("--random-lanenumber", "--rand.grid")),
    _random("rand13", 113, iterations=35, lanes=1, extra=("--tls.guess.threshold=40", _ACT),
            features=("actuated_phases",)),
    _random("rand14", 114, iterations=40, bidi=0.85, extra=(*_PED, _ACT), features=("pedestrians", "actuated_phases")),
    _random("rand15", 115, iterations=40, lanes=2, extra=("--tls.layout=incoming", "--tls.cycle.time=120")),
    _random("rand16", 116, iterations=35, min_m=40, max_m=300,
            extra=("--rand.neighbor-dist5=10", "--rand.neighbor-dist6=5", "--tls.guess.threshold=50")),
    # ---- spider: radial / ring networks, high-degree centres, one-way rings
    _spider("spider01", 201, arms=4, circles=1, radius_m=150, all_mixes=True),
    _spider("spider02", 202, arms=5, circles=2, radius_m=120),
    _spider("spider03", 203, arms=6, circles=2, radius_m=100, extra=(_ACT,), features=("actuated_phases",)),
    _spider("spider04", 204, arms=7, circles=3, radius_m=90, lanes=1, extra=("--tls.guess.threshold=40",)),
    _spider("spider05", 205, arms=8, circles=3, radius_m=110, extra=("--spider.omit-center",)),
    _spider("spider06", 206, arms=5, circles=2, radius_m=140, one_way="ring"),
    _spider("spider07", 207, arms=6, circles=3, radius_m=80, one_way="ring", extra=(_ACT,),
            features=("actuated_phases",), all_mixes=True),
    _spider("spider08", 208, arms=8, circles=2, radius_m=70, extra=("--tls.join", "--tls.join-dist=25"),
            features=("joined",)),
    _spider("spider09", 209, arms=5, circles=2, radius_m=130, extra=(*_PED,), features=("pedestrians",)),
    _spider("spider10", 210, arms=3, circles=3, radius_m=160, lanes=3, extra=("--random-lanenumber", _PERMISSIVE),
            features=("permissive",)),
    _spider("spider11", 211, arms=6, circles=2, radius_m=120, extra=(*_turn(1, 35),), features=("turn_pockets",)),
    _spider("spider12", 212, arms=4, circles=3, radius_m=100, extra=(_NO_LEFT, "--spider.omit-center")),
    # ---- grid: varied sizes, block lengths, lanes, pockets, close pairs, couplets, crossings
    _grid("grid01", 301, x=2, y=2, x_m=250, y_m=180, all_mixes=True),
    _grid("grid02", 302, x=3, y=2, x_m=200, y_m=120, lanes=1,
          extra=("--tls.guess.threshold=40", "--tls.layout=incoming")),
    _grid("grid03", 303, x=4, y=3, x_m=160, y_m=220, lanes=3, extra=(*_turn(1, 40),)),
    _grid("grid04", 304, x=5, y=5, x_m=180, y_m=180, lanes=1, extra=("--tls.guess.threshold=40", _ACT),
          features=("actuated_phases",)),
    _grid("grid05", 305, x=4, y=2, x_m=35, y_m=220, extra=("--tls.join", "--tls.join-dist=40"),
          features=("joined",)),
    _grid("grid06", 306, x=4, y=3, x_m=140, y_m=140, extra=("--perturb-x=50", "--perturb-y=40", "--tls.join",
                                                           "--tls.join-dist=60"), features=("joined",)),
    _grid("grid07", 307, x=3, y=3, x_m=200, y_m=200, one_way="rows", all_mixes=True),
    _grid("grid08", 308, x=4, y=4, x_m=150, y_m=120, one_way="cols", extra=(_ACT,), features=("actuated_phases",)),
    _grid("grid09", 309, x=3, y=3, x_m=180, y_m=160, extra=(*_PED,), features=("pedestrians",)),
    _grid("grid10", 310, x=4, y=2, x_m=220, y_m=150, lanes=2, extra=(*_PED, *_turn(1, 30), _ACT),
          features=("pedestrians", "actuated_phases")),
    _grid("grid11", 311, x=3, y=2, x_m=200, y_m=200, lanes=2, extra=(*_turn(2, 60), _ACT),
          features=("actuated_phases",)),
    _grid("grid12", 312, x=5, y=3, x_m=120, y_m=250, extra=(_PERMISSIVE,),
          features=("permissive",)),
    _grid("grid13", 313, x=4, y=4, x_m=200, y_m=200, lanes=1, extra=("--tls.set=A0,B1,C2,D3,A3,D0,B2",)),
    _grid("grid14", 314, x=3, y=3, x_m=150, y_m=150, extra=(_NO_LEFT, "--tls.cycle.time=60")),
    _grid("grid15", 315, x=6, y=4, x_m=130, y_m=170, lanes=1, extra=("--tls.guess.threshold=40",)),
    _grid("grid16", 316, x=3, y=4, x_m=25, y_m=180, extra=("--junctions.join", "--junctions.join-dist=30"),
          features=("short_lanes",)),
    _grid("grid17", 317, x=4, y=3, x_m=300, y_m=100, lanes=3, extra=("--random-lanenumber", *_turn(1, 25)),
          one_way="rows"),
    _grid("grid18", 318, x=2, y=3, x_m=60, y_m=200, extra=("--tls.join", "--tls.join-dist=70", _ACT),
          features=("joined", "actuated_phases"), all_mixes=True),
)
# fmt: on


# --------------------------------------------------------------------------------------
# Reading a built net
# --------------------------------------------------------------------------------------


def _allows_cars(lane: ET.Element) -> bool:
    allow = lane.get("allow")
    if allow is not None:
        return "passenger" in allow.split() or allow == "all"
    return "passenger" not in (lane.get("disallow") or "").split()


@dataclass(frozen=True)
class _NetInfo:
    n_signals: int
    features: tuple[str, ...]
    entry_lanes: int
    extent_m: tuple[float, float]
    approach_lanes: dict[str, int]  # signalised approach edge -> lanes open to cars


def _read_net(path: Path) -> _NetInfo:
    root = ET.parse(path).getroot()
    edges: dict[str, ET.Element] = {}
    for e in root.iter("edge"):
        if e.get("function") in (None, "normal"):
            edges[e.get("id", "")] = e
    fed: set[str] = set()  # edges some other edge feeds (not by a turnaround)
    tl_nodes: dict[str, set[str]] = defaultdict(set)
    tl_from: set[str] = set()
    short = False
    out_deg: dict[str, int] = defaultdict(int)
    in_deg: dict[str, int] = defaultdict(int)
    for e in edges.values():
        out_deg[e.get("from", "")] += 1
        in_deg[e.get("to", "")] += 1
    for c in root.iter("connection"):
        frm, to = c.get("from", ""), c.get("to", "")
        if frm not in edges or to not in edges:
            continue
        if c.get("dir") not in ("t", "T"):
            fed.add(to)
        tl = c.get("tl")
        if tl is not None:
            tl_nodes[tl].add(edges[frm].get("to", ""))
            tl_from.add(frm)
            lane = edges[frm].findall("lane")[int(c.get("fromLane", "0"))]
            if float(lane.get("length", "0")) < MIN_SINGLE_LANE_ZONE_M:
                short = True
    features: set[str] = set()
    if short:
        features.add("short_lanes")
    if any(len(nodes) > 1 for nodes in tl_nodes.values()):
        features.add("joined")
    n_signals = 0
    for logic in root.iter("tlLogic"):
        n_signals += 1
        states = [p.get("state", "") for p in logic.iter("phase")]
        if any("g" in s for s in states):
            features.add("permissive")
        if logic.get("type") == "actuated":
            features.add("actuated_phases")
        if states and any(all(s[i] not in "Gg" for s in states) for i in range(len(states[0]))):
            features.add("never_green")
    if any(e.get("function") == "crossing" for e in root.iter("edge")):
        features.add("pedestrians")
    # turn pockets: a lane added where an edge continues through a plain 1-in-1-out node
    lanes_of = {eid: sum(_allows_cars(ln) for ln in e.findall("lane")) for eid, e in edges.items()}
    by_from: dict[str, list[str]] = defaultdict(list)
    for eid, e in edges.items():
        by_from[e.get("from", "")].append(eid)
    for eid, e in edges.items():
        node = e.get("to", "")
        if in_deg[node] == 1 and out_deg[node] == 1:
            nxt = by_from[node][0]
            if lanes_of[nxt] > lanes_of[eid]:
                features.add("turn_pockets")

    # one-way: a street between two junctions (through plain 1-in-1-out nodes) with no way back
    def junction_end(eid: str) -> str:
        seen = set()
        node = edges[eid].get("to", "")
        while in_deg[node] == 1 and out_deg[node] == 1 and node not in seen:
            seen.add(node)
            node = edges[by_from[node][0]].get("to", "")
        return node

    starts = [
        eid for eid, e in edges.items() if not (in_deg[e.get("from", "")] == 1 and out_deg[e.get("from", "")] == 1)
    ]
    pairs = {(edges[eid].get("from", ""), junction_end(eid)) for eid in starts if lanes_of[eid] > 0}
    if any((b, a) not in pairs for a, b in pairs):
        features.add("one_way")
    entry_lanes = sum(lanes_of[eid] for eid in edges if eid not in fed)
    location = root.find("location")
    if location is None:
        raise InputError("no <location> element (is this a SUMO .net.xml?)", where=str(path))
    bx = [float(v) for v in location.get("convBoundary", "0,0,0,0").split(",")]
    approaches = {frm: lanes_of[frm] for frm in tl_from if lanes_of[frm] > 0}
    return _NetInfo(n_signals, tuple(sorted(features)), entry_lanes, (bx[2] - bx[0], bx[3] - bx[1]), approaches)


def net_features(net: Path) -> tuple[str, ...]:
    """The failure classes (:class:`~scenarios.corpus.CorpusEntry` ``features``) a net file holds."""
    return _read_net(net).features


def capacity_pcu_h(net: Path, route_shares: Mapping[str, float] | None = None) -> float:
    """Estimated signalised capacity of a network for fringe-to-fringe trips, in pcu/h.

    Every lane of a signalised approach carries at most ``s * g/C`` = 1,900 pcu/h (HCM 6th ed.
    base saturation flow) x 0.45 (effective green ratio). Two bounds, the smaller wins:

    * entry: the sum of that over the fringe entry lanes (lanes of edges no other edge feeds
      except by a turnaround: the sources of randomTrips.py ``--fringe-factor max``);
    * bottleneck: for each signalised approach edge ``e`` used by a share ``p_e`` of the trips
      (``route_shares``, from routes drawn like the demand), ``lanes_e * 1900 * 0.45 / p_e``: the
      total demand at which the most loaded approach reaches its capacity.

    The second bound matters: trips that cross a network converge on its central approaches, and
    with the entry bound alone the ``light`` level already jammed sample networks in SUMO.
    """
    return _capacity(_read_net(net), route_shares or {})[0]


def _capacity(info: _NetInfo, shares: Mapping[str, float]) -> tuple[float, str]:
    """``(capacity_pcu_h, binding bound)``: ``"entry"`` or the bottleneck approach's edge id."""
    per_lane = SATURATION_PCU_H_LANE * GREEN_RATIO
    best, where = info.entry_lanes * per_lane, "entry"
    for edge, lanes in sorted(info.approach_lanes.items()):
        share = shares.get(edge, 0.0)
        if share > 0 and lanes * per_lane / share < best:
            best, where = lanes * per_lane / share, edge
    return best, where


def entry_mixes(index: int, recipe: NetworkRecipe) -> list[tuple[str, str]]:
    """``(demand, mix)`` pairs built for the recipe at ``index`` in :data:`GENERATED_NETWORKS`.

    The mix alternates over the three levels so every network has both (``moto`` first on even
    indices, ``car`` first on odd ones); ``all_mixes`` recipes get all six combinations.
    """
    if recipe.all_mixes:
        return [(level, mix) for level in DEMAND_LEVELS for mix in ("moto", "car")]
    order = ("moto", "car") if index % 2 == 0 else ("car", "moto")
    return [(level, order[i % 2]) for i, level in enumerate(DEMAND_LEVELS)]


# --------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------


def _one_way_removals(net: Path, rule: str) -> list[str]:
    """Edges to remove so whole streets run one way, alternating direction street by street."""
    root = ET.parse(net).getroot()
    xy = {j.get("id", ""): (float(j.get("x", "0")), float(j.get("y", "0"))) for j in root.iter("junction")}
    out: list[str] = []
    if rule == "ring":
        # spider circles: nodes of one circle share the letter ("B1".."B5"); keep one direction
        for e in root.iter("edge"):
            if e.get("function") not in (None, "normal"):
                continue
            a, b = e.get("from", ""), e.get("to", "")
            if a[:1] == b[:1] and a[:1] != "A" and a[1:].isdigit() and b[1:].isdigit():
                ia, ib = int(a[1:]), int(b[1:])
                n_arms = max(int(j[1:]) for j in xy if j[:1] == a[:1] and j[1:].isdigit())
                if ib == ia % n_arms + 1:
                    continue  # one ring direction kept
                out.append(e.get("id", ""))
        return out
    horizontal = rule == "rows"
    streets: dict[float, list[tuple[str, float]]] = defaultdict(list)
    for e in root.iter("edge"):
        if e.get("function") not in (None, "normal"):
            continue
        (xa, ya), (xb, yb) = xy[e.get("from", "")], xy[e.get("to", "")]
        along, across = (xb - xa, round(ya, 0)) if horizontal else (yb - ya, round(xa, 0))
        if abs((yb - ya) if horizontal else (xb - xa)) > 1.0:
            continue
        streets[across].append((e.get("id", ""), along))
    for i, key in enumerate(sorted(streets)):
        keep_positive = i % 2 == 0
        out += [eid for eid, along in streets[key] if (along > 0) != keep_positive]
    return sorted(out)


def _build_net(recipe: NetworkRecipe, folder: Path) -> Path:
    net = folder / f"{recipe.name}.net.xml"
    if not recipe.one_way:
        _run(recipe.netgenerate_args(net.name), f"netgenerate {recipe.name}", folder)
    else:
        raw = folder / f"{recipe.name}.raw.net.xml"
        _run(recipe.netgenerate_args(raw.name), f"netgenerate {recipe.name}", folder)
        removals = _one_way_removals(raw, recipe.one_way)
        if not removals:
            raise SimulationError(f"one-way rule {recipe.one_way!r} found no street", where=recipe.name)
        repeat = [p for p in recipe.params if p.startswith(_TLS_REPEAT_PREFIXES) and not p.startswith("--tls.set")]
        _run(
            [
                sumo_binary("netconvert"),
                "-s",
                raw.name,
                f"--remove-edges.explicit={','.join(removals)}",
                *repeat,
                "-o",
                net.name,
            ],
            f"netconvert {recipe.name}",
            folder,
        )
        raw.unlink()
    _strip_timestamp(net)
    return net


def _random_trips(args: list[str], what: str, folder: Path) -> None:
    home = sumo_home()
    if home is None:
        raise SimulationError("SUMO tools not found (install eclipse-sumo or set SUMO_HOME)")
    script = home / "tools" / "randomTrips.py"
    _run([sys.executable, str(script), *args], what, folder)


def _vehicle_trips(
    net: Path, trips: Path, routes: Path, seed: int, period_s: float, min_distance_m: float, what: str
) -> None:
    """Fringe-to-fringe trips over the horizon, each checked by duarouter (its routes go to ``routes``)."""
    _random_trips(
        [
            "-n", net.name, "-o", trips.name, "-r", routes.name, f"--seed={seed}",
            f"--begin={_fmt(BEGIN_S)}", f"--end={_fmt(END_S)}", f"--period={period_s:.6f}", "--random-depart",
            "--fringe-factor=max", f"--min-distance={_fmt(round(min_distance_m))}", "--validate", "--threads=1",
        ],
        f"randomTrips {what}",
        net.parent,
    )  # fmt: skip


def _probe_shares(recipe: NetworkRecipe, folder: Path, net: Path, min_distance_m: float) -> dict[str, float]:
    """Share of trips that use each edge, over ``PROBE_TRIPS`` trips drawn and routed like the demand."""
    trips, routes = folder / "probe.trips.xml", folder / "probe.rou.xml"
    period_s = (END_S - BEGIN_S) / PROBE_TRIPS
    _vehicle_trips(net, trips, routes, recipe.seed * 100 + 99, period_s, min_distance_m, f"{recipe.name} probe")
    used: dict[str, int] = defaultdict(int)
    n = 0
    for route in ET.parse(routes).getroot().iter("route"):
        n += 1
        for edge in set(route.get("edges", "").split()):
            used[edge] += 1
    for tmp in (trips, routes, folder / "probe.rou.alt.xml"):
        tmp.unlink(missing_ok=True)
    if n == 0:
        raise SimulationError("no fringe-to-fringe trip could be routed", where=recipe.name)
    return {edge: k / n for edge, k in used.items()}


def _deal_types(n: int, shares: Mapping[str, float], rng: random.Random) -> list[str]:
    """Exactly ``round(n * share)`` vehicles of each type (largest remainder), in seeded random order."""
    raw = {k: n * s / sum(shares.values()) for k, s in shares.items()}
    counts = {k: math.floor(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (counts[k] - raw[k], k))[: n - sum(counts.values())]:
        counts[k] += 1
    out = [k for k in sorted(counts) for _ in range(counts[k])]
    rng.shuffle(out)
    return out


def _mean_pcu(mix: str) -> float:
    shares = MIXES[mix]
    return sum(PCU[k] * s for k, s in shares.items()) / sum(shares.values())


def _vtypes() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """The Hanoi-calibrated vTypes of ``scenarios/defs/hanoi_mixed.toml`` (motorcycle, car, truck, bus)."""
    return load_scenario_def(VTYPES_FROM).vtypes


def _write_routes(trips: Path, path: Path, mix: str, seed: int) -> int:
    root = ET.parse(trips).getroot()
    items = list(root.iter("trip"))
    types = _deal_types(len(items), MIXES[mix], random.Random(seed))
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<routes>\n')
        for vid, attrs in _vtypes():
            f.write(f'    <vType id="{vid}" {_xml_attrs(dict(attrs))}/>\n')
        for i, (t, vtype) in enumerate(zip(items, types, strict=True)):
            f.write(
                f'    <trip id="{mix[0]}{i}" type="{vtype}" depart="{t.get("depart")}" from="{t.get("from")}" '
                f'to="{t.get("to")}" departLane="best" departSpeed="max"/>\n'
            )
        f.write("</routes>\n")
    return len(items)


def _write_sumocfg(path: Path, net: str, routes: Sequence[str], mix: str, seed: int, note: str) -> None:
    spec = SumoSpec(
        step_length_s=1.0,
        lateral_resolution_m=LATERAL_RESOLUTION_M if mix == "moto" else None,
        time_to_teleport_s=-1,
        # the sublane model lets a few scooters overlap when they cut in (scenarios/defs/hanoi_mixed.toml)
        collision_action="warn" if mix == "moto" else None,
    )
    opts = [
        ("begin", _fmt(BEGIN_S)),
        ("end", _fmt(END_S)),
        *spec.options(),
        ("ignore-junction-blocker", _fmt(JUNCTION_BLOCKER_S)),
        ("seed", str(seed)),
        ("no-step-log", "true"),
    ]
    sections: dict[str, list[tuple[str, str]]] = {"input": [("net-file", net), ("route-files", ",".join(routes))]}
    for key, value in opts:
        sections.setdefault(_CFG_SECTIONS.get(key, "processing"), []).append((key, value))
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write(f"<!-- greenwave generated corpus: {note} -->\n")
        f.write(
            '<configuration xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/sumoConfiguration.xsd">\n'
        )
        for section in ("input", "time", "processing", "random_number", "report"):
            if section in sections:
                f.write(f"    <{section}>\n")
                for key, value in sections[section]:
                    f.write(f'        <{key} value="{value}"/>\n')
                f.write(f"    </{section}>\n")
        f.write("</configuration>\n")


def _build_key(recipe: NetworkRecipe, index: int, sumo: str) -> dict[str, Any]:
    return {
        "recipe": dataclasses.asdict(recipe),
        "entries": entry_mixes(index, recipe),
        "builder": _BUILD_VERSION,
        "sumo": sumo,
        "demand": {
            "levels": LEVEL_FRACTION,
            "pcu": PCU,
            "mixes": MIXES,
            "horizon_s": [BEGIN_S, END_S],
            "lane_pcu_h": SATURATION_PCU_H_LANE * GREEN_RATIO,
            "probe_trips": PROBE_TRIPS,
            "vtypes": VTYPES_FROM,
        },
    }


def _entry_files(recipe: NetworkRecipe, index: int) -> list[str]:
    files = [f"{recipe.name}.net.xml"]
    for level, mix in entry_mixes(index, recipe):
        files += [f"{level}_{mix}.rou.xml", f"{level}_{mix}.sumocfg"]
    if recipe.pedestrians:
        files += [f"{level}.ped.rou.xml" for level in DEMAND_LEVELS]
    return files


def _entries(recipe: NetworkRecipe, index: int, folder: Path, built: Mapping[str, Any]) -> list[CorpusEntry]:
    return [
        CorpusEntry(
            name=f"gen/{recipe.name}/{level}/{mix}",
            family="generated",
            sumocfg=(folder / f"{level}_{mix}.sumocfg").resolve(),
            demand=level,
            mix=mix,
            n_signals=int(built["n_signals"]),
            features=tuple(built["features"]),
            source=f"netgenerate {_KIND_FLAG[recipe.kind]} (recipe {recipe.name}, seed {recipe.seed})",
        )
        for level, mix in entry_mixes(index, recipe)
    ]


def _build_one(recipe: NetworkRecipe, index: int, folder: Path, sumo: str) -> list[CorpusEntry]:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "build.json"
    key = _build_key(recipe, index, sumo)
    if manifest.is_file() and all((folder / f).is_file() for f in _entry_files(recipe, index)):
        try:
            built = json.loads(manifest.read_text(encoding="utf-8"))
            if built.get("key") == json.loads(json.dumps(key)):
                return _entries(recipe, index, folder, built)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    manifest.unlink(missing_ok=True)

    net = _build_net(recipe, folder)
    info = _read_net(net)
    if info.n_signals < 2:
        raise SimulationError(f"only {info.n_signals} signal(s); a corpus net needs at least 2", where=recipe.name)
    missing = set(recipe.features) - set(info.features)
    if missing:
        raise SimulationError(f"declared features not in the built net: {sorted(missing)}", where=recipe.name)
    min_distance_m = 0.5 * min(info.extent_m)
    shares = _probe_shares(recipe, folder, net, min_distance_m)
    capacity, binding = _capacity(info, shares)
    counts: dict[str, int] = {}
    for k, (level, mix) in enumerate(entry_mixes(index, recipe)):
        veh_h = LEVEL_FRACTION[level] * capacity / _mean_pcu(mix)
        trips = folder / f"{level}_{mix}.trips.xml"
        scratch = folder / f"{level}_{mix}.validate.rou.xml"  # duarouter's output for --validate
        seed = recipe.seed * 100 + k
        _vehicle_trips(net, trips, scratch, seed, 3600.0 / veh_h, min_distance_m, f"{recipe.name} {level} {mix}")
        counts[f"{level}_{mix}"] = _write_routes(trips, folder / f"{level}_{mix}.rou.xml", mix, seed)
        for tmp in (trips, scratch, folder / f"{level}_{mix}.validate.rou.alt.xml"):
            tmp.unlink(missing_ok=True)
    peds: dict[str, str] = {}
    if recipe.pedestrians:
        for k, level in enumerate(DEMAND_LEVELS):
            per_h = PEDESTRIANS_PER_SIGNAL_H * info.n_signals * LEVEL_FRACTION[level] / LEVEL_FRACTION["near"]
            ped = folder / f"{level}.ped.rou.xml"
            scratch = folder / f"{level}.ped.validate.rou.xml"
            _random_trips(
                [
                    "-n", net.name, "-o", ped.name, f"--seed={recipe.seed * 100 + 50 + k}", "--pedestrians",
                    f"--begin={_fmt(BEGIN_S)}", f"--end={_fmt(END_S)}", f"--period={3600.0 / per_h:.6f}",
                    "--random-depart", f"--min-distance={_fmt(round(min_distance_m / 2))}", f"--prefix=ped_{level}_",
                    "-r", scratch.name,
                ],
                f"randomTrips {recipe.name} {level} pedestrians",
                folder,
            )  # fmt: skip
            scratch.unlink(missing_ok=True)
            _strip_timestamp(ped)
            peds[level] = ped.name
    for level, mix in entry_mixes(index, recipe):
        routes = [f"{level}_{mix}.rou.xml", *([peds[level]] if level in peds else [])]
        note = f"{recipe.name} {level} {mix}, {counts[f'{level}_{mix}']} vehicles over {_fmt(END_S - BEGIN_S)} s"
        _write_sumocfg(folder / f"{level}_{mix}.sumocfg", net.name, routes, mix, recipe.seed, note)
    built = {
        "key": key,
        "n_signals": info.n_signals,
        "features": list(info.features),
        "capacity_pcu_h": round(capacity, 1),
        "capacity_bound": binding,
        "entry_capacity_pcu_h": round(info.entry_lanes * SATURATION_PCU_H_LANE * GREEN_RATIO, 1),
        "vehicles": counts,
    }
    manifest.write_text(json.dumps(built, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return _entries(recipe, index, folder, built)


def build_generated(out_dir: Path, *, only: Iterable[str] | None = None) -> list[CorpusEntry]:
    """Build the generated networks (all, or the recipes named in ``only``) under ``out_dir/gen/``.

    Each recipe's folder is built once and reused while its key (recipe, builder and SUMO
    version) is unchanged. Raises :class:`~intersections.errors.InputError` for an unknown name and
    :class:`~intersections.errors.SimulationError` when a tool fails or a net has fewer than 2
    signals or lacks a feature its recipe declares.
    """
    wanted = None if only is None else list(only)
    names = [r.name for r in GENERATED_NETWORKS]
    if wanted is not None:
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise InputError(f"unknown generated networks {unknown}", where="only")
    sumo = _sumo_version()
    entries: list[CorpusEntry] = []
    for index, recipe in enumerate(GENERATED_NETWORKS):
        if wanted is None or recipe.name in wanted:
            entries += _build_one(recipe, index, Path(out_dir) / "gen" / recipe.name, sumo)
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.corpus.generated", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="recipe names (default: all)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    entries = build_generated(args.out_dir, only=args.only)
    for e in entries:
        print(f"{e.name:28s} signals={e.n_signals:<3d} features={','.join(e.features) or '-'}  {e.sumocfg}")
    print(f"{len(entries)} entries in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
