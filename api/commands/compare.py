"""``greenwave compare``: every controller on every seed, side by side.

Prints mean and 95 % confidence interval over seeds (Student t), and each
controller's mean delay relative to the ``sumo`` baseline (the network's own
programs); writes the documented JSON shape::

    {"scenario": NAME, "seeds": [...],
     "controllers": {CONTROLLER: {"mean": {KPI: value}, "ci95": {KPI: half_width},
                                  "per_seed": [{"seed": N, KPI: value, ...}]}},
     "relative_delay": {CONTROLLER: mean_delay / sumo mean_delay}}

The runs (controllers x seeds) are independent, so they go to Dask like a
sweep's (:func:`scenarios.sweep.execute`): a local cluster of ``--workers``
single-threaded processes by default, or the scheduler at ``--scheduler`` (a
real cluster), one fresh process per run, a failed run retried once. Each
seed's scenario is built once, before any run, into ``--cache`` (reused while
its definition is unchanged), so a city's runs share one build per seed instead
of each building or parsing its own. What a run needs that a job cannot carry
to another machine (``--gui``, ``--traci``, ``--begin``, a step length other
than 1 s) and ``--in-process`` run here one after another, as before.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.commands._sumo_args import add_sumo_args, console, progress_bar, spec_from_args

if TYPE_CHECKING:
    from scenarios.sweep import RunOutcome
from api.commands.simulate import check_controllers, print_estimated
from simulation.kpi import mean_ci95

__all__ = ["register", "run", "SCALAR_KPIS", "summarise"]

SCALAR_KPIS = (
    "mean_delay_s",
    "p95_delay_s",
    "mean_travel_time_s",
    "mean_waiting_time_s",
    "mean_stops",
    "throughput_veh",
    "unfinished_veh",
    "teleports",
    "bus_person_delay_s",
    "general_delay_s",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare controllers over seeds on a scenario",
        description="Run every controller on every seed of SCENARIO (a library name, a scenario TOML "
        "or a .sumocfg) and compare their KPIs.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="library scenario name, scenario TOML or .sumocfg")
    p.add_argument("--controllers", default="sumo,webster,actuated,max-pressure", help="comma-separated names")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="number of seeds (1..N), default 3")
    p.add_argument("--json", metavar="PATH", help="write per-seed and mean KPIs as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the table as Markdown (for reports and READMEs)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:8786); default a local cluster")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="local cluster worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="give up on a run after S s (3600)")
    p.add_argument("--in-process", action="store_true", help="no Dask: run one by one in this process (debugging)")
    p.add_argument("--cache", default="out/scenarios", metavar="DIR", help="scenario build cache (out/scenarios)")
    add_sumo_args(p)
    p.set_defaults(func=run)


def summarise(per_seed: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    mean: dict[str, float] = {}
    ci: dict[str, float] = {}
    for k in SCALAR_KPIS:
        v = [r[k] for r in per_seed if k in r]
        if v:
            mean[k], ci[k] = mean_ci95(v)
    return mean, ci


def run(args: argparse.Namespace) -> int:
    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    check_controllers(controllers)
    if args.seeds < 1:
        from intersections.errors import InputError

        raise InputError("--seeds must be >= 1")
    seeds = list(range(1, args.seeds + 1))
    here = args.in_process or args.gui or args.traci or args.begin is not None or args.step_length != 1.0
    run_all = _run_here if here else _run_on_dask
    name, results, estimated = run_all(args, controllers, seeds)
    doc: dict[str, Any] = {"scenario": name, "seeds": seeds, "controllers": {}, "relative_delay": {}}
    doc["model"] = getattr(args, "model", "micro")
    if estimated:  # meso: per controller, what it read that the model does not measure, and how it was filled
        doc["estimated"] = estimated
    for c, rows in results.items():
        mean, ci = summarise(rows)
        doc["controllers"][c] = {"mean": mean, "ci95": ci, "per_seed": rows}
    same = identical_seeds(doc)
    if same:
        doc["identical_seeds"] = same
    base = doc["controllers"].get("sumo", {}).get("mean", {}).get("mean_delay_s")
    for c in controllers:
        d = doc["controllers"][c]["mean"]["mean_delay_s"]
        doc["relative_delay"][c] = (d / base) if base else None
    _print(doc)
    if same:
        console.print(_identical_note(doc))
    if estimated:
        console.print("estimated in the mesoscopic model (no lane-area detectors), for the controllers that read them:")
        print_estimated({f: how for per in estimated.values() for f, how in per.items()})
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(doc), encoding="utf-8")
        console.print(f"table written to {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        console.print(f"results written to {args.json}")
    return 0


def _row(seed: int, k: dict[str, Any]) -> dict[str, Any]:
    """One run's line of the JSON's ``per_seed``."""
    row: dict[str, Any] = {"seed": seed, **{x: k[x] for x in SCALAR_KPIS if x in k}}
    row["by_class"] = k["by_class"]
    row["intersections"] = k["intersections"]
    row["wall_s"] = k["meta"]["wall_s"]
    return row


Results = tuple[str, dict[str, list[dict[str, Any]]], dict[str, dict[str, str]]]


def _run_here(args: argparse.Namespace, controllers: list[str], seeds: list[int]) -> Results:
    """Every run in this process, one after another (the GUI, TraCI, ``--begin``, ``--in-process``)."""
    from simulation.runner import simulate

    results: dict[str, list[dict[str, Any]]] = {c: [] for c in controllers}
    estimated: dict[str, dict[str, str]] = {}
    name = Path(args.scenario).stem
    with progress_bar() as bar:
        task = bar.add_task(f"compare {name}", total=len(seeds) * len(controllers))
        for seed in seeds:
            args.seed = seed
            spec = spec_from_args(args, seed=seed, scenario=args.scenario)
            name = spec.name or name
            for c in controllers:
                bar.update(task, description=f"{name}: {c} seed {seed}")
                out = Path(args.out_dir) / f"{c}-seed{seed}" if args.out_dir else None
                k = simulate(spec, c, out_dir=out)
                if "estimated" in k["meta"]:
                    estimated[c] = k["meta"]["estimated"]
                results[c].append(_row(seed, k))
                bar.advance(task)
    return name, results, estimated


def compare_jobs(args: argparse.Namespace, controllers: list[str], seeds: list[int]) -> list[Any]:
    """The runs of a comparison as :class:`~scenarios.runs.RunJob` (seed-major, as the table reads them).

    The model's SUMO options and the user's ``--sumo-arg`` ride in each job's own options
    (the runner reads the model from them), ``--end`` in its horizon.
    """
    from scenarios.runs import RunJob
    from simulation.meso import MODEL_OPTIONS, Model

    sumo_args: list[str] = list(MODEL_OPTIONS[Model(getattr(args, "model", "micro"))])
    for a in args.sumo_arg:
        sumo_args.extend(a.split())
    scenario = str(Path(args.scenario).resolve()) if Path(args.scenario).is_file() else args.scenario
    return [
        RunJob(
            scenario,
            c,
            seed,
            end_s=args.end,
            out_dir=str(Path(args.out_dir).resolve() / f"{c}-seed{seed}") if args.out_dir else None,
            tag=c,
            sumo_args=tuple(sumo_args),
        )
        for seed in seeds
        for c in controllers
    ]


def _where(args: argparse.Namespace) -> str:
    return f"Dask scheduler {args.scheduler}" if args.scheduler else f"local Dask cluster, {args.workers} workers"


def _run_on_dask(args: argparse.Namespace, controllers: list[str], seeds: list[int]) -> Results:
    """Every run as a job on Dask (module docstring); a failed run is reported and fails the command."""
    from intersections.errors import SimulationError
    from scenarios.sweep import dask_client, execute, prebuild

    name = Path(args.scenario).stem
    jobs = compare_jobs(args, controllers, seeds)
    t0 = time.perf_counter()
    with progress_bar() as bar, dask_client(args.scheduler, args.workers) as client:
        task = bar.add_task(f"compare {name}: building {len(seeds)} seed(s)", total=len(jobs))
        ready = prebuild(jobs, Path(args.cache).resolve(), client=client)
        bar.update(task, description=f"compare {name}: {len(jobs)} runs")

        def on_done(res: RunOutcome, done: int, total: int) -> None:
            if not res.ok:
                bar.console.print(f"  [red]failed[/red] {res.job.describe()}: {res.error}")
            bar.update(task, completed=done, description=f"compare {name}: {res.job.controller} seed {res.job.seed}")

        outcomes = execute(ready, client=client, timeout_s=args.timeout, progress=on_done)
    console.print(f"{len(outcomes)} runs in {time.perf_counter() - t0:.0f} s ({_where(args)})")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        o = failed[0]
        raise SimulationError(f"{len(failed)} of {len(outcomes)} runs failed; {o.job.describe()}: {o.error}")
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in controllers}
    estimated: dict[str, dict[str, str]] = {}
    for o in outcomes:
        assert o.kpis is not None
        results[o.job.controller].append(_row(o.job.seed, o.kpis))
        if "estimated" in o.kpis["meta"]:
            estimated[o.job.controller] = o.kpis["meta"]["estimated"]
    named = [o.kpis["meta"].get("scenario") for o in outcomes if o.kpis]
    return (named[0] if named and named[0] else name), results, estimated


TABLE_KPIS = (
    "mean_delay_s",
    "p95_delay_s",
    "mean_travel_time_s",
    "mean_stops",
    "throughput_veh",
    "unfinished_veh",
    "teleports",
    "bus_person_delay_s",
    "general_delay_s",
)


def identical_seeds(doc: dict[str, Any]) -> list[str]:
    """Controllers whose seeds all gave the very same KPIs.

    A seed changes a run only through what SUMO draws at random: a scenario whose demand is fixed
    (a real scenario's route files) and whose vehicle types draw nothing (TAVF-Hamburg's all drive
    with ``speedFactor="norm(1,0)"`` and ``sigma="0"``) gives the same run for every seed in SUMO's
    meso (measured: byte-identical tripinfo for seeds 1 and 2), which has no lane changing to draw
    for. The printed ± 0.0 is then no measured spread, and the report says so.
    """
    if len(doc["seeds"]) < 2:
        return []
    out = []
    for c, res in doc["controllers"].items():
        rows = [{k: r.get(k) for k in SCALAR_KPIS} for r in res["per_seed"]]
        if len(rows) > 1 and all(r == rows[0] for r in rows[1:]):
            out.append(c)
    return out


def _identical_note(doc: dict[str, Any]) -> str:
    return (
        f"every seed gave the same run for {', '.join(doc['identical_seeds'])}: neither the demand nor the "
        "vehicles drew anything at random, so ± 0.0 is no measured spread; vary the demand (a library "
        "scenario draws it per seed) or the vehicle types' speedFactor to measure one"
    )


def _model_note(doc: dict[str, Any]) -> str:
    """Meso runs say so in their titles; micro, the default, stays as it always printed."""
    return " (mesoscopic model)" if doc.get("model") == "meso" else ""


def markdown_table(doc: dict[str, Any]) -> str:
    """The comparison as a Markdown table: mean ± 95 % CI over seeds, delay relative to sumo."""
    n = len(doc["seeds"])
    head = ["controller", *TABLE_KPIS, "delay vs sumo"]
    lines = [
        f"**{doc['scenario']}**{_model_note(doc)}, {n} seed(s){', mean ± 95 % CI' if n > 1 else ''}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for c, res in doc["controllers"].items():
        m, ci = res["mean"], res["ci95"]
        cells = [(f"{m[k]:.1f} ± {ci[k]:.1f}" if n > 1 else f"{m[k]:.1f}") if k in m else "-" for k in TABLE_KPIS]
        rel = doc["relative_delay"].get(c)
        lines.append("| " + " | ".join([c, *cells, f"{rel:.2f}" if rel is not None else "-"]) + " |")
    if doc.get("identical_seeds"):
        lines += ["", _identical_note(doc)]
    return "\n".join(lines) + "\n"


def _print(doc: dict[str, Any]) -> None:
    from rich.table import Table

    n = len(doc["seeds"])
    t = Table(title=f"{doc['scenario']}{_model_note(doc)}: {n} seed(s), mean ± 95 % CI")
    t.add_column("controller")
    cols = [
        "mean_delay_s",
        "p95_delay_s",
        "mean_travel_time_s",
        "mean_stops",
        "throughput_veh",
        "unfinished_veh",
        "teleports",
    ]
    for c in cols:
        t.add_column(c, justify="right")
    t.add_column("delay vs sumo", justify="right")
    for c, res in doc["controllers"].items():
        m, ci = res["mean"], res["ci95"]
        cells = [f"{m[k]:.1f} ± {ci[k]:.1f}" if n > 1 else f"{m[k]:.1f}" for k in cols]
        rel = doc["relative_delay"].get(c)
        t.add_row(c, *cells, f"{rel:.2f}" if rel is not None else "-")
    console.print(t)
