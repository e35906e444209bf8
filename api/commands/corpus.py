"""``greenwave corpus``: the development corpus of real and generated networks (issue #15).

::

    greenwave corpus build [--cache DIR] [--family real|generated]
    greenwave corpus list  [--cache DIR] [--only PATTERN ...]
    greenwave corpus run   [--only PATTERN ...] [--controllers C,...] [--seeds N] [--end S]
                           [--workers 2] [--scheduler ADDRESS] [--json PATH] [--markdown PATH]
                           [--runs-log PATH]   (append each run as it ends; resume an interrupted run)

``run`` builds what is missing (cached), runs every controller on every selected entry and
seed with teleporting off on Dask (local cluster by default), shows a progress bar, and prints
the verdicts of :mod:`scenarios.corpus.run`; the last two lines are
``corpus_worst_adaptive_vs_best_baseline: VALUE`` and ``corpus_geomean_adaptive_vs_sumo: VALUE``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.commands._sumo_args import console, progress_bar

if TYPE_CHECKING:
    from scenarios.sweep import RunOutcome

__all__ = ["register", "run", "DEFAULT_CACHE"]

DEFAULT_CACHE = Path("out/corpus")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "corpus",
        help="build, list or run the corpus of real and generated networks",
        description="The development corpus: real-city SUMO scenarios and generated irregular networks at three "
        "demand levels. 'run' compares every controller on each with teleporting off, on Dask.",
    )
    p.add_argument("action", choices=("build", "list", "run"))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, metavar="DIR", help=f"build cache ({DEFAULT_CACHE})")
    p.add_argument("--family", choices=("real", "generated"), action="append", help="only this family (repeatable)")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN", help="entry names (shell patterns)")
    p.add_argument("--controllers", default="sumo,webster,actuated,max-pressure,adaptive", help="comma-separated")
    p.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds 1..N (default 5)")
    p.add_argument("--end", type=float, metavar="S", help="horizon override (default: each entry's own)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="local Dask worker processes (2)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: a local cluster)")
    p.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="give up on a run after S s")
    p.add_argument("--in-process", action="store_true", help="no Dask: one run after another here (debugging)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the per-run and summarised results as JSON")
    p.add_argument("--markdown", type=Path, metavar="PATH", help="write the report (docs/results/corpus.md)")
    p.add_argument(
        "--runs-log",
        type=Path,
        metavar="PATH",
        help="append each finished run to this JSON-lines file as it ends; runs already in it are not run again "
        "(a whole-corpus run takes hours: an interrupted one resumes where it stopped)",
    )
    p.set_defaults(func=run)


def _warn(msg: str) -> None:
    print(f"greenwave corpus: warning: {msg}", file=sys.stderr)


#: What the runs log keeps of each run: the judged KPIs and the junctions left on their own program.
_LOGGED = ("mean_delay_s", "p95_delay_s", "unfinished_veh", "throughput_veh", "teleports")


def _append_run(path: Path, res: RunOutcome) -> None:
    kpis = None
    if res.kpis is not None:  # res.ok
        kpis = {k: res.kpis.get(k) for k in _LOGGED}
        kpis["meta"] = {"unmodelled": res.kpis.get("meta", {}).get("unmodelled", [])}
    row = {"entry": res.job.tag, "controller": res.job.controller, "seed": res.job.seed, "error": res.error,
           "kpis": kpis}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _read_runs_log(path: Path, jobs: list[Any]) -> list[Any]:
    """Outcomes of this run's jobs already in the log (successful ones; failed runs are run again)."""
    from scenarios.sweep import RunOutcome

    if not path.is_file():
        return []
    by_key = {(j.tag, j.controller, j.seed): j for j in jobs}
    out: dict[tuple[str, str, int], Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption
        key = (row.get("entry"), row.get("controller"), row.get("seed"))
        if key in by_key and row.get("kpis") is not None:
            out[key] = RunOutcome(by_key[key], row["kpis"], None, 1, 0.0)
    return list(out.values())


def run(args: argparse.Namespace) -> int:
    from intersections.errors import InputError
    from scenarios.corpus.run import corpus_entries, corpus_jobs, select, summarise_corpus
    from scenarios.sweep import execute

    families = tuple(args.family or ("real", "generated"))
    t0 = time.perf_counter()
    entries = select(corpus_entries(args.cache, families=families, warn=_warn), args.only)
    if args.action == "build":
        console.print(f"corpus: {len(entries)} entries built in {args.cache} ({time.perf_counter() - t0:.0f} s)")
        return 0
    if args.action == "list":
        for e in entries:
            print(f"{e.name}\t{e.n_signals} signals\t{','.join(e.features) or '-'}\t{e.sumocfg}")
        return 0
    if not entries:
        raise InputError("no corpus entry matches" + (f" {' '.join(args.only)}" if args.only else ""))
    if args.seeds < 1:
        raise InputError("--seeds must be >= 1")
    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    from controller.policies import policy_names

    unknown = [c for c in controllers if c not in policy_names()]
    if unknown:
        raise InputError(f"unknown controller(s) {', '.join(unknown)} (see greenwave controllers)")
    seeds = list(range(1, args.seeds + 1))
    jobs = corpus_jobs(entries, controllers, seeds, end_s=args.end)
    done_before = _read_runs_log(args.runs_log, jobs) if args.runs_log else []
    skip = {(o.job.tag, o.job.controller, o.job.seed) for o in done_before}
    todo = [j for j in jobs if (j.tag, j.controller, j.seed) not in skip]
    with progress_bar() as bar:
        task = bar.add_task(f"corpus: {len(entries)} entries x {len(controllers)} x {len(seeds)}", total=len(jobs))
        bar.update(task, completed=len(done_before))

        def on_done(res: RunOutcome, done: int, total: int) -> None:
            if not res.ok:
                first = (res.error or "").splitlines()[0] if res.error else ""
                bar.console.print(
                    f"  [red]failed[/red] {res.job.tag} / {res.job.controller} seed {res.job.seed}: {first}"
                )
            if args.runs_log:
                _append_run(args.runs_log, res)
            bar.update(task, completed=len(done_before) + done)

        fresh = (
            execute(
                todo,
                scheduler=args.scheduler,
                workers=args.workers,
                in_process=args.in_process,
                timeout_s=args.timeout,
                progress=on_done,
            )
            if todo
            else []
        )
        outcomes = done_before + fresh
    doc = summarise_corpus(entries, outcomes)
    doc.update({"seeds": len(seeds), "end_s": args.end, "controllers": controllers, "wall_s": time.perf_counter() - t0})
    _write_reports(args, doc, outcomes)
    _print_verdicts(doc)
    return 0


def _write_reports(args: argparse.Namespace, doc: dict[str, Any], outcomes: list[Any]) -> None:
    """``--json`` (the summary and every run's scalar KPIs) and ``--markdown`` (the report)."""
    from scenarios.corpus.run import markdown_report

    command = "greenwave corpus run " + " ".join(shlex.quote(a) for a in sys.argv[3:]) if len(sys.argv) > 2 else ""
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        runs = [
            {"entry": o.job.tag, "controller": o.job.controller, "seed": o.job.seed, "error": o.error,
             "kpis": {k: v for k, v in (o.kpis or {}).items() if not isinstance(v, dict)}}
            for o in outcomes
        ]  # fmt: skip
        args.json.write_text(json.dumps({**doc, "runs": runs}, indent=1, default=str), encoding="utf-8")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown_report(doc, command=command), encoding="utf-8")


def _print_verdicts(doc: dict[str, Any]) -> None:
    """One line per entry, then the corpus's headline figures last, one per line, as ``name: value``."""
    s = doc["summary"]
    for r in doc["entries"]:
        verdict = ""
        if "delay_ok" in r:
            verdict = "ok" if r["delay_ok"] and r["p95_ok"] and r["unfinished_ok"] else "MISSED"
        a = r["controllers"].get("adaptive", {})
        print(
            f"{r['name']}: best={r.get('best_baseline')} adaptive_vs_best={a.get('vs_best', float('nan')):.2f} "
            f"adaptive_vs_sumo={a.get('vs_sumo', float('nan')):.2f} {verdict}"
            + (f" gridlock={','.join(r['gridlock'])}" if r.get("gridlock") else "")
        )
    print(f"entries_judged: {s['judged']}")
    print(f"failed_runs: {s['failed_runs']}")
    print(f"corpus_worst_adaptive_vs_best_baseline: {s['worst_adaptive_vs_best_baseline']:.3f}")
    print(f"corpus_geomean_adaptive_vs_sumo: {s['geomean_adaptive_vs_sumo']:.3f}")
