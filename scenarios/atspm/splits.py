"""Split monitor, phase termination and split failures.

**Split monitor** (no detection needed; ATSPM *Reporting Details*, "Split
Monitor"): for every cycle of a phase, the split actually used is green +
yellow + red clearance, ``t(11 end red clearance) - t(1 begin green)`` (end of
yellow when the log has no 11), coloured by how the green ended (4 gap-out, 5
max-out, 6 force-off, 0 unknown). Per plan: the 85th-percentile split (numpy's
linear interpolation), the mean, and the shares of gap-outs, max-outs and
force-offs. The programmed split, where the log carries it (codes 134-149 and
203-218, "split N change", parameter in seconds), is returned as a step series.

**Split failure** (Purdue; UDOT ATSPM ``CycleSplitFail.cs``): per
green-to-green cycle of a phase, with its **stop-bar presence** detectors
merged into one lane-group presence (any detector on):

* ``GOR`` = occupied time during green ``[1, 8)`` / green time;
* ``ROR5`` = occupied time during the first ``red_window_s`` (5 s) of red,
  ``[9, 9 + 5 s)``, / 5 s;
* a **split failure** when ``GOR > threshold`` and ``ROR5 > threshold``
  (threshold 0.79, i.e. ATSPM's "> 79 %"): the green did not clear the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from controller.events import EventCode
from scenarios.atspm.cycles import (
    PhaseCycles,
    detector_intervals,
    green_to_green_cycles,
    merge_intervals,
    occupied_time,
    plan_intervals,
    split_cycles,
)
from scenarios.atspm.detectors import DetectorConfig
from scenarios.atspm.events import EventTable

__all__ = [
    "SplitMonitor",
    "split_monitor",
    "SplitFailure",
    "split_failures",
    "phase_terminations",
    "programmed_splits",
    "TERMINATION_NAMES",
    "SPLIT_FAIL_THRESHOLD",
    "RED_WINDOW_S",
]

SPLIT_FAIL_THRESHOLD = 0.79
RED_WINDOW_S = 5.0
TERMINATION_NAMES = {
    int(EventCode.GAP_OUT): "gap_out",
    int(EventCode.MAX_OUT): "max_out",
    int(EventCode.FORCE_OFF): "force_off",
    0: "unknown",
}


def programmed_splits(ev: EventTable, phase: int) -> tuple[np.ndarray, np.ndarray]:
    """``(time_s, split_s)`` of the "split N change" events of ``phase`` (empty when not logged)."""
    code = 133 + phase if 1 <= phase <= 16 else 186 + phase if 17 <= phase <= 32 else -1
    m = ev.code == code
    return ev.time_s[m], ev.param[m].astype(float)


def _termination_shares(term: np.ndarray) -> dict[str, float]:
    n = len(term)
    return {
        f"{name}_pct": (100.0 * float((term == c).sum()) / n if n else float("nan"))
        for c, name in TERMINATION_NAMES.items()
    }


@dataclass(frozen=True)
class SplitMonitor:
    phase: int
    cycles: PhaseCycles  # green, yellow, red clearance, end of red clearance
    split_s: np.ndarray
    plan: np.ndarray
    programmed_t_s: np.ndarray
    programmed_split_s: np.ndarray

    def summary(self) -> dict[str, float]:
        s = self.split_s
        out: dict[str, float] = {
            "cycles": len(s),
            "p85_split_s": float(np.percentile(s, 85)) if len(s) else float("nan"),
            "mean_split_s": float(s.mean()) if len(s) else float("nan"),
        }
        out.update(_termination_shares(self.cycles.termination))
        return out

    def per_plan(self) -> list[dict[str, Any]]:
        out = []
        for p in dict.fromkeys(self.plan.tolist()):
            m = self.plan == p
            s = self.split_s[m]
            row: dict[str, Any] = {
                "plan": int(p),
                "cycles": int(m.sum()),
                "p85_split_s": float(np.percentile(s, 85)),
                "mean_split_s": float(s.mean()),
            }
            row.update(_termination_shares(self.cycles.termination[m]))
            out.append(row)
        return out

    def to_json(self) -> dict[str, Any]:
        c = self.cycles.t
        return {
            "phase": self.phase,
            "summary": self.summary(),
            "plans": self.per_plan(),
            "cycles": {
                "green_s": c[:, 0].tolist(),
                "split_s": self.split_s.tolist(),
                "termination": [TERMINATION_NAMES.get(int(x), "unknown") for x in self.cycles.termination],
            },
            "programmed": {"t_s": self.programmed_t_s.tolist(), "split_s": self.programmed_split_s.tolist()},
        }


def split_monitor(ev: EventTable, phase: int) -> SplitMonitor:
    cyc = split_cycles(ev, phase)
    split = cyc.t[:, 3] - cyc.t[:, 0]
    plans = plan_intervals(ev, ev.start_s, ev.end_s + 1.0)
    pt, ps = programmed_splits(ev, phase)
    return SplitMonitor(phase, cyc, split, plans.plan_at(cyc.t[:, 0]) if len(cyc) else np.zeros(0, np.int64), pt, ps)


def phase_terminations(ev: EventTable, phases: Sequence[int]) -> dict[int, dict[str, list[Any]]]:
    """Per phase: the time of each end of green and why (ATSPM "Purdue Phase Termination")."""
    out: dict[int, dict[str, list[Any]]] = {}
    for p in phases:
        cyc = split_cycles(ev, p)
        out[p] = {
            "t_s": cyc.t[:, 1].tolist(),
            "termination": [TERMINATION_NAMES.get(int(x), "unknown") for x in cyc.termination],
        }
    return out


@dataclass(frozen=True)
class SplitFailure:
    phase: int
    cycles: PhaseCycles  # green, yellow, red, next green
    gor: np.ndarray
    ror5: np.ndarray
    failed: np.ndarray
    threshold: float
    red_window_s: float

    def summary(self) -> dict[str, float]:
        n = len(self.failed)
        return {
            "cycles": n,
            "failures": int(self.failed.sum()),
            "failure_pct": 100.0 * float(self.failed.sum()) / n if n else float("nan"),
            "mean_gor": float(self.gor.mean()) if n else float("nan"),
            "mean_ror5": float(self.ror5.mean()) if n else float("nan"),
        }

    def to_json(self) -> dict[str, Any]:
        c = self.cycles.t
        return {
            "phase": self.phase,
            "threshold": self.threshold,
            "red_window_s": self.red_window_s,
            "summary": self.summary(),
            "cycles": {
                "green_s": c[:, 0].tolist(),
                "yellow_s": c[:, 1].tolist(),
                "red_s": c[:, 2].tolist(),
                "gor": self.gor.tolist(),
                "ror5": self.ror5.tolist(),
                "failed": self.failed.tolist(),
                "termination": [TERMINATION_NAMES.get(int(x), "unknown") for x in self.cycles.termination],
            },
        }


def split_failures(
    ev: EventTable,
    phase: int,
    detectors: Sequence[DetectorConfig],
    *,
    threshold: float = SPLIT_FAIL_THRESHOLD,
    red_window_s: float = RED_WINDOW_S,
) -> SplitFailure:
    """Split failures of ``phase`` from its stop-bar presence detectors (module docstring)."""
    cyc = green_to_green_cycles(ev, phase)
    on, off, _ch = detector_intervals(ev, [d.channel for d in detectors], ev.start_s, ev.end_s)
    on, off = merge_intervals(on, off)
    c = cyc.t
    green = c[:, 1] - c[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        gor = np.where(green > 0, occupied_time(on, off, c[:, 0], c[:, 1]) / green, 0.0)
    ror5 = occupied_time(on, off, c[:, 2], c[:, 2] + red_window_s) / red_window_s
    failed = (gor > threshold) & (ror5 > threshold)
    return SplitFailure(phase, cyc, gor, ror5, failed, threshold, red_window_s)
