"""The control centre's alarms: raised and cleared from the engine's conditions, acknowledged,
shelved and escalated (ISA-18.2 alarm management).

One job of the control centre, apart from the engine runner that hands it each tick's
conditions per intersection (communication lost, supervisor fault flash, controller fault,
detector fault). Every change is a database row and an audit entry, a high-resolution event
(``ALARM_ON``/``ALARM_OFF``) and an item on the live feed, in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.server.db import AlarmRow, Database, utcnow
from controller.events import EventCode

__all__ = ["ALARM_TYPES", "AlarmBook", "alarm_public"]

# code -> (severity 1 critical .. 3 medium, RSMP SXL alarm, message)
ALARM_TYPES: dict[str, tuple[int, str, str]] = {
    "mmu_fault": (1, "A0006", "safety supervisor latched fault flash (conflict or timing violation)"),
    "comm_loss": (2, "A0007", "communication lost: the controller does not answer"),
    "controller_fault": (2, "A0001", "controller reports a fault or local control"),
    "detector_fault": (3, "A0301", "detector fault: no valid data"),
}

Emit = Callable[[float, int, int, int], None]  # (time_s, row, event code, parameter): the hi-res event log
Publish = Callable[[str, dict[str, Any]], None]  # (kind, payload): the live feed


def alarm_public(a: AlarmRow) -> dict[str, Any]:
    """An alarm as the API and the live feed show it."""
    return {
        "id": a.id,
        "intersection": a.intersection_id,
        "code": a.code,
        "rsmp": a.rsmp,
        "severity": a.severity,
        "message": a.message,
        "raised_at": a.raised_at.isoformat() if a.raised_at else None,
        "cleared_at": a.cleared_at.isoformat() if a.cleared_at else None,
        "acked_at": a.acked_at.isoformat() if a.acked_at else None,
        "acked_by": a.acked_by,
        "ack_note": a.ack_note,
        "active": a.cleared_at is None,
        "shelved_until": a.shelved_until.isoformat() if a.shelved_until else None,
        "shelved_by": a.shelved_by,
        "escalated_at": a.escalated_at.isoformat() if a.escalated_at else None,
    }


class AlarmBook:
    """The alarms of the intersections ``ids`` (row order of the engine's arrays)."""

    def __init__(self, db: Database, ids: Sequence[str], publish: Publish) -> None:
        self.db, self.ids, self.publish = db, list(ids), publish
        self.open: dict[tuple[int, str], int] = {}  # (row, code) -> id of the alarm raised for it
        self.state: dict[int, tuple[int, bool, bool]] = {}  # id -> (row, active, acked), until cleared and acked
        self.shelved: dict[int, datetime] = {}  # id -> shelved until (wall clock)
        self.cond = {code: np.zeros(len(self.ids), bool) for code in ALARM_TYPES}

    def load(self, s: Session) -> None:
        """After a restart: alarms still unacknowledged and shelves still running (the caller has
        cleared the active ones; they are raised again if their condition persists)."""
        for a in s.scalars(select(AlarmRow).where(AlarmRow.acked_at.is_(None))):
            if a.intersection_id in self.ids:
                self.state[a.id] = (self.ids.index(a.intersection_id), False, False)
        for a in s.scalars(select(AlarmRow).where(AlarmRow.shelved_until.is_not(None))):
            if a.shelved_until is not None:  # as selected; the column is nullable
                self.shelved[a.id] = a.shelved_until

    def update(self, cond: Mapping[str, np.ndarray], t: float, emit: Emit) -> None:
        """This tick's conditions, one bool per row and code: raise what turned on, clear what turned off."""
        for code, now_on in cond.items():
            was = self.cond[code]
            if (now_on != was).any():
                for r in np.flatnonzero(now_on & ~was):
                    self._raise(int(r), code, t, emit)
                for r in np.flatnonzero(~now_on & was):
                    self._clear(int(r), code, t, emit)
                self.cond[code] = now_on.copy()

    def _raise(self, r: int, code: str, t: float, emit: Emit) -> None:
        sev, rsmp, msg = ALARM_TYPES[code]
        iid = self.ids[r]
        with self.db.session() as s:
            a = AlarmRow(intersection_id=iid, code=code, rsmp=rsmp, severity=sev, message=msg)
            s.add(a)
            s.flush()
            self.db.audit(s, "system", "alarm.raise", iid, alarm_id=a.id, code=code)
            payload = alarm_public(a)
        self.open[(r, code)] = a.id
        self.state[a.id] = (r, True, False)
        emit(t, r, EventCode.ALARM_ON, list(ALARM_TYPES).index(code) + 1)
        self.publish("alarm", payload)

    def _clear(self, r: int, code: str, t: float, emit: Emit) -> None:
        aid = self.open.pop((r, code), None)
        if aid is None:
            return
        with self.db.session() as s:
            a = s.get(AlarmRow, aid)
            if a is None:
                return
            a.cleared_at = utcnow()
            self.db.audit(s, "system", "alarm.clear", a.intersection_id, alarm_id=aid, code=code)
            payload = alarm_public(a)
            acked = a.acked_at is not None
        if acked:
            self.state.pop(aid, None)
        else:
            self.state[aid] = (r, False, False)
        emit(t, r, EventCode.ALARM_OFF, list(ALARM_TYPES).index(code) + 1)
        self.publish("alarm", payload)

    def note_ack(self, alarm_id: int) -> None:
        """An operator acknowledged ``alarm_id``: forgotten once also cleared."""
        if alarm_id in self.state:
            r, active, _ = self.state[alarm_id]
            if active:
                self.state[alarm_id] = (r, True, True)
            else:
                self.state.pop(alarm_id)

    def set_shelved(self, alarm_id: int, until: datetime | None) -> None:
        if until is None:
            self.shelved.pop(alarm_id, None)
        else:
            self.shelved[alarm_id] = until

    def open_by_row(self) -> np.ndarray:
        """Alarms to show per row: active or unacknowledged, and not shelved."""
        out = np.zeros(len(self.ids), int)
        for aid, (r, active, acked) in self.state.items():
            if (active or not acked) and aid not in self.shelved:
                out[r] += 1
        return out

    def check(self, now: datetime, escalate_after_s: float) -> None:
        """Escalate alarms left unacknowledged ``escalate_after_s``; return expired shelves to the list.

        Escalation raises the severity one step (medium -> high -> critical),
        stamps ``escalated_at``, audits it and pushes it to every dashboard, as
        an alarm management system's escalation to the supervisor does
        (ISA-18.2: shelved alarms are suppressed for a limited time only).
        """
        limit = now - timedelta(seconds=escalate_after_s)
        with self.db.session() as s:
            for aid, until in list(self.shelved.items()):
                if until <= now:
                    self.shelved.pop(aid)
                    a = s.get(AlarmRow, aid)
                    if a is not None and a.shelved_until is not None:
                        a.shelved_until = None
                        self.db.audit(s, "system", "alarm.unshelve", a.intersection_id, alarm_id=aid, why="expired")
                        self.publish("alarm", alarm_public(a))
            rows = s.scalars(
                select(AlarmRow).where(
                    AlarmRow.acked_at.is_(None), AlarmRow.escalated_at.is_(None), AlarmRow.raised_at <= limit
                )
            ).all()
            for a in rows:
                if a.id in self.shelved:
                    continue
                a.escalated_at = now
                a.severity = max(1, a.severity - 1)
                self.db.audit(s, "system", "alarm.escalate", a.intersection_id, alarm_id=a.id, severity=a.severity)
                self.publish("alarm", alarm_public(a))
