"""The same service code on a real PostgreSQL server.

The server is a throwaway cluster started for this module: Debian's ``postgresql`` binaries
(``./dev test`` installs the package when it is missing), ``initdb`` into a temporary directory,
``postgres`` on an ephemeral loopback port, stopped and deleted afterwards (about 2 s). PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres`` user the package creates
(or ``nobody``). ``GREENWAVE_TEST_DATABASE_URL`` points the test at an existing server instead.

Skipped only when no PostgreSQL binaries are found outside CI; under CI (``CI`` set) a missing
server is a failure, so the test cannot quietly stop running.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gwlive import LiveServer, fake_settings, wait_for

pytestmark = [pytest.mark.slow]


def _pg_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory (Debian keeps it off PATH)."""
    if os.environ.get("GREENWAVE_PG_BINDIR"):
        return Path(os.environ["GREENWAVE_PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _throwaway_cluster(bindir: Path) -> Iterator[str]:
    """A PostgreSQL cluster in a temporary directory, trust auth on loopback only; yields its URL."""
    user = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                user = pwd.getpwnam(name)
                break
        if user is None:
            pytest.fail("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")
    # As root, in /tmp: the postgres user must reach it, whatever $TMPDIR points at.
    root = Path(tempfile.mkdtemp(prefix="gw-pg-", dir="/tmp" if user is not None else None))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user is not None else {}
    data, sock = root / "data", root
    port = _free_port()
    proc = None
    log = open(root / "postgres.log", "wb")  # closed in finally, after the server has stopped
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", "gw", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, cwd=root, **run_as,
        )  # fmt: skip
        proc = subprocess.Popen(
            [bindir / "postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port), "-k", sock,
             "-F", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=subprocess.DEVNULL, stderr=log, cwd=root, **run_as,
        )  # fmt: skip
        import psycopg

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"postgres exited: {(root / 'postgres.log').read_text(errors='replace')[-2000:]}")
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="gw", dbname="postgres", autocommit=True) as c:
                    c.execute("CREATE DATABASE greenwave")
                return True
            except psycopg.OperationalError:
                return False

        wait_for(ready, 30, "the throwaway PostgreSQL server")
        yield f"postgresql+psycopg://gw@127.0.0.1:{port}/greenwave"
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if os.environ.get("GREENWAVE_TEST_DATABASE_URL"):
        yield os.environ["GREENWAVE_TEST_DATABASE_URL"]
        return
    bindir = _pg_bindir()
    if bindir is None or not (bindir / "postgres").exists():
        msg = "no PostgreSQL server binaries (apt-get install postgresql; ./dev test does)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    pytest.importorskip("psycopg", reason="psycopg is a test dependency (pip install -e '.[test]')")
    t0 = time.monotonic()
    with _throwaway_cluster(bindir) as url:
        print(f"throwaway PostgreSQL from {bindir} ready in {time.monotonic() - t0:.1f} s")
        yield url


def test_service_on_postgresql(tmp_path: Path, demo_net: Path, pg_url: str) -> None:
    import sqlalchemy as sa

    with LiveServer(**fake_settings(tmp_path, demo_net, database_url=pg_url, two_person_rule=False)) as srv:
        srv.wait_healthy()
        with srv.client(srv.login("admin")) as c:
            tpl = c.get("/api/intersections/A0/plan-template").json()
            pv = c.post("/api/plans", json={"plan": tpl, "comment": "pg"}).json()
            r = c.post(f"/api/plans/{pv['id']}/activate", json={"intersections": ["A0", "A1"]})
            assert r.status_code == 200, r.text
            c.post("/api/intersections/C2/link", json={"down": True})
            alarm = wait_for(lambda: c.get("/api/alarms", params={"code": "comm_loss"}).json()["alarms"], 30, "alarm")
            assert c.post(f"/api/alarms/{alarm[0]['id']}/ack", json={"note": "pg"}).status_code == 200
            wait_for(lambda: c.get("/api/events", params={"intersection": "A0"}).json()["events"], 30, "events")
            c.post("/api/intersections/C2/link", json={"down": False})
            audit = c.get("/api/audit").json()
    actions = {row["action"] for row in audit}
    assert {"plan.create", "plan.activate", "alarm.ack"} <= actions, actions
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.dialect.name == "postgresql"
            assert conn.execute(sa.text("SELECT count(*) FROM plan_versions")).scalar_one() >= 1
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                conn.execute(sa.text("UPDATE audit_log SET username = 'mallory'"))
    finally:
        engine.dispose()
