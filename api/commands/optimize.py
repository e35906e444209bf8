"""``greenwave optimize``: fixed-time plans for every signalised intersection from demand.

::

    greenwave optimize --net NET.net.xml --demand FLOWS[,FLOWS...] --out plans.json
                       [--method webster] [--pcu hanoi|us_hcm|sumo] [--cycle-min S] [--cycle-max S]
                       [--saturation hcm|width|network] [--lane-width M] [--begin S] [--end S]

``--intersection FILE`` reads an intersection inventory (TOML/YAML) instead of
a SUMO net. Demand files are turning counts (CSV/JSON) or SUMO route/flow
files (``docs/timing.md``). The plan file holds one checked plan per
intersection (``intersections.plan.save_plans``) and, next to ``plans``,
``report`` (per intersection: Y, L, Webster's C0, v/c per stage and lane
group, HCM control delay and LOS) and the settings used. A compact table
goes to stdout, warnings to stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controller.timing import METHODS, compute_timings, load_demand
from controller.timing.groups import SATURATION_METHODS
from controller.timing.pcu import PCU_SETS, get_pcu_set
from controller.timing.webster import CYCLE_MAX_S, CYCLE_MIN_S
from intersections.errors import InputError
from intersections.network import Network
from intersections.plan import TimingPlan, save_plans

__all__ = ["register", "run"]

_MAX_WARNINGS = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "optimize",
        help="compute fixed-time plans (Webster) from turning counts or SUMO flows",
        description="Compute one checked fixed-time plan per signalised intersection from demand.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--net", metavar="NET.net.xml", help="SUMO network")
    src.add_argument("--intersection", metavar="FILE", help="intersection inventory (TOML/YAML) instead of --net")
    src.add_argument("--tune", action="store_true", help="tune a controller's parameters by simulation (see below)")
    p.add_argument(
        "--demand",
        metavar="FLOWS[,FLOWS...]",
        help="turning counts (.csv/.json) or SUMO route/flow files (.xml), comma-separated (required unless --tune)",
    )
    p.add_argument("--out", required=True, metavar="plans.json", help="plan file to write")
    p.add_argument("--method", default="webster", choices=sorted(METHODS), help="timing method (default webster)")
    p.add_argument("--pcu", default="hanoi", choices=sorted(PCU_SETS), help="PCU equivalents (default hanoi)")
    p.add_argument("--cycle-min", type=float, default=CYCLE_MIN_S, metavar="S", help="shortest cycle, s (40)")
    p.add_argument("--cycle-max", type=float, default=CYCLE_MAX_S, metavar="S", help="longest cycle, s (150)")
    p.add_argument(
        "--saturation", default="hcm", choices=SATURATION_METHODS, help="saturation flow model (default hcm)"
    )
    p.add_argument("--lane-width", type=float, default=3.6, metavar="M", help="lane width, m (3.6)")
    p.add_argument("--begin", type=float, metavar="S", help="start of the SUMO demand window, s")
    p.add_argument("--end", type=float, metavar="S", help="end of the SUMO demand window, s")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    p.add_argument(
        "--coordinate",
        action="store_true",
        help="common cycle per coordinated group and offsets for green waves over the road graph",
    )
    p.add_argument("--max-link", type=float, default=800.0, metavar="M", help="longest link coordinated, m (800)")
    p.add_argument("--tsd", metavar="PNG", help="with --coordinate: time-space diagram of the planned green bands")
    p.add_argument("--corridor", metavar="ID,ID,...", help="intersections along the corridor for --tsd, in order")
    from api.commands.tune import add_tune_arguments

    add_tune_arguments(p)
    p.set_defaults(func=run, parser=p)


def _num(v: float, fmt: str) -> str:
    return format(v, fmt) if math.isfinite(v) else "inf"


def run(args: argparse.Namespace) -> int:
    from intersections.loaders import load_network  # the loaders may import sumolib lazily

    if args.tune:
        from api.commands.tune import run_tune

        return run_tune(args)
    if not args.demand:
        args.parser.error("the following arguments are required: --demand")
    out = _checked_output(args)
    network = load_network(args.net or args.intersection)
    demand_paths = [p.strip() for p in args.demand.split(",") if p.strip()]
    if not demand_paths:
        raise InputError("no demand file given", where="--demand")
    demand = load_demand(demand_paths, network, begin_s=args.begin, end_s=args.end)
    pcu = get_pcu_set(args.pcu)
    timings = compute_timings(
        network,
        demand,
        args.method,
        pcu=pcu,
        saturation=args.saturation,
        lane_width_m=args.lane_width,
        cycle_min_s=args.cycle_min,
        cycle_max_s=args.cycle_max,
    )
    plans = [t.plan for t in timings]
    coordination: dict[str, Any] | None = None
    if args.coordinate:
        from controller.timing.coordination import coordinate

        plans, coordination = coordinate(network, demand, plans, max_link_m=args.max_link)
    elif args.tsd:
        raise InputError("--tsd draws coordinated plans: give --coordinate too", where="arguments")
    extra: dict[str, Any] = {
        "generator": "greenwave optimize",
        "settings": {
            "method": args.method,
            "network": str(args.net or args.intersection),
            "demand": demand_paths,
            "demand_window_s": [demand.begin_s, demand.end_s] if demand.begin_s is not None else None,
            "pcu": {"name": pcu.name, "factors": {c.value: f for c, f in pcu.factors.items()}, "source": pcu.source},
            "saturation": args.saturation,
            "lane_width_m": args.lane_width,
            "cycle_min_s": args.cycle_min,
            "cycle_max_s": args.cycle_max,
            "note": "analytical (Webster/HCM) figures, not simulation results",
        },
        "report": {t.intersection_id: t.to_json() for t in timings},
    }
    if coordination is not None:
        extra["coordination"] = coordination
    try:
        save_plans(plans, out, extra=extra)
    except OSError as e:
        raise InputError(f"cannot write the plan file: {e.strerror or e}", where=str(out)) from None
    _print_warnings(demand.warnings, timings, out)
    if not args.quiet:
        _print_table(timings, out, args.method, pcu.name)
        for grp in (coordination or {}).get("groups", []):
            before, after = grp["platoon_on_green_before"], grp["platoon_on_green_after"]
            print(
                f"coordinated {len(grp['intersections'])} intersections on a {grp['cycle_s']:.1f} s cycle: "
                f"platoons arriving on green {before:.0%} -> {after:.0%}"
            )
    if args.tsd:
        _draw_time_space(args, network, plans, coordination)
    return 0


def _checked_output(args: argparse.Namespace) -> Path:
    """The plan file to write, once the numeric options are sane (one line naming the option)."""
    if not (0 < args.cycle_min <= args.cycle_max) or not math.isfinite(args.cycle_max):
        raise InputError(
            f"need 0 < --cycle-min <= --cycle-max, got {args.cycle_min:g} and {args.cycle_max:g}", where="arguments"
        )
    if not (2.4 <= args.lane_width <= 6.0):
        raise InputError(f"--lane-width must be within 2.4-6.0 m, got {args.lane_width:g}", where="arguments")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise InputError("output directory does not exist", where=str(out))
    return out


def _print_warnings(demand_warnings: Sequence[str], timings: Sequence[Any], out: Path) -> None:
    """The demand's and the timings' warnings on stderr, one line per message with the intersections
    it concerns, at most ``_MAX_WARNINGS`` (the rest are in the plan file's report)."""
    warnings = [f"demand: {w}" for w in demand_warnings]
    by_message: dict[str, list[str]] = {}
    for t in timings:
        for w in t.warnings:
            by_message.setdefault(w, []).append(t.intersection_id)
    for w, ids in by_message.items():
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        warnings.append(f"intersection{'s' if len(ids) > 1 else ''} {shown}: {w}")
    for w in warnings[:_MAX_WARNINGS]:
        print(f"greenwave optimize: warning: {w}", file=sys.stderr)
    if len(warnings) > _MAX_WARNINGS:
        print(
            f"greenwave optimize: {len(warnings) - _MAX_WARNINGS} more warnings in the report of {out}",
            file=sys.stderr,
        )


def _draw_time_space(
    args: argparse.Namespace, network: Network, plans: Sequence[TimingPlan], coordination: dict[str, Any] | None
) -> None:
    """The ``--tsd`` diagram of ``--corridor``, or of the largest coordinated group."""
    from simulation.timespace import corridor_from_tls, plot_plan_time_space

    ids = [i for i in (args.corridor or "").split(",") if i]
    if not ids:
        grp = max((coordination or {}).get("groups", []), key=lambda g: len(g["intersections"]), default=None)
        if grp is None:
            raise InputError("no coordinated group to draw; give --corridor", where="--tsd")
        ids = grp["intersections"]
    corridor = corridor_from_tls(network, ids)
    plot_plan_time_space(network, {p.intersection_id: p for p in plans}, corridor, args.tsd)
    print(f"time-space diagram written to {args.tsd}")


def _print_table(timings: list[Any], out: Path, method: str, pcu: str) -> None:
    from rich.console import Console, JustifyMethod
    from rich.table import Table

    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("intersection", "left"),
        ("C s", "right"),
        ("Y", "right"),
        ("L s", "right"),
        ("Xc", "right"),
        ("greens s", "left"),
        ("max v/c", "right"),
        ("delay s", "right"),
        ("LOS", "center"),
        ("!", "right"),
    )
    table = Table(title=f"{len(timings)} plans ({method}, PCU {pcu}) -> {out}", title_justify="left")
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for t in timings:
        greens = " ".join(f"{s.stage}:{s.green_s:.0f}" for s in t.plan.stages)
        table.add_row(
            t.intersection_id,
            f"{t.cycle_s:.1f}",
            f"{t.flow_ratio_sum:.2f}",
            f"{t.lost_time_s:.1f}",
            _num(t.critical_v_c, ".2f"),
            greens,
            _num(t.max_v_c, ".2f"),
            _num(t.delay_s, ".1f"),
            t.los,
            str(len(t.warnings)) if t.warnings else "",
        )
    Console(file=sys.stdout, width=120, soft_wrap=False).print(table)
