import json
from pathlib import Path

import pytest
from gwfactories import four_leg

from intersections.errors import InputError, PlanError
from intersections.plan import (
    PlanStage,
    TimingPlan,
    check_plan,
    load_plans,
    plan_problems,
    plan_to_json,
    save_plans,
)


def good_plan() -> TimingPlan:
    # S1 -> S2 needs 12 s (ped clearance), S2 -> S3 4 s, S3 -> S4 3 s, S4 -> S1 4 s.
    stages = (PlanStage("S1", 30, 12), PlanStage("S2", 8, 4), PlanStage("S3", 25, 3), PlanStage("S4", 6, 4))
    return TimingPlan("J1", 92, 10, stages)


def test_good_plan_passes() -> None:
    j = four_leg()
    assert plan_problems(good_plan(), j) == []
    assert check_plan(good_plan(), j) is not None


def test_every_problem_is_listed_with_its_field() -> None:
    j = four_leg()
    p = TimingPlan(
        "J1",
        80,
        95,
        (PlanStage("S1", 5, 3), PlanStage("S2", 8, 4), PlanStage("S9", 25, 3), PlanStage("S4", 6, 4)),
    )
    problems = plan_problems(p, j)
    assert "cycle_s: 80 s does not equal greens + intergreens = 58 s" in problems
    assert "offset_s: 95 s must be in [0, cycle_s=80)" in problems
    assert "stages[0].intergreen_s: 3 s is shorter than the required clearance 12 s from S1 to S2" in problems
    assert any(m.startswith("stages[2].stage: unknown stage 'S9'") for m in problems)
    assert "stages[0].green_s: signal group NS gets 5 s of green, less than its min green 7 s" in problems
    assert "stages[0].green_s: signal group PE gets 5 s of green, less than its WALK 7 s" in problems
    assert "stages: signal group EW is never served" in problems


def test_conflicting_groups_in_a_plan_stage() -> None:
    j = four_leg()
    p = TimingPlan("J1", 60, 0, (PlanStage("X", 25, 5, frozenset({"NS", "EW"})), PlanStage("S2", 25, 5)))
    problems = plan_problems(p, j)
    assert "stages[0].groups: conflicting groups NS and EW are green together" in problems


def _split_stage_plan(b_green_s: float) -> TimingPlan:
    # NS stays green from stage "a" (NS + PE) into stage "b" (NS only); PE ends after "a".
    stages = (
        PlanStage("a", 7, 0, frozenset({"NS", "PE"})),
        PlanStage("b", b_green_s, 5, frozenset({"NS"})),
        PlanStage("S3", 10, 3),
        PlanStage("S4", 6, 4),
        PlanStage("S2", 6, 4),
    )
    return TimingPlan("J1", 45 + b_green_s, 0, stages)


def test_group_green_across_consecutive_stages_counts_as_one_run() -> None:
    # NS: 7 + 0 + 7 = 14 s of green in one run; PE's 12 s clearance ends before EW starts (0 + 7 + 5).
    assert plan_problems(_split_stage_plan(7), four_leg()) == []


def test_clearance_across_a_short_stage_is_checked() -> None:
    # With "b" cut to 1 s, EW would start 6 s after the crossing's WALK ended: its clearance is 12 s.
    # No single stage-to-stage transition shows it (found in review of the SUMO loader).
    problems = plan_problems(_split_stage_plan(1), four_leg())
    assert problems == [
        "stages[2]: signal group EW starts 6 s after conflicting group PE ends (stages[0]), less than their "
        "intergreen 12 s"
    ]


def test_check_plan_raises_with_all_problems() -> None:
    j = four_leg()
    bad = TimingPlan("J1", 10, 0, good_plan().stages)
    with pytest.raises(PlanError) as e:
        check_plan(bad, j, source="plans.json")
    assert e.value.where == "plans.json: intersection J1"
    assert any("cycle_s" in p for p in e.value.problems)


def test_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    save_plans([good_plan()], f)
    back = load_plans(f).plans[0]
    assert plan_to_json(back) == plan_to_json(good_plan())


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        ('{"plans": [{"cycle_s": 60, "stages": []}]}', "plans[0]: missing or empty field 'intersection'"),
        (
            '{"intersection": "J1", "cycle_s": "sixty", "stages": [{"stage": "S1", "green_s": 1, "intergreen_s": 1}]}',
            "(intersection J1): cycle_s: must be a number of seconds, got 'sixty'",
        ),
        (
            '{"intersection": "J1", "cycle_s": 60, "stages": [{"stage": "S1", "green_s": -4, "intergreen_s": 1}]}',
            "stages[0]: green_s: must be >= 0 seconds, got -4",
        ),
        (
            '{"intersection": "J1", "cycle_s": 60, "stages": [{"stage": "S1", "intergreen_s": 1}]}',
            "stages[0]: missing field 'green_s'",
        ),
    ],
)
def test_malformed_plan_files(tmp_path: Path, doc: str, message: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(doc)
    with pytest.raises(InputError) as e:
        load_plans(f)
    assert message in str(e.value)
    assert str(f) in str(e.value)


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_plans(tmp_path / "nope.json")


def test_plan_json_is_documented_shape() -> None:
    d = plan_to_json(good_plan())
    assert set(d) == {"intersection", "cycle_s", "offset_s", "stages"}
    assert json.dumps(d)


def test_the_issue_86400_s_cycle_is_refused_for_cycle_and_max_green() -> None:
    """The plan of issue #17: an 86,400-s cycle with an 86,374-s green passed the checker."""
    base = good_plan()
    stages = (PlanStage("S1", 86_374 - 37, 12), *base.stages[1:])
    p = TimingPlan("J1", 86_400 - 37 + 55, 0, stages)
    problems = plan_problems(p, four_leg())
    assert f"cycle_s: {p.cycle_s:g} s is above the maximum cycle 240 s" in problems
    assert any(m.startswith("stages[0].green_s: signal group NS gets") and "more than its max green 60 s" in m
               for m in problems)  # fmt: skip


def test_the_maximum_cycle_is_configurable() -> None:
    # good_plan's cycle is 92 s: fine under the default, refused under a 90-s deployment limit.
    assert plan_problems(good_plan(), four_leg()) == []
    assert plan_problems(good_plan(), four_leg(), max_cycle_s=90) == ["cycle_s: 92 s is above the maximum cycle 90 s"]
    with pytest.raises(PlanError):
        check_plan(good_plan(), four_leg(), max_cycle_s=90)


def test_max_green_counts_a_run_across_consecutive_stages() -> None:
    # NS is green through "a" and "b": 7 + 0 + b. At b = 53 the run is exactly 60 s (allowed); 54 s is 61 s.
    assert plan_problems(_split_stage_plan(53), four_leg()) == []
    assert plan_problems(_split_stage_plan(54), four_leg()) == [
        "stages[0].green_s: signal group NS gets 61 s of green, more than its max green 60 s"
    ]


def test_a_crossing_is_not_held_to_max_green_by_a_long_stage() -> None:
    """A crossing shows WALK for its walk time and rests in DON'T WALK however long its stage
    runs (controller.safety), so a 90-s S1 is refused for NS's 60-s maximum, never for PE's."""
    j = four_leg()
    stages = (PlanStage("S1", 90, 12), *good_plan().stages[1:])
    p = TimingPlan("J1", 92 - 30 + 90, 0, stages)
    assert plan_problems(p, j) == [
        "stages[0].green_s: signal group NS gets 90 s of green, more than its max green 60 s"
    ]
