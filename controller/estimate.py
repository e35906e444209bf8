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

    def __init__(self, layout: DetectorLayout, n: int, g: int, *, half_life_s: float = 300.0) -> None:
        self.layout = layout
        self.n, self.g = n, g
        self.half_life_s = half_life_s
        self.flow_veh_h = np.zeros((n, g))
        self._flat = layout.row * g + layout.group
        self._stop_counts = (
            np.bincount(self._flat[layout.stop_line], minlength=n * g).reshape(n, g)
            if len(layout.ids)
            else np.zeros((n, g))
        )

    def update(self, obs: Observation, dt_s: float) -> Estimate:
        n, g = self.n, self.g
        lay = self.layout
        ok = np.isfinite(obs.counts) & np.isfinite(obs.occupancy) if len(lay.ids) else np.zeros(0, bool)
        counts = np.where(ok, obs.counts, 0.0)
        occ = np.where(ok, obs.occupancy, 0.0)
        sel = lay.stop_line & ok
        per_group = np.bincount(self._flat[sel], weights=counts[sel], minlength=n * g).reshape(n, g)
        n_det = np.bincount(self._flat[sel], minlength=n * g).reshape(n, g)
        occ_sum = np.bincount(self._flat[sel], weights=occ[sel], minlength=n * g).reshape(n, g)
        occupancy = np.divide(occ_sum, n_det, out=np.zeros((n, g)), where=n_det > 0)
        alpha = 1.0 - 0.5 ** (dt_s / self.half_life_s) if self.half_life_s > 0 else 1.0
        self.flow_veh_h += alpha * (per_group * 3600.0 / dt_s - self.flow_veh_h)
        queue = np.nan_to_num(obs.queue_veh, nan=0.0)
        return Estimate(flow_veh_h=self.flow_veh_h.copy(), occupancy=occupancy, queue_veh=queue, detector_ok=ok)
