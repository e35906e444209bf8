"""Vehicle classes and passenger-car-unit (PCU) equivalents.

Signal timing works in PCU: a flow of ``q_c`` vehicles per hour of class ``c``
counts as ``Σ_c e_c · q_c`` pcu/h, with ``e_c`` the class's PCU equivalent
(car = 1). Saturation flows (:mod:`controller.timing.saturation`) are in the
same unit, so flow ratios ``y = q/s`` compare like with like.

Sets shipped (``PCU_SETS``; pick one by name or build your own
:class:`PcuSet`):

``hanoi`` (default) - motorcycle-dominated urban traffic
    =============  =====  ==========================================================
    class          PCU    source
    =============  =====  ==========================================================
    car            1.0    definition
    motorcycle     0.3    Cao & Sano 2012 (ASCE J. Transp. Eng. 138(6)), Hanoi: car
                          = 3.4 motorcycle-equivalent units (MEU) => 1/3.4 = 0.29
                          PCU, rounded to 0.3; inside the 0.25-0.3 range commonly
                          cited for Vietnamese practice (TCVN 13592:2022 /
                          TCXDVN 104:2007 - **not verified in the standard text**)
    bus            3.0    Cao & Sano 2012: bus 10.5 MEU => 10.5/3.4 = 3.09 PCU
    truck          2.5    commonly cited Vietnamese value for 2-axle trucks
                          (2.0-2.5) - **UNVERIFIED**, take from TCVN when available
    bicycle        0.4    Cao & Sano 2012: bicycle 1.4 MEU => 1.4/3.4 = 0.41 PCU
    =============  =====  ==========================================================

    Caveat: Cao & Sano measured *mid-block* equivalents. At signal stop lines
    motorcycles filter to the front and discharge faster; Sugiarto et al. 2021
    (PLOS ONE, Banda Aceh, pretimed signals) estimated 0.24 for motorcycles.
    0.3 is therefore on the conservative (more green for motorcycles) side.

``us_hcm`` - North-American HCM practice
    car 1.0; truck and bus 2.0 (HCM heavy-vehicle equivalent E_T = 2.0,
    HCM 2000 Eq. 16-4 / HCM 6th ed. Eq. 19-8 f_HV); motorcycle 1.0 (HCM counts
    motorcycles with passenger cars). Bicycle 0.5 is **not from the HCM** (it
    treats bicycles through the f_Rpb/f_Lpb factors, not as flow); it is a
    placeholder so that mixed counts do not fail.

``sumo`` - for contrast: the values hard-coded in SUMO
    ``tools/tlsCycleAdaptation.py`` (motorcycle/moped 0.5, bicycle 0.2,
    bus/truck 3.5, car 1.0). Not Vietnamese.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from intersections.errors import InputError
from intersections.vehicle_classes import VEHICLE_CLASSES, VehicleClass, vehicle_class_from_sumo

__all__ = [
    "VehicleClass",
    "VEHICLE_CLASSES",
    "PcuSet",
    "HANOI_PCU",
    "US_HCM_PCU",
    "SUMO_PCU",
    "PCU_SETS",
    "get_pcu_set",
    "pcu_factors",
    "flows_to_pcu_h",
    "heavy_vehicle_percent",
    "vehicle_class",
    "vehicle_class_from_sumo",
]


#: Classes that count as heavy vehicles for the HCM f_HV factor.
HEAVY_CLASSES: frozenset[VehicleClass] = frozenset({VehicleClass.BUS, VehicleClass.TRUCK})


@dataclass(frozen=True)
class PcuSet:
    """PCU equivalents for every :class:`VehicleClass`, with where they come from."""

    name: str
    factors: Mapping[VehicleClass, float]
    source: str = ""

    def __post_init__(self) -> None:
        where = f"PCU set {self.name!r}"
        factors: dict[VehicleClass, float] = {}
        for k, v in dict(self.factors).items():
            try:
                cls = VehicleClass(k)
            except ValueError:
                raise InputError(f"unknown vehicle class {k!r}", where=where) from None
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise InputError(f"PCU of {cls.value} must be a number, got {v!r}", where=where) from None
            if not np.isfinite(f) or f <= 0:
                raise InputError(f"PCU of {cls.value} must be > 0, got {v!r}", where=where)
            factors[cls] = f
        missing = [c.value for c in VEHICLE_CLASSES if c not in factors]
        if missing:
            raise InputError(f"no PCU given for classes {missing}", where=where)
        object.__setattr__(self, "factors", MappingProxyType(factors))

    def __getitem__(self, cls: VehicleClass | str) -> float:
        return self.factors[VehicleClass(cls)]

    @property
    def array(self) -> np.ndarray:
        """PCU factors in :data:`VEHICLE_CLASSES` order."""
        return np.array([self.factors[c] for c in VEHICLE_CLASSES], dtype=float)


HANOI_PCU = PcuSet(
    "hanoi",
    {
        VehicleClass.MOTORCYCLE: 0.3,
        VehicleClass.CAR: 1.0,
        VehicleClass.BUS: 3.0,
        VehicleClass.TRUCK: 2.5,
        VehicleClass.BICYCLE: 0.4,
    },
    source=(
        "Cao & Sano 2012, J. Transp. Eng. 138(6), Hanoi MEU (car 3.4, bus 10.5, bicycle 1.4) converted to PCU; "
        "truck 2.5 commonly cited Vietnamese value [UNVERIFIED]"
    ),
)
US_HCM_PCU = PcuSet(
    "us_hcm",
    {
        VehicleClass.MOTORCYCLE: 1.0,
        VehicleClass.CAR: 1.0,
        VehicleClass.BUS: 2.0,
        VehicleClass.TRUCK: 2.0,
        VehicleClass.BICYCLE: 0.5,
    },
    source="HCM heavy-vehicle equivalent E_T = 2.0 (HCM 2000 Eq. 16-4); bicycle 0.5 is a placeholder, not HCM",
)
SUMO_PCU = PcuSet(
    "sumo",
    {
        VehicleClass.MOTORCYCLE: 0.5,
        VehicleClass.CAR: 1.0,
        VehicleClass.BUS: 3.5,
        VehicleClass.TRUCK: 3.5,
        VehicleClass.BICYCLE: 0.2,
    },
    source="SUMO tools/tlsCycleAdaptation.py hard-coded PCE",
)

#: Registry of named PCU sets.
PCU_SETS: Mapping[str, PcuSet] = MappingProxyType({s.name: s for s in (HANOI_PCU, US_HCM_PCU, SUMO_PCU)})


def get_pcu_set(pcu: PcuSet | str) -> PcuSet:
    """A :class:`PcuSet` by name (``hanoi``, ``us_hcm``, ``sumo``) or as given."""
    if isinstance(pcu, PcuSet):
        return pcu
    try:
        return PCU_SETS[pcu]
    except KeyError:
        raise InputError(f"unknown PCU set {pcu!r} (known: {', '.join(sorted(PCU_SETS))})", where="pcu") from None


def pcu_factors(pcu: PcuSet | str = "hanoi") -> np.ndarray:
    """PCU equivalents in :data:`VEHICLE_CLASSES` order (1-D array)."""
    return get_pcu_set(pcu).array


def flows_to_pcu_h(flows_veh_h: ArrayLike, pcu: PcuSet | str = "hanoi") -> np.ndarray:
    """Convert per-class flows (veh/h) to pcu/h: ``q_pcu = Σ_c e_c · q_c``.

    ``flows_veh_h`` has any leading shape and a last axis of length
    ``len(VEHICLE_CLASSES)`` in :data:`VEHICLE_CLASSES` order; the result has
    the leading shape. Vectorised (one matrix product).
    """
    q = np.asarray(flows_veh_h, dtype=float)
    if q.shape[-1:] != (len(VEHICLE_CLASSES),):
        raise ValueError(f"last axis must hold {len(VEHICLE_CLASSES)} vehicle classes, got shape {q.shape}")
    pcu_h: np.ndarray = q @ pcu_factors(pcu)
    return pcu_h


def heavy_vehicle_percent(flows_veh_h: ArrayLike) -> np.ndarray:
    """Share of buses and trucks in percent of all vehicles (HCM %HV); 0 where no flow."""
    q = np.asarray(flows_veh_h, dtype=float)
    if q.shape[-1:] != (len(VEHICLE_CLASSES),):
        raise ValueError(f"last axis must hold {len(VEHICLE_CLASSES)} vehicle classes, got shape {q.shape}")
    heavy = np.array([c in HEAVY_CLASSES for c in VEHICLE_CLASSES])
    total = q.sum(axis=-1)
    hv = q[..., heavy].sum(axis=-1)
    percent: np.ndarray = np.divide(100.0 * hv, total, out=np.zeros_like(total), where=total > 0)
    return percent


_ALIASES: Mapping[str, VehicleClass] = MappingProxyType(
    {
        "motorcycle": VehicleClass.MOTORCYCLE,
        "motorbike": VehicleClass.MOTORCYCLE,
        "moped": VehicleClass.MOTORCYCLE,
        "scooter": VehicleClass.MOTORCYCLE,
        "mc": VehicleClass.MOTORCYCLE,
        "car": VehicleClass.CAR,
        "passenger": VehicleClass.CAR,
        "pc": VehicleClass.CAR,
        "bus": VehicleClass.BUS,
        "coach": VehicleClass.BUS,
        "truck": VehicleClass.TRUCK,
        "lorry": VehicleClass.TRUCK,
        "hgv": VehicleClass.TRUCK,
        "bicycle": VehicleClass.BICYCLE,
        "bike": VehicleClass.BICYCLE,
        "cycle": VehicleClass.BICYCLE,
    }
)


def vehicle_class(name: str) -> VehicleClass:
    """Parse a class name as written in count files (case-insensitive, a few aliases)."""
    try:
        return _ALIASES[str(name).strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown vehicle class {name!r} (use one of {', '.join(c.value for c in VEHICLE_CLASSES)})"
        ) from None
