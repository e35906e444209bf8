"""``greenwave regress``: the scenario regression suite (``scenarios.regress``).

::

    greenwave regress [--suite NAME|FILE] [--junit PATH] [--report PATH] [--update-baselines]
                      [--scenarios A,B] [--controllers A,B|all] [--baselines DIR]
                      [--workers N] [--scheduler ADDRESS] [--in-process] [--json PATH]

Runs every scenario of the suite with every controller (the suite's list, the
ones named, or ``all`` registered ones) on the suite's fixed seeds, as
independent SUMO runs on Dask (``scenarios.sweep``), compares each KPI with
its baseline in ``scenarios/baselines/<suite>/`` and writes a JUnit XML (one
testcase per scenario x controller x KPI) and a Markdown report (worst
regressions first). Exit code 0 when every KPI is within tolerance, 1 on any
regression, missing or stale baseline or failed run, 2 on bad input.

``--update-baselines`` writes the baselines from this run instead of checking
(the reviewed, explicit way to accept a change); naming a controller that the
suite does not list yet also adds it to the suite file, so adding a
controller to CI is one command::

    greenwave regress --suite ci --controllers adaptive --update-baselines
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.commands._sumo_args import console, progress_bar

if TYPE_CHECKING:
    from scenarios.regress import PairResult, Suite

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regress",
        help="run the scenario regression suite against the stored baselines",
        description="Run a suite of scenarios x controllers on fixed seeds and compare every KPI with its "
        "reviewed baseline (per-KPI tolerances). Exit 1 on any regression.",
    )
    p.add_argument("--suite", default="ci", metavar="NAME|FILE", help="suite name in scenarios/suites or a TOML file")
    p.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    p.add_argument("--report", metavar="PATH", help="write a Markdown report (KPI deltas, worst first)")
    p.add_argument("--update-baselines", action="store_true", help="write the baselines from this run (no check)")
    p.add_argument("--scenarios", metavar="A,B", help="only these scenarios of the suite")
    p.add_argument("--controllers", metavar="A,B|all", help="these controllers, or every registered one (all)")
    p.add_argument("--baselines", metavar="DIR", help="baseline directory (default scenarios/baselines/<suite>)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="local Dask worker processes (default 2)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="use this Dask scheduler instead of a local cluster")
    p.add_argument("--in-process", action="store_true", help="run the simulations one by one in this process")
    p.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="give up on a run after S s (1800)")
    p.add_argument("--json", metavar="PATH", help="write the current KPIs and checks as JSON")
    p.set_defaults(func=run)


def _names(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _controllers(suite: Suite, arg: str | None) -> tuple[list[str], dict[str, str]]:
    from controller.policies import policy_names
    from intersections.errors import InputError

    known = policy_names()
    if arg is None:
        chosen = list(suite.controllers)
    elif arg.strip() == "all":
        chosen = [c for c in known if c not in suite.exclude]
    else:
        chosen = _names(arg)
    bad = [c for c in chosen if c not in known]
    if bad:
        raise InputError(f"unknown controller {bad[0]!r} (known: {', '.join(known)})")
    not_run = {c: f"excluded by the suite: {suite.exclude[c]}" for c in known if c in suite.exclude}
    for c in known:
        if c not in chosen and c not in not_run and arg is None:
            not_run[c] = (
                f"registered but not in suite {suite.name!r}; add it with "
                f"`greenwave regress --suite {suite.name} --controllers {c} --update-baselines`"
            )
    return chosen, not_run


def _sumo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("libsumo", "eclipse-sumo", "sumolib"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"


def run(args: argparse.Namespace) -> int:
    import tempfile

    from intersections.errors import InputError
    from scenarios import regress as rg
    from scenarios.sweep import RunOutcome, execute, prebuild

    suite = rg.load_suite(args.suite)
    scenarios = _names(args.scenarios) or list(suite.scenarios)
    stray = [s for s in scenarios if s not in suite.scenarios]
    if stray:
        raise InputError(f"scenario {stray[0]!r} is not in suite {suite.name!r} ({', '.join(suite.scenarios)})")
    controllers, not_run = _controllers(suite, args.controllers)
    base_dir = Path(args.baselines) if args.baselines else rg.BASELINES_DIR / suite.name
    sumo = _sumo_version()
    jobs = rg.suite_jobs(suite, scenarios, controllers)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gw-regress-") as tmp:
        # Build every scenario once, up front; one that cannot be built fails its runs with the reason.
        ready, outcomes = [], []
        for scn in scenarios:
            mine = [j for j in jobs if j.tag.rsplit("__", 1)[0] == scn]
            try:
                ready += prebuild(mine, Path(tmp) / "scenarios")
            except Exception as e:
                outcomes += [RunOutcome(j, None, f"scenario failed to build: {e}", 0, 0.0) for j in mine]
        with progress_bar() as bar:
            task = bar.add_task(f"regress {suite.name}", total=len(ready))

            def on_done(res: RunOutcome, done: int, total: int) -> None:
                tail = "" if res.ok else f" FAILED: {res.error}"
                bar.console.print(f"  {res.job.describe()}: {'ok' if res.ok else 'failed'}{tail}")
                bar.update(task, completed=done)

            outcomes += execute(
                ready,
                scheduler=args.scheduler,
                workers=args.workers,
                in_process=args.in_process,
                timeout_s=args.timeout,
                progress=on_done,
            )
    wall = time.perf_counter() - t0
    agg = rg.aggregate(outcomes)
    if args.update_baselines:
        return _update(args, suite, base_dir, scenarios, controllers, agg, sumo)
    results = [rg.compare(suite, base_dir, scn, ctl, agg[f"{scn}__{ctl}"]) for scn in scenarios for ctl in controllers]
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(rg.junit_xml(suite, results, wall_s=wall), encoding="utf-8")
    report = rg.markdown_report(suite, results, wall_s=wall, sumo=sumo, not_run=not_run)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(report, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(_json(suite, results, wall), indent=1) + "\n", encoding="utf-8")
    _print(suite, results, wall, not_run)
    return 1 if any(r.failed for r in results) else 0


def _update(
    args: argparse.Namespace,
    suite: Any,
    base_dir: Path,
    scenarios: list[str],
    controllers: list[str],
    agg: dict[str, Any],
    sumo: str,
) -> int:
    from scenarios import regress as rg

    failed = 0
    for scn in scenarios:
        for ctl in controllers:
            kpis, err, _wall = agg[f"{scn}__{ctl}"]
            if kpis is None:
                failed += 1
                console.print(f"[red]not updated[/red] {scn} / {ctl}: the run failed: {err}")
                continue
            p = rg.write_baseline(base_dir, suite, scn, ctl, kpis, sumo=sumo)
            console.print(f"baseline written: {p}")
    added = rg.add_controllers_to_suite(suite, controllers)
    if added:
        console.print(f"added {', '.join(added)} to the controllers of {suite.path}")
    return 1 if failed else 0


def _json(suite: Suite, results: list[PairResult], wall: float) -> dict[str, Any]:
    return {
        "suite": suite.name,
        "wall_s": round(wall, 1),
        "pairs": [
            {
                "scenario": r.scenario,
                "controller": r.controller,
                "problem": r.problem or None,
                "checks": [
                    {
                        "kpi": c.kpi,
                        "baseline": c.baseline,
                        "current": c.current,
                        "status": c.status,
                        "message": c.message,
                    }
                    for c in r.checks
                ],
            }
            for r in results
        ],
    }


def _print(suite: Suite, results: list[PairResult], wall: float, not_run: dict[str, str]) -> None:
    from rich.table import Table

    t = Table(title=f"regress {suite.name}: {len(results)} pairs in {wall:.0f} s")
    for c in ("scenario", "controller", "result", "regressions", "improvements", "mean delay s (base -> now)"):
        t.add_column(c)
    for r in results:
        d = next((c for c in r.checks if c.kpi == "mean_delay_s"), None)
        regs = [c.kpi for c in r.checks if c.status == "regression"]
        imps = [c.kpi for c in r.checks if c.status == "improvement"]
        verdict = "[red]PROBLEM[/red]" if r.problem else "[red]REGRESSION[/red]" if regs else "[green]ok[/green]"
        delay = (
            f"{d.baseline:.1f} -> {d.current:.1f}" if d and d.baseline is not None and d.current is not None else "-"
        )
        t.add_row(r.scenario, r.controller, verdict, ", ".join(regs) or "-", ", ".join(imps) or "-", delay)
    console.print(t)
    for r in results:
        if r.problem:
            console.print(f"[red]{r.scenario} / {r.controller}[/red]: {r.problem}")
    for c, why in not_run.items():
        console.print(f"not run: {c}: {why}")
