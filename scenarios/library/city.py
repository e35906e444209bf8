"""A generated Hanoi-like city: rings, radial arterials, an irregular local fabric, trips over it.

Hanoi's street network is a set of ring roads (Ring 1-3) crossed by radial arterials leading out
of the old centre, with an irregular fabric of local streets between them. :func:`city_layout`
draws that shape from a few numbers (:class:`~scenarios.library.schema.CityNetwork`):

* ring ``k`` (1..``rings``) lies at radius ``k * ring_spacing_m`` and holds
  ``max(arms, round(2 pi r / block_m))`` junctions, so blocks stay about ``block_m`` long at every
  radius (a plain spider web would crowd the centre and stretch the edge);
* ``arms`` radial arterials run straight out from ring 1 to a fringe node ``F<a>``
  ``fringe_length_m`` beyond the last ring (where through traffic enters and leaves); the
  ``arterial_ring``-th ring is the arterial ring road. Arterials have ``arterial_lanes`` per
  direction, local streets ``local_lanes``;
* every other junction links inwards to the nearest free junction of the ring inside it (with
  probability ``inward_share``; each inner junction takes at most one such link), the junctions
  move by up to ``jitter_m``, and a ``drop_share`` of the local ring links is removed where both
  ends keep three legs and the city stays connected: blocks of uneven size and shape, T and
  four-leg junctions, no straight local grid lines.

Every junction with three or more legs is signalised with SUMO's own default program (the
``[tls]`` options, the ``sumo`` baseline). The layout depends only on the definition (its
``layout_seed``), never on the build seed, so seeds vary the demand on one city.

Demand (:func:`write_city_routes`): ``peak_veh_h`` trips per hour at profile factor 1, drawn slice
by slice as Poisson counts with uniform departures inside each slice. A ``through_share`` enters
on one arterial's fringe and leaves on another's; of the rest, ``inbound_share`` ends near the
centre (destination edges weighted by 1 / radius: the morning peak into the old quarter) and
the others anywhere; origins are any edge, weighted by length. Ends are at least ``min_trip_m``
apart. Vehicle types are dealt by the mix; SUMO's ``duarouter`` gives every trip its fastest
route. Bus lines run fixed routes on the arterials at a fixed headway with ``personNumber``
passengers. Motorcycle-dominated mixes are sized in passenger-car units with the Vietnamese
practice of 0.25-0.3 pcu per motorcycle (``../shared/reference/motorcycles-and-algorithms.md``
D2): a city of N signals at 6 trips per signal per hour and 85 % motorcycles puts about
0.4 x 6 N pcu/h on the network.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from intersections.errors import SimulationError
from scenarios.library.network import _run, netconvert_plain
from scenarios.library.schema import CityBusLine, CityDemand, CityNetwork, ScenarioDef, _fmt
from simulation.sumo_home import sumo_binary


@dataclass(frozen=True)
class CityLayout:
    """Nodes (id -> x, y), two-way links ``(a, b, arterial)``, arm node ids per arm, signalised ids."""

    nodes: dict[str, tuple[float, float]]
    links: tuple[tuple[str, str, bool], ...]
    arms: tuple[tuple[str, ...], ...]  # arm a: ring-1 node .. last-ring node, then F<a>
    ring: tuple[str, ...]  # the arterial ring's nodes in counter-clockwise order
    signals: frozenset[str]


def _ring_sizes(c: CityNetwork) -> list[int]:
    return [max(c.arms, round(2 * math.pi * k * c.ring_spacing_m / c.block_m)) for k in range(1, c.rings + 1)]


@lru_cache(maxsize=8)
def city_layout(c: CityNetwork) -> CityLayout:
    """The city's junctions and links (deterministic in ``c``; see the module docstring).

    One random stream in a fixed order (ring jitter, inward links, dropped local links),
    so a layout is the same for the same ``c``."""
    rng = random.Random(c.layout_seed)
    nodes, angle, rings, arm_of = _ring_nodes(c, rng)
    links: dict[frozenset[str], bool] = {}
    local_ring: list[frozenset[str]] = []
    for k, ids in enumerate(rings, start=1):
        for u, v in zip(ids, ids[1:] + ids[:1], strict=True):
            links[frozenset((u, v))] = k == c.arterial_ring
            if k not in (1, c.arterial_ring):  # ring 1 carries the cross-city bus lines
                local_ring.append(frozenset((u, v)))
    arms: list[list[str]] = [[] for _ in range(c.arms)]
    for ids in rings:
        for nid in ids:
            if nid in arm_of:
                arms[arm_of[nid]].append(nid)
    for a, chain in enumerate(arms):
        for u, v in itertools.pairwise(chain):
            links[frozenset((u, v))] = True
        f = f"F{a}"
        phi = 2 * math.pi * a / c.arms
        rr = c.rings * c.ring_spacing_m + c.fringe_length_m
        nodes[f] = (rr * math.cos(phi), rr * math.sin(phi))
        links[frozenset((chain[-1], f))] = True
        chain.append(f)
    _add_inward_links(c, rng, rings, arm_of, angle, links)
    degree = _drop_local_links(c, rng, nodes, links, local_ring)
    ordered = tuple(sorted(((min(p), max(p), art) for p, art in links.items()), key=lambda t: (_key(t[0]), _key(t[1]))))
    signals = frozenset(n for n, d in degree.items() if d >= 3)
    ring = tuple(rings[c.arterial_ring - 1]) if 1 <= c.arterial_ring <= c.rings else ()
    return CityLayout(nodes, ordered, tuple(tuple(a) for a in arms), ring, signals)


def _ring_nodes(
    c: CityNetwork, rng: random.Random
) -> tuple[dict[str, tuple[float, float]], dict[str, float], list[list[str]], dict[str, int]]:
    """Each ring's junctions (arm crossings exactly on their arm, the others jittered): positions,
    angles, the rings' node ids in order, and the arm each arm crossing lies on."""
    nodes: dict[str, tuple[float, float]] = {}
    angle: dict[str, float] = {}
    rings: list[list[str]] = []
    arm_of: dict[str, int] = {}
    for k, n in enumerate(_ring_sizes(c), start=1):
        r = k * c.ring_spacing_m
        arm_index = {round(a * n / c.arms) % n: a for a in range(c.arms)}
        ids = []
        for i in range(n):
            nid = f"r{k}n{i}"
            if i in arm_index:
                phi, rr = 2 * math.pi * arm_index[i] / c.arms, r
                arm_of[nid] = arm_index[i]
            else:
                phi = 2 * math.pi * i / n + rng.uniform(-1, 1) * 0.5 * c.jitter_m / r
                rr = r + rng.uniform(-1, 1) * c.jitter_m
            nodes[nid] = (rr * math.cos(phi), rr * math.sin(phi))
            angle[nid] = phi % (2 * math.pi)
            ids.append(nid)
        rings.append(ids)
    return nodes, angle, rings, arm_of


def _add_inward_links(
    c: CityNetwork,
    rng: random.Random,
    rings: list[list[str]],
    arm_of: dict[str, int],
    angle: dict[str, float],
    links: dict[frozenset[str], bool],
) -> None:
    """Local streets from a share (``inward_share``) of each ring's junctions to the nearest free
    junction of the ring inside, each inner junction taken once."""
    for inner, outer in itertools.pairwise(rings):
        free = [n for n in inner if n not in arm_of]
        if not free:
            continue
        free_angles = [angle[n] for n in free]
        order = sorted(range(len(free)), key=lambda i: free_angles[i])
        sorted_angles = [free_angles[i] for i in order]
        taken: set[str] = set()
        for nid in outer:
            if nid in arm_of or rng.random() >= c.inward_share:
                continue
            j = bisect.bisect_left(sorted_angles, angle[nid])
            candidates = [free[order[(j + d) % len(order)]] for d in (-1, 0, 1)]
            candidates.sort(key=lambda m: _angle_gap(angle[m], angle[nid]))
            for m in candidates:
                if m not in taken:
                    taken.add(m)
                    links[frozenset((nid, m))] = False
                    break


def _drop_local_links(
    c: CityNetwork,
    rng: random.Random,
    nodes: dict[str, tuple[float, float]],
    links: dict[frozenset[str], bool],
    local_ring: list[frozenset[str]],
) -> dict[str, int]:
    """Drop a share (``drop_share``) of local ring links between junctions of degree 4 or more, never
    one that disconnects the city; return every node's degree afterwards."""
    degree: dict[str, int] = dict.fromkeys(nodes, 0)
    for pair in links:
        for node in pair:
            degree[node] += 1
    rng.shuffle(local_ring)
    n_drop = round(c.drop_share * len(local_ring))
    dropped = 0
    for pair in local_ring:
        if dropped >= n_drop:
            break
        if all(degree[n] >= 4 for n in pair):
            del links[pair]
            if _connected(nodes, links):
                for node in pair:
                    degree[node] -= 1
                dropped += 1
            else:
                links[pair] = False
    return degree


def _angle_gap(a: float, b: float) -> float:
    d = abs(a - b) % (2 * math.pi)
    return min(d, 2 * math.pi - d)


def _key(nid: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"r(\d+)n(\d+)", nid)
    return (0, int(m.group(1)), int(m.group(2))) if m else (1, int(nid[1:]), 0)


def _connected(nodes: dict[str, tuple[float, float]], links: dict[frozenset[str], bool]) -> bool:
    adj: dict[str, list[str]] = {n: [] for n in nodes}
    for pair in links:
        a, b = tuple(pair)
        adj[a].append(b)
        adj[b].append(a)
    start = next(iter(nodes))
    seen, stack = {start}, [start]
    while stack:
        for m in adj[stack.pop()]:
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return len(seen) == len(nodes)


def build_city_net(d: ScenarioDef, out: Path) -> None:
    """Write ``<name>.nod.xml`` / ``.edg.xml`` and run netconvert (SUMO's own default programs)."""
    c = d.network
    assert isinstance(c, CityNetwork)
    lay = city_layout(c)
    with (out / f"{d.name}.nod.xml").open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<nodes>\n')
        for nid in sorted(lay.nodes, key=_key):
            x, y = lay.nodes[nid]
            kind = f'type="traffic_light" tlType="{d.tls.type}"' if nid in lay.signals else 'type="priority"'
            f.write(f'    <node id="{nid}" x="{x:.2f}" y="{y:.2f}" {kind}/>\n')
        f.write("</nodes>\n")
    with (out / f"{d.name}.edg.xml").open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<edges>\n')
        for a, b, art in lay.links:
            lanes, speed, prio = (
                (c.arterial_lanes, c.arterial_speed_m_s, 3) if art else (c.local_lanes, c.local_speed_m_s, 1)
            )
            for u, v in ((a, b), (b, a)):
                f.write(
                    f'    <edge id="{u}_{v}" from="{u}" to="{v}" priority="{prio}" numLanes="{lanes}" '
                    f'speed="{_fmt(speed)}" width="{_fmt(c.lane_width_m)}"/>\n'
                )
        f.write("</edges>\n")
    netconvert_plain(d, out)


def _bus_edges(c: CityNetwork, line: CityBusLine) -> list[str]:
    lay = city_layout(c)
    if line.kind == "ring":
        ring = list(lay.ring)
        nodes = [*ring, ring[0]]
    else:
        inward = list(reversed(lay.arms[line.from_arm]))  # F<a> .. ring-1 node
        outward = list(lay.arms[line.to_arm])
        ring1 = [n for n in lay.nodes if n.startswith("r1n")]
        ring1.sort(key=_key)
        i, j = ring1.index(inward[-1]), ring1.index(outward[0])
        step = 1 if (j - i) % len(ring1) <= len(ring1) // 2 else -1
        arc = [ring1[i]]
        while arc[-1] != ring1[j]:
            arc.append(ring1[(ring1.index(arc[-1]) + step) % len(ring1)])
        nodes = inward[:-1] + arc + outward[1:]
    return [f"{u}_{v}" for u, v in itertools.pairwise(nodes)]


def _draw_trips(d: ScenarioDef, rng: random.Random) -> list[tuple[float, str, str, str]]:
    """``(depart_s, vtype, from_edge, to_edge)`` of every trip, in departure order."""
    c = d.network
    dem = d.demand.pattern
    assert isinstance(c, CityNetwork) and isinstance(dem, CityDemand)
    lay = city_layout(c)
    mid: dict[str, tuple[float, float, float]] = {}  # edge -> (x, y, length)
    for a, b, _art in lay.links:
        (xa, ya), (xb, yb) = lay.nodes[a], lay.nodes[b]
        length = math.hypot(xb - xa, yb - ya)
        for u, v in ((a, b), (b, a)):
            mid[f"{u}_{v}"] = (0.5 * (xa + xb), 0.5 * (ya + yb), length)
    fringe = {f"F{a}" for a in range(c.arms)}
    inner_edges = [e for e in mid if not (set(e.split("_")) & fringe)]
    origin_w = _cumulative([mid[e][2] for e in inner_edges])
    centre_w = _cumulative([mid[e][2] / max(c.ring_spacing_m, math.hypot(mid[e][0], mid[e][1])) for e in inner_edges])
    entries = [f"F{a}_{lay.arms[a][-2]}" for a in range(c.arms)]
    exits = [f"{lay.arms[a][-2]}_F{a}" for a in range(c.arms)]
    vtypes, shares = zip(*sorted(d.demand.mix.items()), strict=True)
    cum_mix = _cumulative(list(shares))
    trips: list[tuple[float, str, str, str]] = []
    for t0, t1, factor in d.demand.slices(d.begin_s, d.demand_end_s):
        n = _poisson(rng, dem.peak_veh_h * factor * (t1 - t0) / 3600.0)
        for _ in range(n):
            t = rng.uniform(t0, t1)
            vt = vtypes[bisect.bisect(cum_mix, rng.random() * cum_mix[-1])]
            if rng.random() < dem.through_share:
                i = rng.randrange(c.arms)
                j = (i + rng.randrange(1, c.arms)) % c.arms
                trips.append((t, vt, entries[i], exits[j]))
                continue
            weights = centre_w if rng.random() < dem.inbound_share else origin_w
            for _attempt in range(50):
                o = inner_edges[bisect.bisect(origin_w, rng.random() * origin_w[-1])]
                x = inner_edges[bisect.bisect(weights, rng.random() * weights[-1])]
                if math.dist(mid[o][:2], mid[x][:2]) >= dem.min_trip_m:
                    trips.append((t, vt, o, x))
                    break
    trips.sort()
    return trips


def _cumulative(w: list[float]) -> list[float]:
    out, s = [], 0.0
    for x in w:
        s += x
        out.append(s)
    return out


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count (Knuth's product method in chunks, exact for any mean)."""
    n = 0
    while mean > 0:
        m = min(mean, 30.0)
        mean -= m
        limit, p = math.exp(-m), rng.random()
        while p > limit:
            n += 1
            p *= rng.random()
    return n


_VEHICLE_RE = re.compile(r"    <vehicle .*?</vehicle>\n", re.S)


def write_city_routes(d: ScenarioDef, net: Path, path: Path, seed: int) -> int:
    """Trips routed by duarouter, plus the bus lines, into ``path``; returns the number of trips."""
    from scenarios.library.writers import _depart_attrs, _xml_attrs

    c = d.network
    dem = d.demand.pattern
    assert isinstance(c, CityNetwork) and isinstance(dem, CityDemand)
    trips = _draw_trips(d, random.Random(seed))
    depart = _xml_attrs(_depart_attrs(d))
    vtypes = "".join(f'    <vType id="{vid}" {_xml_attrs(dict(attrs))}/>\n' for vid, attrs in d.vtypes)
    trips_file = path.with_suffix(".trips.xml")
    with trips_file.open("w", encoding="utf-8", newline="\n") as f:
        f.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<routes>\n{vtypes}')
        for i, (t, vt, o, x) in enumerate(trips):
            f.write(f'    <trip id="t{i}" depart="{t:.2f}" type="{vt}" from="{o}" to="{x}" {depart}/>\n')
        f.write("</routes>\n")
    routed = path.with_suffix(".dua.xml")
    _run(
        [
            sumo_binary("duarouter"),
            f"--net-file={net.name}",
            f"--route-files={trips_file.name}",
            f"--output-file={routed.name}",
            "--no-step-log=true",
            "--no-warnings=true",
            "--ignore-errors=true",
            f"--seed={seed}",
            "--write-trips=false",
        ],
        "duarouter",
        net.parent,
    )
    vehicles = _VEHICLE_RE.findall(routed.read_text(encoding="utf-8"))
    if len(vehicles) < 0.95 * len(trips):
        raise SimulationError(f"{d.name}: duarouter routed only {len(vehicles)} of {len(trips)} trips")
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write(f"<!-- greenwave scenario {d.name} (seed {seed}), generated by scenarios/library/city.py -->\n")
        f.write(
            '<routes xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/routes_file.xsd">\n'
        )
        f.write(vtypes)
        for line in dem.buses:
            f.write(f'    <route id="{line.id}" edges="{" ".join(_bus_edges(c, line))}"/>\n')
        for line in dem.buses:
            f.write(
                f'    <flow id="{line.id}" type="{line.vtype}" route="{line.id}" begin="{_fmt(d.begin_s)}" '
                f'end="{_fmt(d.demand_end_s)}" period="{_fmt(line.headway_s)}" '
                f'personNumber="{line.persons}" line="{line.id}" {depart}/>\n'
            )
        f.writelines(vehicles)
        f.write("</routes>\n")
    trips_file.unlink()
    routed.unlink()
    for extra in net.parent.glob(f"{routed.stem}.alt.xml"):
        extra.unlink()
    return len(vehicles)
