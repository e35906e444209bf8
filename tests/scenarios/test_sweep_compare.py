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


@pytest.mark.sumo
def test_seeds_that_gave_the_same_run_are_said_to_have(tmp_path: Path) -> None:
    """Vehicles that draw nothing at random (speedFactor fixed, as TAVF-Hamburg's all are) in SUMO's meso:
    every seed is the same run, and the report says the ± 0.0 is no measured spread. The same flows
    with SUMO's default speed deviation differ by seed and get no such note."""
    import sumo_nets

    net = sumo_nets.grid(tmp_path, n=2)
    flows = sumo_nets.flows(tmp_path, net, veh_h=400.0, end_s=200.0).read_text()
    docs = {}
    for case, spread in (("fixed", ' speedDev="0" sigma="0"'), ("drawn", "")):
        routes = tmp_path / f"{case}.rou.xml"
        routes.write_text(flows.replace('vClass="passenger"', f'vClass="passenger"{spread}')
                          .replace('vClass="motorcycle"', f'vClass="motorcycle"{spread}')
                          .replace('vClass="bus"', f'vClass="bus"{spread}'))  # fmt: skip
        cfg = tmp_path / f"{case}.sumocfg"
        cfg.write_text(
            f'<configuration><input><net-file value="{net.name}"/><route-files value="{routes.name}"/></input>'
            "</configuration>"
        )
        out, md = tmp_path / f"{case}.json", tmp_path / f"{case}.md"
        code = main(["compare", str(cfg), "--controllers", "sumo", "--seeds", "2", "--model", "meso", "--end", "240",
                     "--in-process", "--json", str(out), "--markdown", str(md)])  # fmt: skip
        assert code == 0
        docs[case] = (json.loads(out.read_text()), md.read_text())
    fixed, fixed_md = docs["fixed"]
    assert fixed["identical_seeds"] == ["sumo"] and "every seed gave the same run for sumo" in fixed_md
    drawn, drawn_md = docs["drawn"]
    rows = drawn["controllers"]["sumo"]["per_seed"]
    assert rows[0]["mean_delay_s"] != rows[1]["mean_delay_s"]
    assert "identical_seeds" not in drawn and "same run" not in drawn_md
