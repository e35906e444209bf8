"""The map's roads coloured by what the engine sees: queue, detector occupancy, degree of saturation.

One job of the control centre, apart from the engine runner that feeds it each tick:
:class:`RoadMap` says which road feeds which signal group and which detector lies on which road
(built once per network); :class:`RoadTraffic` keeps the slowly moving figures the colours come
from (exponential means of green share and stop-line flow, the latest occupancy) and gives the
snapshot's per-road lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from controller.backend import DetectorLayout
from controller.engine import TickResult
from intersections.model import SignalState
from intersections.network import Network

__all__ = ["VEHICLE_SPACING_M", "ROAD_LEVELS", "ROAD_LANE_LEVELS_VEH", "RoadMap", "RoadTraffic"]

GREEN = int(SignalState.GREEN)
#: Time constant of the exponential means behind the saturation colour (s).
ROAD_MEAN_S = 300.0

#: Queue storage per lane: one queued vehicle per 7.5 m (a passenger car plus the gap to the next one;
#: the HCM's queue-storage convention of 25 ft per vehicle, ../shared/reference/atspm-and-operations.md).
VEHICLE_SPACING_M = 7.5
#: Road colour levels on the map, the worse of two scales. The queued share of the road's storage
#: (1: >= 25 %, 2: >= 50 %, 3: >= 75 %, about to spill back into the upstream junction), and vehicles queued
#: per lane (1: >= 1, a queue is waiting; 2: >= 8, more than a 20-s green discharges at the HCM's 1,800
#: veh/h per lane (2 s headway) after the start-up loss, so it will not clear in one typical urban green).
ROAD_LEVELS = np.array([0.25, 0.5, 0.75])
ROAD_LANE_LEVELS_VEH = np.array([1.0, 8.0])


@dataclass(frozen=True)
class RoadMap:
    """Which map road feeds which signal group, for colouring roads by queue, occupancy and saturation.

    ``edge`` indexes :attr:`ids` (the network's road edges, in the order
    ``/api/network`` lists them); a group that serves movements from k roads
    counts 1/k of its queue on each (``weight``). Detectors map to the road of
    their lane.
    """

    ids: tuple[str, ...]
    storage_veh: np.ndarray  # (E,) vehicles an edge holds queued: lanes * length / VEHICLE_SPACING_M
    lanes: np.ndarray  # (E,) lanes of the edge
    sat_flow_veh_h: np.ndarray  # (E,) saturation flow of the edge (all lanes)
    row: np.ndarray  # (K,) group-to-edge links: intersection row
    group: np.ndarray  # (K,) group column
    edge: np.ndarray  # (K,) edge index
    weight: np.ndarray  # (K,) share of the group's queue counted on this edge
    det_edge: np.ndarray  # (D,) edge index of each detector, -1 if its lane is on no map edge

    @classmethod
    def build(cls, network: Network, edge_ids: list[str], detector_ids: tuple[str, ...]) -> RoadMap:
        index = {e: k for k, e in enumerate(edge_ids)}
        info = {d["id"]: d for _u, _v, d in network.graph.edges(data=True) if "id" in d}
        lanes = np.array([max(1, int(info.get(e, {}).get("lanes", 1))) for e in edge_ids], float)
        length = np.array([float(info.get(e, {}).get("length_m", 100.0)) for e in edge_ids])
        sat = np.array(
            [
                float(info.get(e, {}).get("saturation_flow_pcu_h", 1900.0 * n))
                for e, n in zip(edge_ids, lanes, strict=True)
            ]
        )
        rows, groups, edges, weights = [], [], [], []
        for r, inter in enumerate(network.intersections):
            for g, grp in enumerate(inter.groups):
                src = sorted({m.from_edge for m in grp.movements if m.from_edge in index})
                for e in src:
                    rows.append(r)
                    groups.append(g)
                    edges.append(index[e])
                    weights.append(1.0 / len(src))
        lane_edge = {}
        for inter in network.intersections:
            for d in inter.detectors:
                lane_edge[d.id] = index.get(d.lane.rsplit("_", 1)[0], -1) if d.lane else -1
        return cls(
            ids=tuple(edge_ids),
            storage_veh=np.maximum(lanes * length / VEHICLE_SPACING_M, 1.0),
            lanes=lanes,
            sat_flow_veh_h=sat,
            row=np.asarray(rows, np.int64),
            group=np.asarray(groups, np.int64),
            edge=np.asarray(edges, np.int64),
            weight=np.asarray(weights, float),
            det_edge=np.asarray([lane_edge.get(d, -1) for d in detector_ids], np.int64),
        )

    def levels(self, queue_veh: np.ndarray) -> np.ndarray:
        """(E,) colour level 0..3 of each road's queue (see :data:`ROAD_LEVELS`, :data:`ROAD_LANE_LEVELS_VEH`)."""
        share = np.searchsorted(ROAD_LEVELS, queue_veh / self.storage_veh, side="right")
        per_lane = np.searchsorted(ROAD_LANE_LEVELS_VEH, queue_veh / self.lanes, side="right")
        return np.maximum(share, per_lane)

    def queue_veh(self, queue_by_group: np.ndarray) -> np.ndarray:
        """(E,) vehicles queued on each road (NaN, unknown, counts as 0)."""
        q = np.nan_to_num(queue_by_group[self.row, self.group]) * self.weight
        return np.bincount(self.edge, weights=q, minlength=len(self.ids))

    def occupancy(self, occupancy_by_detector: np.ndarray) -> np.ndarray:
        """(E,) mean detector occupancy (0..1) per road; NaN where a road has no detector."""
        ok = (self.det_edge >= 0) & np.isfinite(occupancy_by_detector)
        e = self.det_edge[ok]
        n = np.bincount(e, minlength=len(self.ids))
        tot = np.bincount(e, weights=occupancy_by_detector[ok], minlength=len(self.ids))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, tot / np.maximum(n, 1), np.nan)

    def saturation(self, flow_by_group_veh_h: np.ndarray, green_share: np.ndarray) -> np.ndarray:
        """(E,) degree of saturation x = q / (s g/C) (Webster 1958; HCM v/c): flow over capacity of the green.

        ``flow_by_group_veh_h`` are stop-line counts (departures) of each group
        and ``green_share`` each group's share of time in green over the same
        window, so ``x`` tops out near 1 on a saturated approach; the queue
        colour shows what is left over.
        """
        q = flow_by_group_veh_h[self.row, self.group] * self.weight
        cap_share = green_share[self.row, self.group] * self.weight
        flow = np.bincount(self.edge, weights=q, minlength=len(self.ids))
        share = np.bincount(self.edge, weights=cap_share, minlength=len(self.ids))
        cnt = np.bincount(self.edge, weights=self.weight, minlength=len(self.ids))
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where(cnt > 0, share / np.maximum(cnt, 1e-9), np.nan)
            return np.where(g > 0, flow / (self.sat_flow_veh_h * g), np.nan)


class RoadTraffic:
    """Per group, exponential means (time constant :data:`ROAD_MEAN_S`) of green share and stop-line
    flow (for the degree of saturation), and each road's latest detector occupancy."""

    def __init__(self, n: int, g: int, n_roads: int) -> None:
        self.green = np.zeros((n, g))
        self.flow = np.zeros((n, g))
        self.occupancy = np.full(n_roads, np.nan)

    def add(self, res: TickResult, lay: DetectorLayout, dt_s: float, roads: RoadMap | None) -> None:
        """One tick of states, stop-line counts and occupancy."""
        obs = res.observation
        a = min(1.0, dt_s / ROAD_MEAN_S)
        green = (res.states == GREEN).astype(float)
        self.green += a * (green - self.green)
        flow = np.zeros_like(self.flow)
        counts = np.nan_to_num(obs.counts)
        if counts.size:
            stop = lay.stop_line
            np.add.at(flow, (lay.row[stop], lay.group[stop]), counts[stop] * 3600.0 / dt_s)
        self.flow += a * (flow - self.flow)
        if roads is not None and obs.occupancy.size == len(roads.det_edge):
            self.occupancy = roads.occupancy(np.asarray(obs.occupancy, float))

    def live(self, roads: RoadMap | None, queue_by_group: np.ndarray) -> dict[str, Any]:
        """Per map road, in ``/api/network`` order: queue, its level, occupancy and degree of saturation."""
        if roads is None or not len(roads.ids):
            return {"queue_veh": [], "level": [], "occupancy": [], "saturation": []}
        q = np.round(roads.queue_veh(queue_by_group), 1)  # the level of the figure the client sees
        level = roads.levels(q)
        x = roads.saturation(self.flow, self.green)

        def clean(a: np.ndarray, nd: int) -> list[float | None]:
            return [None if v != v else v for v in np.round(a, nd).tolist()]

        return {
            "queue_veh": clean(q, 1),
            "level": level.astype(int).tolist(),
            "occupancy": clean(self.occupancy, 2),
            "saturation": clean(x, 2),
        }
