"""Delay and level of service at a fixed-time signal, for reporting plans.

Webster's delay (Webster 1958, Road Research Technical Paper 39, Eq. 5)::

    d = C (1 - λ)² / (2 (1 - λ x))  +  x² / (2 q (1 - x))  -  0.65 (C / q²)^(1/3) x^(2 + 5 λ)

with ``C`` cycle (s), ``λ = g / C`` green ratio, ``q`` arrival flow (veh/s),
``x = q C / (s g)`` degree of saturation. The first term is the uniform
(deterministic) delay, the second the random (overflow) term, the third an
empirical correction (≈ 5-15 % of the total). Defined for ``x < 1``; returns
``inf`` otherwise.

HCM control delay (HCM 2000 Eq. 16-9 to 16-12; HCM 6th ed. Ch. 19)::

    d1 = 0.5 C (1 - g/C)² / (1 - min(1, X) g/C)                      uniform
    d2 = 900 T [(X - 1) + sqrt((X - 1)² + 8 k I X / (c T))]           incremental
    d  = d1 · PF + d2 + d3

``T`` analysis period (0.25 h), ``k`` = 0.5 for pretimed signals, ``I`` = 1.0
for an isolated intersection, ``c`` capacity (veh/h), ``PF`` = 1 for random
arrivals (arrival type 3), ``d3`` initial-queue delay (0: no queue at the
start of the period). LOS for signalised intersections by control delay
(HCM 2000 Exhibit 16-2, HCM 6th ed. Exhibit 19-8): A ≤ 10, B ≤ 20, C ≤ 35,
D ≤ 55, E ≤ 80, F > 80 s/veh; HCM 6th also gives F whenever v/c > 1.

All functions are vectorised; flows and capacities may be in veh or pcu as
long as both use the same unit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "LOS_THRESHOLDS_S",
    "webster_delay_s",
    "hcm_uniform_delay_s",
    "hcm_incremental_delay_s",
    "hcm_control_delay_s",
    "level_of_service",
]

#: Upper bounds of control delay (s/veh) for LOS A-E; above the last is F.
LOS_THRESHOLDS_S: tuple[float, ...] = (10.0, 20.0, 35.0, 55.0, 80.0)
_LOS_LETTERS = np.array(list("ABCDEF"))


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def webster_delay_s(
    flow_h: ArrayLike, saturation_flow_h: ArrayLike, effective_green_s: ArrayLike, cycle_s: ArrayLike
) -> np.ndarray:
    """Webster's average delay per vehicle (s) on one approach or lane group.

    ``flow_h`` and ``saturation_flow_h`` per hour (same unit), green and
    cycle in seconds. ``inf`` where the degree of saturation is >= 1 (or there
    is no green); uniform term only where the flow is zero.
    """
    q_h, s_h, g, c = np.broadcast_arrays(_arr(flow_h), _arr(saturation_flow_h), _arr(effective_green_s), _arr(cycle_s))
    q = q_h / 3600.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam = np.where(c > 0, g / c, 0.0)
        cap = lam * s_h / 3600.0  # veh/s
        x = np.where(cap > 0, q / cap, np.where(q > 0, np.inf, 0.0))
        uniform = c * (1.0 - lam) ** 2 / (2.0 * (1.0 - lam * x))
        random = np.where(q > 0, x**2 / (2.0 * q * (1.0 - x)), 0.0)
        corr = np.where(q > 0, 0.65 * np.cbrt(c / q**2) * x ** (2.0 + 5.0 * lam), 0.0)
        d = uniform + random - corr
    return np.where((x < 1.0) & (lam > 0), d, np.inf)


def hcm_uniform_delay_s(cycle_s: ArrayLike, effective_green_s: ArrayLike, v_c: ArrayLike) -> np.ndarray:
    """HCM uniform delay ``d1 = 0.5 C (1 - g/C)² / (1 - min(1, X) g/C)`` in s/veh."""
    c, g, x = np.broadcast_arrays(_arr(cycle_s), _arr(effective_green_s), _arr(v_c))
    lam = np.divide(g, c, out=np.zeros_like(c), where=c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = 0.5 * c * (1.0 - lam) ** 2 / (1.0 - np.minimum(1.0, x) * lam)
        return result


def hcm_incremental_delay_s(
    v_c: ArrayLike,
    capacity_h: ArrayLike,
    *,
    analysis_period_h: float = 0.25,
    k: float = 0.5,
    upstream_filtering: float = 1.0,
) -> np.ndarray:
    """HCM incremental (random + overflow) delay ``d2`` in s/veh.

    ``d2 = 900 T [(X - 1) + sqrt((X - 1)² + 8 k I X / (c T))]``; ``k`` = 0.5
    pretimed, ``I`` = 1.0 isolated. ``inf`` where capacity is zero and flow is not.
    """
    x, c = np.broadcast_arrays(_arr(v_c), _arr(capacity_h))
    t = analysis_period_h
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt((x - 1.0) ** 2 + 8.0 * k * upstream_filtering * x / (c * t))
        d2 = 900.0 * t * ((x - 1.0) + root)
    return np.where(c > 0, d2, np.where(x > 0, np.inf, 0.0))


def hcm_control_delay_s(
    cycle_s: ArrayLike,
    effective_green_s: ArrayLike,
    v_c: ArrayLike,
    capacity_h: ArrayLike,
    *,
    progression_factor: ArrayLike = 1.0,
    analysis_period_h: float = 0.25,
    k: float = 0.5,
    initial_queue_delay_s: ArrayLike = 0.0,
) -> np.ndarray:
    """HCM control delay ``d = d1 · PF + d2 + d3`` in s/veh."""
    d1 = hcm_uniform_delay_s(cycle_s, effective_green_s, v_c)
    d2 = hcm_incremental_delay_s(v_c, capacity_h, analysis_period_h=analysis_period_h, k=k)
    result: np.ndarray = d1 * _arr(progression_factor) + d2 + _arr(initial_queue_delay_s)
    return result


def level_of_service(control_delay_s: ArrayLike, v_c: ArrayLike | None = None) -> np.ndarray:
    """HCM signalised LOS letters (``'A'``-``'F'``) from control delay; F also where v/c > 1."""
    d = _arr(control_delay_s)
    idx = np.searchsorted(np.array(LOS_THRESHOLDS_S), d, side="left")
    idx = np.where(np.isnan(d), 5, idx)
    if v_c is not None:
        idx = np.where(_arr(v_c) > 1.0, 5, idx)
    return _LOS_LETTERS[idx]
