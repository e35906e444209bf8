import numpy as np
import pytest
from gwfactories import four_leg, two_phase

from intersections.errors import InputError
from intersections.model import GroupKind, Intersection, SignalGroup, Stage


def test_four_leg_is_consistent() -> None:
    j = four_leg()
    assert j.group_ids == ("NS", "EW", "NL", "EL", "PE")
    assert j.conflicts[0, 1] and j.conflicts[1, 0] and not j.conflicts[0, 4]
    # Diagonal carries each group's own clearance.
    assert j.intergreen_s[0, 0] == 5 and j.intergreen_s[4, 4] == 12  # ped clearance 10 + all-red 2
    assert j.group("PE").kind is GroupKind.PEDESTRIAN and j.group("PE").yellow_s == 0
    assert j.group("PE").required_green_s == 7


def test_transition_is_largest_intergreen_or_yellow() -> None:
    j = four_leg()
    assert j.transition_s("S1", "S2") == 12  # PE (ped clearance 10 + 2) conflicts with NL
    assert j.transition_s("S2", "S3") == 4  # NL 3 + 1
    assert j.transition_s("S3", "S4") == 3  # EW and EL do not conflict: only the yellow
    assert j.transition_s("S4", "S1") == 4
    # Nothing conflicting starts: the ending vehicle group still shows its full yellow.
    assert j.clearance_between_s(frozenset({"NS"}), frozenset({"PE"})) == 3


def test_arrays_are_frozen() -> None:
    j = two_phase()
    with pytest.raises(ValueError):
        j.conflicts[0, 1] = False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_green_s": "abc"}, "signal group X: min_green_s must be a number of seconds, got 'abc'"),
        ({"yellow_s": -1}, "signal group X: yellow_s must be >= 0 seconds, got -1"),
        ({"min_green_s": 20, "max_green_s": 10}, "max_green_s (10.0) is below min_green_s (20.0)"),
        ({"all_red_s": float("nan")}, "all_red_s must be >= 0 seconds"),
    ],
)
def test_bad_group_values(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError) as e:
        SignalGroup("X", **kwargs)
    assert message in str(e.value)


def _two(conflict: bool = True, ig: float = 5.0, stages=None) -> Intersection:
    g = (SignalGroup("A"), SignalGroup("B"))
    c = np.array([[False, conflict], [conflict, False]])
    return Intersection("K", g, c, np.full((2, 2), ig), stages or (Stage("S1", {"A"}), Stage("S2", {"B"})))


def test_stage_with_conflicting_groups_is_refused() -> None:
    with pytest.raises(InputError, match="intersection K: stage S1 holds conflicting groups A and B"):
        _two(stages=(Stage("S1", {"A", "B"}),))


def test_unknown_group_in_stage() -> None:
    with pytest.raises(InputError, match=r"stage S1 names unknown signal groups \['Z'\]"):
        _two(stages=(Stage("S1", {"Z"}), Stage("S2", {"A", "B"})))


def test_intergreen_shorter_than_yellow_is_refused() -> None:
    with pytest.raises(InputError, match="intergreen A->B is 2 s, shorter than A's yellow 3 s"):
        _two(ig=2.0)


def test_unserved_group_and_asymmetric_conflicts() -> None:
    with pytest.raises(InputError, match=r"signal groups \['B'\] are served by no stage"):
        _two(stages=(Stage("S1", {"A"}),))
    g = (SignalGroup("A"), SignalGroup("B"))
    with pytest.raises(InputError, match="not symmetric"):
        Intersection("K", g, np.array([[0, 1], [0, 0]], bool), np.full((2, 2), 5.0), (Stage("S", {"A"}),))


def test_a_yielding_member_must_belong_to_its_stage() -> None:
    with pytest.raises(InputError, match=r"yielding groups \['B'\] are not members"):
        Stage("S1", {"A"}, yielding={"B"})
    assert Stage("S1", {"A", "B"}, yielding={"B"}).yielding == frozenset({"B"})
