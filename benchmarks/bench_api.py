"""The control centre at city size: 1,024 intersections, the live snapshot under load, 200 live streams.

A 32 x 32 grid of signalised junctions (``netgenerate``, SUMO's own tool) runs
in ``greenwave serve`` on the in-memory backend (the engine, the safety
supervisor and the database are the real ones; only SUMO is left out, so the
figure is the service's and not the simulator's), in its own process, at one
tick per second. Load comes from other processes over real sockets on
127.0.0.1, HTTP/1.1 with keep-alive, as many clients on one site would poll:

* ``snapshot_rps_1024``: ``GET /api/snapshot`` (the whole live state, gzip, a
  valid bearer token on every request) completed per second by ``--conns``
  connections (default 32, from one process: on two cores a second load
  process competes with the server for its core) for ``--seconds`` seconds;
  every response is checked for status 200 and a full body;
* ``stream_clients``: ``--streams`` clients on ``/api/stream`` for
  ``--ticks`` ticks; a client "gets every tick" when the status frames it
  received carry consecutive sequence numbers with none missing;
* ``map_status_ms_p95`` (``--browser``): the dashboard in Debian's headless
  Chromium (``/usr/bin/chromium``; nothing downloaded) on the same city: the
  time to draw the map once, then for 20 s of live ticks the 95th percentile
  of the work one status tick costs the page (parse the frame, recolour the
  markers and roads that changed) and the long tasks (> 50 ms, the browser's
  own measure of a page that stutters).

The machine is shared (2 cores for the server, the load and everything else),
so the figure is a floor for a dedicated host. The last line is the headline::

    .venv/bin/python benchmarks/bench_api.py            # 1,024 intersections
    .venv/bin/python benchmarks/bench_api.py --grid 6   # a quick smoke run (36)
    .venv/bin/python benchmarks/bench_api.py --scenario hanoi_city --browser   # the city twin (meso)

With ``--scenario`` the server is ``greenwave serve --scenario CITY`` with no other setting: the
city's SUMO twin in the mesoscopic model at speed 10 (ten ticks a second), so the same figures
are taken on a real city's snapshot while the twin runs, plus ``city_twin_x_realtime`` (the
simulated seconds per wall second the twin kept up meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def build_grid(n: int, out: Path) -> Path:
    """An n x n grid of traffic-light junctions, 200 m apart, two lanes each way."""
    from simulation.sumo_home import sumo_binary

    net = out / f"grid{n}.net.xml"
    if not net.exists():
        subprocess.run(
            [sumo_binary("netgenerate"), "--grid", "--grid.number", str(n), "--grid.length", "200",
             "--grid.attach-length", "100", "--default-junction-type", "traffic_light",
             "--default.lanenumber", "2", "--no-turnarounds", "true", "-o", str(net)],
            check=True, capture_output=True,
        )  # fmt: skip
    return net


def start_server(net: Path | None, data: Path, scenario: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """``greenwave serve`` on ``net`` (in-memory backend, one tick a second) or on a city ``scenario``'s twin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENWAVE_")}
    env["GREENWAVE_EVENT_FLUSH_S"] = "5"
    if scenario is None:
        env.update(GREENWAVE_BACKEND="fake", GREENWAVE_NET_FILE=str(net), GREENWAVE_SPEED="1")
    cmd = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", "serve", "--port", "0",
           "--data-dir", str(data), "--log-level", "warning",
           *(["--scenario", scenario] if scenario else [])]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("greenwave control centre: http://"):
        proc.kill()
        raise RuntimeError("the server did not start: " + line + proc.stdout.read())
    url = line.split(": ", 1)[1].strip().rstrip("/")
    deadline = time.monotonic() + 300
    while httpx.get(f"{url}/healthz").status_code != 200:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the engine did not start")
        time.sleep(0.5)
    return proc, url


# ---- load: raw HTTP/1.1 over asyncio streams (a Python HTTP client would measure itself) -------------


async def _poll(host: str, port: int, request: bytes, stop_at: float, stats: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            m = re.search(rb"(?i)content-length: *(\d+)", head)
            body = await reader.readexactly(int(m.group(1)) if m else 0)
            if status == 200 and body:
                stats[0] += 1
            else:
                stats[1] += 1
    finally:
        writer.close()


def _load_worker(url: str, token: str, conns: int, seconds: float, q: mp.Queue) -> None:  # type: ignore[type-arg]
    host, port = url.split("//", 1)[1].split(":")
    request = (
        f"GET /api/snapshot HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nAccept-Encoding: gzip\r\n\r\n"
    ).encode()

    async def main() -> list[int]:
        stats = [0, 0]
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_poll(host, int(port), request, stop_at, stats) for _ in range(conns)))
        return stats

    t0 = time.perf_counter()
    ok, bad = asyncio.run(main())
    q.put((ok, bad, time.perf_counter() - t0))


def snapshot_rps(url: str, token: str, conns: int, seconds: float, procs: int) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    workers = [ctx.Process(target=_load_worker, args=(url, token, conns // procs, seconds, q)) for _ in range(procs)]
    for w in workers:
        w.start()
    results = [q.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join()
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    span = max(r[2] for r in results)
    return ok / span, bad


async def _stream(host: str, port: int, ticket: str, ticks: int, seqs: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=2**24)  # a status line is one frame
    writer.write(
        f"GET /api/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ticket}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    try:
        while len(seqs) < ticks:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"id: "):
                seqs.append(int(line[4:]))
    finally:
        writer.close()


def _stream_worker(url: str, token: str, clients: int, ticks: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    host, port = url.split("//", 1)[1].split(":")

    async def main() -> list[list[int]]:
        seqs: list[list[int]] = [[] for _ in range(clients)]
        await asyncio.wait_for(
            asyncio.gather(*(_stream(host, int(port), token, ticks, s) for s in seqs)), timeout=ticks * 5 + 60
        )
        return seqs

    q.put(asyncio.run(main()))


def streams_every_tick(url: str, token: str, clients: int, ticks: int) -> tuple[int, int]:
    """How many of ``clients`` received ``ticks`` consecutive status frames (no tick missed)."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    w = ctx.Process(target=_stream_worker, args=(url, token, clients, ticks, q))
    w.start()
    seqs = q.get(timeout=ticks * 5 + 120)
    w.join()
    good = sum(1 for s in seqs if len(s) >= ticks and all(b - a == 1 for a, b in itertools.pairwise(s)))
    return good, len(seqs)


CHROMIUM = "/usr/bin/chromium"


def map_fluidity(url: str, seconds: float = 20.0) -> dict[str, float]:
    """Draw time of the map and per-tick status cost in Chromium (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page(viewport={"width": 1400, "height": 860}, bypass_csp=True)
            page.set_default_timeout(300_000)
            page.add_init_script(
                """window.__long = 0; window.__tick = [];
                new PerformanceObserver((l) => { window.__long += l.getEntries().length; })
                  .observe({ type: "longtask", buffered: true });"""
            )
            page.goto(f"{url}/")
            page.fill("#login-user", "admin")
            page.fill("#login-pass", "greenwave")
            t0 = time.perf_counter()
            page.click("#login-submit")
            page.wait_for_selector("#map polyline.road[data-level]", state="attached")
            page.wait_for_selector(".marker[data-status=adaptive]", state="attached")
            draw_s = time.perf_counter() - t0
            # Time every status event end to end: JSON.parse of the frame plus the page's own handler.
            page.evaluate(
                """() => {
                  const handle = onStatus;
                  window.onStatus = () => {
                    const t = performance.now(); handle(); window.__tick.push(performance.now() - t);
                  };
                  S.es.addEventListener("status", (ev) => {
                    const t = performance.now(); JSON.parse(ev.data); window.__tick.push(-(performance.now() - t));
                  });
                  window.__long = 0;
                }"""
            )
            time.sleep(seconds)
            raw, long_tasks = page.evaluate("() => [window.__tick, window.__long]")
        finally:
            b.close()
    parse = [-x for x in raw if x < 0]
    handler = [x for x in raw if x >= 0]
    n = min(len(parse), len(handler))
    per_tick = sorted(parse[k] + handler[k] for k in range(n)) or [float("nan")]
    return {
        "map_draw_s": draw_s,
        "ticks": float(n),
        "map_status_ms_p95": per_tick[min(n - 1, int(0.95 * n))] if n else float("nan"),
        "long_tasks": float(long_tasks),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, default=32, help="grid side: 32 -> 1,024 intersections")
    ap.add_argument("--conns", type=int, default=32, help="keep-alive connections polling the snapshot")
    # One load process: on 2 cores a second one takes the server's core and measures the contention, not the server.
    ap.add_argument("--procs", type=int, default=1, help="load-generating processes")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--ticks", type=int, default=10)
    ap.add_argument("--browser", action="store_true", help="also measure the map in Debian's Chromium")
    ap.add_argument(
        "--scenario",
        metavar="CITY",
        help="serve a city scenario's twin instead (e.g. hanoi_city: SUMO meso at speed 10, the city defaults); "
        "also prints city_twin_x_realtime. The city is built once into --cache",
    )
    ap.add_argument("--cache", metavar="DIR", default=str(Path(tempfile.gettempdir()) / "gw-bench-api-city"),
                    help="data directory of the --scenario run (keeps the city's build between runs)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-bench-api-") as tmp:
        if args.scenario:
            net, data = None, Path(args.cache)
            t0 = time.perf_counter()
        else:
            net, data = build_grid(args.grid, Path(tmp)), Path(tmp) / "data"
        proc, url = start_server(net, data, args.scenario)
        if args.scenario:
            print(f"city twin up in {time.perf_counter() - t0:.0f} s (build cached in {data})")
        try:
            token = httpx.post(f"{url}/api/auth/login", json={"username": "admin", "password": "greenwave"}).json()[
                "access_token"
            ]
            h = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
            snap = httpx.get(f"{url}/api/snapshot", headers=h).json()
            n = len(snap["intersections"])
            raw = len(json.dumps(snap, separators=(",", ":")))
            with httpx.stream("GET", f"{url}/api/snapshot", headers=h) as resp:
                gz = sum(len(c) for c in resp.iter_raw())
            print(
                f"intersections: {n}   roads: {len(snap['roads']['level'])}   "
                f"snapshot: {raw / 1024:.0f} KiB JSON, {gz / 1024:.0f} KiB gzip"
            )
            st0 = httpx.get(f"{url}/api/status", headers=h).json()
            w0 = time.monotonic()
            good, total = streams_every_tick(url, token, args.streams, args.ticks)
            print(f"stream_clients_every_tick: {good}/{total} (over {args.ticks} ticks)")
            if args.scenario:
                st1 = httpx.get(f"{url}/api/status", headers=h).json()
                x_rt = (st1["sim_time_s"] - st0["sim_time_s"]) / (time.monotonic() - w0)
                print(f"city_twin: {st1['backend']} {st1['model']} at speed {st1['speed']:g}, "
                      f"{st1['intersections']} intersections")  # fmt: skip
                print(f"city_twin_x_realtime: {x_rt:.1f} (while serving {args.streams} streams)")
            if args.browser:
                m = map_fluidity(url)
                print(
                    f"map_draw_s: {m['map_draw_s']:.2f}   map_status_ms_p95: {m['map_status_ms_p95']:.1f} "
                    f"over {m['ticks']:.0f} ticks   long_tasks: {m['long_tasks']:.0f}"
                )
            rps, bad = snapshot_rps(url, token, args.conns, args.seconds, args.procs)
            print(f"snapshot failures: {bad}   connections: {args.conns}   seconds: {args.seconds:g}")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"snapshot_rps_{n}: {rps:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
