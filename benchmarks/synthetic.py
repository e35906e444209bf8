"""A synthetic city of signalised four-leg intersections on a grid, for benchmarks.

Each intersection has NS/EW through and protected-left groups plus two
pedestrian crossings, stop-line and advance detectors on every approach, and
movements that link to the neighbours' approaches (so downstream queues and
spillback are real array work).
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from intersections.model import Detector, DetectorKind, GroupKind, Intersection, Movement, SignalGroup, Stage
from intersections.network import Network, add_link

__all__ = ["synthetic_city"]

_DIRS = {"N": (0, 1), "S": (0, -1), "E": (1, 0), "W": (-1, 0)}
_OPP = {"N": "S", "S": "N", "E": "W", "W": "E"}
_LEFT_OF = {"N": "E", "S": "W", "E": "S", "W": "N"}  # coming from N (heading S), a left turn heads E


def synthetic_city(n: int, seed: int = 0) -> Network:
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    rng = np.random.default_rng(seed)
    node = {(c, r): f"J{c}_{r}" for r in range(rows) for c in range(cols) if r * cols + c < n}
    g = nx.DiGraph()
    for (c, r), nid in node.items():
        g.add_node(nid, x_m=c * 250.0, y_m=r * 250.0, signalised=True, tls=nid)

    def edge(frm: tuple[int, int], to: tuple[int, int]) -> str:
        return f"{node.get(frm, f'B{frm}')}>{node.get(to, f'B{to}')}"

    for (c, r), nid in node.items():
        for dx, dy in _DIRS.values():
            nb = (c + dx, r + dy)
            add_link(g, node.get(nb, f"B{nb}"), nid, id=edge(nb, (c, r)), length_m=250, free_speed_m_s=13.9,
                     lanes=2, saturation_flow_pcu_h=3800)  # fmt: skip
    inters = []
    ids = ["NS", "EW", "NL", "EL", "PN", "PE"]
    conflicts = {("NS", "EW"), ("NS", "EL"), ("EW", "NL"), ("NL", "EL"), ("PN", "EW"), ("PN", "NL"), ("PE", "NS"),
                 ("PE", "EL")}  # fmt: skip
    c_mat = np.zeros((6, 6), bool)
    for a, b in conflicts:
        c_mat[ids.index(a), ids.index(b)] = c_mat[ids.index(b), ids.index(a)] = True
    for (c, r), nid in node.items():

        def mv(frm: str, turn: str, cc: int = c, rr: int = r) -> Movement:
            dx, dy = _DIRS[frm]
            src = (cc + dx, rr + dy)
            to_dir = _OPP[frm] if turn == "s" else _LEFT_OF[frm]
            tx, ty = _DIRS[to_dir]
            return Movement(
                edge(src, (cc, rr)), edge((cc, rr), (cc + tx, rr + ty)), (f"{edge(src, (cc, rr))}_0",), turn
            )

        y = float(rng.choice([3.0, 3.5, 4.0]))
        groups = (
            SignalGroup("NS", movements=(mv("N", "s"), mv("S", "s")), min_green_s=7, yellow_s=y, all_red_s=2),
            SignalGroup("EW", movements=(mv("E", "s"), mv("W", "s")), min_green_s=7, yellow_s=y, all_red_s=2),
            SignalGroup("NL", movements=(mv("N", "l"), mv("S", "l")), min_green_s=5, yellow_s=y, all_red_s=2),
            SignalGroup("EL", movements=(mv("E", "l"), mv("W", "l")), min_green_s=5, yellow_s=y, all_red_s=2),
            SignalGroup("PN", kind=GroupKind.PEDESTRIAN, walk_s=7, ped_clearance_s=12, min_green_s=0),
            SignalGroup("PE", kind=GroupKind.PEDESTRIAN, walk_s=7, ped_clearance_s=12, min_green_s=0),
        )
        ig = np.zeros((6, 6))
        for i, grp in enumerate(groups):
            ig[i, :] = grp.ped_clearance_s if grp.kind is GroupKind.PEDESTRIAN else y + 2
        stages = (Stage("S1", {"NS", "PN"}), Stage("S2", {"NL"}), Stage("S3", {"EW", "PE"}), Stage("S4", {"EL"}))
        dets = []
        for grp in groups[:4]:
            for m in grp.movements:
                lane = m.lanes[0]
                dets.append(Detector(f"{lane}@{grp.id}", lane, grp.id, DetectorKind.STOP_LINE, 0.0, 100.0))
                dets.append(Detector(f"{lane}@{grp.id}@adv", lane, grp.id, DetectorKind.ADVANCE, 60.0, 1.0))
        inters.append(Intersection(nid, groups, c_mat, ig, stages, tuple(dets), x_m=c * 250.0, y_m=r * 250.0))
    return Network(tuple(inters), g, source="synthetic")
