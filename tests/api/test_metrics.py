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
    """#17: a field backend waits for the next tick inside advance(); that wait is its own series."""
    import time
    from types import SimpleNamespace

    from api.server.live import EngineRunner
    from api.server.metrics import Metrics

    runner = EngineRunner.__new__(EngineRunner)
    runner.metrics = Metrics()
    backend = SimpleNamespace(read=lambda: "obs", advance=lambda: time.sleep(0.05))
    runner._time_backend_reads(backend)
    runner._tick_wait_s = 0.0
    assert backend.read() == "obs"
    backend.advance()
    assert runner._tick_wait_s >= 0.05
    text = runner.metrics.exposition(ticks=1, up=True, intersections=1, alarms_open={})
    assert "# TYPE greenwave_tick_wait_seconds histogram" in text
    assert "greenwave_tick_seconds Engine time of one tick" in text.replace("# HELP ", "")
