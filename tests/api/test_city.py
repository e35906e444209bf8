"""The control centre on a city scenario: ``greenwave serve --scenario <city>`` runs the twin in meso, accelerated.

The city defaults are settings (quick); the end-to-end check starts ``greenwave serve`` in a
subprocess on ``hanoi_city_small`` (~130 signals, the same generator and definition format as
``hanoi_city``; built in seconds), with no flag but the scenario, and reads what an operator's
dashboard reads. The dashboard at 1,000+ intersections is ``test_map.py``'s fluid-map test and
``benchmarks/bench_api.py --scenario hanoi_city``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CITY = "hanoi_city_small"


def test_a_city_scenario_runs_as_a_city_twin_unless_told_otherwise(tmp_path: Path) -> None:
    from api.server.settings import load_settings

    s = load_settings(data_dir=tmp_path, scenario="hanoi_city")
    assert (s.backend, s.model, s.speed, s.live_max_hz) == ("sumo", "meso", 10.0, 1.0) and not s.startup_problems()
    s = load_settings(data_dir=tmp_path, scenario="hanoi_city", model="micro", speed=2.0)
    assert (s.backend, s.model, s.speed) == ("sumo", "micro", 2.0)
    s = load_settings(data_dir=tmp_path, scenario="demo")
    assert (s.backend, s.model, s.live_max_hz) == ("modbus", "micro", None)
    # Given explicitly, the emulated cabinets stay, and meso with them is refused in one line.
    s = load_settings(data_dir=tmp_path, scenario=CITY, backend="modbus", model="meso")
    assert [p.split(":")[0] for p in s.startup_problems()] == ["model"]


@pytest.fixture(scope="module")
def city_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data = tmp_path_factory.mktemp("city-serve")
    cmd = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", "serve", "--port", "0",
           "--data-dir", str(data), "--scenario", CITY]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENWAVE_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        assert lines[0].startswith("greenwave control centre: http://"), lines[0] + (
            proc.stdout.read() if proc.poll() is not None else ""
        )
        url = lines[0].split(": ", 1)[1].strip().rstrip("/")
        while "engine:" not in lines[-1]:
            lines.append(proc.stdout.readline())
        deadline = time.monotonic() + 180  # builds the city (cached), reads its net, starts SUMO
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=30).status_code == 200:
                    break
            except httpx.TimeoutException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the city twin did not start"
            time.sleep(0.5)
        yield url, "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # pragma: no cover - never seen; do not leave it behind
            proc.kill()
            proc.communicate()


@pytest.mark.sumo
@pytest.mark.slow
def test_serve_a_city_runs_the_meso_twin_accelerated(city_server: tuple[str, str]) -> None:
    url, banner = city_server
    assert "engine: sumo backend (meso), scenario hanoi_city_small" in banner and "speed 10x" in banner, banner
    tok = httpx.post(f"{url}/api/auth/login", json={"username": "viewer", "password": "greenwave"}).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    with httpx.Client(base_url=url, headers=h, timeout=30) as c:
        first = c.get("/api/status").json()
        assert (first["backend"], first["model"], first["speed"]) == ("sumo", "meso", 10.0)
        net = c.get("/api/network").json()
        assert 100 <= len(net["intersections"]) <= 200 and len(net["edges"]) > 300
        t0 = time.monotonic()
        time.sleep(4.0)
        last = c.get("/api/status").json()
        rate = (last["sim_time_s"] - first["sim_time_s"]) / (time.monotonic() - t0)
        snap = c.get("/api/snapshot").json()
    # Accelerated: speed 10 asks ten simulated seconds a second; a busy 2-core CI still gives well over 3.
    assert rate > 3.0, f"the city twin ran {rate:.1f} x real time"
    assert last["by_status"].get("adaptive", 0) == len(net["intersections"]) == len(snap["intersections"])
    assert len(snap["roads"]["level"]) == len(net["edges"])
    # Meso has no lane-area detectors: queues are estimated from loop counts, a number for every signal.
    queues = [v["queue_veh"] for v in snap["intersections"].values()]
    assert all(isinstance(q, float) and q == q and q >= 0 for q in queues), sorted(set(map(str, queues)))[:10]
    assert last["sim_time_s"] > 30, last


@pytest.mark.sumo
@pytest.mark.slow
@pytest.mark.browser
def test_the_dashboard_shows_the_city_twin(city_server: tuple[str, str]) -> None:
    """Debian's Chromium on the meso twin: every signal on the map, live, and the pill says meso."""
    chromium = "/usr/bin/chromium"
    if not Path(chromium).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{chromium} is missing: ./dev test installs Debian's chromium")
        pytest.skip(f"{chromium} not installed")
    from playwright.sync_api import sync_playwright

    url, _ = city_server
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page(viewport={"width": 1400, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith((url, "data:")) else errors.append(r.url))
            page.goto(f"{url}/")
            page.fill("#login-user", "viewer")
            page.fill("#login-pass", "greenwave")
            page.click("#login-submit")
            page.wait_for_selector(".marker[data-status=adaptive]", state="attached", timeout=60_000)
            n = len(httpx.get(f"{url}/api/network", headers={"Authorization": "Bearer " + page.evaluate("S.token")},
                              timeout=30).json()["intersections"])  # fmt: skip
            first = page.evaluate("S.snap.seq")
            page.wait_for_timeout(2500)  # one live frame a second (live_max_hz)
            assert page.evaluate("S.snap.seq") > first, "no live frame in 2.5 s"
            assert page.eval_on_selector_all(".marker[data-status=adaptive]", "(e) => e.length") == n
            assert page.eval_on_selector_all("#map polyline.road[data-level]", "(e) => e.length") > 300
            assert "meso" in (page.text_content("#engine-pill") or "")
            assert page.text_content("#online") == f"{n}/{n} online"
            assert not errors, errors
        finally:
            b.close()
