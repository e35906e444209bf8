"""The two-person rule (#17): a plan or schedule goes live only when a second engineer approves it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gwlive import LiveServer, fake_settings, wait_for

pytestmark = pytest.mark.slow

SECOND = ("engineer2", "second-engineer-pass-2026")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, demo_net: Path) -> Iterator[LiveServer]:
    with LiveServer(**fake_settings(tmp_path_factory.mktemp("approvals"), demo_net)) as s:
        s.wait_healthy()
        admin = s.login("admin")
        with s.client(admin) as c:
            r = c.post("/api/users", json={"username": SECOND[0], "password": SECOND[1], "role": "engineer"})
            assert r.status_code == 201, r.text
        yield s


def live_of(s: LiveServer, token: str, iid: str) -> dict[str, Any]:
    with s.client(token) as c:
        return c.get(f"/api/intersections/{iid}").json()  # type: ignore[no-any-return]


def new_plan(s: LiveServer, token: str, iid: str, comment: str) -> dict[str, Any]:
    with s.client(token) as c:
        tpl = c.get(f"/api/intersections/{iid}/plan-template").json()
        r = c.post("/api/plans", json={"plan": tpl, "comment": comment})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


def audit(s: LiveServer, token: str, action: str) -> list[dict[str, Any]]:
    with s.client(token) as c:
        return c.get("/api/audit", params={"action": action}).json()  # type: ignore[no-any-return]


def test_activation_waits_for_a_second_engineer(srv: LiveServer) -> None:
    eng, eng2 = srv.login("engineer"), srv.login(*SECOND)
    pv = new_plan(srv, eng, "B1", "proposal")
    with srv.client(eng) as c:
        r = c.post(f"/api/plans/{pv['id']}/activate", json={"intersections": ["B1", "C1"], "comment": "pm peak"})
        assert r.status_code == 202, r.text
        ap = r.json()["pending"]
        assert ap["status"] == "pending" and ap["proposed_by"] == "engineer" and ap["intersections"] == ["B1", "C1"]
        # Nothing went live, and the proposer cannot approve (nor can a differently spelt self).
        assert live_of(srv, eng, "B1")["standing_mode"] == "adaptive"
        assert not [e for e in audit(srv, eng, "plan.activate") if e["target"] == "B1"]
        r = c.post(f"/api/approvals/{ap['id']}/approve", json={})
        assert r.status_code == 403 and "proposer" in r.json()["detail"]
        assert [a["id"] for a in c.get("/api/approvals").json()] == [ap["id"]]
    with srv.client(srv.login("operator")) as c:  # an operator may not approve plans
        assert c.post(f"/api/approvals/{ap['id']}/approve", json={}).status_code == 403
    with srv.client(eng2) as c:
        r = c.post(f"/api/approvals/{ap['id']}/approve", json={"note": "checked splits"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["approval"]["status"] == "approved" and body["approval"]["decided_by"] == "engineer2"
        assert {a["intersection"] for a in body["activated"]} == {"B1", "C1"}
        assert c.post(f"/api/approvals/{ap['id']}/approve", json={}).status_code == 409  # once only
    for iid in ("B1", "C1"):
        wait_for(lambda iid=iid: live_of(srv, eng, iid)["live"]["status"] == "fixed", 10, f"{iid} fixed")
    rows = [e for e in audit(srv, eng, "plan.activate") if e["target"] == "B1"]
    assert rows and rows[0]["username"] == "engineer2"
    assert rows[0]["detail"]["proposed_by"] == "engineer" and rows[0]["detail"]["approval_id"] == ap["id"]
    assert [e["target"] for e in audit(srv, eng, "approval.propose")] == [f"approval:{ap['id']}"]
    assert [e["username"] for e in audit(srv, eng, "approval.approve")] == ["engineer2"]


def test_reject_and_withdraw_leave_the_street_alone(srv: LiveServer) -> None:
    eng, eng2 = srv.login("engineer"), srv.login(*SECOND)
    pv = new_plan(srv, eng, "A2", "maybe")
    with srv.client(eng) as c:
        a1 = c.post(f"/api/plans/{pv['id']}/activate", json={}).json()["pending"]
        a2 = c.post(f"/api/plans/{pv['id']}/activate", json={}).json()["pending"]
        assert c.post(f"/api/approvals/{a1['id']}/reject", json={"note": "wrong one"}).json()["status"] == "withdrawn"
    with srv.client(eng2) as c:
        r = c.post(f"/api/approvals/{a2['id']}/reject", json={"note": "offset wrong"})
        assert r.json()["status"] == "rejected" and r.json()["decided_by"] == "engineer2"
        assert c.post(f"/api/approvals/{a2['id']}/approve", json={}).status_code == 409
        assert c.post("/api/approvals/999999/approve", json={}).status_code == 404
        done = c.get("/api/approvals", params={"status": "all"}).json()
        assert {a["id"]: a["status"] for a in done if a["id"] in (a1["id"], a2["id"])} == {
            a1["id"]: "withdrawn",
            a2["id"]: "rejected",
        }
    assert live_of(srv, eng, "A2")["standing_mode"] == "adaptive"


def test_schedule_needs_approval_too(srv: LiveServer) -> None:
    eng, eng2 = srv.login("engineer"), srv.login(*SECOND)
    pv = new_plan(srv, eng, "A0", "schedule")
    entries = [{"start": "00:00", "plan_id": pv["id"]}]
    with srv.client(eng) as c:
        r = c.put("/api/intersections/A0/schedule", json={"entries": entries, "comment": "all day"})
        assert r.status_code == 202 and r.json()["pending"]["kind"] == "schedule", r.text
        assert c.get("/api/intersections/A0/schedule").json()["entries"] == []
        bad = c.put("/api/intersections/A0/schedule", json={"entries": [{"start": "00:00", "plan_id": 999999}]})
        assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "entries[0].plan_id"
        ap = r.json()["pending"]
    with srv.client(eng2) as c:
        assert c.post(f"/api/approvals/{ap['id']}/approve", json={}).status_code == 200
        assert c.get("/api/intersections/A0/schedule").json()["entries"] == entries
    wait_for(lambda: live_of(srv, eng, "A0")["live"]["control"]["source"] == "schedule", 10, "schedule runs")


def test_admin_emergency_override_is_audited(srv: LiveServer) -> None:
    eng, admin = srv.login("engineer"), srv.login("admin")
    pv = new_plan(srv, eng, "C2", "urgent")
    with srv.client(eng) as c:  # an engineer cannot override
        r = c.post(f"/api/plans/{pv['id']}/activate", json={"emergency": True, "comment": "hurry"})
        assert r.status_code == 403 and "emergency" in r.json()["detail"]
    with srv.client(admin) as c:
        r = c.post(f"/api/plans/{pv['id']}/activate", json={"emergency": True})
        assert r.status_code == 422 and r.json()["detail"].startswith("comment:")
        r = c.post(f"/api/plans/{pv['id']}/activate", json={"emergency": True, "comment": "crash on Kim Ma"})
        assert r.status_code == 200 and r.json()["activated"][0]["intersection"] == "C2", r.text
    wait_for(lambda: live_of(srv, eng, "C2")["live"]["status"] == "fixed", 10, "C2 fixed")
    over = audit(srv, admin, "approval.override")
    assert over and over[0]["username"] == "admin" and over[0]["detail"]["reason"] == "crash on Kim Ma"
    act = [e for e in audit(srv, admin, "plan.activate") if e["target"] == "C2"]
    assert act[0]["detail"]["emergency"] is True
