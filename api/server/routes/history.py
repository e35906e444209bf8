"""KPI history: every 30-s KPI interval of every intersection, kept ``history_days`` (at least 7), paged.

Why SQLite (the service's own database) and not DuckDB/Parquet: a 30-s sample
of the whole network is one row (about 2,900 rows a day), a week of a
1,024-intersection city is some 20,000 rows, and the queries are time ranges
on an indexed column, which SQLite answers in milliseconds; one file to back
up, the same migrations, and PostgreSQL works unchanged where a city runs it.
The events themselves stay compressed blobs per intersection and flush
(``event_chunks``), as UDOT ATSPM 5 stores them. Retention: the engine prunes
both tables past ``history_days`` once a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import select

from api.server.auth import Permission, Principal
from api.server.db import KpiSample
from api.server.deps import ServiceState, require, service
from api.server.routes.network import known

__all__ = ["router"]

router = APIRouter(prefix="/api/history", tags=["history"])
reader = require(Permission.READ)
KEYS = ("queue_veh", "max_queue_veh", "flow_veh_h", "aog_pct", "central_pct")


def _utc(d: datetime) -> datetime:
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


@router.get("/kpis", responses={404: {"description": "unknown intersection"}})
def kpi_history(
    start: datetime | None = Query(None, description="ISO 8601, controller clock; default: 24 h before end"),
    end: datetime | None = Query(None, description="ISO 8601; default: now"),
    intersection: str | None = Query(None, min_length=1, max_length=64, description="one intersection's series"),
    after_id: int = Query(0, ge=0, le=2**31 - 1, description="paging: the next_after_id of the previous page"),
    limit: int = Query(500, ge=1, le=5000, description="samples per page"),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """30-s KPI samples in ``[start, end]``, oldest first, a page at a time.

    Without ``intersection``: network totals (queue, flow) per sample; with
    it: that intersection's queue, max queue, flow, arrivals on green and
    share under central control. ``next_after_id`` is null on the last page.
    """
    if intersection is not None:
        known(svc.runner, intersection)
    try:
        end_at = _utc(end) if end else svc.runner.clock(svc.runner.sim_time_s) + timedelta(seconds=1)
        start_at = _utc(start) if start else end_at - timedelta(hours=24)
    except (OverflowError, ValueError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start/end: out of range") from None
    with svc.db.session() as s:
        q = (
            select(KpiSample)
            .where(KpiSample.at >= start_at, KpiSample.at <= end_at, KpiSample.id > after_id)
            .order_by(KpiSample.id)
            .limit(limit + 1)
        )
        rows = list(s.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    out: list[dict[str, Any]] = []
    for row in rows:
        d = row.data
        item: dict[str, Any] = {"id": row.id, "at": _utc(row.at).isoformat(timespec="seconds"), "t": row.sim_t_s}
        if intersection is None:
            item["queue_veh"] = round(sum(v for v in d.get("queue_veh", []) if v is not None), 1)
            item["flow_veh_h"] = round(sum(v for v in d.get("flow_veh_h", []) if v is not None), 0)
        else:
            ids = d.get("ids", [])
            if intersection not in ids:
                continue  # a sample from before the network changed
            k = ids.index(intersection)
            for key in KEYS:
                item[key] = d.get(key, [None] * len(ids))[k]
        out.append(item)
    return {
        "intersection": intersection,
        "start": start_at.isoformat(),
        "end": end_at.isoformat(),
        "samples": out,
        "next_after_id": rows[-1].id if more and rows else None,
        "retention_days": svc.settings.history_days,
    }
