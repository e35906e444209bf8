"""Timetabled bus trips and far-side stops; emergency vehicles as single timed trips."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

from intersections.errors import InputError
from scenarios.library.od import _bus_route
from scenarios.library.schema import ScenarioDef, _fmt
from scenarios.library.writers import _BusStop, _depart_attrs, _Timed, _xml_attrs

# A far-side bus stop starts this far past the junction and is long enough for two 12 m buses.
_STOP_START_M = 15.0
_STOP_LENGTH_M = 30.0
# SUMO's defaults for vClass bus where the vType does not say (accel, decel in m/s2).
_BUS_ACCEL_M_S2 = 1.2
_BUS_DECEL_M_S2 = 4.0


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
