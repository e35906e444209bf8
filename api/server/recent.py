"""The last few minutes of every intersection, tick by tick, in a ring (the dashboard's timelines).

One job of the control centre, apart from the engine runner that fills it: after each tick the
runner pushes the signal states, the served stage, detector presence and the queue per
intersection; the live snapshot reads the newest slot and the timeline endpoint a window of the
last seconds. Fixed-size arrays: a city's history costs the same memory at any uptime.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RecentTicks"]


class RecentTicks:
    """``size`` ticks of ``n`` intersections with ``g`` groups and ``d`` detectors, oldest overwritten first."""

    def __init__(self, n: int, g: int, d: int, size: int) -> None:
        self.size = size
        self.time = np.full(size, np.nan)
        self.states = np.zeros((size, n, g), np.int8)
        self.target = np.full((size, n), -1, np.int16)
        self.presence = np.zeros((size, d), bool)
        self.queue = np.zeros((size, n), np.float32)
        self._len = 0
        self._pos = 0

    def __len__(self) -> int:
        return self._len

    @property
    def newest(self) -> int:
        """The slot of the newest tick."""
        return (self._pos - 1) % self.size

    def push(
        self, time_s: float, states: np.ndarray, target: np.ndarray, presence: np.ndarray, queue: np.ndarray
    ) -> None:
        """One tick: states (N, G), served stage (N,), detector presence (D,), queued vehicles (N,)."""
        p = self._pos
        self.time[p] = time_s
        self.states[p] = states
        self.target[p] = target
        if presence.size:
            self.presence[p] = presence
        self.queue[p] = queue
        self._pos = (p + 1) % self.size
        self._len = min(self._len + 1, self.size)

    def window(self, seconds: float) -> np.ndarray:
        """The slots of the last ``seconds`` (simulated) up to the newest, oldest first."""
        idx = (self._pos - self._len + np.arange(self._len)) % self.size
        t = self.time[idx]
        return idx[t >= t[-1] - seconds] if len(idx) else idx
