"""City scenarios (#18): the ~100-signal city builds in seconds, has its signals, buses and peak; plans for it.

The 1,000-signal ``hanoi_city`` is only laid out here (no netconvert): building and running it is
``benchmarks/bench_city.py``'s job, not CI's.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from gwconfig import assert_edit_refused

from api.cli import main as cli_main
from intersections.loaders.sumo_net import load_sumo_net
from intersections.plan import check_plan, load_plans
from scenarios.library import BuiltScenario, build_scenario, load_scenario_def, scenario_names
from scenarios.library.city import city_layout
from scenarios.library.definition import CITY_DIR, city_names

SMALL = "hanoi_city_small"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltScenario, float]:
    t0 = time.perf_counter()
    b = build_scenario(SMALL, tmp_path_factory.mktemp("city"))
    return b, time.perf_counter() - t0


def _tls(net: Path) -> list[str]:
    return [t.attrib["id"] for t in ET.parse(net).getroot().iter("tlLogic")]


def test_city_names_are_found_but_kept_out_of_the_quick_library() -> None:
    assert {"hanoi_city", SMALL} <= set(city_names())
    assert not set(city_names()) & set(scenario_names())
    assert load_scenario_def(SMALL).source == CITY_DIR / f"{SMALL}.toml"


def test_small_city_builds_in_seconds_with_about_100_signals(small: tuple[BuiltScenario, float]) -> None:
    b, build_s = small
    assert build_s < 30.0, f"building {SMALL} took {build_s:.1f} s"
    assert 100 <= len(_tls(b.net)) <= 200
    assert load_scenario_def(SMALL).n_signals == len(_tls(b.net))  # the layout says what netconvert builds


def test_build_is_cached(small: tuple[BuiltScenario, float]) -> None:
    b, _ = small
    stamp = {p: p.stat().st_mtime_ns for p in (b.net, *b.routes, b.sumocfg)}
    t0 = time.perf_counter()
    again = build_scenario(SMALL, b.directory)
    assert time.perf_counter() - t0 < 2.0
    assert again == b and {p: p.stat().st_mtime_ns for p in stamp} == stamp


def test_build_is_deterministic(small: tuple[BuiltScenario, float], tmp_path: Path) -> None:
    b, _ = small
    again = build_scenario(SMALL, tmp_path)
    for mine, theirs in ((b.net, again.net), (b.routes[0], again.routes[0])):
        assert mine.read_bytes() == theirs.read_bytes()
    other = build_scenario(SMALL, tmp_path / "seed7", seed=7)  # another seed: other trips, same city
    assert other.net.read_bytes() == b.net.read_bytes()
    assert other.routes[0].read_bytes() != b.routes[0].read_bytes()


def test_hanoi_city_lays_out_at_least_1000_signals_on_rings_and_radial_arterials() -> None:
    d = load_scenario_def("hanoi_city")
    lay = city_layout(d.network)
    assert len(lay.signals) >= 1000
    legs: Counter[str] = Counter()
    for a, b, _art in lay.links:
        legs[a] += 1
        legs[b] += 1
    by_legs = Counter(legs[s] for s in lay.signals)
    assert by_legs[3] > 200 and by_legs[4] > 200  # T and four-leg junctions: no plain grid
    arterial = {frozenset((a, b)) for a, b, art in lay.links if art}
    for arm in lay.arms:  # straight radial arterials from the centre to the fringe
        assert all(frozenset(p) in arterial for p in itertools.pairwise(arm))
    ring = list(lay.ring)
    assert all(frozenset(p) in arterial for p in zip(ring, ring[1:] + ring[:1], strict=True))


def test_demand_is_motorcycle_dominated_and_builds_to_a_peak_and_fades(small: tuple[BuiltScenario, float]) -> None:
    b, _ = small
    root = ET.parse(b.routes[0]).getroot()
    vehicles = list(root.iter("vehicle"))
    classes = {v.get("id"): v.get("vClass") for v in root.iter("vType")}
    share = Counter(classes[v.get("type")] for v in vehicles)
    assert share["motorcycle"] / len(vehicles) > 0.8
    departs = [float(v.attrib["depart"]) for v in vehicles]
    assert departs == sorted(departs)
    per_20min = Counter(int(t // 1200) for t in departs)  # 0..5 over the two hours
    peak = max(per_20min, key=lambda k: per_20min[k])
    assert peak in (2, 3)
    assert per_20min[0] < 0.6 * per_20min[peak] and per_20min[5] < 0.6 * per_20min[peak]


def test_buses_run_on_their_lines(small: tuple[BuiltScenario, float]) -> None:
    b, _ = small
    root = ET.parse(b.routes[0]).getroot()
    routes = {r.attrib["id"]: r.attrib["edges"].split() for r in root.iter("route") if "id" in r.attrib}
    net = ET.parse(b.net).getroot()
    ends = {e.get("id"): (e.get("from"), e.get("to")) for e in net.iter("edge") if e.get("function") != "internal"}
    buses = [f for f in root.iter("flow") if f.get("type") == "bus"]
    assert {f.get("line") for f in buses} == {"bus_ew", "bus_we", "bus_ns", "bus_sn", "bus_ring"}
    for f in buses:
        assert int(f.attrib["personNumber"]) > 0
        edges = routes[f.attrib["route"]]
        assert len(edges) >= 6
        for e, nxt in itertools.pairwise(edges):  # a connected path of real edges
            assert ends[e][1] == ends[nxt][0]


def test_optimize_coordinate_on_the_small_city_gives_checked_plans(
    small: tuple[BuiltScenario, float], tmp_path: Path
) -> None:
    b, _ = small
    out = tmp_path / "plans.json"
    t0 = time.perf_counter()
    rc = cli_main(["optimize", "--net", str(b.net), "--demand", str(b.routes[0]), "--coordinate",
                   "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0 and time.perf_counter() - t0 < 20.0
    network = load_sumo_net(b.net)
    plans = load_plans(out)
    assert len(plans.plans) == len(network.intersections)
    for p in plans.plans:
        check_plan(p, network.get(p.intersection_id))
    groups = json.loads(out.read_text())["coordination"]["groups"]
    assert groups and max(len(g["intersections"]) for g in groups) >= 20
    by_id = {p.intersection_id: p for p in plans.plans}
    for g in groups:  # one common cycle per coordinated group
        assert {by_id[i].cycle_s for i in g["intersections"]} == {g["cycle_s"]}
        assert g["platoon_on_green_after"] >= g["platoon_on_green_before"]


def _never_green(net: Path, victim: str, out: Path) -> None:
    """``net`` with ``victim``'s program red on every link: SUMO runs it, greenwave cannot model it."""
    text = net.read_text()
    m = re.search(rf'<tlLogic id="{victim}".*?</tlLogic>', text, re.S)
    assert m
    block = re.sub(r'state="([^"]+)"', lambda s: 'state="{}"'.format(re.sub("[Gg]", "r", s.group(1))), m.group(0))
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.write(text[: m.start()] + block + text[m.end() :])


def test_a_junction_the_engine_cannot_model_keeps_its_program_and_is_listed_once(
    small: tuple[BuiltScenario, float], tmp_path: Path
) -> None:
    b, _ = small
    victim = _tls(b.net)[5]
    net = tmp_path / "broken.net.xml.gz"
    _never_green(b.net, victim, net)
    network = load_sumo_net(net)
    assert network.unmodelled == ((victim, f"traffic light {victim}: no link is ever green in program '0'"),)
    assert len(network.intersections) == len(_tls(b.net)) - 1


@pytest.mark.sumo
def test_a_city_run_goes_on_around_a_junction_it_cannot_model(
    small: tuple[BuiltScenario, float], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from simulation.runner import resolve_run, simulate

    b, _ = small
    victim = _tls(b.net)[5]
    net = tmp_path / "broken.net.xml.gz"
    _never_green(b.net, victim, net)
    spec = resolve_run(net=net, routes=list(b.routes), begin_s=0.0, end_s=60.0, model="meso")
    with caplog.at_level("WARNING", logger="greenwave"):
        k = simulate(spec, "adaptive")
    assert [t for t, _why in k["meta"]["unmodelled"]] == [victim]  # counted and listed once in the report
    assert [r.getMessage() for r in caplog.records if "keeps its own program" in r.getMessage()] == [
        f"traffic light {victim} keeps its own program: traffic light {victim}: no link is ever green in program '0'"
    ]
    assert k["meta"]["ticks"] == 60


CITY = (CITY_DIR / "hanoi_city.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("arterial_ring = 9 ", "arterial_ring = 30 ", "network.arterial_ring", "1..18"),
        ("rings = 18 ", "rings = 1 ", "network.rings", ">= 2"),
        ("jitter_m = 35", "jitter_m = 80", "network.jitter_m", "quarter"),
        ("from_arm = 0\n", "from_arm = 8\n", "demand.city.bus[0].from_arm", "arms 0..7"),
        ("to_arm = 4\n", "to_arm = 0\n", "demand.city.bus[0].to_arm", "another arm"),
        ('kind = "ring"', 'kind = "loop"', "demand.city.bus[4].kind", "radial"),
        ("persons = 50\n", "persons = 500\n", "demand.city.bus[0].persons", "personCapacity"),
        ("[demand.city]", "[demand.corridor]", "demand.corridor", "city"),
        ("peak_veh_h = 9000", "peak_veh_h = -1", "demand.city.peak_veh_h", ">= 0"),
    ],
)
def test_bad_city_definitions_are_refused_in_one_line(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    assert_edit_refused(tmp_path, CITY, old, new, field, words)


@pytest.mark.sumo
@pytest.mark.slow
def test_a_few_minutes_of_the_small_city_in_meso_under_adaptive(small: tuple[BuiltScenario, float]) -> None:
    from simulation.runner import resolve_run, simulate

    b, _ = small
    spec = resolve_run(sumocfg=b.sumocfg, begin_s=0.0, end_s=240.0, model="meso")
    k = simulate(spec, "adaptive")
    assert k["meta"]["model"] == "meso" and k["meta"]["ticks"] == 240
    assert k["meta"]["unmodelled"] == [] and k["meta"]["safety_events"] == 0
    assert k["vehicles"] > 20 and k["throughput_veh"] > 0
    assert "queue_veh" in k["meta"]["estimated"]  # meso's queues are estimated, and the report says so
