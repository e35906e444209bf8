"""What real-city networks do that generated ones do not (../shared/reference/real-networks.md).

Each case is a small network built here with netconvert that reproduces one feature, run in
real SUMO: a 0.2-m lane before the stop line, a program loaded from an additional file, a WAUT
that switches programs, and a traffic light the model cannot hold (it keeps its own program).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sumo_nets

from intersections.errors import NetworkFileError
from intersections.loaders.sumo_net import load_sumo_net, running_programs
from simulation.detectors import generate_detectors
from simulation.runner import load_run_network, resolve_run, simulate

pytestmark = pytest.mark.sumo

NODES = """<nodes>
  <node id="C" x="0" y="0" type="traffic_light"/>
  <node id="W2" x="-7.4" y="0" type="priority"/>
  <node id="W" x="-200" y="0" type="priority"/>
  <node id="E" x="200" y="0" type="priority"/>
  <node id="N" x="0" y="200" type="priority"/>
  <node id="S" x="0" y="-200" type="priority"/>
  <node id="T" x="400" y="0" type="traffic_light"/>
  <node id="F" x="600" y="0" type="priority"/>
</nodes>
"""
EDGES = "".join(
    f'  <edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="13.9"/>\n'
    for a, b in [
        ("W", "W2"), ("W2", "C"), ("C", "W2"), ("W2", "W"), ("E", "C"), ("C", "E"), ("N", "C"),
        ("C", "N"), ("S", "C"), ("C", "S"), ("E", "T"), ("T", "E"), ("T", "F"), ("F", "T"),
    ]
)  # fmt: skip


@pytest.fixture(scope="module")
def short_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("short")
    return sumo_nets.plain(d, NODES, f"<edges>\n{EDGES}</edges>\n", name="short")


def _lane_length(net: Path, lane: str) -> float:
    for el in ET.parse(net).getroot().iter("lane"):
        if el.get("id") == lane:
            return float(el.get("length", "nan"))
    raise AssertionError(lane)


def _programs_add(path: Path, *, waut: bool = False, all_red_t: bool = False) -> Path:
    """C gets a second program 'alt' (north-south first, a 75-s west-east green); T may get one that is never green."""
    body = [
        '  <tlLogic id="C" programID="alt" offset="0" type="static">',
        '    <phase duration="20" state="rrrGGgrrrGGg"/>',
        '    <phase duration="4" state="rrryyyrrryyy"/>',
        '    <phase duration="75" state="GGgrrrGGgrrr"/>',
        '    <phase duration="4" state="yyyrrryyyrrr"/>',
        "  </tlLogic>",
    ]
    if all_red_t:
        body += [
            '  <tlLogic id="T" programID="dark" offset="0" type="static">',
            '    <phase duration="30" state="rrrr"/>',
            "  </tlLogic>",
        ]
    if waut:
        body += [
            '  <WAUT refTime="0" id="w" startProg="0">',
            '    <wautSwitch time="1000" to="alt"/>',
            "  </WAUT>",
            '  <wautJunction wautID="w" junctionID="C"/>',
        ]
    path.write_text("<additional>\n" + "\n".join(body) + "\n</additional>\n")
    return path


def test_a_lane_shorter_than_a_detector_gets_a_zone_across_the_lanes_upstream(short_net: Path, tmp_path: Path) -> None:
    assert _lane_length(short_net, "W2C_0") < 1.0  # the failure class: 0.2-m lanes between joined junctions
    network = load_sumo_net(short_net)
    det = generate_detectors(network, short_net, tmp_path / "det.add.xml")
    e2 = {el.get("id"): el for el in ET.parse(det.additional).getroot().iter("laneAreaDetector")}
    zone = e2["gw_e2_W2C_0"]
    assert zone.get("lanes") == "WW2_0 W2C_0"
    assert float(zone.get("pos", "-1")) >= 0.0
    stop = [d for i in det.network.intersections for d in i.detectors if d.lane == "W2C_0" and d.position_m == 0.0]
    assert stop and 99.0 <= stop[0].length_m <= 101.0  # the designed zone, across the chain
    # The advance loop lies on the upstream lane, 60 m before the stop line.
    loops = {el.get("id"): el for el in ET.parse(det.additional).getroot().iter("inductionLoop")}
    assert loops["gw_e1_W2C_0"].get("lane") == "WW2_0"
    # Long lanes keep their single-lane zone.
    assert e2["gw_e2_EC_0"].get("lane") == "EC_0" and e2["gw_e2_EC_0"].get("lanes") is None


def test_a_network_with_a_short_lane_runs_under_every_kind_of_controller(short_net: Path, tmp_path: Path) -> None:
    routes = sumo_nets.flows(tmp_path, short_net, veh_h=300.0, end_s=200.0)
    spec = resolve_run(net=short_net, routes=[routes], end_s=200.0)
    for controller in ("sumo", "actuated", "max-pressure", "adaptive"):
        k = simulate(spec, controller, out_dir=tmp_path / controller)
        assert k["throughput_veh"] > 0, controller


def test_the_program_loaded_from_an_additional_file_is_the_one_modelled(short_net: Path, tmp_path: Path) -> None:
    add = _programs_add(tmp_path / "progs.add.xml")
    net_only = load_sumo_net(short_net)
    with_add = load_sumo_net(short_net, additional_files=[add])
    c0 = next(i for i in net_only.intersections if i.id == "C")
    c1 = next(i for i in with_add.intersections if i.id == "C")
    # The alt program's west-east green is 75 s: the model follows the program that runs.
    assert max(g.max_green_s for g in c0.groups) == 60.0
    assert max(g.max_green_s for g in c1.groups) == 75.0
    assert running_programs(short_net)["C"][0] == "GGgrrrGGgrrr"
    assert running_programs(short_net, [add])["C"][0] == "rrrGGgrrrGGg"
    assert len(c1.stages) == len(c0.stages) == 2


def test_a_waut_decides_which_program_runs_at_the_begin_time(short_net: Path, tmp_path: Path) -> None:
    add = _programs_add(tmp_path / "waut.add.xml", waut=True)
    before = running_programs(short_net, [add], begin_s=0.0)["C"]
    after = running_programs(short_net, [add], begin_s=1200.0)["C"]
    assert len(before) == 4 and before != after
    assert before[0] == "GGgrrrGGgrrr"  # the net's own program until the switch at 1,000 s
    assert after[0] == "rrrGGgrrrGGg"


def test_a_light_the_model_cannot_hold_keeps_its_own_program(
    short_net: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add = _programs_add(tmp_path / "dark.add.xml", all_red_t=True)
    routes = sumo_nets.flows(tmp_path, short_net, veh_h=200.0, end_s=120.0)
    cfg = tmp_path / "s.sumocfg"
    cfg.write_text(
        f'<configuration><input><net-file value="{short_net}"/><route-files value="{routes}"/>'
        f'<additional-files value="{add}"/></input><time><begin value="0"/><end value="120"/></time></configuration>'
    )
    spec = resolve_run(sumocfg=cfg)
    with caplog.at_level(logging.WARNING, logger="greenwave"):
        network = load_run_network(spec)
    assert [t for t, _r in network.unmodelled] == ["T"]
    assert "no link is ever green" in network.unmodelled[0][1]
    assert any("T keeps its own program" in r.getMessage() for r in caplog.records)
    assert [i.id for i in network.intersections] == ["C"]
    k = simulate(spec, "adaptive", out_dir=tmp_path / "run")
    assert k["throughput_veh"] > 0


def test_a_net_of_only_unmodellable_lights_is_refused_in_one_line(short_net: Path, tmp_path: Path) -> None:
    add = tmp_path / "all_dark.add.xml"
    add.write_text(
        '<additional><tlLogic id="C" programID="d" offset="0" type="static"><phase duration="9" state="rrrrrrrrrrrr"/>'
        '</tlLogic><tlLogic id="T" programID="d" offset="0" type="static"><phase duration="9" state="rrrr"/>'
        "</tlLogic></additional>"
    )
    with pytest.raises(NetworkFileError, match="no traffic light greenwave can model"):
        load_sumo_net(short_net, additional_files=[add])


RAIL_NODES = """<nodes>
  <node id="X" x="0" y="0" type="rail_crossing"/>
  <node id="R1" x="0" y="-100" type="priority"/>
  <node id="R2" x="0" y="100" type="priority"/>
  <node id="A" x="-100" y="0" type="priority"/>
  <node id="C" x="200" y="0" type="traffic_light"/>
  <node id="D" x="400" y="0" type="priority"/>
  <node id="N" x="200" y="200" type="priority"/>
</nodes>
"""
RAIL_EDGES = """<edges>
  <edge id="R1X" from="R1" to="X" numLanes="1" speed="20" allow="rail"/>
  <edge id="XR2" from="X" to="R2" numLanes="1" speed="20" allow="rail"/>
  <edge id="AX" from="A" to="X" numLanes="1" speed="13.9"/>
  <edge id="XC" from="X" to="C" numLanes="1" speed="13.9"/>
  <edge id="CD" from="C" to="D" numLanes="1" speed="13.9"/>
  <edge id="NC" from="N" to="C" numLanes="1" speed="13.9"/>
</edges>
"""


def test_rail_crossings_have_no_program_and_are_left_to_sumo(tmp_path: Path) -> None:
    net = sumo_nets.plain(tmp_path, RAIL_NODES, RAIL_EDGES, name="rail", options=())
    network = load_sumo_net(net)
    assert [i.id for i in network.intersections] == ["C"]
    assert [t for t, _r in network.unmodelled] == ["X"] and "rail" in network.unmodelled[0][1]
    assert set(running_programs(net)) == {"C"}
    routes = tmp_path / "r.rou.xml"
    # A tram line over the rail edges and a trip whose 'to' carries a stray space (SUMO accepts both):
    # the demand reader behind Webster must too.
    routes.write_text(
        '<routes><vType id="tram" vClass="rail"/><route id="r" edges="AX XC CD"/><route id="n" edges="NC CD"/>'
        '<route id="t" edges="R1X XR2"/><flow id="f" route="r" begin="0" end="100" vehsPerHour="300"/>'
        '<flow id="g" route="n" begin="0" end="100" vehsPerHour="300"/>'
        '<flow id="tr" type="tram" route="t" begin="0" end="100" vehsPerHour="20"/>'
        '<trip id="x" depart="5" from="AX" to="CD "/></routes>'
    )
    for controller in ("adaptive", "webster"):
        spec = resolve_run(net=net, routes=[routes], end_s=150.0)
        k = simulate(spec, controller, out_dir=tmp_path / controller)
        assert k["throughput_veh"] > 0, controller


def test_a_zone_reaches_past_a_light_whose_stop_line_stands_just_before_ours(tmp_path: Path) -> None:
    """A mid-block crossing signal 7 m before the junction (Doerpfeldstr has one 12 m ahead): the gap
    holds no queue, so the junction's zone goes on behind that light to the designed 100 m instead
    of stopping at it and seeing one car of a queue that reaches back over the whole block."""
    d = tmp_path
    signalised = NODES.replace('id="W2" x="-7.4" y="0" type="priority"', 'id="W2" x="-7.4" y="0" type="traffic_light"')
    edges = f"<edges>\n{EDGES}</edges>\n"
    net = sumo_nets.plain(d, signalised, edges, name="two_lights", options=("--no-turnarounds", "--tls.join", "false"))
    network = load_sumo_net(net)
    assert {"C", "W2"} <= {i.tls_id or i.id for i in network.intersections}  # two lights, two intersections
    det = generate_detectors(network, net, tmp_path / "det.add.xml")
    e2 = {el.get("id"): el for el in ET.parse(det.additional).getroot().iter("laneAreaDetector")}
    assert e2["gw_e2_W2C_0"].get("lanes") == "WW2_0 W2C_0"
    stop = [d for i in det.network.intersections for d in i.detectors if d.lane == "W2C_0" and d.position_m == 0.0]
    assert stop and 99.0 <= stop[0].length_m <= 101.0
