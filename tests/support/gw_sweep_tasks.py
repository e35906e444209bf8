"""Task functions for the Dask sweep tests (importable by worker processes: tests/support is on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scenarios.runs import RunFailed, RunJob


def fake_run(job_json: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
    """Behaves as ``job.tag`` says: ``ok``, ``fail`` (always), ``die-once`` (kills its worker the first time)."""
    job = RunJob.from_json(job_json)
    if job.tag == "fail":
        raise RunFailed(f"{job.describe()}: SUMO failed to start: Error: cannot read network")
    if job.tag == "die-once":
        marker = Path(str(job.params["marker"]))
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies mid-task, as on an out-of-memory kill
    return {"mean_delay_s": float(job.seed) + float(job.params.get("x", 0)), "meta": {"pid": os.getpid()}}
