"""The control centre's per-intersection KPIs, one sample per interval of simulated time.

One job of the control centre, apart from the engine runner that feeds it tick by tick: mean
and maximum queue, stop-line flow, arrivals on green at the advance detectors and the share of
ticks under central control, per intersection, over ``interval_s``; then a sample and a fresh
window. The runner keeps the samples in memory and in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from controller.backend import DetectorLayout
from controller.engine import TickResult
from controller.safety import Mode
from intersections.model import SignalState

__all__ = ["KpiWindow"]

GREEN = int(SignalState.GREEN)


class KpiWindow:
    """Sums over the current interval for ``n`` intersections."""

    def __init__(self, n: int, interval_s: float) -> None:
        self.n, self.interval_s = n, interval_s
        self._reset()

    def _reset(self) -> None:
        n = self.n
        self._t0: float | None = None
        self._ticks = 0
        self._queue = np.zeros(n)
        self._max_queue = np.zeros(n)
        self._flow = np.zeros(n)
        self._arr = np.zeros(n)
        self._aog = np.zeros(n)
        self._central = np.zeros(n)

    def add(
        self,
        res: TickResult,
        queue_now: np.ndarray,
        lay: DetectorLayout,
        dt_s: float,
        clock: Callable[[float], datetime],
    ) -> dict[str, Any] | None:
        """Count one tick; at the end of an interval return its sample (lists, one value per row)."""
        obs = res.observation
        n = self.n
        if self._t0 is None:
            self._t0 = res.time_s
        self._ticks += 1
        self._queue += queue_now
        np.maximum(self._max_queue, queue_now, out=self._max_queue)
        counts = np.nan_to_num(obs.counts)
        if counts.size:
            stop = lay.stop_line
            self._flow += np.bincount(lay.row[stop], weights=counts[stop], minlength=n)
            adv = ~stop
            green = res.states[lay.row, lay.group] == GREEN
            self._arr += np.bincount(lay.row[adv], weights=counts[adv], minlength=n)
            self._aog += np.bincount(lay.row[adv], weights=counts[adv] * green[adv], minlength=n)
        self._central += res.report.mode == Mode.NORMAL
        span = res.time_s + dt_s - self._t0
        if span < self.interval_s:
            return None
        k = max(self._ticks, 1)
        sample = {
            "t": round(res.time_s, 1),
            "clock": clock(res.time_s).isoformat(timespec="seconds"),
            "queue_veh": np.round(self._queue / k, 2).tolist(),
            "max_queue_veh": np.round(self._max_queue, 1).tolist(),
            "flow_veh_h": np.round(self._flow * 3600.0 / span, 0).tolist(),
            "aog_pct": np.round(
                np.where(self._arr > 0, 100.0 * self._aog / np.maximum(self._arr, 1), np.nan), 1
            ).tolist(),
            "central_pct": np.round(100.0 * self._central / k, 1).tolist(),
        }
        self._reset()
        return sample
