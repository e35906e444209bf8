"""Our vehicle classes, and the one map from SUMO's ``vClass`` to them.

Timing counts demand per :class:`VehicleClass` (columns of every flow array, in
:data:`VEHICLE_CLASSES` order); the KPIs report per class. Both read SUMO
files, and both take a vehicle's class from :func:`vehicle_class_from_sumo`, so a
vType cannot be a car to the timing and a truck to the KPIs. Classes come from
SUMO's vehicle-class list
(https://sumo.dlr.de/docs/Definition_of_Vehicles,_Vehicle_Types,_and_Routes.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "VehicleClass",
    "VEHICLE_CLASSES",
    "SUMO_VCLASS",
    "SUMO_NOT_ROAD_TRAFFIC",
    "vehicle_class_from_sumo",
]


class VehicleClass(StrEnum):
    """The vehicle classes demand is counted in (column order of flow arrays)."""

    MOTORCYCLE = "motorcycle"
    CAR = "car"
    BUS = "bus"
    TRUCK = "truck"
    BICYCLE = "bicycle"


#: Canonical order: the last axis of every per-class flow array.
VEHICLE_CLASSES: tuple[VehicleClass, ...] = tuple(VehicleClass)

#: SUMO vClass -> our class. "delivery" is a light van (four tyres): a car for the HCM
#: heavy-vehicle rule. SUMO's "scooter" is an e-kick-scooter, bicycle-like.
SUMO_VCLASS: Mapping[str, VehicleClass] = MappingProxyType(
    {
        "passenger": VehicleClass.CAR,
        "private": VehicleClass.CAR,
        "taxi": VehicleClass.CAR,
        "hov": VehicleClass.CAR,
        "evehicle": VehicleClass.CAR,
        "emergency": VehicleClass.CAR,
        "authority": VehicleClass.CAR,
        "army": VehicleClass.CAR,
        "vip": VehicleClass.CAR,
        "custom1": VehicleClass.CAR,
        "custom2": VehicleClass.CAR,
        "delivery": VehicleClass.CAR,
        "motorcycle": VehicleClass.MOTORCYCLE,
        "moped": VehicleClass.MOTORCYCLE,
        "bus": VehicleClass.BUS,
        "coach": VehicleClass.BUS,
        "trolleybus": VehicleClass.BUS,
        "truck": VehicleClass.TRUCK,
        "trailer": VehicleClass.TRUCK,
        "bicycle": VehicleClass.BICYCLE,
        "scooter": VehicleClass.BICYCLE,
    }
)

#: SUMO vClasses that are not road traffic at signals: no class of ours, and no error.
SUMO_NOT_ROAD_TRAFFIC: frozenset[str] = frozenset(
    {
        "pedestrian",
        "rail",
        "rail_urban",
        "rail_electric",
        "rail_fast",
        "tram",
        "ship",
        "container",
        "cable_car",
        "subway",
        "aircraft",
        "wheelchair",
        "drone",
        "ignoring",
    }
)


def vehicle_class_from_sumo(vclass: str) -> VehicleClass | None:
    """Our class for a SUMO ``vClass``; ``None`` for classes that are not road traffic
    at signals (pedestrian, rail, ship, ...) and for names SUMO does not have."""
    return SUMO_VCLASS.get(vclass)
