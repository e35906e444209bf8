"""Signal performance measures of one intersection from the events stored in the database.

The same code as ``greenwave report`` (:func:`scenarios.atspm.intersection_measures`:
Purdue coordination diagram, arrivals on green, split monitor, split failure,
approach delay and volumes, as UDOT ATSPM defines them;
``../shared/reference/atspm-and-operations.md`` §1.3) reads the stored
high-resolution events (Indiana codes) of the chosen window, so the dashboard's
interactive charts and the CLI's PNGs show the same numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlalchemy import and_, select

from api.server.auth import Permission, Principal
from api.server.db import EventChunk, decode_events
from api.server.deps import ServiceState, require, service
from api.server.routes.network import known, network_or_503

__all__ = ["router", "stored_events", "MAX_WINDOW"]

router = APIRouter(prefix="/api", tags=["measures"])
reader = require(Permission.READ)
MAX_WINDOW = timedelta(hours=24)  # one day of one intersection's events decodes in well under a second


def _utc(d: datetime) -> datetime:
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


def stored_events(svc: ServiceState, intersection_id: str, start: datetime, end: datetime) -> Any:
    """The stored events of one intersection in ``[start, end]`` as an ATSPM :class:`EventTable` (origin ``start``)."""
    from scenarios.atspm.events import EventTable

    ts, codes, params = [], [], []
    with svc.db.session() as s:
        q = select(EventChunk).where(
            and_(EventChunk.intersection_id == intersection_id, EventChunk.end_at >= start, EventChunk.start_at <= end)
        )
        for ch in s.scalars(q.order_by(EventChunk.start_at, EventChunk.id)):
            off, code, param = decode_events(ch.data, ch.count)
            ts.append(off + (_utc(ch.start_at) - start).total_seconds())
            codes.append(code)
            params.append(param)
    if not ts:
        return EventTable._sorted(
            np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int16), np.zeros(0, np.int16), (intersection_id,), start
        )
    t = np.concatenate(ts)
    keep = (t >= 0) & (t <= (end - start).total_seconds())
    code_all, param_all = np.concatenate(codes)[keep], np.concatenate(params)[keep]
    t = t[keep]
    return EventTable._sorted(t, np.zeros(len(t), np.int32), code_all, param_all, (intersection_id,), start)


@router.get(
    "/intersections/{intersection_id}/measures",
    responses={404: {"description": "unknown intersection"}, 422: {"description": "window empty or too long"}},
)
def measures(
    intersection_id: str = Path(min_length=1, max_length=64),
    start: datetime | None = Query(None, description="ISO 8601; default: 30 minutes before end"),
    end: datetime | None = Query(None, description="ISO 8601; default: now on the controller clock"),
    bin_s: float = Query(300.0, ge=60, le=3600, allow_inf_nan=False, description="bins of volumes and ratios"),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """PCD, arrivals on green, split monitor, split failure, approach delay and volume from stored events.

    The shape is ``greenwave report``'s ``measures.json`` (times in seconds from
    ``origin``); a measure the detection cannot support is listed under
    ``skipped`` with the reason.
    """
    from scenarios.atspm.detectors import config_from_network
    from scenarios.atspm.report import intersection_measures, json_safe

    known(svc.runner, intersection_id)
    try:
        end_at = _utc(end) if end else svc.runner.clock(svc.runner.sim_time_s) + timedelta(seconds=1)
        start_at = _utc(start) if start else end_at - timedelta(minutes=30)
    except (OverflowError, ValueError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start/end: out of range") from None
    if end_at <= start_at:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end: must be after start")
    if end_at - start_at > MAX_WINDOW:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start: the window is longer than 24 h")
    runner = svc.runner
    configs = runner.atspm_config
    if configs is None:
        configs = runner.atspm_config = config_from_network(network_or_503(runner))
    ev = stored_events(svc, intersection_id, start_at, end_at)
    if not len(ev):
        return {"intersection": intersection_id, "origin": start_at.isoformat(), "events": 0, "measures": {},
                "skipped": {"all": "no stored events in this window"}}  # fmt: skip
    doc = intersection_measures(ev, intersection_id, configs.get(intersection_id), bin_s=bin_s)
    doc["events"] = len(ev)
    return json_safe(doc)
