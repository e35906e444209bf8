"""Pedestrian push-button calls read from SUMO: who is waiting at the kerb of each signalled crossing.

A field controller serves a crossing when somebody has pushed its button (NTCIP 1202
``phaseControlGroupPedCall``, read back by the NTCIP backend as ``extra["ped_calls"]``).
SUMO has no push buttons and no detector type for people waiting at a crossing, so the
backend reads the same thing from the people themselves: a person standing on a walking
area of the junction (``person.getWaitingTime`` > 0: SUMO counts a person as waiting while
slower than 0.1 m/s) whose next edge is a signalled crossing has pushed that crossing's
button. A person still walking towards the kerb has not.

Without this every SUMO crossing was on recall (a group without detectors): served at every
turn of the stage sequence whether or not anybody wanted to cross. On the real-city corpus
(issue #15) Berlin's Doerpfeldstr has 187 crossings and no pedestrian demand at all; an
adaptive controller whose vehicle stage ends often (queues held by jams further on) then gave
a mid-block crossing nobody used half of the time, and the queue it left behind spilled back
over the unsignalised junctions upstream.

Cost: one ``edge.getLastStepPersonIDs`` call per walking area of a junction with a signalled
crossing, and two calls per person found there; nothing where the network has no signalled
crossing, and nothing in meso (SUMO's mesoscopic model has no pedestrians on walking areas).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from intersections.model import GroupKind
from intersections.network import Network

__all__ = ["CrossingCalls"]


class CrossingCalls:
    """Per tick, which crossing groups have somebody waiting to cross: ``extra["ped_calls"]`` (N, G) bool."""

    def __init__(self, network: Network, shape: tuple[int, int], edge_ids: list[str]) -> None:
        """``edge_ids``: every edge of the SUMO network (internal ones included), to find the walking areas."""
        self.shape = shape
        self._group_of: dict[str, tuple[int, int]] = {}  # crossing edge id -> (row, group)
        junctions: set[str] = set()
        for row, inter in enumerate(network.intersections):
            for g, grp in enumerate(inter.groups):
                if grp.kind is not GroupKind.PEDESTRIAN:
                    continue
                for mv in grp.movements:
                    if mv.to_edge.startswith(":"):
                        self._group_of[mv.to_edge] = (row, g)
                        junctions.add(mv.to_edge[1:].rsplit("_", 1)[0])
        # Walking areas of those junctions: ':<junction>_w<k>'. A crossing is entered from either end.
        self._walking_areas = [
            e for e in edge_ids if e.startswith(":") and "_w" in e and e[1:].rsplit("_w", 1)[0] in junctions
        ]

    @classmethod
    def build(cls, network: Network, shape: tuple[int, int], conn: Any) -> CrossingCalls | None:
        """The reader for ``network`` over a running SUMO, or None where no group is a signalled crossing."""
        if not any(g.kind is GroupKind.PEDESTRIAN for inter in network.intersections for g in inter.groups):
            return None
        calls = cls(network, shape, list(conn.edge.getIDList()))
        return calls if calls._group_of and calls._walking_areas else None

    def read(self, conn: Any) -> np.ndarray:
        """(N, G) bool: a person stands at a kerb of the group's crossing, waiting to enter it."""
        out = np.zeros(self.shape, bool)
        edge, person = conn.edge, conn.person
        for wa in self._walking_areas:
            for pid in edge.getLastStepPersonIDs(wa):
                hit = self._group_of.get(person.getNextEdge(pid))
                if hit is not None and not out[hit] and person.getWaitingTime(pid) > 0.0:
                    out[hit] = True
        return out
