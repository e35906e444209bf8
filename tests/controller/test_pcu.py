"""PCU sets and the veh/h -> pcu/h conversion."""

from __future__ import annotations

import numpy as np
import pytest

from controller.timing.pcu import (
    HANOI_PCU,
    PCU_SETS,
    SUMO_PCU,
    US_HCM_PCU,
    VEHICLE_CLASSES,
    PcuSet,
    VehicleClass,
    flows_to_pcu_h,
    get_pcu_set,
    heavy_vehicle_percent,
    pcu_factors,
    vehicle_class,
    vehicle_class_from_sumo,
)
from intersections.errors import InputError


def test_class_order_is_fixed() -> None:
    assert [c.value for c in VEHICLE_CLASSES] == ["motorcycle", "car", "bus", "truck", "bicycle"]


def test_hanoi_defaults_follow_cao_sano() -> None:
    # Cao & Sano 2012: car = 3.4 MEU, bus 10.5 MEU, bicycle 1.4 MEU
    assert HANOI_PCU[VehicleClass.MOTORCYCLE] == pytest.approx(1 / 3.4, abs=0.01)
    assert HANOI_PCU["bus"] == pytest.approx(10.5 / 3.4, abs=0.1)
    assert HANOI_PCU["bicycle"] == pytest.approx(1.4 / 3.4, abs=0.02)
    assert HANOI_PCU["car"] == 1.0
    assert "Cao & Sano" in HANOI_PCU.source and "UNVERIFIED" in HANOI_PCU.source


def test_us_hcm_heavy_vehicles_are_two_pcu() -> None:
    assert US_HCM_PCU["truck"] == US_HCM_PCU["bus"] == 2.0
    assert US_HCM_PCU["car"] == US_HCM_PCU["motorcycle"] == 1.0
    assert SUMO_PCU["motorcycle"] == 0.5
    assert set(PCU_SETS) == {"hanoi", "us_hcm", "sumo"}
    assert get_pcu_set("us_hcm") is US_HCM_PCU


def test_flows_to_pcu_vectorised() -> None:
    flows = np.zeros((3, 4, len(VEHICLE_CLASSES)))
    flows[..., 0] = 1000.0  # motorcycles
    flows[..., 1] = 200.0  # cars
    flows[1, 2, 3] = 10.0  # trucks
    out = flows_to_pcu_h(flows, "hanoi")
    assert out.shape == (3, 4)
    assert out[0, 0] == pytest.approx(1000 * 0.3 + 200)
    assert out[1, 2] == pytest.approx(1000 * 0.3 + 200 + 10 * 2.5)
    assert flows_to_pcu_h(flows, US_HCM_PCU)[1, 2] == pytest.approx(1000 + 200 + 20)
    assert pcu_factors("sumo").tolist() == [0.5, 1.0, 3.5, 3.5, 0.2]
    with pytest.raises(ValueError, match="vehicle classes"):
        flows_to_pcu_h(np.zeros((2, 3)))


def test_heavy_vehicle_percent() -> None:
    flows = np.array([[80.0, 10.0, 5.0, 5.0, 0.0], [0.0] * 5])
    assert heavy_vehicle_percent(flows).tolist() == pytest.approx([10.0, 0.0])


def test_custom_set_is_validated() -> None:
    custom = PcuSet("mine", {"motorcycle": 0.25, "car": 1, "bus": 2.5, "truck": 2.5, "bicycle": 0.2})
    assert custom.array.tolist() == [0.25, 1.0, 2.5, 2.5, 0.2]
    with pytest.raises(InputError, match=r"no PCU given for classes \['bicycle'\]"):
        PcuSet("bad", {"motorcycle": 0.25, "car": 1, "bus": 2.5, "truck": 2.5})
    with pytest.raises(InputError, match="must be > 0"):
        PcuSet("bad", {"motorcycle": 0, "car": 1, "bus": 2.5, "truck": 2.5, "bicycle": 0.2})
    with pytest.raises(InputError, match="unknown vehicle class 'tram'"):
        PcuSet("bad", {"tram": 3.0})
    with pytest.raises(InputError, match="unknown PCU set 'paris'"):
        get_pcu_set("paris")


def test_class_names_and_sumo_vclasses() -> None:
    assert vehicle_class("Motorbike") is VehicleClass.MOTORCYCLE
    assert vehicle_class(" HGV ") is VehicleClass.TRUCK
    with pytest.raises(ValueError, match="unknown vehicle class 'tuktuk'"):
        vehicle_class("tuktuk")
    assert vehicle_class_from_sumo("moped") is VehicleClass.MOTORCYCLE
    assert vehicle_class_from_sumo("passenger") is VehicleClass.CAR
    assert vehicle_class_from_sumo("delivery") is VehicleClass.CAR  # a van: four tyres
    assert vehicle_class_from_sumo("coach") is VehicleClass.BUS
    assert vehicle_class_from_sumo("trailer") is VehicleClass.TRUCK
    assert vehicle_class_from_sumo("pedestrian") is None
