"""Approach volume and turning movement counts from detector-on events.

**Approach volume** (ATSPM "Approach Volume"): detector-on events (82) of the
**advance count** detectors, one detector per lane (a lane shared by two
phases carries one channel per phase in greenwave's model; it is counted
once), summed per direction and time bin: ``veh/h = count * 3600 / bin_s``.

**Turning movement counts** (ATSPM "Turning Movement Counts"): the same from
**lane-by-lane count** detectors, per approach and movement (L, T, R, TR, ...),
with one series per lane.

Peak-hour figures use 15-minute counts (the traffic-engineering convention,
whatever the plotting bin): the peak hour is the four consecutive 15-minute
intervals with the highest volume (all of the period when it is shorter than
an hour);

* ``PHF = peak-hour volume / (4 * highest 15-min volume within it)``;
* ``K = peak-hour volume / volume of the whole analysed period``;
* directional ``D = peak-hour volume of a direction / peak-hour volume of the
  direction and its opposite`` (NB/SB, EB/WB), at the pair's peak hour;
* lane utilisation ``fLU = v / (N * v_max)`` (HCM: peak-hour volume of the
  movement over N lanes times the busiest lane's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scenarios.atspm.coordination import bin_edges
from scenarios.atspm.cycles import detector_on_times
from scenarios.atspm.detectors import DetectorConfig
from scenarios.atspm.events import EventTable

__all__ = ["approach_volume", "turning_movement_counts", "peak_hour", "OPPOSITE"]

QUARTER_S = 900.0
OPPOSITE = {"NB": "SB", "SB": "NB", "EB": "WB", "WB": "EB"}


def _one_per_lane(detectors: Sequence[DetectorConfig]) -> list[DetectorConfig]:
    seen: dict[tuple[str, str], DetectorConfig] = {}
    for d in sorted(detectors, key=lambda d: d.channel):
        key = (d.approach, d.lane or f"ch{d.channel}")
        seen.setdefault(key, d)
    return list(seen.values())


def _counts(ev: EventTable, channels: list[int], edges: np.ndarray) -> np.ndarray:
    """(len(channels), bins) detector-on counts."""
    t, ch = detector_on_times(ev, channels)
    row = {c: k for k, c in enumerate(channels)}
    k = np.searchsorted(edges, t, side="right") - 1
    nb = len(edges) - 1
    ok = (k >= 0) & (k < nb)
    r = np.array([row[int(c)] for c in ch[ok]], dtype=np.int64)
    out = np.zeros(len(channels) * nb)
    np.add.at(out, r * nb + k[ok], 1.0)
    return out.reshape(len(channels), nb)


def peak_hour(quarter_counts: np.ndarray, quarter_start_s: np.ndarray) -> dict[str, float]:
    """Peak hour from 15-min counts: start, volume (veh/h), PHF."""
    q = np.asarray(quarter_counts, float)
    if not len(q):
        return {"start_s": float("nan"), "volume_veh_h": 0.0, "phf": float("nan")}
    w = min(4, len(q))
    sums = np.convolve(q, np.ones(w), mode="valid")
    k = int(np.argmax(sums))
    vol = float(sums[k]) * 4.0 / w  # an hour's worth when the period is shorter
    top = float(q[k : k + w].max())
    return {
        "start_s": float(quarter_start_s[k]),
        "volume_veh_h": vol,
        "phf": vol / (4.0 * top) if top > 0 else float("nan"),
    }


def _window(
    ev: EventTable, detectors: Sequence[DetectorConfig], bin_s: float, start_s: float | None, end_s: float | None
) -> tuple[list[DetectorConfig], np.ndarray, np.ndarray]:
    """The counting detectors (one per lane), the report's bin edges and the quarter-hour edges."""
    start = ev.start_s if start_s is None else start_s
    end = ev.end_s if end_s is None else end_s
    return _one_per_lane(detectors), bin_edges(start, end, bin_s), bin_edges(start, end, QUARTER_S)


def approach_volume(
    ev: EventTable,
    detectors: Sequence[DetectorConfig],
    *,
    bin_s: float = QUARTER_S,
    start_s: float | None = None,
    end_s: float | None = None,
) -> dict[str, Any]:
    """Volume per direction and bin, with peak hour, PHF, K and D factors (module docstring)."""
    dets, edges, qedges = _window(ev, detectors, bin_s, start_s, end_s)
    approaches = sorted({d.approach for d in dets})
    out: dict[str, Any] = {"bin_s": bin_s, "start_s": edges[:-1].tolist(), "approaches": {}}
    per_q: dict[str, np.ndarray] = {}
    for a in approaches:
        chans = [d.channel for d in dets if d.approach == a]
        counts = _counts(ev, chans, edges).sum(axis=0)
        q = _counts(ev, chans, qedges).sum(axis=0)
        per_q[a] = q
        total = float(counts.sum())
        ph = peak_hour(q, qedges[:-1])
        out["approaches"][a] = {
            "channels": chans,
            "counts": counts.tolist(),
            "volume_veh_h": (counts * 3600.0 / np.diff(edges)).tolist(),
            "total": total,
            "peak_hour": ph,
            "k_factor": ph["volume_veh_h"] / total if total else float("nan"),
        }
    for a, body in out["approaches"].items():
        b = OPPOSITE.get(a)
        if b in per_q:
            pair = per_q[a] + per_q[b]
            ph = peak_hour(pair, qedges[:-1])
            w = min(4, len(pair))
            k = int(np.searchsorted(qedges[:-1], ph["start_s"]))
            mine = float(per_q[a][k : k + w].sum()) * 4.0 / w
            body["d_factor"] = mine / ph["volume_veh_h"] if ph["volume_veh_h"] else float("nan")
        else:
            body["d_factor"] = float("nan")
    return out


def turning_movement_counts(
    ev: EventTable,
    detectors: Sequence[DetectorConfig],
    *,
    bin_s: float = QUARTER_S,
    start_s: float | None = None,
    end_s: float | None = None,
) -> dict[str, Any]:
    """Counts per approach, movement and lane (module docstring)."""
    dets, edges, qedges = _window(ev, detectors, bin_s, start_s, end_s)
    out: dict[str, Any] = {"bin_s": bin_s, "start_s": edges[:-1].tolist(), "movements": []}
    groups: dict[tuple[str, str], list[DetectorConfig]] = {}
    for d in dets:
        groups.setdefault((d.approach, d.movement), []).append(d)
    for (a, mv), ds in sorted(groups.items()):
        chans = [d.channel for d in ds]
        lanes = _counts(ev, chans, edges)
        q = _counts(ev, chans, qedges)
        ph = peak_hour(q.sum(axis=0), qedges[:-1])
        w = min(4, q.shape[1])
        k = int(np.searchsorted(qedges[:-1], ph["start_s"])) if q.shape[1] else 0
        lane_peak = q[:, k : k + w].sum(axis=1) * 4.0 / max(w, 1)
        vmax = float(lane_peak.max()) if len(lane_peak) else 0.0
        out["movements"].append(
            {
                "approach": a,
                "movement": mv,
                "lanes": [d.lane or f"ch{d.channel}" for d in ds],
                "channels": chans,
                "lane_volume_veh_h": (lanes * 3600.0 / np.diff(edges)).tolist(),
                "volume_veh_h": (lanes.sum(axis=0) * 3600.0 / np.diff(edges)).tolist(),
                "total": float(lanes.sum()),
                "peak_hour": ph,
                "f_lu": ph["volume_veh_h"] / (len(ds) * vmax) if vmax > 0 else float("nan"),
            }
        )
    return out
