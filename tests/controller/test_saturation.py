"""HCM saturation-flow factors, the width-based variant and lane groups."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from controller.timing.groups import lane_groups
from controller.timing.saturation import (
    area_type_factor,
    bus_blockage_factor,
    default_lane_utilization_factor,
    grade_factor,
    hcm_saturation_flow_pc_h,
    heavy_vehicle_factor,
    lane_utilization_factor,
    lane_width_factor,
    left_turn_factor,
    parking_factor,
    right_turn_factor,
    saturation_flow_pc_h,
    width_saturation_flow_pcu_h,
)
from intersections.errors import InputError
from intersections.model import Intersection, Movement, SignalGroup, Stage
from intersections.network import add_link


def test_base_conditions() -> None:
    assert float(hcm_saturation_flow_pc_h(1)) == pytest.approx(1900.0)
    assert float(hcm_saturation_flow_pc_h(2)) == pytest.approx(3800.0)


def test_factor_formulas() -> None:
    # HCM 2000 Exhibit 16-7, SI forms
    assert float(lane_width_factor(3.0)) == pytest.approx(1 - 0.6 / 9)
    assert float(lane_width_factor(3.6)) == 1.0
    assert float(heavy_vehicle_factor(10.0)) == pytest.approx(100 / 110)
    assert float(heavy_vehicle_factor(10.0, e_t=3.0)) == pytest.approx(100 / 120)
    assert float(grade_factor(4.0)) == pytest.approx(0.98)
    assert float(grade_factor(-4.0)) == pytest.approx(1.02)
    assert float(parking_factor(2)) == 1.0  # no parking lane
    assert float(parking_factor(2, 20)) == pytest.approx((2 - 0.1 - 18 * 20 / 3600) / 2)
    assert float(parking_factor(1, 180)) == pytest.approx(0.05)  # floored
    assert float(bus_blockage_factor(2, 25)) == pytest.approx((2 - 14.4 * 25 / 3600) / 2)
    assert area_type_factor([True, False]).tolist() == [0.9, 1.0]
    assert float(lane_utilization_factor(1000, 550, 2)) == pytest.approx(1000 / 1100)
    assert default_lane_utilization_factor([1, 2, 3, 4]).tolist() == [1.0, 0.952, 0.908, 0.908]
    assert float(default_lane_utilization_factor(2, "left")) == 0.971
    assert float(default_lane_utilization_factor(2, "right")) == 0.885
    assert float(left_turn_factor()) == 0.95
    assert float(left_turn_factor(exclusive=False, proportion_left=0.2)) == pytest.approx(1 / 1.01)
    assert float(right_turn_factor()) == 0.85
    assert float(right_turn_factor(exclusive=False, proportion_right=0.3)) == pytest.approx(0.955)
    assert float(right_turn_factor(exclusive=False, proportion_right=0.3, single_lane=True)) == pytest.approx(
        1 - 0.135 * 0.3
    )


def test_combined_lane_group() -> None:
    """Two 3.3 m lanes, 5 % heavy vehicles, +2 % grade, 10 parking manoeuvres/h, CBD,
    default f_LU, shared lane with 10 % right turns: the product of the factors (HCM 2000 Eq. 16-4)."""
    s = hcm_saturation_flow_pc_h(
        2,
        lane_width_m=3.3,
        heavy_vehicle_percent=5,
        grade_percent=2,
        parking_maneuvers_h=10,
        cbd=True,
        f_lu=0.952,
        f_rt=float(right_turn_factor(exclusive=False, proportion_right=0.1)),
    )
    f = (1 - 0.3 / 9) * (100 / 105) * 0.99 * ((2 - 0.1 - 0.05) / 2) * 0.9 * 0.952 * 0.985
    assert float(s) == pytest.approx(1900 * 2 * f)


def test_vectorised_over_lane_groups() -> None:
    n = np.array([1, 2, 3])
    s = saturation_flow_pc_h(
        n, f_w=lane_width_factor(np.array([3.0, 3.6, 4.2])), f_lu=default_lane_utilization_factor(n)
    )
    assert s.shape == (3,)
    assert s[1] == pytest.approx(3800 * 0.952)


def test_width_based() -> None:
    # IHCM 1997: S0 = 600 We pcu/h
    assert width_saturation_flow_pcu_h([7.0, 10.5]).tolist() == pytest.approx([4200.0, 6300.0])
    assert float(width_saturation_flow_pcu_h(7.0, 800.0)) == pytest.approx(5600.0)


def test_out_of_range_inputs() -> None:
    with pytest.raises(ValueError, match=r"2\.4 m"):
        lane_width_factor(2.0)
    with pytest.raises(ValueError, match="grade"):
        grade_factor(12)
    with pytest.raises(ValueError, match="0-100"):
        heavy_vehicle_factor(120)
    with pytest.raises(NotImplementedError):
        left_turn_factor(protected=False)
    with pytest.raises(ValueError):
        width_saturation_flow_pcu_h(-1.0)


# ---- lane groups ------------------------------------------------------------------------------


def _tee() -> tuple[Intersection, nx.DiGraph]:
    """One approach 'a' (two lanes): lane a_0 shared by through (group T) and left (group L),
    lane a_1 through only; approach 'b' (one lane, lanes not listed) in group B."""
    t = SignalGroup("T", movements=(Movement("a", "x", ("a_0", "a_1"), "s"),))
    left = SignalGroup("L", movements=(Movement("a", "y", ("a_0",), "l"),))
    b = SignalGroup("B", movements=(Movement("b", "x", (), "s"), Movement("b", "z", (), "r")))
    c = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=bool)
    inter = Intersection("T1", (t, left, b), c, np.where(c, 4.0, 0.0), (Stage("S1", {"T", "L"}), Stage("S2", {"B"})))
    g = nx.DiGraph()
    add_link(g, "A", "T1", id="a", length_m=100, free_speed_m_s=10, lanes=2, saturation_flow_pcu_h=3600)
    add_link(g, "B", "T1", id="b", length_m=100, free_speed_m_s=10, lanes=1, saturation_flow_pcu_h=1500)
    return inter, g


def test_lane_groups_merge_shared_lanes() -> None:
    inter, g = _tee()
    lgs = lane_groups(
        inter,
        g,
        group_flow_pcu_h=[900.0, 100.0, 500.0],
        movement_flow_pcu_h={("a", "x"): 900.0, ("a", "y"): 100.0, ("b", "x"): 400.0, ("b", "z"): 100.0},
    )
    by_id = {lg.id: lg for lg in lgs}
    assert set(by_id) == {"a:T+L", "b:B"}
    a = by_id["a:T+L"]
    assert a.lanes == 2 and a.flow_pcu_h == pytest.approx(1000.0) and a.stages == frozenset({0})
    assert a.left_share == pytest.approx(0.1) and not a.exclusive_left
    assert a.saturation_pcu_h == pytest.approx(3800 * 0.952 / 1.005)
    b = by_id["b:B"]
    assert b.lanes == 1  # from the road graph
    assert b.right_share == pytest.approx(0.2)
    assert b.saturation_pcu_h == pytest.approx(1900 * (1 - 0.135 * 0.2))


def test_lane_groups_saturation_methods_and_overrides() -> None:
    inter, g = _tee()
    width = {lg.id: lg.saturation_pcu_h for lg in lane_groups(inter, g, method="width", lane_width_m=3.0)}
    assert width == pytest.approx({"a:T+L": 600 * 6.0, "b:B": 600 * 3.0})
    net = {lg.id: lg.saturation_pcu_h for lg in lane_groups(inter, g, method="network")}
    assert net == pytest.approx({"a:T+L": 3600.0, "b:B": 1500.0})
    over = {lg.id: lg.saturation_pcu_h for lg in lane_groups(inter, g, overrides={"L": 2000.0, "b": 1234.0})}
    assert over == pytest.approx({"a:T+L": 2000.0, "b:B": 1234.0})
    with pytest.raises(InputError, match="names no signal group or approach"):
        lane_groups(inter, g, overrides={"nope": 1000.0})
    with pytest.raises(InputError, match="unknown saturation method"):
        lane_groups(inter, g, method="magic")


def test_group_totals_without_detail_spread_by_lanes() -> None:
    inter, g = _tee()
    lgs = {lg.id: lg for lg in lane_groups(inter, g, group_flow_pcu_h=[600.0, 0.0, 300.0])}
    assert lgs["a:T+L"].flow_pcu_h == pytest.approx(600.0)
    assert lgs["b:B"].flow_pcu_h == pytest.approx(300.0)
