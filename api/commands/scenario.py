"""``greenwave scenario``: build a library scenario's SUMO inputs into a folder."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenario", help="build or list library scenarios")
    ssub = p.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    b = ssub.add_parser("build", help="generate a scenario's network and demand into a folder")
    b.add_argument("name", help="scenario name (see `greenwave scenario list`)")
    b.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    b.add_argument("--seed", type=int, default=42, help="seed of the demand generator (default 42)")
    b.set_defaults(func=run)
    ls = ssub.add_parser("list", help="list scenario names")
    ls.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scenarios.library import build_scenario, scenario_names
    from scenarios.library.definition import city_names

    if args.scenario_command == "list":
        print("\n".join([*scenario_names(), *city_names()]))  # city-size ones last (scenarios/defs/city)
        return 0
    built = build_scenario(args.name, args.out, seed=args.seed)
    print(f"net:    {built.net}")
    for r in built.routes:
        print(f"routes: {r}")
    return 0
