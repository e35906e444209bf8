"""``greenwave optimize`` end to end: a netgenerate grid, a flow file, checked plans out."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from api.cli import main
from intersections.plan import check_plan, load_plans

sumo = pytest.importorskip("sumo")
NETGENERATE = os.path.join(sumo.SUMO_HOME, "bin", "netgenerate")

pytestmark = [
    pytest.mark.sumo,
    pytest.mark.skipif(not os.path.exists(NETGENERATE), reason="SUMO netgenerate not installed"),
]

FLOWS = """<routes>
    <vType id="moto" vClass="motorcycle"/>
    <vType id="car" vClass="passenger"/>
    <vType id="bus" vClass="bus"/>
    <flow id="we" type="moto" from="left1A1" to="C1right1" begin="0" end="3600" vehsPerHour="2400"/>
    <flow id="we_car" type="car" from="left1A1" to="C1right1" begin="0" end="3600" vehsPerHour="150"/>
    <flow id="sn" type="moto" from="bottom1B0" to="B2top1" begin="0" end="3600" vehsPerHour="1500"/>
    <flow id="bus" type="bus" from="bottom1B0" to="B2top1" begin="0" end="3600" period="300"/>
    <flow id="turn" type="moto" from="top0A2" to="C0right0" begin="0" end="3600" vehsPerHour="600"/>
</routes>
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3x3 grid with traffic lights at every junction.

    ``--tls.guess`` alone leaves this low-speed, single-lane grid unsignalised,
    so every junction is made a traffic light (``-j traffic_light``); the
    attached arms make the inner junctions four-legged.
    """
    d = tmp_path_factory.mktemp("grid")
    net = d / "grid.net.xml"
    subprocess.run(
        [
            NETGENERATE,
            "--grid",
            "--grid.number=3",
            "--grid.attach-length=100",
            "--tls.guess=true",
            "-j",
            "traffic_light",
            "-o",
            str(net),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (d / "flows.rou.xml").write_text(FLOWS, encoding="utf-8")
    return d


def test_optimize_writes_a_checked_plan_per_intersection(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from intersections.loaders import load_network

    out = tmp_path / "plans.json"
    rc = main(
        ["optimize", "--net", str(grid / "grid.net.xml"), "--demand", str(grid / "flows.rou.xml"), "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    network = load_network(grid / "grid.net.xml")
    plans = load_plans(out).by_intersection()
    assert set(plans) == set(network.ids)
    for inter in network:
        check_plan(plans[inter.id], inter)
    doc = json.loads(out.read_text())
    assert set(doc["report"]) == set(network.ids)
    b1 = doc["report"]["B1"]
    assert b1["los"] in "ABCDEF" and b1["flow_ratio_sum_Y"] > 0.3
    assert {"v_c", "control_delay_s", "los"} <= set(b1["lane_groups"][0])
    assert doc["settings"]["pcu"]["name"] == "hanoi"
    # the busier west-east arterial through B1 gets the longer green
    b1_plan = plans["B1"]
    greens = {s.stage: s.green_s for s in b1_plan.stages}
    assert max(greens.values()) > min(greens.values())
    assert "B1" in captured.out and "LOS" in captured.out


def test_optimize_with_counts_and_options(grid: Path, tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text(
        "intersection,from_edge,to_edge,class,veh_h\n"
        "B1,A1B1,B1C1,motorcycle,3000\n"
        "B1,B0B1,B1B2,car,400\n"
        "B1,B0B1,B1B2,truck,40\n",
        encoding="utf-8",
    )
    out = tmp_path / "plans.json"
    rc = main(
        [
            "optimize",
            "--net",
            str(grid / "grid.net.xml"),
            "--demand",
            f"{counts},{grid / 'flows.rou.xml'}",
            "--out",
            str(out),
            "--pcu",
            "us_hcm",
            "--cycle-min",
            "50",
            "--cycle-max",
            "90",
            "--saturation",
            "width",
            "--lane-width",
            "3.2",
            "--quiet",
        ]
    )
    assert rc == 0
    plans = load_plans(out).plans
    assert plans and all(50 - 1e-6 <= p.cycle_s for p in plans)
    doc = json.loads(out.read_text())
    assert doc["settings"]["saturation"] == "width"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demand", "missing.rou.xml"], "missing.rou.xml: file not found"),
        (["--demand", "bad.csv"], "line 2, field 'intersection': unknown intersection 'Q'"),
        (
            ["--demand", "flows.rou.xml", "--cycle-min", "90", "--cycle-max", "60"],
            "need 0 < --cycle-min <= --cycle-max",
        ),
        (["--demand", "flows.rou.xml", "--out", "no/such/dir/plans.json"], "output directory does not exist"),
    ],
)
def test_bad_input_exits_with_a_message(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "bad.csv").write_text("intersection,group,class,veh_h\nQ,G,car,5\n", encoding="utf-8")
    (tmp_path / "flows.rou.xml").write_text(FLOWS, encoding="utf-8")
    argv = ["optimize", "--net", str(grid / "grid.net.xml"), "--out", str(tmp_path / "plans.json")]
    for a in args:
        argv.append(str(tmp_path / a) if a.endswith((".xml", ".csv", ".json")) else a)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("greenwave optimize: error:")
    assert message in err
    assert "Traceback" not in err


def test_bad_network_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.csv").write_text("intersection,group,class,veh_h\n", encoding="utf-8")
    rc = main(
        [
            "optimize",
            "--net",
            str(tmp_path / "none.net.xml"),
            "--demand",
            str(tmp_path / "d.csv"),
            "--out",
            str(tmp_path / "p.json"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "none.net.xml" in err and "Traceback" not in err


def test_missing_required_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["optimize", "--net", "x.net.xml"])
    assert e.value.code == 2
    assert "--demand" in capsys.readouterr().err


INVENTORY = Path(__file__).resolve().parents[2] / "examples" / "intersection.toml"


@pytest.mark.skipif(not INVENTORY.exists(), reason="examples/intersection.toml not present")
def test_optimize_from_an_inventory(tmp_path: Path) -> None:
    from intersections.loaders import load_network

    counts = tmp_path / "counts.csv"
    counts.write_text(
        "intersection,from_edge,to_edge,class,veh_h\n"
        "J1,km_w_in,km_e_out,motorcycle,3000\n"
        "J1,km_w_in,km_e_out,car,300\n"
        "J1,km_e_in,km_w_out,motorcycle,2500\n"
        "J1,km_w_in,lg_n_out,motorcycle,350\n",
        encoding="utf-8",
    )
    out = tmp_path / "plans.json"
    assert (
        main(["optimize", "--intersection", str(INVENTORY), "--demand", str(counts), "--out", str(out), "--quiet"]) == 0
    )
    network = load_network(INVENTORY)
    for plan in load_plans(out).plans:
        check_plan(plan, network.by_id[plan.intersection_id])
