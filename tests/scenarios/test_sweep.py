"""Sweeps on Dask: grids, the best combination, retries and failures on a real local cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main
from intersections.errors import InputError
from scenarios.runs import RunJob
from scenarios.sweep import RunOutcome, execute, parse_param, summarise, sweep_jobs

TINY = """
name = "tiny"
description = "2 x 2 signalised grid, flat demand, 5 min (sweep tests)"
[horizon]
begin_s = 0
end_s = 300
[network]
generator = "grid"
x_number = 2
y_number = 2
x_length_m = 150
y_length_m = 150
attach_length_m = 120
lanes = 2
speed_m_s = 13.89
lane_width_m = 3.2
[tls]
type = "static"
[demand]
slice_s = 300
arrivals = "uniform"
jitter = 0.1
profile = [[0, 1.0], [300, 1.0]]
mix = { motorcycle = 0.8, car = 0.2 }
[demand.grid]
x_entry_peak_veh_h = 400
y_entry_peak_veh_h = 300
through = 0.8
left = 0.1
right = 0.1
[sumo]
step_length_s = 1.0
time_to_teleport_s = 300
[vtypes.motorcycle]
vClass = "motorcycle"
length = 1.9
width = 0.7
minGap = 1.0
maxSpeed = 16.7
[vtypes.car]
vClass = "passenger"
length = 4.5
minGap = 2.5
maxSpeed = 16.7
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY, encoding="utf-8")
    return p


def test_parse_param_converts_values() -> None:
    assert parse_param("min_stage_s=3,5,8") == ("min_stage_s", [3, 5, 8])
    assert parse_param("passage_s=2.5,3") == ("passage_s", [2.5, 3])
    assert parse_param("controller=actuated,max-pressure") == ("controller", ["actuated", "max-pressure"])
    assert parse_param("flag=true,false") == ("flag", [True, False])
    for bad in ("min_stage_s", "=3", "x=", "x=1,1"):
        with pytest.raises(InputError):
            parse_param(bad)


def test_sweep_jobs_expand_the_grid_and_check_parameters() -> None:
    combos, jobs = sweep_jobs("arterial", "max-pressure", {"min_stage_s": [3, 5], "demand_scale": [1.0, 1.2]}, [1, 2])
    assert len(combos) == 4 and len(jobs) == 8
    assert {j.demand_scale for j in jobs} == {1.0, 1.2}
    assert all("demand_scale" not in j.params for j in jobs)
    assert jobs[0].params == {"min_stage_s": 3} and jobs[0].tag == "combo-0"
    _, jobs = sweep_jobs("arterial", "max-pressure", {"controller": ["actuated", "sumo"]}, [1])
    assert [j.controller for j in jobs] == ["actuated", "sumo"]
    with pytest.raises(InputError, match="does not take"):
        sweep_jobs("arterial", "max-pressure", {"no_such_param": [1]}, [1])
    with pytest.raises(InputError, match="unknown controller"):
        sweep_jobs("arterial", "max-pressure", {"controller": ["nope"]}, [1])


def _out(tag: str, seed: int, delay: float | None) -> RunOutcome:
    job = RunJob("s", "c", seed, tag=tag)
    kpis = None if delay is None else {"mean_delay_s": delay, "throughput_veh": 10.0}
    return RunOutcome(job, kpis, None if kpis else "boom", 2 if kpis is None else 1, 1.0)


def test_summary_marks_the_best_complete_combination() -> None:
    combos = [{"x": 1}, {"x": 2}, {"x": 3}]
    outs = [_out("combo-0", 1, 30.0), _out("combo-0", 2, 34.0), _out("combo-1", 1, 20.0), _out("combo-1", 2, 22.0),
            _out("combo-2", 1, 5.0), _out("combo-2", 2, None)]  # fmt: skip
    rows = summarise(combos, outs, kpis=("mean_delay_s", "throughput_veh"))
    assert [r["mean_delay_s"] for r in rows] == [32.0, 21.0, 5.0]
    assert [r["best"] for r in rows] == [False, True, False]  # combo 3 lost a run: not eligible
    assert rows[2]["failed"] == [{"seed": 2, "error": "boom"}]
    assert rows[0]["mean_delay_s_sd"] == pytest.approx(2.8284, abs=1e-3)
    high = summarise(combos[:2], outs[:4], objective="throughput_veh", kpis=("throughput_veh",))
    assert sum(r["best"] for r in high) == 1


@pytest.mark.slow
def test_retry_once_then_report_and_keep_the_rest_on_a_local_cluster(tmp_path: Path) -> None:
    """A run that always fails is reported after two attempts; a worker killed mid-run is retried."""
    from gw_sweep_tasks import fake_run

    jobs = [
        RunJob("s", "c", 1, {"x": 1}, tag="ok"),
        RunJob("s", "c", 2, tag="fail"),
        RunJob("s", "c", 3, {"marker": str(tmp_path / "died")}, tag="die-once"),
        RunJob("s", "c", 4, tag="ok"),
    ]
    seen: list[int] = []
    outs = execute(jobs, workers=2, task=fake_run, progress=lambda r, d, n: seen.append(d))
    assert seen == [1, 2, 3, 4]
    assert [o.ok for o in outs] == [True, False, True, True]
    assert outs[0].kpis == {"mean_delay_s": 2.0, "meta": outs[0].kpis["meta"]}  # type: ignore[index]
    assert outs[1].attempts == 2 and "SUMO failed to start" in (outs[1].error or "")
    assert outs[2].attempts == 2 and (tmp_path / "died").exists()  # first attempt killed its worker


@pytest.mark.sumo
@pytest.mark.slow
def test_sweep_command_on_a_local_dask_cluster(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    code = main(["sweep", str(tiny), "--controller", "actuated", "--param", "passage_s=1.5,4", "--seeds", "1",
                 "--out", str(out), "--timeout", "300"])  # fmt: skip
    assert code == 0
    doc = json.loads((out / "sweep.json").read_text())
    rows = doc["per_scenario"]["tiny"]
    assert [r["combo"] for r in rows] == [{"passage_s": 1.5}, {"passage_s": 4}]
    assert all(r["ok"] == 1 and r["mean_delay_s"] > 0 for r in rows)
    assert sum(r["best"] for r in rows) == 1
    best = min(rows, key=lambda r: r["mean_delay_s"])
    assert best["best"] and doc["best"]["combo"] == best["combo"]
    csv = (out / "sweep.csv").read_text().splitlines()
    assert csv[0].startswith("scenario,passage_s,runs,ok,mean_delay_s") and len(csv) == 3
    assert "★" in (out / "sweep.md").read_text()


@pytest.mark.sumo
def test_a_scenario_that_fails_to_start_is_reported_in_process(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text(TINY.replace('generator = "grid"', 'generator = "spiral"'), encoding="utf-8")
    outs = execute([RunJob(str(bad), "actuated", 1)], in_process=True)
    assert not outs[0].ok and outs[0].attempts == 2 and "generator" in (outs[0].error or "")


@pytest.mark.sumo
def test_optimize_tune_picks_the_best_parameters_over_seeds(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned.json"
    code = main(["optimize", "--tune", "--scenario", str(tiny), "--controller", "max-pressure",
                 "--param", "min_stage_s=3,12", "--seeds", "2", "--in-process", "--out", str(out)])  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    assert [r["combo"] for r in rows] == [{"min_stage_s": 3}, {"min_stage_s": 12}]
    assert all(r["ok"] == r["runs"] == 2 for r in rows)
    best = min(rows, key=lambda r: r["mean_delay_s"])
    assert doc["best"] == best["combo"] and doc["controller"] == "max-pressure"


def test_optimize_still_requires_demand_without_tune(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["optimize", "--net", "x.net.xml", "--out", "p.json"])
    assert e.value.code == 2 and "--demand" in capsys.readouterr().err


def test_margin_note_pairs_the_seeds() -> None:
    from api.commands.sweep import margin_note

    a = {"ok": 3, "runs": 3, "mean_delay_s": 12.0, "per_seed": {"1": 10.0, "2": 12.0, "3": 14.0}}
    b = {"ok": 3, "runs": 3, "mean_delay_s": 13.5 - 1 / 3, "per_seed": {"1": 11.0, "2": 13.0, "3": 15.5}}
    # per-seed differences -1, -1, -1.5: mean 1.17 ahead, paired standard error 0.17 -> clear
    note = margin_note([b, a], "mean_delay_s", lower=True)
    assert note.startswith("best ahead of the runner-up by 1.17 ± 0.17") and note.endswith("a clear difference")
    b["per_seed"] = {"1": 14.0, "2": 9.0, "3": 16.5}  # same mean, noisy differences 4, -3, 2.5
    assert margin_note([b, a], "mean_delay_s", lower=True).endswith("within seed-to-seed noise")
