"""Reading and validating a scenario definition (TOML): one-line errors naming file, table and field.

Each table is a pydantic model (:mod:`intersections.config`, the one way greenwave reads a
configuration file): types, bounds, choices and unknown keys are the model's; what
depends on other tables (the horizon, the vTypes a mix names, the corridor a bus line
runs) is checked after it, in the order the tables are read, with the same error shape.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel, create_model, field_validator

from intersections.config import ConfigModel, validate, where_of
from intersections.errors import InputError
from scenarios.library.schema import (
    BusLine,
    CityBusLine,
    CityDemand,
    CityNetwork,
    CorridorDemand,
    CorridorNetwork,
    DemandSpec,
    EmergencyVehicle,
    FaultSpec,
    GridDemand,
    GridNetwork,
    ScenarioDef,
    SumoSpec,
    TlsSpec,
    _fmt,
)

DEFS_DIR = Path(__file__).resolve().parent.parent / "defs"
#: City-size definitions: found by name like the others, but kept out of :func:`scenario_names`
#: (the library's tests build and run every scenario there in seconds; a city takes minutes).
CITY_DIR = DEFS_DIR / "city"

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


def _integral(v: Any) -> Any:
    """A whole number written as a float (``4.0``) counts as an integer, as TOML users expect."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


Whole = Annotated[int, BeforeValidator(_integral)]
Text = Annotated[str, Field(min_length=1)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
FlowVehH = Annotated[float, Field(ge=0.0)]


# ---- the tables -------------------------------------------------------------------------------


class _Document(ConfigModel):
    """The top level: which tables there are (each is read by its own model below)."""

    extends: Any = None
    name: Text
    description: Text
    horizon: dict[str, Any]
    vtypes: dict[str, Any]
    network: dict[str, Any]
    tls: dict[str, Any]
    demand: dict[str, Any]
    faults: dict[str, Any] | None = None
    sumo: dict[str, Any]


class _Horizon(ConfigModel):
    begin_s: float = Field(ge=0.0)
    end_s: float = Field(ge=0.0)
    demand_end_s: float | None = Field(None, ge=0.0)


class _Grid(ConfigModel):
    generator: Literal["grid"]
    x_number: Whole = Field(ge=1)
    y_number: Whole = Field(ge=1)
    x_length_m: float = Field(ge=20.0)
    y_length_m: float = Field(ge=20.0)
    attach_length_m: float = Field(ge=20.0)
    lanes: Whole = Field(ge=1, le=6)
    speed_m_s: float = Field(gt=0.0, le=50.0)
    lane_width_m: float = Field(3.2, ge=2.0, le=6.0)
    turn_lanes: Whole = Field(0, ge=0, le=3)
    turn_lane_length_m: float = Field(50.0, ge=5.0)


class _Corridor(ConfigModel):
    generator: Literal["corridor"]
    spacing_m: list[Annotated[float, Field(ge=50.0)]] = Field(min_length=1)
    end_length_m: float = Field(ge=50.0)
    side_length_m: float = Field(ge=50.0)
    main_lanes: Whole = Field(ge=1, le=6)
    main_speed_m_s: float = Field(gt=0.0, le=50.0)
    main_lane_width_m: float = Field(3.2, ge=2.0, le=6.0)
    side_lanes: Whole = Field(ge=1, le=6)
    side_speed_m_s: float = Field(gt=0.0, le=50.0)
    side_lane_width_m: float = Field(3.2, ge=2.0, le=6.0)


class _City(ConfigModel):
    generator: Literal["city"]
    rings: Whole = Field(ge=2, le=60)
    ring_spacing_m: float = Field(ge=60.0)
    block_m: float = Field(ge=60.0)
    arms: Whole = Field(ge=3, le=24)
    arterial_ring: Whole = Field(ge=1)
    fringe_length_m: float = Field(ge=50.0)
    jitter_m: float = Field(0.0, ge=0.0)
    inward_share: Share = 1.0
    drop_share: Share = 0.0
    layout_seed: Whole = Field(0, ge=0)
    arterial_lanes: Whole = Field(ge=1, le=6)
    arterial_speed_m_s: float = Field(gt=0.0, le=50.0)
    local_lanes: Whole = Field(ge=1, le=6)
    local_speed_m_s: float = Field(gt=0.0, le=50.0)
    lane_width_m: float = Field(3.2, ge=2.0, le=6.0)


class _Generator(BaseModel):
    """Only ``generator`` (the rest of the table is read by the generator's own model)."""

    model_config = ConfigDict(strict=True, extra="ignore")
    generator: Literal["grid", "corridor", "city"]


class _Shares(RootModel[dict[str, Share]]):
    """A table of vType id = share (a demand mix)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class _Tls(ConfigModel):
    type: Literal["static", "actuated", "delay_based"] = "static"
    cycle_s: Whole | None = Field(None, ge=20, le=300)
    allred_s: Whole | None = Field(None, ge=0, le=10)
    yellow_min_decel_m_s2: float | None = Field(None, ge=1.0, le=9.0)
    layout: Literal["opposites", "incoming", "alternateOneWay"] | None = None


class _Demand(ConfigModel):
    slice_s: float = Field(ge=1.0)
    arrivals: Literal["poisson", "uniform"] = "poisson"
    jitter: float = Field(0.0, ge=0.0, le=0.9)
    profile: list[Any] = Field(min_length=2)
    mix: dict[str, Any]
    depart_lane: Text = "best"
    depart_speed: Text = "max"
    depart_pos_lat: Text | None = None
    grid: dict[str, Any] | None = None
    corridor: dict[str, Any] | None = None
    city: dict[str, Any] | None = None
    bus: list[dict[str, Any]] = Field(default_factory=list)
    emergency: list[dict[str, Any]] = Field(default_factory=list)


class _DemandGrid(ConfigModel):
    x_entry_peak_veh_h: FlowVehH
    y_entry_peak_veh_h: FlowVehH
    through: Share
    left: Share
    right: Share


class _DemandCorridor(ConfigModel):
    forward_peak_veh_h: FlowVehH
    reverse_peak_veh_h: FlowVehH
    main_left: Share
    main_right: Share
    side_peak_veh_h: FlowVehH
    side_through: Share
    side_left: Share
    side_right: Share
    side_mix: dict[str, Any] | None = None


class _CityBus(ConfigModel):
    id: Text
    kind: Literal["radial", "ring"]
    from_arm: Whole = Field(0, ge=0)
    to_arm: Whole = Field(0, ge=0)
    headway_s: float = Field(ge=10.0)
    persons: Whole = Field(ge=0)
    type: Text = "bus"


class _DemandCity(ConfigModel):
    peak_veh_h: FlowVehH
    through_share: Share
    inbound_share: Share
    min_trip_m: float = Field(0.0, ge=0.0)
    bus: list[dict[str, Any]] = Field(default_factory=list)


class _Bus(ConfigModel):
    id: Text
    direction: Literal["forward", "reverse"]
    headway_s: float = Field(ge=10.0)
    persons: Whole = Field(ge=0)
    type: Text = "bus"
    stops_after: list[str] = Field(default_factory=list)
    dwell_s: float = Field(0.0, ge=0.0, le=600.0)
    offset_s: float = Field(0.0, ge=0.0)


class _Emergency(ConfigModel):
    id: Text
    route: Text
    depart_s: float
    type: Text = "emergency"
    bluelight: bool = False


class _Faults(ConfigModel):
    detector_fail_fraction: float
    at_s: float
    seed: Whole | None = Field(None, ge=0)
    mode: Literal["dead", "stuck", "mixed"] = "mixed"
    stuck_share: Share | None = None

    @field_validator("detector_fail_fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError(f"must be a fraction of the detectors in (0, 1] (e.g. 0.2 for 20 %), got {v!r}")
        return v


class _Sumo(ConfigModel):
    step_length_s: float = Field(1.0, ge=0.01, le=5.0)
    lateral_resolution_m: float | None = Field(None, ge=0.1, le=5.0)
    time_to_teleport_s: float = 300.0
    collision_action: Literal["none", "warn", "teleport", "remove"] | None = None


def _vtype_field(attr: str) -> tuple[Any, Any]:
    if attr in _VTYPE_TEXT:
        return (Text | None, None)
    if attr == "sigma":
        return (float | None, Field(None, ge=0.0, le=1.0))
    if attr in ("length", "width", "maxSpeed", "accel", "decel", "tau"):
        return (float | None, Field(None, gt=0.0))
    return (float | None, Field(None, ge=0.0))


# One optional field per SUMO vType attribute greenwave passes on (vClass required). Fields built
# from a table: pydantic's create_model overloads cannot type a ** of field definitions.
_VType = create_model(  # type: ignore[call-overload]
    "_VType",
    __base__=ConfigModel,
    **{a: _vtype_field(a) for a in sorted(_VTYPE_NUMERIC | _VTYPE_TEXT) if a != "vClass"},
    vClass=(Text, ...),
    speedFactor=(float | str | None, None),
)


# ---- reading them, in order -------------------------------------------------------------------


class _Reader:
    """The file being read: where errors point, and the checks that span tables."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, loc: tuple[str | int, ...], message: str) -> InputError:
        return InputError(message, where=where_of(self.path, loc))

    def table(self, model: type[Any], data: Any, *loc: str | int) -> Any:
        return validate(model, data, path=self.path, prefix=tuple(str(x) if isinstance(x, str) else x for x in loc))

    def shares(self, loc: tuple[str, ...], keys: tuple[str, ...], values: tuple[float, ...]) -> None:
        if abs(sum(values) - 1.0) > 1e-6:
            raise self.error((*loc, keys[0]), f"{' + '.join(keys)} must sum to 1, got {sum(values):g}")

    def mix(self, loc: tuple[str, ...], raw: Any, vtypes: Mapping[str, Mapping[str, str]]) -> dict[str, float]:
        if not isinstance(raw, dict) or not raw:
            raise self.error(loc, "must be a non-empty table of vType id = share")
        for vid in raw:
            if vid not in vtypes:
                raise self.error((*loc, vid), f"unknown vType {vid!r} (defined: {', '.join(sorted(vtypes))})")
        mix = dict(validate(_Shares, raw, path=self.path, prefix=loc).root)
        if abs(sum(mix.values()) - 1.0) > 1e-6:
            raise self.error(loc, f"shares must sum to 1, got {sum(mix.values()):g}")
        return mix

    def vtypes(self, raw: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        """``[vtypes]``: SUMO attributes per vType, as text for the routes file, in the order written."""
        out: dict[str, dict[str, str]] = {}
        for vid, table in raw.items():
            loc = ("vtypes", vid)
            if not isinstance(table, dict):
                raise self.error(loc, f"must be a table, got {type(table).__name__}")
            if not _NAME_RE.match(vid):
                raise self.error(loc, f"vType id must be letters, digits, '_' or '-', got {vid!r}")
            for attr in table:
                if attr == "id":
                    raise self.error((*loc, attr), "not allowed here: the table name is the vType id")
                if attr not in _VType.model_fields:
                    raise self.error((*loc, attr), f"unknown vType attribute {attr!r}")
            v = self.table(_VType, table, *loc)
            attrs: dict[str, str] = {}
            for attr in table:
                value = getattr(v, attr)
                if attr == "speedFactor" and isinstance(value, str):
                    if not _DIST_RE.match(value):
                        raise self.error((*loc, attr), f"must be a number, got {value!r}")
                    attrs[attr] = value
                elif attr == "speedFactor" and value <= 0:
                    raise self.error((*loc, attr), f"must be > 0, got {value!r}")
                else:
                    attrs[attr] = value if isinstance(value, str) else _fmt(value)
            self._check_vtype(loc, vid, attrs)
            out[vid] = attrs
        if not out:
            raise self.error(("vtypes",), "define at least one vType")
        return out

    def _check_vtype(self, loc: tuple[str, ...], vid: str, attrs: Mapping[str, str]) -> None:
        if attrs["vClass"] not in _VCLASSES:
            raise self.error((*loc, "vClass"), f"unknown SUMO vClass {attrs['vClass']!r}")
        if vid in ("motorcycle", "bus") and attrs["vClass"] != vid:
            raise self.error((*loc, "vClass"), f"vType {vid!r} must have vClass={vid!r}, got {attrs['vClass']!r}")
        if attrs["vClass"] == "bus" and "personCapacity" not in attrs:
            raise self.error((*loc, "personCapacity"), "a bus needs personCapacity (for person delay)")
        la = attrs.get("latAlignment")
        if la is not None and la not in _LAT_ALIGNMENTS:
            try:
                float(la)
            except ValueError:
                msg = f"must be a number or one of {sorted(_LAT_ALIGNMENTS)}"
                raise self.error((*loc, "latAlignment"), msg) from None

    def horizon(self, raw: Mapping[str, Any]) -> tuple[float, float, float]:
        """``[horizon]``: begin, end and the end of demand (s)."""
        h = self.table(_Horizon, raw, "horizon")
        if h.end_s <= h.begin_s:
            raise self.error(("horizon", "end_s"), f"must be after begin_s ({h.begin_s:g}), got {h.end_s:g}")
        demand_end_s = h.end_s if h.demand_end_s is None else h.demand_end_s
        if not h.begin_s < demand_end_s <= h.end_s:
            msg = f"must be in ({h.begin_s:g}, {h.end_s:g}], got {demand_end_s:g}"
            raise self.error(("horizon", "demand_end_s"), msg)
        return h.begin_s, h.end_s, demand_end_s

    def network(self, raw: Mapping[str, Any]) -> GridNetwork | CorridorNetwork | CityNetwork:
        """``[network]``: a grid, a corridor or a city recipe, by ``generator``."""
        generator = self.table(_Generator, raw, "network").generator
        if generator == "city":
            city = self.table(_City, raw, "network")
            if city.arterial_ring > city.rings:
                msg = f"must be one of the rings 1..{city.rings}, got {city.arterial_ring}"
                raise self.error(("network", "arterial_ring"), msg)
            if city.jitter_m >= 0.25 * min(city.ring_spacing_m, city.block_m):
                raise self.error(("network", "jitter_m"), "must be under a quarter of ring_spacing_m and block_m")
            return CityNetwork(**city.model_dump(exclude={"generator"}))
        if generator == "grid":
            g = self.table(_Grid, raw, "network")
            net = GridNetwork(**g.model_dump(exclude={"generator"}))
            if net.turn_lane_length_m >= min(net.x_length_m, net.y_length_m, net.attach_length_m):
                raise self.error(("network", "turn_lane_length_m"), "must be shorter than the blocks")
            return net
        c = self.table(_Corridor, raw, "network")
        return CorridorNetwork(**{**c.model_dump(exclude={"generator"}), "spacing_m": tuple(c.spacing_m)})

    def tls(self, raw: Mapping[str, Any]) -> TlsSpec:
        """``[tls]``: the options netconvert/netgenerate get for SUMO's own signal programs."""
        return TlsSpec(**self.table(_Tls, raw, "tls").model_dump())

    def demand(
        self,
        raw: Mapping[str, Any],
        network: GridNetwork | CorridorNetwork | CityNetwork,
        vtypes: Mapping[str, Mapping[str, str]],
        horizon: tuple[float, float, float],
    ) -> DemandSpec:
        """``[demand]``: profile, mix, the network's own pattern, bus lines and emergency vehicles."""
        begin_s, end_s, demand_end_s = horizon
        span_s = demand_end_s - begin_s
        d = self.table(_Demand, raw, "demand")
        profile = self._profile(d.profile)
        mix = self.mix(("demand", "mix"), d.mix, vtypes)
        buses: list[BusLine] = []
        pattern: GridDemand | CorridorDemand | CityDemand
        if isinstance(network, CityNetwork):
            for other in ("grid", "corridor", "bus"):
                if other in raw:
                    msg = "this network is a city: give [demand.city] (and its bus lines)"
                    raise self.error(("demand", other), msg)
            pattern = self._city_pattern(d.city, network, vtypes)
            if d.emergency:
                raise self.error(("demand", "emergency"), "not supported on a city network yet")
        elif isinstance(network, GridNetwork):
            pattern = self._grid_pattern(d.grid)
            if d.corridor is not None:
                raise self.error(
                    ("demand", "corridor"), "this network is a grid: give [demand.grid], not [demand.corridor]"
                )
            if "bus" in raw:
                raise self.error(("demand", "bus"), "bus lines are defined for corridors only")
        else:
            pattern = self._corridor_pattern(d.corridor, vtypes)
            if d.grid is not None:
                raise self.error(
                    ("demand", "grid"), "this network is a corridor: give [demand.corridor], not [demand.grid]"
                )
            buses = self._bus_lines(d.bus, network, vtypes, span_s)
        emergency = self._emergency(d.emergency, vtypes, begin_s, end_s, taken={x.id for x in buses})
        if d.slice_s > span_s:
            raise self.error(("demand", "slice_s"), f"{d.slice_s:g} s is longer than the demand period ({span_s:g} s)")
        return DemandSpec(
            slice_s=d.slice_s,
            arrivals=d.arrivals,
            jitter=d.jitter,
            profile=profile,
            mix=mix,
            depart_lane=d.depart_lane,
            depart_speed=d.depart_speed,
            depart_pos_lat=d.depart_pos_lat,
            pattern=pattern,
            buses=tuple(buses),
            emergency=emergency,
        )

    def _profile(self, raw: list[Any]) -> tuple[tuple[float, float], ...]:
        profile: list[tuple[float, float]] = []
        for i, pt in enumerate(raw):
            if not isinstance(pt, list) or len(pt) != 2:
                raise self.error(("demand", "profile", i), f"must be a [time_s, factor] pair, got {pt!r}")
            p = self.table(_ProfilePoint, {"time_s": pt[0], "factor": pt[1]}, "demand", "profile", i)
            if profile and p.time_s <= profile[-1][0]:
                msg = f"times must increase, got {p.time_s:g} after {profile[-1][0]:g}"
                raise self.error(("demand", "profile", i, 0), msg)
            profile.append((p.time_s, p.factor))
        if max(f for _, f in profile) <= 0:
            raise self.error(("demand", "profile"), "all factors are zero: no demand")
        return tuple(profile)

    def _grid_pattern(self, raw: Mapping[str, Any] | None) -> GridDemand:
        """``[demand.grid]``: entry flows and turning shares."""
        if raw is None:
            raise self.error(("demand", "grid"), "missing required field")
        g = self.table(_DemandGrid, raw, "demand", "grid")
        self.shares(("demand", "grid"), ("through", "left", "right"), (g.through, g.left, g.right))
        return GridDemand(**g.model_dump())

    def _city_pattern(
        self, raw: Mapping[str, Any] | None, network: CityNetwork, vtypes: Mapping[str, Mapping[str, str]]
    ) -> CityDemand:
        """``[demand.city]``: the city's trip rate and shares, and ``[[demand.city.bus]]`` lines."""
        loc = ("demand", "city")
        if raw is None:
            raise self.error(loc, "missing required field")
        c = self.table(_DemandCity, raw, *loc)
        lines: list[CityBusLine] = []
        for i, rb in enumerate(c.bus):
            bloc = (*loc, "bus", i)
            b = self.table(_CityBus, rb, *bloc)
            if not _NAME_RE.match(b.id):
                raise self.error((*bloc, "id"), f"must be letters, digits, '_' or '-', got {b.id!r}")
            if any(x.id == b.id for x in lines):
                raise self.error((*bloc, "id"), f"duplicate bus line id {b.id!r}")
            for key in ("from_arm", "to_arm"):
                if getattr(b, key) >= network.arms:
                    msg = f"no such arm: the city has arms 0..{network.arms - 1}, got {getattr(b, key)}"
                    raise self.error((*bloc, key), msg)
            if b.kind == "radial" and b.from_arm == b.to_arm:
                raise self.error((*bloc, "to_arm"), "a radial line must leave on another arm than it enters")
            if b.type not in vtypes or vtypes[b.type]["vClass"] != "bus":
                raise self.error((*bloc, "type"), f"must name a vType with vClass='bus', got {b.type!r}")
            cap = float(vtypes[b.type]["personCapacity"])
            if b.persons > cap:
                raise self.error((*bloc, "persons"), f"{b.persons} exceeds the vType's personCapacity {cap:g}")
            lines.append(CityBusLine(b.id, b.kind, b.from_arm, b.to_arm, b.headway_s, b.persons, b.type))
        return CityDemand(c.peak_veh_h, c.through_share, c.inbound_share, c.min_trip_m, tuple(lines))

    def _corridor_pattern(
        self, raw: Mapping[str, Any] | None, vtypes: Mapping[str, Mapping[str, str]]
    ) -> CorridorDemand:
        """``[demand.corridor]``: main-road and side-street flows and turning shares."""
        loc = ("demand", "corridor")
        if raw is None:
            raise self.error(loc, "missing required field")
        c = self.table(_DemandCorridor, raw, *loc)
        if c.main_left + c.main_right > 1.0:
            raise self.error((*loc, "main_left"), "main_left + main_right must be <= 1")
        keys = ("side_through", "side_left", "side_right")
        self.shares(loc, keys, (c.side_through, c.side_left, c.side_right))
        side_mix = self.mix((*loc, "side_mix"), c.side_mix, vtypes) if c.side_mix is not None else None
        return CorridorDemand(**{**c.model_dump(), "side_mix": side_mix})

    def _bus_lines(
        self,
        raw: list[dict[str, Any]],
        network: CorridorNetwork,
        vtypes: Mapping[str, Mapping[str, str]],
        span_s: float,
    ) -> list[BusLine]:
        """``[[demand.bus]]`` of a corridor: each line checked against the corridor and the vTypes."""
        buses: list[BusLine] = []
        for i, rb in enumerate(raw):
            loc = ("demand", "bus", i)
            b = self.table(_Bus, rb, *loc)
            line = BusLine(
                id=b.id,
                direction=b.direction,
                headway_s=b.headway_s,
                persons=b.persons,
                vtype=b.type,
                stops_after=self._stops_after(loc, b.stops_after, network.signal_ids, b.direction),
                dwell_s=b.dwell_s,
                offset_s=b.offset_s,
            )
            if not line.stops_after:
                for key in ("dwell_s", "offset_s"):
                    if key in b.model_fields_set:
                        raise self.error((*loc, key), "only for a timetabled line: give stops_after too")
            elif line.offset_s >= span_s:
                raise self.error((*loc, "offset_s"), f"{line.offset_s:g} s leaves no trip before demand_end_s")
            if not _NAME_RE.match(line.id):
                raise self.error((*loc, "id"), f"must be letters, digits, '_' or '-', got {line.id!r}")
            if line.vtype not in vtypes or vtypes[line.vtype]["vClass"] != "bus":
                raise self.error((*loc, "type"), f"must name a vType with vClass='bus', got {line.vtype!r}")
            cap = float(vtypes[line.vtype]["personCapacity"])
            if line.persons > cap:
                raise self.error((*loc, "persons"), f"{line.persons} exceeds the vType's personCapacity {cap:g}")
            if any(x.id == line.id for x in buses):
                raise self.error((*loc, "id"), f"duplicate bus line id {line.id!r}")
            buses.append(line)
        return buses

    def _stops_after(
        self, loc: tuple[str | int, ...], raw: list[str], signal_ids: tuple[str, ...], direction: str
    ) -> tuple[str, ...]:
        """``stops_after`` of a bus line: corridor junction ids, returned in the line's travel order."""
        where = (*loc, "stops_after")
        for j in raw:
            if j not in signal_ids:
                raise self.error(where, f"unknown junction {j!r} (the corridor's are {', '.join(signal_ids)})")
        if len(set(raw)) != len(raw):
            raise self.error(where, "lists a junction twice")
        order = signal_ids if direction != "reverse" else signal_ids[::-1]
        return tuple(j for j in order if j in raw)

    def _emergency(
        self,
        raw: list[dict[str, Any]],
        vtypes: Mapping[str, Mapping[str, str]],
        begin_s: float,
        end_s: float,
        taken: set[str],
    ) -> tuple[EmergencyVehicle, ...]:
        out: list[EmergencyVehicle] = []
        for i, re_ in enumerate(raw):
            loc = ("demand", "emergency", i)
            e = self.table(_Emergency, re_, *loc)
            if e.depart_s < begin_s:
                raise self.error((*loc, "depart_s"), f"must be >= {begin_s:g}, got {e.depart_s!r}")
            ev = EmergencyVehicle(id=e.id, route=e.route, depart_s=e.depart_s, vtype=e.type, bluelight=e.bluelight)
            if not _NAME_RE.match(ev.id):
                raise self.error((*loc, "id"), f"must be letters, digits, '_' or '-', got {ev.id!r}")
            if ev.id in taken or any(x.id == ev.id for x in out):
                raise self.error((*loc, "id"), f"duplicate vehicle or line id {ev.id!r}")
            if ev.depart_s >= end_s:
                msg = f"must be before the end of the horizon ({end_s:g} s), got {ev.depart_s:g}"
                raise self.error((*loc, "depart_s"), msg)
            if ev.vtype not in vtypes or vtypes[ev.vtype]["vClass"] != "emergency":
                raise self.error((*loc, "type"), f"must name a vType with vClass='emergency', got {ev.vtype!r}")
            out.append(ev)
        return tuple(sorted(out, key=lambda ev: (ev.depart_s, ev.id)))

    def faults(self, raw: Mapping[str, Any], begin_s: float, end_s: float) -> FaultSpec:
        """``[faults]``: detectors that fail mid-run (handed to the runner, not built)."""
        f = self.table(_Faults, raw, "faults")
        if f.at_s < begin_s:
            raise self.error(("faults", "at_s"), f"must be >= {begin_s:g}, got {f.at_s!r}")
        if f.at_s >= end_s:
            raise self.error(
                ("faults", "at_s"), f"must be inside the horizon [{begin_s:g}, {end_s:g}) s, got {f.at_s:g}"
            )
        if f.mode == "mixed":
            stuck_share = 0.5 if f.stuck_share is None else f.stuck_share
        elif f.stuck_share is not None:
            raise self.error(("faults", "stuck_share"), f'only for mode = "mixed" (mode {f.mode!r} fixes it)')
        else:
            stuck_share = 1.0 if f.mode == "stuck" else 0.0
        return FaultSpec(
            detector_fail_fraction=f.detector_fail_fraction,
            at_s=f.at_s,
            seed=f.seed,
            mode=f.mode,
            stuck_share=stuck_share,
        )

    def sumo(self, raw: Mapping[str, Any], vtypes: Mapping[str, Mapping[str, str]]) -> SumoSpec:
        """``[sumo]``: simulation options; the sublane resolution must fit the narrowest two-wheeler."""
        sumo = SumoSpec(**self.table(_Sumo, raw, "sumo").model_dump())
        if sumo.lateral_resolution_m is not None:
            for vid, attrs in vtypes.items():
                if attrs["vClass"] in ("motorcycle", "moped") and "width" in attrs:
                    w = float(attrs["width"])
                    if sumo.lateral_resolution_m > w + 1e-9:
                        raise self.error(
                            ("sumo", "lateral_resolution_m"),
                            f"{sumo.lateral_resolution_m:g} m is wider than vType {vid!r} ({w:g} m): "
                            "the sublane model needs a resolution no wider than a motorcycle",
                        )
        return sumo


class _ProfilePoint(ConfigModel):
    time_s: float
    factor: float = Field(ge=0.0, le=10.0)


def _resolve(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or s.endswith(".toml") or "/" in s or "\\" in s:
        p = Path(name_or_path)
        if not p.is_file():
            raise InputError("scenario definition file not found", where=str(p))
        return p
    p = DEFS_DIR / f"{s}.toml"
    if not p.is_file() and (CITY_DIR / f"{s}.toml").is_file():
        p = CITY_DIR / f"{s}.toml"
    if not p.is_file():
        known = ", ".join([*scenario_names(), *city_names()])
        raise InputError(f"unknown scenario {s!r} (known: {known}; or give a .toml path)")
    return p


def scenario_names() -> list[str]:
    """Names of the library scenarios (``scenarios/defs/*.toml``)."""
    return sorted(p.stem for p in DEFS_DIR.glob("*.toml"))


def city_names() -> list[str]:
    """Names of the city-size library scenarios (``scenarios/defs/city/*.toml``)."""
    return sorted(p.stem for p in CITY_DIR.glob("*.toml"))


def load_scenario_def(name_or_path: str | Path) -> ScenarioDef:
    """Read and validate a scenario definition: a library name or a path to a TOML file.

    Raises :class:`~intersections.errors.InputError` naming the file, the table and
    the field for malformed TOML, unknown fields and bad values.
    """
    path = _resolve(name_or_path)
    data, doc = _read_toml(path)
    sha256 = hashlib.sha256(data).hexdigest()
    base_path: Path | None = None
    if "extends" in doc:
        base_path, base_data, base_doc = _read_base(path, doc["extends"])
        doc = _merge({k: v for k, v in base_doc.items() if k not in ("name", "description")}, doc)
        sha256 = hashlib.sha256(data + b"\0extends\0" + base_data).hexdigest()
    r = _Reader(path)
    top = validate(_Document, doc, path=path)
    if not _NAME_RE.match(top.name):
        raise r.error(("name",), f"must be letters, digits, '_' or '-', got {top.name!r}")
    horizon = r.horizon(top.horizon)
    begin_s, end_s, demand_end_s = horizon
    vtypes = r.vtypes(top.vtypes)
    network = r.network(top.network)
    tls = r.tls(top.tls)
    demand = r.demand(top.demand, network, vtypes, horizon)
    faults = r.faults(top.faults, begin_s, end_s) if top.faults is not None else None
    sumo = r.sumo(top.sumo, vtypes)
    return ScenarioDef(
        name=top.name,
        description=" ".join(top.description.split()),
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
