"""Generated corpus (issue #15): recipes are many and varied, builds are complete, cached and demand-ordered.

The recipe checks need no tool. One small recipe (grid02, 6 signals, three entries) is built per
module in about 5 s; the pedestrian build, the byte-for-byte determinism check and the SUMO run
are marked ``slow`` (and ``sumo``).
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from intersections.errors import InputError
from scenarios.corpus import DEMAND_LEVELS, CorpusEntry
from scenarios.corpus.generated import (
    GENERATED_NETWORKS,
    LEVEL_FRACTION,
    MIXES,
    PCU,
    build_generated,
    entry_mixes,
    main,
)
from simulation.sumo_home import sumo_binary

SMALL = "grid02"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CorpusEntry]]:
    out = tmp_path_factory.mktemp("corpus")
    return out, build_generated(out, only=[SMALL])


def vtypes_of(routes: Path) -> dict[str, str]:
    return {v.get("id", ""): v.get("vClass", "") for v in ET.parse(routes).getroot().iter("vType")}


def trip_types(cfg: Path) -> Counter[str]:
    """vType counts over the vehicle routes file of a sumocfg (the one that is not pedestrians)."""
    root = ET.parse(cfg).getroot()
    files = root.find("input/route-files").get("value", "").split(",")  # type: ignore[union-attr]
    routes = cfg.parent / next(f for f in files if not f.endswith(".ped.rou.xml"))
    return Counter(t.get("type", "") for t in ET.parse(routes).getroot().iter("trip"))


# ----------------------------------------------------------------------------- recipes


def test_at_least_40_recipes_with_unique_names_and_all_kinds() -> None:
    names = [r.name for r in GENERATED_NETWORKS]
    assert len(names) >= 40 and len(set(names)) == len(names)
    assert {r.kind for r in GENERATED_NETWORKS} == {"random", "spider", "grid"}
    assert len({r.seed for r in GENERATED_NETWORKS}) == len(names)


def test_at_least_120_entries_declared_and_every_net_has_both_mixes() -> None:
    pairs = [(r.name, p) for i, r in enumerate(GENERATED_NETWORKS) for p in entry_mixes(i, r)]
    assert len(pairs) >= 3 * 40 and len(set(pairs)) == len(pairs)
    for i, r in enumerate(GENERATED_NETWORKS):
        got = entry_mixes(i, r)
        assert {level for level, _ in got} == set(DEMAND_LEVELS), r.name
        assert {mix for _, mix in got} == {"car", "moto"}, r.name
    assert sum(r.all_mixes for r in GENERATED_NETWORKS) >= 3


def test_recipes_cover_the_real_network_features() -> None:
    declared = {f for r in GENERATED_NETWORKS for f in r.features}
    assert {"joined", "short_lanes", "turn_pockets", "one_way", "pedestrians", "actuated_phases", "permissive"} <= (
        declared
    )
    params = " ".join(p for r in GENERATED_NETWORKS for p in r.params)
    for option in ("--tls.join", "--junctions.join", "--turn-lanes=", "--bidi-probability=0.", "--no-left-connections",
                   "--tls.left-green.time", "--tls.default-type=actuated", "--tls.guess.threshold", "--tls.set",
                   "--random-lanenumber", "--sidewalks.guess"):  # fmt: skip
        assert option in params, option
    for r in GENERATED_NETWORKS:
        assert r.pedestrians == ("pedestrians" in r.features), r.name


def test_demand_levels_and_mixes_follow_the_references() -> None:
    assert LEVEL_FRACTION == {"light": 0.35, "near": 0.8, "over": 1.2}
    assert PCU["motorcycle"] == 0.3 and PCU["car"] == 1.0 and 2.0 <= PCU["bus"] <= 2.5 and 2.0 <= PCU["truck"] <= 2.5
    assert MIXES["moto"]["motorcycle"] == pytest.approx(0.8) and sum(MIXES["moto"].values()) == pytest.approx(1.0)
    assert set(MIXES["car"]) == {"car", "truck"}


def test_unknown_recipe_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        build_generated(tmp_path, only=["no_such_net"])


# ----------------------------------------------------------------------------- one build


def test_build_writes_every_file_and_unique_names(small: tuple[Path, list[CorpusEntry]]) -> None:
    out, entries = small
    index = [r.name for r in GENERATED_NETWORKS].index(SMALL)
    declared = entry_mixes(index, GENERATED_NETWORKS[index])
    assert [e.name for e in entries] == [f"gen/{SMALL}/{level}/{mix}" for level, mix in declared]
    assert len({e.name for e in entries}) == len(entries) == 3
    for e in entries:
        assert e.family == "generated" and e.demand in DEMAND_LEVELS and e.mix in MIXES
        assert e.sumocfg.is_file() and e.sumocfg.parent == (out / "gen" / SMALL).resolve()
        assert 2 <= e.n_signals <= 25
        root = ET.parse(e.sumocfg).getroot()
        for key in ("net-file", "route-files"):
            for f in root.find(f"input/{key}").get("value", "").split(","):  # type: ignore[union-attr]
                assert (e.sumocfg.parent / f).is_file(), f
        assert root.find("time/begin").get("value") == "0" and root.find("time/end").get("value") == "1800"  # type: ignore[union-attr]
        assert root.find("processing/time-to-teleport").get("value") == "-1"  # type: ignore[union-attr]
        assert root.find("processing/ignore-junction-blocker") is not None
        sublane = root.find("processing/lateral-resolution")
        assert (sublane is not None) == (e.mix == "moto")


def test_demand_levels_are_ordered_in_pcu(small: tuple[Path, list[CorpusEntry]]) -> None:
    _, entries = small
    pcu = {e.demand: sum(PCU[t] * n for t, n in trip_types(e.sumocfg).items()) for e in entries}
    assert pcu["light"] < pcu["near"] < pcu["over"]
    # the ratios are those of the levels (validation may drop a few trips)
    assert pcu["over"] / pcu["light"] == pytest.approx(1.2 / 0.35, rel=0.1)


def test_moto_mix_is_motorcycle_dominated(small: tuple[Path, list[CorpusEntry]]) -> None:
    _, entries = small
    (moto,) = [e for e in entries if e.mix == "moto"]
    counts = trip_types(moto.sumocfg)
    total = sum(counts.values())
    assert counts["motorcycle"] / total == pytest.approx(0.80, abs=0.005)
    assert {"car", "bus", "truck"} <= set(counts)
    routes = moto.sumocfg.parent / f"{moto.demand}_moto.rou.xml"
    assert vtypes_of(routes)["motorcycle"] == "motorcycle"
    for e in entries:
        if e.mix == "car":
            assert set(trip_types(e.sumocfg)) == {"car", "truck"}


def test_trips_depart_in_order_over_the_whole_horizon(small: tuple[Path, list[CorpusEntry]]) -> None:
    _, entries = small
    for e in entries:
        routes = e.sumocfg.parent / f"{e.demand}_{e.mix}.rou.xml"
        departs = [float(t.get("depart", "0")) for t in ET.parse(routes).getroot().iter("trip")]
        assert departs == sorted(departs)
        assert departs[0] < 60 and departs[-1] > 1740


def test_second_build_is_skipped(small: tuple[Path, list[CorpusEntry]], capsys: pytest.CaptureFixture[str]) -> None:
    out, entries = small
    folder = out / "gen" / SMALL
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = build_generated(out, only=[SMALL])
    assert again == entries
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    assert main([str(out), "--only", SMALL]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == [e.name for e in entries]


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_pedestrian_recipe_gets_crossings_and_person_trips(tmp_path: Path) -> None:
    entries = build_generated(tmp_path, only=["spider09"])
    assert len(entries) == 3
    for e in entries:
        assert "pedestrians" in e.features
        files = ET.parse(e.sumocfg).getroot().find("input/route-files").get("value", "").split(",")  # type: ignore[union-attr]
        (ped,) = [f for f in files if f.endswith(".ped.rou.xml")]
        assert len(list(ET.parse(e.sumocfg.parent / ped).getroot().iter("person"))) > 0


@pytest.mark.slow
def test_builds_are_deterministic(tmp_path: Path, small: tuple[Path, list[CorpusEntry]]) -> None:
    out, _ = small
    build_generated(tmp_path, only=[SMALL])
    first, second = out / "gen" / SMALL, tmp_path / "gen" / SMALL
    for p in sorted(first.iterdir()):
        assert (second / p.name).read_bytes() == p.read_bytes(), p.name


@pytest.mark.slow
@pytest.mark.sumo
def test_sumo_runs_an_entry_to_the_end(small: tuple[Path, list[CorpusEntry]]) -> None:
    _, entries = small
    (car,) = [e for e in entries if e.mix == "car" and e.demand == "light"]
    res = subprocess.run(
        [sumo_binary("sumo"), "-c", str(car.sumocfg), "--time-to-teleport", "-1", "--no-step-log",
         "--duration-log.statistics"],
        capture_output=True, text=True, timeout=300, cwd=car.sumocfg.parent,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Error" not in res.stderr
    assert "Inserted:" in res.stdout
