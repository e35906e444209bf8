"""Time-space diagrams from SUMO trajectories, with the signal states as bands.

The traffic engineer's view of a corridor (KITS/Synchro "time-space diagram",
``../shared/reference/atspm-and-operations.md`` §2): distance along the corridor
against time, one line per vehicle (SUMO ``--fcd-output`` restricted to the
corridor's edges), and at each stop line a band coloured by what the signal
group serving the corridor's through movement showed each second. Green waves
show as vehicle lines crossing green bands without flattening.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from intersections.errors import InputError
from intersections.model import SignalState
from intersections.network import Network
from intersections.plan import TimingPlan

__all__ = [
    "Corridor",
    "corridor_from_tls",
    "read_fcd",
    "plot_time_space",
    "write_edge_filter",
    "plan_states",
    "plot_plan_time_space",
]


@dataclass(frozen=True)
class Corridor:
    edges: tuple[str, ...]  # ordered, upstream first
    offset_m: Mapping[str, float]  # distance of each edge's start from the corridor start
    length_m: float
    tls: tuple[str, ...]  # ordered intersection ids
    stop_line_m: tuple[float, ...]  # distance of each intersection's stop line
    through_group: tuple[int, ...]  # group index serving the through movement at each


def corridor_from_tls(network: Network, tls: Sequence[str]) -> Corridor:
    """The path through the given intersections in order, plus one link before and after."""
    g = network.graph
    if len(tls) < 2:
        raise InputError("a corridor needs at least two intersections")
    node_of = {d.get("tls") or n: n for n, d in g.nodes(data=True) if d.get("signalised")}
    nodes = []
    for t in tls:
        if t not in node_of and t not in g:
            raise InputError(f"corridor intersection {t!r} is not in the network")
        nodes.append(node_of.get(t, t))
    path: list[str] = [nodes[0]]
    for a, b in itertools.pairwise(nodes):
        try:
            seg = nx.shortest_path(g, a, b, weight="length_m")
        except nx.NetworkXNoPath:
            raise InputError(f"no road from {a} to {b}: the corridor is not connected") from None
        path.extend(seg[1:])
    # One approach link upstream and one downstream, the most nearly straight.
    ups = [u for u in g.predecessors(path[0]) if u not in path]
    downs = [v for v in g.successors(path[-1]) if v not in path]

    def straightness(a: str, b: str, c: str) -> float:
        pa, pb, pc = (np.array([g.nodes[n].get("x_m", 0.0), g.nodes[n].get("y_m", 0.0)]) for n in (a, b, c))
        u, v = pb - pa, pc - pb
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9))

    if ups and len(path) > 1:
        path.insert(0, max(ups, key=lambda u: straightness(u, path[0], path[1])))
    if downs and len(path) > 1:
        path.append(max(downs, key=lambda v: straightness(path[-2], path[-1], v)))
    edges, offset, pos = [], {}, 0.0
    for a, b in itertools.pairwise(path):
        d = g.edges[a, b]
        edges.append(d["id"])
        offset[d["id"]] = pos
        pos += d["length_m"]
    stop, through = [], []
    for t, node in zip(tls, nodes, strict=True):
        k = path.index(node)
        in_edge = g.edges[path[k - 1], node]["id"] if k > 0 else None
        out_edge = g.edges[node, path[k + 1]]["id"] if k + 1 < len(path) else None
        stop.append(offset[in_edge] + g.edges[path[k - 1], node]["length_m"] if in_edge else 0.0)
        inter = network.get(t) if t in network.by_id else None
        gi = -1
        if inter is not None:
            for j, grp in enumerate(inter.groups):
                if any(m.from_edge == in_edge and m.to_edge == out_edge for m in grp.movements):
                    gi = j
                    break
        through.append(gi)
    return Corridor(tuple(edges), offset, pos, tuple(tls), tuple(stop), tuple(through))


def write_edge_filter(corridor: Corridor, path: str | Path) -> Path:
    """The file ``--fcd-output.filter-edges.input-file`` reads: ``edge:ID`` per line."""
    p = Path(path)
    p.write_text("".join(f"edge:{e}\n" for e in corridor.edges), encoding="utf-8")
    return p


def read_fcd(path: str | Path, corridor: Corridor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Vehicle id -> (times, distances along the corridor)."""
    tracks: dict[str, tuple[list[float], list[float]]] = {}
    t = 0.0
    for _ev, el in ET.iterparse(str(path), events=("start", "end")):
        if el.tag == "timestep" and _ev == "start":
            t = float(el.get("time", 0.0))
        elif el.tag == "vehicle" and _ev == "end":
            lane = el.get("lane", "")
            edge = lane.rsplit("_", 1)[0]
            if edge in corridor.offset_m:
                ts, xs = tracks.setdefault(el.get("id", ""), ([], []))
                ts.append(t)
                xs.append(corridor.offset_m[edge] + float(el.get("pos", 0.0)))
        elif el.tag == "timestep" and _ev == "end":
            el.clear()
    return {v: (np.array(ts), np.array(xs)) for v, (ts, xs) in tracks.items()}


_COLOURS = {
    int(SignalState.GREEN): "#2ca02c",
    int(SignalState.YELLOW): "#ffbf00",
    int(SignalState.RED): "#d62728",
    int(SignalState.FLASH): "#ff7f0e",
}


def plot_time_space(
    tracks: Mapping[str, tuple[np.ndarray, np.ndarray]],
    corridor: Corridor,
    times_s: np.ndarray,
    states: np.ndarray,
    rows: Sequence[int],
    out_png: str | Path,
    *,
    title: str = "",
    window_s: tuple[float, float] | None = None,
) -> Path:
    """Draw and save. ``states`` is (T, N, G) over ``times_s``; ``rows`` the corridor rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 6.5), dpi=110)
    lo, hi = window_s if window_s else (float(times_s.min()), float(times_s.max()))
    for ts, xs in tracks.values():
        sel = (ts >= lo) & (ts <= hi)
        if sel.sum() > 1:
            # Break the line where the vehicle left the filtered edges (junction interiors).
            tt, xx = ts[sel], xs[sel]
            gaps = np.flatnonzero(np.diff(tt) > 1.5) + 1
            for seg_t, seg_x in zip(np.split(tt, gaps), np.split(xx, gaps), strict=True):
                ax.plot(seg_t, seg_x, color="#1f3a93", lw=0.5, alpha=0.55)
    sel_t = (times_s >= lo) & (times_s <= hi)
    dt = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 1.0
    band = max(corridor.length_m * 0.008, 4.0)
    for k, (row, gi, x) in enumerate(zip(rows, corridor.through_group, corridor.stop_line_m, strict=True)):
        if gi < 0:
            continue
        series = states[sel_t, row, gi]
        tt = times_s[sel_t]
        start = 0
        for i in range(1, len(series) + 1):
            if i == len(series) or series[i] != series[start]:
                ax.add_patch(
                    plt.Rectangle(
                        (tt[start], x - band / 2), (tt[i - 1] - tt[start]) + dt, band,
                        color=_COLOURS.get(int(series[start]), "grey"), lw=0,
                    )
                )  # fmt: skip
                start = i
        ax.text(lo, x + band, f" {corridor.tls[k]}", fontsize=8, va="bottom")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, corridor.length_m)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("distance along corridor (m)")
    ax.set_title(title or "Time-space diagram")
    fig.tight_layout()
    out = Path(out_png)
    fig.savefig(out)
    plt.close(fig)
    return out


def plan_states(
    network: Network, plans: Mapping[str, TimingPlan], corridor: Corridor, times_s: np.ndarray
) -> np.ndarray:
    """(T, K) SignalState of each corridor intersection's through group under its fixed plan."""
    out = np.full((len(times_s), len(corridor.tls)), int(SignalState.RED), np.int8)
    for k, (tls, gi) in enumerate(zip(corridor.tls, corridor.through_group, strict=True)):
        plan = plans.get(tls)
        if plan is None or gi < 0:
            continue
        inter = network.get(tls)
        gid = inter.groups[gi].id
        stage_groups = {s.id: s.groups for s in inter.stages}
        starts = plan.stage_starts_s()
        pos = np.mod(times_s - plan.offset_s, plan.cycle_s)
        n = len(plan.stages)
        for j, st in enumerate(plan.stages):
            members = st.groups or stage_groups.get(st.stage, frozenset())
            if gid not in members:
                continue
            end = starts[j] + st.green_s
            nxt = plan.stages[(j + 1) % n]
            nxt_members = nxt.groups or stage_groups.get(nxt.stage, frozenset())
            if gid in nxt_members:
                end += st.intergreen_s  # stays green into the next stage
            green = ((pos - starts[j]) % plan.cycle_s) < (end - starts[j])
            out[green, k] = int(SignalState.GREEN)
    return out


def plot_plan_time_space(
    network: Network, plans: Mapping[str, TimingPlan], corridor: Corridor, out_png: str | Path, *, cycles: int = 6
) -> Path:
    """Green bands of fixed plans along a corridor, with free-speed progression lines."""
    cycle = max(float(plans[t].cycle_s) for t in corridor.tls if t in plans)
    times = np.arange(0.0, cycles * cycle, 1.0)
    st = plan_states(network, plans, corridor, times)
    states = st[:, :, None]  # (T, K, 1): one "group" per corridor row
    fake = Corridor(corridor.edges, corridor.offset_m, corridor.length_m, corridor.tls, corridor.stop_line_m,
                    tuple(0 for _ in corridor.tls))  # fmt: skip
    # Free-speed trajectories leaving the first stop line every 4 s of its green.
    g = network.graph
    speed = {d["id"]: d["free_speed_m_s"] for _u, _v, d in g.edges(data=True)}
    tracks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    x0 = corridor.stop_line_m[0]
    for t0 in times[(st[:, 0] == int(SignalState.GREEN)) & (times < 2 * cycle)][::4]:
        ts, xs, t, x = [t0], [x0], t0, x0
        for e in corridor.edges:
            start = corridor.offset_m[e]
            length = (corridor.offset_m.get(corridor.edges[corridor.edges.index(e) + 1], corridor.length_m)
                      if corridor.edges.index(e) + 1 < len(corridor.edges) else corridor.length_m) - start  # fmt: skip
            if start + length <= x:
                continue
            dx = start + length - x
            t += dx / speed.get(e, 13.9)
            x += dx
            ts.append(t)
            xs.append(x)
        tt = np.arange(ts[0], ts[-1], 1.0)  # 1-s samples, as trajectories are drawn
        tracks[f"p{t0:g}"] = (tt, np.interp(tt, ts, xs))
    return plot_time_space(
        tracks, fake, times, states, list(range(len(corridor.tls))), out_png,
        title=f"Planned green bands (cycle {cycle:.0f} s) and free-speed progression", window_s=(0.0, float(times[-1])),
    )  # fmt: skip
