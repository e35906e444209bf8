"""The operator's map beyond the SUMO twin: a base layer from locally served tiles, an inventory-only deployment.

The services run in a thread on the in-memory backend (no SUMO), so these are quick. The browser
tests drive Debian's headless Chromium (``/usr/bin/chromium``; nothing downloaded) and watch every
request the page makes: none may leave the server under test on 127.0.0.1.

The tiles are made here (plain PNGs, one colour per tile) for the zoom levels that cover the demo
network around a point in Hanoi; a deployment points ``map_tiles_dir`` at its own tile set.
"""

from __future__ import annotations

import math
import os
import struct
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
    page.click(".marker[data-intersection=J1]")
    page.wait_for_selector("#panel [data-testid=signals]")
    page.close()
    assert not errors, errors
