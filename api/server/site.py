"""Where the control centre runs: the network model, its map and the run it comes from.

The settings name one of three sources: a technicians' inventory (the model and, at the
surveyed positions, the map), a SUMO net, or a library scenario (built, with its run's begin,
end and corridor). :func:`load_site` reads it once at start-up; the engine, the map and the
time-space view then take what they need from the :class:`Site`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from api.server.settings import Settings
from intersections.errors import GreenwaveError
from intersections.network import Network

if TYPE_CHECKING:
    from simulation.detectors import SumoDetectors
    from simulation.runner import RunSpec

__all__ = ["Site", "corridor_of", "graph_geometry", "load_site", "read_geometry", "signal_positions"]


@dataclass(frozen=True)
class Site:
    """The network the control centre runs, and what it was read from."""

    network: Network
    geometry: dict[str, Any]  # the map: {"bounds": [x0, y0, x1, y1], "edges": [...]}, SUMO's x/y metres
    spec: RunSpec | None = None  # the library scenario's run, if the settings name one
    net_path: Path | None = None  # the SUMO net, unless the inventory is the model
    detectors: SumoDetectors | None = None  # the detectors generated on the SUMO net


def load_site(s: Settings) -> Site:
    """The inventory, SUMO net or library scenario the settings name (a scenario is built in the data directory)."""
    data = s.data_dir
    data.mkdir(parents=True, exist_ok=True)
    if s.inventory_file is not None:
        # A deployment with no SUMO net: the technicians' inventory is the model and the map.
        from intersections.loaders.inventory import load_inventory

        network = load_inventory(s.inventory_file)
        return Site(network, graph_geometry(network))
    from intersections.loaders.sumo_net import load_sumo_net
    from simulation.detectors import generate_detectors

    spec = None
    if s.net_file is not None:
        net_path = Path(s.net_file).resolve()
    else:
        from scenarios.specs import resolve_run

        spec = resolve_run(scenario=s.scenario, scenario_dir=data / f"scenario-{Path(s.scenario).stem}", seed=s.seed)
        net_path = spec.net
    detectors = generate_detectors(load_sumo_net(net_path), net_path, data / "gw_detectors.add.xml")
    network = detectors.network
    try:
        geometry = read_geometry(net_path, network)
    except Exception:  # pragma: no cover - a net sumolib cannot draw
        geometry = graph_geometry(network)
    return Site(network, geometry, spec, net_path, detectors)


def signal_positions(network: Network) -> dict[str, tuple[float, float]]:
    """Each intersection's (x, y) in metres: its signalised node of the road graph (0, 0 if none)."""
    g = network.graph
    node_of = {d.get("tls") or n: n for n, d in g.nodes(data=True) if d.get("signalised")}
    out: dict[str, tuple[float, float]] = {}
    for inter in network.intersections:
        nd = g.nodes[node_of.get(inter.id, inter.id)] if node_of.get(inter.id, inter.id) in g else {}
        out[inter.id] = (float(nd.get("x_m", 0.0)), float(nd.get("y_m", 0.0)))
    return out


def corridor_of(
    network: Network, positions: dict[str, tuple[float, float]], given: Sequence[str]
) -> dict[str, Any] | None:
    """The time-space view's corridor: the ``given`` signals (the scenario's), or the longest row of signals.

    The longest row of signals sharing (nearly) one y is a grid's middle row or a main road;
    None when no two signals line up or no road joins them.
    """
    from simulation.timespace import corridor_from_tls

    tls: list[str] = list(given)
    if len(tls) < 2:
        rows: dict[int, list[str]] = {}
        for iid, (_x, y) in positions.items():
            rows.setdefault(round(y / 5.0), []).append(iid)
        longest = max(len(r) for r in rows.values())
        if longest < 2:
            return None
        full = [rows[k] for k in sorted(rows) if len(rows[k]) == longest]
        tls = sorted(full[len(full) // 2], key=lambda i: positions[i][0])
    try:
        c = corridor_from_tls(network, tls)
    except GreenwaveError:
        return None
    speeds = [d.get("free_speed_m_s", 13.89) for _u, _v, d in network.graph.edges(data=True) if d.get("id") in c.edges]
    return {
        "intersections": list(c.tls),
        "distance_m": [round(x, 1) for x in c.stop_line_m],
        "through_group": [
            network.get(t).group_ids[k] if k >= 0 else None for t, k in zip(c.tls, c.through_group, strict=True)
        ],
        "length_m": round(c.length_m, 1),
        "speed_m_s": round(float(np.mean(speeds)) if speeds else 13.89, 2),
    }


def read_geometry(net_file: Path, network: Network) -> dict[str, Any]:
    """Edge shapes and junction positions of a SUMO net, for the map (SUMO's x/y metres)."""
    import sumolib

    net = sumolib.net.readNet(str(net_file))
    edges = []
    for e in net.getEdges(withInternal=False):
        if e.getFunction() == "internal":
            continue
        edges.append(
            {
                "id": e.getID(),
                "from": e.getFromNode().getID(),
                "to": e.getToNode().getID(),
                "lanes": e.getLaneNumber(),
                "shape": [[round(x, 1), round(y, 1)] for x, y, *_ in e.getShape()],
            }
        )
    (x0, y0), (x1, y1) = net.getBBoxXY()
    return {"bounds": [x0, y0, x1, y1], "edges": edges}


def graph_geometry(network: Network) -> dict[str, Any]:
    """The map of a network without a SUMO net: nodes at their ``x_m``/``y_m``, each link a straight road."""
    g = network.graph
    xs = [d.get("x_m", 0.0) for _, d in g.nodes(data=True)] or [0.0]
    ys = [d.get("y_m", 0.0) for _, d in g.nodes(data=True)] or [0.0]
    edges = [
        {
            "id": d["id"],
            "from": u,
            "to": v,
            "lanes": d.get("lanes", 1),
            "shape": [
                [g.nodes[u].get("x_m", 0.0), g.nodes[u].get("y_m", 0.0)],
                [g.nodes[v].get("x_m", 0.0), g.nodes[v].get("y_m", 0.0)],
            ],
        }
        for u, v, d in g.edges(data=True)
    ]
    return {"bounds": [min(xs), min(ys), max(xs), max(ys)], "edges": edges}
