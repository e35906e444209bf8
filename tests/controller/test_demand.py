"""Demand files: turning counts (CSV/JSON) and SUMO route/flow files, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from controller.timing.demand import Demand, load_demand, movement_index
from controller.timing.pcu import VEHICLE_CLASSES, VehicleClass
from intersections.errors import DemandError
from intersections.model import Intersection, Movement, SignalGroup, Stage
from intersections.network import Network, add_link

MC = VEHICLE_CLASSES.index(VehicleClass.MOTORCYCLE)
CAR = VEHICLE_CLASSES.index(VehicleClass.CAR)
BUS = VEHICLE_CLASSES.index(VehicleClass.BUS)
BIKE = VEHICLE_CLASSES.index(VehicleClass.BICYCLE)


def _network() -> Network:
    """Junction X with approaches n/s (one shared lane: NS through+right, NSL left) and e/w."""
    groups = (
        SignalGroup(
            "NS", movements=(Movement("n_in", "s_out", ("n_in_0",), "s"), Movement("s_in", "n_out", ("s_in_0",), "s"))
        ),
        SignalGroup("NSL", movements=(Movement("n_in", "e_out", ("n_in_0",), "l"),)),
        SignalGroup(
            "EW",
            movements=(
                Movement("e_in", "w_out", ("e_in_0", "e_in_1"), "s"),
                Movement("w_in", "e_out", ("w_in_0", "w_in_1"), "s"),
            ),
        ),
        SignalGroup("EW2", movements=(Movement("w_in", "e_out", ("w_in_2",), "s"),)),
    )
    c = np.zeros((4, 4), dtype=bool)
    for i in (0, 1):
        for j in (2, 3):
            c[i, j] = c[j, i] = True
    inter = Intersection(
        "X", groups, c, np.where(c, 5.0, 0.0), (Stage("S1", {"NS", "NSL"}), Stage("S2", {"EW", "EW2"}))
    )
    g = nx.DiGraph()
    for d in "nsew":
        add_link(g, d.upper(), "X", id=f"{d}_in", length_m=100, free_speed_m_s=10, lanes=2, saturation_flow_pcu_h=3600)
        add_link(g, "X", d.upper(), id=f"{d}_out", length_m=100, free_speed_m_s=10, lanes=2, saturation_flow_pcu_h=3600)
    add_link(g, "NN", "N", id="n_far", length_m=300, free_speed_m_s=10, lanes=1, saturation_flow_pcu_h=1800)
    g.nodes["X"]["signalised"] = True
    return Network((inter,), g, "test")


@pytest.fixture
def net() -> Network:
    return _network()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text.lstrip("\n"), encoding="utf-8")
    return p


# ---- turning counts ---------------------------------------------------------------------------


def test_csv_counts(tmp_path: Path, net: Network) -> None:
    p = _write(
        tmp_path,
        "counts.csv",
        """
intersection,from_edge,to_edge,group,class,veh_h,phf,comment
X,n_in,s_out,,motorcycle,1200,,peak
X,n_in,s_out,,car,90,0.9,
X,n_in,e_out,,Motorbike,300,,
X,,,EW,bus,20,,by group
X,w_in,e_out,,car,500,,split over EW (2 lanes) and EW2 (1 lane)
""",
    )
    d = load_demand(p, net)
    f = d.flows_veh_h["X"]
    assert f[0, MC] == pytest.approx(1200) and f[0, CAR] == pytest.approx(100)  # 90 / PHF 0.9
    assert f[1, MC] == pytest.approx(300)
    assert f[2, BUS] == pytest.approx(20)
    assert f[2, CAR] == pytest.approx(500 * 2 / 3) and f[3, CAR] == pytest.approx(500 / 3)
    moves = d.movement_veh_h["X"]
    assert set(moves) == {("n_in", "s_out"), ("n_in", "e_out"), ("w_in", "e_out")}
    assert moves[("n_in", "s_out")][CAR] == pytest.approx(100)
    assert d.pcu_h(net.intersections[0], "hanoi")[0] == pytest.approx(1200 * 0.3 + 100)
    d.check(net)


def test_json_counts(tmp_path: Path, net: Network) -> None:
    rows = [
        {"intersection": "X", "group": "NS", "class": "car", "veh_h": 400},
        {"intersection": "X", "from_edge": "e_in", "to_edge": "w_out", "class": "motorcycle", "flow_veh_h": 2000},
    ]
    for doc in (rows, {"counts": rows}):
        p = _write(tmp_path, "counts.json", json.dumps(doc))
        f = load_demand(p, net).flows_veh_h["X"]
        assert f[0, CAR] == 400 and f[2, MC] == 2000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "intersection,from_edge,to_edge,class,veh_h\nX,n_in,s_out,car,100\nX,n_in,s_out,car,lots\n",
            r"counts.csv: line 3, field 'veh_h': must be a number, got 'lots'",
        ),
        (
            "intersection,from_edge,to_edge,class,veh_h\nQ,n_in,s_out,car,100\n",
            r"counts.csv: line 2, field 'intersection': unknown intersection 'Q' \(known: X\)",
        ),
        (
            "intersection,from_edge,to_edge,class,veh_h\nX,n_in,n_out,car,100\n",
            r"line 2, field 'to_edge': unknown edge pair n_in -> n_out: no signal group of intersection X serves it",
        ),
        (
            "intersection,from_edge,to_edge,class,veh_h\nX,zz,n_out,car,100\n",
            r"line 2, field 'from_edge': unknown edge pair zz -> n_out.*incoming edges: e_in, n_in, s_in, w_in",
        ),
        ("intersection,group,class,veh_h\nX,NS,tuktuk,100\n", r"line 2, field 'class': unknown vehicle class 'tuktuk'"),
        ("intersection,group,class,veh_h\nX,NOPE,car,100\n", r"line 2, field 'group': unknown signal group 'NOPE'"),
        ("intersection,group,class,veh_h\nX,NS,car,-5\n", r"line 2, field 'veh_h': must be >= 0 veh/h"),
        ("intersection,group,class,veh_h,phf\nX,NS,car,5,1.5\n", r"line 2, field 'phf': peak-hour factor"),
        ("intersection,class,veh_h\nX,car,5\n", r"line 1: need a 'group' column or both 'from_edge' and 'to_edge'"),
        ("intersection,group,veh_h\nX,NS,5\n", r"line 1: missing column 'class'"),
        ("intersection,group,class,veh_h\n", r"counts.csv: no count records"),
    ],
)
def test_bad_csv(tmp_path: Path, net: Network, text: str, message: str) -> None:
    p = _write(tmp_path, "counts.csv", text)
    with pytest.raises(DemandError, match=message):
        load_demand(p, net)


def test_bad_json(tmp_path: Path, net: Network) -> None:
    p = _write(
        tmp_path,
        "c.json",
        '[{"intersection": "X", "group": "NS", "class": "car", "veh_h": 1},'
        ' {"intersection": "X", "group": "NS", "class": "car", "veh_h": "x"}]',
    )
    with pytest.raises(DemandError, match=r"c.json: counts\[1\], field 'veh_h': must be a number, got 'x'"):
        load_demand(p, net)
    p = _write(tmp_path, "c.json", '[{"intersection": "X",,}]')
    with pytest.raises(DemandError, match=r"c.json: not valid JSON: .* at line 1"):
        load_demand(p, net)
    p = _write(tmp_path, "c.json", '{"flows": []}')
    with pytest.raises(DemandError, match="expected a list of count records"):
        load_demand(p, net)


def test_missing_file(tmp_path: Path, net: Network) -> None:
    with pytest.raises(DemandError, match=r"nope.csv: file not found"):
        load_demand(tmp_path / "nope.csv", net)


# ---- SUMO route / flow files ---------------------------------------------------------------------


def test_sumo_flows(tmp_path: Path, net: Network) -> None:
    p = _write(
        tmp_path,
        "demand.rou.xml",
        """
<routes>
    <vType id="moto" vClass="motorcycle"/>
    <vType id="bus" vClass="bus"/>
    <route id="ns" edges="n_in s_out"/>
    <flow id="a" type="moto" route="ns" begin="0" end="3600" vehsPerHour="1800"/>
    <flow id="b" route="ns" begin="0" end="1800" period="6"/>
    <flow id="c" type="bus" begin="0" end="3600" probability="0.01">
        <route edges="e_in w_out"/>
    </flow>
    <flow id="d" type="moto" from="n_far" to="e_out" begin="0" end="3600" number="360"/>
    <flow id="e" type="moto" route="ns" begin="00:30:00" end="1:00:00" period="exp(0.1)"/>
</routes>
""",
    )
    d = load_demand(p, net)
    assert (d.begin_s, d.end_s) == (0.0, 3600.0)
    f = d.flows_veh_h["X"]
    # a: 1800/h; e: 0.1/s over the second half hour = 180/h averaged over the hour
    assert f[0, MC] == pytest.approx(1800 + 180)
    assert f[0, CAR] == pytest.approx(300)  # 1 per 6 s for half an hour = 300 vehicles in the hour
    assert f[2, BUS] == pytest.approx(36)
    # d is routed on the graph n_far -> n_in -> e_out: the left turn of NSL
    assert f[1, MC] == pytest.approx(360)
    assert d.movement_veh_h["X"][("n_in", "e_out")][MC] == pytest.approx(360)


def test_sumo_vehicles_trips_and_distributions(tmp_path: Path, net: Network) -> None:
    p = _write(
        tmp_path,
        "veh.rou.xml",
        """
<routes>
    <vTypeDistribution id="mix">
        <vType id="m" vClass="moped" probability="3"/>
        <vType id="c" vClass="passenger" probability="1"/>
    </vTypeDistribution>
    <routeDistribution id="rd">
        <route id="r1" edges="w_in e_out" probability="1"/>
        <route id="r2" edges="n_in s_out" probability="3"/>
    </routeDistribution>
    <vehicle id="v0" depart="0" type="mix" route="rd"/>
    <vehicle id="v1" depart="100"><route edges="s_in n_out"/></vehicle>
    <trip id="t0" depart="200" from="n_far" to="s_out" type="DEFAULT_BIKETYPE"/>
    <vehicle id="late" depart="5000" route="r1"/>
    <person id="p0" depart="0"><walk edges="n_in s_out"/></person>
</routes>
""",
    )
    d = load_demand(p, net, begin_s=0, end_s=3600)
    f = d.flows_veh_h["X"]
    assert f[0, MC] == pytest.approx(0.75 * 0.75)  # v0 on r2 with a moped
    assert f[0, CAR] == pytest.approx(0.75 * 0.25 + 1.0)  # v0 car share + v1
    assert f[0, BIKE] == pytest.approx(1.0)  # t0 routed n_far -> n_in -> s_out
    # w_in -> e_out is split over EW (2 lanes) and EW2 (1 lane)
    assert f[2, MC] == pytest.approx(0.25 * 0.75 * 2 / 3)
    assert f[3, CAR] == pytest.approx(0.25 * 0.25 / 3)
    # the default window runs to the last departure (5000 s), which counts
    d = load_demand(p, net)
    assert d.end_s == 5000.0
    assert d.total_veh_h() == pytest.approx(4 * 3600 / 5000)


def test_sumo_unserved_movement_warns(tmp_path: Path, net: Network) -> None:
    p = _write(
        tmp_path,
        "u.rou.xml",
        '<routes><flow id="u" begin="0" end="3600" vehsPerHour="60" '
        'route="uturn"/><route id="uturn" edges="n_in n_out"/></routes>',
    )
    # the route is defined after the flow: definitions are read first
    d = load_demand(p, net)
    assert d.total_veh_h() == 0
    assert any("n_in -> n_out cross signalised intersection X" in w for w in d.warnings)


def test_types_shared_across_files(tmp_path: Path, net: Network) -> None:
    types = _write(tmp_path, "types.add.xml", '<additional><vType id="moto" vClass="motorcycle"/></additional>')
    flows = _write(
        tmp_path,
        "f.rou.xml",
        '<routes><flow id="f" type="moto" begin="0" end="3600" vehsPerHour="100" from="e_in" to="w_out"/></routes>',
    )
    counts = _write(tmp_path, "c.csv", "intersection,group,class,veh_h\nX,EW,car,50\n")
    d = load_demand([types, flows, counts], net)
    assert d.flows_veh_h["X"][2, MC] == pytest.approx(100)
    assert d.flows_veh_h["X"][2, CAR] == pytest.approx(50)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            '<routes>\n<flow id="f" begin="0" end="3600" vehsPerHour="many" route="r"/>\n'
            '<route id="r" edges="n_in s_out"/></routes>',
            r"x.rou.xml: line 2, <flow id='f'>, field 'vehsPerHour': must be a number, got 'many'",
        ),
        (
            '<routes>\n\n<flow id="f" begin="0" end="3600" vehsPerHour="5" type="tram" route="r"/>'
            '<route id="r" edges="n_in s_out"/></routes>',
            r"line 3, <flow id='f'>, field 'type': unknown vType 'tram'",
        ),
        (
            '<routes><vehicle id="v" depart="0" route="nope"/></routes>',
            r"line 1, <vehicle id='v'>, field 'route': unknown route 'nope'",
        ),
        (
            '<routes>\n<route id="r" edges="n_in zz"/></routes>',
            r"line 2, <route id='r'>, field 'edges': edge 'zz' is not in the network",
        ),
        (
            '<routes><flow id="f" begin="0" end="10" route="r"/><route id="r" edges="n_in s_out"/></routes>',
            r"<flow id='f'>: a flow needs vehsPerHour, period, probability or number",
        ),
        (
            '<routes><vehicle id="v" depart="soon" route="r"/><route id="r" edges="n_in s_out"/></routes>',
            r"field 'depart': must be a time in seconds",
        ),
        (
            '<routes><trip id="t" depart="0" from="s_out" to="n_far"/></routes>',
            r"<trip id='t'>: no path from edge 's_out' to edge 'n_far'",
        ),
        ('<routes><trip id="t" depart="0" from="n_in"/></routes>', r"field 'to': needs both 'from' and 'to'"),
        (
            '<routes>\n<flow id="f" begin="0" end="3600" probability="2" route="r"/>'
            '<route id="r" edges="n_in"/></routes>',
            r"field 'probability': probability per second must be <= 1",
        ),
        ('<routes><vType id="x" vClass="hovercraft"/></routes>', r"field 'vClass': unknown SUMO vClass 'hovercraft'"),
        ("<routes>\n<flow id='f'\n</routes>", r"x.rou.xml: line 3: not well-formed XML"),
        ("<routes></routes>", r"no vehicle, trip or flow elements"),
    ],
)
def test_bad_sumo(tmp_path: Path, net: Network, xml: str, message: str) -> None:
    p = _write(tmp_path, "x.rou.xml", xml)
    with pytest.raises(DemandError, match=message):
        load_demand(p, net)


# ---- the Demand value ----------------------------------------------------------------------------


def test_demand_value(net: Network) -> None:
    inter = net.intersections[0]
    assert movement_index(inter)[("w_in", "e_out")] == [(2, pytest.approx(2 / 3)), (3, pytest.approx(1 / 3))]
    a = Demand.from_group_flows(net, {"X": {"NS": {"car": 100}, "EW": 50}})
    b = Demand.from_movement_flows(net, {"X": {("n_in", "e_out"): {"motorcycle": 200}}})
    s = a + b
    assert s.flows_veh_h["X"][0, CAR] == 100 and s.flows_veh_h["X"][2, CAR] == 50
    assert s.flows_veh_h["X"][1, MC] == 200
    assert set(s.movement_veh_h["X"]) == {("n_in", "e_out")}
    with pytest.raises(ValueError):
        s.flows_veh_h["X"][0, 0] = 1.0  # frozen
    with pytest.raises(DemandError, match="finite and >= 0"):
        Demand({"X": -np.ones((4, len(VEHICLE_CLASSES)))})
    with pytest.raises(DemandError, match="unknown intersection 'Y'"):
        Demand({"Y": np.zeros((1, len(VEHICLE_CLASSES)))}).check(net)
    with pytest.raises(DemandError, match="demand has 2 signal groups"):
        Demand({"X": np.zeros((2, len(VEHICLE_CLASSES)))}).check(net)
    with pytest.raises(DemandError, match="unknown edge pair n_in -> n_out"):
        Demand.from_movement_flows(net, {"X": {("n_in", "n_out"): 5}})
