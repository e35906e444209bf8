"""SUMO's command line is built in one place, for the runner and the control centre alike."""

from __future__ import annotations

from pathlib import Path

from simulation.sumo_backend import sumo_command


def test_a_net_with_routes_gets_our_options_then_the_users_replacing_ours() -> None:
    args = sumo_command(
        net=Path("a.net.xml"),
        routes=[Path("a.rou.xml"), Path("b.rou.xml")],
        additional=[Path("det.add.xml")],
        seed=7,
        step_length_s=0.5,
        log_file=Path("sumo.log"),
        end_s=600.0,
        scenario_args=["--lateral-resolution", "0.8"],
        user_args=["--time-to-teleport=-1"],
    )
    assert args[:4] == ["-n", "a.net.xml", "-r", "a.rou.xml,b.rou.xml"]
    assert args[args.index("--seed") + 1] == "7" and args[args.index("--step-length") + 1] == "0.5"
    assert args[args.index("--end") + 1] == "600" and "--begin" not in args
    assert "--lateral-resolution" in args
    assert "--time-to-teleport" not in args and args[-1] == "--time-to-teleport=-1"


def test_a_sumocfg_replaces_net_and_routes() -> None:
    args = sumo_command(
        net=Path("a.net.xml"), sumocfg=Path("s.sumocfg"), routes=[Path("a.rou.xml")], seed=1,
        step_length_s=1.0, log_file=Path("l"), outputs=["--statistic-output", "stats.xml"],
    )  # fmt: skip
    assert args[:2] == ["-c", "s.sumocfg"] and "-n" not in args and "-r" not in args
    assert args[args.index("--statistic-output") + 1] == "stats.xml"
