"""Prometheus metrics and structured (JSON) logs for the control centre.

``GET /metrics`` answers in the Prometheus text exposition format (version
0.0.4), written by hand: a few series do not justify a client library.

* ``greenwave_tick_seconds`` (histogram): engine time of one tick (read ->
  estimate -> policy -> supervisor -> write), the real-time wait left out:
  the series to alert on for engine latency;
* ``greenwave_tick_wait_seconds`` (histogram): the wait for the next tick in
  real time inside the backend's ``advance`` (field backends; 0 for the
  simulated twin, which is paced outside the tick);
* ``greenwave_backend_read_seconds`` (histogram): wall time of the backend's
  ``read`` (SUMO detectors, or a poll of every field controller): the backend
  latency;
* ``greenwave_ticks_total`` (counter), ``greenwave_engine_up`` (gauge),
  ``greenwave_intersections`` (gauge), ``greenwave_alarms_open`` (gauge, by
  kind): alarms raised and not cleared.

:class:`JsonFormatter` turns log records into one JSON object per line
(time, level, logger, message, and any ``extra`` fields), for log shippers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["Histogram", "Metrics", "JsonFormatter", "configure_json_logging"]

TICK_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    """A cumulative-bucket histogram, thread-safe (observed by the engine, read by the API)."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = TICK_BUCKETS_S) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.total += 1
            self.sum += value
            for i, b in enumerate(self.buckets):
                if value <= b:
                    self.counts[i] += 1

    def exposition(self) -> list[str]:
        with self._lock:
            lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
            for b, c in zip(self.buckets, self.counts, strict=True):
                lines.append(f'{self.name}_bucket{{le="{b:g}"}} {c}')
            lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.total}')
            lines.append(f"{self.name}_sum {self.sum:.6f}")
            lines.append(f"{self.name}_count {self.total}")
            return lines


class Metrics:
    def __init__(self) -> None:
        self.tick = Histogram("greenwave_tick_seconds", "Engine time of one tick (the real-time wait left out).")
        self.tick_wait = Histogram(
            "greenwave_tick_wait_seconds", "Wait for the next tick in real time (field backends).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0),
        )  # fmt: skip
        self.backend_read = Histogram("greenwave_backend_read_seconds", "Wall time of one backend read (latency).")

    def exposition(self, *, ticks: int, up: bool, intersections: int, alarms_open: dict[str, int]) -> str:
        lines = [*self.tick.exposition(), *self.tick_wait.exposition(), *self.backend_read.exposition()]
        lines += ["# HELP greenwave_ticks_total Engine ticks since start.", "# TYPE greenwave_ticks_total counter",
                  f"greenwave_ticks_total {ticks}"]  # fmt: skip
        lines += ["# HELP greenwave_engine_up 1 while the engine ticks.", "# TYPE greenwave_engine_up gauge",
                  f"greenwave_engine_up {int(up)}"]  # fmt: skip
        lines += ["# HELP greenwave_intersections Intersections under control.",
                  "# TYPE greenwave_intersections gauge", f"greenwave_intersections {intersections}"]  # fmt: skip
        lines += ["# HELP greenwave_alarms_open Alarms raised and not cleared.", "# TYPE greenwave_alarms_open gauge"]
        for kind, n in sorted(alarms_open.items()) or [("all", 0)]:
            lines.append(f'greenwave_alarms_open{{kind="{kind}"}} {n}')
        return "\n".join(lines) + "\n"


class JsonFormatter(logging.Formatter):
    _skip = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in self._skip and not k.startswith("_"):
                doc[k] = v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_json_logging(level: int = logging.INFO, *, everything: bool = False) -> None:
    """Send the ``greenwave`` loggers to stderr as JSON lines; with ``everything``, every logger.

    ``everything`` puts the JSON handler on the root logger and makes uvicorn's loggers (and any
    other library's that has its own handlers) propagate to it, and captures ``warnings``, so that a
    traceback from uvicorn or a library is one JSON line with an ``exception`` field, not raw text
    that breaks a log shipper's parser. uvicorn must then be started with ``log_config=None``.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("greenwave")
    log.setLevel(level)
    if not everything:
        log.handlers[:] = [handler]
        log.propagate = False
        return
    log.handlers[:] = []
    log.propagate = True
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "sqlalchemy", "alembic", "asyncio",
                 *logging.root.manager.loggerDict):  # fmt: skip
        other = logging.getLogger(name)
        if other is not log:
            other.handlers[:] = []
            other.propagate = True
    logging.captureWarnings(True)
