"""Persistence: SQLAlchemy 2 models, the database engine and Alembic migrations.

Tables (migrations in ``api/server/migrations``; :func:`migrate` runs them):

``users``           accounts with a role and a scrypt password hash (:mod:`api.server.auth`)
``tokens``          bearer tokens, stored as keyed digests, with expiry and revocation
``intersections``   the network's intersections, their standing mode and active plan
``plan_versions``   every saved timing plan: who, when, comment, JSON, diff against the previous
``schedules``       time-of-day entries per intersection (plan version, or adaptive)
``commands``        operator commands with expiry, status and who cancelled them
``alarms``          raised/cleared by the engine, acknowledged by users with a note
``audit_log``       append-only: database triggers refuse UPDATE and DELETE
``approvals``       proposed plan/schedule activations and the second engineer's decision
``kpi_samples``     KPI intervals of every intersection (history, kept ``history_days``)
``event_chunks``    controller high-resolution events (Indiana codes), one compressed
                    blob per intersection and flush, not one row per event (as UDOT
                    ATSPM 5 stores them: ``CompressedDataBase``)

SQLite (the default) runs in WAL mode with a busy timeout and foreign keys on;
the same code runs on PostgreSQL (``--database-url postgresql+psycopg://...``).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

__all__ = [
    "Base",
    "User",
    "Token",
    "IntersectionRow",
    "PlanVersion",
    "ScheduleEntry",
    "CommandRow",
    "AlarmRow",
    "AuditEntry",
    "EventChunk",
    "Approval",
    "KpiSample",
    "Database",
    "utcnow",
    "encode_events",
    "decode_events",
    "EVENT_CODEC",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
EVENT_CODEC = "gw1-zlib"  # int32 tenths of a second from start, int16 code, int16 param; column-wise


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="system")


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class IntersectionRow(Base):
    __tablename__ = "intersections"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    x_m: Mapped[float] = mapped_column(Float, default=0.0)
    y_m: Mapped[float] = mapped_column(Float, default=0.0)
    model: Mapped[dict[str, Any]] = mapped_column(default=dict)  # groups, stages, detectors (display)
    standing_mode: Mapped[str] = mapped_column(String(16), default="adaptive")  # adaptive | fixed
    active_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plan_versions.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlanVersion(Base):
    __tablename__ = "plan_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intersection_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128), default="")
    plan: Mapped[dict[str, Any]]
    comment: Mapped[str] = mapped_column(Text, default="")
    diff: Mapped[list[Any]] = mapped_column(default=list)
    previous_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduleEntry(Base):
    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intersection_id: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[str] = mapped_column(String(5))  # HH:MM, controller clock
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plan_versions.id"), nullable=True)  # None: adaptive
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommandRow(Base):
    __tablename__ = "commands"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intersection_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # adaptive | fixed_plan | flash | hold
    plan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | expired | cancelled
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AlarmRow(Base):
    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intersection_id: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(32))  # comm_loss, mmu_fault, controller_fault, detector_fault
    rsmp: Mapped[str] = mapped_column(String(8), default="")  # RSMP SXL alarm code (A0007, ...)
    severity: Mapped[int] = mapped_column(Integer)  # 1 critical, 2 high, 3 medium
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ack_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    shelved_until: Mapped[datetime | None] = mapped_column(nullable=True)
    shelved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EventChunk(Base):
    __tablename__ = "event_chunks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intersection_id: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(String(16), default=EVENT_CODEC)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (Index("ix_event_chunks_inter_time", "intersection_id", "start_at", "end_at"),)


class Approval(Base):
    """A proposed activation (a plan version, or a time-of-day schedule) awaiting a second engineer."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # plan | schedule
    plan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    intersections: Mapped[list[Any]] = mapped_column(default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # schedule entries
    comment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class KpiSample(Base):
    """One KPI interval of every intersection (arrays in network order, ids alongside)."""

    __tablename__ = "kpi_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    sim_t_s: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


# ---- event blobs --------------------------------------------------------------------


def encode_events(offset_s: np.ndarray, code: np.ndarray, param: np.ndarray) -> bytes:
    """Column-wise packing of one chunk: tenths of a second from the chunk start, code, param.

    8 bytes per event before zlib; the time column compresses well because it
    is sorted and dense.
    """
    ds = np.round(np.asarray(offset_s, float) * 10).astype("<i4")
    raw = ds.tobytes() + np.asarray(code).astype("<i2").tobytes() + np.asarray(param).astype("<i2").tobytes()
    return zlib.compress(raw, 6)


def decode_events(data: bytes, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(offset_s float64, code int16, param int16)`` of one chunk."""
    raw = zlib.decompress(data)
    ds = np.frombuffer(raw, "<i4", count, 0)
    code = np.frombuffer(raw, "<i2", count, 4 * count)
    param = np.frombuffer(raw, "<i2", count, 6 * count)
    return ds.astype(float) / 10.0, code.astype(np.int16), param.astype(np.int16)


# ---- engine and session -----------------------------------------------------------


class Database:
    """The SQLAlchemy engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                _private_file(Path(path))
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: SAEngine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        s = self.sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def audit(self, s: Session, username: str, action: str, target: str = "", **detail: Any) -> AuditEntry:
        """Append one audit row in the caller's transaction."""
        entry = AuditEntry(username=username, action=action, target=target, detail=_jsonable(detail))
        s.add(entry)
        return entry

    def dispose(self) -> None:
        self.engine.dispose()


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600) before SQLite opens it, and tighten an
    existing one: it holds password hashes, token digests and the audit log. SQLite gives its -wal and
    -shm files the main file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def first_user_exists(db: Database) -> bool:
    with db.session() as s:
        return s.scalar(select(User.id).limit(1)) is not None
