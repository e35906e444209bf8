"""Arguments shared by the commands that run SUMO (simulate, compare, plot)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["add_input_args", "add_sumo_args", "add_model_arg", "spec_from_args", "progress_bar", "console"]

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def add_input_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to simulate (one of)")
    g.add_argument("--sumocfg", metavar="FILE", help="a SUMO configuration (.sumocfg)")
    g.add_argument("--net", metavar="FILE", help="a SUMO network (.net.xml); with --routes")
    g.add_argument("--routes", metavar="FILE[,FILE...]", help="route/flow files for --net")
    g.add_argument("--scenario", metavar="NAME|FILE", help="a library scenario name or a scenario TOML file")


def add_sumo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--begin", type=float, metavar="S", help="simulation begin time in seconds")
    p.add_argument("--end", type=float, metavar="S", help="simulation end time in seconds")
    p.add_argument(
        "--sumo-arg",
        action="append",
        default=[],
        metavar='"..."',
        help="an option passed to SUMO verbatim (repeatable); replaces greenwave's default for the same option",
    )
    p.add_argument("--traci", action="store_true", help="use TraCI (a SUMO subprocess) instead of libsumo")
    p.add_argument("--gui", action="store_true", help="run sumo-gui (implies --traci)")
    p.add_argument("--step-length", type=float, default=1.0, metavar="S", help="SUMO step length (default 1 s)")
    p.add_argument("--out-dir", metavar="DIR", help="keep SUMO's outputs (tripinfo, statistics, ...) here")
    add_model_arg(p)


def add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        choices=["micro", "meso"],
        default="micro",
        help="SUMO's traffic model: micro (default, every vehicle) or meso (queues per road segment with "
        "junction control, for whole cities; queues estimated from loop counts)",
    )


def spec_from_args(args: argparse.Namespace, *, seed: int | None = None, scenario: str | None = None) -> Any:
    from scenarios.specs import resolve_run

    sumo_args: list[str] = []
    for a in args.sumo_arg:
        sumo_args.extend(a.split())
    routes = [r for r in (getattr(args, "routes", None) or "").split(",") if r]
    scen = scenario if scenario is not None else getattr(args, "scenario", None)
    run: dict[str, Any] = dict(
        seed=seed if seed is not None else getattr(args, "seed", 42),
        begin_s=args.begin,
        end_s=args.end,
        sumo_args=tuple(sumo_args),
        step_length_s=args.step_length,
        traci=args.traci or args.gui,
        gui=args.gui,
        tripinfo_output=Path(args.tripinfo_output) if getattr(args, "tripinfo_output", None) else None,
        model=getattr(args, "model", "micro"),
    )
    if scen is not None and (scen.endswith(".sumocfg")):
        return resolve_run(sumocfg=scen, **run)
    scenario_dir = None
    if scen is not None and args.out_dir:
        scenario_dir = Path(args.out_dir) / f"scenario-{Path(scen).stem}-{seed if seed is not None else args.seed}"
    return resolve_run(
        sumocfg=getattr(args, "sumocfg", None),
        net=getattr(args, "net", None),
        routes=routes or None,
        scenario=scen,
        scenario_dir=scenario_dir,
        **run,
    )


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
