"""Software in the loop: engine -> Modbus / NTCIP -> emulated controllers -> SUMO, against a direct SUMO run."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.sumo, pytest.mark.slow]

KPIS = ("mean_delay_s", "mean_travel_time_s", "mean_stops", "throughput_veh", "mean_waiting_time_s")


@pytest.fixture(scope="module")
def arterial(tmp_path_factory):
    from scenarios.specs import resolve_run

    out = tmp_path_factory.mktemp("arterial")
    return resolve_run(scenario="arterial", scenario_dir=out, seed=42, end_s=600.0)


_DIRECT: dict[str, dict] = {}


def direct_run(arterial, controller: str, tmp_path_factory) -> dict:
    from simulation.runner import simulate

    if controller not in _DIRECT:
        _DIRECT[controller] = simulate(arterial, controller, out_dir=tmp_path_factory.mktemp(f"direct-{controller}"))
    return _DIRECT[controller]


# actuated: detectors only; adaptive: also the controllers' queues (zone detectors) and, beside the
# controllers, the buses' GPS (the arterial's two bus lines get transit priority on both paths).
@pytest.mark.parametrize("controller", ["actuated", "adaptive"])
@pytest.mark.parametrize("via", ["modbus", "ntcip"])
def test_field_path_loses_nothing(arterial, tmp_path_factory, tmp_path, via: str, controller: str) -> None:
    from api.sil import run_sil

    direct = direct_run(arterial, controller, tmp_path_factory)
    sil = run_sil(arterial, controller, via=via, out_dir=tmp_path / "emu")
    assert sil["meta"]["via"] == via and sil["meta"]["controller"] == controller
    assert sil["meta"]["field_problems"] == {} and sil["meta"]["field_alarms"] == 0
    assert sil["meta"]["central_ticks"] >= 600
    assert sil["meta"]["vehicle_feed_messages"] >= 500
    for k in KPIS:
        a, b = sil[k], direct[k]
        assert abs(a - b) <= 0.05 * max(abs(b), 1e-9), f"{k}: via {via} {a} vs direct {b}"
    assert sil["throughput_veh"] > 100


def test_simulate_cli_accepts_via(tmp_path, capsys) -> None:
    from api.cli import main

    out = tmp_path / "k.json"
    args = ["simulate", "--scenario", "arterial", "--controller", "max-pressure", "--end", "120", "--via", "modbus"]
    code = main([*args, "--json", str(out), "--out-dir", str(tmp_path / "o")])
    assert code == 0
    k = json.loads(out.read_text())
    assert k["meta"]["via"] == "modbus" and k["meta"]["controller"] == "max-pressure"
