"""Accounts (#17, deliverable 1) against a real server and a real SQLite file: disable/enable, role change,
password change and reset, case-insensitive names, the password policy, login throttling, migration 0003."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gwlive import LiveServer, fake_settings

from api.server.auth import LoginThrottle, password_problems

pytestmark = pytest.mark.slow

GOOD = "Hanoi-traffic-2026"
BETTER = "green waves on Tran Hung Dao"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, demo_net: Path) -> Iterator[LiveServer]:
    kw = {"login_max_failures": 3, "login_lock_s": 1.0, "login_lock_max_s": 4.0}
    with LiveServer(**fake_settings(tmp_path_factory.mktemp("acct"), demo_net, **kw)) as s:
        s.wait_healthy()
        yield s


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(srv: LiveServer, user: str, password: str) -> httpx.Response:
    with srv.client() as c:
        return c.post("/api/auth/login", json={"username": user, "password": password})


def audit(srv: LiveServer, action: str) -> list[dict[str, object]]:
    with srv.client(srv.login("admin")) as c:
        return c.get("/api/audit", params={"action": action}).json()  # type: ignore[no-any-return]


def make(srv: LiveServer, name: str, role: str = "viewer", password: str = GOOD) -> httpx.Response:
    with srv.client(srv.login("admin")) as c:
        return c.post("/api/users", json={"username": name, "password": password, "role": role})


def test_usernames_are_unique_whatever_their_case(srv: LiveServer) -> None:
    assert make(srv, "Lan.Nguyen").status_code == 201
    r = make(srv, "lan.nguyen")
    assert r.status_code == 409 and "letter case" in r.text
    assert make(srv, "ADMIN").status_code == 409
    assert login(srv, "LAN.NGUYEN", GOOD).json()["user"]["username"] == "Lan.Nguyen"


@pytest.mark.parametrize(
    ("password", "why"),
    [("12345678", "at least 12"), ("Password1234!", "common"), ("qwertyuiopasdf", "common"),
     ("aaaaaaaaaaaaaaaa", "different characters"), ("policy.userXsecret", "user name")],
)  # fmt: skip
def test_the_password_policy_refuses_weak_passwords(srv: LiveServer, password: str, why: str) -> None:
    r = make(srv, "policy.user", password=password)
    assert r.status_code == 422 and why in r.text, r.text
    assert password_problems(password, "policy.user")


def test_disabled_user_cannot_log_in_and_loses_its_sessions(srv: LiveServer) -> None:
    assert make(srv, "tuan", "operator").status_code == 201
    tok = login(srv, "tuan", GOOD).json()["access_token"]
    with srv.client(srv.login("admin")) as c:
        r = c.patch("/api/users/Tuan", json={"active": False})
        assert r.status_code == 200 and r.json()["active"] is False
    with srv.client(tok) as c:
        assert c.get("/api/auth/me").status_code == 401
    assert login(srv, "tuan", GOOD).status_code == 401
    with srv.client(srv.login("admin")) as c:
        assert c.patch("/api/users/tuan", json={"active": True}).status_code == 200
    assert login(srv, "tuan", GOOD).status_code == 200
    assert {r["target"] for r in audit(srv, "user.disable")} >= {"tuan"}
    assert {r["target"] for r in audit(srv, "user.enable")} >= {"tuan"}


def test_role_change_takes_effect_and_is_audited(srv: LiveServer) -> None:
    assert make(srv, "mai", "viewer").status_code == 201
    with srv.client(srv.login("admin")) as c:
        assert c.patch("/api/users/mai", json={"role": "engineer"}).json()["role"] == "engineer"
        assert c.patch("/api/users/mai", json={"role": "wizard"}).status_code == 422
        assert c.patch("/api/users/nobody", json={"role": "viewer"}).status_code == 404
    assert "plan" in login(srv, "mai", GOOD).json()["permissions"]
    rows = [r for r in audit(srv, "user.role") if r["target"] == "mai"]
    assert rows and rows[-1]["detail"] == {"old": "viewer", "new": "engineer"}
    with srv.client(srv.login("engineer")) as c:
        assert c.patch("/api/users/mai", json={"role": "admin"}).status_code == 403


def test_the_last_admin_can_be_neither_disabled_nor_demoted(srv: LiveServer) -> None:
    with srv.client(srv.login("admin")) as c:
        assert c.patch("/api/users/admin", json={"active": False}).status_code == 409
        assert c.patch("/api/users/admin", json={"role": "viewer"}).status_code == 409


def test_admin_resets_a_password(srv: LiveServer) -> None:
    assert make(srv, "hoa", "technician").status_code == 201
    old_token = login(srv, "hoa", GOOD).json()["access_token"]
    with srv.client(srv.login("admin")) as c:
        assert c.post("/api/users/hoa/password", json={"password": "12345678"}).status_code == 422
        assert c.post("/api/users/hoa/password", json={"password": BETTER}).status_code == 204
    with srv.client(old_token) as c:
        assert c.get("/api/auth/me").status_code == 401
    assert login(srv, "hoa", GOOD).status_code == 401
    assert login(srv, "hoa", BETTER).status_code == 200
    assert any(r["target"] == "hoa" for r in audit(srv, "user.password_reset"))


def test_own_password_change(srv: LiveServer) -> None:
    assert make(srv, "binh", "viewer").status_code == 201
    tok = login(srv, "binh", GOOD).json()["access_token"]
    other = login(srv, "binh", GOOD).json()["access_token"]
    with srv.client(tok) as c:
        body = {"current_password": "wrong-password-x", "new_password": BETTER}
        assert c.post("/api/auth/password", json=body).status_code == 403
        body = {"current_password": GOOD, "new_password": "password12345"}
        assert c.post("/api/auth/password", json=body).status_code == 422
        body = {"current_password": GOOD, "new_password": BETTER}
        assert c.post("/api/auth/password", json=body).status_code == 204
        assert c.get("/api/auth/me").status_code == 200  # this session stays
    with srv.client(other) as c:
        assert c.get("/api/auth/me").status_code == 401  # the others end
    assert login(srv, "binh", BETTER).status_code == 200
    assert any(r["username"] == "binh" for r in audit(srv, "auth.password_change"))


def test_login_storm_locks_the_account_with_back_off_and_one_audit_row_per_lock(srv: LiveServer) -> None:
    assert make(srv, "storm", "viewer").status_code == 201
    codes = [login(srv, "storm", "wrong-password").status_code for _ in range(8)]
    assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}  # locked after 3 (settings)
    r = login(srv, "storm", GOOD)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # the right one waits too
    locks = [x for x in audit(srv, "auth.locked") if x["target"] == "account:storm"]
    assert len(locks) == 1 and locks[0]["detail"] == {"seconds": 1.0}
    assert not audit(srv, "auth.login_failed")  # single failures write nothing
    time.sleep(1.1)
    assert [login(srv, "storm", "wrong-password").status_code for _ in range(3)] == [401, 401, 401]
    t0 = time.monotonic()
    assert login(srv, "storm", GOOD).status_code == 429  # second lock: 2 s (doubled)
    while login(srv, "storm", GOOD).status_code == 429:
        time.sleep(0.2)
    assert 1.5 <= time.monotonic() - t0 <= 4.0
    locks = [x for x in audit(srv, "auth.locked") if x["target"] == "account:storm"]
    assert sorted(x["detail"]["seconds"] for x in locks) == [1.0, 2.0]  # type: ignore[index]


def test_throttle_per_client_across_accounts() -> None:
    now = [0.0]
    thr = LoginThrottle(max_failures=2, lock_s=10, lock_max_s=15, clock=lambda: now[0])
    started = [thr.fail(f"user{k}", "10.0.0.9") for k in range(8)]
    assert [s for s in started if s] == [[("client", "10.0.0.9", 10)]]  # 4 x 2 failures from one client
    assert thr.retry_after_s("someone-else", "10.0.0.9") == 10
    assert thr.retry_after_s("someone-else", "10.0.0.10") == 0
    now[0] = 11.0
    for k in range(8):
        thr.fail(f"user{k}", "10.0.0.9")
    assert thr.retry_after_s("x", "10.0.0.9") == 15  # 20 doubled, capped at lock_max_s


def test_migration_renames_and_disables_existing_duplicates(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from api.server.db import MIGRATIONS_DIR, Database

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with db.engine.begin() as conn:
        for name in ("admin", "Admin", "ADMIN", "lan"):
            conn.execute(
                text("INSERT INTO users (username, password_hash, role, active, created_at, created_by) "
                     "VALUES (:n, 'x', 'admin', 1, '2026-01-01', 'test')"),
                {"n": name},
            )  # fmt: skip
    db.migrate()
    with db.engine.begin() as conn:
        rows = conn.execute(text("SELECT id, username, active FROM users ORDER BY id")).all()
        assert [(r[1], bool(r[2])) for r in rows] == [("admin", True), ("Admin~2", False), ("ADMIN~3", False),
                                                      ("lan", True)]  # fmt: skip
        audit_rows = conn.execute(text("SELECT target FROM audit_log WHERE action='user.rename_duplicate'")).all()
        assert sorted(r[0] for r in audit_rows) == ["ADMIN~3", "Admin~2"]
        with pytest.raises(Exception, match="UNIQUE"):
            conn.execute(text("INSERT INTO users (username, password_hash, role, active, created_at, created_by) "
                              "VALUES ('LAN', 'x', 'viewer', 1, '2026-01-01', 'test')"))  # fmt: skip
    db.dispose()


def test_lone_surrogates_are_a_4xx_not_a_500(srv: LiveServer) -> None:
    """JSON may carry a lone surrogate ("\\ud800"); it cannot be hashed or stored as UTF-8."""
    body = '{"username": "surrogate.user", "password": "abc\\ud800defghijklmn", "role": "viewer"}'
    with srv.client(srv.login("admin")) as c:
        r = c.post("/api/users", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "unicode" in r.text.lower()
        r = c.post("/api/users/admin/password", content='{"password": "x\\ud800yyyyyyyyyyyyy"}',
                   headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 422
    with srv.client() as c:
        for _ in range(4):  # refused by the schema or, past it, by the throttle: never a 500
            r = c.post("/api/auth/login", content='{"username": "ghost\\udfff", "password": "nope"}',
                       headers={"Content-Type": "application/json"})  # fmt: skip
            assert r.status_code in (401, 422, 429)
