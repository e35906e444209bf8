"""PNG charts of the measures, drawn as ATSPM draws them (matplotlib, Agg backend).

Each function takes the JSON-ready dict the measure produced (so the charts
and the dashboard read the same numbers), draws one figure and writes it.
Conventions from ATSPM (``../shared/reference/atspm-and-operations.md`` §1.3):
PCD black dots for arrivals with green/yellow/red change lines and volume on
the right axis, per-plan AoG/GT/PR band; split monitor dots coloured by
termination (gap-out green, max-out red, force-off blue, unknown gold) with
the programmed split in orange; split failure GOR green and ROR5 red with
failures as yellow lines; approach delay per vehicle (blue) and total (red).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_pcd",
    "plot_split_monitor",
    "plot_split_failure",
    "plot_approach_delay",
    "plot_approach_volume",
    "plot_tmc",
    "plot_yellow_red",
    "plot_phase_termination",
]

TERM_COLOURS = {"gap_out": "tab:green", "max_out": "tab:red", "force_off": "tab:blue", "unknown": "goldenrod"}


def _subplots(nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    """A figure without pyplot: no global backend state, safe in worker threads; PNG via Agg."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kw.pop("figsize", (12, 5)))
    return fig, fig.subplots(nrows, ncols, **kw)


def _times(origin: datetime, t_s: Sequence[float] | np.ndarray) -> list[datetime]:
    return [origin + timedelta(seconds=float(t)) for t in t_s]


def _time_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel("time of day")
    ax.grid(True, alpha=0.3)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    return path


def _steps(start_s: Sequence[float], values: Sequence[float], bin_s: float) -> tuple[list[float], list[float]]:
    """Bin starts and values extended by the last bin's end, for ``step(where="post")``."""
    if not len(start_s):
        return [], []
    return [*start_s, start_s[-1] + bin_s], [*values, values[-1]]


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def plot_pcd(pcd: dict[str, Any], origin: datetime, title: str, path: Path) -> Path:
    fig, ax = _subplots(figsize=(12, 5.5))
    c = pcd["cycles"]
    start = np.asarray(c["start_s"])
    if len(start):
        x = _times(origin, start)
        ax.step(x, np.asarray(c["green_s"]) - start, where="post", color="tab:green", lw=1.2, label="change to green")
        ax.step(x, np.asarray(c["yellow_s"]) - start, where="post", color="gold", lw=1.2, label="change to yellow")
        ax.step(x, np.asarray(c["end_s"]) - start, where="post", color="tab:red", lw=1.2, label="change to red")
    pts = pcd["points"]
    if pts["t_s"]:
        ax.scatter(_times(origin, pts["t_s"]), pts["y_s"], s=3, color="black", label="arrivals", zorder=3)
    ax.set_ylabel("cycle time (s)")
    ymax = max([*(np.asarray(c["end_s"]) - start), 60.0]) if len(start) else 60.0
    ax.set_ylim(0, ymax * 1.25)
    _time_axis(ax)
    b = pcd["bins"]
    ax2 = ax.twinx()
    xs, ys = _steps(b["start_s"], b["volume_veh_h"], b["bin_s"])
    ax2.step(_times(origin, xs), ys, where="post", color="tab:blue", lw=1, ls="--", label="volume")
    ax2.set_ylabel("volume (veh/h)")
    ax2.set_ylim(0, max(max(b["volume_veh_h"], default=0.0), 1.0) * 1.4)
    for p in pcd["plans"]:
        xm = origin + timedelta(seconds=(p["start_s"] + p["end_s"]) / 2)
        ax.text(
            xm,
            ymax * 1.2,
            f"plan {p['plan'] or 'free'}  AoG {_fmt(p['aog_pct'], '.0f')}%  GT {_fmt(p['gt_pct'], '.0f')}%  "
            f"PR {_fmt(p['platoon_ratio'], '.2f')}",
            ha="center",
            va="top",
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
        )
        ax.axvline(origin + timedelta(seconds=p["start_s"]), color="grey", lw=0.6)
    s = pcd["summary"]
    ax.set_title(
        f"{title}\narrivals {s['arrivals']}, AoG {_fmt(s['aog_pct'], '.1f')} %, GT {_fmt(s['gt_pct'], '.1f')} %, "
        f"platoon ratio {_fmt(s['platoon_ratio'], '.2f')}",
        fontsize=10,
    )
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=7, ncol=5, markerscale=3)
    return _save(fig, path)


def plot_split_monitor(monitors: dict[int, dict[str, Any]], origin: datetime, title: str, path: Path) -> Path:
    n = max(len(monitors), 1)
    fig, axes = _subplots(n, 1, figsize=(12, 2.4 * n + 0.6), squeeze=False, sharex=True)
    for ax, (phase, m) in zip(axes[:, 0], sorted(monitors.items()), strict=False):
        c = m["cycles"]
        x = np.asarray(c["green_s"])
        y = np.asarray(c["split_s"])
        term = np.asarray(c["termination"])
        for name, colour in TERM_COLOURS.items():
            sel = term == name
            if sel.any():
                ax.scatter(_times(origin, x[sel]), y[sel], s=8, color=colour, label=name.replace("_", "-"))
        if m["programmed"]["t_s"]:
            pt = [*m["programmed"]["t_s"], x.max() if len(x) else m["programmed"]["t_s"][-1]]
            ps = [*m["programmed"]["split_s"], m["programmed"]["split_s"][-1]]
            ax.step(_times(origin, pt), ps, where="post", color="darkorange", lw=1.2, label="programmed")
        s = m["summary"]
        ax.set_ylabel(f"phase {phase}\nsplit (s)")
        ax.set_title(
            f"p85 {_fmt(s['p85_split_s'], '.1f')} s, mean {_fmt(s['mean_split_s'], '.1f')} s, "
            f"gap-out {_fmt(s['gap_out_pct'], '.0f')} %, max-out {_fmt(s['max_out_pct'], '.0f')} %, "
            f"force-off {_fmt(s['force_off_pct'], '.0f')} %",
            fontsize=8,
            loc="left",
        )
        ax.legend(fontsize=7, loc="upper right", ncol=4)
        _time_axis(ax)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_split_failure(sf: dict[str, Any], origin: datetime, title: str, path: Path, bin_s: float = 900.0) -> Path:
    fig, ax = _subplots(figsize=(12, 4.5))
    c = sf["cycles"]
    x = np.asarray(c["green_s"])
    gor = 100 * np.asarray(c["gor"])
    ror = 100 * np.asarray(c["ror5"])
    failed = np.asarray(c["failed"], bool)
    for t in x[failed]:
        ax.axvline(origin + timedelta(seconds=float(t)), color="gold", lw=0.8, alpha=0.7)
    if len(x):
        ax.scatter(_times(origin, x), gor, s=10, color="tab:green", marker="^", label="GOR (green occupancy)")
        ax.scatter(_times(origin, x), ror, s=10, color="tab:red", marker="v", label="ROR5 (first 5 s of red)")
        k = np.floor(x / bin_s)
        bins = np.unique(k)
        mean_g = [gor[k == b].mean() for b in bins]
        mean_r = [ror[k == b].mean() for b in bins]
        pct = [100 * failed[k == b].mean() for b in bins]
        xb = _times(origin, bins * bin_s + bin_s / 2)
        ax.plot(xb, mean_g, color="tab:green", lw=1.5, label="avg GOR")
        ax.plot(xb, mean_r, color="tab:red", lw=1.5, label="avg ROR5")
        ax.plot(xb, pct, color="tab:blue", ls=":", lw=1.5, label="% fails")
    ax.axhline(100 * sf["threshold"], color="grey", ls="--", lw=0.8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("occupancy (%)")
    s = sf["summary"]
    ax.set_title(
        f"{title}\n{s['failures']} split failures in {s['cycles']} cycles ({_fmt(s['failure_pct'], '.1f')} %)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left", ncol=5)
    _time_axis(ax)
    return _save(fig, path)


def plot_approach_delay(pcd: dict[str, Any], origin: datetime, title: str, path: Path) -> Path:
    fig, ax = _subplots(figsize=(12, 4))
    b = pcd["bins"]
    xs, per_veh = _steps(b["start_s"], b["delay_per_vehicle_s"], b["bin_s"])
    x = _times(origin, xs)
    ax.step(x, per_veh, where="post", color="tab:blue", label="delay per vehicle (s)")
    ax.set_ylabel("delay per vehicle (s)")
    ax2 = ax.twinx()
    ax2.step(x, _steps(b["start_s"], b["total_delay_veh_h"], b["bin_s"])[1], where="post", color="tab:red",
             label="total delay (veh·h per bin)")  # fmt: skip
    ax2.set_ylabel("total delay (veh·h)")
    s = pcd["summary"]
    ax.set_title(
        f"{title}\naverage {_fmt(s['delay_per_vehicle_s'], '.1f')} s/veh, "
        f"total {_fmt(s['total_delay_veh_h'], '.2f')} veh·h (ATSPM: waiting of arrivals on red only)",
        fontsize=10,
    )
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    _time_axis(ax)
    return _save(fig, path)


def plot_approach_volume(vol: dict[str, Any], origin: datetime, title: str, path: Path) -> Path:
    fig, ax = _subplots(figsize=(12, 4))
    xs = _steps(vol["start_s"], vol["start_s"], vol["bin_s"])[0]
    x = _times(origin, xs)
    for a, body in sorted(vol["approaches"].items()):
        colour = "tab:blue" if a in ("NB", "EB") else "tab:red" if a in ("SB", "WB") else None
        ph = body["peak_hour"]
        ax.step(
            x,
            _steps(vol["start_s"], body["volume_veh_h"], vol["bin_s"])[1],
            where="post",
            color=colour,
            label=f"{a}: total {body['total']:.0f}, peak {ph['volume_veh_h']:.0f} veh/h, PHF {_fmt(ph['phf'], '.2f')}, "
            f"D {_fmt(body['d_factor'], '.2f')}",
        )
    ax.set_ylabel("volume (veh/h)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    _time_axis(ax)
    return _save(fig, path)


def plot_tmc(tmc: dict[str, Any], origin: datetime, title: str, path: Path) -> Path:
    mv = tmc["movements"]
    n = max(len(mv), 1)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = _subplots(rows, cols, figsize=(12, 2.6 * rows + 0.6), squeeze=False, sharex=True)
    x = _times(origin, _steps(tmc["start_s"], tmc["start_s"], tmc["bin_s"])[0])
    for k, m in enumerate(mv):
        ax = axes[k // cols, k % cols]
        for lane, series in zip(m["lanes"], m["lane_volume_veh_h"], strict=True):
            ax.step(x, _steps(tmc["start_s"], series, tmc["bin_s"])[1], where="post", lw=0.9, label=lane)
        total = _steps(tmc["start_s"], m["volume_veh_h"], tmc["bin_s"])[1]
        ax.step(x, total, where="post", color="black", lw=1.5, label="total")
        ax.set_title(
            f"{m['approach']} {m['movement']}: total {m['total']:.0f}, "
            f"peak {m['peak_hour']['volume_veh_h']:.0f} veh/h, "
            f"PHF {_fmt(m['peak_hour']['phf'], '.2f')}, fLU {_fmt(m['f_lu'], '.2f')}",
            fontsize=8,
            loc="left",
        )
        ax.set_ylabel("veh/h")
        ax.legend(fontsize=6, loc="upper right")
        _time_axis(ax)
    for k in range(len(mv), rows * cols):
        axes[k // cols, k % cols].axis("off")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_yellow_red(yr: dict[str, Any], origin: datetime, title: str, path: Path) -> Path:
    fig, ax = _subplots(figsize=(12, 4.5))
    c = yr["cycles"]
    y0 = np.asarray(c["yellow_s"])
    if len(y0):
        x = _times(origin, y0)
        rc = np.asarray(c["red_clearance_s"]) - y0
        red = np.asarray(c["red_s"]) - y0
        top = np.maximum(red + 10.0, 15.0)
        ax.fill_between(x, 0, rc, step="post", color="gold", alpha=0.5, label="yellow")
        ax.fill_between(x, rc, red, step="post", color="salmon", alpha=0.6, label="red clearance")
        ax.fill_between(x, red, top, step="post", color="firebrick", alpha=0.35, label="red")
    p = yr["points"]
    if p["t_s"]:
        sev = np.asarray(p["severe"], bool)
        t = np.asarray(p["t_s"])
        y = np.asarray(p["since_yellow_s"])
        ax.scatter(_times(origin, t[~sev]), y[~sev], s=8, color="black", label="actuation")
        if sev.any():
            ax.scatter(_times(origin, t[sev]), y[sev], s=14, color="black", marker="x", label="severe")
    s = yr["summary"]
    ax.set_ylabel("time since start of yellow (s)")
    ax.set_title(
        f"{title}\nYLO {s['yellow']} ({_fmt(s['yellow_pct'], '.1f')} %), RLV {s['violations']} "
        f"({_fmt(s['violation_pct'], '.1f')} %), SRLV {s['severe_violations']}, "
        f"mean time into red {_fmt(s['mean_time_into_red_s'], '.1f')} s",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left", ncol=5)
    _time_axis(ax)
    return _save(fig, path)


def plot_phase_termination(term: dict[int, dict[str, list[Any]]], origin: datetime, title: str, path: Path) -> Path:
    fig, ax = _subplots(figsize=(12, 0.5 * max(len(term), 2) + 1.8))
    seen: set[str] = set()
    for phase, body in sorted(term.items()):
        t = np.asarray(body["t_s"])
        kinds = np.asarray(body["termination"])
        for name, colour in TERM_COLOURS.items():
            sel = kinds == name
            if sel.any():
                ax.scatter(
                    _times(origin, t[sel]),
                    np.full(int(sel.sum()), phase),
                    s=10,
                    color=colour,
                    label=name.replace("_", "-") if name not in seen else None,
                )
                seen.add(name)
    ax.set_yticks(sorted(term))
    ax.set_ylabel("phase")
    ax.set_title(title, fontsize=10)
    if seen:
        ax.legend(fontsize=7, loc="upper right", ncol=4)
    _time_axis(ax)
    return _save(fig, path)
