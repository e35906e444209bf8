"""``greenwave check``: validate a plan file against its intersections.

Lists every problem of every plan (field by field) and exits non-zero when
there is any, so a technician or CI fixes a plan file in one round trip.
"""

from __future__ import annotations

import argparse
import sys

from intersections.errors import InputError
from intersections.loaders import load_network
from intersections.plan import check_plan_set, load_plans

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="validate a plan file against intersections",
        description="Validate every plan in --plan against the intersections of --intersection "
        "(an inventory TOML/YAML or a SUMO .net.xml). Exit 1 listing every problem.",
    )
    p.add_argument(
        "--intersection",
        "--net",
        dest="intersection",
        metavar="FILE",
        required=True,
        help="intersection inventory (.toml/.yaml) or SUMO network (.net.xml)",
    )
    p.add_argument("--plan", metavar="FILE", required=True, help="plan file (JSON)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    network = load_network(args.intersection)
    plan_set = load_plans(args.plan)
    if not plan_set.plans:
        raise InputError("the plan file holds no plans", where=args.plan)
    problems = check_plan_set(plan_set.plans, network.by_id, source=args.plan)
    if problems:
        print(f"greenwave check: {len(problems)} problem(s):", file=sys.stderr)
        for m in problems:
            print(f"  - {m}", file=sys.stderr)
        return 1
    print(f"{args.plan}: {len(plan_set.plans)} plan(s) OK against {args.intersection}")
    return 0
