"""``greenwave compare``: every controller on every seed, side by side.

Prints mean and 95 % confidence interval over seeds (Student t), and each
controller's mean delay relative to the ``sumo`` baseline (the network's own
programs); writes the documented JSON shape::

    {"scenario": NAME, "seeds": [...],
     "controllers": {CONTROLLER: {"mean": {KPI: value}, "ci95": {KPI: half_width},
                                  "per_seed": [{"seed": N, KPI: value, ...}]}},
     "relative_delay": {CONTROLLER: mean_delay / sumo mean_delay}}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from api.commands._sumo_args import add_sumo_args, console, progress_bar, spec_from_args
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
    from simulation.runner import simulate

    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    check_controllers(controllers)
    if args.seeds < 1:
        from intersections.errors import InputError

        raise InputError("--seeds must be >= 1")
    seeds = list(range(1, args.seeds + 1))
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
                row: dict[str, Any] = {"seed": seed, **{x: k[x] for x in SCALAR_KPIS if x in k}}
                row["by_class"] = k["by_class"]
                row["intersections"] = k["intersections"]
                row["wall_s"] = k["meta"]["wall_s"]
                if "estimated" in k["meta"]:
                    estimated[c] = k["meta"]["estimated"]
                results[c].append(row)
                bar.advance(task)
    doc: dict[str, Any] = {"scenario": name, "seeds": seeds, "controllers": {}, "relative_delay": {}}
    doc["model"] = getattr(args, "model", "micro")
    if estimated:  # meso: per controller, what it read that the model does not measure, and how it was filled
        doc["estimated"] = estimated
    for c, rows in results.items():
        mean, ci = summarise(rows)
        doc["controllers"][c] = {"mean": mean, "ci95": ci, "per_seed": rows}
    base = doc["controllers"].get("sumo", {}).get("mean", {}).get("mean_delay_s")
    for c in controllers:
        d = doc["controllers"][c]["mean"]["mean_delay_s"]
        doc["relative_delay"][c] = (d / base) if base else None
    _print(doc)
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
