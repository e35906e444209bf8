"""Scenario library: small declarative recipes that generate SUMO inputs on demand.

Each scenario is one TOML file in ``scenarios/defs/`` (or a user's own file
anywhere): a network recipe, signal settings, a time-varying demand, SUMO
options and vehicle types. :func:`build_scenario` turns it into a folder::

    <name>.net.xml     network (netgenerate for grids, netconvert for corridors)
    <name>.nod.xml     corridor only: the node/edge description given to netconvert
    <name>.edg.xml
    <name>.rou.xml     vTypes, routes and one <flow> per route, vehicle type and time slice;
                       timetabled buses and emergency vehicles as single <vehicle>s
    <name>.add.xml     only with bus stops: the <busStop>s (listed in the sumocfg)
    <name>.sumocfg     the files above plus the scenario's SUMO options and seed
    <name>.toml        a copy of the definition that was built
    <name>.build.json  what was built (definition hash, seed, SUMO version), for the cache

Nothing large is committed; builds are deterministic (the same definition, seed
and SUMO version give the same bytes) and cached (a folder that already holds
the same build is reused).

Networks
    ``grid``: ``netgenerate --grid``; every inner junction is signalised.
    ``corridor``: a main road through signalised junctions at given
    (irregular) spacings, each crossed by a two-way side street; nodes
    ``W``, ``J1``..``Jn``, ``E`` along the main road (west to east), ``N<i>`` /
    ``S<i>`` at the side-street ends; edges ``<from>_<to>``; the traffic-light ids
    are ``J1``..``Jn`` and :attr:`BuiltScenario.corridor` lists them in order.
    Signals get SUMO's own default fixed-time programs (netconvert's
    ``--tls.*`` options); they are the ``sumo`` baseline controller.

Demand
    The profile is piecewise linear in time (``[[t_s, factor], ...]``,
    factor 1 = the peak rates given); it is sampled at the middle of each
    ``slice_s`` slice and written as one flow per route, vehicle type and
    slice. Arrivals are Poisson (``period="exp(rate)"``) or evenly spaced
    (``vehsPerHour``). Origin-destination rates follow turning shares: on a grid
    each trip goes straight or turns once (left or right at any column or
    row); on a corridor, a main-road vehicle turns off at each junction with the
    given left/right shares, and side-street vehicles cross, or turn onto the
    main road and ride to its end. Each route's rate is scaled by a seeded
    factor in ``[1 - jitter, 1 + jitter]``. Bus lines run the whole corridor at a
    fixed headway with ``personNumber`` passengers (for person delay).

Bus stops and timetables
    A bus line with ``stops_after`` runs as single trips with a timetable
    instead of a flow: a far-side ``<busStop>`` just past each listed junction
    (in ``<name>.add.xml``) and, per trip and stop, ``<stop arrival= duration=
    until=>``. The scheduled arrival is the departure plus the free-flow
    running time (distance at the bus's free speed, plus the time lost
    braking into and accelerating out of each stop) plus the dwells before
    it, so a bus's lateness against the timetable is the delay it has met
    (signals, queues) so far; ``until`` holds a bus that runs early.

Emergency vehicles
    ``[[demand.emergency]]`` inserts single vehicles of an emergency vType on
    one of the demand's routes at given times, optionally with SUMO's
    bluelight device.

Detector faults
    ``[faults]`` is not applied here: it is validated and handed on as
    :attr:`BuiltScenario.faults` for the runner; :func:`detector_faults`
    picks the failing detectors from it.

Extending a definition
    ``extends = "<library name or .toml path>"`` starts from another
    definition: its tables are merged key by key with this file's (this
    file wins; arrays are replaced, not merged); ``name`` and ``description``
    are never inherited.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from intersections.errors import InputError, SimulationError
from simulation.sumo_home import sumo_binary

__all__ = [
    "BuiltScenario",
    "ScenarioDef",
    "build_scenario",
    "detector_faults",
    "load_scenario_def",
    "scenario_names",
    "iter_flows",
    "DEFS_DIR",
    "VEHICLE_MIX",
    "write_vtypes",
]

DEFS_DIR = Path(__file__).resolve().parent / "defs"

# Bump when the generated files change for the same definition (invalidates caches).
_BUILD_VERSION = "1"

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
    pattern: GridDemand | CorridorDemand
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
    network: GridNetwork | CorridorNetwork
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


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------

_REQUIRED = object()
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

_VCLASSES = frozenset(
    "passenger private taxi bus coach delivery truck trailer motorcycle moped bicycle emergency "
    "evehicle army authority vip hov custom1 custom2".split()
)
_VTYPE_NUMERIC = frozenset(
    "length width height minGap maxSpeed desiredMaxSpeed speedDev accel decel emergencyDecel "
    "apparentDecel sigma tau personCapacity containerCapacity boardingDuration loadingDuration minGapLat "
    "maxSpeedLat maxSpeedLatStanding actionStepLength impatience mass probability "
    "lcStrategic lcCooperative lcSpeedGain lcKeepRight lcOvertakeRight lcOpposite lcLookaheadLeft "
    "lcSpeedGainRight lcSublane lcPushy lcPushyGap lcAssertive lcImpatience lcTimeToImpatience lcAccelLat "
    "lcTurnAlignmentDistance lcMaxSpeedLatStanding lcMaxSpeedLatFactor lcLaneDiscipline lcSigma "
    "lcCooperativeRoundabout lcCooperativeSpeed lcSpeedGainLookahead lcStrategicLookahead "
    "jmCrossingGap jmIgnoreKeepClearTime jmDriveAfterYellowTime jmDriveAfterRedTime jmDriveRedSpeed "
    "jmIgnoreFoeProb jmIgnoreFoeSpeed jmSigmaMinor jmStoplineGap jmStoplineGapMinor jmTimegapMinor "
    "jmAdvance jmExtraGap jmStopSignWait".split()
)
_VTYPE_TEXT = frozenset("vClass latAlignment carFollowModel laneChangeModel emissionClass guiShape color".split())
_DIST_RE = re.compile(r"^normc?\(\s*[0-9.]+(\s*,\s*[0-9.]+){1,3}\s*\)$")
_LAT_ALIGNMENTS = frozenset("left right center compact nice arbitrary".split())


class _Table:
    """One TOML table being read: typed getters that name the file and field on error."""

    def __init__(self, path: Path, data: Mapping[str, Any], prefix: str = "") -> None:
        self.path = path
        self.data = data
        self.prefix = prefix
        self.used: set[str] = set()

    def where(self, key: str | None = None) -> str:
        field = ".".join(p for p in (self.prefix, key) if p)
        return f"{self.path}:{field}" if field else str(self.path)

    def error(self, key: str | None, message: str) -> InputError:
        return InputError(message, where=self.where(key))

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error(key, "missing required field")
            return default
        return self.data[key]

    def number(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
        integer: bool = False,
    ) -> Any:
        v = self.raw(key, default)
        if key not in self.data:
            return v
        return _check_number(v, self.error, key, lo=lo, hi=hi, lo_open=lo_open, integer=integer)

    def text(self, key: str, default: Any = _REQUIRED, *, choices: frozenset[str] | None = None) -> Any:
        v = self.raw(key, default)
        if key not in self.data:
            return v
        if not isinstance(v, str) or not v:
            raise self.error(key, f"must be a non-empty string, got {v!r}")
        if choices is not None and v not in choices:
            raise self.error(key, f"must be one of {', '.join(sorted(choices))}; got {v!r}")
        return v

    def table(self, key: str, *, required: bool = True) -> _Table | None:
        v = self.raw(key, _REQUIRED if required else None)
        if v is None:
            return None
        if not isinstance(v, dict):
            raise self.error(key, f"must be a table, got {type(v).__name__}")
        return _Table(self.path, v, ".".join(p for p in (self.prefix, key) if p))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used)) or "(none)"
            raise self.error(unknown[0], f"unknown field {unknown[0]!r} (known here: {known})")


def _check_number(
    v: Any,
    error: Any,
    key: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    integer: bool = False,
) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise error(key, f"must be a number, got {v!r}")
    if integer and not (isinstance(v, int) or float(v).is_integer()):
        raise error(key, f"must be a whole number, got {v!r}")
    if not math.isfinite(v):
        raise error(key, f"must be finite, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise error(key, f"must be {'>' if lo_open else '>='} {lo:g}, got {v!r}")
    if hi is not None and v > hi:
        raise error(key, f"must be <= {hi:g}, got {v!r}")
    return int(v) if integer else float(v)


def _shares(t: _Table, keys: tuple[str, ...]) -> tuple[float, ...]:
    vals = tuple(t.number(k, lo=0.0, hi=1.0) for k in keys)
    if abs(sum(vals) - 1.0) > 1e-6:
        raise t.error(keys[0], f"{' + '.join(keys)} must sum to 1, got {sum(vals):g}")
    return vals


def _mix(t: _Table, key: str, vtypes: Mapping[str, Mapping[str, str]], *, required: bool = True) -> dict | None:
    raw = t.raw(key, _REQUIRED if required else None)
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise t.error(key, "must be a non-empty table of vType id = share")
    mix: dict[str, float] = {}
    for vid, share in raw.items():
        if vid not in vtypes:
            raise t.error(f"{key}.{vid}", f"unknown vType {vid!r} (defined: {', '.join(sorted(vtypes))})")
        mix[vid] = _check_number(share, t.error, f"{key}.{vid}", lo=0.0, hi=1.0)
    if abs(sum(mix.values()) - 1.0) > 1e-6:
        raise t.error(key, f"shares must sum to 1, got {sum(mix.values()):g}")
    return mix


def _vtypes(t: _Table) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for vid in list(t.data):
        sub = t.table(vid)
        assert sub is not None
        if not _NAME_RE.match(vid):
            raise t.error(vid, f"vType id must be letters, digits, '_' or '-', got {vid!r}")
        attrs: dict[str, str] = {}
        for attr, value in sub.data.items():
            sub.used.add(attr)
            if attr in _VTYPE_TEXT:
                if not isinstance(value, str) or not value:
                    raise sub.error(attr, f"must be a non-empty string, got {value!r}")
                attrs[attr] = value
            elif attr in _VTYPE_NUMERIC:
                lo = 0.0
                lo_open = attr in ("length", "width", "maxSpeed", "accel", "decel", "tau")
                hi = 1.0 if attr == "sigma" else None
                attrs[attr] = _fmt(_check_number(value, sub.error, attr, lo=lo, lo_open=lo_open, hi=hi))
            elif attr == "speedFactor":
                if isinstance(value, str) and _DIST_RE.match(value):
                    attrs[attr] = value
                else:
                    attrs[attr] = _fmt(_check_number(value, sub.error, attr, lo=0.0, lo_open=True))
            elif attr == "id":
                raise sub.error(attr, "not allowed here: the table name is the vType id")
            else:
                raise sub.error(attr, f"unknown vType attribute {attr!r}")
        if "vClass" not in attrs:
            raise sub.error("vClass", "missing required field")
        if attrs["vClass"] not in _VCLASSES:
            raise sub.error("vClass", f"unknown SUMO vClass {attrs['vClass']!r}")
        if vid in ("motorcycle", "bus") and attrs["vClass"] != vid:
            raise sub.error("vClass", f"vType {vid!r} must have vClass={vid!r}, got {attrs['vClass']!r}")
        if attrs["vClass"] == "bus" and "personCapacity" not in attrs:
            raise sub.error("personCapacity", "a bus needs personCapacity (for person delay)")
        la = attrs.get("latAlignment")
        if la is not None and la not in _LAT_ALIGNMENTS:
            try:
                float(la)
            except ValueError:
                raise sub.error("latAlignment", f"must be a number or one of {sorted(_LAT_ALIGNMENTS)}") from None
        out[vid] = attrs
    if not out:
        raise t.error(None, "define at least one vType")
    return out


def _load_network(t: _Table) -> tuple[GridNetwork | CorridorNetwork, str]:
    gen = t.text("generator", choices=frozenset({"grid", "corridor"}))
    if gen == "grid":
        net: GridNetwork | CorridorNetwork = GridNetwork(
            x_number=t.number("x_number", lo=1, integer=True),
            y_number=t.number("y_number", lo=1, integer=True),
            x_length_m=t.number("x_length_m", lo=20.0),
            y_length_m=t.number("y_length_m", lo=20.0),
            attach_length_m=t.number("attach_length_m", lo=20.0),
            lanes=t.number("lanes", lo=1, hi=6, integer=True),
            speed_m_s=t.number("speed_m_s", lo=0.0, lo_open=True, hi=50.0),
            lane_width_m=t.number("lane_width_m", 3.2, lo=2.0, hi=6.0),
            turn_lanes=t.number("turn_lanes", 0, lo=0, hi=3, integer=True),
            turn_lane_length_m=t.number("turn_lane_length_m", 50.0, lo=5.0),
        )
        if net.turn_lane_length_m >= min(net.x_length_m, net.y_length_m, net.attach_length_m):
            raise t.error("turn_lane_length_m", "must be shorter than the blocks")
    else:
        raw = t.raw("spacing_m")
        if not isinstance(raw, list) or not raw:
            raise t.error("spacing_m", "must be a non-empty list of distances in m between consecutive signals")
        spacing = tuple(_check_number(v, t.error, f"spacing_m[{i}]", lo=50.0) for i, v in enumerate(raw))
        net = CorridorNetwork(
            spacing_m=spacing,
            end_length_m=t.number("end_length_m", lo=50.0),
            side_length_m=t.number("side_length_m", lo=50.0),
            main_lanes=t.number("main_lanes", lo=1, hi=6, integer=True),
            main_speed_m_s=t.number("main_speed_m_s", lo=0.0, lo_open=True, hi=50.0),
            main_lane_width_m=t.number("main_lane_width_m", 3.2, lo=2.0, hi=6.0),
            side_lanes=t.number("side_lanes", lo=1, hi=6, integer=True),
            side_speed_m_s=t.number("side_speed_m_s", lo=0.0, lo_open=True, hi=50.0),
            side_lane_width_m=t.number("side_lane_width_m", 3.2, lo=2.0, hi=6.0),
        )
    t.done()
    return net, gen


def _load_demand(
    t: _Table,
    network: GridNetwork | CorridorNetwork,
    vtypes: Mapping[str, Mapping[str, str]],
    begin_s: float,
    demand_end_s: float,
    end_s: float,
) -> DemandSpec:
    gen = "grid" if isinstance(network, GridNetwork) else "corridor"
    span_s = demand_end_s - begin_s
    slice_s = t.number("slice_s", lo=1.0)
    arrivals = t.text("arrivals", "poisson", choices=frozenset({"poisson", "uniform"}))
    jitter = t.number("jitter", 0.0, lo=0.0, hi=0.9)
    raw = t.raw("profile")
    if not isinstance(raw, list) or len(raw) < 2:
        raise t.error("profile", "must be a list of at least two [time_s, factor] points")
    profile: list[tuple[float, float]] = []
    for i, pt in enumerate(raw):
        if not isinstance(pt, list) or len(pt) != 2:
            raise t.error(f"profile[{i}]", f"must be a [time_s, factor] pair, got {pt!r}")
        ts = _check_number(pt[0], t.error, f"profile[{i}][0]")
        fac = _check_number(pt[1], t.error, f"profile[{i}][1]", lo=0.0, hi=10.0)
        if profile and ts <= profile[-1][0]:
            raise t.error(f"profile[{i}][0]", f"times must increase, got {ts:g} after {profile[-1][0]:g}")
        profile.append((ts, fac))
    if max(f for _, f in profile) <= 0:
        raise t.error("profile", "all factors are zero: no demand")
    mix = _mix(t, "mix", vtypes)
    assert mix is not None
    depart_lane = t.text("depart_lane", "best")
    depart_speed = t.text("depart_speed", "max")
    depart_pos_lat = t.text("depart_pos_lat", None)
    pattern: GridDemand | CorridorDemand
    buses: list[BusLine] = []
    if gen == "grid":
        g = t.table("grid")
        assert g is not None
        through, left, right = _shares(g, ("through", "left", "right"))
        pattern = GridDemand(
            x_entry_peak_veh_h=g.number("x_entry_peak_veh_h", lo=0.0),
            y_entry_peak_veh_h=g.number("y_entry_peak_veh_h", lo=0.0),
            through=through,
            left=left,
            right=right,
        )
        g.done()
        if t.has("corridor"):
            raise t.error("corridor", "this network is a grid: give [demand.grid], not [demand.corridor]")
        if t.has("bus"):
            raise t.error("bus", "bus lines are defined for corridors only")
    else:
        assert isinstance(network, CorridorNetwork)
        c = t.table("corridor")
        assert c is not None
        main_left = c.number("main_left", lo=0.0, hi=1.0)
        main_right = c.number("main_right", lo=0.0, hi=1.0)
        if main_left + main_right > 1.0:
            raise c.error("main_left", "main_left + main_right must be <= 1")
        side_through, side_left, side_right = _shares(c, ("side_through", "side_left", "side_right"))
        pattern = CorridorDemand(
            forward_peak_veh_h=c.number("forward_peak_veh_h", lo=0.0),
            reverse_peak_veh_h=c.number("reverse_peak_veh_h", lo=0.0),
            main_left=main_left,
            main_right=main_right,
            side_peak_veh_h=c.number("side_peak_veh_h", lo=0.0),
            side_through=side_through,
            side_left=side_left,
            side_right=side_right,
            side_mix=_mix(c, "side_mix", vtypes, required=False),
        )
        c.done()
        if t.has("grid"):
            raise t.error("grid", "this network is a corridor: give [demand.corridor], not [demand.grid]")
        raw_buses = t.raw("bus", [])
        if not isinstance(raw_buses, list):
            raise t.error("bus", "must be an array of tables ([[demand.bus]])")
        for i, rb in enumerate(raw_buses):
            if not isinstance(rb, dict):
                raise t.error(f"bus[{i}]", "must be a table")
            b = _Table(t.path, rb, f"{t.prefix}.bus[{i}]")
            direction = b.text("direction", choices=frozenset({"forward", "reverse"}))
            line = BusLine(
                id=b.text("id"),
                direction=direction,
                headway_s=b.number("headway_s", lo=10.0),
                persons=b.number("persons", lo=0, integer=True),
                vtype=b.text("type", "bus"),
                stops_after=_stops_after(b, network.signal_ids, direction),
                dwell_s=b.number("dwell_s", 0.0, lo=0.0, hi=600.0),
                offset_s=b.number("offset_s", 0.0, lo=0.0),
            )
            if not line.stops_after:
                for key in ("dwell_s", "offset_s"):
                    if b.has(key):
                        raise b.error(key, "only for a timetabled line: give stops_after too")
            elif line.offset_s >= span_s:
                raise b.error("offset_s", f"{line.offset_s:g} s leaves no trip before demand_end_s")
            if not _NAME_RE.match(line.id):
                raise b.error("id", f"must be letters, digits, '_' or '-', got {line.id!r}")
            if line.vtype not in vtypes or vtypes[line.vtype]["vClass"] != "bus":
                raise b.error("type", f"must name a vType with vClass='bus', got {line.vtype!r}")
            cap = float(vtypes[line.vtype]["personCapacity"])
            if line.persons > cap:
                raise b.error("persons", f"{line.persons} exceeds the vType's personCapacity {cap:g}")
            b.done()
            if any(x.id == line.id for x in buses):
                raise b.error("id", f"duplicate bus line id {line.id!r}")
            buses.append(line)
    emergency = _load_emergency(t, vtypes, begin_s, end_s, taken={x.id for x in buses})
    t.done()
    if slice_s > span_s:
        raise t.error("slice_s", f"{slice_s:g} s is longer than the demand period ({span_s:g} s)")
    return DemandSpec(
        slice_s=slice_s,
        arrivals=arrivals,
        jitter=jitter,
        profile=tuple(profile),
        mix=mix,
        depart_lane=depart_lane,
        depart_speed=depart_speed,
        depart_pos_lat=depart_pos_lat,
        pattern=pattern,
        buses=tuple(buses),
        emergency=emergency,
    )


def _stops_after(b: _Table, signal_ids: tuple[str, ...], direction: str) -> tuple[str, ...]:
    """``stops_after`` of a bus line: corridor junction ids, returned in the line's travel order."""
    raw = b.raw("stops_after", [])
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise b.error("stops_after", f"must be a list of junction ids (e.g. {list(signal_ids[:2])}), got {raw!r}")
    for j in raw:
        if j not in signal_ids:
            raise b.error("stops_after", f"unknown junction {j!r} (the corridor's are {', '.join(signal_ids)})")
    if len(set(raw)) != len(raw):
        raise b.error("stops_after", "lists a junction twice")
    order = signal_ids if direction != "reverse" else signal_ids[::-1]
    return tuple(j for j in order if j in raw)


def _load_emergency(
    t: _Table, vtypes: Mapping[str, Mapping[str, str]], begin_s: float, end_s: float, taken: set[str]
) -> tuple[EmergencyVehicle, ...]:
    raw = t.raw("emergency", [])
    if not isinstance(raw, list):
        raise t.error("emergency", "must be an array of tables ([[demand.emergency]])")
    out: list[EmergencyVehicle] = []
    for i, re_ in enumerate(raw):
        if not isinstance(re_, dict):
            raise t.error(f"emergency[{i}]", "must be a table")
        e = _Table(t.path, re_, f"{t.prefix}.emergency[{i}]")
        bluelight = e.raw("bluelight", False)
        if not isinstance(bluelight, bool):
            raise e.error("bluelight", f"must be true or false, got {bluelight!r}")
        ev = EmergencyVehicle(
            id=e.text("id"),
            route=e.text("route"),
            depart_s=e.number("depart_s", lo=begin_s),
            vtype=e.text("type", "emergency"),
            bluelight=bluelight,
        )
        e.done()
        if not _NAME_RE.match(ev.id):
            raise e.error("id", f"must be letters, digits, '_' or '-', got {ev.id!r}")
        if ev.id in taken or any(x.id == ev.id for x in out):
            raise e.error("id", f"duplicate vehicle or line id {ev.id!r}")
        if ev.depart_s >= end_s:
            raise e.error("depart_s", f"must be before the end of the horizon ({end_s:g} s), got {ev.depart_s:g}")
        if ev.vtype not in vtypes or vtypes[ev.vtype]["vClass"] != "emergency":
            raise e.error("type", f"must name a vType with vClass='emergency', got {ev.vtype!r}")
        out.append(ev)
    return tuple(sorted(out, key=lambda ev: (ev.depart_s, ev.id)))


_FAULT_MODES = frozenset({"dead", "stuck", "mixed"})


def _load_faults(t: _Table, begin_s: float, end_s: float) -> FaultSpec:
    frac = t.raw("detector_fail_fraction")
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 < frac <= 1.0:
        raise t.error(
            "detector_fail_fraction",
            f"must be a fraction of the detectors in (0, 1] (e.g. 0.2 for 20 %), got {frac!r}",
        )
    at_s = t.number("at_s", lo=begin_s)
    if at_s >= end_s:
        raise t.error("at_s", f"must be inside the horizon [{begin_s:g}, {end_s:g}) s, got {at_s:g}")
    seed = t.number("seed", None, lo=0, integer=True)
    mode = t.text("mode", "mixed", choices=_FAULT_MODES)
    if mode == "mixed":
        stuck_share = t.number("stuck_share", 0.5, lo=0.0, hi=1.0)
    elif t.has("stuck_share"):
        raise t.error("stuck_share", f'only for mode = "mixed" (mode {mode!r} fixes it)')
    else:
        stuck_share = 1.0 if mode == "stuck" else 0.0
    t.done()
    return FaultSpec(detector_fail_fraction=float(frac), at_s=at_s, seed=seed, mode=mode, stuck_share=stuck_share)


def _resolve(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or s.endswith(".toml") or "/" in s or "\\" in s:
        p = Path(name_or_path)
        if not p.is_file():
            raise InputError("scenario definition file not found", where=str(p))
        return p
    p = DEFS_DIR / f"{s}.toml"
    if not p.is_file():
        raise InputError(f"unknown scenario {s!r} (known: {', '.join(scenario_names())}; or give a .toml path)")
    return p


def scenario_names() -> list[str]:
    """Names of the library scenarios (``scenarios/defs/*.toml``)."""
    return sorted(p.stem for p in DEFS_DIR.glob("*.toml"))


def load_scenario_def(name_or_path: str | Path) -> ScenarioDef:
    """Read and validate a scenario definition: a library name or a path to a TOML file.

    Raises :class:`~intersections.errors.InputError` naming the file and the
    field for malformed TOML, unknown fields and bad values.
    """
    path = _resolve(name_or_path)
    data, doc = _read_toml(path)
    sha256 = hashlib.sha256(data).hexdigest()
    base_path: Path | None = None
    if "extends" in doc:
        base_path, base_data, base_doc = _read_base(path, doc["extends"])
        doc = _merge({k: v for k, v in base_doc.items() if k not in ("name", "description")}, doc)
        sha256 = hashlib.sha256(data + b"\0extends\0" + base_data).hexdigest()
    top = _Table(path, doc)
    top.used.add("extends")
    name = top.text("name")
    if not _NAME_RE.match(name):
        raise top.error("name", f"must be letters, digits, '_' or '-', got {name!r}")
    description = top.text("description")

    h = top.table("horizon")
    assert h is not None
    begin_s = h.number("begin_s", lo=0.0)
    end_s = h.number("end_s", lo=0.0)
    if end_s <= begin_s:
        raise h.error("end_s", f"must be after begin_s ({begin_s:g}), got {end_s:g}")
    demand_end_s = h.number("demand_end_s", end_s, lo=0.0)
    if not begin_s < demand_end_s <= end_s:
        raise h.error("demand_end_s", f"must be in ({begin_s:g}, {end_s:g}], got {demand_end_s:g}")
    h.done()

    vt = top.table("vtypes")
    assert vt is not None
    vtypes = _vtypes(vt)

    nt = top.table("network")
    assert nt is not None
    network, _ = _load_network(nt)

    tt = top.table("tls")
    assert tt is not None
    tls = TlsSpec(
        type=tt.text("type", "static", choices=frozenset({"static", "actuated", "delay_based"})),
        cycle_s=tt.number("cycle_s", None, lo=20, hi=300, integer=True),
        allred_s=tt.number("allred_s", None, lo=0, hi=10, integer=True),
        yellow_min_decel_m_s2=tt.number("yellow_min_decel_m_s2", None, lo=1.0, hi=9.0),
        layout=tt.text("layout", None, choices=frozenset({"opposites", "incoming", "alternateOneWay"})),
    )
    tt.done()

    dt = top.table("demand")
    assert dt is not None
    demand = _load_demand(dt, network, vtypes, begin_s, demand_end_s, end_s)

    ft = top.table("faults", required=False)
    faults = _load_faults(ft, begin_s, end_s) if ft is not None else None

    st = top.table("sumo")
    assert st is not None
    sumo = SumoSpec(
        step_length_s=st.number("step_length_s", 1.0, lo=0.01, hi=5.0),
        lateral_resolution_m=st.number("lateral_resolution_m", None, lo=0.1, hi=5.0),
        time_to_teleport_s=st.number("time_to_teleport_s", 300.0),
        collision_action=st.text("collision_action", None, choices=frozenset({"none", "warn", "teleport", "remove"})),
    )
    st.done()
    if sumo.lateral_resolution_m is not None:
        for vid, attrs in vtypes.items():
            if attrs["vClass"] in ("motorcycle", "moped") and "width" in attrs:
                w = float(attrs["width"])
                if sumo.lateral_resolution_m > w + 1e-9:
                    raise st.error(
                        "lateral_resolution_m",
                        f"{sumo.lateral_resolution_m:g} m is wider than vType {vid!r} ({w:g} m): "
                        "the sublane model needs a resolution no wider than a motorcycle",
                    )
    top.done()

    return ScenarioDef(
        name=name,
        description=" ".join(description.split()),
        source=path,
        sha256=sha256,
        begin_s=begin_s,
        end_s=end_s,
        demand_end_s=demand_end_s,
        network=network,
        tls=tls,
        demand=demand,
        sumo=sumo,
        vtypes=tuple((vid, tuple(attrs.items())) for vid, attrs in vtypes.items()),
        faults=faults,
        extends=base_path,
    )


def _read_toml(path: Path) -> tuple[bytes, dict[str, Any]]:
    data = path.read_bytes()
    try:
        return data, tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid TOML: {e}", where=str(path)) from None


def _read_base(path: Path, ref: Any) -> tuple[Path, bytes, dict[str, Any]]:
    """The definition that ``extends`` names: a library name, or a .toml path relative to ``path``."""
    where = f"{path}:extends"
    if not isinstance(ref, str) or not ref:
        raise InputError(f"must be a library scenario name or a .toml path, got {ref!r}", where=where)
    is_path = ref.endswith(".toml") or "/" in ref or "\\" in ref
    try:
        base = _resolve(path.parent / ref if is_path else ref)
    except InputError as e:
        raise InputError(e.message, where=where) from None
    if base.resolve() == path.resolve():
        raise InputError("a definition cannot extend itself", where=where)
    data, doc = _read_toml(base)
    if "extends" in doc:
        raise InputError(f"{base.name} extends another definition itself; extend only one level", where=where)
    return base, data, doc


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: tables merge key by key, anything else (arrays too) is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# --------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    """Shortest exact-enough decimal for SUMO XML (no exponent for ordinary values)."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _run(cmd: list[str], what: str, cwd: Path) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0:
        raise SimulationError(f"{what} failed: {(res.stderr or res.stdout).strip()[-2000:]}")


_STAMP_RE = re.compile(rb"<!-- generated on \S+ by ")


def _strip_timestamp(path: Path) -> None:
    """SUMO stamps outputs with the wall-clock time; drop it so builds are byte-identical."""
    data = path.read_bytes()
    path.write_bytes(_STAMP_RE.sub(b"<!-- generated by ", data, count=1))


def _sumo_version() -> str:
    res = subprocess.run([sumo_binary("netconvert"), "--version"], capture_output=True, text=True)
    return (res.stdout.splitlines() or ["unknown"])[0].strip()


def _build_grid_net(d: ScenarioDef, out: Path) -> None:
    g = d.network
    assert isinstance(g, GridNetwork)
    _run(
        [
            sumo_binary("netgenerate"),
            "--grid",
            f"--grid.x-number={g.x_number}",
            f"--grid.y-number={g.y_number}",
            f"--grid.x-length={_fmt(g.x_length_m)}",
            f"--grid.y-length={_fmt(g.y_length_m)}",
            f"--grid.attach-length={_fmt(g.attach_length_m)}",
            f"--default.lanenumber={g.lanes}",
            f"--default.lanewidth={_fmt(g.lane_width_m)}",
            f"--default.speed={_fmt(g.speed_m_s)}",
            f"--turn-lanes={g.turn_lanes}",
            f"--turn-lanes.length={_fmt(g.turn_lane_length_m)}",
            "--tls.guess=true",
            *d.tls.options(),
            "--no-turnarounds=true",
            "-o",
            f"{d.name}.net.xml",
        ],
        "netgenerate",
        out,
    )


def _corridor_layout(c: CorridorNetwork) -> tuple[dict[str, tuple[float, float]], list[tuple[str, str, str]]]:
    """Node coordinates and ``(from, to, kind)`` of every edge (kind: main | side)."""
    nodes: dict[str, tuple[float, float]] = {"W": (0.0, 0.0)}
    x = c.end_length_m
    main = ["W"]
    for i, sid in enumerate(c.signal_ids):
        if i:
            x += c.spacing_m[i - 1]
        nodes[sid] = (x, 0.0)
        nodes[f"N{i + 1}"] = (x, c.side_length_m)
        nodes[f"S{i + 1}"] = (x, -c.side_length_m)
        main.append(sid)
    nodes["E"] = (x + c.end_length_m, 0.0)
    main.append("E")
    edges: list[tuple[str, str, str]] = []
    for a, b in itertools.pairwise(main):
        edges += [(a, b, "main"), (b, a, "main")]
    for i, sid in enumerate(c.signal_ids, start=1):
        for s in (f"N{i}", f"S{i}"):
            edges += [(s, sid, "side"), (sid, s, "side")]
    return nodes, edges


def _build_corridor_net(d: ScenarioDef, out: Path) -> None:
    c = d.network
    assert isinstance(c, CorridorNetwork)
    nodes, edges = _corridor_layout(c)
    signals = set(c.signal_ids)
    with (out / f"{d.name}.nod.xml").open("w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<nodes>\n')
        for nid, (x, y) in nodes.items():
            kind = f'type="traffic_light" tlType="{d.tls.type}"' if nid in signals else 'type="priority"'
            f.write(f'    <node id="{nid}" x="{_fmt(x)}" y="{_fmt(y)}" {kind}/>\n')
        f.write("</nodes>\n")
    with (out / f"{d.name}.edg.xml").open("w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<edges>\n')
        for a, b, kind in edges:
            if kind == "main":
                lanes, speed, width, prio = c.main_lanes, c.main_speed_m_s, c.main_lane_width_m, 3
            else:
                lanes, speed, width, prio = c.side_lanes, c.side_speed_m_s, c.side_lane_width_m, 1
            f.write(
                f'    <edge id="{a}_{b}" from="{a}" to="{b}" priority="{prio}" numLanes="{lanes}" '
                f'speed="{_fmt(speed)}" width="{_fmt(width)}"/>\n'
            )
        f.write("</edges>\n")
    _run(
        [
            sumo_binary("netconvert"),
            f"--node-files={d.name}.nod.xml",
            f"--edge-files={d.name}.edg.xml",
            *d.tls.options(),
            "--no-turnarounds=true",
            "--offset.disable-normalization=true",
            "-o",
            f"{d.name}.net.xml",
        ],
        "netconvert",
        out,
    )


def _sign(x: float) -> int:
    return 0 if abs(x) < 1.0 else (1 if x > 0 else -1)


@dataclass(frozen=True)
class _Od:
    """One route with its peak rate (veh/h, profile factor 1) and class mix."""

    id: str
    edges: tuple[str, ...]
    peak_veh_h: float
    mix: Mapping[str, float]


def _grid_ods(d: ScenarioDef, net_path: Path, rng: random.Random) -> list[_Od]:
    import sumolib

    g = d.demand.pattern
    assert isinstance(g, GridDemand)
    net = sumolib.net.readNet(str(net_path))
    inner = [n for n in net.getNodes() if n.getType() == "traffic_light"]
    if len(inner) != d.n_signals:
        raise SimulationError(f"{d.name}: netgenerate made {len(inner)} signals, expected {d.n_signals}")
    xs = sorted({round(n.getCoord()[0], 1) for n in inner})
    ys = sorted({round(n.getCoord()[1], 1) for n in inner})
    at = {(xs.index(round(n.getCoord()[0], 1)), ys.index(round(n.getCoord()[1], 1))): n.getID() for n in inner}
    # Edges between consecutive signals / fringe ends; netgenerate splits edges where turn bays begin.
    ends = {n.getID() for n in net.getNodes() if n.getType() in ("traffic_light", "dead_end")}
    chain: dict[tuple[str, str], tuple[str, ...]] = {}
    for aid in sorted(ends):
        for e in net.getNode(aid).getOutgoing():
            edges, prev, node = [e.getID()], aid, e.getToNode()
            while node.getID() not in ends:
                onward = [o for o in node.getOutgoing() if o.getToNode().getID() != prev]
                if len(onward) != 1:
                    raise SimulationError(f"{d.name}: unexpected junction {node.getID()!r} between signals")
                prev, node = node.getID(), onward[0].getToNode()
                edges.append(onward[0].getID())
            chain[(aid, node.getID())] = tuple(edges)
    # fringe node attached to inner cell (i, j) on side (dx, dy)
    fringe: dict[tuple[tuple[int, int], tuple[int, int]], str] = {}
    for a, b in sorted(chain):
        n, m = net.getNode(a), net.getNode(b)
        if n.getType() != "dead_end" or m.getType() != "traffic_light":
            continue
        (fx, fy), (mx, my) = n.getCoord(), m.getCoord()
        cell = (xs.index(round(mx, 1)), ys.index(round(my, 1)))
        side = (_sign(fx - mx), _sign(fy - my))
        fringe[(cell, side)] = a
    nx_, ny_ = len(xs), len(ys)

    def inside(c: tuple[int, int]) -> bool:
        return 0 <= c[0] < nx_ and 0 <= c[1] < ny_

    def walk(start: tuple[int, int], h: tuple[int, int], turn_at: int | None, t: tuple[int, int]) -> list[str]:
        """Nodes from ``start`` heading ``h``; after ``turn_at`` steps turn to ``t``; end on the fringe."""
        cells = [start]
        cur, head, steps = start, h, 0
        while True:
            if turn_at is not None and steps == turn_at:
                head, turn_at = t, None
            nxt = (cur[0] + head[0], cur[1] + head[1])
            if not inside(nxt):
                break
            cells.append(nxt)
            cur, steps = nxt, steps + 1
        return [at[c] for c in cells] + [fringe[(cur, head)]]

    ods: list[_Od] = []
    for (cell, side), entry in sorted(fringe.items(), key=lambda kv: kv[1]):
        h = (-side[0], -side[1])  # heading into the grid
        peak = g.x_entry_peak_veh_h if side[0] else g.y_entry_peak_veh_h
        if peak <= 0:
            continue
        n_cross = nx_ if side[0] else ny_  # junctions passed going straight
        left, right = (-h[1], h[0]), (h[1], -h[0])
        options: list[tuple[list[str], float]] = [(walk(cell, h, None, h), g.through)]
        for k in range(n_cross):
            options.append((walk(cell, h, k, left), g.left / n_cross))
            options.append((walk(cell, h, k, right), g.right / n_cross))
        for nodes, share in options:
            if share <= 0:
                continue
            path = [entry, *nodes]
            edges = tuple(x for a, b in itertools.pairwise(path) for x in chain[(a, b)])
            factor = 1.0 + d.demand.jitter * (2.0 * rng.random() - 1.0)
            ods.append(_Od(f"{path[0]}-{path[-1]}", edges, peak * share * factor, d.demand.mix))
    return ods


def _corridor_ods(d: ScenarioDef, rng: random.Random) -> list[_Od]:
    c = d.network
    p = d.demand.pattern
    assert isinstance(c, CorridorNetwork) and isinstance(p, CorridorDemand)
    sig = list(c.signal_ids)
    n = len(sig)
    side_mix = p.side_mix or d.demand.mix

    def edges(nodes: list[str]) -> tuple[str, ...]:
        return tuple(f"{a}_{b}" for a, b in itertools.pairwise(nodes))

    raw: list[tuple[list[str], float, Mapping[str, float]]] = []
    stay = 1.0 - p.main_left - p.main_right
    for direction, peak in (("forward", p.forward_peak_veh_h), ("reverse", p.reverse_peak_veh_h)):
        order = sig if direction == "forward" else sig[::-1]
        start, end = ("W", "E") if direction == "forward" else ("E", "W")
        # right-hand traffic: heading east, left is north
        left_side, right_side = ("N", "S") if direction == "forward" else ("S", "N")
        for k, j in enumerate(order):
            reach = peak * stay**k
            i = j[1:]
            raw.append(([start, *order[: k + 1], f"{left_side}{i}"], reach * p.main_left, d.demand.mix))
            raw.append(([start, *order[: k + 1], f"{right_side}{i}"], reach * p.main_right, d.demand.mix))
        raw.append(([start, *order, end], peak * stay**n, d.demand.mix))
    for k, j in enumerate(sig):
        i = j[1:]
        east, west = [*sig[k:], "E"], [*sig[: k + 1][::-1], "W"]
        # from the north heading south: left is east; from the south heading north: left is west
        for src, dst, lft, rgt in ((f"N{i}", f"S{i}", east, west), (f"S{i}", f"N{i}", west, east)):
            raw.append(([src, j, dst], p.side_peak_veh_h * p.side_through, side_mix))
            raw.append(([src, *lft], p.side_peak_veh_h * p.side_left, side_mix))
            raw.append(([src, *rgt], p.side_peak_veh_h * p.side_right, side_mix))
    ods = []
    for nodes, rate, mix in raw:
        factor = 1.0 + d.demand.jitter * (2.0 * rng.random() - 1.0)
        if rate > 0:
            ods.append(_Od(f"{nodes[0]}-{nodes[-1]}", edges(nodes), rate * factor, mix))
    return ods


def _xml_attrs(attrs: Mapping[str, str]) -> str:
    return " ".join(f'{k}="{v}"' for k, v in attrs.items())


def _depart_attrs(d: ScenarioDef) -> dict[str, str]:
    dem = d.demand
    depart = {"departLane": dem.depart_lane, "departSpeed": dem.depart_speed}
    if dem.depart_pos_lat is not None:
        depart["departPosLat"] = dem.depart_pos_lat
    return depart


def _bus_route(d: ScenarioDef, direction: str) -> tuple[str, tuple[str, ...]]:
    """Route id and edges of a bus line over the whole corridor."""
    assert isinstance(d.network, CorridorNetwork)
    sig = list(d.network.signal_ids)
    nodes = ["W", *sig, "E"] if direction == "forward" else ["E", *sig[::-1], "W"]
    return f"{nodes[0]}-{nodes[-1]}", tuple(f"{a}_{b}" for a, b in itertools.pairwise(nodes))


@dataclass(frozen=True)
class _Timed:
    """A single ``<vehicle>`` (timetabled bus trip, emergency vehicle), written in departure order."""

    depart_s: float
    xml: str


def _write_routes(d: ScenarioDef, ods: list[_Od], path: Path, seed: int, timed: Sequence[_Timed] = ()) -> None:
    dem = d.demand
    depart = _depart_attrs(d)
    pending = sorted(timed, key=lambda v: v.depart_s)
    ids = [od.id for od in ods]
    if len(set(ids)) != len(ids):
        raise SimulationError(f"{d.name}: duplicate route ids")
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write(f"<!-- greenwave scenario {d.name} (seed {seed}), generated by scenarios/library.py -->\n")
        f.write(
            '<routes xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/routes_file.xsd">\n'
        )
        for vid, attrs in d.vtypes:
            f.write(f'    <vType id="{vid}" {_xml_attrs(dict(attrs))}/>\n')
        for od in ods:
            f.write(f'    <route id="{od.id}" edges="{" ".join(od.edges)}"/>\n')
        if isinstance(d.network, CorridorNetwork):
            sig = list(d.network.signal_ids)
            for line in dem.buses:
                nodes = ["W", *sig, "E"] if line.direction == "forward" else ["E", *sig[::-1], "W"]
                rid = f"{nodes[0]}-{nodes[-1]}"
                if rid not in ids:
                    edges = " ".join(f"{a}_{b}" for a, b in itertools.pairwise(nodes))
                    f.write(f'    <route id="{rid}" edges="{edges}"/>\n')
                    ids.append(rid)
                if line.stops_after:
                    continue  # timetabled: single trips among the timed vehicles
                f.write(
                    f'    <flow id="{line.id}" type="{line.vtype}" route="{rid}" begin="{_fmt(d.begin_s)}" '
                    f'end="{_fmt(d.demand_end_s)}" period="{_fmt(line.headway_s)}" '
                    f'personNumber="{line.persons}" line="{line.id}" {_xml_attrs(depart)}/>\n'
                )
        for k, (b, e, factor) in enumerate(dem.slices(d.begin_s, d.demand_end_s)):
            while pending and pending[0].depart_s < b:  # SUMO needs departures in order
                f.write(pending.pop(0).xml)
            for od in ods:
                for vid, share in od.mix.items():
                    veh_h = od.peak_veh_h * factor * share
                    if veh_h <= 0:
                        continue
                    if dem.arrivals == "poisson":
                        rate = f"{veh_h / 3600.0:.6f}"
                        if float(rate) <= 0:
                            continue
                        spec = f'period="exp({rate})"'
                    else:
                        spec = f'vehsPerHour="{veh_h:.2f}"'
                    f.write(
                        f'    <flow id="{od.id}.{vid}.{k}" type="{vid}" route="{od.id}" begin="{_fmt(b)}" '
                        f'end="{_fmt(e)}" {spec} {_xml_attrs(depart)}/>\n'
                    )
        for v in pending:
            f.write(v.xml)
        f.write("</routes>\n")


# A far-side bus stop starts this far past the junction and is long enough for two 12 m buses.
_STOP_START_M = 15.0
_STOP_LENGTH_M = 30.0
# SUMO's defaults for vClass bus where the vType does not say (accel, decel in m/s2).
_BUS_ACCEL_M_S2 = 1.2
_BUS_DECEL_M_S2 = 4.0


@dataclass(frozen=True)
class _BusStop:
    id: str
    lane: str
    start_m: float
    end_m: float
    lines: tuple[str, ...]


def _mean_speed_factor(vtype: Mapping[str, str]) -> float:
    sf = vtype.get("speedFactor", "1")
    m = re.match(r"^normc?\(\s*([0-9.]+)", sf)
    return float(m.group(1)) if m else float(sf)


def _timetables(d: ScenarioDef, net_path: Path) -> tuple[list[_BusStop], list[_Timed]]:
    """Bus stops and timetabled trips of the lines with ``stops_after``.

    Scheduled arrival at the ``i``-th stop (0-based) of a trip departing at
    ``t0``::

        arrival_i = t0 + sum_e(L_e / v_e) + (i + 1) * v / (2 b) + i * (v / (2 a) + dwell)

    ``L_e`` the route length (lane 0 and junction crossings) from the bus's
    insertion point to where it halts (its front at the stop's end), ``v_e``
    the free speed on each edge (lane speed x mean speedFactor, capped by
    maxSpeed), ``v/(2b)`` and ``v/(2a)`` the time lost braking into and
    accelerating out of a stop at constant rates, ``dwell`` the scheduled
    dwell. Rounded to whole seconds; ``until = arrival + dwell``.
    """
    import sumolib

    net = sumolib.net.readNet(str(net_path))
    stops: dict[str, _BusStop] = {}
    trips: list[_Timed] = []
    depart = _depart_attrs(d)
    for li, line in enumerate(d.demand.buses):
        if not line.stops_after:
            continue
        rid, edges = _bus_route(d, line.direction)
        vt = d.vtype(line.vtype)
        accel = float(vt.get("accel", _BUS_ACCEL_M_S2))
        decel = float(vt.get("decel", _BUS_DECEL_M_S2))
        vmax = float(vt.get("maxSpeed", "1e9"))
        factor = _mean_speed_factor(vt)
        # free-flow time from the insertion point (front at the bus length) to each edge's start
        lanes = [net.getEdge(e).getLane(0) for e in edges]
        t = -float(vt.get("length", "12")) / min(vmax, lanes[0].getSpeed() * factor)
        t_edge: dict[str, float] = {}
        for k, (eid, lane) in enumerate(zip(edges, lanes, strict=True)):
            t_edge[eid] = t
            gap = 0.0
            if k + 1 < len(lanes):
                (ax, ay), (bx, by) = lane.getShape()[-1], lanes[k + 1].getShape()[0]
                gap = math.hypot(bx - ax, by - ay)
            t += (lane.getLength() + gap) / min(vmax, lane.getSpeed() * factor)
        sched: list[tuple[str, float]] = []  # (stop id, free-flow time from departure)
        for i, j in enumerate(line.stops_after):
            k = [e.split("_")[0] for e in edges].index(j)
            eid, lane = edges[k], lanes[k]
            if lane.getLength() < _STOP_START_M + _STOP_LENGTH_M + 5.0:
                raise InputError(
                    f"the road after {j} ({lane.getLength():.0f} m) is too short for a bus stop",
                    where=f"{d.source}:demand.bus[{li}].stops_after",
                )
            sid = f"stop_{eid}"
            old = stops.get(sid)
            served = tuple(sorted({*(old.lines if old else ()), line.id}))
            stops[sid] = _BusStop(sid, lane.getID(), _STOP_START_M, _STOP_START_M + _STOP_LENGTH_M, served)
            v = min(vmax, lane.getSpeed() * factor)
            run = t_edge[eid] + (_STOP_START_M + _STOP_LENGTH_M) / v
            sched.append((sid, run + (i + 1) * v / (2 * decel) + i * (v / (2 * accel) + line.dwell_s)))
        n = 0
        t0 = d.begin_s + line.offset_s
        while t0 < d.demand_end_s - 1e-9:
            body = "".join(
                f'        <stop busStop="{sid}" arrival="{_fmt(a)}" duration="{_fmt(line.dwell_s)}" '
                f'until="{_fmt(a + line.dwell_s)}"/>\n'
                for sid, a in ((sid, math.floor(t0 + run + 0.5)) for sid, run in sched)
            )
            trips.append(
                _Timed(
                    t0,
                    f'    <vehicle id="{line.id}.{n}" type="{line.vtype}" route="{rid}" depart="{_fmt(t0)}" '
                    f'line="{line.id}" personNumber="{line.persons}" {_xml_attrs(depart)}>\n'
                    f"{body}    </vehicle>\n",
                )
            )
            n += 1
            t0 = d.begin_s + line.offset_s + n * line.headway_s
    return list(stops.values()), trips


def _emergency_vehicles(d: ScenarioDef, route_ids: set[str]) -> list[_Timed]:
    out = []
    depart = _depart_attrs(d)
    for i, ev in enumerate(d.demand.emergency):
        if ev.route not in route_ids:
            raise InputError(
                f"unknown route {ev.route!r}: give one of the demand's routes, e.g. "
                f"{', '.join(sorted(route_ids)[:4])} (see the built .rou.xml)",
                where=f"{d.source}:demand.emergency[{i}].route",
            )
        head = (
            f'    <vehicle id="{ev.id}" type="{ev.vtype}" route="{ev.route}" depart="{_fmt(ev.depart_s)}" '
            f"{_xml_attrs(depart)}"
        )
        if ev.bluelight:
            xml = f'{head}>\n        <param key="has.bluelight.device" value="true"/>\n    </vehicle>\n'
        else:
            xml = f"{head}/>\n"
        out.append(_Timed(ev.depart_s, xml))
    return out


def _write_stops(d: ScenarioDef, stops: list[_BusStop], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write(f"<!-- greenwave scenario {d.name}: bus stops, generated by scenarios/library.py -->\n")
        f.write(
            '<additional xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/additional_file.xsd">\n'
        )
        for st in stops:
            f.write(
                f'    <busStop id="{st.id}" lane="{st.lane}" startPos="{_fmt(st.start_m)}" '
                f'endPos="{_fmt(st.end_m)}" lines="{" ".join(st.lines)}"/>\n'
            )
        f.write("</additional>\n")


def _sumo_options(d: ScenarioDef, seed: int) -> list[tuple[str, str]]:
    return [
        ("begin", _fmt(d.begin_s)),
        ("end", _fmt(d.end_s)),
        *d.sumo.options(),
        ("seed", str(seed)),
        ("no-step-log", "true"),
    ]


_CFG_SECTIONS = {
    "begin": "time",
    "end": "time",
    "step-length": "time",
    "lateral-resolution": "processing",
    "time-to-teleport": "processing",
    "collision.action": "processing",
    "seed": "random_number",
    "no-step-log": "report",
}


def _write_sumocfg(d: ScenarioDef, path: Path, seed: int) -> None:
    sections: dict[str, list[tuple[str, str]]] = {
        "input": [("net-file", f"{d.name}.net.xml"), ("route-files", f"{d.name}.rou.xml")]
    }
    if d.has_bus_stops:
        sections["input"].append(("additional-files", f"{d.name}.add.xml"))
    for key, value in _sumo_options(d, seed):
        sections.setdefault(_CFG_SECTIONS[key], []).append((key, value))
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write(f"<!-- greenwave scenario {d.name} (seed {seed}): {d.description} -->\n")
        f.write(
            '<configuration xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/sumoConfiguration.xsd">\n'
        )
        for section in ("input", "time", "processing", "random_number", "report"):
            if section not in sections:
                continue
            f.write(f"    <{section}>\n")
            for key, value in sections[section]:
                f.write(f'        <{key} value="{value}"/>\n')
            f.write(f"    </{section}>\n")
        f.write("</configuration>\n")


def _result(d: ScenarioDef, out: Path, seed: int) -> BuiltScenario:
    out = out.resolve()
    net, routes, cfg = out / f"{d.name}.net.xml", out / f"{d.name}.rou.xml", out / f"{d.name}.sumocfg"
    args: list[str] = ["--net-file", str(net), "--route-files", str(routes)]
    additional = (out / f"{d.name}.add.xml",) if d.has_bus_stops else ()
    if additional:
        args += ["--additional-files", ",".join(str(a) for a in additional)]
    for key, value in _sumo_options(d, seed):
        args += [f"--{key}", value]
    return BuiltScenario(
        name=d.name,
        directory=out,
        net=net,
        routes=(routes,),
        begin_s=d.begin_s,
        end_s=d.end_s,
        sumocfg=cfg,
        sumo_args=tuple(args),
        corridor=d.corridor,
        description=d.description,
        seed=seed,
        additional=additional,
        faults=d.faults.as_dict(seed) if d.faults is not None else {},
    )


def _build_key(d: ScenarioDef, seed: int) -> dict[str, Any]:
    return {
        "name": d.name,
        "definition_sha256": d.sha256,
        "seed": seed,
        "builder": _BUILD_VERSION,
        "sumo": _sumo_version(),
    }


def build_scenario(name_or_path: str | Path, out_dir: str | Path, seed: int = 42) -> BuiltScenario:
    """Build a scenario (library name or path to a TOML definition) into ``out_dir``.

    Deterministic: the same definition, ``seed`` and SUMO version give
    byte-identical files. If ``out_dir`` already holds that build (its
    ``<name>.build.json`` matches and the files exist) it is reused as is.
    The seed drives the route-rate jitter and SUMO's ``--seed``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}", where="seed")
    d = load_scenario_def(name_or_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / f"{d.name}.build.json"
    key = _build_key(d, seed)
    exts = ("net.xml", "rou.xml", "sumocfg", *(("add.xml",) if d.has_bus_stops else ()))
    products = [out / f"{d.name}.{ext}" for ext in exts]
    if manifest.is_file() and all(p.is_file() for p in products):
        try:
            if json.loads(manifest.read_text(encoding="utf-8")) == key:
                return _result(d, out, seed)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    manifest.unlink(missing_ok=True)

    if isinstance(d.network, GridNetwork):
        _build_grid_net(d, out)
    else:
        _build_corridor_net(d, out)
    net_path = out / f"{d.name}.net.xml"
    _strip_timestamp(net_path)

    rng = random.Random(seed)
    ods = _grid_ods(d, net_path, rng) if isinstance(d.network, GridNetwork) else _corridor_ods(d, rng)
    timed: list[_Timed] = []
    if d.has_bus_stops:
        stops, timed = _timetables(d, net_path)
        _write_stops(d, stops, out / f"{d.name}.add.xml")
    if d.demand.emergency:
        route_ids = {od.id for od in ods} | {_bus_route(d, line.direction)[0] for line in d.demand.buses}
        timed += _emergency_vehicles(d, route_ids)
    _write_routes(d, ods, out / f"{d.name}.rou.xml", seed, timed)
    _write_sumocfg(d, out / f"{d.name}.sumocfg", seed)
    if d.source.resolve() != (out / f"{d.name}.toml").resolve():
        shutil.copyfile(d.source, out / f"{d.name}.toml")
    manifest.write_text(json.dumps(key, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return _result(d, out, seed)


def detector_faults(n_detectors: int, faults: Mapping[str, Any]) -> dict[int, str]:
    """The detectors that fail under ``faults`` (a :attr:`BuiltScenario.faults`): index -> ``"dead"``/``"stuck"``.

    One rule, in :func:`simulation.faults.select_failed_detectors`, which the
    runner applies to the backend's observations.
    """
    from simulation.faults import select_failed_detectors

    return select_failed_detectors(n_detectors, faults)


def iter_flows(routes: Path) -> Iterator[dict[str, str]]:
    """Attributes of each ``<flow>`` in a routes file (for tests and reports)."""
    import xml.etree.ElementTree as ET

    for el in ET.parse(routes).getroot().iter("flow"):
        yield dict(el.attrib)


def write_vtypes(f: TextIO) -> None:
    """vTypes of the demo (kept for callers of the first library version); see ``defs/demo.toml``."""
    f.write(
        '    <vType id="motorcycle" vClass="motorcycle" length="1.9" width="0.7" minGap="1.0" '
        'maxSpeed="16.7" accel="2.5" decel="4.5" sigma="0.5"/>\n'
        '    <vType id="car" vClass="passenger" length="4.5" minGap="2.5" maxSpeed="16.7"/>\n'
        '    <vType id="bus" vClass="bus" length="11" minGap="2.5" maxSpeed="13.9" personCapacity="60"/>\n'
        '    <vType id="truck" vClass="truck" length="8" minGap="2.5" maxSpeed="13.9"/>\n'
    )
