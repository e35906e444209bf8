"""What a user asks to run (a ``.sumocfg``, a net plus route files, or a library scenario) as a run spec.

Scenarios sit above the simulator (DESIGN.md: dependencies point downwards), so the
simulator's :func:`simulation.runner.resolve_run` knows SUMO files only; a library
scenario is built here first and then resolved through its sumocfg. The command
line, the control centre and the regression runs all start from :func:`resolve_run`.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from intersections.errors import InputError
from simulation.runner import RunSpec
from simulation.runner import resolve_run as resolve_sumo_run

__all__ = ["resolve_run"]


def resolve_run(
    *,
    sumocfg: str | Path | None = None,
    net: str | Path | None = None,
    routes: list[str | Path] | None = None,
    scenario: str | None = None,
    scenario_dir: str | Path | None = None,
    **kw: Any,
) -> RunSpec:
    """One of ``sumocfg``, ``net`` (+ ``routes``) or ``scenario``; the rest as RunSpec fields.

    A scenario is built (cached) into ``scenario_dir`` (a fresh temporary folder
    when not given) with the run's seed; its name, corridor and ``[faults]`` ride
    along in the spec, and its horizon applies unless ``begin_s``/``end_s`` are given.
    """
    given = [x is not None for x in (sumocfg, net, scenario)]
    if sum(given) != 1:
        raise InputError("give exactly one of --sumocfg, --net (with --routes) or --scenario")
    if scenario is None:
        return resolve_sumo_run(sumocfg=sumocfg, net=net, routes=routes, **kw)
    from scenarios.library import build_scenario

    kw = {k: v for k, v in kw.items() if v is not None}
    out = Path(scenario_dir).resolve() if scenario_dir else Path(tempfile.mkdtemp(prefix="gw-scn-"))
    built = build_scenario(scenario, out, seed=int(kw.get("seed", 42)))
    spec = resolve_sumo_run(sumocfg=built.sumocfg, **kw)
    extra: dict[str, Any] = dict(
        name=built.name,
        corridor=tuple(built.corridor),
        extra={**dict(spec.extra), "faults": dict(built.faults or {})},
    )
    if spec.begin_s is None:
        extra["begin_s"] = built.begin_s
    if spec.end_s is None:
        extra["end_s"] = built.end_s
    return replace(spec, **extra)
