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
