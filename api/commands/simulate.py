"""``greenwave simulate``: one controller on one SUMO run, with KPIs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from api.commands._sumo_args import add_input_args, add_sumo_args, console, progress_bar, spec_from_args
from field_io.protocols import protocol_names

__all__ = ["register", "run", "kpi_table", "check_controllers", "print_estimated"]


def check_controllers(names: list[str]) -> None:
    """Refuse unknown controller names before any SUMO starts."""
    from controller.policies import policy_names
    from intersections.errors import InputError

    known = policy_names()
    bad = [n for n in names if n not in known]
    if bad:
        raise InputError(f"unknown controller {bad[0]!r} (known: {', '.join(known)})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a controller on a SUMO simulation and report KPIs",
        description="Drive SUMO with a greenwave controller through the safety supervisor and report "
        "KPIs from SUMO's own outputs.",
    )
    add_input_args(p)
    p.add_argument("--controller", default="actuated", help="controller name (see `greenwave controllers`)")
    p.add_argument("--seed", type=int, default=42, help="SUMO random seed (default 42)")
    add_sumo_args(p)
    p.add_argument("--tripinfo-output", metavar="PATH", help="write SUMO's tripinfo here (unfinished included)")
    p.add_argument("--json", metavar="PATH", help="write the KPIs as JSON")
    p.add_argument(
        "--via",
        choices=protocol_names(),
        help="software in the loop: drive SUMO through emulated field controllers over this protocol",
    )
    p.set_defaults(func=run)
    c = sub.add_parser("controllers", help="list controller names")
    c.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from controller.policies import policy_names

    print("\n".join(policy_names()))
    return 0


def print_estimated(estimated: dict[str, str] | None) -> None:
    """Say, under a run's table, which observation fields the model could not measure and how they were filled."""
    for name, how in (estimated or {}).items():
        console.print(f"  {name}: {how}")


def kpi_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title=title)
    cols = [
        "mean_delay_s",
        "p95_delay_s",
        "mean_travel_time_s",
        "mean_waiting_time_s",
        "mean_stops",
        "throughput_veh",
        "unfinished_veh",
        "teleports",
    ]
    t.add_column("")
    for c in cols:
        t.add_column(c, justify="right")
    for name, k in rows.items():
        t.add_row(name, *(f"{k.get(c, 0):.1f}" for c in cols))
    console.print(t)


def run(args: argparse.Namespace) -> int:
    from simulation.runner import simulate

    check_controllers([args.controller])
    if getattr(args, "via", None) and getattr(args, "model", "micro") == "meso":
        from intersections.errors import InputError

        raise InputError(
            "--via drives emulated field controllers from lane-area detectors, which the mesoscopic model lacks; "
            "use --model micro",
            where="--model meso",
        )
    spec = spec_from_args(args)
    with progress_bar() as bar:
        task = bar.add_task(f"{spec.name} / {args.controller}", total=None)

        def prog(t: float, end: float) -> None:
            bar.update(task, completed=int(t - (spec.begin_s or 0)), total=int(end - (spec.begin_s or 0)) or None)

        if getattr(args, "via", None):
            from api.sil import run_sil

            kpis = run_sil(spec, args.controller, via=args.via, out_dir=args.out_dir, progress=prog)
        else:
            kpis = simulate(spec, args.controller, out_dir=args.out_dir, progress=prog)
    rows = {"all": kpis, **{f"  {c}": v for c, v in kpis["by_class"].items()}}
    via = f" via {args.via}" if getattr(args, "via", None) else ""
    model = kpis["meta"].get("model", "micro")
    kpi_table(f"{spec.name}: {args.controller}{via} (seed {spec.seed}, {model})", rows)
    print_estimated(kpis["meta"].get("estimated"))
    if args.json:
        Path(args.json).write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
        console.print(f"KPIs written to {args.json}")
    return 0
