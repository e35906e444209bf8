"""Many independent runs on Dask distributed: sweeps, tuning and the regression suite.

:func:`execute` runs a list of :class:`~scenarios.runs.RunJob` on a Dask
cluster: a :class:`distributed.LocalCluster` of ``workers`` single-threaded
worker processes by default, or the scheduler at ``scheduler`` (a real
cluster; its workers need greenwave installed and, for the scenario cache,
the same filesystem, else each run builds its scenario itself). Each task
starts one fresh process for its one simulation
(:func:`scenarios.runs.run_job_isolated`), so libsumo's
one-simulation-per-process rule holds whatever the worker's threads, and a
SUMO crash costs a run, not a worker.

Failures: a run that fails (SUMO does not start, crashes, times out) or
whose worker dies is retried once (``retries``) on any worker, then
reported with the reason; every other result is kept. On the local cluster
the scheduler's own retry of tasks whose worker died is turned off, so "once"
means once.

:func:`sweep_jobs` expands ``--param NAME=v1,v2`` grids; :func:`summarise`
averages KPIs over seeds per combination and marks the best.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from intersections.errors import InputError
from scenarios.runs import RunFailed, RunJob, run_job, run_job_isolated

__all__ = [
    "RunOutcome",
    "execute",
    "dask_client",
    "parse_param",
    "sweep_jobs",
    "summarise",
    "prebuild",
    "KPI_DIRECTION",
    "SPECIAL_PARAMS",
]

# Which way is better, per KPI (used to pick the best combination and by the regression suite).
KPI_DIRECTION: dict[str, str] = {
    "mean_delay_s": "lower",
    "p95_delay_s": "lower",
    "mean_travel_time_s": "lower",
    "mean_waiting_time_s": "lower",
    "mean_stops": "lower",
    "throughput_veh": "higher",
    "unfinished_veh": "lower",
    "teleports": "lower",
    "bus_person_delay_s": "lower",
    "aog_pct": "higher",
    "platoon_ratio": "higher",
    "atspm_delay_s": "lower",
    "safety_events": "lower",
}
# --param names that are not controller parameters.
SPECIAL_PARAMS = ("controller", "demand_scale")


@dataclass(frozen=True)
class RunOutcome:
    job: RunJob
    kpis: dict[str, Any] | None
    error: str | None
    attempts: int
    wall_s: float  # first submission to final result, as the driver saw it

    @property
    def ok(self) -> bool:
        return self.kpis is not None


Progress = Callable[[RunOutcome, int, int], None]


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A ``distributed.Client``: on ``scheduler``, or on a local cluster of ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise InputError(f"cannot reach the Dask scheduler: {e}", where=scheduler) from None
        with client:
            yield client
        return
    if workers < 1:
        raise InputError("--workers must be >= 1")
    with (
        # One retry policy (ours), and workers that may fork the run processes (scenarios.runs).
        dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": False}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # an ephemeral port: never collides with another cluster on the machine
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _outcome(job: RunJob, kpis: dict[str, Any] | None, error: str | None, attempts: int, t0: float) -> RunOutcome:
    return RunOutcome(job, kpis, error, attempts, round(time.perf_counter() - t0, 3))


def _error_text(exc: BaseException) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return "the worker running it died (killed, out of memory or crashed)"
    if isinstance(exc, RunFailed):
        text = str(exc)
        return text.split(": ", 1)[1] if ": " in text else text
    return f"{type(exc).__name__}: {exc}"


def execute(
    jobs: Sequence[RunJob],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    in_process: bool = False,
    retries: int = 1,
    timeout_s: float | None = None,
    progress: Progress | None = None,
    client: Any = None,
    task: Callable[..., dict[str, Any]] | None = None,
) -> list[RunOutcome]:
    """Run every job; outcomes in the order of ``jobs`` (module docstring).

    ``in_process``: run them one after another in this process instead (no
    Dask; for debugging and for tests that patch a policy). ``client``: an
    existing ``distributed.Client`` to use. ``task``: what a worker calls
    with ``(job_json, timeout_s=...)`` (default
    :func:`scenarios.runs.run_job_isolated`).
    """
    if in_process:
        return _execute_here(jobs, retries, progress)
    if client is not None:
        return _execute_dask(client, jobs, retries, timeout_s, progress, task or run_job_isolated)
    with dask_client(scheduler, workers) as c:
        return _execute_dask(c, jobs, retries, timeout_s, progress, task or run_job_isolated)


def _execute_here(jobs: Sequence[RunJob], retries: int, progress: Progress | None) -> list[RunOutcome]:
    out: list[RunOutcome] = []
    for job in jobs:
        t0 = time.perf_counter()
        err = None
        kpis = None
        attempts = 0
        for attempts in range(1, retries + 2):  # noqa: B007 - attempts is read after the loop
            try:
                kpis = run_job(job)
                break
            except Exception as e:  # reported, never raised: the other runs go on
                err = _error_text(e)
        res = _outcome(job, kpis, None if kpis is not None else err, attempts, t0)
        out.append(res)
        if progress:
            progress(res, len(out), len(jobs))
    return out


def _execute_dask(
    client: Any,
    jobs: Sequence[RunJob],
    retries: int,
    timeout_s: float | None,
    progress: Progress | None,
    task: Callable[..., dict[str, Any]],
) -> list[RunOutcome]:
    from distributed import as_completed

    t0 = time.perf_counter()
    index: dict[str, tuple[int, int]] = {}  # future key -> (job index, attempt)

    def submit(i: int, attempt: int) -> Any:
        fut = client.submit(task, jobs[i].to_json(), timeout_s=timeout_s, pure=False, key=f"gw-run-{i}-try{attempt}")
        index[fut.key] = (i, attempt)
        return fut

    results: list[RunOutcome | None] = [None] * len(jobs)
    pending = as_completed([submit(i, 1) for i in range(len(jobs))])
    done = 0
    for fut in pending:
        i, attempt = index[fut.key]
        if fut.status == "finished":
            res = _outcome(jobs[i], fut.result(), None, attempt, t0)
        else:
            exc = fut.exception()
            if attempt <= retries:
                pending.add(submit(i, attempt + 1))
                fut.release()
                continue
            res = _outcome(jobs[i], None, _error_text(exc), attempt, t0)
        fut.release()
        results[i] = res
        done += 1
        if progress:
            progress(res, done, len(jobs))
    return [r for r in results if r is not None]


# --------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------
def _value(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def parse_param(spec: str) -> tuple[str, list[Any]]:
    """``NAME=v1,v2,...`` -> (NAME, [values]); numbers and true/false are converted."""
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise InputError(f"--param takes NAME=v1,v2,..., got {spec!r}")
    vals = [_value(v) for v in values.split(",") if v.strip()]
    if len(set(map(repr, vals))) != len(vals):
        raise InputError(f"--param {name}: repeated values in {values!r}")
    return name, vals


def _check_controller_params(controller: str, params: Mapping[str, Any]) -> None:
    from controller.policies import make_policy

    try:
        make_policy(controller, **params)
    except TypeError as e:
        raise InputError(f"controller {controller!r} does not take these parameters {dict(params)}: {e}") from None
    except ValueError as e:
        raise InputError(f"controller {controller!r}: {e}") from None


def sweep_jobs(
    scenario: str,
    controller: str,
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    *,
    end_s: float | None = None,
) -> tuple[list[dict[str, Any]], list[RunJob]]:
    """Every combination of ``grid`` x every seed, as jobs; the combinations in order.

    ``controller`` and ``demand_scale`` in ``grid`` choose the controller and
    scale the demand; every other name is a parameter of the controller,
    checked by constructing it before anything runs.
    """
    from controller.policies import policy_names

    names = list(grid)
    combos = [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(grid[n] for n in names))] or [{}]
    known = policy_names()
    jobs: list[RunJob] = []
    for k, combo in enumerate(combos):
        ctl = str(combo.get("controller", controller))
        if ctl not in known:
            raise InputError(f"unknown controller {ctl!r} (known: {', '.join(known)})")
        scale = float(combo.get("demand_scale", 1.0))
        if not (scale > 0 and math.isfinite(scale)):
            raise InputError(f"demand_scale must be > 0, got {scale}")
        params = {k: v for k, v in combo.items() if k not in SPECIAL_PARAMS}
        _check_controller_params(ctl, params)
        for seed in seeds:
            jobs.append(RunJob(scenario, ctl, int(seed), params, demand_scale=scale, end_s=end_s, tag=f"combo-{k}"))
    return combos, jobs


def _build(scenario: str, out_dir: str, seed: int) -> str:
    """Build one (scenario, seed) into ``out_dir`` (a cluster task of :func:`prebuild`)."""
    from scenarios.library import build_scenario

    build_scenario(scenario, out_dir, seed=seed)
    return out_dir


def prebuild(jobs: Sequence[RunJob], cache_dir: str | Path, *, client: Any = None) -> list[RunJob]:
    """Build each (scenario, seed) once into ``cache_dir`` and point the jobs at it.

    Builds are deterministic and cached (``scenarios.library``), so runs that
    share a scenario and seed share one folder instead of building it each.
    With a Dask ``client`` the builds are tasks of its cluster, side by side (a
    city's seeds take a minute or more each); without, one after another here.
    A failed build raises its error here, before any run starts.
    """
    cache = Path(cache_dir)
    built: dict[tuple[str, int], str] = {}
    for job in jobs:
        if not job.scenario.endswith(".sumocfg"):  # a ready SUMO configuration (the corpus): nothing to build
            built.setdefault((job.scenario, job.seed), str(cache / f"{Path(job.scenario).stem}-seed{job.seed}"))
    if client is not None and len(built) > 1:
        futures = [client.submit(_build, scn, d, seed, pure=False) for (scn, seed), d in built.items()]
        try:
            client.gather(futures)
        finally:
            for fut in futures:
                fut.release()
    else:
        for (scn, seed), d in built.items():
            _build(scn, d, seed)
    return [job if job.scenario.endswith(".sumocfg") else replace(job, build_dir=built[(job.scenario, job.seed)])
            for job in jobs]  # fmt: skip


def summarise(
    combos: Sequence[Mapping[str, Any]],
    outcomes: Sequence[RunOutcome],
    *,
    objective: str = "mean_delay_s",
    kpis: Sequence[str] = ("mean_delay_s", "p95_delay_s", "mean_travel_time_s", "mean_stops", "throughput_veh",
                           "unfinished_veh", "teleports"),
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per combination (jobs tagged ``combo-K`` by :func:`sweep_jobs`): mean and standard
    deviation of each KPI over its seeds; the best marked.

    The best row has the best mean ``objective`` (direction from
    :data:`KPI_DIRECTION`) among the combinations whose runs all succeeded.
    """
    direction = KPI_DIRECTION.get(objective, "lower")
    rows = []
    for k, combo in enumerate(combos):
        mine = [o for o in outcomes if o.job.tag == f"combo-{k}"]
        ok = [o for o in mine if o.ok]
        row: dict[str, Any] = {"combo": dict(combo), "runs": len(mine), "ok": len(ok), "best": False}
        row["failed"] = [{"seed": o.job.seed, "error": o.error} for o in mine if not o.ok]
        row["per_seed"] = {str(o.job.seed): (o.kpis or {}).get(objective) for o in ok}
        for kpi in dict.fromkeys([objective, *kpis]):
            vals = np.array([o.kpis.get(kpi) for o in ok if o.kpis and o.kpis.get(kpi) is not None], dtype=float)
            row[kpi] = float(vals.mean()) if vals.size else None
            row[f"{kpi}_sd"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0 if vals.size else None
        rows.append(row)
    eligible = [r for r in rows if r["ok"] == r["runs"] and r["runs"] and r.get(objective) is not None]
    if eligible:
        pick = min if direction == "lower" else max
        pick(eligible, key=lambda r: r[objective])["best"] = True
    return rows
