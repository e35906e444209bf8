"""Change (yellow) and clearance (all-red) intervals: the ITE kinematic formulas.

Yellow (ITE 2020 "Guidelines for Determining Traffic Signal Change and
Clearance Intervals"; ``../shared/reference/field-io.md`` §3.2)::

    Y = t + v / (2 a + 2 g G)

with ``t`` perception-reaction time (1.0 s), ``v`` approach speed (m/s),
``a`` comfortable deceleration (3.05 m/s² = 10 ft/s²), ``g`` = 9.81 m/s² and
``G`` the grade as a decimal (negative downhill). All-red::

    R = (W + L) / v

with ``W`` the distance from the stop line to the far-side clearance point and
``L`` the design vehicle length (6.1 m = 20 ft). MUTCD 2009 §4D.26 guidance
bounds yellow to 3-6 s and all-red to at most 6 s; results are clamped to those
bounds (an MMU faults a yellow shorter than 2.7 s, just under the 3 s floor).

Pedestrian clearance (MUTCD 2009 §4E.06): crossing distance at 1.07 m/s
(3.5 ft/s).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ite_yellow_s",
    "ite_all_red_s",
    "ped_clearance_s",
    "PERCEPTION_REACTION_S",
    "DECELERATION_M_S2",
    "VEHICLE_LENGTH_M",
    "PED_WALKING_SPEED_M_S",
]

GRAVITY_M_S2 = 9.81
PERCEPTION_REACTION_S = 1.0
DECELERATION_M_S2 = 3.05  # 10 ft/s²
VEHICLE_LENGTH_M = 6.1  # 20 ft
PED_WALKING_SPEED_M_S = 1.07  # 3.5 ft/s
YELLOW_MIN_S, YELLOW_MAX_S = 3.0, 6.0
ALL_RED_MAX_S = 6.0


def ite_yellow_s(
    approach_speed_m_s: ArrayLike,
    *,
    grade: ArrayLike = 0.0,
    reaction_time_s: float = PERCEPTION_REACTION_S,
    deceleration_m_s2: float = DECELERATION_M_S2,
    clamp: bool = True,
) -> np.ndarray:
    """ITE kinematic yellow change interval in seconds (vectorised).

    ``grade`` is a decimal (0.03 = 3 % uphill). With ``clamp`` the result is
    bounded to MUTCD's 3-6 s guidance.
    """
    v = np.asarray(approach_speed_m_s, dtype=float)
    g = np.asarray(grade, dtype=float)
    if (v <= 0).any():
        raise ValueError("approach speed must be > 0 m/s")
    denom = 2.0 * deceleration_m_s2 + 2.0 * GRAVITY_M_S2 * g
    if (denom <= 0).any():
        raise ValueError("grade too steep downhill for the deceleration")
    y = reaction_time_s + v / denom
    return np.clip(y, YELLOW_MIN_S, YELLOW_MAX_S) if clamp else y


def ite_all_red_s(
    approach_speed_m_s: ArrayLike,
    *,
    crossing_width_m: ArrayLike,
    vehicle_length_m: float = VEHICLE_LENGTH_M,
    clamp: bool = True,
) -> np.ndarray:
    """ITE all-red (red clearance) interval in seconds: ``(W + L) / v``."""
    v = np.asarray(approach_speed_m_s, dtype=float)
    if (v <= 0).any():
        raise ValueError("approach speed must be > 0 m/s")
    r: np.ndarray = (np.asarray(crossing_width_m, dtype=float) + vehicle_length_m) / v
    return np.clip(r, 0.0, ALL_RED_MAX_S) if clamp else r


def ped_clearance_s(crossing_length_m: ArrayLike, *, walking_speed_m_s: float = PED_WALKING_SPEED_M_S) -> np.ndarray:
    """Pedestrian clearance (flashing DON'T WALK) in seconds, MUTCD §4E.06."""
    return np.asarray(crossing_length_m, dtype=float) / walking_speed_m_s
