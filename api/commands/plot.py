"""``greenwave plot time-space``: a corridor's time-space diagram from a real SUMO run."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from api.commands._sumo_args import add_input_args, add_sumo_args, console, progress_bar, spec_from_args
from controller.engine import TickResult

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plots from simulation runs")
    psub = p.add_subparsers(dest="plot_kind", metavar="KIND", required=True)
    ts = psub.add_parser(
        "time-space",
        help="time-space diagram of a corridor (trajectories + signal bands)",
        description="Run SUMO with a controller, record the trajectories along a corridor and the "
        "signal states of its through movement, and draw the time-space diagram (PNG).",
    )
    add_input_args(ts)
    ts.add_argument("--controller", default="actuated", help="controller name")
    ts.add_argument("--corridor", metavar="ID,ID,...", help="intersections in order (default: the scenario's)")
    ts.add_argument("--seed", type=int, default=42)
    ts.add_argument("--window", metavar="FROM,TO", help="time window to draw, seconds (default: a 600 s peak slice)")
    ts.add_argument("--out", required=True, metavar="PNG", help="output image")
    add_sumo_args(ts)
    ts.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from api.commands.simulate import check_controllers
    from intersections.errors import InputError
    from intersections.loaders.sumo_net import load_sumo_net
    from simulation.runner import simulate
    from simulation.timespace import corridor_from_tls, plot_time_space, read_fcd, write_edge_filter

    check_controllers([args.controller])
    spec = spec_from_args(args)
    tls = [t for t in (args.corridor or "").split(",") if t] or list(spec.corridor)
    if not tls:
        raise InputError("no corridor: give --corridor ID,ID,... (the scenario defines none)")
    network = load_sumo_net(spec.net, additional_files=spec.additional, begin_s=spec.begin_s or 0.0)
    corridor = corridor_from_tls(network, tls)
    rows = [network.ids.index(t) for t in tls]
    work = Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="gw-ts-"))
    work.mkdir(parents=True, exist_ok=True)
    fcd = work / "fcd.xml"
    filt = write_edge_filter(corridor, work / "corridor.edges.txt")
    times: list[float] = []
    states: list[np.ndarray] = []

    def record(res: TickResult) -> None:
        times.append(res.time_s)
        states.append(res.observation.signal_state.copy())

    with progress_bar() as bar:
        task = bar.add_task(f"{spec.name} / {args.controller}", total=None)
        simulate(
            spec, args.controller, out_dir=work, network=network, on_tick=record,
            progress=lambda t, e: bar.update(task, completed=int(t), total=int(e) or None),
            extra_args=("--fcd-output", str(fcd), "--fcd-output.filter-edges.input-file", str(filt),
                        "--fcd-output.attributes", "lane,pos,speed"),
        )  # fmt: skip
    t_arr = np.array(times)
    if args.window:
        try:
            lo, hi = (float(x) for x in args.window.split(","))
        except ValueError:
            raise InputError(f"--window must be FROM,TO in seconds, got {args.window!r}") from None
    else:
        mid = float(t_arr[len(t_arr) // 2])
        lo, hi = max(float(t_arr[0]), mid - 300), min(float(t_arr[-1]), mid + 300)
    tracks = read_fcd(fcd, corridor)
    out = plot_time_space(
        tracks, corridor, t_arr, np.array(states), rows, args.out,
        title=f"{spec.name}: {args.controller}, seed {spec.seed} ({len(tracks)} vehicles)", window_s=(lo, hi),
    )  # fmt: skip
    console.print(f"time-space diagram written to {out}")
    return 0
