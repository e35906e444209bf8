"""The same code on PostgreSQL: set GREENWAVE_TEST_DATABASE_URL (e.g. postgresql+psycopg://gw@127.0.0.1/greenwave).

Skipped when unset (CI runs SQLite only; no PostgreSQL server runs there).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gwlive import LiveServer, fake_settings, wait_for

URL = os.environ.get("GREENWAVE_TEST_DATABASE_URL")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not URL, reason="GREENWAVE_TEST_DATABASE_URL is not set (no PostgreSQL server)"),
]


def test_service_on_postgresql(tmp_path: Path, demo_net: Path) -> None:
    import sqlalchemy as sa

    with LiveServer(**fake_settings(tmp_path, demo_net, database_url=URL)) as srv:
        srv.wait_healthy()
        with srv.client(srv.login("admin")) as c:
            tpl = c.get("/api/intersections/A0/plan-template").json()
            pv = c.post("/api/plans", json={"plan": tpl, "comment": "pg"}).json()
            assert c.post(f"/api/plans/{pv['id']}/activate", json={"intersections": ["A0", "A1"]}).status_code == 200
            c.post("/api/intersections/C2/link", json={"down": True})
            alarm = wait_for(lambda: c.get("/api/alarms", params={"code": "comm_loss"}).json()["alarms"], 10, "alarm")
            assert c.post(f"/api/alarms/{alarm[0]['id']}/ack", json={"note": "pg"}).status_code == 200
            wait_for(lambda: c.get("/api/events", params={"intersection": "A0"}).json()["events"], 10, "events")
            c.post("/api/intersections/C2/link", json={"down": False})
    engine = sa.create_engine(URL)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("UPDATE audit_log SET username = 'mallory'"))
    finally:
        engine.dispose()
