"""Scenario library: definitions validate, builds are deterministic and cached, demand is right.

Building runs netgenerate/netconvert (well under a second each); the tests that
run the simulator are marked ``sumo`` (and ``slow`` for the full horizons).
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from intersections.errors import InputError
from scenarios.library import (
    DEFS_DIR,
    BuiltScenario,
    build_scenario,
    iter_flows,
    load_scenario_def,
    scenario_names,
)
from simulation.sumo_home import sumo_binary

BENCHMARKS = ("grid4x4", "arterial", "hanoi_mixed")
ALL = ("demo", *BENCHMARKS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltScenario]:
    root = tmp_path_factory.mktemp("scenarios")
    return {name: build_scenario(name, root / name) for name in ALL}


def flow_rate_veh_h(flow: dict[str, str]) -> float:
    """Mean rate of a ``<flow>``: vehsPerHour, period (s) or period="exp(rate per s)"."""
    if "vehsPerHour" in flow:
        return float(flow["vehsPerHour"])
    period = flow["period"]
    m = re.fullmatch(r"exp\((.+)\)", period)
    return 3600.0 * float(m.group(1)) if m else 3600.0 / float(period)


def vtype_classes(routes: Path) -> dict[str, dict[str, str]]:
    return {v.get("id"): dict(v.attrib) for v in ET.parse(routes).getroot().iter("vType")}


def vehicles_by_class(routes: Path) -> dict[str, float]:
    """Expected vehicles per vClass over the file (rate x duration of every flow)."""
    classes = vtype_classes(routes)
    out: dict[str, float] = defaultdict(float)
    for f in iter_flows(routes):
        hours = (float(f["end"]) - float(f["begin"])) / 3600.0
        out[classes[f["type"]]["vClass"]] += flow_rate_veh_h(f) * hours
    return dict(out)


def tls_ids(net: Path) -> list[str]:
    return [t.get("id") for t in ET.parse(net).getroot().iter("tlLogic")]


# ----------------------------------------------------------------------------- library


def test_library_lists_the_issue_scenarios() -> None:
    assert set(ALL) <= set(scenario_names())


@pytest.mark.parametrize("name", ALL)
def test_build_writes_all_files(built: dict[str, BuiltScenario], name: str) -> None:
    b = built[name]
    assert b.name == name and b.description
    for p in (b.net, *b.routes, b.sumocfg, b.directory / f"{name}.toml", b.directory / f"{name}.build.json"):
        assert p.is_file() and p.stat().st_size > 0, p
    assert b.net.name == f"{name}.net.xml" and b.routes[0].name == f"{name}.rou.xml"  # ./dev run relies on these
    assert b.begin_s == 0 and b.end_s > b.begin_s
    cfg = ET.parse(b.sumocfg).getroot()
    assert cfg.find("input/net-file").get("value") == b.net.name
    assert cfg.find("random_number/seed").get("value") == str(b.seed)
    assert "--seed" in b.sumo_args and str(b.net) in b.sumo_args


@pytest.mark.parametrize(("name", "n_signals"), [("grid4x4", 16), ("arterial", 8), ("demo", 9)])
def test_signal_counts(built: dict[str, BuiltScenario], name: str, n_signals: int) -> None:
    assert len(tls_ids(built[name].net)) == n_signals


def test_hanoi_mixed_has_a_corridor_of_at_least_four_signals(built: dict[str, BuiltScenario]) -> None:
    assert len(tls_ids(built["hanoi_mixed"].net)) >= 4


@pytest.mark.parametrize("name", ["arterial", "hanoi_mixed"])
def test_corridor_lists_the_main_road_signals_west_to_east(built: dict[str, BuiltScenario], name: str) -> None:
    b = built[name]
    assert b.corridor and set(b.corridor) == set(tls_ids(b.net))
    xs = {
        j.get("id"): float(j.get("x"))
        for j in ET.parse(b.net).getroot().iter("junction")
        if j.get("type") == "traffic_light"
    }
    along = [xs[t] for t in b.corridor]
    assert along == sorted(xs.values())
    spacing = {round(x1 - x0) for x0, x1 in itertools.pairwise(along)}
    assert len(spacing) > 1  # irregular: no single cycle fits every link


def test_grids_have_no_corridor(built: dict[str, BuiltScenario]) -> None:
    assert built["grid4x4"].corridor == () and built["demo"].corridor == ()


# ----------------------------------------------------------------------------- determinism and cache


@pytest.mark.parametrize("name", ALL)
def test_build_is_deterministic(built: dict[str, BuiltScenario], tmp_path: Path, name: str) -> None:
    again = build_scenario(name, tmp_path / "again", seed=built[name].seed)
    for ext in ("net.xml", "rou.xml", "sumocfg", "build.json"):
        first = (built[name].directory / f"{name}.{ext}").read_bytes()
        assert first == (again.directory / f"{name}.{ext}").read_bytes(), ext


def test_seed_changes_the_demand_not_the_network(built: dict[str, BuiltScenario], tmp_path: Path) -> None:
    other = build_scenario("arterial", tmp_path, seed=7)
    assert other.net.read_bytes() == built["arterial"].net.read_bytes()
    assert other.routes[0].read_bytes() != built["arterial"].routes[0].read_bytes()
    assert ET.parse(other.sumocfg).getroot().find("random_number/seed").get("value") == "7"


def test_cache_reuses_a_matching_build_and_rebuilds_on_change(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text((DEFS_DIR / "arterial.toml").read_text().replace('name = "arterial"', 'name = "mine"'))
    out = tmp_path / "out"
    first = build_scenario(user, out)
    stamp = first.routes[0].stat().st_mtime_ns
    time.sleep(0.01)
    assert build_scenario(user, out) == first
    assert first.routes[0].stat().st_mtime_ns == stamp  # reused, not rewritten
    user.write_text(user.read_text().replace("side_peak_veh_h = 220", "side_peak_veh_h = 240"))
    build_scenario(user, out)
    assert first.routes[0].stat().st_mtime_ns != stamp
    build_scenario(user, out, seed=3)
    assert '"seed": 3' in (out / "mine.build.json").read_text()


def test_a_users_toml_path_builds(tmp_path: Path) -> None:
    user = tmp_path / "corridor3.toml"
    text = (DEFS_DIR / "arterial.toml").read_text()
    text = text.replace('name = "arterial"', 'name = "corridor3"')
    text = text.replace("spacing_m = [320, 260, 390, 280, 350, 250, 380]", "spacing_m = [300, 350]")
    user.write_text(text)
    b = build_scenario(str(user), tmp_path / "out")
    assert b.name == "corridor3" and b.corridor == ("J1", "J2", "J3")


# ----------------------------------------------------------------------------- demand


@pytest.mark.parametrize("name", BENCHMARKS)
def test_demand_builds_to_a_peak_and_fades(built: dict[str, BuiltScenario], name: str) -> None:
    per_slice: dict[float, float] = defaultdict(float)
    for f in iter_flows(built[name].routes[0]):
        if f["type"] != "bus":
            per_slice[float(f["begin"])] += flow_rate_veh_h(f)
    rates = [per_slice[k] for k in sorted(per_slice)]
    assert len(rates) >= 6
    peak = max(rates)
    assert peak > 1.5 * rates[0] and peak > 1.5 * rates[-1]
    assert rates.index(peak) not in (0, len(rates) - 1)


def test_hanoi_mixed_is_motorcycle_dominated(built: dict[str, BuiltScenario]) -> None:
    by_class = vehicles_by_class(built["hanoi_mixed"].routes[0])
    assert by_class["motorcycle"] / sum(by_class.values()) >= 0.70


def test_hanoi_mixed_uses_the_sublane_model_no_wider_than_a_motorcycle(built: dict[str, BuiltScenario]) -> None:
    b = built["hanoi_mixed"]
    res = float(ET.parse(b.sumocfg).getroot().find("processing/lateral-resolution").get("value"))
    assert b.sumo_args[b.sumo_args.index("--lateral-resolution") + 1] == f"{res:g}"
    motorcycles = [v for v in vtype_classes(b.routes[0]).values() if v["vClass"] == "motorcycle"]
    assert motorcycles and all(res <= float(v["width"]) for v in motorcycles)
    assert all(float(v["width"]) <= 0.8 and float(v["length"]) <= 2.1 for v in motorcycles)


@pytest.mark.parametrize("name", ALL)
def test_motorcycle_vtype_uses_the_motorcycle_class(built: dict[str, BuiltScenario], name: str) -> None:
    vtypes = vtype_classes(built[name].routes[0])
    assert vtypes["motorcycle"]["vClass"] == "motorcycle"


@pytest.mark.parametrize("name", ["arterial", "hanoi_mixed"])
def test_bus_lines_carry_passengers(built: dict[str, BuiltScenario], name: str) -> None:
    routes = built[name].routes[0]
    vtypes = vtype_classes(routes)
    buses = [f for f in iter_flows(routes) if vtypes[f["type"]]["vClass"] == "bus"]
    assert len(buses) >= 2
    for f in buses:
        assert 0 < int(f["personNumber"]) <= int(vtypes[f["type"]]["personCapacity"])


def test_flows_are_sorted_by_begin(built: dict[str, BuiltScenario]) -> None:
    for b in built.values():
        begins = [float(f["begin"]) for f in iter_flows(b.routes[0])]
        assert begins == sorted(begins)  # SUMO skips unsorted departures


# ----------------------------------------------------------------------------- bad definitions

GOOD = (DEFS_DIR / "hanoi_mixed.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ('generator = "corridor"', 'generator = "corridor"\nlanes_total = 3', "network.lanes_total", "unknown field"),
        ("main_lanes = 2 ", "main_lanes = -2 ", "network.main_lanes", ">= 1"),
        ("main_lanes = 2 ", 'main_lanes = "two" ', "network.main_lanes", "number"),
        ("side_through = 0.30", "side_through = 0.50", "demand.corridor.side_through", "sum to 1"),
        ("lateral_resolution_m = 0.7", "lateral_resolution_m = 1.2", "sumo.lateral_resolution_m", "wider"),
        ('vClass = "motorcycle"', 'vClass = "passenger"', "vtypes.motorcycle.vClass", "motorcycle"),
        ("mix = { motorcycle = 0.85,", "mix = { scooter = 0.85,", "demand.mix.scooter", "unknown vType"),
        ("slice_s = 300", "", "demand.slice_s", "missing"),
        ("[[0, 0.35], [600, 0.55]", "[[600, 0.35], [0, 0.55]", "demand.profile[1][0]", "increase"),
        ('generator = "corridor"', 'generator = "spider"', "network.generator", "one of"),
        ("[demand.corridor]", "[demand.grid]", "demand.corridor", "missing"),
        ("persons = 55", "persons = 500", "demand.bus[0].persons", "personCapacity"),
        ("width = 0.7 ", "widht = 0.7 ", "vtypes.motorcycle.widht", "unknown vType attribute"),
        ("demand_end_s = 3300", "demand_end_s = 4000", "horizon.demand_end_s", "must be in"),
    ],
)
def test_bad_definitions_are_refused_naming_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    assert old in GOOD
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as e:
        load_scenario_def(bad)
    assert e.value.where == f"{bad}:{field}"
    assert words in str(e.value)


def test_malformed_toml_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[network\n')
    with pytest.raises(InputError, match="not valid TOML") as e:
        load_scenario_def(bad)
    assert e.value.where == str(bad)


def test_unknown_names_and_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown scenario 'nope'.*grid4x4"):
        build_scenario("nope", tmp_path)
    with pytest.raises(InputError, match="not found"):
        build_scenario(tmp_path / "missing.toml", tmp_path)
    with pytest.raises(InputError, match="seed"):
        build_scenario("demo", tmp_path, seed=-1)


@pytest.mark.parametrize("name", ALL)
def test_library_definitions_validate(name: str) -> None:
    d = load_scenario_def(name)
    assert d.name == name and d.source == DEFS_DIR / f"{name}.toml"


# ----------------------------------------------------------------------------- with SUMO


@pytest.mark.sumo
def test_sumo_args_start_libsumo(built: dict[str, BuiltScenario]) -> None:
    import libsumo

    b = built["hanoi_mixed"]
    libsumo.start([sumo_binary("sumo"), *b.sumo_args])
    try:
        assert set(libsumo.trafficlight.getIDList()) == set(b.corridor)
        for _ in range(120):
            libsumo.simulationStep()
        assert libsumo.vehicle.getIDCount() > 0
    finally:
        libsumo.close()


@pytest.mark.sumo
@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_full_horizon_runs_under_a_minute(built: dict[str, BuiltScenario], tmp_path: Path, name: str) -> None:
    b = built[name]
    stats = tmp_path / "stats.xml"
    t0 = time.perf_counter()
    res = subprocess.run(
        [sumo_binary("sumo"), "-c", str(b.sumocfg), "--statistic-output", str(stats), "--no-warnings"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall_s = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Error" not in res.stderr
    assert wall_s < 60.0, f"{name} took {wall_s:.1f} s"
    root = ET.parse(stats).getroot()
    inserted = int(root.find("vehicles").get("inserted"))
    assert inserted > 1000
    if name in BENCHMARKS:  # the demo is deliberately flat and heavy; the benchmarks must not jam
        assert int(root.find("teleports").get("total")) <= 0.005 * inserted
        assert int(root.find("vehicles").get("waiting")) == 0  # no insertion backlog at the end
