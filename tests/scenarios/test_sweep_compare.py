"""``greenwave compare`` on Dask: its runs are sweep jobs, sent to a local cluster or to a scheduler's address."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest

from api.cli import main
from api.commands.compare import compare_jobs
from simulation.meso import MODEL_OPTIONS, Model
from tests.scenarios.test_sweep import TINY


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = dict(scenario="grid4x4", model="micro", sumo_arg=[], end=None, out_dir=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_compare_jobs_carry_the_model_the_horizon_and_the_sumo_options(tmp_path: Path) -> None:
    args = _args(model="meso", end=900.0, sumo_arg=["--time-to-teleport -1"], out_dir=str(tmp_path))
    jobs = compare_jobs(args, ["sumo", "adaptive"], [1, 2])
    assert [(j.controller, j.seed) for j in jobs] == [("sumo", 1), ("adaptive", 1), ("sumo", 2), ("adaptive", 2)]
    assert all(j.end_s == 900.0 and j.scenario == "grid4x4" for j in jobs)
    assert jobs[0].sumo_args == (*MODEL_OPTIONS[Model.MESO], "--time-to-teleport", "-1")
    assert jobs[3].out_dir == str(tmp_path.resolve() / "adaptive-seed2")
    micro = compare_jobs(_args(), ["webster"], [1])
    assert micro[0].sumo_args == () and micro[0].end_s is None and micro[0].out_dir is None


def test_a_scenario_file_is_sent_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiny.toml").write_text(TINY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    jobs = compare_jobs(_args(scenario="tiny.toml"), ["sumo"], [1])
    assert jobs[0].scenario == str(tmp_path / "tiny.toml")


@pytest.mark.sumo
@pytest.mark.slow
def test_compare_runs_on_a_dask_scheduler_address(tmp_path: Path) -> None:
    """A real ``LocalCluster`` started here stands for a cluster: compare is given only its address."""
    from distributed import LocalCluster

    scn = tmp_path / "tiny.toml"
    scn.write_text(TINY, encoding="utf-8")
    out = tmp_path / "cmp.json"
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    ) as cluster:  # fmt: skip
        code = main(["compare", str(scn), "--controllers", "webster", "--seeds", "2", "--model", "meso", "--end", "120",
                     "--scheduler", cluster.scheduler_address, "--cache", str(tmp_path / "cache"),
                     "--json", str(out), "--timeout", "300"])  # fmt: skip
        with cluster.get_client() as client:
            ran = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert code == 0
    assert "gw-run" in ran  # the runs were tasks of that scheduler, not run here
    doc = json.loads(out.read_text())
    assert doc["scenario"] == "tiny" and doc["model"] == "meso" and doc["seeds"] == [1, 2]
    rows = doc["controllers"]["webster"]["per_seed"]
    assert [r["seed"] for r in rows] == [1, 2] and all(r["throughput_veh"] > 0 and r["mean_delay_s"] > 0 for r in rows)
    assert "queue_veh" in doc["estimated"]["webster"]
    # Each seed's scenario was built once, into the cache, by a task of that scheduler (two seeds: side by side).
    assert sorted(d.name for d in (tmp_path / "cache").iterdir()) == ["tiny-seed1", "tiny-seed2"]
    assert "build" in ran
