"""The backend's per-tick loop counts add up to SUMO's own count of every vehicle over each loop.

An E1's interval count is recomputed by SUMO from every vehicle seen since the
interval began (its cost grows through a run), so the backend counts a loop's
new vehicles from the last-step vehicle data instead; these tests hold that
count to SUMO's cumulative counter, read once at the end, for libsumo and
TraCI, and for ticks longer than a SUMO step (the counter-difference path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sumo_nets

from simulation import sumo_backend
from simulation.runner import resolve_run, simulate

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("reads")
    net = sumo_nets.grid(d)
    return net, sumo_nets.flows(d, net, veh_h=600.0, end_s=300.0)


def _run(small: tuple[Path, Path], tmp: Path, monkeypatch: pytest.MonkeyPatch, **kw: object) -> tuple[float, float]:
    """(sum of the backend's E1 counts over the run, SUMO's cumulative E1 count at the end)."""
    net, routes = small
    seen = {"ours": 0.0, "sumo": 0.0}
    orig_read = sumo_backend.SumoBackend._read_detectors
    orig_close = sumo_backend.SumoBackend._shutdown

    def read(self: sumo_backend.SumoBackend) -> tuple[np.ndarray, np.ndarray]:
        v2, new1 = orig_read(self)
        seen["ours"] += float(new1.sum())
        return v2, new1

    def shutdown(self: sumo_backend.SumoBackend) -> None:
        if self._conn is not None and self.sumo_detectors is not None and not seen["sumo"]:
            il = self._conn.inductionloop
            seen["sumo"] = float(sum(il.getIntervalVehicleNumber(i) for i in self.sumo_detectors.e1_ids))
        orig_close(self)

    monkeypatch.setattr(sumo_backend.SumoBackend, "_read_detectors", read)
    monkeypatch.setattr(sumo_backend.SumoBackend, "_shutdown", shutdown)
    traci = bool(kw.pop("traci", False))
    spec = resolve_run(net=net, routes=[routes], seed=3, end_s=300, traci=traci)
    simulate(spec, "webster", out_dir=tmp, **kw)  # type: ignore[arg-type]
    return seen["ours"], seen["sumo"]


@pytest.mark.parametrize("traci", [False, True])
def test_loop_counts_add_up_to_sumos_counter(
    small: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, traci: bool
) -> None:
    ours, theirs = _run(small, tmp_path, monkeypatch, traci=traci)
    assert theirs > 100  # the loops saw real traffic
    # The last tick's vehicles are read after SUMO's final step: at most a handful of loops differ by one.
    assert abs(ours - theirs) <= 3


def test_ticks_longer_than_a_step_count_every_vehicle(
    small: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = _run(small, tmp_path, monkeypatch, dt_s=2.0)
    assert theirs > 100
    assert abs(ours - theirs) <= 3
