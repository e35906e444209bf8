"""Origin-destination routes and their peak rates, from the definition's turning shares."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from intersections.errors import SimulationError
from scenarios.library.schema import CorridorDemand, CorridorNetwork, GridDemand, ScenarioDef


def _sign(x: float) -> int:
    return 0 if abs(x) < 1.0 else (1 if x > 0 else -1)


@dataclass(frozen=True)
class _Od:
    """One route with its peak rate (veh/h, profile factor 1) and class mix."""

    id: str
    edges: tuple[str, ...]
    peak_veh_h: float
    mix: Mapping[str, float]


def _grid_ods(d: ScenarioDef, net_path: Path, rng: random.Random) -> list[_Od]:
    import sumolib

    g = d.demand.pattern
    assert isinstance(g, GridDemand)
    net = sumolib.net.readNet(str(net_path))
    inner = [n for n in net.getNodes() if n.getType() == "traffic_light"]
    if len(inner) != d.n_signals:
        raise SimulationError(f"{d.name}: netgenerate made {len(inner)} signals, expected {d.n_signals}")
    xs = sorted({round(n.getCoord()[0], 1) for n in inner})
    ys = sorted({round(n.getCoord()[1], 1) for n in inner})
    at = {(xs.index(round(n.getCoord()[0], 1)), ys.index(round(n.getCoord()[1], 1))): n.getID() for n in inner}
    # Edges between consecutive signals / fringe ends; netgenerate splits edges where turn bays begin.
    ends = {n.getID() for n in net.getNodes() if n.getType() in ("traffic_light", "dead_end")}
    chain: dict[tuple[str, str], tuple[str, ...]] = {}
    for aid in sorted(ends):
        for e in net.getNode(aid).getOutgoing():
            edges, prev, node = [e.getID()], aid, e.getToNode()
            while node.getID() not in ends:
                onward = [o for o in node.getOutgoing() if o.getToNode().getID() != prev]
                if len(onward) != 1:
                    raise SimulationError(f"{d.name}: unexpected junction {node.getID()!r} between signals")
                prev, node = node.getID(), onward[0].getToNode()
                edges.append(onward[0].getID())
            chain[(aid, node.getID())] = tuple(edges)
    # fringe node attached to inner cell (i, j) on side (dx, dy)
    fringe: dict[tuple[tuple[int, int], tuple[int, int]], str] = {}
    for a, b in sorted(chain):
        n, m = net.getNode(a), net.getNode(b)
        if n.getType() != "dead_end" or m.getType() != "traffic_light":
            continue
        (fx, fy), (mx, my) = n.getCoord(), m.getCoord()
        cell = (xs.index(round(mx, 1)), ys.index(round(my, 1)))
        side = (_sign(fx - mx), _sign(fy - my))
        fringe[(cell, side)] = a
    nx_, ny_ = len(xs), len(ys)

    def inside(c: tuple[int, int]) -> bool:
        return 0 <= c[0] < nx_ and 0 <= c[1] < ny_

    def walk(start: tuple[int, int], h: tuple[int, int], turn_at: int | None, t: tuple[int, int]) -> list[str]:
        """Nodes from ``start`` heading ``h``; after ``turn_at`` steps turn to ``t``; end on the fringe."""
        cells = [start]
        cur, head, steps = start, h, 0
        while True:
            if turn_at is not None and steps == turn_at:
                head, turn_at = t, None
            nxt = (cur[0] + head[0], cur[1] + head[1])
            if not inside(nxt):
                break
            cells.append(nxt)
            cur, steps = nxt, steps + 1
        return [at[c] for c in cells] + [fringe[(cur, head)]]

    ods: list[_Od] = []
    for (cell, side), entry in sorted(fringe.items(), key=lambda kv: kv[1]):
        h = (-side[0], -side[1])  # heading into the grid
        peak = g.x_entry_peak_veh_h if side[0] else g.y_entry_peak_veh_h
        if peak <= 0:
            continue
        n_cross = nx_ if side[0] else ny_  # junctions passed going straight
        left, right = (-h[1], h[0]), (h[1], -h[0])
        options: list[tuple[list[str], float]] = [(walk(cell, h, None, h), g.through)]
        for k in range(n_cross):
            options.append((walk(cell, h, k, left), g.left / n_cross))
            options.append((walk(cell, h, k, right), g.right / n_cross))
        for nodes, share in options:
            if share <= 0:
                continue
            path = [entry, *nodes]
            route = tuple(x for a, b in itertools.pairwise(path) for x in chain[(a, b)])
            factor = 1.0 + d.demand.jitter * (2.0 * rng.random() - 1.0)
            ods.append(_Od(f"{path[0]}-{path[-1]}", route, peak * share * factor, d.demand.mix))
    return ods


def _corridor_ods(d: ScenarioDef, rng: random.Random) -> list[_Od]:
    c = d.network
    p = d.demand.pattern
    assert isinstance(c, CorridorNetwork) and isinstance(p, CorridorDemand)
    sig = list(c.signal_ids)
    n = len(sig)
    side_mix = p.side_mix or d.demand.mix

    def edges(nodes: list[str]) -> tuple[str, ...]:
        return tuple(f"{a}_{b}" for a, b in itertools.pairwise(nodes))

    raw: list[tuple[list[str], float, Mapping[str, float]]] = []
    stay = 1.0 - p.main_left - p.main_right
    for direction, peak in (("forward", p.forward_peak_veh_h), ("reverse", p.reverse_peak_veh_h)):
        order = sig if direction == "forward" else sig[::-1]
        start, end = ("W", "E") if direction == "forward" else ("E", "W")
        # right-hand traffic: heading east, left is north
        left_side, right_side = ("N", "S") if direction == "forward" else ("S", "N")
        for k, j in enumerate(order):
            reach = peak * stay**k
            i = j[1:]
            raw.append(([start, *order[: k + 1], f"{left_side}{i}"], reach * p.main_left, d.demand.mix))
            raw.append(([start, *order[: k + 1], f"{right_side}{i}"], reach * p.main_right, d.demand.mix))
        raw.append(([start, *order, end], peak * stay**n, d.demand.mix))
    for k, j in enumerate(sig):
        i = j[1:]
        east, west = [*sig[k:], "E"], [*sig[: k + 1][::-1], "W"]
        # from the north heading south: left is east; from the south heading north: left is west
        for src, dst, lft, rgt in ((f"N{i}", f"S{i}", east, west), (f"S{i}", f"N{i}", west, east)):
            raw.append(([src, j, dst], p.side_peak_veh_h * p.side_through, side_mix))
            raw.append(([src, *lft], p.side_peak_veh_h * p.side_left, side_mix))
            raw.append(([src, *rgt], p.side_peak_veh_h * p.side_right, side_mix))
    ods = []
    for nodes, rate, mix in raw:
        factor = 1.0 + d.demand.jitter * (2.0 * rng.random() - 1.0)
        if rate > 0:
            ods.append(_Od(f"{nodes[0]}-{nodes[-1]}", edges(nodes), rate * factor, mix))
    return ods


def _bus_route(d: ScenarioDef, direction: str) -> tuple[str, tuple[str, ...]]:
    """Route id and edges of a bus line over the whole corridor."""
    assert isinstance(d.network, CorridorNetwork)
    sig = list(d.network.signal_ids)
    nodes = ["W", *sig, "E"] if direction == "forward" else ["E", *sig[::-1], "W"]
    return f"{nodes[0]}-{nodes[-1]}", tuple(f"{a}_{b}" for a, b in itertools.pairwise(nodes))
