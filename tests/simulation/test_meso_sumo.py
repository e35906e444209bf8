"""SUMO's mesoscopic model under the engine, for real: a few simulated minutes of a small scenario."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from intersections.errors import InputError
from scenarios.specs import resolve_run
from simulation import meso
from simulation.runner import RunSpec, simulate

pytestmark = pytest.mark.sumo

SCENARIO = "grid4x4"  # 16 signals, built in about a second


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> RunSpec:
    built = tmp_path_factory.mktemp("meso")
    return replace(resolve_run(scenario=SCENARIO, scenario_dir=built, seed=3, end_s=240.0), model="meso")


def test_adaptive_runs_in_meso_on_estimated_queues(spec: RunSpec) -> None:
    seen: list[Any] = []
    kpis = simulate(spec, "adaptive", on_tick=lambda r: seen.append(r.observation))
    meta = kpis["meta"]
    assert meta["model"] == "meso" and meta["safety_events"] == 0
    assert meta["estimated"]["queue_veh"].startswith("estimated: input-output")
    assert meta["estimated"]["exit_blocked"].startswith("unknown")
    assert kpis["throughput_veh"] > 50
    queues = np.array([o.queue_veh for o in seen])
    counts = np.array([o.counts for o in seen])
    # Loops count (the zone entries), the estimate builds queues and lets them go, never below zero.
    assert counts.sum() > 100 and np.isfinite(counts).all()
    assert queues.max() >= 3 and queues.min() >= 0
    per_tick = queues.sum(axis=(1, 2))
    assert (np.diff(per_tick) < 0).any()
    assert np.isnan(seen[-1].exit_blocked).all()
    # The queue KPIs per approach come from the same estimate.
    assert any(a["mean_queue_veh"] > 0 for i in kpis["queues"].values() for a in i.values())


@pytest.mark.slow
def test_meso_and_micro_order_the_controllers_alike(spec: RunSpec) -> None:
    micro = replace(spec, model="micro")
    res = {(m, c): simulate(s, c) for m, s in (("meso", spec), ("micro", micro)) for c in ("sumo", "adaptive")}
    for m in ("meso", "micro"):
        assert res[(m, "adaptive")]["mean_delay_s"] < res[(m, "sumo")]["mean_delay_s"], m
    assert "model" not in res[("micro", "sumo")]["meta"]  # micro's report is what it always was


def test_a_users_mesosim_option_gets_the_meso_backend(spec: RunSpec) -> None:
    kpis = simulate(replace(spec, model="micro", end_s=60.0, sumo_args=("--mesosim", "true")), "sumo")
    assert kpis["meta"]["model"] == "meso"


def test_a_controller_meso_cannot_serve_is_refused_before_sumo_starts(
    spec: RunSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(meso.MESO_FIELDS, "extra", (meso.Provision.ABSENT, "no vehicle positions"))
    with pytest.raises(InputError, match="'adaptive' reads extra") as e:
        simulate(spec, "adaptive", out_dir=tmp_path)
    assert "--model micro" in str(e.value)
    assert not (tmp_path / "sumo.log").exists()
    simulate(replace(spec, end_s=30.0), "max-pressure", out_dir=tmp_path)  # reads no vehicle records


def test_simulate_command_takes_model_meso_and_reports_the_estimates(tmp_path: Path, spec: RunSpec) -> None:
    from api.cli import main

    out = tmp_path / "k.json"
    rc = main(["simulate", "--sumocfg", str(spec.sumocfg), "--model", "meso", "--controller", "adaptive",
               "--end", "60", "--json", str(out)])  # fmt: skip
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["model"] == "meso" and "queue_veh" in doc["meta"]["estimated"]
    assert main(["simulate", "--sumocfg", str(spec.sumocfg), "--model", "meso", "--via", "modbus"]) != 0


def test_sweep_jobs_carry_the_model_in_their_sumo_options(spec: RunSpec) -> None:
    from api.commands.sweep import _with_model
    from scenarios.runs import RunJob, run_job

    (job,) = _with_model([RunJob(str(spec.sumocfg), "adaptive", 1, end_s=60.0)], "meso")
    assert _with_model([job], "micro") == [job]
    assert run_job(job)["meta"]["model"] == "meso"


@pytest.mark.slow
def test_the_control_centre_runs_its_twin_in_meso(tmp_path: Path) -> None:
    from gwlive import LiveServer, wait_for

    from api.server import load_settings

    assert "model: meso runs the twin on backend 'sumo' only" in " ".join(
        load_settings(data_dir=tmp_path, model="meso", backend="modbus").startup_problems()
    )
    with LiveServer(data_dir=tmp_path, backend="sumo", scenario=SCENARIO, model="meso", speed=0.0,
                    controller="adaptive", event_flush_s=0.5) as srv:  # fmt: skip
        wait_for(lambda: srv.runner.sim_time_s >= 120, 60, "two simulated minutes")
        inner = srv.runner.backend.inner
        assert inner.meso is not None
        assert srv.runner.engine.ticks >= 100
        assert (tmp_path / "gw_meso_loops.add.xml").exists()


@pytest.mark.slow
def test_a_hundred_signal_city_runs_a_few_minutes_in_meso_under_adaptive(tmp_path: Path) -> None:
    """CI's city check (issue #18): hanoi_city_small (~130 signals), 4 simulated minutes into its build-up."""
    spec = resolve_run(scenario="hanoi_city_small", scenario_dir=tmp_path, seed=1, begin_s=2400.0, end_s=2640.0)
    seen: list[Any] = []
    kpis = simulate(replace(spec, model="meso"), "adaptive", on_tick=lambda r: seen.append(r.observation))
    assert kpis["meta"]["model"] == "meso" and kpis["meta"]["safety_events"] == 0
    assert seen[0].queue_veh.shape[0] >= 100
    assert kpis["throughput_veh"] + kpis["unfinished_veh"] > 100  # trips are 800 m and more: most still running
    queues = np.array([o.queue_veh for o in seen])
    assert queues.sum(axis=(1, 2))[-1] > 5 and queues.min() >= 0
    assert any(len(o.extra["bus"]) for o in seen)  # buses on their lines, found from their routes
