"""The control centre's command line and operations (#17, deliverable 7): each point of the issue, pinned."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(argv)
    finally:
        sys.stdin = old
    out = capsys.readouterr()
    return code, out.out, out.err


def test_serve_with_a_bad_settings_file_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [unclosed\n")
    code, _, err = run_cli(["serve", "--config", str(bad)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "bad.toml" in err and "TOML" in err
    bad.write_text('port = "eighty"\n')
    code, _, err = run_cli(["serve", "--config", str(bad)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "port" in err


def test_serve_with_an_unknown_scenario_exits_with_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["serve", "--scenario", "nosuch", "--port", "0"], capsys)
    assert code == 2 and "unknown scenario 'nosuch'" in err and len(err.strip().splitlines()) == 1


def test_users_list_on_a_typo_does_not_create_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "TYPO"
    code, _, err = run_cli(["users", "list", "--data-dir", str(typo)], capsys)
    assert code == 2 and "no control-centre database" in err
    assert not typo.exists()


def test_users_manage_accounts_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert run_cli(["users", "create-admin", "--password-stdin", *d], capsys, "12345678\n")[0] == 2  # policy
    assert run_cli(["users", "create-admin", "--password-stdin", *d], capsys, "Hanoi-traffic-2026\n")[0] == 0
    args = ["users", "create", "--username", "Lan", "--role", "viewer", "--password-stdin", *d]
    assert run_cli(args, capsys, "Hanoi-traffic-2026\n")[0] == 0
    args = ["users", "create", "--username", "lan", "--role", "viewer", "--password-stdin", *d]
    code, _, err = run_cli(args, capsys, "Hanoi-traffic-2026\n")
    assert code == 1 and "already exists" in err
    assert run_cli(["users", "set-role", "lan", "engineer", *d], capsys)[0] == 0
    assert run_cli(["users", "disable", "LAN", *d], capsys)[0] == 0
    code, out, _ = run_cli(["users", "list", *d], capsys)
    assert "Lan\tengineer\tdisabled" in out
    assert run_cli(["users", "enable", "lan", *d], capsys)[0] == 0
    assert run_cli(["users", "reset-password", "lan", "--password-stdin", *d], capsys, "green waves all day\n")[0] == 0
    code, _, err = run_cli(["users", "disable", "admin", *d], capsys)
    assert code == 1 and "last active admin" in err
    assert run_cli(["users", "disable", "ghost", *d], capsys)[0] == 1
    from sqlalchemy import text

    from api.server.db import Database

    db = Database(f"sqlite:///{tmp_path / 'greenwave.db'}")
    with db.engine.begin() as conn:
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_log WHERE username='cli' ORDER BY id"))]
    db.dispose()
    assert actions == ["user.create", "user.create", "user.role", "user.disable", "user.enable", "user.password_reset"]


def test_default_data_dir_is_not_relative_to_where_you_stand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.server.settings import Settings

    monkeypatch.delenv("GREENWAVE_DATA_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.data_dir == tmp_path / "xdg" / "greenwave" / "control-centre" and s.data_dir.is_absolute()
    monkeypatch.delenv("XDG_DATA_HOME")
    assert Settings().data_dir == Path.home() / ".local" / "share" / "greenwave" / "control-centre"


def test_serve_help_says_real_time_not_accelerated() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, type(build_parser()._subparsers._group_actions[0])))
    text = sub.choices["serve"].format_help()
    assert "accelerated" not in text and "real time" in " ".join(text.split())
    assert "--allow-remote-demo" in text and ".local/share/greenwave" in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = {name: (lg.handlers[:], lg.propagate, lg.level) for name, lg in
             [("", root), *((n, logging.getLogger(n)) for n in ("greenwave", "uvicorn", "uvicorn.error"))]}  # fmt: skip
    try:
        yield
    finally:
        for name, (h, prop, lvl) in saved.items():
            lg = logging.getLogger(name) if name else root
            lg.handlers[:], lg.propagate, lg.level = h, prop, lvl
        logging.captureWarnings(False)


def test_json_logs_cover_every_logger_including_uvicorn_tracebacks(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.server.metrics import configure_json_logging

    configure_json_logging(everything=True)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    logging.getLogger("greenwave.engine").warning("J1 refused")
    logging.getLogger("some.library").error("library trouble")
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    docs = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert [d["logger"] for d in docs] == ["uvicorn.error", "greenwave.engine", "some.library"]
    assert "RuntimeError: boom" in docs[0]["exception"]


@pytest.mark.slow
def test_no_demo_without_users_says_to_create_the_first_admin(tmp_path: Path, demo_net: Path) -> None:
    env = {**os.environ, "GREENWAVE_SECRET_KEY": "a-long-random-secret-for-tests", "GREENWAVE_DEMO_PASSWORD": "x" * 16,
           "GREENWAVE_NET_FILE": str(demo_net)}  # fmt: skip
    cmd = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", "serve", "--no-demo",
           "--backend", "fake", "--port", "0", "--data-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("greenwave control centre: http://127.0.0.1:"), banner
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "no users yet" in err and f"greenwave users create-admin --data-dir {tmp_path}" in err
    for line in err.splitlines():
        if line.startswith("{"):
            json.loads(line)
    time.sleep(0)
