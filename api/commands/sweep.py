"""``greenwave sweep``: every parameter combination x seed as independent SUMO runs on Dask.

::

    greenwave sweep SCENARIO --param NAME=v1,v2,... [--param ...] --seeds N
                    [--controller adaptive] [--scheduler ADDRESS] [--workers 2]
                    [--objective mean_delay_s] [--end S] [--out DIR]

``--param`` names a parameter of the controller (``max-pressure``
``min_stage_s``, ``actuated`` ``passage_s``, ...), or ``controller`` (compare
controllers) or ``demand_scale`` (SUMO ``--scale``). The runs go to a local
Dask cluster of ``--workers`` single-threaded processes, or to the scheduler
at ``--scheduler``; each run is its own Python process (libsumo: one
simulation per process). A failed run is retried once, then reported; the
other results are kept. Writes ``DIR/sweep.json``, ``sweep.csv`` and
``sweep.md`` (one row per combination, mean over seeds, the best marked).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.commands._sumo_args import add_model_arg, console, progress_bar

if TYPE_CHECKING:
    from scenarios.sweep import RunOutcome

__all__ = ["register", "run", "run_sweep", "add_grid_args", "TABLE_KPIS"]

TABLE_KPIS = ("mean_delay_s", "p95_delay_s", "mean_travel_time_s", "mean_stops", "throughput_veh", "unfinished_veh",
              "teleports")  # fmt: skip


def add_grid_args(p: argparse._ActionsContainer, *, seeds_default: int = 3, with_end: bool = True) -> None:
    """Options shared by ``sweep`` and ``optimize --tune`` (which has its own ``--end``)."""
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=v1,v2,...",
        help="values to try (repeatable; every combination runs): a controller parameter, controller or demand_scale",
    )
    p.add_argument(
        "--seeds", type=int, default=seeds_default, metavar="N", help=f"seeds 1..N (default {seeds_default})"
    )
    p.add_argument("--objective", default="mean_delay_s", metavar="KPI", help="KPI that picks the best (mean_delay_s)")
    if with_end:
        p.add_argument("--end", type=float, metavar="S", help="simulate until S s (default: the scenario's horizon)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:8786); default a local cluster")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="local cluster worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="give up on a run after S s (3600)")
    p.add_argument("--in-process", action="store_true", help="no Dask: run one by one in this process (debugging)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run every parameter combination x seed on Dask and tabulate the KPIs",
        description="Parameter sweep: every combination of the --param values, on every seed, as independent "
        "SUMO runs on a Dask cluster (local by default); a table of KPIs per combination with the best marked.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="library scenario name or scenario TOML")
    p.add_argument("--controller", default="adaptive", help="controller whose parameters are swept (adaptive)")
    add_grid_args(p)
    add_model_arg(p)
    p.add_argument("--out", metavar="DIR", help="write sweep.json, sweep.csv, sweep.md here (default sweep-SCENARIO)")
    p.set_defaults(func=run)


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    from intersections.errors import InputError
    from scenarios.sweep import parse_param

    grid: dict[str, list[Any]] = {}
    for s in specs:
        name, vals = parse_param(s)
        if name in grid:
            raise InputError(f"--param {name} given twice")
        grid[name] = vals
    return grid


def run_sweep(
    scenarios: Sequence[str],
    controller: str,
    grid: Mapping[str, Sequence[Any]],
    args: argparse.Namespace,
    *,
    title: str = "sweep",
) -> dict[str, Any]:
    """Run the grid on every scenario and seed; returns the document written as sweep.json."""
    from intersections.errors import InputError
    from scenarios.sweep import KPI_DIRECTION, execute, prebuild, summarise, sweep_jobs

    if args.seeds < 1:
        raise InputError("--seeds must be >= 1")
    if args.objective not in KPI_DIRECTION:
        raise InputError(f"--objective must be one of {', '.join(KPI_DIRECTION)}")
    seeds = list(range(1, args.seeds + 1))
    per_scn: dict[str, tuple[list[dict[str, Any]], list[Any]]] = {}
    all_jobs = []
    for scn in scenarios:
        combos, jobs = sweep_jobs(scn, controller, grid, seeds, end_s=args.end)
        jobs = _with_model(jobs, getattr(args, "model", "micro"))
        per_scn[scn] = (combos, jobs)
        all_jobs += jobs
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gw-sweep-") as tmp:
        ready = prebuild(all_jobs, Path(tmp) / "scenarios")
        with progress_bar() as bar:
            task = bar.add_task(f"{title}: {len(ready)} runs", total=len(ready))

            def on_done(res: RunOutcome, done: int, total: int) -> None:
                if not res.ok:
                    bar.console.print(f"  [red]failed[/red] {res.job.describe()}: {res.error}")
                bar.update(task, completed=done)

            outcomes = execute(
                ready,
                scheduler=args.scheduler,
                workers=args.workers,
                in_process=args.in_process,
                timeout_s=args.timeout,
                progress=on_done,
            )
    wall = time.perf_counter() - t0
    kpis = tuple(dict.fromkeys([args.objective, *TABLE_KPIS]))
    doc: dict[str, Any] = {
        "scenarios": [Path(s).stem for s in scenarios],
        "controller": controller,
        "grid": {k: list(v) for k, v in grid.items()},
        "seeds": seeds,
        "objective": args.objective,
        "better": KPI_DIRECTION[args.objective],
        "runs": len(outcomes),
        "failed_runs": sum(not o.ok for o in outcomes),
        "wall_s": round(wall, 1),
        "per_scenario": {},
    }
    if getattr(args, "model", "micro") != "micro":
        doc["model"] = args.model
    for scn, (combos, _jobs) in per_scn.items():
        mine = [o for o in outcomes if o.job.scenario == scn]
        doc["per_scenario"][Path(scn).stem] = summarise(combos, mine, objective=args.objective, kpis=kpis)
    doc["rows"], doc["best"] = _overall(doc, args.objective)
    return doc


def _with_model(jobs: list[Any], model: str) -> list[Any]:
    """The jobs run in ``model``: its SUMO options ride in each job's own (the runner reads the model from them)."""
    from dataclasses import replace

    from simulation.meso import MODEL_OPTIONS, Model

    extra = MODEL_OPTIONS[Model(model)]
    return [replace(j, sumo_args=(*j.sumo_args, *extra)) for j in jobs] if extra else jobs


def _overall(doc: dict[str, Any], objective: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One scenario: its rows. Several: each combination's objective relative to the best, averaged."""
    tables = list(doc["per_scenario"].values())
    if len(tables) == 1:
        rows = tables[0]
        best = next((r for r in rows if r["best"]), None)
        return rows, best
    lower = doc["better"] == "lower"
    rows = []
    for k, first in enumerate(tables[0]):
        rel = []
        ok = True
        for t in tables:
            vals = [r[objective] for r in t if r[objective] is not None]
            v = t[k][objective]
            if v is None or not vals or t[k]["ok"] < t[k]["runs"]:
                ok = False
                break
            ref = min(vals) if lower else max(vals)
            rel.append(v / ref if ref else float("nan"))
        rows.append({"combo": first["combo"], "relative_objective": sum(rel) / len(rel) if ok else None, "best": False})
    eligible = [r for r in rows if r["relative_objective"] is not None]
    best = None
    if eligible:
        best = (min if lower else max)(eligible, key=lambda r: r["relative_objective"])
        best["best"] = True
    return rows, best


def _fmt(v: Any, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def _combo_text(combo: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in combo.items()) or "(defaults)"


def write_outputs(doc: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    names = list(doc["grid"])
    kpis = list(dict.fromkeys([doc["objective"], *TABLE_KPIS]))
    with (out / "sweep.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["scenario", *names, "runs", "ok", *kpis, f"{doc['objective']}_sd", "best"])
        for scn, rows in doc["per_scenario"].items():
            for r in rows:
                w.writerow([scn, *(r["combo"].get(n) for n in names), r["runs"], r["ok"], *(r[k] for k in kpis),
                            r[f"{doc['objective']}_sd"], "*" if r["best"] else ""])  # fmt: skip
    (out / "sweep.md").write_text(markdown_table(doc), encoding="utf-8")
    return [out / "sweep.json", out / "sweep.csv", out / "sweep.md"]


def margin_note(rows: Sequence[Mapping[str, Any]], objective: str, lower: bool) -> str:
    """How far the best is ahead of the runner-up, against the seed-to-seed noise.

    Runs on the same seed share their random demand (common random numbers),
    so the comparison is paired: the standard error of the mean per-seed
    difference; "clear" when the difference exceeds two of them.
    """
    ok = [r for r in rows if r.get(objective) is not None and r["ok"] == r["runs"] and r["runs"]]
    if len(ok) < 2:
        return ""
    ranked = sorted(ok, key=lambda r: r[objective], reverse=not lower)
    a, b = ranked[0], ranked[1]
    diff = abs(a[objective] - b[objective])
    pa, pb = a.get("per_seed") or {}, b.get("per_seed") or {}
    common = [k for k in pa if k in pb and pa[k] is not None and pb[k] is not None]
    if len(common) < 2:
        return f"best ahead of the runner-up by {diff:.2f} (fewer than 2 common seeds: no noise estimate)"
    d = [pa[k] - pb[k] for k in common]
    mean = sum(d) / len(d)
    se = (sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)) ** 0.5
    verdict = "a clear difference" if diff > 2 * se else "within seed-to-seed noise"
    return (
        f"best ahead of the runner-up by {diff:.2f} ± {se:.2f} (paired standard error over {len(d)} seeds): {verdict}"
    )


def markdown_table(doc: dict[str, Any]) -> str:
    obj = doc["objective"]
    kpis = list(dict.fromkeys([obj, *TABLE_KPIS]))
    lines = []
    for scn, rows in doc["per_scenario"].items():
        lines += [
            f"**{scn}**, controller `{doc['controller']}`, seeds {doc['seeds']}, mean (± sd) over seeds "
            f"(best {obj}, {doc['better']} is better, marked ★):",
            "",
            "| | " + " | ".join(doc["grid"]) + " | runs ok | " + " | ".join(kpis) + " |",
            "|---|" + "---:|" * (len(doc["grid"]) + 1 + len(kpis)),
        ]
        for r in rows:
            cells = [_fmt(r["combo"].get(n)) for n in doc["grid"]]
            sd = r.get(f"{obj}_sd")
            vals = [_fmt(r[k]) + (f" ± {sd:.1f}" if k == obj and sd else "") for k in kpis]
            lines.append(
                f"| {'★' if r['best'] else ''} | " + " | ".join(cells) + f" | {r['ok']}/{r['runs']} | "
                + " | ".join(vals) + " |"
            )  # fmt: skip
        note = margin_note(rows, obj, doc["better"] == "lower")
        lines += ["", note] if note else []
        lines.append("")
    return "\n".join(lines)


def print_table(doc: dict[str, Any]) -> None:
    from rich.table import Table

    obj = doc["objective"]
    kpis = list(dict.fromkeys([obj, *TABLE_KPIS]))
    for scn, rows in doc["per_scenario"].items():
        t = Table(
            title=f"{scn}: {doc['controller']}, {len(doc['seeds'])} seed(s), mean (± sd) over seeds; ★ best {obj}"
        )
        t.add_column("")
        for n in doc["grid"]:
            t.add_column(n, justify="right")
        t.add_column("ok", justify="right")
        for k in kpis:
            t.add_column(k, justify="right")
        for r in rows:
            sd = r.get(f"{obj}_sd")
            cells = [_fmt(r[k]) + (f" ± {sd:.1f}" if k == obj and sd else "") for k in kpis]
            t.add_row("★" if r["best"] else "", *(_fmt(r["combo"].get(n)) for n in doc["grid"]),
                      f"{r['ok']}/{r['runs']}", *cells, style="bold green" if r["best"] else None)  # fmt: skip
        console.print(t)
    for scn, rows in doc["per_scenario"].items():
        for r in rows:
            for f in r["failed"]:
                console.print(f"[red]failed[/red] {scn} {_combo_text(r['combo'])} seed {f['seed']}: {f['error']}")
    for rows in doc["per_scenario"].values():
        note = margin_note(rows, obj, doc["better"] == "lower")
        if note:
            console.print(note)
    best = doc["best"]
    console.print(f"best: {_combo_text(best['combo'])}" if best else "[red]no combination completed every run[/red]")
    console.print(f"{doc['runs']} runs ({doc['failed_runs']} failed) in {doc['wall_s']:.0f} s")


def run(args: argparse.Namespace) -> int:
    from api.commands.simulate import check_controllers

    check_controllers([args.controller])
    grid = parse_grid(args.param)
    doc = run_sweep([args.scenario], args.controller, grid, args)
    print_table(doc)
    out = Path(args.out or f"sweep-{Path(args.scenario).stem}")
    files = write_outputs(doc, out)
    console.print(f"wrote {', '.join(str(f) for f in files)}")
    return 0 if doc["failed_runs"] == 0 else 1
