"""ITE change/clearance intervals against the worked table in ../shared/reference/field-io.md §3.2.

The table is in US units with 1.47 ft/s per mph; the module works in SI with
a = 3.05 m/s² (10 ft/s²), so values agree to about 0.01 s.
"""

from __future__ import annotations

import numpy as np
import pytest

from intersections.clearance import (
    ALL_RED_MAX_S,
    YELLOW_MAX_S,
    YELLOW_MIN_S,
    ite_all_red_s,
    ite_yellow_s,
    ped_clearance_s,
)

MPH = 0.44704  # m/s
FT = 0.3048  # m


@pytest.mark.parametrize(
    ("mph", "grade", "expected"),
    [(25, 0.0, 2.84), (30, 0.0, 3.21), (35, 0.0, 3.57), (45, 0.0, 4.31), (55, 0.0, 5.04),
     (25, -0.03, 3.03), (30, -0.03, 3.44), (45, -0.03, 4.66), (55, -0.03, 5.47)],
)  # fmt: skip
def test_yellow_matches_the_reference_table(mph: float, grade: float, expected: float) -> None:
    assert float(ite_yellow_s(mph * MPH, grade=grade, clamp=False)) == pytest.approx(expected, abs=0.015)


@pytest.mark.parametrize(("mph", "expected"), [(25, 2.72), (30, 2.27), (35, 1.94), (45, 1.51), (55, 1.24)])
def test_all_red_matches_the_reference_table(mph: float, expected: float) -> None:
    # W = 80 ft stop line to far-side clearance point, L = 20 ft design vehicle (the default).
    assert float(ite_all_red_s(mph * MPH, crossing_width_m=80 * FT, clamp=False)) == pytest.approx(expected, abs=0.01)


def test_yellow_is_clamped_to_mutcd_guidance() -> None:
    # 25 mph flat gives 2.84 s: below the 3 s floor (an MMU faults under 2.7 s), so 3.0 is used.
    assert float(ite_yellow_s(25 * MPH)) == YELLOW_MIN_S == 3.0
    assert float(ite_yellow_s(80 * MPH)) == YELLOW_MAX_S == 6.0
    assert float(ite_yellow_s(45 * MPH)) == pytest.approx(4.31, abs=0.015)  # inside the band: unchanged


def test_all_red_is_clamped_to_six_seconds() -> None:
    assert float(ite_all_red_s(2.0, crossing_width_m=40.0)) == ALL_RED_MAX_S == 6.0
    assert float(ite_all_red_s(2.0, crossing_width_m=40.0, clamp=False)) == pytest.approx((40 + 6.1) / 2)


def test_vectorised_over_approaches() -> None:
    v = np.array([25, 35, 45]) * MPH
    y = ite_yellow_s(v, grade=np.array([0.0, 0.0, -0.03]), clamp=False)
    assert y.shape == (3,)
    assert y == pytest.approx([2.84, 3.57, 4.66], abs=0.015)
    assert ite_all_red_s(v, crossing_width_m=80 * FT).shape == (3,)


def test_uphill_shortens_and_downhill_lengthens_the_yellow() -> None:
    flat, up, down = (float(ite_yellow_s(13.9, grade=g, clamp=False)) for g in (0.0, 0.04, -0.04))
    assert up < flat < down


def test_pedestrian_clearance() -> None:
    # 60 ft crossing at 3.5 ft/s: 17.1 s (field-io.md §3.3).
    assert float(ped_clearance_s(60 * FT)) == pytest.approx(17.1, abs=0.05)
    assert float(ped_clearance_s(10.7)) == pytest.approx(10.0)


@pytest.mark.parametrize("speed", [0.0, -5.0])
def test_rejects_non_positive_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="approach speed must be > 0"):
        ite_yellow_s(speed)
    with pytest.raises(ValueError, match="approach speed must be > 0"):
        ite_all_red_s(speed, crossing_width_m=20.0)


def test_rejects_an_impossible_downhill() -> None:
    with pytest.raises(ValueError, match="too steep downhill"):
        ite_yellow_s(13.9, grade=-0.5)
