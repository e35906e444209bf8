"""Prometheus metrics and JSON logs."""

import json
import logging

import httpx

from api.server.metrics import Histogram, JsonFormatter


def test_histogram_exposition_is_cumulative() -> None:
    h = Histogram("x_seconds", "test", buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 2.0):
        h.observe(v)
    text = "\n".join(h.exposition())
    assert 'x_seconds_bucket{le="0.1"} 1' in text
    assert 'x_seconds_bucket{le="1"} 2' in text
    assert 'x_seconds_bucket{le="+Inf"} 3' in text
    assert "x_seconds_count 3" in text and "x_seconds_sum 2.550000" in text


def test_metrics_endpoint_reports_ticks_and_latency(live, tokens) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(f"{live.url}/metrics", timeout=10).status_code == 401  # not for anyone (#17)
    body = httpx.get(f"{live.url}/metrics", timeout=10, headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("text/plain")
    text = body.text
    assert "# TYPE greenwave_tick_seconds histogram" in text
    assert "greenwave_engine_up 1" in text
    count = [ln for ln in text.splitlines() if ln.startswith("greenwave_backend_read_seconds_count")]
    assert count and int(count[0].split()[1]) >= 1
    ticks = [ln for ln in text.splitlines() if ln.startswith("greenwave_ticks_total")]
    assert int(ticks[0].split()[1]) >= 1
    assert "greenwave_alarms_open{" in text


def test_json_log_lines() -> None:
    rec = logging.LogRecord("greenwave.engine", logging.WARNING, __file__, 1, "J1 %s", ("refused",), None)
    rec.intersection = "J1"
    doc = json.loads(JsonFormatter().format(rec))
    assert doc["level"] == "warning" and doc["logger"] == "greenwave.engine"
    assert doc["message"] == "J1 refused" and doc["intersection"] == "J1"


def test_tick_metric_leaves_the_real_time_wait_out() -> None:
    """#17: a field backend waits for the next tick inside advance(); the centre's backend times that wait
    and every read through its callbacks (a wrapper, not a patch), and the wait is its own series."""
    import time
    from pathlib import Path

    from api.server.control import CentreBackend
    from api.server.metrics import Metrics
    from controller.backend import FakeBackend
    from intersections.loaders import load_inventory

    class WaitingBackend(FakeBackend):  # a field backend's advance: a wait for real time
        def advance(self) -> float:
            time.sleep(0.05)
            return super().advance()

    example = Path(__file__).resolve().parents[2] / "examples" / "intersection.toml"
    metrics, waits, reads = Metrics(), [], []
    backend = CentreBackend(WaitingBackend(load_inventory(example)), on_read=reads.append, on_wait=waits.append)
    backend.open()
    try:
        assert backend.read().time_s == 0.0
        backend.advance()
    finally:
        backend.close()
    assert len(reads) == 1 and 0.0 <= reads[0] < 0.05
    assert len(waits) == 1 and waits[0] >= 0.05
    metrics.tick_wait.observe(waits[0])
    text = metrics.exposition(ticks=1, up=True, intersections=1, alarms_open={})
    assert "# TYPE greenwave_tick_wait_seconds histogram" in text and "greenwave_tick_wait_seconds_count 1" in text
    assert "greenwave_tick_seconds Engine time of one tick" in text.replace("# HELP ", "")
