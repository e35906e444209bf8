"""Scenario library: small declarative recipes that generate SUMO inputs on demand.

Nothing large is committed: each scenario is built into a folder with
netgenerate and a seeded demand generator. ``demo`` is the foundation's demo
network (a 3x3 grid of signals with motorcycle-dominated demand); the SUMO
scenarios (``grid4x4``, ``arterial``, ``hanoi_mixed``) join this table.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intersections.errors import InputError, SimulationError
from simulation.sumo_home import sumo_binary

__all__ = ["BuiltScenario", "build_scenario", "scenario_names", "VEHICLE_MIX", "write_vtypes"]

# Share of each class in the demand; motorcycle-dominated (Hanoi DoT: motorbikes ~95 % of
# registered vehicles; counted streams at signals are 80-95 % motorcycles, Nguyen & Montgomery
# 2007 — ../shared/reference/motorcycles-and-algorithms.md D1/D2).
VEHICLE_MIX: dict[str, float] = {"motorcycle": 0.80, "car": 0.15, "bus": 0.02, "truck": 0.03}


@dataclass(frozen=True)
class BuiltScenario:
    name: str
    directory: Path
    net: Path
    routes: tuple[Path, ...]
    begin_s: float
    end_s: float


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SimulationError(f"{what} failed: {(res.stderr or res.stdout).strip()[-2000:]}")


def write_vtypes(f) -> None:  # type: ignore[no-untyped-def]
    """vTypes for mixed traffic; motorcycle parameters are Hanoi scooters (110-125 cc)."""
    f.write(
        '    <vType id="motorcycle" vClass="motorcycle" length="1.9" width="0.7" minGap="1.0" '
        'maxSpeed="16.7" accel="2.5" decel="4.5" sigma="0.5"/>\n'
        '    <vType id="car" vClass="passenger" length="4.5" minGap="2.5" maxSpeed="16.7"/>\n'
        '    <vType id="bus" vClass="bus" length="11" minGap="2.5" maxSpeed="13.9" personCapacity="60"/>\n'
        '    <vType id="truck" vClass="truck" length="8" minGap="2.5" maxSpeed="13.9"/>\n'
    )


def _grid(out: Path, name: str, n: int, seed: int, total_veh_h_per_entry: float, end_s: float) -> BuiltScenario:
    import sumolib

    out.mkdir(parents=True, exist_ok=True)
    net = out / f"{name}.net.xml"
    _run(
        [
            sumo_binary("netgenerate"),
            "--grid",
            f"--grid.number={n}",
            "--grid.length=200",
            "--grid.attach-length=150",
            "--default.lanenumber=2",
            "--default.speed=13.89",
            "--tls.guess=true",
            "--tls.default-type=static",
            "--no-turnarounds=true",
            f"--seed={seed}",
            "-o",
            str(net),
        ],
        "netgenerate",
    )
    sn = sumolib.net.readNet(str(net))
    entries = [
        e
        for e in sn.getEdges()
        if len(e.getFromNode().getIncoming()) <= 1 and e.getFromNode().getType() != "traffic_light"
    ]
    exits = [
        e for e in sn.getEdges() if len(e.getToNode().getOutgoing()) <= 1 and e.getToNode().getType() != "traffic_light"
    ]
    rng = np.random.default_rng(seed)
    routes = out / f"{name}.rou.xml"
    with routes.open("w", encoding="utf-8") as f:
        f.write("<routes>\n")
        write_vtypes(f)
        k = 0
        for e in entries:
            targets = [x for x in exits if x.getToNode() != e.getFromNode()]
            # Straight-on exit (farthest) carries most of the flow.
            fx, fy = e.getFromNode().getCoord()
            dist = np.array([np.hypot(*(np.subtract(x.getToNode().getCoord(), (fx, fy)))) for x in targets])
            w = np.where(dist >= dist.max() - 1.0, 4.0, 1.0) * rng.uniform(0.8, 1.2, len(targets))
            w /= w.sum()
            for x, share in zip(targets, w, strict=True):
                for vtype, mix in VEHICLE_MIX.items():
                    vph = total_veh_h_per_entry * share * mix
                    if vph < 1:
                        continue
                    f.write(
                        f'    <flow id="f{k}" type="{vtype}" from="{e.getID()}" to="{x.getID()}" begin="0" '
                        f'end="{end_s:g}" vehsPerHour="{vph:.1f}" departLane="best" departSpeed="max"/>\n'
                    )
                    k += 1
        f.write("</routes>\n")
    return BuiltScenario(name, out, net, (routes,), 0.0, end_s)


_BUILDERS: dict[str, Callable[[Path, int], BuiltScenario]] = {
    "demo": lambda out, seed: _grid(out, "demo", 3, seed, 900.0, 3600.0),
}


def scenario_names() -> list[str]:
    return sorted(_BUILDERS)


def build_scenario(name: str, out_dir: str | Path, *, seed: int = 42) -> BuiltScenario:
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise InputError(f"unknown scenario {name!r} (known: {', '.join(scenario_names())})") from None
    return builder(Path(out_dir), seed)
