"""One simulation run as data, and how to run it in a fresh process.

A :class:`RunJob` names everything a run depends on (scenario, controller
and its parameters, seed, demand scale, horizon), so the regression suite,
sweeps and tuning describe their work as lists of jobs and hand them to
:mod:`scenarios.sweep`, which runs them on Dask.

libsumo allows one simulation per process at a time, and a crashing SUMO
takes its process down with it. So every job runs in **its own fresh
process**, started by whichever worker picked the task up: two simulations
never share a process, and a crash costs one run, not the worker.
:func:`run_job_isolated` is what the workers call:

* where the worker may have children, a process forked from a
  ``multiprocessing`` **forkserver** that has imported greenwave, libsumo
  and sumolib once but never started a simulation (a fresh process in a few
  milliseconds instead of a second of interpreter start-up and imports);
* otherwise (a daemonic worker of someone else's cluster) a new
  interpreter, ``python -m scenarios.runs JOB.json RESULT.json``
  (:func:`run_job_subprocess`).

:func:`run_job` is the same run in the calling process (for debugging, and
for tests that patch a policy). Runs use ``PYTHONHASHSEED=0`` (and are
tested not to depend on it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from intersections.errors import GreenwaveError, SimulationError

__all__ = ["RunJob", "RunFailed", "run_job", "run_job_isolated", "run_job_subprocess", "job_key"]


class RunFailed(SimulationError):
    """A run that did not produce KPIs (SUMO failed to start, crashed, timed out, ...)."""


@dataclass(frozen=True)
class RunJob:
    """Everything one run depends on.

    ``params``: the controller's parameters (``make_policy(controller, **params)``);
    ``demand_scale``: SUMO ``--scale`` (1 = the scenario's demand);
    ``end_s``: horizon override (None = the scenario's);
    ``events``: also write the controller's event log (and its detector
    configuration) and add the event-based measures to the KPIs;
    ``out_dir``: keep SUMO's outputs and the event log there;
    ``build_dir``: an already built scenario folder (built here when absent);
    ``sumo_args``: SUMO options, verbatim (e.g. ``--time-to-teleport -1``).
    A ``scenario`` ending in ``.sumocfg`` is a ready SUMO configuration (the corpus) and
    runs as it is.
    """

    scenario: str
    controller: str
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)
    demand_scale: float = 1.0
    end_s: float | None = None
    events: bool = False
    out_dir: str | None = None
    build_dir: str | None = None
    tag: str = ""
    sumo_args: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = dict(self.params)
        d["sumo_args"] = list(self.sumo_args)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunJob:
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["sumo_args"] = tuple(kw.get("sumo_args", ()))
        return cls(**kw)

    def describe(self) -> str:
        p = ", ".join(f"{k}={v}" for k, v in self.params.items())
        scale = f" x{self.demand_scale:g}" if self.demand_scale != 1.0 else ""
        return (
            f"{Path(self.scenario).stem}{scale} / {self.controller}" + (f" ({p})" if p else "") + f" seed {self.seed}"
        )


def job_key(job: RunJob) -> str:
    """A stable text key of a job (for Dask task keys and result tables)."""
    return json.dumps(job.to_json(), sort_keys=True, default=str)


def run_job(job: RunJob) -> dict[str, Any]:
    """Run ``job`` in this process and return its KPIs (``simulation.kpi`` keys, plus event measures)."""
    from scenarios.specs import resolve_run
    from simulation.detectors import generate_detectors
    from simulation.runner import load_run_network, simulate

    with tempfile.TemporaryDirectory(prefix="gw-job-") as tmp:
        build = job.build_dir if job.build_dir and Path(job.build_dir).is_dir() else str(Path(tmp) / "scenario")
        sumo_args = ("--scale", f"{job.demand_scale:g}") if job.demand_scale != 1.0 else ()
        sumo_args = (*sumo_args, *job.sumo_args)
        if job.scenario.endswith(".sumocfg"):
            spec = resolve_run(sumocfg=job.scenario, seed=job.seed, end_s=job.end_s, sumo_args=sumo_args)
        else:
            spec = resolve_run(
                scenario=job.scenario, scenario_dir=build, seed=job.seed, end_s=job.end_s, sumo_args=sumo_args
            )
        out = Path(job.out_dir).resolve() if job.out_dir else None  # SUMO resolves outputs against add files
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        events_path = None
        if job.events:
            events_path = (out or Path(tmp)) / "events.csv.gz"
        network = load_run_network(spec)
        kpis = simulate(
            spec, job.controller, out_dir=out, params=dict(job.params), events_path=events_path, network=network
        )
        if events_path is not None:
            from scenarios.atspm import config_from_network, network_measures, read_events, save_detector_config
            from scenarios.atspm.detectors import sidecar_path

            det = generate_detectors(network, spec.net, Path(tmp) / "detectors.add.xml")
            configs = config_from_network(det.network)
            if out is not None:
                save_detector_config(configs, sidecar_path(events_path))
            kpis.update(network_measures(read_events(events_path), configs))
    kpis["meta"]["demand_scale"] = job.demand_scale
    kpis["meta"]["params"] = dict(job.params)
    from scenarios.atspm.report import json_safe

    return json_safe(kpis)


def _tail(text: str, lines: int = 6) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def run_job_subprocess(job: RunJob | Mapping[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]:
    """Run ``job`` in a fresh ``python -m scenarios.runs`` process; raise :class:`RunFailed` with the reason.

    Returns the KPIs with ``meta.process_s`` (wall time of the whole process,
    start-up and imports included) added.
    """
    job = job if isinstance(job, RunJob) else RunJob.from_json(job)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="gw-run-") as tmp:
        jf, rf = Path(tmp) / "job.json", Path(tmp) / "result.json"
        jf.write_text(json.dumps(job.to_json()), encoding="utf-8")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "scenarios.runs", str(jf), str(rf)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RunFailed(f"{job.describe()}: no result after {timeout_s:g} s (killed)") from None
        wall = time.perf_counter() - t0
        result = json.loads(rf.read_text(encoding="utf-8")) if rf.is_file() else None
    if result and "kpis" in result:
        result["kpis"]["meta"]["process_s"] = round(wall, 3)
        return result["kpis"]
    if result and "error" in result:
        raise RunFailed(f"{job.describe()}: {result['error']}")
    why = f"the run process exited with code {proc.returncode}"
    if proc.returncode < 0:
        why = f"the run process was killed by signal {-proc.returncode}"
    tail = _tail(proc.stderr)
    raise RunFailed(f"{job.describe()}: {why}" + (f"\n{tail}" if tail else ""))


# Imported once by the forkserver, so that every forked run starts with them loaded.
_PRELOAD = [
    "numpy",
    "libsumo",
    "sumolib",
    "scenarios.runs",
    "simulation.runner",
    "simulation.detectors",
    "intersections.loaders.sumo_net",
    "controller.policies",
    "scenarios.library",
    "scenarios.atspm",
]


def _forked_run(job_json: dict[str, Any], conn: Any) -> None:
    """Body of a forked run process: run, send ``("ok", kpis)`` or ``("error", message)``, exit."""
    from controller.policies import policy_names

    policy_names()  # the built-in policies, imported in the server already when preloaded
    try:
        conn.send(("ok", run_job(RunJob.from_json(job_json))))
    except GreenwaveError as e:
        conn.send(("error", str(e)))
    except Exception as e:  # reported with its traceback tail, never hangs the worker
        conn.send(("error", f"{type(e).__name__}: {e}\n{_tail(traceback.format_exc(), 4)}"))
    finally:
        conn.close()


_forkserver_ready = False


def _forkserver() -> Any:
    import multiprocessing as mp

    global _forkserver_ready
    ctx = mp.get_context("forkserver")
    if not _forkserver_ready:
        os.environ["PYTHONHASHSEED"] = "0"  # the server, hence every forked run, hashes strings the same way
        ctx.set_forkserver_preload(_PRELOAD)
        _forkserver_ready = True
    return ctx


def _can_fork_children() -> bool:
    import multiprocessing as mp

    return sys.platform != "win32" and not mp.current_process().daemon


def run_job_isolated(job: RunJob | Mapping[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]:
    """Run ``job`` in a fresh process (module docstring); raise :class:`RunFailed` with the reason.

    Returns the KPIs with ``meta.process_s`` (wall time of the whole run
    process, start-up included) added.
    """
    job = job if isinstance(job, RunJob) else RunJob.from_json(job)
    if not _can_fork_children():
        return run_job_subprocess(job, timeout_s=timeout_s)
    ctx = _forkserver()
    recv, send = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_forked_run, args=(job.to_json(), send), name=f"gw-run-{job.seed}")
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout_s):
            proc.kill()
            raise RunFailed(f"{job.describe()}: no result after {timeout_s:g} s (killed)")
        try:
            status, payload = recv.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode
            why = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            raise RunFailed(f"{job.describe()}: the run process {why}") from None
    finally:
        recv.close()
        proc.join()
        proc.close()
    if status != "ok":
        raise RunFailed(f"{job.describe()}: {payload}")
    payload["meta"]["process_s"] = round(time.perf_counter() - t0, 3)
    return payload


def _main(argv: list[str]) -> int:
    job_file, result_file = Path(argv[0]), Path(argv[1])
    job = RunJob.from_json(json.loads(job_file.read_text(encoding="utf-8")))
    try:
        kpis = run_job(job)
    except GreenwaveError as e:
        result_file.write_text(json.dumps({"error": str(e)}), encoding="utf-8")
        return 1
    except Exception as e:  # report anything else with its traceback tail, never hang the worker
        tb = _tail(traceback.format_exc(), 4)
        result_file.write_text(json.dumps({"error": f"{type(e).__name__}: {e}\n{tb}"}), encoding="utf-8")
        return 1
    result_file.write_text(json.dumps({"kpis": kpis}), encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover - the subprocess entry point
    sys.exit(_main(sys.argv[1:]))
