"""The operator's map beyond the SUMO twin: a base layer from locally served tiles, an inventory-only deployment.

The services run in a thread on the in-memory backend (no SUMO), so these are quick. The browser
tests drive Debian's headless Chromium (``/usr/bin/chromium``; nothing downloaded) and watch every
request the page makes: none may leave the server under test on 127.0.0.1.

The tiles are made here (plain PNGs, one colour per tile) for the zoom levels that cover the demo
network around a point in Hanoi; a deployment points ``map_tiles_dir`` at its own tile set.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gwlive import LiveServer, fake_settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ORIGIN = (21.0285, 105.8542)  # Hoan Kiem, Hanoi: where the demo network's x = y = 0 is put
ZOOMS = (14, 15, 16)
INVENTORY = ROOT / "examples" / "intersection.toml"


# ---- a tile set made for the test --------------------------------------------------------------------
def _png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A solid ``size`` x ``size`` RGB PNG with a darker one-pixel border (PNG spec, ISO/IEC 15948)."""
    edge = bytes(c // 2 for c in rgb)
    inner = b"\x00" + edge + bytes(rgb) * (size - 2) + edge
    rows = b"\x00" + edge * size + inner * (size - 2) + b"\x00" + edge * size

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    """XYZ tile indices of a WGS84 point (the OpenStreetMap "slippy map" formula)."""
    n = 2**z
    lat_r = math.radians(lat)
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)


def make_tiles(root: Path, origin: tuple[float, float], half_size_m: float, zooms: tuple[int, ...]) -> int:
    """Tiles covering a square of ``half_size_m`` around ``origin`` at each zoom; returns how many."""
    dlat = math.degrees(half_size_m / 6378137.0)
    dlon = dlat / math.cos(math.radians(origin[0]))
    count = 0
    for z in zooms:
        xa, ya = _tile_of(origin[0] + dlat, origin[1] - dlon, z)
        xb, yb = _tile_of(origin[0] - dlat, origin[1] + dlon, z)
        for x in range(xa, xb + 1):
            for y in range(ya, yb + 1):
                (root / str(z) / str(x)).mkdir(parents=True, exist_ok=True)
                shade = 200 + 10 * ((x + y) % 4)
                (root / str(z) / str(x) / f"{y}.png").write_bytes(_png((shade, shade, 190)))
                count += 1
    return count


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiles")
    assert make_tiles(root, ORIGIN, 3000.0, ZOOMS) > 3
    return root


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory, demo_net: Path, tiles: Path) -> Iterator[LiveServer]:
    settings = fake_settings(
        tmp_path_factory.mktemp("tiled"), demo_net, map_tiles_dir=tiles, map_origin=ORIGIN, map_attribution="test tiles"
    )
    with LiveServer(**settings) as srv:
        srv.wait_healthy()
        yield srv


@pytest.fixture(scope="module")
def inventory_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = {"data_dir": tmp_path_factory.mktemp("inventory"), "backend": "fake", "inventory_file": INVENTORY,
                "speed": 20.0, "event_flush_s": 0.5}  # fmt: skip
    with LiveServer(**settings) as srv:
        srv.wait_healthy()
        yield srv


# ---- a city-sized inventory: a 32 x 32 grid, 1,024 signals (loads in ~2 s; no SUMO net to parse) ---------
def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"


def grid_inventory(path: Path, n: int, spacing_m: float = 200.0) -> Path:
    """An n x n grid of two-stage signals (EW, NS), two-lane links both ways, a stop-line detector per approach."""

    def name(i: int, j: int) -> str:
        return f"J{i}_{j}"

    def inside(i: int, j: int) -> bool:
        return 0 <= i < n and 0 <= j < n

    steps = ((1, 0), (0, 1), (-1, 0), (0, -1))
    out = ["schema_version = 1", ""]
    for i, j in itertools.product(range(n), range(n)):
        me, groups, dets = name(i, j), [], []
        for gid, axis in (("EW", steps[0::2]), ("NS", steps[1::2])):
            moves = []
            for di, dj in axis:
                if not inside(i + di, j + dj):
                    continue
                src = f"{name(i + di, j + dj)}-{me}"
                ahead = [(i - di, j - dj), *((i + a, j + b) for a, b in steps)]
                ti, tj = next(p for p in ahead if inside(*p) and p != (i + di, j + dj))
                lanes = [f"{src}_0", f"{src}_1"]
                moves.append({"from": src, "to": f"{me}-{name(ti, tj)}", "turn": "s", "lanes": lanes})
                dets.append({"id": f"D{len(dets)}", "lane": f"{src}_0", "group": gid, "kind": "stop_line"})
            groups.append({"id": gid, "kind": "vehicle", "movements": moves, "min_green_s": 7.0, "max_green_s": 50.0,
                           "yellow_s": 3.0, "all_red_s": 2.0})  # fmt: skip
        stages = [{"id": "S1", "groups": ["EW"]}, {"id": "S2", "groups": ["NS"]}]
        table = {"id": me, "x_m": i * spacing_m, "y_m": j * spacing_m, "group": groups, "conflicts": [["EW", "NS"]],
                 "stage": stages, "detector": dets}  # fmt: skip
        out += ["[[intersection]]", *(f"{k} = {_toml(v)}" for k, v in table.items()), ""]
    for i, j in itertools.product(range(n), range(n)):
        for di, dj in steps:
            if inside(i + di, j + dj):
                link = {"id": f"{name(i + di, j + dj)}-{name(i, j)}", "from": name(i + di, j + dj), "to": name(i, j),
                        "length_m": spacing_m, "free_speed_m_s": 13.9, "lanes": 2}  # fmt: skip
                out += ["[[link]]", *(f"{k} = {_toml(v)}" for k, v in link.items()), ""]
    path.write_text("\n".join(out), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("city")
    inv = grid_inventory(tmp / "grid32.toml", 32)
    # Two ticks per wall second: the page gets a 1,024-intersection status frame every 0.5 s.
    settings = {"data_dir": tmp / "data", "backend": "fake", "inventory_file": inv, "speed": 2.0, "event_flush_s": 5.0}
    with LiveServer(**settings) as srv:
        srv.wait_healthy(120)
        yield srv


# ---- the API ---------------------------------------------------------------------------------------------
def test_tiles_are_served_from_the_directory_and_nothing_else(tiled: LiveServer, tiles: Path) -> None:
    z, x, y = next((int(p.parts[-3]), int(p.parts[-2]), int(p.stem)) for p in sorted(tiles.glob("*/*/*.png")))
    with tiled.client() as c:  # no token: an <img> sends none
        r = c.get(f"/tiles/{z}/{x}/{y}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == (tiles / str(z) / str(x) / f"{y}.png").read_bytes()
        assert "max-age" in r.headers["cache-control"]
        assert c.get(f"/tiles/{z}/{x}/{2**z}.png").status_code == 404  # outside the zoom level
        assert c.get("/tiles/3/0/0.png").status_code == 404  # not in the set
        assert c.get("/tiles/../../etc/passwd.png").status_code == 404
        assert c.get("/tiles/1/0/x.png").status_code in (404, 422)
    with tiled.client(tiled.login("viewer")) as c:
        bl = c.get("/api/network").json()["base_layer"]
    assert bl == {"url": "/tiles/{z}/{x}/{y}.png", "origin": list(ORIGIN), "min_zoom": 14, "max_zoom": 16,
                  "attribution": "test tiles"}  # fmt: skip


def test_no_tiles_no_base_layer(inventory_only: LiveServer) -> None:
    with inventory_only.client(inventory_only.login("viewer")) as c:
        assert c.get("/api/network").json()["base_layer"] is None
        assert c.get("/tiles/0/0/0.png").status_code == 404


def test_tile_settings_are_checked(tmp_path: Path) -> None:
    from api.server.settings import load_settings
    from intersections.errors import InputError

    with pytest.raises(InputError, match=r"map_tiles_dir: .*directory not found"):
        load_settings(data_dir=tmp_path, map_tiles_dir=tmp_path / "nosuch")
    with pytest.raises(InputError, match=r"map_origin: .*latitude"):
        load_settings(data_dir=tmp_path, map_origin=(95.0, 10.0))
    s = load_settings(data_dir=tmp_path, map_tiles_dir=tmp_path)
    assert any(p.startswith("map_origin:") for p in s.startup_problems())
    s = load_settings(data_dir=tmp_path, inventory_file=INVENTORY, backend="sumo")
    assert any(p.startswith("inventory_file:") for p in s.startup_problems())


def test_an_inventory_deployment_serves_its_own_geometry(inventory_only: LiveServer) -> None:
    """No SUMO net: the map is the inventory's surveyed coordinates, each link a road between its ends."""
    import tomllib

    inv = tomllib.loads(INVENTORY.read_text(encoding="utf-8"))
    where = {n["id"]: (n["x_m"], n["y_m"]) for n in [*inv["intersection"], *inv["node"]]}
    with inventory_only.client(inventory_only.login("viewer")) as c:
        net = c.get("/api/network").json()
        snap = c.get("/api/snapshot").json()
    assert [(i["id"], i["x_m"], i["y_m"]) for i in net["intersections"]] == [("J1", 0.0, 0.0)]
    assert {e["id"]: e["shape"] for e in net["edges"]} == {
        lk["id"]: [list(where[lk["from"]]), list(where[lk["to"]])] for lk in inv["link"]
    }
    assert net["bounds"] == [-420.0, -390.0, 385.0, 450.0]
    assert snap["intersections"]["J1"]["status"] in ("adaptive", "fixed")


def test_the_snapshot_matches_a_per_intersection_reference(city: LiveServer) -> None:
    """The snapshot is built from whole-network arrays once per tick; each row must be what a per-row
    reading of the same tick's arrays gives (the slow reference the fast build replaced)."""
    import numpy as np

    from api.server.live import GREEN, STATE_CHARS
    from controller.safety import Mode

    r_ = city.runner
    time.sleep(3)  # a few ticks: greens, yellows and queues
    with r_._lock:
        r_._publish_snapshot()
        snap = r_.snapshot["intersections"]
        h = r_.history
        p = h.newest
        # The supervisor's timers and modes as the newest tick left them (the engine steps it outside
        # the lock: its live arrays may already be a tick further on).
        states, lay = h.states[p], r_.layout
        state_time, modes = r_.tick_state_time_s, r_.tick_modes
        for r, inter in enumerate(r_.network.intersections):
            ng = len(inter.groups)
            green = states[r, :ng] == GREEN
            want = {
                "mode": Mode(int(modes[r])).name.lower(),
                "stage_time_s": round(float(state_time[r, :ng][green].min()), 1) if green.any() else 0.0,
                "signals": "".join(STATE_CHARS[states[r, :ng]]),
                "detectors": "".join("1" if h.presence[p, k] else "0" for k in np.flatnonzero(lay.row == r)),
                "queue_veh": round(float(h.queue[p, r]), 1),
            }
            got = {k: snap[inter.id][k] for k in want}
            assert got == want, inter.id
    assert len(snap) == 1024 and any("G" in v["signals"] for v in snap.values())


# ---- the browser -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: ./dev test installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (./dev test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        try:
            yield b
        finally:
            b.close()


def open_map(browser: Any, url: str) -> tuple[Any, list[str], list[str]]:
    """Log in as the viewer; returns the page, every request URL it made and its errors (outside requests too)."""
    # The dashboard's own Content Security Policy stays on (no bypass): Leaflet must live with it.
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.set_default_timeout(30_000)
    seen: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: seen.append(r.url))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.goto(f"{url}/")
    page.fill("#login-user", "viewer")
    page.fill("#login-pass", "greenwave")
    page.click("#login-submit")
    page.wait_for_selector("#login", state="hidden")
    page.wait_for_selector(".marker[data-status=adaptive], .marker[data-status=fixed]", state="attached")
    return page, seen, errors


def outside(seen: list[str], url: str) -> list[str]:
    return [u for u in seen if not u.startswith((url + "/", "data:", "blob:"))]


@pytest.mark.browser
@pytest.mark.slow
def test_the_base_layer_loads_from_the_server(tiled: LiveServer, browser: Any) -> None:
    page, seen, errors = open_map(browser, tiled.url)
    page.wait_for_selector("#basemap .leaflet-tile-loaded", state="attached")
    pending = "() => document.querySelectorAll('#basemap img.leaflet-tile:not(.leaflet-tile-loaded)').length"
    for _ in range(100):  # no wait_for_function: the page's CSP forbids the predicate it compiles
        if page.evaluate(pending) == 0:
            break
        page.wait_for_timeout(100)
    assert page.evaluate(pending) == 0, "tiles still loading after 10 s"
    loaded = page.eval_on_selector_all("#basemap img.leaflet-tile-loaded", "(els) => els.map((e) => e.src)")
    assert loaded and all(u.startswith(tiled.url + "/tiles/") for u in loaded), loaded
    assert f"{tiled.url}/static/vendor/leaflet/leaflet.js" in seen
    assert not outside(seen, tiled.url), outside(seen, tiled.url)
    # The network sits on the tiles where its origin says: A0's marker is drawn where Leaflet puts A0's lat/lon.
    off = page.evaluate(
        """() => {
          const it = S.net.intersections[0], o = S.net.base_layer.origin;
          const p = S.baseMap.latLngToContainerPoint(metresToLatLng(o, it.x_m, it.y_m));
          const box = document.getElementById("basemap").getBoundingClientRect();
          const r = document.querySelector(`.marker[data-intersection="${it.id}"] .dot`).getBoundingClientRect();
          return [r.left + r.width / 2 - box.left - p.x, r.top + r.height / 2 - box.top - p.y];
        }"""
    )
    assert math.hypot(*off) < 2.0, off
    # Still the operator's map: a marker opens its panel through the tile layer.
    page.click(".marker[data-intersection=B1]")
    page.wait_for_selector("#panel [data-testid=signals]")
    page.close()
    assert not errors, errors


@pytest.mark.browser
@pytest.mark.slow
def test_the_map_draws_an_inventory_deployment(inventory_only: LiveServer, browser: Any) -> None:
    """The inventory's coordinates, not a grid: the roads end where the inventory's nodes are."""
    import tomllib

    inv = tomllib.loads(INVENTORY.read_text(encoding="utf-8"))
    where = {n["id"]: (n["x_m"], n["y_m"]) for n in [*inv["intersection"], *inv["node"]]}
    page, seen, errors = open_map(browser, inventory_only.url)
    drawn = page.eval_on_selector_all(
        "#map polyline.road", "(els) => els.map((e) => [e.dataset.edge, e.getAttribute('points')])"
    )
    expect = {
        lk["id"]: " ".join(f"{x:g},{0.0 - y:g}" for x, y in (where[lk["from"]], where[lk["to"]])) for lk in inv["link"]
    }
    got = {
        e: " ".join(f"{float(a):g},{float(b):g}" for a, b in (p.split(",") for p in pts.split())) for e, pts in drawn
    }
    assert got == expect
    assert page.get_attribute(".marker[data-intersection=J1]", "transform") == "translate(0,0)"
    # The east road climbs to KM_E at y = -18 m: drawn as surveyed, not snapped to a grid.
    assert page.evaluate("() => document.querySelector('#map polyline[data-edge=km_e_in]').getBBox().height") > 10
    assert not page.query_selector("#basemap")  # no tiles configured: no base layer, no Leaflet
    assert not any("/vendor/leaflet/" in u for u in seen)
    assert not outside(seen, inventory_only.url)
    # Pan and zoom (a city needs a district view): the wheel zooms about the pointer, a drag pans,
    # a double-click on the background resets; only the viewBox changes.
    whole = [float(v) for v in page.get_attribute("#map", "viewBox").split()]
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -100)
    page.mouse.wheel(0, -100)
    zoomed = [float(v) for v in page.get_attribute("#map", "viewBox").split()]
    assert zoomed[2] == pytest.approx(whole[2] * 0.64, rel=1e-6) and zoomed[3] == pytest.approx(whole[3] * 0.64)
    page.mouse.move(cx + 100, cy + 150)
    page.mouse.down()
    page.mouse.move(cx + 140, cy + 170, steps=4)
    page.mouse.up()
    panned = [float(v) for v in page.get_attribute("#map", "viewBox").split()]
    assert panned[2:] == zoomed[2:] and panned[0] < zoomed[0] and panned[1] < zoomed[1], (zoomed, panned)
    page.mouse.dblclick(cx + 100, cy + 150)
    assert [float(v) for v in page.get_attribute("#map", "viewBox").split()] == pytest.approx(whole)
    page.click(".marker[data-intersection=J1]")
    page.wait_for_selector("#panel [data-testid=signals]")
    page.close()
    assert not errors, errors


# Per-tick work of the page: the "status" listener (JSON.parse of the frame and the dashboard's handler,
# which recolours markers and roads), timed around the listener itself; frame gaps from
# requestAnimationFrame; long tasks (> 50 ms) from the browser's own PerformanceObserver.
CITY_PROBE = """
window.__ticks = []; window.__frames = []; window.__long = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
  .observe({ type: "longtask" });
const add = EventSource.prototype.addEventListener;
EventSource.prototype.addEventListener = function (type, fn, opts) {
  if (type !== "status") return add.call(this, type, fn, opts);
  return add.call(this, type, (ev) => {
    const t = performance.now(); fn(ev);
    window.__ticks.push([Number(/"seq":(\\d+)/.exec(ev.data)[1]), performance.now() - t]);
  }, opts);
};
(function frame(t) { window.__frames.push(t); requestAnimationFrame(frame); })(0);
"""
# Bounds, with room for a shared 2-core machine. Measured here (docs/control-centre.md): a tick costs
# ~16 ms at p95 on a quiet machine and 50-70 ms with a load average of 7 on the two cores, where the
# browser then reports dozens of long tasks of 50-220 ms and frames ~180 ms apart (it is starved, not the
# page), so the bounds are on how long the page blocks, not on how often, with about twice that room.
# A renderer that redraws the whole map each tick (4,000 roads and 1,024 markers through innerHTML)
# costs ~470 ms a tick, blocks ~500 ms every tick and shows a frame every ~1.5 s: it fails all three.
TICK_P95_MS = 200.0
LONGEST_TASK_MS = 400.0
FRAME_GAP_P95_MS = 500.0


@pytest.mark.browser
@pytest.mark.slow
def test_the_map_stays_fluid_at_1024_intersections(city: LiveServer, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(CITY_PROBE)
    page.goto(f"{city.url}/")
    page.fill("#login-user", "viewer")
    page.fill("#login-pass", "greenwave")
    t0 = time.perf_counter()
    page.click("#login-submit")
    page.wait_for_selector(".marker[data-intersection=J31_31][data-status=adaptive]", state="attached")
    page.wait_for_selector("#map polyline.road[data-level]", state="attached")
    draw_s = time.perf_counter() - t0
    assert page.eval_on_selector_all(".marker", "(els) => els.length") == 1024
    # Measure 16 ticks (8 s) of live updates, from a clean slate after the first draw.
    page.evaluate("() => { window.__ticks = []; window.__frames = []; window.__long = []; }")
    for _ in range(200):
        page.wait_for_timeout(100)
        if page.evaluate("() => window.__ticks.length") >= 16:
            break
    ticks, frames, longs = page.evaluate("() => [window.__ticks, window.__frames, window.__long]")
    # The page still shows the live state: every road's colour is the last frame's level.
    shown, sent = page.evaluate(
        """() => [Array.from(document.querySelectorAll('#map polyline.road'), (e) => Number(e.dataset.level)),
                  S.snap.roads.level]"""
    )
    # The whole city shows no names (1,024 labels on top of each other); zoomed to a district it does.
    crowded = "() => document.getElementById('map').classList.contains('crowded')"
    assert page.evaluate(crowded)
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -100)
    assert not page.evaluate(crowded)
    assert page.locator(".marker[data-intersection=J16_16] text").is_visible()
    page.close()
    assert not errors, errors
    assert len(ticks) >= 16, f"only {len(ticks)} status frames in 20 s"
    seqs = [s for s, _ in ticks]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"ticks missed: {seqs}"
    cost = sorted(ms for _, ms in ticks)
    gaps = sorted(b - a for a, b in itertools.pairwise(frames))
    p95 = cost[int(0.95 * (len(cost) - 1))]
    gap95 = gaps[int(0.95 * (len(gaps) - 1))] if gaps else float("inf")
    print(
        f"map_draw_s: {draw_s:.2f}   tick_ms_p95: {p95:.1f}   tick_ms_max: {cost[-1]:.1f}   "
        f"frame_gap_ms_p95: {gap95:.1f}   long_tasks: {len(longs)}   longest_task_ms: {max(longs, default=0.0):.0f}"
    )
    assert shown == sent, "the map does not show the last status frame's road levels"
    assert p95 < TICK_P95_MS, f"a status tick costs {p95:.0f} ms at p95 (bound {TICK_P95_MS:.0f})"
    longest = max(longs, default=0.0)
    assert longest < LONGEST_TASK_MS, f"the page blocked {longest:.0f} ms in one task (bound {LONGEST_TASK_MS:.0f})"
    assert gap95 < FRAME_GAP_P95_MS, f"frames {gap95:.0f} ms apart at p95 (bound {FRAME_GAP_P95_MS:.0f})"
    assert draw_s < 20.0
