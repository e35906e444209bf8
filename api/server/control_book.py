"""What each intersection should run: the operator's standing choice, the schedule and commands.

Three sources decide an intersection's :class:`~api.server.control.Control`, the stronger last:

* the **standing** control an operator set (adaptive, or a fixed plan: ``IntersectionRow``);
* the **time-of-day schedule** (``ScheduleEntry`` rows, ``HH:MM`` starts), which replaces the
  standing control whenever one of its entries comes due on the controller clock;
* **commands** (``CommandRow``: a fixed plan, a stage hold or flash, each with its expiry); the
  newest active command of an intersection wins, and an expired one ends by itself.

The book is loaded from the database at start (commands that expired while the service was
down are closed then) and kept by the operations the API posts; the engine thread asks it each
tick what every intersection should run (:meth:`ControlBook.wanted`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.server.control import ADAPTIVE, Control, ControlKind
from api.server.db import CommandRow, Database, IntersectionRow, PlanVersion, ScheduleEntry
from intersections.plan import plan_from_json

__all__ = ["ControlBook", "minutes"]


def minutes(hhmm: str) -> int:
    """Minutes after midnight of ``HH:MM``."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class ControlBook:
    """Standing controls, schedules and active commands of a network's intersections (rows)."""

    def __init__(self, db: Database, ids: Sequence[str]) -> None:
        self.db = db
        self.ids = list(ids)
        self.standing: list[Control] = [ADAPTIVE] * len(self.ids)
        self.schedules: dict[int, list[tuple[int, Control]]] = {}  # row -> (minute, control), by minute
        self._sched_idx: dict[int, int] = {}  # row -> the schedule entry in force
        self.commands: dict[int, tuple[int, Control]] = {}  # command id -> (row, control)

    # ---- loading -------------------------------------------------------------------------------
    def load(self, s: Session, now: datetime) -> None:
        """Standing controls, schedules and unexpired commands from the database (expired ones closed)."""
        ids = self.ids
        for r, iid in enumerate(ids):
            row = s.get(IntersectionRow, iid)
            if row is not None and row.standing_mode == "fixed" and row.active_plan_id is not None:
                self.standing[r] = self._plan_control(s, row.active_plan_id, "standing") or ADAPTIVE
        for e in s.scalars(select(ScheduleEntry).order_by(ScheduleEntry.id)):
            if e.intersection_id in ids:
                r = ids.index(e.intersection_id)
                c = (
                    self._plan_control(s, e.plan_id, "schedule")
                    if e.plan_id
                    else Control(ControlKind.ADAPTIVE, "schedule")
                )
                if c is not None:
                    self.schedules.setdefault(r, []).append((minutes(e.start), c))
        for v in self.schedules.values():
            v.sort(key=lambda x: x[0])
        for cmd in s.scalars(select(CommandRow).where(CommandRow.status == "active")):
            if cmd.intersection_id not in ids:
                continue
            if cmd.expires_at <= now:
                self._end_command_row(s, cmd, "expired", "system", now)
                continue
            self.commands[cmd.id] = (ids.index(cmd.intersection_id), self._command_control(s, cmd))

    def _plan_control(self, s: Session, plan_id: int, source: str, **kw: Any) -> Control | None:
        pv = s.get(PlanVersion, plan_id)
        if pv is None:
            return None
        return Control(
            ControlKind.FIXED, source=source, plan_id=pv.id, plan_version=pv.version, plan=plan_from_json(pv.plan), **kw
        )

    def _command_control(self, s: Session, c: CommandRow) -> Control:
        if c.kind == "fixed_plan" and c.plan_id is not None:
            pc = self._plan_control(s, c.plan_id, "command", command_id=c.id, expires_at=c.expires_at)
            if pc is not None:
                return pc
        kind = {"flash": ControlKind.FLASH, "hold": ControlKind.HOLD}.get(c.kind, ControlKind.ADAPTIVE)
        return Control(kind, "command", stage=c.stage, command_id=c.id, expires_at=c.expires_at)

    def _end_command_row(self, s: Session, c: CommandRow, status: str, by: str, now: datetime) -> None:
        c.status, c.ended_at, c.ended_by = status, now, by
        self.db.audit(s, by, f"command.{status}", c.intersection_id, command_id=c.id, kind=c.kind)

    # ---- the operations the API posts ----------------------------------------------------------
    def set_standing(self, r: int, control: Control) -> None:
        self.standing[r] = control

    def add_command(self, command_id: int, r: int, control: Control) -> None:
        self.commands[command_id] = (r, control)

    def end_command(self, command_id: int) -> None:
        self.commands.pop(command_id, None)

    def set_schedule(self, r: int, entries: list[tuple[str, Control]]) -> None:
        """Replace row ``r``'s schedule (``HH:MM`` start, control); an empty list removes it."""
        if entries:
            self.schedules[r] = sorted(((minutes(t), c) for t, c in entries), key=lambda x: x[0])
        else:
            self.schedules.pop(r, None)
        self._sched_idx.pop(r, None)

    # ---- each tick -----------------------------------------------------------------------------
    def expire(self, now: datetime) -> list[tuple[int, str]]:
        """End the commands whose expiry has passed; (command id, intersection) of each one closed in the database."""
        expired = [cid for cid, (_r, c) in self.commands.items() if c.expires_at is not None and c.expires_at <= now]
        ended: list[tuple[int, str]] = []
        if expired:
            with self.db.session() as s:
                for cid in expired:
                    self.commands.pop(cid)
                    row = s.get(CommandRow, cid)
                    if row is not None and row.status == "active":
                        self._end_command_row(s, row, "expired", "system", now)
                        ended.append((cid, row.intersection_id))
        return ended

    def wanted(self, minute_now: Callable[[], int]) -> list[Control]:
        """What each row should run now: its newest command, else its standing control as the schedule set it.

        ``minute_now`` gives the controller clock's minute of the day; it is asked only when
        some intersection has a schedule.
        """
        if self.schedules:
            minute = minute_now()
            for r, entries in self.schedules.items():
                idx = max((k for k, (m, _c) in enumerate(entries) if m <= minute), default=len(entries) - 1)
                if self._sched_idx.get(r) != idx:
                    self._sched_idx[r] = idx
                    self.standing[r] = entries[idx][1]
        newest: dict[int, tuple[int, Control]] = {}
        for cid, (r, c) in self.commands.items():
            if r not in newest or cid > newest[r][0]:
                newest[r] = (cid, c)
        return [newest[r][1] if r in newest else self.standing[r] for r in range(len(self.standing))]
