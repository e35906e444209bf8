"""What a user asks to run becomes a run spec above the simulator (scenarios/specs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intersections.errors import InputError
from scenarios.specs import resolve_run
from simulation.runner import resolve_run as resolve_sumo_run


def test_a_library_scenario_is_built_and_carries_its_name_corridor_horizon_and_faults(tmp_path: Path) -> None:
    spec = resolve_run(scenario="detector_faults", scenario_dir=tmp_path, seed=3)
    assert spec.name == "detector_faults" and spec.sumocfg == (tmp_path / "detector_faults.sumocfg").resolve()
    assert spec.seed == 3 and spec.begin_s == 0 and spec.end_s is not None and spec.end_s > 0
    assert spec.extra["faults"]["detector_fail_fraction"] > 0
    assert resolve_run(scenario="arterial", scenario_dir=tmp_path / "a", end_s=600.0).corridor[0] == "J1"
    assert resolve_run(scenario="arterial", scenario_dir=tmp_path / "a", end_s=600.0).end_s == 600.0


def test_sumo_files_pass_through_to_the_simulator(tmp_path: Path) -> None:
    built = resolve_run(scenario="demo", scenario_dir=tmp_path)
    direct = resolve_run(sumocfg=built.sumocfg)
    assert direct == resolve_sumo_run(sumocfg=built.sumocfg) and direct.name == "demo"


@pytest.mark.parametrize("kw", [{}, {"scenario": "demo", "net": "x.net.xml"}, {"sumocfg": "a", "net": "b"}])
def test_exactly_one_input_is_asked_for(kw: dict) -> None:
    with pytest.raises(InputError, match=r"exactly one of --sumocfg, --net \(with --routes\) or --scenario"):
        resolve_run(**kw)


def test_the_simulator_alone_knows_no_scenarios() -> None:
    with pytest.raises(InputError, match="exactly one"):
        resolve_sumo_run()
