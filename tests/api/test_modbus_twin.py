"""The control centre driving the SUMO twin through emulated controllers over Modbus TCP (field_io).

One local controller per intersection (its own supervisor, fallback plan and
watchdog) answers on a loopback port; the engine reaches it only through
:class:`~field_io.modbus.backend.ModbusBackend`. A cut link stops central's
heartbeats and reads for that controller: the comm-loss alarm is raised, the
controller falls back on its own, and control resumes when the link is back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gwlive import LiveServer, wait_for

pytestmark = [pytest.mark.sumo, pytest.mark.slow]


def test_commands_and_comm_loss_through_modbus(tmp_path: Path) -> None:
    with LiveServer(data_dir=tmp_path, backend="modbus", scenario="demo", event_flush_s=1.0) as srv:
        srv.wait_healthy(90)
        tok = srv.login("admin")
        with srv.client(tok) as c:

            def live(iid: str) -> dict:
                return c.get(f"/api/intersections/{iid}").json()["live"]

            assert c.get("/api/status").json()["backend"] == "modbus"
            wait_for(lambda: live("A0")["stage"] is not None, 30, "A0 served by its controller")
            # A manual hold travels as a Modbus stage request and is served.
            hold = {"intersections": ["B1"], "kind": "hold", "stage": "S2", "duration_s": 60, "reason": "test"}
            assert c.post("/api/commands", json=hold).status_code == 201
            wait_for(lambda: live("B1")["stage"] == "S2" and live("B1")["status"] == "manual", 30, "B1 holds S2")
            # Cut A0's link: comm loss, alarm; restore: back under central control, alarm cleared.
            assert c.post("/api/intersections/A0/link", json={"down": True}).status_code == 200
            wait_for(lambda: live("A0")["status"] == "comm_loss", 30, "A0 comm loss")
            alarms = wait_for(
                lambda: [a for a in c.get("/api/alarms", params={"intersection": "A0"}).json()["alarms"]
                         if a["code"] == "comm_loss"], 10, "comm-loss alarm",
            )  # fmt: skip
            ack = c.post(f"/api/alarms/{alarms[0]['id']}/ack", json={"note": "modbus link drill"})
            assert ack.status_code == 200 and ack.json()["acked_by"] == "admin"
            assert c.post("/api/intersections/A0/link", json={"down": False}).status_code == 200
            wait_for(lambda: live("A0")["status"] == "adaptive" and live("A0")["mode"] == "normal", 45, "A0 back")
            cleared = c.get("/api/alarms", params={"state": "cleared", "intersection": "A0"}).json()["alarms"]
            assert any(a["id"] == alarms[0]["id"] for a in cleared)
