"""The control-centre API against a real server (fake backend over the demo network, real SQLite file)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from gwlive import LiveServer, wait_for

pytestmark = pytest.mark.slow


def live_of(live: LiveServer, token: str, iid: str) -> dict[str, Any]:
    with live.client(token) as c:
        return c.get(f"/api/intersections/{iid}").json()["live"]  # type: ignore[no-any-return]


def template(live: LiveServer, token: str, iid: str) -> dict[str, Any]:
    with live.client(token) as c:
        return c.get(f"/api/intersections/{iid}/plan-template").json()  # type: ignore[no-any-return]


def test_healthz_and_status(live: LiveServer, tokens: dict[str, str]) -> None:
    with live.client() as c:
        h = c.get("/healthz")
        assert h.status_code == 200 and h.json()["engine"] == "running"
        assert c.get("/api/status").status_code == 401
    with live.client(tokens["viewer"]) as c:
        st = c.get("/api/status").json()
        assert st["intersections"] == 9 and st["online_pct"] == 100.0
        net = c.get("/api/network").json()
        assert len(net["intersections"]) == 9 and net["edges"] and len(net["bounds"]) == 4
        assert net["corridor"]["intersections"] == ["A1", "B1", "C1"]


def test_login_refuses_wrong_password(live: LiveServer, tokens: dict[str, str]) -> None:
    # Single failures are not audited (a login storm must not grow the audit log); locks are (test_accounts.py).
    with live.client() as c:
        assert c.post("/api/auth/login", json={"username": "admin", "password": "nope"}).status_code == 401
        assert c.post("/api/auth/login", json={"username": "ghost", "password": "nope"}).status_code == 401
        assert c.get("/api/intersections", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_logout_revokes_the_token(live: LiveServer) -> None:
    tok = live.login("viewer")
    with live.client(tok) as c:
        assert c.get("/api/auth/me").json()["role"] == "viewer"
        assert c.post("/api/auth/logout").status_code == 204
        assert c.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("viewer", set()), ("operator", {"command"}), ("technician", {"field"}), ("engineer", {"command", "plan"}),
     ("admin", {"command", "plan", "field", "users"})],
)  # fmt: skip
def test_every_write_checks_its_role(live: LiveServer, tokens: dict[str, str], role: str, allowed: set[str]) -> None:
    tpl = template(live, tokens["admin"], "C0")
    writes = {
        "command": (
            "POST",
            "/api/commands",
            {"intersections": ["C0"], "kind": "adaptive", "duration_s": 5, "reason": "t"},
        ),
        "plan": ("POST", "/api/plans", {"plan": tpl, "comment": f"by {role}"}),
        "field": ("POST", "/api/intersections/C0/link", {"down": False}),
        "users": ("POST", "/api/users", {"username": f"u-{role}", "password": "longpassword", "role": "viewer"}),
    }
    with live.client(tokens[role]) as c:
        for perm, (method, path, body) in writes.items():
            r = c.request(method, path, json=body)
            if perm in allowed:
                assert r.status_code in (200, 201), (role, perm, r.text)
            else:
                assert r.status_code == 403, (role, perm, r.status_code)


def test_plan_validation_is_field_by_field(live: LiveServer, tokens: dict[str, str]) -> None:
    tpl = template(live, tokens["engineer"], "A0")
    bad = {**tpl, "cycle_s": 10, "stages": [{**tpl["stages"][0], "green_s": 1}, {**tpl["stages"][1], "stage": "S9"}]}
    with live.client(tokens["engineer"]) as c:
        ok = c.post("/api/plans/validate", json=tpl).json()
        assert ok == {"valid": True, "problems": []}
        res = c.post("/api/plans/validate", json=bad).json()
        fields = {p["field"] for p in res["problems"]}
        assert not res["valid"]
        assert {"cycle_s", "stages[1].stage"} <= fields, fields
        r = c.post("/api/plans", json={"plan": bad, "comment": "should fail"})
        assert r.status_code == 422 and r.json()["problems"]
        r = c.post("/api/plans", json={"plan": {**tpl, "intersection": "ZZ"}, "comment": ""})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "intersection"


def test_plan_versions_diff_compare(live: LiveServer, tokens: dict[str, str]) -> None:
    tpl = template(live, tokens["engineer"], "A1")
    with live.client(tokens["engineer"]) as c:
        v1 = c.post("/api/plans", json={"plan": tpl, "comment": "base"}).json()
        longer = {
            **tpl,
            "cycle_s": tpl["cycle_s"] + 10,
            "stages": [{**tpl["stages"][0], "green_s": 30}, tpl["stages"][1]],
        }
        v2 = c.post("/api/plans", json={"plan": longer, "comment": "longer S1"}).json()
        assert v2["version"] == v1["version"] + 1 and v2["previous_id"] == v1["id"]
        assert {d["field"] for d in v2["diff"]} == {"cycle_s", "stages[0].green_s"}
        assert v2["created_by"] == "engineer" and v2["comment"] == "longer S1"
        cmp = c.get("/api/plans/compare", params={"a": v1["id"], "b": v2["id"]}).json()
        assert {d["field"] for d in cmp["diff"]} == {"cycle_s", "stages[0].green_s"}
        assert c.get("/api/plans/compare", params={"a": v1["id"], "b": 999999}).status_code == 404


def test_activate_on_many_lands_in_audit_and_runs(live: LiveServer, tokens: dict[str, str]) -> None:
    tpl = template(live, tokens["engineer"], "B1")
    with live.client(tokens["engineer"]) as c:
        pv = c.post("/api/plans", json={"plan": tpl, "comment": "for B1 and B2"}).json()
        r = c.post(f"/api/plans/{pv['id']}/activate", json={"intersections": ["B1", "B2"], "comment": "am peak"})
        assert r.status_code == 200, r.text
        act = {a["intersection"]: a for a in r.json()["activated"]}
        assert set(act) == {"B1", "B2"} and act["B1"]["plan_id"] == pv["id"]
        audit = c.get("/api/audit", params={"action": "plan.activate"}).json()
        assert {(e["target"], e["username"]) for e in audit} >= {("B1", "engineer"), ("B2", "engineer")}
    for iid in ("B1", "B2"):
        wait_for(lambda iid=iid: live_of(live, tokens["viewer"], iid)["status"] == "fixed", 10, f"{iid} fixed")
    with live.client(tokens["engineer"]) as c:
        assert c.post("/api/intersections/B2/adaptive").status_code == 200
    wait_for(lambda: live_of(live, tokens["viewer"], "B2")["status"] == "adaptive", 10, "B2 adaptive again")


def test_activation_is_all_or_none(live: LiveServer, tokens: dict[str, str]) -> None:
    tpl = template(live, tokens["engineer"], "C1")
    with live.client(tokens["engineer"]) as c:
        pv = c.post("/api/plans", json={"plan": tpl, "comment": ""}).json()
        before = len(c.get("/api/audit", params={"action": "plan.activate"}).json())
        r = c.post(f"/api/plans/{pv['id']}/activate", json={"intersections": ["C1", "NOPE"]})
        assert r.status_code == 422 and any(p["field"].startswith("NOPE") for p in r.json()["problems"])
        assert len(c.get("/api/audit", params={"action": "plan.activate"}).json()) == before


def test_commands_hold_expire_and_flash_needs_confirmation(live: LiveServer, tokens: dict[str, str]) -> None:
    with live.client(tokens["operator"]) as c:
        r = c.post(
            "/api/commands",
            json={"intersections": ["A2"], "kind": "hold", "stage": "S2", "duration_s": 2, "reason": "t"},
        )
        assert r.status_code == 201, r.text
        cid = r.json()[0]["id"]
        wait_for(lambda: live_of(live, tokens["viewer"], "A2")["status"] == "manual", 10, "A2 manual")
        wait_for(lambda: live_of(live, tokens["viewer"], "A2")["status"] == "adaptive", 15, "hold expired")
        cmd = next(x for x in c.get("/api/commands").json() if x["id"] == cid)
        assert cmd["status"] == "expired" and cmd["ended_by"] == "system"
        # Bounded holds, stages that exist, confirmed flashes.
        too_long = {"intersections": ["A2"], "kind": "hold", "stage": "S1", "duration_s": 100_000, "reason": "t"}
        assert c.post("/api/commands", json=too_long).status_code == 422
        assert c.post("/api/commands", json={**too_long, "duration_s": 5, "stage": "S9"}).status_code == 422
        flash = {"intersections": ["A2"], "kind": "flash", "duration_s": 60, "reason": "incident"}
        r = c.post("/api/commands", json=flash)
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "confirm"
        r = c.post("/api/commands", json={**flash, "confirm": True})
        assert r.status_code == 201
        fid = r.json()[0]["id"]
        wait_for(lambda: live_of(live, tokens["viewer"], "A2")["mode"] == "flash", 15, "A2 flashing")
        assert c.post(f"/api/commands/{fid}/cancel").json()["status"] == "cancelled"
        assert c.post(f"/api/commands/{fid}/cancel").status_code == 409
        wait_for(lambda: live_of(live, tokens["viewer"], "A2")["status"] == "adaptive", 15, "A2 back to adaptive")
        actions = {e["action"] for e in c.get("/api/audit", params={"target": "A2"}).json()}
        assert {"command.hold", "command.expired", "command.flash", "command.cancel"} <= actions


def test_comm_loss_raises_alarm_that_is_acknowledged(live: LiveServer, tokens: dict[str, str]) -> None:
    with live.client(tokens["technician"]) as c:
        assert c.post("/api/intersections/C2/link", json={"down": True, "reason": "drill"}).status_code == 200
        wait_for(lambda: live_of(live, tokens["viewer"], "C2")["status"] == "comm_loss", 10, "comm loss")
        alarm = wait_for(
            lambda: [
                a
                for a in c.get("/api/alarms", params={"intersection": "C2"}).json()["alarms"]
                if a["code"] == "comm_loss"
            ],
            10,
            "comm-loss alarm",
        )[0]
        assert alarm["active"] and alarm["acked_at"] is None and alarm["rsmp"] == "A0007"
        with live.client(tokens["viewer"]) as v:
            assert v.post(f"/api/alarms/{alarm['id']}/ack", json={"note": "x"}).status_code == 403
        r = c.post(f"/api/alarms/{alarm['id']}/ack", json={"note": "cabinet visit booked"})
        assert r.status_code == 200
        assert r.json()["acked_by"] == "technician" and r.json()["ack_note"] == "cabinet visit booked"
        assert c.post(f"/api/alarms/{alarm['id']}/ack", json={}).status_code == 409
        c.post("/api/intersections/C2/link", json={"down": False})
        wait_for(lambda: live_of(live, tokens["viewer"], "C2")["status"] != "comm_loss", 10, "link restored")
        cleared = wait_for(
            lambda: [
                a for a in c.get("/api/alarms", params={"state": "cleared"}).json()["alarms"] if a["id"] == alarm["id"]
            ],
            10,
            "alarm cleared",
        )
        assert cleared[0]["cleared_at"] is not None


def test_events_are_stored_compactly_and_queryable(live: LiveServer, tokens: dict[str, str]) -> None:
    with live.client(tokens["viewer"]) as c:
        ev = wait_for(
            lambda: c.get("/api/events", params={"intersection": "A0", "codes": "1,8"}).json()["events"], 20, "events"
        )
        assert ev[0][1] == "A0" and {e[2] for e in ev} <= {1, 8}
        csv = c.get("/api/events", params={"format": "csv", "intersection": "A0"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0] == "TimeStamp,DeviceId,EventId,Parameter"
        n_events = len(csv.text.splitlines()) - 1
    db = sqlite3.connect(live.settings.data_dir / "greenwave.db")
    try:
        chunks, total = db.execute(
            "SELECT count(*), sum(count) FROM event_chunks WHERE intersection_id='A0'"
        ).fetchone()
    finally:
        db.close()
    assert total >= n_events > chunks, "events must be stored as chunks, not one row each"


def test_queues_kpis_timeline(live: LiveServer, tokens: dict[str, str]) -> None:
    with live.client(tokens["viewer"]) as c:
        q = c.get("/api/queues").json()
        assert set(q) == {"A0", "A1", "A2", "B0", "B1", "B2", "C0", "C1", "C2"}
        tl = c.get("/api/intersections/A0/timeline", params={"seconds": 30}).json()
        assert len(tl["t"]) == len(tl["signals"]) == len(tl["stage"]) > 5
        assert all(set(s) <= set("RYGF") and len(s) == len(tl["groups"]) for s in tl["signals"])
        k = wait_for(lambda: (lambda j: j if j["network"]["t"] else None)(c.get("/api/kpis").json()), 20, "KPI samples")
        assert set(k["intersections"]) == set(q)
        s = c.get("/api/intersections/A0/kpis").json()
        assert len(s["queue_veh"]) == len(s["t"])
        assert c.get("/api/intersections/NOPE/kpis").status_code == 404


def test_schedule_by_time_of_day(live: LiveServer, tokens: dict[str, str]) -> None:
    tpl = template(live, tokens["engineer"], "B0")
    with live.client(tokens["engineer"]) as c:
        pv = c.post("/api/plans", json={"plan": tpl, "comment": "all day"}).json()
        bad = c.put("/api/intersections/B0/schedule", json={"entries": [{"start": "00:00", "plan_id": 999999}]})
        assert bad.status_code == 422
        r = c.put("/api/intersections/B0/schedule", json={"entries": [{"start": "00:00", "plan_id": pv["id"]}]})
        assert r.status_code == 200
        wait_for(
            lambda: live_of(live, tokens["viewer"], "B0")["control"]["source"] == "schedule", 10, "schedule in force"
        )
        assert live_of(live, tokens["viewer"], "B0")["status"] == "fixed"
        assert c.put("/api/intersections/B0/schedule", json={"entries": []}).status_code == 200


def test_live_stream_sends_status(live: LiveServer, tokens: dict[str, str]) -> None:
    with live.client() as c:
        assert c.get("/api/stream", params={"once": True}).status_code == 401
        ticket = c.post("/api/stream/ticket", headers={"Authorization": f"Bearer {tokens['viewer']}"}).json()
        r = c.get("/api/stream", params={"once": True, "ticket": ticket["ticket"]})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert "event: status" in r.text and '"A0"' in r.text
        with c.stream("GET", "/api/stream", headers={"Authorization": f"Bearer {tokens['viewer']}"}) as s:
            seen = 0
            for line in s.iter_lines():
                seen += line.startswith("event: status")
                if seen >= 2:
                    break
        assert seen == 2


def test_audit_log_is_append_only(live: LiveServer) -> None:
    db = sqlite3.connect(live.settings.data_dir / "greenwave.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_log SET username='mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_log")
    finally:
        db.close()


def test_docs_and_dashboard_are_served_without_cdn(live: LiveServer) -> None:
    with live.client() as c:
        docs = c.get("/docs").text
        assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        assert c.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
        assert c.get("/openapi.json").json()["info"]["title"] == "greenwave control centre"
        page = c.get("/").text
        assert "/static/app.js" in page and "http://" not in page and "https://" not in page
        assert "/static/ops.js" in page
        for script in ("/static/app.js", "/static/ops.js"):
            js = c.get(script).text.replace("http://www.w3.org/2000/svg", "")  # a namespace, not a fetch
            assert "http://" not in js and "https://" not in js, script
