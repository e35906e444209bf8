"""Meso against micro on one scenario: the queue estimate against meso's own vehicles, and speed.

Two measurements, side by side in one run (the machine is shared: only ratios measured
together mean anything):

* **queue estimate** (``meso_queue_*``): under the ``sumo`` controller (the network's
  own fixed programs, so the signals do not depend on the estimate), every tick, the
  estimated queue on each approach (the per-lane queues of :class:`simulation.meso.MesoReader`,
  summed over the approach's stop lanes) against the vehicles SUMO's meso holds on that
  approach's stop edge (``edge.getLastStepVehicleNumber``; moving ones included, so it is an
  upper bound of the queue). Only approaches whose stop-line zone covers the whole stop edge
  are compared (the zone is then exactly what meso counts). Printed: mean of each, mean
  absolute difference, and the correlation over all (tick, approach) samples;
* **speed** (``*_x_realtime``): the same scenario under ``adaptive`` in each model, simulated
  seconds per wall second of the whole run (SUMO, engine and reads), and the ratio.

Usage (headline figures last, one per line as ``name: value``)::

    .venv/bin/python benchmarks/bench_meso.py                      # grid4x4, 1,800 s
    .venv/bin/python benchmarks/bench_meso.py --scenario arterial --end 900
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.backend import detector_layout
from scenarios.specs import resolve_run
from simulation.runner import RunSpec, load_run_network, simulate


def queue_agreement(spec: RunSpec) -> dict[str, float]:
    """The estimate per approach against meso's vehicles on the approach's stop edge, every tick."""
    import libsumo
    import sumolib

    from simulation.detectors import generate_detectors

    with tempfile.TemporaryDirectory() as tmp:
        det = generate_detectors(load_run_network(spec), spec.net, Path(tmp) / "d.add.xml", exits=False)
    net = sumolib.net.readNet(str(spec.net))
    layout = detector_layout(det.network)
    stop = np.flatnonzero(layout.stop_line)
    lanes = [layout.ids[k].split("@", 1)[0] for k in stop.tolist()]
    zone = {d.lane: d.length_m for i in det.network.intersections for d in i.detectors}
    edges = sorted({ln.rsplit("_", 1)[0] for ln in lanes if zone[ln] >= net.getLane(ln).getLength() - 1.0})
    edge_col = {e: k for k, e in enumerate(edges)}
    # Per stop-line detector: its group's queue per stop lane, shared by the groups on that lane.
    n_groups_on_lane = {ln: lanes.count(ln) for ln in set(lanes)}
    col = np.array([edge_col.get(ln.rsplit("_", 1)[0], -1) for ln in lanes])
    weight = np.array([1.0 / n_groups_on_lane[ln] for ln in lanes])
    est, truth = [], []

    def on_tick(res: Any) -> None:
        q = res.observation.queue_veh
        lanes_of_group = np.bincount(
            layout.row[stop] * q.shape[1] + layout.group[stop], minlength=q.size
        ).reshape(q.shape)
        per_lane = np.divide(q, lanes_of_group, out=np.zeros_like(q), where=lanes_of_group > 0)
        v = per_lane[layout.row[stop], layout.group[stop]] * weight
        ok = col >= 0
        est.append(np.bincount(col[ok], weights=v[ok], minlength=len(edges)))
        truth.append(np.array([libsumo.edge.getLastStepVehicleNumber(e) for e in edges], float))

    simulate(replace(spec, model="meso"), "sumo", on_tick=on_tick)
    e, t = np.concatenate(est), np.concatenate(truth)
    return {
        "approaches": float(len(edges)),
        "estimate_mean_veh": float(e.mean()),
        "meso_vehicles_mean_veh": float(t.mean()),
        "mae_veh": float(np.abs(e - t).mean()),
        "corr": float(np.corrcoef(e, t)[0, 1]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="grid4x4")
    ap.add_argument("--end", type=float, default=1800.0, help="simulated seconds (default 1800)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gw-bench-meso-") as tmp:
        spec = resolve_run(scenario=a.scenario, scenario_dir=Path(tmp) / "scn", seed=a.seed, end_s=a.end)
        q = queue_agreement(spec)
        speed = {}
        for model in ("micro", "meso"):
            t0 = time.perf_counter()
            k = simulate(replace(spec, model=model), "adaptive")
            speed[model] = (k["meta"]["sim_s"] / (time.perf_counter() - t0), k)
    print(f"scenario: {a.scenario} seed {a.seed}, {a.end:g} s simulated")
    print(f"approaches_compared: {q['approaches']:.0f}")
    print(f"meso_queue_estimate_mean_veh: {q['estimate_mean_veh']:.2f}")
    print(f"meso_stop_edge_vehicles_mean_veh: {q['meso_vehicles_mean_veh']:.2f}")
    for model, (_x, k) in speed.items():
        print(f"adaptive_{model}_mean_delay_s: {k['mean_delay_s']:.1f}")
        print(f"adaptive_{model}_sumo_step_s: {k['meta']['sumo_step_s']:.2f}")
        print(f"adaptive_{model}_engine_loop_s: {k['meta']['loop_s']:.2f}")
    print(f"micro_x_realtime: {speed['micro'][0]:.1f}")
    print(f"meso_x_realtime: {speed['meso'][0]:.1f}")
    print(f"meso_queue_mae_veh: {q['mae_veh']:.2f}")
    print(f"meso_queue_corr: {q['corr']:.3f}")
    print(f"meso_speedup: {speed['meso'][0] / speed['micro'][0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
