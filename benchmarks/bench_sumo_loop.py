"""How much wall time the engine adds to SUMO, per simulated second.

For a 4x4 and a 10x10 signalised grid, runs the same demand with libsumo and
with TraCI, side by side in one process run, and reports

    engine_share = (wall time of the tick loop - time inside simulationStep) / time inside simulationStep

i.e. greenwave's read -> estimate -> policy -> supervisor -> write per tick,
relative to SUMO's own step. Ratios measured in the same run, not absolute
times (machines here are shared and noisy). The controller is max-pressure:
every intersection decides every tick from the queue of every stop-line
lane, so SUMO is asked for 800 lane-area values per tick on the 10x10 grid.

Side by side on the 10x10 grid with libsumo it also measures what the engine
would cost if it read every field (counts, occupancy, queues, bus records:
``engine_share_libsumo_10x10_read_all``) and the adaptive policy, which does
read every field (``engine_share_libsumo_10x10_adaptive``).

Usage:  python benchmarks/bench_sumo_loop.py [--horizon S] [--repeat N]
Prints ``name: value`` lines, headline last: ``engine_share_libsumo_10x10``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from controller.backend import OBSERVATION_FIELDS
from simulation.runner import resolve_run, simulate
from simulation.sumo_home import sumo_binary, sumo_home


def build_grid(d: Path, n: int, period_s: float, horizon_s: float) -> tuple[Path, Path]:
    net = d / f"grid{n}.net.xml"
    subprocess.run(
        [sumo_binary("netgenerate"), "--grid", f"--grid.number={n}", "--grid.length=200",
         "--grid.attach-length=100", "--default.lanenumber=2", "--default-junction-type=traffic_light",
         "--tls.default-type=static", "--no-turnarounds=true", "-o", str(net)],
        check=True, capture_output=True,
    )  # fmt: skip
    trips = d / f"grid{n}.rou.xml"
    tools = sumo_home() / "tools"  # type: ignore[operator]
    subprocess.run(
        [sys.executable, str(tools / "randomTrips.py"), "-n", str(net), "-o", str(trips), "-r", str(trips),
         "--seed", "7", "--period", f"{period_s}", "--fringe-factor", "20", "-e", f"{horizon_s:g}",
         "--validate"],
        check=True, capture_output=True,
    )  # fmt: skip
    return net, trips


def share(
    net: Path, routes: Path, horizon_s: float, traci: bool, controller: str = "max-pressure", read_all: bool = False
) -> tuple[float, float]:
    spec = resolve_run(net=net, routes=[routes], seed=1, end_s=horizon_s, traci=traci)
    k = simulate(spec, controller, also_read=OBSERVATION_FIELDS if read_all else ())
    step = k["meta"]["sumo_step_s"]
    return (k["meta"]["loop_s"] - step) / step, k["meta"]["loop_s"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--horizon", type=float, default=600.0)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        nets = {"4x4": build_grid(d, 4, 0.6, a.horizon), "10x10": build_grid(d, 10, 0.12, a.horizon)}
        runs = [(f"engine_share_{mode}_{name}", name, traci, "max-pressure", False)
                for name in nets for mode, traci in (("libsumo", False), ("traci", True))]  # fmt: skip
        runs += [
            ("engine_share_libsumo_10x10_read_all", "10x10", False, "max-pressure", True),
            ("engine_share_libsumo_10x10_adaptive", "10x10", False, "adaptive", False),
        ]
        vals: dict[str, list[float]] = {key: [] for key, *_ in runs}
        # Round-robin over the configurations, so a change in machine load hits them all alike.
        for _ in range(a.repeat):
            for key, name, traci, controller, read_all in runs:
                net, routes = nets[name]
                s, wall = share(net, routes, a.horizon, traci, controller, read_all)
                vals[key].append(s)
                print(f"  run {key}: share {s:.4f} wall {wall:.2f} s", flush=True)
        results = {key: statistics.median(v) for key, v in vals.items()}
    order = ["engine_share_traci_4x4", "engine_share_traci_10x10", "engine_share_libsumo_4x4",
             "engine_share_libsumo_10x10_adaptive", "engine_share_libsumo_10x10_read_all",
             "engine_share_libsumo_10x10"]  # fmt: skip
    for key in order:
        print(f"{key}: {results[key]:.4f}")


if __name__ == "__main__":
    main()
