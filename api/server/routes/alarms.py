"""Alarms (list, filter, acknowledge with user and note, shelve for a while) and the audit log.

Shelving follows ISA-18.2 alarm management: an operator takes a nuisance alarm
(a detector known to be broken, a controller under maintenance) off the open
list for a limited time with a reason; the shelf expires by itself and the
alarm comes back if still unacknowledged. An alarm left unacknowledged for
``alarm_escalate_s`` is escalated one severity step (see
:meth:`~api.server.alarm_book.AlarmBook.check`); a shelved one is not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.server.alarm_book import alarm_public
from api.server.auth import Permission, Principal
from api.server.db import AlarmRow, AuditEntry, utcnow
from api.server.deps import ServiceState, require, service
from api.server.live import EngineRunner
from api.server.schemas import AckIn, ShelveIn

router = APIRouter(prefix="/api", tags=["alarms"])
reader = require(Permission.READ)
_UNACKED: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown alarm"},
    409: {"description": "already acknowledged"},
}


def _alarm(s: Session, alarm_id: int) -> AlarmRow:
    a = s.get(AlarmRow, alarm_id)
    if a is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown alarm")
    return a


def _operate(
    svc: ServiceState,
    alarm_id: int,
    change: Callable[[Session, AlarmRow], None],
    engine_op: Callable[[EngineRunner], None],
) -> dict[str, Any]:
    """One operator action on an alarm, the same for ack, shelve and unshelve.

    ``change`` refuses (HTTPException) or changes and audits the row inside one transaction;
    only a committed change reaches the engine (``engine_op``, run in its thread) and the live feed.
    """
    with svc.db.session() as s:
        a = _alarm(s, alarm_id)
        change(s, a)
        out = alarm_public(a)
    svc.runner.post(engine_op)
    svc.runner.publish("alarm", out)
    return out


@router.get("/alarms")
def list_alarms(
    state: Literal["open", "active", "unacked", "acked", "cleared", "shelved", "all"] = Query(
        "open", description="open = active or not yet acknowledged, and not shelved"
    ),
    intersection: str | None = Query(None, min_length=1, max_length=64),
    severity: int | None = Query(None, ge=1, le=3, description="at most this severity number (1 = critical only)"),
    code: str | None = Query(None, min_length=1, max_length=32),
    limit: int = Query(200, ge=1, le=2000),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Alarms, newest first, with counts (KITS-style acknowledged / unacknowledged / total)."""
    with svc.db.session() as s:
        q = select(AlarmRow)
        now = utcnow()
        if state == "open":
            q = q.where((AlarmRow.cleared_at.is_(None)) | (AlarmRow.acked_at.is_(None)))
            q = q.where((AlarmRow.shelved_until.is_(None)) | (AlarmRow.shelved_until <= now))
        elif state == "shelved":
            q = q.where(AlarmRow.shelved_until > now)
        elif state == "active":
            q = q.where(AlarmRow.cleared_at.is_(None))
        elif state == "unacked":
            q = q.where(AlarmRow.acked_at.is_(None))
        elif state == "acked":
            q = q.where(AlarmRow.acked_at.is_not(None))
        elif state == "cleared":
            q = q.where(AlarmRow.cleared_at.is_not(None))
        if intersection:
            q = q.where(AlarmRow.intersection_id == intersection)
        if severity is not None:
            q = q.where(AlarmRow.severity <= severity)
        if code:
            q = q.where(AlarmRow.code == code)
        rows = list(s.scalars(q.order_by(AlarmRow.id.desc()).limit(limit)))
        alarms = [alarm_public(a) for a in rows]
    return {
        "alarms": alarms,
        "counts": {
            "total": len(alarms),
            "unacked": sum(1 for a in alarms if a["acked_at"] is None),
            "active": sum(1 for a in alarms if a["active"]),
            "escalated": sum(1 for a in alarms if a["escalated_at"] and a["acked_at"] is None),
        },
    }


@router.post("/alarms/{alarm_id}/shelve", responses=_UNACKED)
def shelve_alarm(
    body: ShelveIn,
    alarm_id: int = Path(ge=1, le=2**31 - 1),
    who: Principal = Depends(require(Permission.ACK_ALARM)),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Take an unacknowledged alarm off the open list for ``minutes``, with a reason; it returns by itself."""
    until = utcnow() + timedelta(minutes=body.minutes)

    def shelve(s: Session, a: AlarmRow) -> None:
        if a.acked_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"already acknowledged by {a.acked_by}: nothing to shelve")
        a.shelved_until, a.shelved_by = until, who.username
        svc.db.audit(
            s, who.username, "alarm.shelve", a.intersection_id, alarm_id=a.id, until=until.isoformat(), note=body.note
        )

    return _operate(svc, alarm_id, shelve, lambda r: r.set_shelved(alarm_id, until))


@router.post(
    "/alarms/{alarm_id}/unshelve",
    responses={404: {"description": "unknown alarm"}, 409: {"description": "not shelved"}},
)
def unshelve_alarm(
    alarm_id: int = Path(ge=1, le=2**31 - 1),
    who: Principal = Depends(require(Permission.ACK_ALARM)),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Put a shelved alarm back on the open list before its shelf expires."""

    def unshelve(s: Session, a: AlarmRow) -> None:
        if a.shelved_until is None:
            raise HTTPException(status.HTTP_409_CONFLICT, "not shelved")
        a.shelved_until = None
        svc.db.audit(s, who.username, "alarm.unshelve", a.intersection_id, alarm_id=a.id, why="by hand")

    return _operate(svc, alarm_id, unshelve, lambda r: r.set_shelved(alarm_id, None))


@router.post("/alarms/{alarm_id}/ack", responses=_UNACKED)
def ack_alarm(
    body: AckIn,
    alarm_id: int = Path(ge=1, le=2**31 - 1),
    who: Principal = Depends(require(Permission.ACK_ALARM)),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Acknowledge: stamps the user, the time and the note. The alarm stays listed until also cleared."""

    def ack(s: Session, a: AlarmRow) -> None:
        if a.acked_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"already acknowledged by {a.acked_by}")
        a.acked_at, a.acked_by, a.ack_note = utcnow(), who.username, body.note
        svc.db.audit(s, who.username, "alarm.ack", a.intersection_id, alarm_id=a.id, code=a.code, note=body.note)

    return _operate(svc, alarm_id, ack, lambda r: r.note_ack(alarm_id))


@router.get("/audit")
def audit(
    username: str | None = Query(None, min_length=1, max_length=64),
    action: str | None = Query(None, min_length=1, max_length=64, description="exact, or a prefix ending in '.'"),
    target: str | None = Query(None, min_length=1, max_length=128),
    since: datetime | None = Query(None),
    limit: int = Query(200, ge=1, le=5000),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> list[dict[str, Any]]:
    """The append-only audit log, newest first: who did what, to what, when."""
    with svc.db.session() as s:
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if username:
            q = q.where(AuditEntry.username == username)
        if action:
            q = q.where(AuditEntry.action.startswith(action) if action.endswith(".") else AuditEntry.action == action)
        if target:
            q = q.where(AuditEntry.target == target)
        if since is not None:
            q = q.where(AuditEntry.at >= since)
        return [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "username": e.username,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            }
            for e in s.scalars(q)
        ]
