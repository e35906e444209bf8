"""One map from SUMO vClasses to ours: timing and the KPIs read a vType the same way."""

from __future__ import annotations

import pytest

from controller.timing import pcu
from intersections.vehicle_classes import SUMO_NOT_ROAD_TRAFFIC, SUMO_VCLASS, VehicleClass, vehicle_class_from_sumo
from simulation import kpi


@pytest.mark.parametrize("vclass", sorted(SUMO_VCLASS))
def test_kpis_and_timing_give_a_vtype_the_same_class(vclass: str) -> None:
    ours = vehicle_class_from_sumo(vclass)
    assert ours is not None
    expected = ours.value if ours.value in kpi.VEHICLE_CLASSES else "car"
    assert kpi._class_of("anything", vclass) == expected


def test_a_light_van_is_a_car_and_a_trolleybus_a_bus() -> None:
    assert vehicle_class_from_sumo("delivery") is VehicleClass.CAR
    assert kpi._class_of("van", "delivery") == "car"
    assert kpi._class_of("trolley", "trolleybus") == "bus"


def test_non_road_classes_have_no_class_and_are_not_in_the_map() -> None:
    assert not SUMO_NOT_ROAD_TRAFFIC & set(SUMO_VCLASS)
    assert all(vehicle_class_from_sumo(v) is None for v in SUMO_NOT_ROAD_TRAFFIC)


def test_timing_re_exports_the_same_objects() -> None:
    assert pcu.VehicleClass is VehicleClass and pcu.vehicle_class_from_sumo is vehicle_class_from_sumo
