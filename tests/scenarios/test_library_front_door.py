"""The scenario library's front door: a package of one module per job, the same public names.

The public names (``__all__``) are locked with every other front door's, in tests/test_all_exports.py.
"""

from __future__ import annotations

import scenarios.library as library


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
