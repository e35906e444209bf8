"""Sweep throughput: 16 SUMO runs one after another, then on a 2-worker local Dask cluster.

The same 16 runs (one scenario, seeds 1..16) are timed twice in one process run:

* ``sequential``: one after another in this process (``execute(..., in_process=True)``:
  no cluster, no process start-up; what a plain loop costs);
* ``dask``: on a :class:`distributed.LocalCluster` of 2 single-threaded worker
  processes, each run in its own fresh Python process (``scenarios.sweep``, the
  machinery behind ``greenwave sweep``, ``optimize --tune`` and ``regress``).

Scenarios are built once before either timing; the two timings alternate
``--repeat`` times and the best of each is kept (the machines here are shared:
interference only ever slows a timing down). Reports the cluster start-up,
the Dask scheduling cost of a no-op task, the time a run process spends
outside the simulation (fork, network loading, KPI reading), the scheduler
overhead per task on the real runs (2 x cluster wall minus the runs' process
time, per run: waiting, transfer, imbalance), the 1-minute load average
before and after (anything above ~0 is someone else's work), and, last,

    sweep_speedup_2workers = sequential wall / dask wall (cluster start-up excluded)

Target >= 1.7 on 2 cores.

Usage:  python benchmarks/bench_sweep.py [--scenario arterial] [--end 1800] [--runs 16] [--repeat 2]
Prints ``name: value`` lines, headline last.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from scenarios.runs import RunJob
from scenarios.sweep import dask_client, execute, prebuild


def _noop(x: int) -> int:
    return x


def _load() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="arterial")
    ap.add_argument("--controller", default="actuated")
    ap.add_argument("--end", type=float, default=1800.0)
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--repeat", type=int, default=2, help="alternate sequential and Dask this many times; keep the best"
    )
    a = ap.parse_args()
    jobs = [RunJob(a.scenario, a.controller, seed, end_s=a.end) for seed in range(1, a.runs + 1)]
    seq_times, par_times = [], []
    print(f"load_1min_before: {_load():.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gw-bench-sweep-") as tmp:
        t = time.perf_counter()
        jobs = prebuild(jobs, Path(tmp))
        print(f"build_s: {time.perf_counter() - t:.2f}", flush=True)
        t = time.perf_counter()
        with dask_client(None, a.workers) as client:
            start_s = time.perf_counter() - t
            client.submit(_noop, 0).result()  # workers warm
            t = time.perf_counter()
            client.gather(client.map(_noop, range(200)))
            noop_s = (time.perf_counter() - t) / 200
            for r in range(a.repeat):
                t = time.perf_counter()
                seq = execute(jobs, in_process=True)
                seq_times.append(time.perf_counter() - t)
                assert all(o.ok for o in seq), [o.error for o in seq if not o.ok]
                t = time.perf_counter()
                outs = execute(jobs, client=client)
                par_times.append(time.perf_counter() - t)
                assert all(o.ok for o in outs), [o.error for o in outs if not o.ok]
                if par_times[-1] == min(par_times):
                    par = outs  # the per-run figures below come from the best repetition
                print(f"  repeat {r + 1}: sequential {seq_times[-1]:.2f} s, dask {par_times[-1]:.2f} s", flush=True)
    seq_s, par_s = min(seq_times), min(par_times)
    process = [o.kpis["meta"]["process_s"] for o in par if o.kpis]
    sim = [o.kpis["meta"]["wall_s"] for o in par if o.kpis]
    same = all(
        s.kpis and p.kpis and s.kpis["mean_delay_s"] == p.kpis["mean_delay_s"] for s, p in zip(seq, par, strict=True)
    )
    print(f"load_1min_after: {_load():.2f}")
    print(f"cluster_start_s: {start_s:.2f}")
    print(f"runs: {len(jobs)}")
    print(f"sequential_s: {seq_s:.2f}")
    print(f"dask_s: {par_s:.2f}")
    print(f"sequential_per_run_s: {seq_s / len(jobs):.3f}")
    print(f"run_process_median_s: {statistics.median(process):.3f}")
    overhead = statistics.median(p - s for p, s in zip(process, sim, strict=True))
    print(f"run_process_outside_simulation_s: {overhead:.3f}")
    print(f"dask_noop_task_ms: {1000 * noop_s:.2f}")
    print(f"scheduler_overhead_per_task_s: {(a.workers * par_s - sum(process)) / len(jobs):.3f}")
    print(f"results_identical: {same}")
    print(f"sweep_speedup_2workers_incl_startup: {seq_s / (par_s + start_s):.3f}")
    print(f"sweep_speedup_2workers: {seq_s / par_s:.3f}")


if __name__ == "__main__":
    main()
