"""Scenario definitions as frozen values: what a validated TOML file says (read by :mod:`.definition`)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _fmt(x: float) -> str:
    """Shortest exact-enough decimal for SUMO XML (no exponent for ordinary values)."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6f}".rstrip("0").rstrip(".")


# Share of each class in the demo's demand (demo.toml repeats it); motorcycle-dominated
# (Hanoi DoT: motorbikes ~95 % of registered vehicles; counted streams at signals are
# 80-95 % motorcycles, Nguyen & Montgomery 2007 — docs/scenarios.md).
VEHICLE_MIX: dict[str, float] = {"motorcycle": 0.80, "car": 0.15, "bus": 0.02, "truck": 0.03}


@dataclass(frozen=True)
class BuiltScenario:
    """A scenario built into ``directory``.

    ``begin_s``/``end_s`` are the simulated horizon; ``sumo_args`` are the
    options (without the executable) equivalent to ``-c sumocfg``, with
    absolute paths, for ``libsumo.start([sumo, *sumo_args])``. SUMO refuses an
    option given twice: replace one rather than append it
    (``simulation.sumo_backend.merge_sumo_args``), or start from
    ``["-c", sumocfg]``, whose values the command line overrides.
    ``corridor`` lists the main road's traffic-light ids in travel order of the
    forward direction (west to east); it is empty for grids.
    ``additional`` are SUMO additional files the scenario itself needs (bus
    stops), already listed in the sumocfg and ``sumo_args``.
    ``faults`` is the validated ``[faults]`` table, empty when there is none::

        {"detector_fail_fraction": 0.2,  # share of the detectors that fail, (0, 1]
         "at_s": 1200.0,                 # simulation time at which they fail (and stay failed)
         "seed": 7,                      # selects which ones (see detector_faults)
         "mode": "mixed",                # dead | stuck | mixed
         "stuck_share": 0.5}             # share of the failed ones stuck on (dead 0, stuck 1)

    A dead detector reports NaN counts and occupancy; a stuck one reports
    occupancy 1.0 and no vehicles.
    """

    name: str
    directory: Path
    net: Path
    routes: tuple[Path, ...]
    begin_s: float
    end_s: float
    sumocfg: Path
    sumo_args: tuple[str, ...]
    corridor: tuple[str, ...]
    description: str
    seed: int
    additional: tuple[Path, ...] = ()
    faults: dict[str, Any] = field(default_factory=dict, hash=False)


# --------------------------------------------------------------------------------------
# Definition model
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridNetwork:
    x_number: int
    y_number: int
    x_length_m: float
    y_length_m: float
    attach_length_m: float
    lanes: int
    speed_m_s: float
    lane_width_m: float
    turn_lanes: int  # extra left-turn lanes (bays) at each signalised approach
    turn_lane_length_m: float

    @property
    def n_signals(self) -> int:
        return self.x_number * self.y_number


@dataclass(frozen=True)
class CorridorNetwork:
    spacing_m: tuple[float, ...]
    end_length_m: float
    side_length_m: float
    main_lanes: int
    main_speed_m_s: float
    main_lane_width_m: float
    side_lanes: int
    side_speed_m_s: float
    side_lane_width_m: float

    @property
    def n_signals(self) -> int:
        return len(self.spacing_m) + 1

    @property
    def signal_ids(self) -> tuple[str, ...]:
        return tuple(f"J{i}" for i in range(1, self.n_signals + 1))


@dataclass(frozen=True)
class CityNetwork:
    """A generated city: concentric rings of junctions joined by radial links (:mod:`.city`).

    ``rings`` rings ``ring_spacing_m`` apart, junctions about ``block_m`` apart along each;
    ``arms`` straight radial arterials and the ``arterial_ring``-th ring are the arterials
    (``arterial_lanes`` per direction), the rest are local streets. ``jitter_m``,
    ``inward_share`` and ``drop_share`` make the pattern irregular; ``layout_seed`` fixes it
    (the build seed varies only the demand).
    """

    rings: int
    ring_spacing_m: float
    block_m: float
    arms: int
    arterial_ring: int
    fringe_length_m: float
    jitter_m: float
    inward_share: float
    drop_share: float
    layout_seed: int
    arterial_lanes: int
    arterial_speed_m_s: float
    local_lanes: int
    local_speed_m_s: float
    lane_width_m: float

    @property
    def n_signals(self) -> int:
        from scenarios.library.city import city_layout

        return len(city_layout(self).signals)


@dataclass(frozen=True)
class CityBusLine:
    """A bus line of a city: across it on two arms (``radial``) or round the arterial ring (``ring``)."""

    id: str
    kind: str  # radial | ring
    from_arm: int
    to_arm: int
    headway_s: float
    persons: int
    vtype: str


@dataclass(frozen=True)
class CityDemand:
    """Trips over a whole city (:mod:`.city`): a peak rate shaped by the profile, no turning shares."""

    peak_veh_h: float  # all trips starting in the city per hour at profile factor 1
    through_share: float  # share entering on one arterial's fringe and leaving on another's
    inbound_share: float  # share of the other trips bound for the centre (weight 1 / radius)
    min_trip_m: float  # shortest straight-line distance between a trip's ends
    buses: tuple[CityBusLine, ...] = ()


@dataclass(frozen=True)
class TlsSpec:
    type: str
    cycle_s: int | None
    allred_s: int | None
    yellow_min_decel_m_s2: float | None
    layout: str | None

    def options(self) -> list[str]:
        """netconvert/netgenerate ``--tls.*`` options."""
        opts = [f"--tls.default-type={self.type}"]
        if self.cycle_s is not None:
            opts.append(f"--tls.cycle.time={self.cycle_s}")
        if self.allred_s is not None:
            opts.append(f"--tls.allred.time={self.allred_s}")
        if self.yellow_min_decel_m_s2 is not None:
            opts.append(f"--tls.yellow.min-decel={_fmt(self.yellow_min_decel_m_s2)}")
        if self.layout is not None:
            opts.append(f"--tls.layout={self.layout}")
        return opts


@dataclass(frozen=True)
class GridDemand:
    x_entry_peak_veh_h: float  # per approach from the west and east fringe, at the peak
    y_entry_peak_veh_h: float  # per approach from the south and north fringe
    through: float
    left: float
    right: float


@dataclass(frozen=True)
class CorridorDemand:
    forward_peak_veh_h: float  # entering at W, heading east
    reverse_peak_veh_h: float  # entering at E, heading west
    main_left: float  # share of main-road vehicles turning left at each junction
    main_right: float
    side_peak_veh_h: float  # each side-street approach
    side_through: float
    side_left: float
    side_right: float
    side_mix: Mapping[str, float] | None


@dataclass(frozen=True)
class BusLine:
    id: str
    direction: str  # forward (W->E) | reverse (E->W)
    headway_s: float
    persons: int
    vtype: str
    stops_after: tuple[str, ...] = ()  # junctions with a far-side stop, in travel order; () = a plain flow
    dwell_s: float = 0.0  # scheduled dwell at every stop
    offset_s: float = 0.0  # first trip at begin_s + offset_s (timetabled lines only)


@dataclass(frozen=True)
class EmergencyVehicle:
    id: str
    route: str  # id of one of the demand's routes
    depart_s: float
    vtype: str
    bluelight: bool  # SUMO's bluelight device (passes red lights; rescue lanes in the sublane model)


@dataclass(frozen=True)
class FaultSpec:
    """``[faults]``: a share of the detectors fails at ``at_s`` and stays failed."""

    detector_fail_fraction: float
    at_s: float
    seed: int | None  # None: the build seed
    mode: str  # dead | stuck | mixed
    stuck_share: float  # share of the failed detectors that are stuck on

    def as_dict(self, build_seed: int) -> dict[str, Any]:
        return {
            "detector_fail_fraction": self.detector_fail_fraction,
            "at_s": self.at_s,
            "seed": build_seed if self.seed is None else self.seed,
            "mode": self.mode,
            "stuck_share": self.stuck_share,
        }


@dataclass(frozen=True)
class DemandSpec:
    slice_s: float
    arrivals: str  # poisson | uniform
    jitter: float
    profile: tuple[tuple[float, float], ...]
    mix: Mapping[str, float]
    depart_lane: str
    depart_speed: str
    depart_pos_lat: str | None
    pattern: GridDemand | CorridorDemand | CityDemand
    buses: tuple[BusLine, ...]
    emergency: tuple[EmergencyVehicle, ...] = ()

    def factor_at(self, t_s: float) -> float:
        """Piecewise-linear profile value at ``t_s`` (held constant outside its points)."""
        pts = self.profile
        if t_s <= pts[0][0]:
            return pts[0][1]
        for (t0, f0), (t1, f1) in itertools.pairwise(pts):
            if t_s <= t1:
                return f0 + (f1 - f0) * (t_s - t0) / (t1 - t0)
        return pts[-1][1]

    def slices(self, begin_s: float, end_s: float) -> list[tuple[float, float, float]]:
        """``(begin_s, end_s, factor)`` of each demand slice (factor at the slice middle)."""
        out = []
        t = begin_s
        while t < end_s - 1e-9:
            e = min(t + self.slice_s, end_s)
            out.append((t, e, self.factor_at(0.5 * (t + e))))
            t = e
        return out


@dataclass(frozen=True)
class SumoSpec:
    step_length_s: float
    lateral_resolution_m: float | None
    time_to_teleport_s: float
    collision_action: str | None

    def options(self) -> list[tuple[str, str]]:
        opts = [("step-length", _fmt(self.step_length_s))]
        if self.lateral_resolution_m is not None:
            opts.append(("lateral-resolution", _fmt(self.lateral_resolution_m)))
        opts.append(("time-to-teleport", _fmt(self.time_to_teleport_s)))
        if self.collision_action is not None:
            opts.append(("collision.action", self.collision_action))
        return opts


@dataclass(frozen=True)
class ScenarioDef:
    """A validated scenario definition (see ``docs/scenarios.md`` for every field)."""

    name: str
    description: str
    source: Path
    sha256: str
    begin_s: float
    end_s: float
    demand_end_s: float
    network: GridNetwork | CorridorNetwork | CityNetwork
    tls: TlsSpec
    demand: DemandSpec
    sumo: SumoSpec
    vtypes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (id, ((attr, value), ...))
    faults: FaultSpec | None = None
    extends: Path | None = None  # the base definition's file, if any

    def vtype(self, vid: str) -> dict[str, str]:
        return dict(dict(self.vtypes)[vid])

    @property
    def has_bus_stops(self) -> bool:
        return any(line.stops_after for line in self.demand.buses)

    @property
    def n_signals(self) -> int:
        return self.network.n_signals

    @property
    def corridor(self) -> tuple[str, ...]:
        return self.network.signal_ids if isinstance(self.network, CorridorNetwork) else ()
