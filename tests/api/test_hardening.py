"""Hardening of the control centre (#17, deliverable 3), each point against a real server and a real SQLite file."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gwlive import LiveServer, fake_settings

from api.server import create_app, load_settings
from api.server.hardening import CSP

pytestmark = pytest.mark.slow

METRICS_TOKEN = "scraper-token-0123456789"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, demo_net: Path) -> Iterator[LiveServer]:
    with LiveServer(**fake_settings(tmp_path_factory.mktemp("hard"), demo_net, metrics_token=METRICS_TOKEN)) as s:
        s.wait_healthy()
        yield s


def strict_json(text: str) -> object:
    """Parse as JSON proper: NaN and Infinity are not JSON."""

    def refuse(name: str) -> object:
        raise AssertionError(f"{name} in a response body")

    return json.loads(text, parse_constant=refuse)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_non_finite_numbers_are_a_422_naming_the_field(srv: LiveServer) -> None:
    with srv.client() as c:
        for doc in ('{"username": NaN, "password": "x"}', '{"username": "admin", "password": Infinity}'):
            r = c.post("/api/auth/login", content=doc, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, r.text
            strict_json(r.text)
            assert "non-finite" in r.text and ("username" in r.text or "password" in r.text)
    token = srv.login("engineer")
    with srv.client(token) as c:
        tpl = c.get("/api/intersections/C0/plan-template").json()
        body = r'{"plan": ' + httpx.Response(200, json=tpl).text.replace(
            f'"cycle_s":{tpl["cycle_s"]}', '"cycle_s":Infinity'
        ).replace(f'"cycle_s": {tpl["cycle_s"]}', '"cycle_s": Infinity') + ', "comment": "inf"}'
        assert "Infinity" in body
        r = c.post("/api/plans", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        strict_json(r.text)
        assert "cycle_s" in r.text


def test_security_headers_on_every_response(srv: LiveServer, tmp_path: Path) -> None:
    token = srv.login("viewer")
    with srv.client() as c:
        for path, hdrs in (("/", {}), ("/healthz", {}), ("/api/status", auth(token)), ("/nope", {}),
                           ("/api/status", {}), ("/static/app.js", {})):  # fmt: skip
            r = c.get(path, headers=hdrs)
            assert r.headers["content-security-policy"] == CSP, path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
        r = c.post("/api/auth/login", json={"username": "viewer", "password": "greenwave"})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert c.get("/api/auth/me", headers=auth(token)).headers["cache-control"] == "no-store"


def test_metrics_need_a_token(srv: LiveServer) -> None:
    with srv.client() as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth("wrong")).status_code == 401
        assert c.get("/metrics", headers=auth(METRICS_TOKEN)).status_code == 200
        assert "greenwave_ticks_total" in c.get("/metrics", headers=auth(srv.login("viewer"))).text


def test_only_dashboard_assets_are_served(srv: LiveServer) -> None:
    with srv.client() as c:
        for path in ("/static/__init__.py", "/static/__pycache__/", "/static/vendor/swagger-ui/LICENSE",
                     "/static/../server/auth.py", "/static/%2e%2e/server/db.py"):  # fmt: skip
            assert c.get(path).status_code == 404, path
        for path in ("/static/app.js", "/static/app.css", "/static/favicon.svg",
                     "/static/vendor/swagger-ui/swagger-ui.css"):  # fmt: skip
            assert c.get(path).status_code == 200, path


def test_database_file_is_private(srv: LiveServer) -> None:
    db = srv.settings.data_dir / "greenwave.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for extra in (db.with_name("greenwave.db-wal"), db.with_name("greenwave.db-shm")):
        if extra.exists():
            assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    from api.server.db import Database

    path = tmp_path / "old.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    Database(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stream_takes_a_one_use_ticket_not_the_token(srv: LiveServer) -> None:
    token = srv.login("viewer")
    with srv.client() as c:
        assert c.get("/api/stream", params={"once": True, "access_token": token}).status_code == 401
        assert c.post("/api/stream/ticket").status_code == 401
        t = c.post("/api/stream/ticket", headers=auth(token)).json()
        assert t["expires_in_s"] <= 60 and token not in t["ticket"]
        r = c.get("/api/stream", params={"once": True, "ticket": t["ticket"]})
        assert r.status_code == 200 and "event: status" in r.text
        assert c.get("/api/stream", params={"once": True, "ticket": t["ticket"]}).status_code == 401  # used


def test_stream_ends_when_its_token_is_revoked(srv: LiveServer) -> None:
    token = srv.login("viewer")
    with srv.client() as c:
        t = c.post("/api/stream/ticket", headers=auth(token)).json()["ticket"]
        ended_after = None
        with c.stream("GET", "/api/stream", params={"ticket": t}) as s:
            t0 = time.monotonic()
            revoked = False
            for line in s.iter_lines():
                if not revoked and line.startswith("event: status"):
                    assert c.post("/api/auth/logout", headers=auth(token)).status_code == 204
                    revoked, t0 = True, time.monotonic()
                if line.startswith("event: end"):
                    ended_after = time.monotonic() - t0
                assert time.monotonic() - t0 < 20, "the stream kept sending after the token was revoked"
        assert revoked and ended_after is not None and ended_after < 10


def test_healthz_reveals_no_credentials(srv: LiveServer) -> None:
    body = httpx.get(f"{srv.url}/healthz").text
    assert "greenwave" not in body.lower().replace('"demo"', "") and "password" not in body and "login" not in body


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_demo_mode_refuses_a_non_loopback_bind(tmp_path: Path, demo_net: Path, host: str) -> None:
    settings = load_settings(**fake_settings(tmp_path, demo_net, host=host))
    assert any("allow_remote_demo" in p for p in settings.startup_problems())
    with pytest.raises(ValueError, match="will not bind"):
        create_app(settings, start_engine=False)
    allowed = load_settings(**fake_settings(tmp_path, demo_net, host=host, allow_remote_demo=True))
    assert not allowed.startup_problems()


def test_a_plan_above_the_limits_is_refused_naming_the_fields(srv: LiveServer) -> None:
    """#17: an 86,400-s cycle with an 86,374-s green was accepted; now the cycle and the green are named."""
    token = srv.login("engineer")
    with srv.client(token) as c:
        tpl = c.get("/api/intersections/C0/plan-template").json()
        tpl["stages"][0]["green_s"] += 86_400 - tpl["cycle_s"]
        tpl["cycle_s"] = 86_400.0
        v = c.post("/api/plans/validate", json=tpl).json()
        fields = {p["field"] for p in v["problems"]}
        assert not v["valid"] and "cycle_s" in fields and "stages[0].green_s" in fields, v
        assert any("max green" in p["message"] for p in v["problems"])
        r = c.post("/api/plans", json={"plan": tpl, "comment": "too long"})
        assert r.status_code == 422 and "maximum cycle 240 s" in r.text


def test_oversized_bodies_are_a_413_before_any_route_reads_them(srv: LiveServer) -> None:
    big = b'{"username": "admin", "password": "' + b"x" * (2 << 20) + b'"}'
    with srv.client() as c:
        r = c.post("/api/auth/login", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "larger than" in r.text
        assert r.headers["x-content-type-options"] == "nosniff"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
            yield b'{"username": "admin", "password": "'
            for _ in range(40):
                yield b"y" * 65536
            yield b'"}'

        r = c.post("/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.post("/api/auth/login", json={"username": "admin", "password": "greenwave"}).status_code == 200
