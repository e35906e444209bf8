"""Units of the control centre: passwords, settings, migrations, event blobs, the serve and users commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.server.auth import ROLE_PERMISSIONS, Permission, Role, hash_password, verify_password
from api.server.db import Base, Database, decode_events, encode_events
from api.server.routes.plans import plan_diff, split_problem
from api.server.settings import DEFAULT_SECRET_KEY, load_settings

ROOT = Path(__file__).resolve().parents[2]
GREENWAVE = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())"]


def test_scrypt_hash_roundtrip() -> None:
    h = hash_password("correct horse")
    assert h.startswith("scrypt$16384$8$1$") and "correct" not in h
    assert verify_password("correct horse", h)
    assert not verify_password("correct hors", h)
    assert not verify_password("x", "md5$abc")
    assert hash_password("same") != hash_password("same")  # salted


def test_roles_are_a_table() -> None:
    assert ROLE_PERMISSIONS[Role.VIEWER] == {Permission.READ}
    assert Permission.PLAN not in ROLE_PERMISSIONS[Role.OPERATOR]
    assert Permission.COMMAND not in ROLE_PERMISSIONS[Role.TECHNICIAN]
    assert ROLE_PERMISSIONS[Role.ADMIN] == set(Permission)


def test_settings_file_env_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('port = 9000\nspeed = 2.5\nscenario = "arterial"\n', encoding="utf-8")
    monkeypatch.setenv("GREENWAVE_SPEED", "3")
    s = load_settings(cfg, scenario="demo")
    assert (s.port, s.speed, s.scenario) == (9000, 3.0, "demo")  # file < env < explicit
    assert s.resolved_database_url.startswith("sqlite:///")
    from intersections.errors import InputError

    with pytest.raises(InputError, match=r"controller: .*unknown controller"):  # one line, naming the field (#17)
        load_settings(controller="nope")


def test_refuses_default_secrets_outside_demo(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path).startup_problems() == []
    prod = load_settings(data_dir=tmp_path, demo=False)
    assert any("secret_key" in p for p in prod.startup_problems())
    ok = load_settings(data_dir=tmp_path, demo=False, secret_key="x" * 40, demo_password="also-changed")
    assert ok.startup_problems() == []
    from api.server import create_app

    with pytest.raises(ValueError, match="refusing to start"):
        create_app(prod)
    r = subprocess.run(
        [*GREENWAVE, "serve", "--no-demo", "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**os.environ, "GREENWAVE_SECRET_KEY": DEFAULT_SECRET_KEY},
    )  # fmt: skip
    assert r.returncode == 2 and "refusing to start" in r.stderr


# SQLite's reflection skips expression indexes (migration 0003's unique lower(username)) with a warning;
# the index itself is tested in test_accounts.py.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_migrations_match_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        db.migrate()
        db.migrate()  # idempotent
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_event_blob_roundtrip() -> None:
    off = np.array([0.0, 0.1, 1.0, 3599.9])
    code = np.array([1, 8, 9, 82], np.int16)
    param = np.array([2, 2, 2, 17], np.int16)
    o, c, p = decode_events(encode_events(off, code, param), 4)
    np.testing.assert_allclose(o, off)
    assert c.tolist() == code.tolist() and p.tolist() == param.tolist()


def test_plan_diff_and_problem_split() -> None:
    a = {
        "intersection": "J",
        "cycle_s": 60,
        "offset_s": 0,
        "stages": [{"stage": "S1", "green_s": 20, "intergreen_s": 5}],
    }
    b = {
        **a,
        "offset_s": 10,
        "stages": [{"stage": "S1", "green_s": 25, "intergreen_s": 5}, {"stage": "S2", "green_s": 1, "intergreen_s": 5}],
    }
    assert {d["field"] for d in plan_diff(a, b)} == {"offset_s", "stages[0].green_s", "stages[1]"}
    assert plan_diff(None, a)[0]["new"] == "created"
    assert split_problem("stages[0].green_s: too short").field == "stages[0].green_s"
    assert split_problem("no colon here").field == "plan"


@pytest.mark.slow
def test_users_cli_creates_the_first_admin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    run = lambda *a, stdin=None: subprocess.run(  # noqa: E731
        [*GREENWAVE, "users", *a, "--database-url", url],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    r = run("create-admin", "--password-stdin", stdin="s3cret-centre-pw\n")
    assert r.returncode == 0 and "created admin admin" in r.stdout, r.stderr
    assert run("create-admin", "--password-stdin", stdin="s3cret-centre-pw\n").returncode == 1
    assert run("create", "--username", "ops", "--role", "operator", "--password-stdin", stdin="short\n").returncode == 2
    assert "admin\tadmin\tactive" in run("list").stdout


@pytest.mark.slow
def test_serve_prints_the_address_and_stops_cleanly(tmp_path: Path, demo_net: Path) -> None:
    env = {**os.environ, "GREENWAVE_NET_FILE": str(demo_net), "GREENWAVE_EVENT_FLUSH_S": "0.5"}
    proc = subprocess.Popen(
        [*GREENWAVE, "serve", "--port", "0", "--backend", "fake", "--speed", "20", "--data-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("greenwave control centre: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip().rstrip("/")
        for _ in range(200):
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
            import time

            time.sleep(0.1)
        assert httpx.get(f"{url}/healthz").json()["engine"] == "running"
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err


def test_a_passive_controller_is_refused_through_the_policy_protocol(tmp_path: Path) -> None:
    """The service asks the policy what it declares (``Policy.passive``), not by probing attributes."""
    assert not any("passive" in p for p in load_settings(data_dir=tmp_path, controller="adaptive").startup_problems())
    problems = load_settings(data_dir=tmp_path, controller="sumo").startup_problems()
    assert "controller: 'sumo' is passive (runs SUMO's own programs) and takes no commands" in problems


def test_tune_grid_is_a_declared_policy_member() -> None:
    """``optimize --tune`` without ``--param`` takes the policy's declared grid (empty by default)."""
    from api.commands.tune import _default_grid
    from controller.policies import Policy

    assert _default_grid("adaptive") == {}

    from types import MappingProxyType

    from controller.policies.base import declared

    class Tunable(Policy):
        tune_grid = MappingProxyType({"gap_s": (2.0, 3.0)})

    assert declared(Tunable(), "tune_grid") == {"gap_s": (2.0, 3.0)}


def test_recent_ticks_keep_the_newest_and_window_by_simulated_time() -> None:
    """The dashboard's ring: the newest slot for the snapshot, the last seconds for a timeline."""
    import numpy as np

    from api.server.recent import RecentTicks

    h = RecentTicks(n=2, g=3, d=1, size=4)
    assert len(h) == 0
    for k in range(6):  # two more than fit: the oldest two are overwritten
        h.push(float(k), np.full((2, 3), k, np.int8), np.array([k, -1]), np.array([k % 2 == 1]), np.array([k, 0.0]))
    assert len(h) == 4 and h.time[h.newest] == 5.0 and h.target[h.newest].tolist() == [5, -1]
    assert h.time[h.window(1.5)].tolist() == [4.0, 5.0]
    assert h.time[h.window(100.0)].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert h.presence[h.window(1.0), 0].tolist() == [False, True]
