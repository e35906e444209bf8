"""`greenwave compare` on the three library scenarios, full horizon, one seed (CI, marker sumo).

Checks the documented JSON shape, that every controller ran the whole horizon safely, and the
ordering a traffic engineer expects from this project: greenwave's adaptive control beats the
network's own fixed programs by a wide margin on every scenario.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main

pytestmark = [pytest.mark.sumo, pytest.mark.slow]

CONTROLLERS = "sumo,webster,actuated,max-pressure,adaptive"
KPIS = ("mean_delay_s", "mean_travel_time_s", "mean_waiting_time_s", "mean_stops", "throughput_veh",
        "unfinished_veh", "teleports", "p95_delay_s")  # fmt: skip


@pytest.mark.parametrize("scenario", ["grid4x4", "arterial", "hanoi_mixed"])
def test_compare_full_horizon(scenario: str, tmp_path: Path) -> None:
    out = tmp_path / "cmp.json"
    md = tmp_path / "cmp.md"
    rc = main(["compare", scenario, "--controllers", CONTROLLERS, "--seeds", "1", "--json", str(out),
               "--markdown", str(md), "--out-dir", str(tmp_path / "runs")])  # fmt: skip
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["scenario"] == scenario
    assert list(doc["controllers"]) == CONTROLLERS.split(",")
    for c, res in doc["controllers"].items():
        assert set(KPIS) <= set(res["mean"]), c
        (row,) = res["per_seed"]
        assert row["seed"] == 1 and set(KPIS) <= set(row) and "by_class" in row
        assert row["throughput_veh"] > 1000
    sumo = doc["controllers"]["sumo"]["mean"]["mean_delay_s"]
    adaptive = doc["controllers"]["adaptive"]["mean"]["mean_delay_s"]
    assert adaptive <= 0.70 * sumo, f"adaptive {adaptive:.1f} s vs sumo {sumo:.1f} s"
    assert doc["controllers"]["adaptive"]["mean"]["unfinished_veh"] <= min(
        r["mean"]["unfinished_veh"] for r in doc["controllers"].values()
    )
    assert "| adaptive |" in md.read_text()
