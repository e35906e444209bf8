"""The intersection model: the shared language of every greenwave package.

An :class:`Intersection` is a set of **signal groups** (each drives the
signal heads of one or more movements), a **conflict matrix** (which groups may
never be green, or green and yellow, together), an **intergreen matrix** in
seconds, and **stages** (sets of mutually compatible groups that a plan or a
policy switches between).

Conventions (European "group-based" control, also how SUMO numbers links):

* ``intergreen_s[i, j]`` is the least time from the *end of green* of group
  ``i`` to the *start of green* of group ``j``; it contains ``i``'s yellow and
  the all-red that clears the conflict area (ITE change + clearance interval,
  see :mod:`intersections.clearance`). It is only meaningful where
  ``conflicts[i, j]`` is true. The diagonal holds each group's own
  yellow + all-red, so a group never re-greens before its own clearance ends.
* Pedestrian groups have no yellow: their green is the WALK interval and their
  clearance (flashing DON'T WALK) is carried by the intergreen towards
  conflicting groups, which must be at least ``ped_clearance_s`` (MUTCD 2009
  §4E.06; ``../shared/reference/field-io.md`` §3.3).

Every value is validated on construction; a model that exists is consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from types import MappingProxyType

import numpy as np

from intersections.errors import InputError

__all__ = [
    "GroupKind",
    "DetectorKind",
    "SignalState",
    "Movement",
    "SignalGroup",
    "Stage",
    "Detector",
    "Intersection",
]


class GroupKind(StrEnum):
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    BUS = "bus"
    BICYCLE = "bicycle"


class DetectorKind(StrEnum):
    STOP_LINE = "stop_line"  # lane-area / presence detector at the stop line
    ADVANCE = "advance"  # loop upstream, counts arrivals
    PEDESTRIAN = "pedestrian"  # push button or passive ped detector
    BUS = "bus"  # transit check-in
    EXIT = "exit"  # lane-area zone just past the junction on a movement's exit lane: is the exit jammed?


class SignalState(int, Enum):
    """What a signal group shows; the integer codes are used in state arrays."""

    RED = 0
    YELLOW = 1
    GREEN = 2
    FLASH = 3  # flashing yellow / red: the fail-safe, no right of way


@dataclass(frozen=True)
class Movement:
    """One turning movement (or crossing) a signal group serves.

    ``from_edge``/``to_edge`` are road-graph edge ids (SUMO edge ids for nets);
    ``lanes`` the incoming lane ids; ``turn`` one of ``l s r t`` (left,
    straight, right, U-turn) or ``p`` for a pedestrian crossing.
    """

    from_edge: str
    to_edge: str
    lanes: tuple[str, ...] = ()
    turn: str = "s"

    def __post_init__(self) -> None:
        if self.turn not in {"l", "s", "r", "t", "p", "L", "R"}:
            raise InputError(
                f"turn must be one of l s r t p, got {self.turn!r}", where=f"movement {self.from_edge}->{self.to_edge}"
            )
        object.__setattr__(self, "lanes", tuple(self.lanes))


def _check_duration(where: str, name: str, value: float, *, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number of seconds, got {value!r}", where=where) from None
    if not np.isfinite(v) or v < 0 or (positive and v == 0):
        bound = "> 0" if positive else ">= 0"
        raise InputError(f"{name} must be {bound} seconds, got {value!r}", where=where)
    return v


@dataclass(frozen=True)
class SignalGroup:
    """A signal group: heads that always show the same aspect.

    Timings in seconds. ``link_indices`` are the SUMO tlLogic link indices the
    group drives (empty for field-only intersections); ``phase`` is the NTCIP
    1202 phase number for field controllers (0 when unmapped).
    """

    id: str
    kind: GroupKind = GroupKind.VEHICLE
    movements: tuple[Movement, ...] = ()
    min_green_s: float = 5.0
    max_green_s: float = 60.0
    yellow_s: float = 3.0
    all_red_s: float = 2.0
    walk_s: float = 0.0
    ped_clearance_s: float = 0.0
    link_indices: tuple[int, ...] = ()
    phase: int = 0

    def __post_init__(self) -> None:
        where = f"signal group {self.id}"
        if not isinstance(self.id, str) or not self.id:
            raise InputError("signal group id must be a non-empty string", where=where)
        object.__setattr__(self, "kind", GroupKind(self.kind))
        object.__setattr__(self, "movements", tuple(self.movements))
        object.__setattr__(self, "link_indices", tuple(int(i) for i in self.link_indices))
        for name in ("min_green_s", "max_green_s", "yellow_s", "all_red_s", "walk_s", "ped_clearance_s"):
            object.__setattr__(self, name, _check_duration(where, name, getattr(self, name)))
        if self.max_green_s < self.min_green_s:
            raise InputError(f"max_green_s ({self.max_green_s}) is below min_green_s ({self.min_green_s})", where=where)
        if self.kind is GroupKind.PEDESTRIAN and self.yellow_s != 0:
            # Pedestrian heads have no yellow; the clearance is the flashing DON'T WALK.
            object.__setattr__(self, "yellow_s", 0.0)

    @property
    def is_pedestrian(self) -> bool:
        return self.kind is GroupKind.PEDESTRIAN

    @property
    def required_green_s(self) -> float:
        """Least green the group may show: min green, or WALK for pedestrians."""
        if self.is_pedestrian:
            return max(self.min_green_s, self.walk_s)
        return self.min_green_s

    @property
    def clearance_s(self) -> float:
        """Own clearance after green: yellow + all-red, or the ped clearance."""
        if self.is_pedestrian:
            return self.ped_clearance_s + self.all_red_s
        return self.yellow_s + self.all_red_s


@dataclass(frozen=True)
class Stage:
    """A set of mutually compatible signal groups that are green together.

    ``yielding`` names the members that are green here only as a permissive
    movement (SUMO's ``g``: a left turn filtering through gaps in the oncoming
    flow) while another stage of the intersection gives them right of way.
    Such a movement's capacity in this stage depends on the gaps the opposing
    flow leaves (HCM 7th ed., ch. 19, permissive left-turn capacity: near zero
    beyond the sneakers when the opposing approach is saturated), so demand
    models credit its queue to the stage that protects it.
    """

    id: str
    groups: frozenset[str]
    yielding: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", frozenset(self.groups))
        object.__setattr__(self, "yielding", frozenset(self.yielding))
        if not self.groups:
            raise InputError("a stage must hold at least one signal group", where=f"stage {self.id}")
        if not self.yielding <= self.groups:
            raise InputError(
                f"yielding groups {sorted(self.yielding - self.groups)} are not members of the stage",
                where=f"stage {self.id}",
            )


@dataclass(frozen=True)
class Detector:
    """A detector feeding one signal group.

    ``position_m`` is the distance of the detector's downstream end from the
    stop line (0 at the stop line), ``length_m`` its length along the lane.
    """

    id: str
    lane: str
    group: str
    kind: DetectorKind = DetectorKind.STOP_LINE
    position_m: float = 0.0
    length_m: float = 2.0
    channel: int = 0  # controller input channel / NTCIP detector number

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DetectorKind(self.kind))
        where = f"detector {self.id}"
        object.__setattr__(self, "position_m", _check_duration(where, "position_m", self.position_m))
        object.__setattr__(self, "length_m", _check_duration(where, "length_m", self.length_m, positive=True))


def _frozen_array(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Intersection:
    """One signalised intersection.

    ``conflicts`` (bool, G x G, symmetric, false diagonal) and ``intergreen_s``
    (float, G x G) are indexed in the order of ``groups``. Construction checks
    shapes, symmetry, that each stage holds only known and mutually
    compatible groups, that every group is served by some stage, and that
    every intergreen covers the ending group's own yellow (or ped clearance).
    """

    id: str
    groups: tuple[SignalGroup, ...]
    conflicts: np.ndarray
    intergreen_s: np.ndarray
    stages: tuple[Stage, ...]
    detectors: tuple[Detector, ...] = ()
    x_m: float = 0.0
    y_m: float = 0.0
    approach_speed_m_s: Mapping[str, float] = field(default_factory=dict)
    tls_id: str = ""  # SUMO traffic-light id (defaults to ``id``)
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"intersection {self.id}"
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "detectors", tuple(self.detectors))
        object.__setattr__(self, "approach_speed_m_s", MappingProxyType(dict(self.approach_speed_m_s)))
        if not self.tls_id:
            object.__setattr__(self, "tls_id", self.id)
        n = len(self.groups)
        if n == 0:
            raise InputError("an intersection needs at least one signal group", where=where)
        ids = [g.id for g in self.groups]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise InputError(f"duplicate signal group ids {dup}", where=where)
        conflicts = np.asarray(self.conflicts, dtype=bool)
        intergreen = np.asarray(self.intergreen_s, dtype=float)
        if conflicts.shape != (n, n):
            raise InputError(f"conflict matrix is {conflicts.shape}, expected ({n}, {n})", where=where)
        if intergreen.shape != (n, n):
            raise InputError(f"intergreen matrix is {intergreen.shape}, expected ({n}, {n})", where=where)
        if not np.array_equal(conflicts, conflicts.T):
            i, j = np.argwhere(conflicts != conflicts.T)[0]
            raise InputError(f"conflict matrix is not symmetric at ({ids[i]}, {ids[j]})", where=where)
        if conflicts.diagonal().any():
            raise InputError("a signal group cannot conflict with itself", where=where)
        if not np.isfinite(intergreen).all() or (intergreen < 0).any():
            raise InputError("intergreen times must be finite and >= 0 seconds", where=where)
        index = {g: k for k, g in enumerate(ids)}
        for k, g in enumerate(self.groups):
            need = g.yellow_s if not g.is_pedestrian else g.ped_clearance_s
            row = intergreen[k][conflicts[k]]
            if row.size and row.min() + 1e-9 < need:
                j = int(np.flatnonzero(conflicts[k])[np.argmin(row)])
                raise InputError(
                    f"intergreen {g.id}->{ids[j]} is {row.min():g} s, shorter than "
                    f"{g.id}'s {'ped clearance' if g.is_pedestrian else 'yellow'} {need:g} s",
                    where=where,
                )
        intergreen = intergreen.copy()
        np.fill_diagonal(intergreen, [g.clearance_s for g in self.groups])
        stage_ids = [s.id for s in self.stages]
        if len(set(stage_ids)) != len(stage_ids):
            raise InputError("duplicate stage ids", where=where)
        served: set[str] = set()
        for s in self.stages:
            unknown = sorted(s.groups - index.keys())
            if unknown:
                raise InputError(f"stage {s.id} names unknown signal groups {unknown}", where=where)
            members = sorted(index[g] for g in s.groups)
            sub = conflicts[np.ix_(members, members)]
            if sub.any():
                a, b = np.argwhere(sub)[0]
                raise InputError(
                    f"stage {s.id} holds conflicting groups {ids[members[a]]} and {ids[members[b]]}",
                    where=where,
                )
            served |= s.groups
        if self.stages:
            unserved = [g for g in ids if g not in served]
            if unserved:
                raise InputError(f"signal groups {unserved} are served by no stage", where=where)
        object.__setattr__(self, "conflicts", _frozen_array(conflicts))
        object.__setattr__(self, "intergreen_s", _frozen_array(intergreen))
        object.__setattr__(self, "_index", MappingProxyType(index))

    # ---- look-ups -----------------------------------------------------------
    @property
    def group_ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.groups)

    def group_index(self, group_id: str) -> int:
        try:
            return self._index[group_id]
        except KeyError:
            raise InputError(f"unknown signal group {group_id!r}", where=f"intersection {self.id}") from None

    def group(self, group_id: str) -> SignalGroup:
        return self.groups[self.group_index(group_id)]

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise InputError(f"unknown stage {stage_id!r}", where=f"intersection {self.id}")

    def stage_index(self, stage_id: str) -> int:
        return self.stages.index(self.stage(stage_id))

    def stage_mask(self, *, yielding: bool = False) -> np.ndarray:
        """Bool array (stages x groups): which groups each stage turns green (or, with
        ``yielding``, which it turns green only as permissive movements protected elsewhere)."""
        m = np.zeros((len(self.stages), len(self.groups)), dtype=bool)
        for k, s in enumerate(self.stages):
            for g in s.yielding if yielding else s.groups:
                m[k, self.group_index(g)] = True
        return m

    def transition_s(self, from_stage: str, to_stage: str) -> float:
        """Least time between the end of one stage's green and the next's."""
        return self.clearance_between_s(self.stage(from_stage).groups, self.stage(to_stage).groups)

    def clearance_between_s(self, from_groups: frozenset[str], to_groups: frozenset[str]) -> float:
        """Least time from the end of green of ``from_groups`` to ``to_groups``.

        The largest intergreen from a group that ends to a conflicting group
        that starts; at least the yellow of every vehicle group that ends (its
        heads must show the full yellow even with nothing conflicting).
        """
        a = np.zeros(len(self.groups), dtype=bool)
        b = np.zeros(len(self.groups), dtype=bool)
        a[[self.group_index(g) for g in from_groups]] = True
        b[[self.group_index(g) for g in to_groups]] = True
        ending, starting = a & ~b, b & ~a
        need = 0.0
        sub = self.conflicts[np.ix_(ending, starting)]
        if sub.any():
            need = float(self.intergreen_s[np.ix_(ending, starting)][sub].max())
        yellows = [g.yellow_s for g, e in zip(self.groups, ending, strict=False) if e]
        return max([need, *yellows])

    def with_stages(self, stages: tuple[Stage, ...]) -> Intersection:
        """A copy with other stages (validated again)."""
        return Intersection(
            id=self.id,
            groups=self.groups,
            conflicts=self.conflicts,
            intergreen_s=self.intergreen_s,
            stages=stages,
            detectors=self.detectors,
            x_m=self.x_m,
            y_m=self.y_m,
            approach_speed_m_s=dict(self.approach_speed_m_s),
            tls_id=self.tls_id,
        )
