"""Purdue coordination diagram, arrivals on green/red, platoon ratio and approach delay.

All four come from the same two inputs (UDOT ATSPM ``CyclePcd.cs``,
``DetectorDataPoint.cs``; GDOT/UDOT *ATSPM Reporting Details* §4, §7):

* red-to-red cycles of the phase (:func:`scenarios.atspm.cycles.red_to_red_cycles`):
  start ``r`` (end of yellow), green ``g``, yellow ``y``, end ``r'``;
* detector-on events (82) of the phase's **advance count** detectors,
  projected to the stop bar: ``t = t_on + distance_m / speed_m_s + offset_s``.

Each projected arrival ``t`` inside a cycle (``r <= t < r'``) is classified:

* **arrival on red** (AoR) if ``t < g``, with delay ``g - t`` seconds;
* **arrival on green** (AoG) if ``g <= t < y``;
* **arrival on yellow** (AoY) if ``t >= y``.

Derived figures, over a set of cycles (a plan, a bin, the whole period):

* ``aog_pct = 100 * AoG / arrivals``;
* ``gt_pct = 100 * sum(y - g) / sum(r' - r)`` (share of time in green);
* **platoon ratio** ``PR = aog_pct / gt_pct`` (HCM: R_p = P / (g/C); 1 = random
  arrivals, > 1 favourable progression, < 1 unfavourable);
* **approach delay** (ATSPM's simplification: red-arrival waiting only, no
  start-up lost time, no queue spillback): ``total = sum over AoR of (g - t)``,
  ``per vehicle = total / arrivals`` (all arrivals: AoG and AoY count as zero).

Vectorised: one ``searchsorted`` assigns every arrival to its cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenarios.atspm.cycles import PhaseCycles, PlanIntervals, detector_on_times, plan_intervals, red_to_red_cycles
from scenarios.atspm.detectors import DetectorConfig
from scenarios.atspm.events import EventTable

__all__ = ["ArrivalType", "PurdueCoordination", "purdue_coordination", "bin_edges", "ratios"]


class ArrivalType:
    RED = 0
    GREEN = 1
    YELLOW = 2


def ratios(arrivals: np.ndarray, kinds: np.ndarray, green_s: float, cycle_s: float) -> dict[str, float]:
    """AoG/AoR/AoY %, GT % and platoon ratio for one set of arrivals and cycles."""
    n = len(arrivals)
    aog = int((kinds == ArrivalType.GREEN).sum())
    aor = int((kinds == ArrivalType.RED).sum())
    aoy = n - aog - aor
    gt = 100.0 * green_s / cycle_s if cycle_s > 0 else float("nan")
    aog_pct = 100.0 * aog / n if n else float("nan")
    return {
        "arrivals": n,
        "aog": aog,
        "aor": aor,
        "aoy": aoy,
        "aog_pct": aog_pct,
        "aor_pct": 100.0 * aor / n if n else float("nan"),
        "aoy_pct": 100.0 * aoy / n if n else float("nan"),
        "gt_pct": gt,
        "platoon_ratio": aog_pct / gt if n and gt > 0 else float("nan"),
    }


@dataclass(frozen=True)
class PurdueCoordination:
    """One phase's PCD and everything computed from it (times in seconds since the log origin)."""

    phase: int
    cycles: PhaseCycles
    arrival_s: np.ndarray  # projected arrival time at the stop bar
    cycle_index: np.ndarray  # which cycle each arrival falls in
    in_cycle_s: np.ndarray  # seconds since the cycle's start (the PCD's y)
    kind: np.ndarray  # ArrivalType
    delay_s: np.ndarray  # g - t for arrivals on red, else 0
    plans: PlanIntervals
    start_s: float
    end_s: float

    @property
    def green_s(self) -> float:
        c = self.cycles.t
        return float((c[:, 2] - c[:, 1]).sum())

    @property
    def cycle_s(self) -> float:
        c = self.cycles.t
        return float((c[:, 3] - c[:, 0]).sum())

    def summary(self) -> dict[str, float]:
        out = ratios(self.arrival_s, self.kind, self.green_s, self.cycle_s)
        total = float(self.delay_s.sum())
        out["cycles"] = len(self.cycles)
        out["total_delay_s"] = total
        out["total_delay_veh_h"] = total / 3600.0
        out["delay_per_vehicle_s"] = total / len(self.arrival_s) if len(self.arrival_s) else float("nan")
        return out

    def per_plan(self) -> list[dict[str, Any]]:
        """AoG %, GT % and PR per plan (ATSPM's band above the PCD); cycles belong to the plan they start in."""
        c = self.cycles.t
        cyc_plan = self.plans.plan_at(c[:, 0]) if len(c) else np.zeros(0, np.int64)
        out = []
        for k in range(len(self.plans)):
            p = int(self.plans.plan[k])
            in_plan = (c[:, 0] >= self.plans.start_s[k]) & (c[:, 0] < self.plans.end_s[k]) & (cyc_plan == p)
            idx = np.flatnonzero(in_plan)
            sel = np.isin(self.cycle_index, idx)
            r = ratios(
                self.arrival_s[sel],
                self.kind[sel],
                float((c[idx, 2] - c[idx, 1]).sum()),
                float((c[idx, 3] - c[idx, 0]).sum()),
            )
            r.update(
                plan=p,
                start_s=float(self.plans.start_s[k]),
                end_s=float(self.plans.end_s[k]),
                cycles=len(idx),
                delay_per_vehicle_s=float(self.delay_s[sel].sum() / sel.sum()) if sel.any() else float("nan"),
            )
            out.append(r)
        return out

    def bins(self, bin_s: float) -> dict[str, list[float]]:
        """Per time bin (by arrival time): volume (veh/h), AoG %, AoR count, total and per-vehicle delay."""
        edges = bin_edges(self.start_s, self.end_s, bin_s)
        k = np.searchsorted(edges, self.arrival_s, side="right") - 1
        nb = len(edges) - 1
        ok = (k >= 0) & (k < nb)
        total = np.bincount(k[ok], minlength=nb).astype(float)
        aog = np.bincount(k[ok], weights=(self.kind[ok] == ArrivalType.GREEN).astype(float), minlength=nb)
        aor = np.bincount(k[ok], weights=(self.kind[ok] == ArrivalType.RED).astype(float), minlength=nb)
        delay = np.bincount(k[ok], weights=self.delay_s[ok], minlength=nb)
        width = np.diff(edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "bin_s": float(bin_s),
                "start_s": edges[:-1].tolist(),
                "volume_veh_h": (total * 3600.0 / width).tolist(),
                "arrivals": total.tolist(),
                "aog_pct": np.where(total > 0, 100.0 * aog / total, np.nan).tolist(),
                "aor": aor.tolist(),
                "aor_pct": np.where(total > 0, 100.0 * aor / total, np.nan).tolist(),
                "total_delay_veh_h": (delay / 3600.0).tolist(),
                "delay_per_vehicle_s": np.where(total > 0, delay / total, np.nan).tolist(),
            }

    def to_json(self, bin_s: float = 900.0) -> dict[str, Any]:
        c = self.cycles.t
        return {
            "phase": self.phase,
            "summary": self.summary(),
            "plans": self.per_plan(),
            "cycles": {
                "start_s": c[:, 0].tolist(),
                "green_s": c[:, 1].tolist(),
                "yellow_s": c[:, 2].tolist(),
                "end_s": c[:, 3].tolist(),
            },
            "points": {
                "t_s": self.arrival_s.tolist(),
                "y_s": self.in_cycle_s.tolist(),
                "kind": self.kind.tolist(),
            },
            "bins": self.bins(bin_s),
        }


def bin_edges(start_s: float, end_s: float, bin_s: float) -> np.ndarray:
    """Bin edges aligned to multiples of ``bin_s`` covering ``[start_s, end_s]``."""
    if bin_s <= 0:
        raise ValueError("bin_s must be > 0")
    a = np.floor(start_s / bin_s) * bin_s
    b = max(np.ceil(end_s / bin_s) * bin_s, a + bin_s)
    return np.arange(a, b + bin_s / 2, bin_s)


def purdue_coordination(
    ev: EventTable,
    phase: int,
    detectors: Sequence[DetectorConfig],
    *,
    start_s: float | None = None,
    end_s: float | None = None,
) -> PurdueCoordination:
    """PCD of ``phase`` from its advance detectors (``detectors``: their configurations).

    ``ev`` is one intersection's events. Arrivals outside every complete
    red-to-red cycle are left out (ATSPM does the same).
    """
    start = ev.start_s if start_s is None else start_s
    end = ev.end_s if end_s is None else end_s
    cyc = red_to_red_cycles(ev, phase)
    travel = {d.channel: d.travel_s for d in detectors}
    t_on, ch = detector_on_times(ev, list(travel))
    if len(t_on):
        lut = np.zeros(int(ch.max()) + 1)
        for channel, travel_s in travel.items():
            if channel < len(lut):
                lut[channel] = travel_s
        t = t_on + lut[ch]
    else:
        t = np.zeros(0)
    c = cyc.t
    if len(c) and len(t):
        k = np.searchsorted(c[:, 0], t, side="right") - 1
        inside = (k >= 0) & (t < c[np.maximum(k, 0), 3])
        t, k = t[inside], k[inside]
        order = np.argsort(t, kind="stable")
        t, k = t[order], k[order]
        g, y = c[k, 1], c[k, 2]
        kind = np.where(t < g, ArrivalType.RED, np.where(t < y, ArrivalType.GREEN, ArrivalType.YELLOW)).astype(np.int8)
        delay = np.where(kind == ArrivalType.RED, g - t, 0.0)
        in_cycle = t - c[k, 0]
    else:
        t = np.zeros(0)
        k = np.zeros(0, np.int64)
        kind = np.zeros(0, np.int8)
        delay = np.zeros(0)
        in_cycle = np.zeros(0)
    return PurdueCoordination(
        phase=phase,
        cycles=cyc,
        arrival_s=t,
        cycle_index=k,
        in_cycle_s=in_cycle,
        kind=kind,
        delay_s=delay,
        plans=plan_intervals(ev, start, end),
        start_s=start,
        end_s=end,
    )
