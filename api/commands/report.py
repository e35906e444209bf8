"""``greenwave report``: signal performance measures of one intersection from an event log.

::

    greenwave report --events EVENTS.csv.gz --intersection ID --out DIR
                     [--detectors FILE.json | --net NET.net.xml | --scenario NAME]
                     [--bin-min 15] [--phases 2,6] [--severe-s 4] [--no-plots]

Writes ``DIR/measures.json`` (every series, the shape the dashboard reads)
and one PNG per chart (PCD, approach delay, split monitor, phase termination,
split failure, approach volume, turning movement counts, yellow and red
actuations), for SUMO runs and field logs alike. The detector configuration
(channel -> phase, detection type, distance, approach) comes from, in order:
``--detectors`` (JSON, ``docs/measures.md``), the intersection model of
``--net``/``--scenario``, or ``EVENTS.detectors.json`` next to the log
(greenwave's regress and sweep runs write it). Without one, only the
measures that need no detection are computed; the rest are listed as
skipped, with the reason.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.commands._sumo_args import console

if TYPE_CHECKING:
    from scenarios.atspm.detectors import IntersectionDetectors

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="signal performance measures (PCD, splits, split failures, delay, volumes) from an event log",
        description="ATSPM-style signal performance measures of one intersection from an Indiana event log "
        "(TimeStamp,DeviceId,EventId,Parameter; .csv, .csv.gz or .parquet): PNG charts and a JSON of the series.",
    )
    p.add_argument("--events", required=True, metavar="PATH", help="event log (.csv.gz from greenwave, or a field log)")
    p.add_argument("--intersection", required=True, metavar="ID", help="DeviceId of the intersection")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--detectors", metavar="FILE", help="detector configuration JSON (channel -> phase, type, ...)")
    src.add_argument("--net", metavar="FILE", help="SUMO network the log came from (detectors as greenwave generates)")
    src.add_argument("--scenario", metavar="NAME|FILE", help="library scenario the log came from")
    p.add_argument("--bin-min", type=float, default=15.0, metavar="MIN", help="time bin of the series (default 15)")
    p.add_argument("--phases", metavar="P[,P...]", help="phases to report (default: every phase that shows green)")
    p.add_argument("--severe-s", type=float, default=4.0, metavar="S", help="severe red-light violation after S s")
    p.add_argument("--no-plots", action="store_true", help="write the JSON only")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> tuple[dict[str, IntersectionDetectors] | None, str]:
    from scenarios.atspm.detectors import config_for_sumo_net, load_detector_config, sidecar_path

    if args.detectors:
        return load_detector_config(args.detectors), args.detectors
    if args.net:
        return config_for_sumo_net(args.net), args.net
    if args.scenario:
        from scenarios.library import build_scenario

        with tempfile.TemporaryDirectory(prefix="gw-report-") as tmp:
            built = build_scenario(args.scenario, tmp, seed=1)
            return config_for_sumo_net(built.net), f"scenario {built.name}"
    side = sidecar_path(args.events)
    if side.is_file():
        return load_detector_config(side), str(side)
    return None, ""


def run(args: argparse.Namespace) -> int:
    from intersections.errors import InputError
    from scenarios.atspm import intersection_measures, read_events, write_report

    if args.bin_min <= 0:
        raise InputError("--bin-min must be > 0")
    phases = None
    if args.phases:
        try:
            phases = [int(x) for x in args.phases.split(",") if x.strip()]
        except ValueError:
            raise InputError(f"--phases takes phase numbers, got {args.phases!r}") from None
    events = read_events(args.events)
    configs, source = _config(args)
    cfg = None
    if configs is not None:
        cfg = configs.get(args.intersection)
        if cfg is None:
            raise InputError(f"the detector configuration ({source}) has no intersection {args.intersection!r}")
    doc = intersection_measures(
        events, args.intersection, cfg, bin_s=args.bin_min * 60.0, phases=phases, severe_s=args.severe_s
    )
    doc["detector_source"] = source or None
    files = write_report(doc, args.out, plots_too=not args.no_plots)
    _print(doc, files, source)
    return 0


def _print(doc: dict[str, Any], files: list[Path], source: str) -> None:
    from rich.table import Table

    m = doc["measures"]
    t = Table(title=f"{doc['intersection']}: signal performance measures ({len(doc['phases'])} phases)")
    for c in ("phase", "cycles", "p85 split s", "gap/max/force %", "approach", "AoG %", "PR", "delay s/veh",
              "split fails"):  # fmt: skip
        t.add_column(c, justify="right")

    def f(v: object, spec: str) -> str:
        return "-" if v is None or (isinstance(v, float) and v != v) else format(v, spec)

    for p in doc["phases"]:
        k = str(p)
        sm = m["split_monitor"][k]["summary"]
        sf = m.get("split_failure", {}).get(k, {}).get("summary", {})
        keys = [x for x in m.get("pcd", {}) if x == k or x.startswith(f"{k}-")] or [k]
        for n, key in enumerate(keys):
            pcd = m.get("pcd", {}).get(key, {}).get("summary", {})
            approach = key.partition("-")[2]
            first = n == 0
            t.add_row(
                f"{p} {doc['phase_names'].get(k, '')}".strip() if first else "",
                str(sm["cycles"]) if first else "",
                f(sm["p85_split_s"], ".1f") if first else "",
                f"{f(sm['gap_out_pct'], '.0f')}/{f(sm['max_out_pct'], '.0f')}/{f(sm['force_off_pct'], '.0f')}"
                if first
                else "",
                approach,
                f(pcd.get("aog_pct"), ".1f"),
                f(pcd.get("platoon_ratio"), ".2f"),
                f(pcd.get("delay_per_vehicle_s"), ".1f"),
                (f"{sf['failures']}/{sf['cycles']}" if sf else "-") if first else "",
            )
    console.print(t)
    console.print(f"detectors: {source or 'none (phase-only measures)'}")
    for name, why in doc["skipped"].items():
        console.print(f"skipped {name}: {why}")
    console.print(f"wrote {len(files)} files to {files[0].parent}")
