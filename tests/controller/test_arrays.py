"""The fast short-axis reductions agree with numpy's own, on any shape the engine uses."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from controller.arrays import any_rows, any_set, min_rows

shapes = array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9)


@given(arrays(bool, shapes))
def test_any_rows_and_any_set_match_numpy(x: np.ndarray) -> None:
    np.testing.assert_array_equal(any_rows(x), x.any(axis=-1))
    assert any_set(x) == bool(x.any())


@given(arrays(float, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9), elements=st.floats(-1e6, 1e6)))
def test_min_rows_matches_numpy(x: np.ndarray) -> None:
    np.testing.assert_array_equal(min_rows(x), x.min(axis=-1))


def test_non_contiguous_input() -> None:
    x = np.arange(60.0).reshape(5, 12)[:, ::3]  # a strided view
    np.testing.assert_array_equal(min_rows(x), x.min(axis=-1))
    np.testing.assert_array_equal(any_rows(x > 30), (x > 30).any(axis=-1))


def test_any_rows_on_strided_and_transposed_bool_views() -> None:
    x = np.arange(64).reshape(8, 8) % 5 == 0
    for v in (x[:, ::2], x.T, x[::2, :4], x[:, 1:5]):  # not C-contiguous, or rows of 4 bytes inside a wider row
        np.testing.assert_array_equal(any_rows(v), v.any(axis=-1))


def test_stage_groups_and_start_after_follow_the_packed_tables() -> None:
    from controller.arrays import pack
    from intersections.model import Intersection, SignalGroup, Stage

    def inter(iid: str, n_groups: int, stages: list[list[int]], free: tuple[int, int] | None = None) -> Intersection:
        groups = tuple(SignalGroup(id=f"V{k}", movements=(), min_green_s=5.0, yellow_s=3.0) for k in range(n_groups))
        conflicts = np.ones((n_groups, n_groups), bool) & ~np.eye(n_groups, dtype=bool)
        if free is not None:
            conflicts[free] = conflicts[free[::-1]] = False
        return Intersection(
            id=iid,
            groups=groups,
            conflicts=conflicts,
            intergreen_s=np.where(conflicts, 4.0, 0.0) + np.eye(n_groups) * 4.0,
            stages=tuple(Stage(id=f"S{s}", groups=frozenset(f"V{k}" for k in st)) for s, st in enumerate(stages)),
        )

    p = pack([inter("A", 2, [[0], [1]]), inter("B", 3, [[0, 2], [1], [2]], free=(0, 2))])
    stage = np.array([-1, 0])
    got = p.stage_groups(stage)
    assert got.tolist() == [[False, False, False], [True, False, True]]
    for s in range(p.s):
        expect = p.stage_mask[:, s] & p.group_valid & p.stage_valid[:, s : s + 1]
        np.testing.assert_array_equal(p.stage_groups(np.full(p.n, s)), expect)
    # start_after_s[n, j, k]: IG[k, j] where k conflicts with j or is j, -inf elsewhere (padding too).
    sa = p.start_after_s
    ig = p.intergreen_s
    assert sa[0, 0].tolist() == [ig[0, 0, 0], ig[0, 1, 0], -np.inf]
    assert sa[1, 2].tolist() == [-np.inf, ig[1, 1, 2], ig[1, 2, 2]]  # V0 and V2 of B do not conflict
    assert np.isneginf(sa[0, 2]).sum() == 2  # padding group 2 of A: only its own (zero) clearance
