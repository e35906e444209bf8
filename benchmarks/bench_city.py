"""A whole city: plans for ~1,000 signals, and one simulated hour under adaptive control in each model.

Issue #18. Builds ``hanoi_city`` (cached: one netconvert + duarouter run, ~10 s, then reused)
into ``--out`` (default ``$XDG_CACHE_HOME/greenwave/city``, outside the repository), then, in
one process run:

1. ``optimize --coordinate`` as the command runs it (network and demand loaded, one Webster
   plan per signal, common cycles and offsets per coordinated group over the road graph), and
   every plan checked again with ``check_plan``: ``optimize_coordinate_1000_s`` is the wall
   time of the whole thing, writing the JSON file aside (``optimize_coordinate_1000_cpu_s`` its
   CPU time, which a busy machine stretches less);
2. one simulated hour (``--begin``..``--begin + 3600``) of the city under ``adaptive`` with
   SUMO's mesoscopic model (``--model meso``), then the same hour with the microscopic model.
   For each: the engine's share of a step, ``(tick-loop wall - time inside SUMO's step) /
   time inside SUMO's step`` (as ``bench_sumo_loop.py`` defines it), and the real-time factor
   ``simulated s / wall s`` of the whole run, loading the network and starting SUMO included
   (control included: the engine reads, estimates, decides and writes every second). Also the
   engine's wall and CPU time per tick (CPU: the loop's minus SUMO's step's), and
   ``cpu_x_realtime``: simulated s over this process's CPU time (SUMO runs in it through
   libsumo). Other jobs on a shared machine stretch CPU time less than wall time.

What a run derives from the net before SUMO starts (the intersection model, the detectors, the
meso loops) is kept on disk by the files' content (:mod:`simulation.run_cache`): every run of a
scenario after its first starts from there. The benchmark prepares it before the timed hours
(as the scenario build is cached), and measures what a first run pays instead:
``city_<model>_uncached_derive_s``, the same derivation with an empty cache, and
``city_<model>_cached_derive_s`` from the kept copy. ``city_<model>_startup_s`` is the hour's
wall time outside the tick loop (start-up and close). ``GREENWAVE_RUN_CACHE=0`` runs the hours
without the cache (every run derives everything, as before the cache).

Machines here are shared and noisy: the figures are one run's, and a meso/micro ratio from
the same run means more than either absolute value.

Usage:  python benchmarks/bench_city.py [--out DIR] [--begin S] [--models meso,micro] [--seed N]
Prints ``name: value`` lines; last ``city_micro_x_realtime`` then ``city_meso_x_realtime``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from controller.timing import compute_timings
from controller.timing.coordination import coordinate
from controller.timing.demand import load_demand
from intersections.loaders import load_network
from intersections.plan import check_plan
from scenarios.library import build_scenario
from simulation import run_cache
from simulation.runner import prepare_run, resolve_run, simulate

SCENARIO = "hanoi_city"
HOUR_S = 3600.0


def default_out() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "greenwave" / "city"


def optimize_coordinate(net: Path, routes: Path) -> dict[str, float]:
    """``greenwave optimize --coordinate`` step by step (as api/commands/optimize.py runs it), timed."""
    c0, t0 = time.process_time(), time.perf_counter()
    network = load_network(net)
    demand = load_demand([routes], network)
    t1 = time.perf_counter()
    plans = [t.plan for t in compute_timings(network, demand, "webster")]
    t2 = time.perf_counter()
    plans, report = coordinate(network, demand, plans)
    t3 = time.perf_counter()
    for p in plans:
        check_plan(p, network.get(p.intersection_id))
    t4, c4 = time.perf_counter(), time.process_time()
    groups = report["groups"]
    return {
        "signals": len(network.intersections),
        "unmodelled": len(network.unmodelled),
        "groups": len(groups),
        "largest_group": max((len(g["intersections"]) for g in groups), default=0),
        "coordinated": sum(len(g["intersections"]) for g in groups),
        "own_cycle": len(report.get("own_cycle", {})),
        "load_s": t1 - t0,
        "plans_s": t2 - t1,
        "coordinate_s": t3 - t2,
        "check_s": t4 - t3,
        "total_s": t4 - t0,
        "cpu_s": c4 - c0,
    }


def derive(sumocfg: Path, model: str, begin_s: float, seed: int) -> dict[str, float]:
    """The run's start-up derivation, from the cache (warming it) and then with an empty one, timed."""
    spec = resolve_run(sumocfg=sumocfg, begin_s=begin_s, end_s=begin_s + HOUR_S, seed=seed, model=model)
    prepare_run(spec, "adaptive")  # warms the cache, and imports what the run imports
    t0 = time.perf_counter()
    prepare_run(spec, "adaptive")
    cached = time.perf_counter() - t0
    saved = os.environ.get(run_cache.CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="gw-bench-cold-") as cold:
        os.environ[run_cache.CACHE_ENV] = cold
        try:
            t0 = time.perf_counter()
            prepare_run(spec, "adaptive")
            uncached = time.perf_counter() - t0
        finally:
            if saved is None:
                os.environ.pop(run_cache.CACHE_ENV, None)
            else:
                os.environ[run_cache.CACHE_ENV] = saved
    return {"cached_s": cached, "uncached_s": uncached}


def run_hour(sumocfg: Path, model: str, begin_s: float, seed: int) -> dict[str, float]:
    spec = resolve_run(sumocfg=sumocfg, begin_s=begin_s, end_s=begin_s + HOUR_S, seed=seed, model=model)
    c0, t0 = time.process_time(), time.perf_counter()
    k = simulate(spec, "adaptive")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    meta = k["meta"]
    step, loop = meta["sumo_step_s"], meta["loop_s"]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_x_realtime": meta["sim_s"] / cpu,
        "engine_ms_per_tick": 1000.0 * (loop - step) / max(meta["ticks"], 1),
        "engine_cpu_ms_per_tick": 1000.0 * (meta["loop_cpu_s"] - meta["sumo_step_cpu_s"]) / max(meta["ticks"], 1),
        "loop_s": loop,
        "sumo_step_s": step,
        "engine_share": (loop - step) / step,
        "x_realtime": meta["sim_s"] / wall,
        "startup_s": wall - loop,
        "loop_x_realtime": meta["sim_s"] / loop,
        "throughput_veh": k["throughput_veh"],
        "mean_delay_s": k["mean_delay_s"],
        "unmodelled": len(meta["unmodelled"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out(), help="build cache (default %(default)s)")
    ap.add_argument("--begin", type=float, default=0.0, help="start of the simulated hour, s (0)")
    ap.add_argument("--models", default="meso,micro", help="models to run (meso,micro)")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    models = [m.strip() for m in a.models.split(",") if m.strip()]

    t0 = time.perf_counter()
    built = build_scenario(SCENARIO, a.out / SCENARIO, seed=a.seed)
    print(f"  built {SCENARIO} into {built.directory} in {time.perf_counter() - t0:.1f} s (cached when unchanged)")

    opt = optimize_coordinate(built.net, built.routes[0])
    print(
        f"  optimize --coordinate: {opt['signals']:.0f} signals ({opt['unmodelled']:.0f} left on their own program), "
        f"{opt['groups']:.0f} coordinated groups, largest {opt['largest_group']:.0f}, {opt['coordinated']:.0f} "
        f"coordinated, {opt['own_cycle']:.0f} on their own cycle; load {opt['load_s']:.2f} s, plans "
        f"{opt['plans_s']:.2f} s, coordinate {opt['coordinate_s']:.2f} s, check {opt['check_s']:.2f} s",
        flush=True,
    )
    runs: dict[str, dict[str, float]] = {}
    cache_on = run_cache.cache_dir() is not None
    for model in models:
        if cache_on:
            d = derive(built.sumocfg, model, a.begin, a.seed)
            print(
                f"  {model}: the run's network, detectors and loops derived in {d['uncached_s']:.2f} s with an empty "
                f"run cache (what a first run pays), {d['cached_s']:.2f} s from {run_cache.cache_dir()}",
                flush=True,
            )
        r = run_hour(built.sumocfg, model, a.begin, a.seed)
        if cache_on:
            r |= {"uncached_derive_s": d["uncached_s"], "cached_derive_s": d["cached_s"]}
        runs[model] = r
        print(
            f"  {model}: one hour in {r['wall_s']:.1f} s, {r['cpu_s']:.1f} s CPU (tick loop {r['loop_s']:.1f} s, "
            f"inside SUMO's step "
            f"{r['sumo_step_s']:.1f} s), throughput {r['throughput_veh']:.0f} veh, "
            f"mean delay {r['mean_delay_s']:.1f} s, {r['unmodelled']:.0f} junctions on their own program; "
            f"start-up and close {r['startup_s']:.1f} s (run cache {'on' if cache_on else 'off'})",
            flush=True,
        )
    print(f"city_signals: {opt['signals']:.0f}")
    for model, r in runs.items():
        print(f"city_{model}_engine_share_of_step: {r['engine_share']:.4f}")
        print(f"city_{model}_engine_ms_per_tick: {r['engine_ms_per_tick']:.3f}")
        print(f"city_{model}_engine_cpu_ms_per_tick: {r['engine_cpu_ms_per_tick']:.3f}")
        print(f"city_{model}_cpu_x_realtime: {r['cpu_x_realtime']:.1f}")  # this process's CPU (SUMO in it): steadier
        print(f"city_{model}_loop_x_realtime: {r['loop_x_realtime']:.1f}")
        print(f"city_{model}_startup_s: {r['startup_s']:.2f}")
        if "uncached_derive_s" in r:
            print(f"city_{model}_uncached_derive_s: {r['uncached_derive_s']:.2f}")
            print(f"city_{model}_cached_derive_s: {r['cached_derive_s']:.2f}")
    print(f"optimize_coordinate_1000_cpu_s: {opt['cpu_s']:.2f}")  # this process's CPU: steadier under load
    print(f"optimize_coordinate_1000_s: {opt['total_s']:.2f}")
    for model in ("micro", "meso"):
        if model in runs:
            print(f"city_{model}_x_realtime: {runs[model]['x_realtime']:.1f}")


if __name__ == "__main__":
    main()
