"""Exit zones in real SUMO: a movement whose exit is jammed back to the junction gets no green.

Two one-way streets crossing at signal C; the eastern exit CE is blocked by a broken-down vehicle (a stop that never
ends) near its far end, teleporting off: the west-to-east queue fills CE back to the junction, and
the exit zone on CE's first metres reports it. Under adaptive and max-pressure the west approach
is then kept red (green would only push vehicles into a junction they cannot leave) while the
north-south flow is served. No downstream signal sees this jam (E is an unsignalised dead end),
so the stop-line-queue spillback rule alone is blind to it.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import sumo_nets

from intersections.loaders.sumo_net import load_sumo_net
from intersections.model import DetectorKind, SignalState
from simulation.detectors import EXIT_ZONE_M, generate_detectors
from simulation.runner import resolve_run, simulate
from simulation.sumo_home import sumo_binary

pytestmark = pytest.mark.sumo

G = int(SignalState.GREEN)


@pytest.fixture(scope="module")
def jammed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two one-way streets crossing at signal C, west->east and north->south, no turns."""
    d = tmp_path_factory.mktemp("jam")
    nodes = (
        "<nodes>\n"
        '  <node id="C" x="0" y="0" type="traffic_light"/>\n'
        + "".join(
            f'  <node id="{k}" x="{x}" y="{y}" type="priority"/>\n'
            for k, x, y in (("W", -150, 0), ("E", 150, 0), ("N", 0, 150), ("S", 0, -150))
        )
        + "</nodes>\n"
    )
    edges = (
        "<edges>\n"
        + "".join(
            f'  <edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="13.9"/>\n'
            for a, b in (("W", "C"), ("C", "E"), ("N", "C"), ("C", "S"))
        )
        + "</edges>\n"
    )
    connections = '<connections>\n  <delete from="WC" to="CS"/>\n  <delete from="NC" to="CE"/>\n</connections>\n'
    net = sumo_nets.plain(
        d, nodes, edges, name="jam", connections=connections, options=("--tls.default-type", "static")
    )
    routes = d / "jam.rou.xml"
    routes.write_text(
        "<routes>\n"
        '  <route id="we" edges="WC CE"/>\n'
        '  <route id="ns" edges="NC CS"/>\n'
        '  <route id="stuck" edges="CE"/>\n'
        # Broken down near the end of CE, for good: everything behind it stands.
        '  <vehicle id="broken" route="stuck" depart="0" departPos="100">\n'
        '    <stop lane="CE_0" endPos="130" duration="100000"/>\n'
        "  </vehicle>\n"
        '  <flow id="fwe" route="we" begin="0" end="900" vehsPerHour="500"/>\n'
        '  <flow id="fns" route="ns" begin="0" end="900" vehsPerHour="300"/>\n'
        "</routes>\n"
    )
    return net, routes


def test_exit_zones_are_generated_and_load_in_sumo(jammed: tuple[Path, Path], tmp_path: Path) -> None:
    net, _routes = jammed
    det = generate_detectors(load_sumo_net(net), net, tmp_path / "det.add.xml")
    zones = {el.get("id"): el for el in ET.parse(det.additional).getroot().iter("laneAreaDetector")}
    # One zone per exit lane, from the junction, EXIT_ZONE_M long; stop-line zones as before.
    for out in ("CE_0", "CS_0"):
        z = zones[f"gw_ex_{out}"]
        assert (z.get("lane"), float(z.get("pos", "-1")), float(z.get("endPos", "-1"))) == (out, 0.0, EXIT_ZONE_M)
    assert det.exit_ids == tuple(sorted(k for k in zones if k.startswith("gw_ex_")))
    assert {d.kind for dets in det.exit_detectors for d in dets} == {DetectorKind.EXIT}
    assert not any(d.kind is DetectorKind.EXIT for i in det.network.intersections for d in i.detectors)
    # Each exit zone knows the incoming lanes whose links lead to it.
    feeds = {d.lane: det.exit_feeds[d.id] for dets in det.exit_detectors for d in dets}
    assert feeds == {"CE_0": ("WC_0",), "CS_0": ("NC_0",)}
    # SUMO accepts the file (and a run that does not read exits does without them).
    k = simulate(resolve_run(net=net, routes=[jammed[1]], end_s=30.0), "adaptive", out_dir=tmp_path / "run")
    assert k["meta"]["ticks"] >= 30


@pytest.mark.parametrize(
    ("controller", "traci"), [("adaptive", False), ("max-pressure", False), ("max-pressure", True)]
)
def test_a_movement_into_a_jammed_exit_gets_no_green_and_the_cross_street_is_served(
    jammed: tuple[Path, Path], tmp_path: Path, controller: str, traci: bool
) -> None:
    net, routes = jammed
    spec = resolve_run(
        net=net, routes=[routes], seed=1, end_s=900.0, traci=traci, sumo_args=("--time-to-teleport", "-1")
    )
    network = load_sumo_net(net)
    inter = network.intersections[0]
    west = next(
        k for k, g in enumerate(inter.groups) if any(m.from_edge == "WC" and m.to_edge == "CE" for m in g.movements)
    )
    north = next(
        k for k, g in enumerate(inter.groups) if any(m.from_edge == "NC" and m.to_edge == "CS" for m in g.movements)
    )
    seen: list[tuple[float, float, int, int, float]] = []

    def tick(res) -> None:  # type: ignore[no-untyped-def]
        share = res.observation.exit_blocked
        seen.append((res.time_s, float(share[0, west]), int(res.states[0, west]), int(res.states[0, north]),
                     float(res.observation.queue_veh[0, north])))  # fmt: skip

    k = simulate(spec, controller, out_dir=tmp_path / controller, network=network, on_tick=tick)
    t, share, west_state, north_state, _qn = (np.array(c) for c in zip(*seen, strict=True))
    jam = np.flatnonzero(share >= 1.0)
    assert jam.size, "the queue behind the broken-down vehicle never reached the junction"
    start = int(jam[0])
    assert t[start] < 400  # it does, early
    assert (share[start:] >= 1.0).mean() > 0.95  # and stays: nobody on CE moves again
    # From the jam on (once a green that was running has ended: min green, a north-south vehicle
    # to switch for, the change interval), the west approach stays red and north-south is served.
    later = slice(start + 30, None)
    assert (west_state[later] != G).all(), controller
    assert (north_state[later] == G).mean() > 0.9
    assert k["throughput_veh"] > 0.85 * 300 * 900 / 3600  # the north-south flow keeps arriving


def test_an_exit_lane_shorter_than_its_zone_gets_a_zone_across_the_lanes_downstream(tmp_path: Path) -> None:
    """C's westward exit is a 0.2-m lane to the unsignalised W2 (a joined junction's leftover, as
    netconvert leaves them on real networks): its exit zone runs on into W2W."""
    nodes = (
        "<nodes>\n"
        '  <node id="C" x="0" y="0" type="traffic_light"/>\n'
        '  <node id="W2" x="-7.4" y="0" type="priority"/>\n'
        + "".join(
            f'  <node id="{k}" x="{x}" y="{y}" type="priority"/>\n'
            for k, x, y in (("W", -200, 0), ("E", 200, 0), ("N", 0, 200), ("S", 0, -200))
        )
        + "</nodes>\n"
    )
    pairs = [("W", "W2"), ("W2", "C"), ("C", "W2"), ("W2", "W"), ("E", "C"), ("C", "E"), ("N", "C"), ("C", "N")]
    edges = (
        "<edges>\n"
        + "".join(f'  <edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="13.9"/>\n' for a, b in pairs)
        + "</edges>\n"
    )
    net = sumo_nets.plain(tmp_path, nodes, edges, name="short")
    lengths = {el.get("id"): float(el.get("length", "nan")) for el in ET.parse(net).getroot().iter("lane")}
    assert lengths["CW2_0"] < 1.0
    det = generate_detectors(load_sumo_net(net), net, tmp_path / "det.add.xml")
    zones = {el.get("id"): el for el in ET.parse(det.additional).getroot().iter("laneAreaDetector")}
    zone = zones["gw_ex_CW2_0"]
    assert zone.get("lanes") == "CW2_0 W2W_0" and float(zone.get("pos", "-1")) == 0.0
    assert float(zone.get("endPos", "0")) == pytest.approx(EXIT_ZONE_M - lengths["CW2_0"], abs=0.01)
    # A long exit keeps a single-lane zone.
    assert zones["gw_ex_CE_0"].get("lane") == "CE_0" and zones["gw_ex_CE_0"].get("lanes") is None
    exits = {d.lane: d for dets in det.exit_detectors for d in dets}
    assert exits["CW2_0"].length_m == pytest.approx(EXIT_ZONE_M, abs=0.01)
    # SUMO accepts the chained zone.
    run = tmp_path / "run.sumocfg"
    run.write_text(
        f'<configuration><input><net-file value="{net}"/><additional-files value="{det.additional}"/></input>'
        '<time><end value="5"/></time></configuration>'
    )
    subprocess.run([sumo_binary("sumo"), "-c", str(run)], check=True, capture_output=True)
