"""The control centre's high-resolution event log: the engine's Indiana events, into the database.

The engine records events as they happen (:class:`~controller.events.EventRecorder`); every
``event_flush_s`` the control centre takes out what was recorded since the last flush and
stores it as one compressed chunk per intersection (:class:`~api.server.db.EventChunk`), which
the signal performance measures read back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from api.server.db import Database, EventChunk, encode_events
from controller.events import EventRecorder

__all__ = ["DrainingRecorder"]


class DrainingRecorder(EventRecorder):
    """An :class:`EventRecorder` whose events can be taken out and written to the database."""

    def drain(self) -> np.ndarray:
        """The events recorded since the last drain (time, row, code, parameter), and forget them."""
        ev = self.table()
        self._chunks = []
        return ev

    def flush(self, db: Database, ids: Sequence[str], clock: Callable[[float], datetime]) -> int:
        """Store what was recorded since the last flush, one chunk per intersection; returns the events stored.

        ``clock`` turns the run's simulated seconds into the controller clock the chunks are stamped with.
        """
        ev = self.drain()
        if not len(ev):
            return 0
        with db.session() as s:
            for r in np.unique(ev[:, 1]).astype(int):
                sel = ev[ev[:, 1] == r]
                t0, t1 = float(sel[0, 0]), float(sel[-1, 0])
                s.add(
                    EventChunk(
                        intersection_id=ids[r],
                        start_at=clock(t0),
                        end_at=clock(t1),
                        count=len(sel),
                        data=encode_events(sel[:, 0] - t0, sel[:, 2], sel[:, 3]),
                    )
                )
        return len(ev)
