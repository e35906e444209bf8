"""The scenario library's front door: a package of one module per job, the same public names."""

from __future__ import annotations

import scenarios.library as library


def test_the_public_names_are_locked() -> None:
    assert sorted(library.__all__) == sorted(
        [
            "BuiltScenario",
            "ScenarioDef",
            "build_scenario",
            "detector_faults",
            "load_scenario_def",
            "scenario_names",
            "iter_flows",
            "DEFS_DIR",
            "VEHICLE_MIX",
            "write_vtypes",
        ]
    )
    assert all(hasattr(library, name) for name in library.__all__)


def test_each_job_has_its_module() -> None:
    from scenarios.library import build, definition, network, od, schema, timetable, writers

    assert library.build_scenario is build.build_scenario
    assert library.load_scenario_def is definition.load_scenario_def
    assert library.ScenarioDef is schema.ScenarioDef
    assert {network.__name__, od.__name__, timetable.__name__, writers.__name__} == {
        f"scenarios.library.{m}" for m in ("network", "od", "timetable", "writers")
    }


def test_the_generated_corpus_still_finds_the_helpers_it_shares() -> None:
    for name in ("_CFG_SECTIONS", "SumoSpec", "_fmt", "_run", "_strip_timestamp", "_sumo_version", "_xml_attrs"):
        assert hasattr(library, name), name
