"""Yellow and red actuations (ATSPM "Yellow and Red Actuations").

Detection: lane-by-lane detectors at or just past the stop bar (LLS). Every
detector-on (82), shifted by the detector's ``offset_s`` (latency
correction), is placed in its yellow-red cycle of the phase
(:func:`scenarios.atspm.cycles.yellow_red_cycles`: ``8 begin yellow -> 9 end
yellow -> 11 end red clearance -> 1 next green``) and classified:

* **yellow** actuation if it falls in ``[8, 9)``;
* **red-clearance** actuation in ``[9, 11)``, **red** actuation in ``[11, 1)``;
  both are **red-light violations** (RLV);
* a violation is **severe** (SRLV) when it comes more than ``severe_s`` after
  the start of red (end of yellow, code 9).

Shares are of every actuation of those detectors over the analysed cycles
(from the first yellow to the last cycle's green), so ``%YLO`` and ``%RLV``
read as "per hundred vehicles".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenarios.atspm.cycles import PhaseCycles, detector_on_times, yellow_red_cycles
from scenarios.atspm.detectors import DetectorConfig
from scenarios.atspm.events import EventTable

__all__ = ["YellowRed", "yellow_red_actuations", "SEVERE_S"]

SEVERE_S = 4.0
YELLOW, RED_CLEARANCE, RED = 0, 1, 2


@dataclass(frozen=True)
class YellowRed:
    phase: int
    cycles: PhaseCycles  # yellow, red clearance, red, next green
    t_s: np.ndarray
    kind: np.ndarray  # YELLOW / RED_CLEARANCE / RED
    since_yellow_s: np.ndarray
    into_red_s: np.ndarray  # t - end of yellow (negative during yellow)
    severe: np.ndarray
    volume: int
    severe_s: float

    def summary(self) -> dict[str, float]:
        viol = self.kind >= RED_CLEARANCE
        n = self.volume
        return {
            "cycles": len(self.cycles),
            "volume": n,
            "yellow": int((self.kind == YELLOW).sum()),
            "red_clearance": int((self.kind == RED_CLEARANCE).sum()),
            "red": int((self.kind == RED).sum()),
            "violations": int(viol.sum()),
            "severe_violations": int(self.severe.sum()),
            "yellow_pct": 100.0 * float((self.kind == YELLOW).sum()) / n if n else float("nan"),
            "violation_pct": 100.0 * float(viol.sum()) / n if n else float("nan"),
            "severe_pct": 100.0 * float(self.severe.sum()) / n if n else float("nan"),
            "mean_time_into_red_s": float(self.into_red_s[viol].mean()) if viol.any() else float("nan"),
        }

    def to_json(self) -> dict[str, Any]:
        c = self.cycles.t
        return {
            "phase": self.phase,
            "severe_s": self.severe_s,
            "summary": self.summary(),
            "cycles": {
                "yellow_s": c[:, 0].tolist(),
                "red_clearance_s": c[:, 1].tolist(),
                "red_s": c[:, 2].tolist(),
                "end_s": c[:, 3].tolist(),
            },
            "points": {
                "t_s": self.t_s.tolist(),
                "since_yellow_s": self.since_yellow_s.tolist(),
                "kind": self.kind.tolist(),
                "severe": self.severe.tolist(),
            },
        }


def yellow_red_actuations(
    ev: EventTable, phase: int, detectors: Sequence[DetectorConfig], *, severe_s: float = SEVERE_S
) -> YellowRed:
    cyc = yellow_red_cycles(ev, phase)
    offset = {d.channel: d.offset_s for d in detectors}
    t_on, ch = detector_on_times(ev, list(offset))
    t = t_on + np.array([offset[int(c)] for c in ch]) if len(ch) else np.zeros(0)
    c = cyc.t
    volume = 0
    if len(c) and len(t):
        volume = int(((t >= c[0, 0]) & (t < c[-1, 3])).sum())
        k = np.searchsorted(c[:, 0], t, side="right") - 1
        inside = (k >= 0) & (t < c[np.maximum(k, 0), 3])
        t, k = t[inside], k[inside]
        kind = np.where(t < c[k, 1], YELLOW, np.where(t < c[k, 2], RED_CLEARANCE, RED)).astype(np.int8)
        since = t - c[k, 0]
        into = t - c[k, 1]
    else:
        t = np.zeros(0)
        kind = np.zeros(0, np.int8)
        since = np.zeros(0)
        into = np.zeros(0)
    severe = (kind >= RED_CLEARANCE) & (into > severe_s)
    return YellowRed(phase, cyc, t, kind, since, into, severe, volume, severe_s)
