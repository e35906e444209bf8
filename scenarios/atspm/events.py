"""The event table every measure reads: Indiana hi-res events as numpy columns.

One table per log, whatever wrote it (greenwave's SUMO runs, the field
emulators, a real controller's log once decoded): columns ``time_s``
(seconds since :attr:`EventTable.origin`), ``device`` (index into
:attr:`EventTable.devices`), ``code`` (Indiana event code) and ``param``
(phase number, detector channel, pattern, ... by code), sorted by time and
then by code, as ``controller.events.EventRecorder.table`` sorts them.

Files: the ATSPM four-column layout ``TimeStamp,DeviceId,EventId,Parameter``
(``controller.events.EventRecorder.write_csv``; also what the Python ``atspm``
package, pandas and DuckDB read), plain or gzip-compressed CSV, timestamps in
ISO 8601. Parquet files with the same columns are read when ``pyarrow`` is
installed (it is optional).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from controller.events import EPOCH, EventCode
from intersections.errors import InputError

__all__ = ["EventTable", "read_events", "EventCode", "COLUMNS"]

COLUMNS = ("TimeStamp", "DeviceId", "EventId", "Parameter")


@dataclass(frozen=True, eq=False)
class EventTable:
    """Indiana events as columns; see the module docstring."""

    time_s: np.ndarray
    device: np.ndarray
    code: np.ndarray
    param: np.ndarray
    devices: tuple[str, ...]
    origin: datetime = EPOCH

    def __post_init__(self) -> None:
        n = len(self.time_s)
        if not (len(self.device) == len(self.code) == len(self.param) == n):
            raise ValueError("event columns differ in length")

    def __len__(self) -> int:
        return len(self.time_s)

    @classmethod
    def from_records(cls, records: Iterable[tuple[float, str, int, int]], *, origin: datetime = EPOCH) -> EventTable:
        """Build from ``(time_s, device_id, code, param)`` rows (hand-made logs, tests)."""
        rows = list(records)
        devices = tuple(dict.fromkeys(r[1] for r in rows))
        index = {d: k for k, d in enumerate(devices)}
        t = np.array([float(r[0]) for r in rows], dtype=float)
        dev = np.array([index[r[1]] for r in rows], dtype=np.int32)
        code = np.array([int(r[2]) for r in rows], dtype=np.int16)
        param = np.array([int(r[3]) for r in rows], dtype=np.int16)
        return cls._sorted(t, dev, code, param, devices, origin)

    @classmethod
    def _sorted(
        cls,
        t: np.ndarray,
        dev: np.ndarray,
        code: np.ndarray,
        param: np.ndarray,
        devices: tuple[str, ...],
        origin: datetime,
    ) -> EventTable:
        order = np.lexsort((code, t))
        return cls(t[order], dev[order], code[order], param[order], devices, origin)

    def where(self, mask: np.ndarray) -> EventTable:
        return EventTable(
            self.time_s[mask], self.device[mask], self.code[mask], self.param[mask], self.devices, self.origin
        )

    def for_device(self, device_id: str) -> EventTable:
        """The events of one intersection (controller)."""
        if device_id not in self.devices:
            known = ", ".join(self.devices[:10]) + (" ..." if len(self.devices) > 10 else "")
            raise InputError(f"no events for intersection {device_id!r} (the log has: {known or 'none'})")
        return self.where(self.device == self.devices.index(device_id))

    def is_code(self, *codes: int) -> np.ndarray:
        return np.isin(self.code, np.asarray(codes, dtype=np.int16))

    def phases(self) -> list[int]:
        """Phase numbers that show a green (code 1), ascending."""
        return sorted(int(p) for p in np.unique(self.param[self.code == EventCode.BEGIN_GREEN]))

    @property
    def start_s(self) -> float:
        return float(self.time_s[0]) if len(self) else 0.0

    @property
    def end_s(self) -> float:
        return float(self.time_s[-1]) if len(self) else 0.0

    def datetime_of(self, t_s: float) -> datetime:
        return self.origin + timedelta(seconds=float(t_s))


def _parse_times(stamps: Sequence[str], where: str) -> tuple[np.ndarray, datetime]:
    try:
        ts = np.array(stamps, dtype="datetime64[ms]")
    except ValueError:
        try:
            ts = np.array(
                [np.datetime64(datetime.fromisoformat(s.strip()), "ms") for s in stamps], dtype="datetime64[ms]"
            )
        except ValueError as e:
            raise InputError(f"unreadable TimeStamp (ISO 8601 expected): {e}", where=where) from None
    if not len(ts):
        return np.zeros(0), EPOCH
    day = ts.min().astype("datetime64[D]")
    origin = datetime.fromisoformat(str(day))
    return (ts - day.astype("datetime64[ms]")).astype(np.int64) / 1000.0, origin


def read_events(path: str | Path) -> EventTable:
    """Read an event file (``.csv``, ``.csv.gz`` or ``.parquet``) into an :class:`EventTable`.

    Times are seconds since midnight of the first event's day (:attr:`EventTable.origin`).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("event file not found", where=str(p))
    if p.suffix == ".parquet":
        return _read_parquet(p)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            header = [h.strip() for h in f.readline().strip().split(",")]
            if header != list(COLUMNS):
                raise InputError(f"not an ATSPM event file: header {header}, expected {list(COLUMNS)}", where=str(p))
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"cannot read the event file: {e}", where=str(p)) from None
    rows = [ln.split(",") for ln in lines if ln.strip()]
    bad = next((k for k, r in enumerate(rows) if len(r) != 4), None)
    if bad is not None:
        raise InputError(f"line {bad + 2}: expected 4 columns, got {len(rows[bad])}", where=str(p))
    if not rows:
        return EventTable(np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int16), np.zeros(0, np.int16), ())
    cols = list(zip(*rows, strict=True))
    t, origin = _parse_times(cols[0], str(p))
    devices, dev = np.unique(np.array(cols[1]), return_inverse=True)
    try:
        code = np.array(cols[2], dtype=np.int64).astype(np.int16)
        param = np.array(cols[3], dtype=np.int64).astype(np.int16)
    except ValueError as e:
        raise InputError(f"EventId and Parameter must be integers: {e}", where=str(p)) from None
    return EventTable._sorted(t, dev.astype(np.int32), code, param, tuple(str(d) for d in devices), origin)


def _read_parquet(p: Path) -> EventTable:
    try:
        import pyarrow.parquet as pq  # optional
    except ImportError:
        raise InputError(
            "reading Parquet needs pyarrow (pip install pyarrow); or use the .csv.gz log", where=str(p)
        ) from None
    tab = pq.read_table(p, columns=list(COLUMNS))
    stamps = tab.column("TimeStamp").cast("timestamp[ms]").to_numpy()
    day = stamps.min().astype("datetime64[D]") if len(stamps) else np.datetime64("2026-01-01")
    t = (stamps - day.astype("datetime64[ms]")).astype(np.int64) / 1000.0
    devices, dev = np.unique(np.asarray(tab.column("DeviceId").to_pylist(), dtype=str), return_inverse=True)
    return EventTable._sorted(
        t,
        dev.astype(np.int32),
        tab.column("EventId").to_numpy().astype(np.int16),
        tab.column("Parameter").to_numpy().astype(np.int16),
        tuple(str(d) for d in devices),
        datetime.fromisoformat(str(day)),
    )
