"""The network, intersections and their live state, KPIs, queues, events, field actions."""

from __future__ import annotations

import hashlib
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import and_, select
from starlette.types import ASGIApp, Receive, Scope, Send

from api.server.alarm_book import alarm_public
from api.server.auth import Permission, Principal, resolve_token
from api.server.db import AlarmRow, CommandRow, EventChunk, IntersectionRow, PlanVersion, ScheduleEntry, decode_events
from api.server.deps import ServiceState, bearer, require, service
from api.server.live import EngineRunner
from api.server.schemas import LinkIn
from api.server.settings import Settings
from intersections.network import Network

router = APIRouter(prefix="/api", tags=["network"])
reader = require(Permission.READ)
IntersectionId = Path(min_length=1, max_length=64)
#: How long a checked token is trusted by the hot read endpoints (``/api/snapshot``) before the database
#: is asked again: one second bounds how long a revoked token can still read the live state, and
#: spares the database one lookup per request at thousands of requests a second.
TOKEN_CACHE_S = 1.0


async def reader_cached(
    creds: HTTPAuthorizationCredentials | None = Depends(bearer), svc: ServiceState = Depends(service)
) -> Principal:
    """:func:`require` (read) for hot endpoints: the token's check is reused for ``TOKEN_CACHE_S``."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    cache: dict[bytes, tuple[float, Principal]] = svc.__dict__.setdefault("_token_cache", {})
    key = hashlib.sha256(creds.credentials.encode()).digest()
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        who = hit[1]
    else:
        found = await anyio.to_thread.run_sync(resolve_token, svc.db, creds.credentials, svc.key)
        if found is None:
            cache.pop(key, None)
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"}
            )
        if len(cache) > 10_000:
            cache.clear()
        who = found
        cache[key] = (now + TOKEN_CACHE_S, who)
    if not who.can(Permission.READ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {who.role} may not read")
    return who


def network_or_503(runner: EngineRunner) -> Network:
    if runner.network is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the engine is {runner.state}: network not loaded yet"
        )
    return runner.network


def known(runner: EngineRunner, intersection_id: str) -> int:
    net = network_or_503(runner)
    if intersection_id not in net.by_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown intersection {intersection_id!r}")
    return int(net.ids.index(intersection_id))


@router.get("/status")
def engine_status(_: Principal = Depends(reader), svc: ServiceState = Depends(service)) -> dict[str, Any]:
    """Engine state, clocks and network-wide counters."""
    r = svc.runner
    frame = r.frame  # counts made once per tick by the engine thread, not per request
    snap, summary = frame.data, r.summary
    n = len(snap.get("intersections", {}))
    return {
        "engine": r.state,
        "error": r.error,
        "policy": r.policy_name,
        "backend": str(svc.settings.backend),
        "model": snap.get("model"),  # SUMO's traffic model of the twin (micro, meso); None off SUMO
        "demo": svc.settings.demo,
        "speed": r.speed,
        "sim_time_s": snap.get("sim_time_s"),
        "clock": snap.get("clock"),
        "ticks": r.ticks,
        "restarts": r.restarts,
        "intersections": n,
        "online_pct": round(100.0 * summary["online"] / n, 1) if n else None,
        "by_status": summary["by_status"],
        "alarms_open": summary["alarms_open"],
    }


@router.get(
    "/snapshot",
    responses={
        200: {"description": "the live snapshot of every intersection and road (gzip when accepted)"},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
    },
)
async def snapshot(
    request: Request, _: Principal = Depends(reader_cached), svc: ServiceState = Depends(service)
) -> Response:
    """The whole live state, as the stream's ``status`` event carries it, built once per tick.

    Every request of the same tick gets the same bytes (JSON, or gzip when the
    client accepts it), with the tick's sequence number as ETag: a city of
    1,024 intersections costs one encoding per tick, however many clients poll.
    """
    frame = svc.runner.frame
    headers = {"ETag": frame.etag.decode(), "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(frame.gzip(), media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(frame.json(), media_type="application/json", headers=headers)


class SnapshotFastPath:
    """ASGI middleware: ``GET /api/snapshot`` answered before routing, with the same checks as the route.

    The route below is the contract (OpenAPI, validation); this serves the same
    bytes, status codes and headers without FastAPI's per-request dependency
    machinery, which costs more than the response itself at thousands of
    requests a second. Anything it does not handle (another path, a missing or
    unknown token) goes on to the app unchanged, so errors stay the app's. It sits inside
    :class:`~api.server.hardening.SecurityHeaders`, which adds the security headers to its answers
    as to every other.
    """

    PATH = "/api/snapshot"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH or scope["method"] != "GET" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"")
        svc: ServiceState = scope["app"].state.gw
        cache: dict[bytes, tuple[float, Principal]] = svc.__dict__.setdefault("_token_cache", {})
        hit = cache.get(hashlib.sha256(auth[7:]).digest()) if auth[:7].lower() == b"bearer " else None
        if hit is None or hit[0] <= time.monotonic() or not hit[1].can(Permission.READ):
            await self.app(scope, receive, send)  # the route checks the token and refills the cache
            return
        frame = svc.runner.frame
        out = [(b"etag", frame.etag), (b"cache-control", b"no-cache")]  # security headers: SecurityHeaders, outside
        if headers.get(b"if-none-match") == frame.etag:
            await send({"type": "http.response.start", "status": 304, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return
        if b"gzip" in headers.get(b"accept-encoding", b""):
            body = frame.gzip()
            out.append((b"content-encoding", b"gzip"))
        else:
            body = frame.json()
        out += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body})


@router.get("/network")
def network(_: Principal = Depends(reader), svc: ServiceState = Depends(service)) -> dict[str, Any]:
    """Map geometry (local x/y metres: the SUMO net's, or the inventory's): road edges, intersections, the
    corridor for time-space views, and ``base_layer`` (locally served tiles, or null)."""
    r = svc.runner
    net = network_or_503(r)
    return {
        "bounds": r.geometry["bounds"],
        "edges": r.geometry["edges"],
        "road_storage_veh": np.round(r.roads.storage_veh, 1).tolist() if r.roads is not None else [],
        "intersections": [{"id": i, "x_m": r.positions[i][0], "y_m": r.positions[i][1]} for i in net.ids],
        "corridor": r.corridor,
        "base_layer": base_layer(svc.settings),
    }


def base_layer(settings: Settings) -> dict[str, Any] | None:
    """The optional base map: locally served XYZ tiles and where the network's x = y = 0 lies on them.

    ``None`` without ``map_tiles_dir``. The zoom range is the tile directory's own (its
    numeric sub-directories), so the dashboard never asks for a tile level that is not there.
    """
    if settings.map_tiles_dir is None or settings.map_origin is None:
        return None
    zooms = sorted(int(p.name) for p in settings.map_tiles_dir.iterdir() if p.is_dir() and p.name.isdigit())
    if not zooms:
        return None
    return {
        "url": "/tiles/{z}/{x}/{y}.png",
        "origin": list(settings.map_origin),
        "min_zoom": zooms[0],
        "max_zoom": zooms[-1],
        "attribution": settings.map_attribution,
    }


@router.get("/intersections")
def intersections(_: Principal = Depends(reader), svc: ServiceState = Depends(service)) -> list[dict[str, Any]]:
    """Every intersection with its live state."""
    r = svc.runner
    net = network_or_503(r)
    live = r.snapshot.get("intersections", {})
    with svc.db.session() as s:
        rows = {x.id: x for x in s.scalars(select(IntersectionRow))}
    return [
        {
            "id": i,
            "name": rows[i].name if i in rows else i,
            "x_m": r.positions[i][0],
            "y_m": r.positions[i][1],
            "standing_mode": rows[i].standing_mode if i in rows else "adaptive",
            "active_plan_id": rows[i].active_plan_id if i in rows else None,
            "live": live.get(i),
        }
        for i in net.ids
    ]


@router.get("/intersections/{intersection_id}", responses={404: {"description": "unknown intersection"}})
def intersection(
    intersection_id: str = IntersectionId, _: Principal = Depends(reader), svc: ServiceState = Depends(service)
) -> dict[str, Any]:
    """One intersection: model (groups, stages, detectors), live state, plan, commands, alarms, schedule."""
    r = svc.runner
    known(r, intersection_id)
    with svc.db.session() as s:
        row = s.get(IntersectionRow, intersection_id)
        plan = s.get(PlanVersion, row.active_plan_id) if row and row.active_plan_id else None
        cmds = s.scalars(
            select(CommandRow)
            .where(CommandRow.intersection_id == intersection_id, CommandRow.status == "active")
            .order_by(CommandRow.id.desc())
        ).all()
        alarms = s.scalars(
            select(AlarmRow)
            .where(AlarmRow.intersection_id == intersection_id)
            .where((AlarmRow.cleared_at.is_(None)) | (AlarmRow.acked_at.is_(None)))
            .order_by(AlarmRow.id.desc())
        ).all()
        sched = s.scalars(select(ScheduleEntry).where(ScheduleEntry.intersection_id == intersection_id)).all()
        return {
            "id": intersection_id,
            "name": row.name if row else intersection_id,
            "x_m": r.positions[intersection_id][0],
            "y_m": r.positions[intersection_id][1],
            "model": row.model if row else {},
            "standing_mode": row.standing_mode if row else "adaptive",
            "active_plan": (
                {"id": plan.id, "version": plan.version, "name": plan.name, "plan": plan.plan} if plan else None
            ),
            "live": r.snapshot.get("intersections", {}).get(intersection_id),
            "commands": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "stage": c.stage,
                    "plan_id": c.plan_id,
                    "reason": c.reason,
                    "created_by": c.created_by,
                    "expires_at": c.expires_at.isoformat(),
                }
                for c in cmds
            ],
            "alarms": [alarm_public(a) for a in alarms],
            "schedule": sorted(({"start": e.start, "plan_id": e.plan_id} for e in sched), key=lambda e: e["start"]),
        }


@router.get("/intersections/{intersection_id}/timeline", responses={404: {"description": "unknown intersection"}})
def timeline(
    intersection_id: str = IntersectionId,
    seconds: float = Query(120.0, gt=0, le=900),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Recent signal states (R/Y/G/F per group), served stage and detector presence, one entry per tick."""
    known(svc.runner, intersection_id)
    return svc.runner.timeline(intersection_id, seconds)


@router.get("/queues")
def queues(_: Principal = Depends(reader), svc: ServiceState = Depends(service)) -> dict[str, dict[str, float | None]]:
    """Vehicles queued per signal group per intersection, as last observed (null: unknown)."""
    network_or_503(svc.runner)
    if not svc.runner.first_tick.is_set():
        return {}
    return svc.runner.queues()


def _kpi_summary(r: EngineRunner) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    samples = list(r.kpi_samples)
    net = network_or_503(r)
    per: dict[str, dict[str, Any]] = {}
    recent = samples[-10:]
    for k, iid in enumerate(net.ids):
        q = [s["queue_veh"][k] for s in recent]
        f = [s["flow_veh_h"][k] for s in recent]
        a = [s["aog_pct"][k] for s in recent if s["aog_pct"][k] == s["aog_pct"][k]]
        c = [s["central_pct"][k] for s in recent]
        per[iid] = {
            "mean_queue_veh": round(float(np.mean(q)), 2) if q else None,
            "max_queue_veh": max((s["max_queue_veh"][k] for s in recent), default=None),
            "flow_veh_h": round(float(np.mean(f)), 0) if f else None,
            "aog_pct": round(float(np.mean(a)), 1) if a else None,
            "central_control_pct": round(float(np.mean(c)), 1) if c else None,
        }
    return samples, per


@router.get("/kpis")
def kpis(_: Principal = Depends(reader), svc: ServiceState = Depends(service)) -> dict[str, Any]:
    """Network KPIs: per-intersection summaries of the last 5 minutes (sim) and the network series."""
    samples, per = _kpi_summary(svc.runner)
    series = {
        "t": [s["t"] for s in samples],
        "clock": [s["clock"] for s in samples],
        "queue_veh": [round(float(np.sum(s["queue_veh"])), 1) for s in samples],
        "flow_veh_h": [round(float(np.sum(s["flow_veh_h"])), 0) for s in samples],
    }
    return {"interval_s": 30.0, "intersections": per, "network": series}


@router.get("/intersections/{intersection_id}/kpis", responses={404: {"description": "unknown intersection"}})
def intersection_kpis(
    intersection_id: str = IntersectionId, _: Principal = Depends(reader), svc: ServiceState = Depends(service)
) -> dict[str, Any]:
    """KPI series of one intersection (30-s samples of simulated time)."""
    k = known(svc.runner, intersection_id)
    samples, per = _kpi_summary(svc.runner)
    return {
        "summary": per[intersection_id],
        "t": [s["t"] for s in samples],
        "clock": [s["clock"] for s in samples],
        **{
            key: [s[key][k] for s in samples]
            for key in ("queue_veh", "max_queue_veh", "flow_veh_h", "aog_pct", "central_pct")
        },
    }


def _as_utc(d: datetime | None) -> datetime | None:
    if d is None:
        return None
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


@router.get("/events", responses={200: {"content": {"text/csv": {}}}})
def events(
    intersection: str | None = Query(None, min_length=1, max_length=64),
    start: datetime | None = Query(None, description="ISO 8601; default: one hour before end"),
    end: datetime | None = Query(None, description="ISO 8601; default: now on the controller clock"),
    codes: str | None = Query(None, max_length=400, pattern=r"^[0-9]{1,3}(,[0-9]{1,3})*$", description="e.g. 1,8,9,82"),
    limit: int = Query(10_000, ge=1, le=200_000),
    offset: int = Query(0, ge=0, le=10_000_000, description="paging: skip this many (the next_offset of a page)"),
    order: Literal["asc", "desc"] = Query("asc", description="desc: newest first (the dashboard's pages)"),
    format: Literal["json", "csv"] = Query("json"),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> Any:
    """High-resolution controller events in the Indiana enumeration (ATSPM columns).

    JSON: ``{"columns": ["TimeStamp", "DeviceId", "EventId", "Parameter"], "events": [[...], ...],
    "total": N, "next_offset": k | null}``; CSV: the same columns, as ATSPM tools and the ``atspm``
    package read them. Pages: ``offset`` and ``limit`` over the window's events in ``order``;
    events are kept ``history_days`` (at least 7).
    """
    try:
        end_at = _as_utc(end) or svc.runner.clock(svc.runner.sim_time_s) + timedelta(seconds=1)
        start_at = _as_utc(start) or end_at - timedelta(hours=1)
    except (OverflowError, ValueError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start/end out of range") from None
    want = {int(c) for c in codes.split(",")} if codes else None
    rows: list[tuple[datetime, str, int, int]] = []
    with svc.db.session() as s:
        q = select(EventChunk).where(and_(EventChunk.end_at >= start_at, EventChunk.start_at <= end_at))
        if intersection:
            q = q.where(EventChunk.intersection_id == intersection)
        for ch in s.scalars(q.order_by(EventChunk.start_at, EventChunk.id)):
            off, code, param = decode_events(ch.data, ch.count)
            for o, c, p in zip(off.tolist(), code.tolist(), param.tolist(), strict=True):
                if want is not None and c not in want:
                    continue
                ts = ch.start_at + timedelta(seconds=o)
                if start_at <= ts <= end_at:
                    rows.append((ts, ch.intersection_id, c, p))
    rows.sort(key=lambda x: (x[0], x[1], x[2]), reverse=order == "desc")
    total = len(rows)
    rows = rows[offset : offset + limit]
    if format == "csv":
        buf = io.StringIO()
        buf.write("TimeStamp,DeviceId,EventId,Parameter\n")
        for ts, dev, c, p in rows:
            buf.write(f"{ts.isoformat(timespec='milliseconds')},{dev},{c},{p}\n")
        return PlainTextResponse(buf.getvalue(), media_type="text/csv")
    return {
        "columns": ["TimeStamp", "DeviceId", "EventId", "Parameter"],
        "events": [[ts.isoformat(timespec="milliseconds"), dev, c, p] for ts, dev, c, p in rows],
        "start": start_at.isoformat(),
        "end": end_at.isoformat(),  # pass both back with the next offset: the window then stays put
        "truncated": offset + len(rows) < total,
        "total": total,
        "next_offset": offset + len(rows) if offset + len(rows) < total else None,
    }


@router.post(
    "/intersections/{intersection_id}/link",
    responses={404: {"description": "unknown intersection"}, 503: {"description": "engine not running"}},
)
def set_link(
    body: LinkIn,
    intersection_id: str = IntersectionId,
    who: Principal = Depends(require(Permission.FIELD)),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Technician action on the digital twin: cut (or restore) an emulated controller's link.

    The controller stops answering; after the stale-data limit the engine stops
    commanding it, the safety supervisor takes it to its fail-safe and a
    comm-loss alarm is raised.
    """
    known(svc.runner, intersection_id)
    with svc.db.session() as s:
        svc.db.audit(
            s, who.username, "field.link_down" if body.down else "field.link_up", intersection_id, reason=body.reason
        )
    svc.runner.post(lambda r: r.set_link(intersection_id, body.down))
    return {"intersection": intersection_id, "link_down": body.down}
