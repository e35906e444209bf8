"""Demand estimation from detector observations (vectorised).

Counts per detector are summed per (intersection, signal group) each tick
and smoothed with an exponential moving average into flows in veh/h, the
input of every adaptive policy. Queues come from the backend where it can
measure them (SUMO's stop-line zones, field controllers with zone detectors)
and are 0 where it cannot: no input-output count model is implemented, so a
loops-only controller leaves the policies to decide from counts alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.arrays import any_set, read_only
from controller.backend import DetectorLayout, Observation

__all__ = ["Estimate", "DemandEstimator"]


@dataclass(frozen=True)
class Estimate:
    flow_veh_h: np.ndarray  # (N, G) smoothed flow past the stop line
    occupancy: np.ndarray  # (N, G) mean occupancy of the group's stop-line detectors, 0..1
    queue_veh: np.ndarray  # (N, G) best queue estimate (0 where unknown)
    detector_ok: np.ndarray  # (D,) bool


class DemandEstimator:
    """EWMA flows per signal group; ``half_life_s`` sets the memory."""

    def __init__(
        self, layout: DetectorLayout, n: int, g: int, *, half_life_s: float = 300.0, counts_read: bool = True
    ) -> None:
        self.layout = layout
        # False when the backend is not asked for counts (the policy reads none): flows
        # stay unknown (0) and no detector is judged, at the cost of one array op a tick.
        self.counts_read = counts_read
        self._no_flow, self._none_ok = read_only(np.zeros((n, g)), np.zeros(len(layout.ids), bool))
        self.n, self.g = n, g
        self.half_life_s = half_life_s
        self.flow_veh_h = np.zeros((n, g))
        self._flat = layout.row * g + layout.group
        self._stop = np.flatnonzero(layout.stop_line)
        self._flat_stop = self._flat[self._stop]

    def update(self, obs: Observation, dt_s: float) -> Estimate:
        if not self.counts_read:
            q = obs.queue_veh
            return Estimate(self._no_flow, self._no_flow, np.where(np.isnan(q), 0.0, q), self._none_ok)
        n, g = self.n, self.g
        ok = np.isfinite(obs.counts) & np.isfinite(obs.occupancy)
        # Per-group sums over the stop-line detectors that report (a gather and
        # bincounts: no boolean indexing, which costs more than the sums here).
        ok_s = ok[self._stop]
        if any_set(ok_s):
            flat = self._flat_stop
            size = n * g
            per_group: np.ndarray = np.bincount(
                flat, weights=np.where(ok_s, obs.counts[self._stop], 0.0), minlength=size
            )
            n_det = np.bincount(flat, weights=ok_s, minlength=size)
            occ_sum = np.bincount(flat, weights=np.where(ok_s, obs.occupancy[self._stop], 0.0), minlength=size)
            per_group = per_group.reshape(n, g)
            occupancy = np.divide(occ_sum, n_det, out=np.zeros(size), where=n_det > 0).reshape(n, g)
        else:  # no stop-line detector reported: flows decay, occupancy unknown = 0
            per_group, occupancy = np.zeros((n, g)), np.zeros((n, g))
        alpha = 1.0 - 0.5 ** (dt_s / self.half_life_s) if self.half_life_s > 0 else 1.0
        self.flow_veh_h += alpha * (per_group * 3600.0 / dt_s - self.flow_veh_h)
        q = obs.queue_veh
        queue = np.where(np.isnan(q), 0.0, q)  # nan_to_num costs 5x more on these small arrays
        return Estimate(flow_veh_h=self.flow_veh_h.copy(), occupancy=occupancy, queue_veh=queue, detector_ok=ok)
