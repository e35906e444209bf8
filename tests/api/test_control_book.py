"""What each intersection runs after a restart, and each tick: the ControlBook on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from api.server.control import ADAPTIVE, Control, ControlKind
from api.server.control_book import ControlBook
from api.server.db import CommandRow, Database, IntersectionRow, PlanVersion, ScheduleEntry, utcnow
from intersections.plan import PlanStage, TimingPlan, plan_to_json

PLAN = TimingPlan("B", 60.0, 0.0, (PlanStage("S1", 25.0, 5.0), PlanStage("S2", 25.0, 5.0)))


def test_a_restart_restores_standing_schedule_and_unexpired_commands(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'book.db'}")
    db.migrate()
    now = utcnow()
    try:
        with db.session() as s:
            pv = PlanVersion(intersection_id="B", version=3, plan=plan_to_json(PLAN), created_by="eng")
            s.add(pv)
            s.flush()
            s.add(IntersectionRow(id="B", standing_mode="fixed", active_plan_id=pv.id))
            s.add(ScheduleEntry(intersection_id="C", start="07:30", plan_id=pv.id, created_by="eng"))
            s.add(ScheduleEntry(intersection_id="C", start="06:00", plan_id=None, created_by="eng"))
            s.add(CommandRow(id=7, intersection_id="A", kind="flash", created_by="op", expires_at=now - timedelta(1)))
            s.add(CommandRow(id=8, intersection_id="A", kind="hold", stage="S2", created_by="op",
                             expires_at=now + timedelta(hours=1)))  # fmt: skip
        book = ControlBook(db, ["A", "B", "C"])
        with db.session() as s:
            book.load(s, now)
        with db.session() as s:
            assert s.get(CommandRow, 7).status == "expired"  # expired while the service was down: closed
        assert book.standing[1].kind is ControlKind.FIXED and book.standing[1].plan_version == 3
        assert [m for m, _c in book.schedules[2]] == [360, 450]  # sorted by start
        wanted = book.wanted(lambda: 8 * 60)  # 08:00: the 07:30 entry is in force at C
        assert wanted[0].kind is ControlKind.HOLD and wanted[0].command_id == 8
        assert wanted[1] is book.standing[1]
        assert wanted[2].kind is ControlKind.FIXED and wanted[2].source == "schedule"
        assert book.wanted(lambda: 6 * 60 + 1)[2].kind is ControlKind.ADAPTIVE  # 06:01: the 06:00 entry
    finally:
        db.dispose()


def test_the_newest_command_wins_and_an_expired_one_ends_by_itself(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'book.db'}")
    db.migrate()
    now = utcnow()
    try:
        with db.session() as s:
            s.add(CommandRow(id=1, intersection_id="A", kind="flash", created_by="op", expires_at=now))
        book = ControlBook(db, ["A"])
        asked: list[int] = []
        book.add_command(1, 0, Control(ControlKind.FLASH, "command", command_id=1, expires_at=now))
        book.add_command(2, 0, Control(ControlKind.HOLD, "command", stage="S1", command_id=2))
        assert book.wanted(lambda: asked.append(1) or 0)[0].command_id == 2  # the newest; no schedule: no clock
        assert asked == []
        assert book.expire(now) == [(1, "A")]
        with db.session() as s:
            assert s.get(CommandRow, 1).status == "expired"
        book.end_command(2)
        assert book.wanted(lambda: 0) == [ADAPTIVE]
    finally:
        db.dispose()
