"""The fast short-axis reductions agree with numpy's own, on any shape the engine uses."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from controller.arrays import any_rows, any_set, max_rows, min_rows

shapes = array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9)


@given(arrays(bool, shapes))
def test_any_rows_and_any_set_match_numpy(x: np.ndarray) -> None:
    np.testing.assert_array_equal(any_rows(x), x.any(axis=-1))
    assert any_set(x) == bool(x.any())


@given(arrays(float, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9), elements=st.floats(-1e6, 1e6)))
def test_min_and_max_rows_match_numpy(x: np.ndarray) -> None:
    np.testing.assert_array_equal(min_rows(x), x.min(axis=-1))
    np.testing.assert_array_equal(max_rows(x), x.max(axis=-1))


def test_non_contiguous_input() -> None:
    x = np.arange(60.0).reshape(5, 12)[:, ::3]  # a strided view
    np.testing.assert_array_equal(min_rows(x), x.min(axis=-1))
    np.testing.assert_array_equal(any_rows(x > 30), (x > 30).any(axis=-1))
