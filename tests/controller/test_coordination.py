"""Offline coordination on a corridor: common cycle, offsets, checked plans, a real improvement."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from api.cli import main
from controller.timing import compute_plans, load_demand
from controller.timing.coordination import coordinate, stretch_plan
from intersections.loaders import load_network
from intersections.plan import check_plan, load_plans
from scenarios.library import build_scenario

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def arterial(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_scenario("arterial", tmp_path_factory.mktemp("art"))


def test_coordination_forms_a_green_wave(arterial) -> None:  # type: ignore[no-untyped-def]
    net = load_network(arterial.net)
    demand = load_demand([str(r) for r in arterial.routes], net, begin_s=1500, end_s=2400)
    plans = compute_plans(net, demand)
    out, report = coordinate(net, demand, plans)
    grp = report["groups"][0]
    assert set(grp["intersections"]) == set(arterial.corridor)
    cycles = {round(p.cycle_s, 6) for p in out}
    assert cycles == {round(max(p.cycle_s for p in plans), 6)}  # one common cycle, the longest
    assert grp["platoon_on_green_after"] > grp["platoon_on_green_before"] + 0.2
    for p in out:
        check_plan(p, net.get(p.intersection_id))
        assert 0 <= p.offset_s < p.cycle_s


def test_a_member_that_cannot_take_the_common_cycle_keeps_its_own(arterial) -> None:  # type: ignore[no-untyped-def]
    """Stretched to the group's cycle, the shortest-cycle member would run a group past a 20-s
    maximum green: it keeps its own plan and the report says why; the others still coordinate."""
    import dataclasses

    net = load_network(arterial.net)
    demand = load_demand([str(r) for r in arterial.routes], net, begin_s=1500, end_s=2400)
    plans = compute_plans(net, demand)
    short = min(plans, key=lambda p: p.cycle_s)
    inter = net.get(short.intersection_id)
    longest = max(st.green_s for st in short.stages)  # its greens are single-stage runs on the arterial
    groups = tuple(dataclasses.replace(g, max_green_s=max(longest, g.required_green_s) + 0.5) for g in inter.groups)
    net = dataclasses.replace(
        net, intersections=tuple(dataclasses.replace(i, groups=groups) if i is inter else i for i in net.intersections)
    )
    check_plan(short, net.get(short.intersection_id))  # its own plan still fits
    out, report = coordinate(net, demand, plans)
    assert short.intersection_id in report["own_cycle"]
    assert "more than its max green" in report["own_cycle"][short.intersection_id]
    kept = next(p for p in out if p.intersection_id == short.intersection_id)
    assert kept == short
    for p in out:
        check_plan(p, net.get(p.intersection_id))


def test_stretch_keeps_intergreens_and_ratios() -> None:
    from intersections.plan import PlanStage, TimingPlan

    p = TimingPlan("J", 60, 0, (PlanStage("A", 30, 5), PlanStage("B", 20, 5)))
    q = stretch_plan(p, 90)
    assert q.cycle_s == 90 and list(q.intergreens_s) == [5, 5]
    assert np.isclose(q.greens_s[0] / q.greens_s[1], 1.5)


def test_optimize_coordinate_cli(arterial, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, png = tmp_path / "plans.json", tmp_path / "tsd.png"
    rc = main(["optimize", "--net", str(arterial.net), "--demand", str(arterial.routes[0]), "--begin", "1500",
               "--end", "2400", "--out", str(out), "--coordinate", "--tsd", str(png), "--quiet"])  # fmt: skip
    assert rc == 0 and png.stat().st_size > 10_000
    plans = load_plans(out).plans
    assert len({p.cycle_s for p in plans}) == 1
    assert main(["check", "--intersection", str(arterial.net), "--plan", str(out)]) == 0
    res = subprocess.run(["file", str(png)], capture_output=True, text=True)
    assert "PNG" in res.stdout or res.returncode != 0
