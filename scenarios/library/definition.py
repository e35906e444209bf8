"""Reading and validating a scenario definition (TOML): one-line errors naming file and field."""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intersections.errors import InputError
from scenarios.library.schema import (
    BusLine,
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
        pattern = _load_grid_pattern(t)
        if t.has("corridor"):
            raise t.error("corridor", "this network is a grid: give [demand.grid], not [demand.corridor]")
        if t.has("bus"):
            raise t.error("bus", "bus lines are defined for corridors only")
    else:
        assert isinstance(network, CorridorNetwork)
        pattern = _load_corridor_pattern(t, vtypes)
        if t.has("grid"):
            raise t.error("grid", "this network is a corridor: give [demand.corridor], not [demand.grid]")
        buses = _load_bus_lines(t, network, vtypes, span_s)
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


def _load_grid_pattern(t: _Table) -> GridDemand:
    """``[demand.grid]``: entry flows and turning shares."""
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
    return pattern


def _load_corridor_pattern(t: _Table, vtypes: Mapping[str, Mapping[str, str]]) -> CorridorDemand:
    """``[demand.corridor]``: main-road and side-street flows and turning shares."""
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
    return pattern


def _load_bus_lines(
    t: _Table, network: CorridorNetwork, vtypes: Mapping[str, Mapping[str, str]], span_s: float
) -> list[BusLine]:
    """``[[demand.bus]]`` of a corridor: each line checked against the corridor and the vTypes."""
    buses: list[BusLine] = []
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
    return buses


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

    begin_s, end_s, demand_end_s = _load_horizon(top)

    vt = top.table("vtypes")
    assert vt is not None
    vtypes = _vtypes(vt)

    nt = top.table("network")
    assert nt is not None
    network, _ = _load_network(nt)

    tls = _load_tls(top)

    dt = top.table("demand")
    assert dt is not None
    demand = _load_demand(dt, network, vtypes, begin_s, demand_end_s, end_s)

    ft = top.table("faults", required=False)
    faults = _load_faults(ft, begin_s, end_s) if ft is not None else None

    sumo = _load_sumo(top, vtypes)
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


def _load_horizon(top: _Table) -> tuple[float, float, float]:
    """``[horizon]``: begin, end and the end of demand (s)."""
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
    return begin_s, end_s, demand_end_s


def _load_tls(top: _Table) -> TlsSpec:
    """``[tls]``: the options netconvert/netgenerate get for SUMO's own signal programs."""
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
    return tls


def _load_sumo(top: _Table, vtypes: Mapping[str, Mapping[str, str]]) -> SumoSpec:
    """``[sumo]``: simulation options; the sublane resolution must fit the narrowest two-wheeler."""
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
    return sumo


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
