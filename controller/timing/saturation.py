"""Saturation flow of a lane group: HCM adjustment factors and a width-based variant.

HCM lane-group saturation flow (HCM 2000 Eq. 16-4; HCM 6th ed. Eq. 19-8)::

    s = s0 · N · f_w · f_HV · f_g · f_p · f_bb · f_a · f_LU · f_LT · f_RT   [pc/h]

with ``s0`` the base saturation flow per lane (1,900 pc/h/ln) and ``N`` the
number of lanes. The factors implemented here, each vectorised over numpy
arrays (HCM 2000 Exhibit 16-7 formulas, SI form):

=========  ======================================  ===============================
factor     formula                                 notes
=========  ======================================  ===============================
f_w        1 + (W - 3.6) / 9                       W lane width in m, W >= 2.4
f_HV       100 / (100 + %HV (E_T - 1))             E_T = 2.0 pc/HV
f_g        1 - G / 200                             G grade in %, -6 <= G <= +10
f_p        (N - 0.1 - 18 N_m / 3600) / N           N_m parking manoeuvres/h, >= 0.05;
                                                   1.0 without parking
f_bb       (N - 14.4 N_B / 3600) / N               N_B buses stopping/h, >= 0.05
f_a        0.90 in a CBD, else 1.00
f_LU       v_g / (v_g1 N)                          or HCM 2000 Exhibit 10-23 defaults
f_LT       0.95 protected, exclusive lane;         permitted left turns need the
           1 / (1 + 0.05 P_LT) protected, shared   HCM opposed-flow procedure: not
                                                   implemented, pass your own factor
f_RT       0.85 exclusive lane;                    P_RT proportion of right turns
           1 - 0.15 P_RT shared lane;
           1 - 0.135 P_RT single-lane approach
=========  ======================================  ===============================

**Heavy vehicles are counted once.** greenwave converts flows to pcu/h with a
:class:`~controller.timing.pcu.PcuSet` before forming ``y = q / s``; then
``f_HV`` must stay 1 (the default). Use ``f_HV`` only when flows stay in veh/h.

**Motorcycle-dominated approaches** (``../shared/reference/motorcycles-and-algorithms.md``
§D3): lanes are unmarked or ignored, so saturation flow scales with the usable
width, not with a lane count. :func:`width_saturation_flow_pcu_h` gives
``S = k · W_e``; the Indonesian IHCM 1997 uses ``S0 = 600 · W_e`` pcu/h (W_e
effective approach width in m) with its own (low) motorcycle equivalents; a
2023 study proposes k = 675-1,000. Use it with a motorcycle-aware PCU set.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BASE_SATURATION_FLOW_PC_H_LN",
    "IHCM_WIDTH_SATURATION_PCU_H_M",
    "CBD_AREA_FACTOR",
    "lane_width_factor",
    "heavy_vehicle_factor",
    "grade_factor",
    "parking_factor",
    "bus_blockage_factor",
    "area_type_factor",
    "lane_utilization_factor",
    "default_lane_utilization_factor",
    "left_turn_factor",
    "right_turn_factor",
    "saturation_flow_pc_h",
    "hcm_saturation_flow_pc_h",
    "width_saturation_flow_pcu_h",
]

#: HCM base saturation flow, pc/h/ln (HCM 2000 Ch. 16; HCM 6th ed. Ch. 19).
BASE_SATURATION_FLOW_PC_H_LN = 1900.0
#: Indonesian IHCM 1997 base saturation flow per metre of effective width, pcu/h/m.
IHCM_WIDTH_SATURATION_PCU_H_M = 600.0
#: HCM area-type factor for central business districts.
CBD_AREA_FACTOR = 0.90
#: HCM heavy-vehicle passenger-car equivalent.
HEAVY_VEHICLE_EQUIVALENT = 2.0

_F_MIN = 0.050  # HCM floor of f_p and f_bb


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def lane_width_factor(lane_width_m: ArrayLike) -> np.ndarray:
    """``f_w = 1 + (W - 3.6) / 9`` (HCM 2000 Exhibit 16-7, SI; W >= 2.4 m)."""
    w = _arr(lane_width_m)
    if (w < 2.4).any() or not np.isfinite(w).all():
        raise ValueError("lane width must be >= 2.4 m for the HCM f_w formula")
    return 1.0 + (w - 3.6) / 9.0


def heavy_vehicle_factor(heavy_vehicle_percent: ArrayLike, e_t: float = HEAVY_VEHICLE_EQUIVALENT) -> np.ndarray:
    """``f_HV = 100 / (100 + %HV (E_T - 1))``, ``E_T`` = 2.0 pc per heavy vehicle."""
    hv = _arr(heavy_vehicle_percent)
    if (hv < 0).any() or (hv > 100).any():
        raise ValueError("heavy-vehicle percentage must be within 0-100")
    return 100.0 / (100.0 + hv * (e_t - 1.0))


def grade_factor(grade_percent: ArrayLike) -> np.ndarray:
    """``f_g = 1 - G / 200``, G approach grade in percent (-6 to +10, negative downhill)."""
    g = _arr(grade_percent)
    if (g < -6).any() or (g > 10).any():
        raise ValueError("grade must be within -6 % and +10 % for the HCM f_g formula")
    return 1.0 - g / 200.0


def parking_factor(n_lanes: ArrayLike, parking_maneuvers_h: ArrayLike | None = None) -> np.ndarray:
    """``f_p = (N - 0.1 - 18 N_m / 3600) / N`` (>= 0.050; 1.0 with no parking lane).

    ``parking_maneuvers_h`` ``None`` means no parking adjacent to the lane group.
    HCM caps N_m at 180 manoeuvres/h.
    """
    n = _arr(n_lanes)
    if parking_maneuvers_h is None:
        return np.ones_like(n)
    nm = np.minimum(_arr(parking_maneuvers_h), 180.0)
    result: np.ndarray = np.maximum((n - 0.1 - 18.0 * nm / 3600.0) / n, _F_MIN)
    return result


def bus_blockage_factor(n_lanes: ArrayLike, buses_stopping_h: ArrayLike) -> np.ndarray:
    """``f_bb = (N - 14.4 N_B / 3600) / N`` (>= 0.050; N_B capped at 250 buses/h)."""
    n = _arr(n_lanes)
    nb = np.minimum(_arr(buses_stopping_h), 250.0)
    result: np.ndarray = np.maximum((n - 14.4 * nb / 3600.0) / n, _F_MIN)
    return result


def area_type_factor(cbd: ArrayLike) -> np.ndarray:
    """``f_a`` = 0.90 in a central business district, 1.00 elsewhere."""
    return np.where(np.asarray(cbd, dtype=bool), CBD_AREA_FACTOR, 1.0)


def lane_utilization_factor(group_flow: ArrayLike, busiest_lane_flow: ArrayLike, n_lanes: ArrayLike) -> np.ndarray:
    """``f_LU = v_g / (v_g1 · N)`` from observed flows (1.0 where there is no flow)."""
    vg, vg1, n = _arr(group_flow), _arr(busiest_lane_flow), _arr(n_lanes)
    denom = vg1 * n
    result: np.ndarray = np.divide(vg, denom, out=np.ones(np.broadcast(vg, denom).shape), where=denom > 0)
    return result


# HCM 2000 Exhibit 10-23: share of the group's flow in its busiest lane.
_LU_DEFAULTS = {
    "through": {1: 1.000, 2: 0.952, 3: 0.908},
    "left": {1: 1.000, 2: 0.971},
    "right": {1: 1.000, 2: 0.885},
}


def default_lane_utilization_factor(n_lanes: ArrayLike, movement: str = "through") -> np.ndarray:
    """HCM 2000 Exhibit 10-23 default ``f_LU`` by lanes in the group.

    through/shared: 1.000, 0.952, 0.908 (3+ lanes); exclusive left: 1.000,
    0.971 (2+); exclusive right: 1.000, 0.885 (2+).
    """
    table = _LU_DEFAULTS[movement]
    n = np.asarray(n_lanes)
    top = max(table)
    clipped = np.clip(n.astype(int), 1, top)
    lookup = np.array([table.get(k, 1.0) for k in range(top + 1)])
    result: np.ndarray = lookup[clipped]
    return result


def left_turn_factor(protected: bool = True, exclusive: bool = True, proportion_left: ArrayLike = 1.0) -> np.ndarray:
    """HCM 2000 ``f_LT`` for protected left turns.

    Exclusive lane, protected phasing: 0.95. Shared lane, protected:
    ``1 / (1 + 0.05 P_LT)``. Permitted left turns need the HCM opposed-flow
    procedure (Appendix C of HCM 2000 Ch. 16) and are not implemented.
    """
    if not protected:
        raise NotImplementedError("permitted left-turn factor needs the HCM opposed-flow procedure; pass f_lt yourself")
    p = _arr(proportion_left)
    if exclusive:
        return np.full(p.shape, 0.95)
    return 1.0 / (1.0 + 0.05 * p)


def right_turn_factor(
    exclusive: bool = True, proportion_right: ArrayLike = 1.0, single_lane: bool = False
) -> np.ndarray:
    """HCM 2000 ``f_RT``: 0.85 exclusive lane; ``1 - 0.15 P_RT`` shared;
    ``1 - 0.135 P_RT`` single-lane approach."""
    p = _arr(proportion_right)
    if exclusive:
        return np.full(p.shape, 0.85)
    return 1.0 - (0.135 if single_lane else 0.15) * p


def saturation_flow_pc_h(
    n_lanes: ArrayLike,
    *,
    base_pc_h_ln: ArrayLike = BASE_SATURATION_FLOW_PC_H_LN,
    f_w: ArrayLike = 1.0,
    f_hv: ArrayLike = 1.0,
    f_g: ArrayLike = 1.0,
    f_p: ArrayLike = 1.0,
    f_bb: ArrayLike = 1.0,
    f_a: ArrayLike = 1.0,
    f_lu: ArrayLike = 1.0,
    f_lt: ArrayLike = 1.0,
    f_rt: ArrayLike = 1.0,
) -> np.ndarray:
    """``s = s0 · N · f_w · f_HV · f_g · f_p · f_bb · f_a · f_LU · f_LT · f_RT`` in pc/h.

    HCM 2000 Eq. 16-4 / HCM 6th ed. Eq. 19-8, from precomputed factors
    (broadcast numpy arrays).
    """
    n = _arr(n_lanes)
    if (n < 0).any():
        raise ValueError("number of lanes must be >= 0")
    out: np.ndarray = _arr(base_pc_h_ln) * n
    for f in (f_w, f_hv, f_g, f_p, f_bb, f_a, f_lu, f_lt, f_rt):
        out = out * _arr(f)
    return out


def hcm_saturation_flow_pc_h(
    n_lanes: ArrayLike,
    *,
    lane_width_m: ArrayLike = 3.6,
    heavy_vehicle_percent: ArrayLike = 0.0,
    grade_percent: ArrayLike = 0.0,
    parking_maneuvers_h: ArrayLike | None = None,
    buses_stopping_h: ArrayLike = 0.0,
    cbd: ArrayLike = False,
    f_lu: ArrayLike = 1.0,
    f_lt: ArrayLike = 1.0,
    f_rt: ArrayLike = 1.0,
    base_pc_h_ln: ArrayLike = BASE_SATURATION_FLOW_PC_H_LN,
) -> np.ndarray:
    """HCM lane-group saturation flow (pc/h) with the factors computed from field data.

    Same equation as :func:`saturation_flow_pc_h`; ``f_LU``, ``f_LT`` and
    ``f_RT`` are passed in (see :func:`default_lane_utilization_factor`,
    :func:`left_turn_factor`, :func:`right_turn_factor`). Defaults are HCM base
    conditions (3.6 m lanes, no heavy vehicles, level, no parking, no buses,
    not a CBD), so ``hcm_saturation_flow_pc_h(2) == 3800``.
    """
    n = _arr(n_lanes)
    return saturation_flow_pc_h(
        n,
        base_pc_h_ln=base_pc_h_ln,
        f_w=lane_width_factor(lane_width_m),
        f_hv=heavy_vehicle_factor(heavy_vehicle_percent),
        f_g=grade_factor(grade_percent),
        f_p=parking_factor(np.maximum(n, 1), parking_maneuvers_h),
        f_bb=bus_blockage_factor(np.maximum(n, 1), buses_stopping_h),
        f_a=area_type_factor(cbd),
        f_lu=f_lu,
        f_lt=f_lt,
        f_rt=f_rt,
    )


def width_saturation_flow_pcu_h(
    effective_width_m: ArrayLike, k_pcu_h_m: ArrayLike = IHCM_WIDTH_SATURATION_PCU_H_M
) -> np.ndarray:
    """Width-based saturation flow ``S = k · W_e`` in pcu/h (motorcycle-dominated approaches).

    ``W_e`` is the effective approach width in metres (kerb to centre line or
    median, less parking and obstructions); ``k`` defaults to the Indonesian
    IHCM 1997 base 600 pcu/h per metre. Further IHCM adjustments (city size,
    side friction, grade, parking, turning) multiply this as with the HCM.
    """
    w = _arr(effective_width_m)
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("effective width must be a finite number of metres >= 0")
    result: np.ndarray = _arr(k_pcu_h_m) * w
    return result
