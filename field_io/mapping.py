"""How an intersection of the inventory maps onto a field controller.

The inventory carries the mapping (``docs/inventory.md``): each signal group's
``phase`` is its NTCIP 1202 phase number and each detector's ``channel`` its
controller input / NTCIP detector number. Unmapped entries (``0``, as loaded
from a SUMO network) take their position + 1, the same rule the hi-res event
recorder uses (:mod:`controller.events`), so event files and field addresses
agree.

A stage maps to the set of NTCIP phases of its groups. Pedestrian groups share
the number of the vehicle phase they run with (their WALK is that phase's
walk). Two stages must map to different phase sets, or a phase-control
command (hold / force-off / call bitmasks) could not name a stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intersections.errors import InputError
from intersections.model import Intersection
from intersections.network import Network

__all__ = [
    "FieldMap",
    "field_map",
    "network_maps",
    "MAX_GROUPS",
    "MAX_STAGES",
    "MAX_DETECTORS",
    "MAX_PHASES",
    "QUEUE_NOT_MEASURED",
    "queue_to_wire",
    "queue_from_wire",
]

#: Limits of the greenwave field profile (Modbus register map and NTCIP phase groups).
MAX_GROUPS = 32
MAX_STAGES = 16
MAX_DETECTORS = 48
QUEUE_NOT_MEASURED = 0xFFFF  # queue registers/objects: no zone detector measures it
MAX_PHASES = 32  # 4 NTCIP phase groups of 8


@dataclass(frozen=True, eq=False)
class FieldMap:
    """The field addresses of one intersection.

    ``phase`` (G,): NTCIP phase of each group; ``channel`` (D,): detector
    channel of each detector (1-based); ``stage_phases``: the phase set of
    each stage; ``stage_group_mask`` (S, G) bool.
    """

    intersection: Intersection
    phase: np.ndarray
    channel: np.ndarray
    stage_phases: tuple[frozenset[int], ...]
    stage_group_mask: np.ndarray

    @property
    def id(self) -> str:
        return self.intersection.id

    @property
    def n_groups(self) -> int:
        return len(self.intersection.groups)

    @property
    def n_stages(self) -> int:
        return len(self.intersection.stages)

    @property
    def n_detectors(self) -> int:
        return len(self.intersection.detectors)

    @property
    def max_channel(self) -> int:
        return int(self.channel.max()) if self.channel.size else 0

    @property
    def phases(self) -> tuple[int, ...]:
        """Every NTCIP phase in use, ascending."""
        return tuple(sorted({int(p) for p in self.phase}))

    @property
    def max_phase(self) -> int:
        return max(self.phases, default=0)

    def stage_of_phases(self, phases: frozenset[int]) -> int:
        """Index of the stage with exactly these phases; -1 if none."""
        for k, s in enumerate(self.stage_phases):
            if s == phases:
                return k
        return -1


def field_map(inter: Intersection) -> FieldMap:
    """Build and validate the field map of one intersection (see the module docstring)."""
    where = f"intersection {inter.id}"
    if len(inter.groups) > MAX_GROUPS:
        raise InputError(
            f"{len(inter.groups)} signal groups; the field profile carries at most {MAX_GROUPS}", where=where
        )
    if len(inter.stages) > MAX_STAGES:
        raise InputError(f"{len(inter.stages)} stages; the field profile carries at most {MAX_STAGES}", where=where)
    if not inter.stages:
        raise InputError("no stages: a field controller is commanded by stage", where=where)
    if len(inter.detectors) > MAX_DETECTORS:
        raise InputError(
            f"{len(inter.detectors)} detectors; the field profile carries at most {MAX_DETECTORS}", where=where
        )
    phase = np.array([g.phase or (k + 1) for k, g in enumerate(inter.groups)], dtype=np.int64)
    owner: dict[int, str] = {}
    for g, p in zip(inter.groups, phase, strict=True):
        if p > MAX_PHASES:
            raise InputError(f"signal group {g.id}: NTCIP phase {p} is above {MAX_PHASES}", where=where)
        if not g.is_pedestrian:
            if int(p) in owner:
                raise InputError(
                    f"signal groups {owner[int(p)]} and {g.id} both map to NTCIP phase {p} "
                    "(give each vehicle group its own phase in the inventory)",
                    where=where,
                )
            owner[int(p)] = g.id
    channel = np.array([d.channel or (k + 1) for k, d in enumerate(inter.detectors)], dtype=np.int64)
    seen: dict[int, str] = {}
    for d, c in zip(inter.detectors, channel, strict=True):
        if c > MAX_DETECTORS:
            raise InputError(f"detector {d.id}: channel {c} is above {MAX_DETECTORS}", where=where)
        if int(c) in seen:
            raise InputError(f"detectors {seen[int(c)]} and {d.id} both use channel {c}", where=where)
        seen[int(c)] = d.id
    mask = inter.stage_mask()
    stage_phases = tuple(frozenset(int(p) for p in phase[mask[k]]) for k in range(len(inter.stages)))
    for a in range(len(stage_phases)):
        for b in range(a + 1, len(stage_phases)):
            if stage_phases[a] == stage_phases[b]:
                raise InputError(
                    f"stages {inter.stages[a].id} and {inter.stages[b].id} map to the same NTCIP phases "
                    f"{sorted(stage_phases[a])}; a controller could not tell them apart",
                    where=where,
                )
    return FieldMap(inter, phase, channel, stage_phases, mask)


def network_maps(network: Network) -> tuple[FieldMap, ...]:
    return tuple(field_map(i) for i in network.intersections)


def queue_to_wire(queue_veh: np.ndarray) -> np.ndarray:
    """Vehicles queued (NaN unknown) -> whole vehicles 0-65534, :data:`QUEUE_NOT_MEASURED` where unknown.

    One encoding for the Modbus queues table and NTCIP ``gwGroupQueue``.
    """
    q = np.asarray(queue_veh, float)
    vals = np.clip(np.rint(np.nan_to_num(q, nan=0.0)), 0, QUEUE_NOT_MEASURED - 1)
    return np.where(np.isfinite(q), vals, QUEUE_NOT_MEASURED).astype(np.int64)


def queue_from_wire(words: np.ndarray) -> np.ndarray:
    """The inverse of :func:`queue_to_wire` (NaN where not measured)."""
    q = np.asarray(words, float)
    return np.where(q == QUEUE_NOT_MEASURED, np.nan, q)
