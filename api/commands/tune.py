"""``greenwave optimize --tune``: pick a policy's parameters by simulation, over seeds, on Dask.

::

    greenwave optimize --tune --scenario A[,B...] [--controller adaptive]
                       [--param NAME=v1,v2,... ...] [--seeds 3] [--objective mean_delay_s]
                       [--scheduler ADDRESS] [--workers 2] [--end S] --out tuned.json

The same machinery as ``greenwave sweep`` (``scenarios.sweep``): every
combination of the ``--param`` values on every scenario and seed, as
independent SUMO runs. Without ``--param`` the controller's own grid is used
(the policy's declared ``tune_grid``, :class:`~controller.policies.base.Policy`). With
several scenarios, each combination is scored by its objective relative to
the best combination on each scenario, averaged over the scenarios, so a
large network does not outweigh a small one. ``--out`` receives the chosen
parameters (``best``), ready for ``make_policy(controller, **best)``, with
the whole table.

The handler lives here; ``api/commands/optimize.py`` only adds the flag.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from api.commands._sumo_args import console

__all__ = ["add_tune_arguments", "run_tune"]


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    """The tuning options of ``greenwave optimize`` (``--tune`` itself is added by optimize)."""
    from api.commands.sweep import add_grid_args

    g = p.add_argument_group(
        "tuning by simulation (--tune)",
        "Every --param combination on every scenario and seed, on Dask; --out receives the best parameters; "
        "--end is the simulation horizon.",
    )
    g.add_argument("--scenario", metavar="A[,B...]", help="library scenario(s) to tune on")
    g.add_argument("--controller", default="adaptive", help="controller to tune (default adaptive)")
    add_grid_args(g, seeds_default=3, with_end=False)


def _default_grid(controller: str) -> dict[str, list[Any]]:
    from controller.policies import make_policy
    from controller.policies.base import declared

    grid = declared(make_policy(controller), "tune_grid")
    return {str(k): list(v) for k, v in dict(grid).items()}


def run_tune(args: argparse.Namespace) -> int:
    from api.commands.simulate import check_controllers
    from api.commands.sweep import parse_grid, print_table, run_sweep
    from intersections.errors import InputError

    scenarios = [s.strip() for s in (args.scenario or "").split(",") if s.strip()]
    if not scenarios:
        raise InputError("--tune needs --scenario NAME[,NAME...]")
    check_controllers([args.controller])
    grid = parse_grid(args.param) or _default_grid(args.controller)
    if not grid:
        raise InputError(
            f"nothing to tune: give --param NAME=v1,v2,... (controller {args.controller!r} publishes no tune_grid)"
        )
    out = Path(args.out)
    if not out.parent.is_dir():
        raise InputError("output directory does not exist", where=str(out))
    doc = run_sweep(scenarios, args.controller, grid, args, title=f"tune {args.controller}")
    print_table(doc)
    if len(scenarios) > 1:
        for r in doc["rows"]:
            rel = r["relative_objective"]
            mark = "★ " if r["best"] else "  "
            combo = ", ".join(f"{k}={v}" for k, v in r["combo"].items())
            console.print(f"{mark}{combo}: {doc['objective']} x{rel:.3f} of the best per scenario" if rel else combo)
    best = doc["best"]
    params = {k: v for k, v in (best or {}).get("combo", {}).items() if k not in ("controller", "demand_scale")}
    result = {**doc, "generator": "greenwave optimize --tune", "best": params, "best_row": best}
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    console.print(f"tuned parameters written to {out}")
    return 0 if best is not None else 1
