"""Front door: every measure of one intersection from one event log, as JSON and PNG.

:func:`intersection_measures` computes the measures (a JSON-ready dict, the
shape the dashboard reads); :func:`write_report` writes it as
``measures.json`` plus one PNG per chart; :func:`network_measures` reduces a
whole network's log to the few numbers the regression suite tracks.

A measure that the detection cannot support is not guessed: it is listed
under ``skipped`` with the reason (e.g. split failure needs stop-bar presence
detectors).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.atspm import plots
from scenarios.atspm.coordination import purdue_coordination
from scenarios.atspm.detectors import DetectionType, IntersectionDetectors
from scenarios.atspm.events import EventTable
from scenarios.atspm.splits import RED_WINDOW_S, SPLIT_FAIL_THRESHOLD, phase_terminations, split_failures, split_monitor
from scenarios.atspm.volumes import approach_volume, turning_movement_counts
from scenarios.atspm.yellow_red import SEVERE_S, yellow_red_actuations

__all__ = ["intersection_measures", "write_report", "network_measures", "json_safe"]

AC, SBP, LLC, LLS = (
    DetectionType.ADVANCE_COUNT,
    DetectionType.STOP_BAR_PRESENCE,
    DetectionType.LANE_COUNT,
    DetectionType.LANE_SPEED,
)


def json_safe(x: Any) -> Any:
    """NaN and infinities become null (JSON has neither); numpy scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def intersection_measures(
    events: EventTable,
    intersection: str,
    config: IntersectionDetectors | None,
    *,
    bin_s: float = 900.0,
    phases: Sequence[int] | None = None,
    severe_s: float = SEVERE_S,
    threshold: float = SPLIT_FAIL_THRESHOLD,
    red_window_s: float = RED_WINDOW_S,
) -> dict[str, Any]:
    """All measures of ``intersection`` (see the module docstring for the shape)."""
    ev = events.for_device(intersection)
    cfg = config or IntersectionDetectors(intersection, ())
    shown = list(phases) if phases else ev.phases()
    m: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    start, end = ev.start_s, ev.end_s

    m["split_monitor"] = {str(p): split_monitor(ev, p).to_json() for p in shown}
    m["phase_termination"] = {str(p): v for p, v in phase_terminations(ev, shown).items()}

    pcd = _coordination_diagrams(ev, cfg, shown, bin_s)
    if pcd:
        m["pcd"] = pcd
        m["arrivals_on_green"] = {p: {"summary": v["summary"], "plans": v["plans"]} for p, v in pcd.items()}
        m["approach_delay"] = {
            p: {
                "summary": {k: v["summary"][k] for k in ("arrivals", "total_delay_veh_h", "delay_per_vehicle_s")},
                "bins": {k: v["bins"][k] for k in ("start_s", "total_delay_veh_h", "delay_per_vehicle_s")},
            }
            for p, v in pcd.items()
        }
    else:
        why = "no advance count (AC) detectors mapped to the phases shown"
        for k in ("pcd", "arrivals_on_green", "approach_delay"):
            skipped[k] = why

    sf = {str(p): split_failures(ev, p, cfg.of(SBP, p), threshold=threshold, red_window_s=red_window_s).to_json()
          for p in shown if cfg.of(SBP, p)}  # fmt: skip
    if sf:
        m["split_failure"] = sf
    else:
        skipped["split_failure"] = (
            "no stop-bar presence (SBP) detectors: split failure needs presence at the stop bar "
            "(zones longer than ~40 m, such as greenwave's 100 m SUMO camera zones, are not SBP)"
        )
    if cfg.of(AC):
        m["approach_volume"] = approach_volume(ev, cfg.of(AC), bin_s=bin_s, start_s=start, end_s=end)
    else:
        skipped["approach_volume"] = "no advance count (AC) detectors"
    if cfg.of(LLC):
        m["tmc"] = turning_movement_counts(ev, cfg.of(LLC), bin_s=bin_s, start_s=start, end_s=end)
    else:
        skipped["tmc"] = "no lane-by-lane count (LLC) detectors"
    yr = {str(p): yellow_red_actuations(ev, p, cfg.of(LLS, p), severe_s=severe_s).to_json()
          for p in shown if cfg.of(LLS, p)}  # fmt: skip
    if yr:
        m["yellow_red"] = yr
    else:
        skipped["yellow_red"] = "no stop-bar lane-by-lane detectors with speed restriction (LLS)"
    return {
        "intersection": intersection,
        "origin": ev.origin.isoformat(),
        "start_s": start,
        "end_s": end,
        "bin_s": bin_s,
        "phases": shown,
        "phase_names": {str(k): v for k, v in cfg.phase_names.items() if k in shown},
        "detectors": cfg.to_json()["detectors"],
        "measures": m,
        "skipped": skipped,
    }


def _coordination_diagrams(
    ev: EventTable, cfg: IntersectionDetectors, shown: Sequence[int], bin_s: float
) -> dict[str, Any]:
    """One Purdue coordination diagram per phase and approach, as ATSPM draws them (a phase
    serving two directions gets two, keyed ``phase-approach``)."""
    pcd: dict[str, Any] = {}
    for p in shown:
        dets = cfg.of(AC, p)
        approaches = sorted({d.approach for d in dets})
        for a in approaches:
            key = str(p) if len(approaches) == 1 else f"{p}-{a}" if a else str(p)
            mine = [d for d in dets if d.approach == a]
            body = purdue_coordination(ev, p, mine, start_s=ev.start_s, end_s=ev.end_s).to_json(bin_s)
            body["approach"] = a
            pcd[key] = body
    return pcd


def write_report(doc: Mapping[str, Any], out_dir: str | Path, *, plots_too: bool = True) -> list[Path]:
    """``measures.json`` and the PNG charts of :func:`intersection_measures`' result."""
    from datetime import datetime

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    iid = doc["intersection"]
    origin = datetime.fromisoformat(doc["origin"])
    names = doc.get("phase_names", {})
    m = doc["measures"]

    def label(key: str) -> str:
        p, _, a = key.partition("-")
        return f"{iid} phase {p}" + (f" {a}" if a else "") + (f" — {names[p]}" if p in names else "")

    if plots_too:
        for p, v in m.get("pcd", {}).items():
            files.append(
                plots.plot_pcd(v, origin, f"Purdue coordination diagram: {label(p)}", out / f"pcd_phase{p}.png")
            )
            files.append(
                plots.plot_approach_delay(
                    v, origin, f"Approach delay: {label(p)}", out / f"approach_delay_phase{p}.png"
                )
            )
        if m.get("split_monitor"):
            mon = {int(p): v for p, v in m["split_monitor"].items()}
            files.append(plots.plot_split_monitor(mon, origin, f"Split monitor: {iid}", out / "split_monitor.png"))
            files.append(
                plots.plot_phase_termination(
                    {int(p): v for p, v in m["phase_termination"].items()},
                    origin,
                    f"Phase termination: {iid}",
                    out / "phase_termination.png",
                )
            )
        for p, v in m.get("split_failure", {}).items():
            files.append(
                plots.plot_split_failure(
                    v, origin, f"Split failure: {label(p)}", out / f"split_failure_phase{p}.png", doc["bin_s"]
                )
            )
        if "approach_volume" in m:
            files.append(
                plots.plot_approach_volume(
                    m["approach_volume"], origin, f"Approach volume: {iid}", out / "approach_volume.png"
                )
            )
        if "tmc" in m:
            files.append(plots.plot_tmc(m["tmc"], origin, f"Turning movement counts: {iid}", out / "tmc.png"))
        for p, v in m.get("yellow_red", {}).items():
            files.append(
                plots.plot_yellow_red(
                    v, origin, f"Yellow and red actuations: {label(p)}", out / f"yellow_red_phase{p}.png"
                )
            )
    body = dict(doc)
    body["files"] = [f.name for f in files]
    path = out / "measures.json"
    path.write_text(json.dumps(json_safe(body), separators=(",", ":")) + "\n", encoding="utf-8")
    return [path, *files]


def network_measures(events: EventTable, configs: Mapping[str, IntersectionDetectors]) -> dict[str, float]:
    """Network-wide arrivals on green (%), platoon ratio and ATSPM delay per vehicle.

    Over every phase with advance detectors at every intersection:
    ``aog_pct = 100 * sum AoG / sum arrivals``; ``platoon_ratio`` = the
    phases' platoon ratios weighted by their arrivals; ``atspm_delay_s`` =
    total red-arrival delay / arrivals. Used as regression KPIs.
    """
    arrivals = aog = 0
    delay = pr_weighted = 0.0
    for iid, cfg in configs.items():
        if iid not in events.devices:
            continue
        ev = events.for_device(iid)
        for p in cfg.phases_with(AC):
            pcd = purdue_coordination(ev, p, cfg.of(AC, p))
            n = len(pcd.arrival_s)
            if not n:
                continue
            arrivals += n
            aog += int((pcd.kind == 1).sum())
            delay += float(pcd.delay_s.sum())
            pr_weighted += n * pcd.summary()["platoon_ratio"]
    return {
        "aog_pct": 100.0 * aog / arrivals if arrivals else float("nan"),
        "platoon_ratio": pr_weighted / arrivals if arrivals else float("nan"),
        "atspm_delay_s": delay / arrivals if arrivals else float("nan"),
    }
