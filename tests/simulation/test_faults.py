"""Detector fault injection (pure arrays, no SUMO)."""

from __future__ import annotations

import numpy as np

from controller.backend import DetectorLayout, Observation
from simulation.faults import DetectorFaults, select_failed_detectors


def _obs(t: float, d: int) -> Observation:
    return Observation(
        time_s=t, counts=np.ones(d), occupancy=np.full(d, 0.2), queue_veh=np.full((2, 2), 4.0),
        signal_state=np.zeros((2, 2), np.int8), comm_age_s=np.zeros(2), fault=np.zeros(2, bool),
    )  # fmt: skip


def test_a_failed_stop_line_zone_takes_its_groups_queue_with_it() -> None:
    # Detectors: (row, group, stop line?) - two per group, a stop-line zone and an advance loop.
    rows = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    groups = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    stop = np.array([True, False] * 4)
    lay = DetectorLayout(tuple(f"d{i}" for i in range(8)), rows, groups, stop)
    spec = {"detector_fail_fraction": 0.5, "at_s": 100.0, "seed": 3, "mode": "mixed"}
    chosen = select_failed_detectors(8, spec)
    f = DetectorFaults(spec, 8, lay)
    assert f(_obs(50.0, 8)).queue_veh.tolist() == [[4.0, 4.0], [4.0, 4.0]]  # before the faults
    out = f(_obs(150.0, 8))
    lost = {(int(rows[i]), int(groups[i])) for i in chosen if stop[i]}
    assert lost and len(lost) < 4  # some groups lose their queue, some keep it
    for r in range(2):
        for g in range(2):
            assert np.isnan(out.queue_veh[r, g]) == ((r, g) in lost)
    dead = [i for i, k in chosen.items() if k == "dead"]
    stuck = [i for i, k in chosen.items() if k == "stuck"]
    assert np.isnan(out.counts[dead]).all() and (out.occupancy[stuck] == 1.0).all()
    # Without a layout (older callers) queues are left as measured.
    assert not np.isnan(DetectorFaults(spec, 8)(_obs(150.0, 8)).queue_veh).any()
