"""The operator's view (#17): live snapshot, roads coloured by queue, timing against the plan, measures from
stored events, KPI and event history with paging, alarm shelving and escalation. Real server, real SQLite."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gwlive import LiveServer, fake_settings, wait_for

from api.server.db import utcnow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, demo_net: Path) -> Iterator[LiveServer]:
    settings = fake_settings(
        tmp_path_factory.mktemp("ops"), demo_net, two_person_rule=False, alarm_escalate_s=3.0, speed=30.0
    )
    with LiveServer(**settings) as s:
        s.wait_healthy()
        yield s


@pytest.fixture(scope="module")
def tok(srv: LiveServer) -> dict[str, str]:
    return {u: srv.login(u) for u in ("admin", "engineer", "operator", "viewer")}


def snap(srv: LiveServer, token: str) -> dict[str, Any]:
    with srv.client(token) as c:
        return c.get("/api/snapshot").json()  # type: ignore[no-any-return]


def test_snapshot_is_one_encoding_per_tick(srv: LiveServer, tok: dict[str, str]) -> None:
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/api/snapshot").status_code == 401
        assert c.get("/api/snapshot", headers={"Authorization": "Bearer nope"}).status_code == 401
        h = {"Authorization": f"Bearer {tok['viewer']}", "Accept-Encoding": "gzip"}
        for _ in range(2):  # the first request fills the token cache, the second takes the fast path
            r = c.get("/api/snapshot", headers=h)
            assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.headers["x-content-type-options"] == "nosniff"  # the fast path's answers get the app's headers
        body = r.json()
        assert set(body["intersections"]) >= {"A0", "B1", "C2"} and body["seq"] > 0
        same = c.get("/api/snapshot", headers={**h, "If-None-Match": r.headers["etag"]})
        assert same.status_code in (200, 304)  # 304 unless a tick passed in between
        # Every request of a tick gets the very same bytes (built once), and they decode to the snapshot.
        frame = srv.runner.frame
        assert frame.gzip() is frame.gzip() and json.loads(gzip.decompress(frame.gzip())) == frame.data
    roads = body["roads"]
    with srv.client(tok["viewer"]) as c:
        net = c.get("/api/network").json()
        st = c.get("/api/status").json()
    assert len(roads["level"]) == len(roads["queue_veh"]) == len(net["edges"]) == len(net["road_storage_veh"])
    assert set(roads["level"]) <= {0, 1, 2, 3}
    assert sum(st["by_status"].values()) == st["intersections"] == 9


def test_road_colour_levels_follow_the_queued_share_of_storage(demo_net: Path) -> None:
    """RoadMap on the demo network: a group's queue lands on the roads its movements come from."""
    import numpy as np

    from api.server.live import VEHICLE_SPACING_M, RoadMap
    from api.server.site import read_geometry
    from controller.backend import detector_layout
    from intersections.loaders.sumo_net import load_sumo_net

    net = load_sumo_net(demo_net)
    edges = [e["id"] for e in read_geometry(demo_net, net)["edges"]]
    roads = RoadMap.build(net, edges, detector_layout(net).ids)
    r = net.ids.index("B1")
    inter = net.intersections[r]
    g = 0
    src = sorted({m.from_edge for m in inter.groups[g].movements})
    e = edges.index(src[0])
    info = next(d for _u, _v, d in net.graph.edges(data=True) if d.get("id") == src[0])
    assert roads.storage_veh[e] == pytest.approx(info["lanes"] * info["length_m"] / VEHICLE_SPACING_M)
    queue = np.zeros((len(net), max(len(i.groups) for i in net.intersections)))
    # A group serving k roads counts 1/k of its queue on each: 80 % of the storage of each (about to spill back).
    queue[r, g] = 0.8 * sum(roads.storage_veh[edges.index(x)] for x in src)
    q = roads.queue_veh(queue)
    assert q.sum() == pytest.approx(queue[r, g]) and np.count_nonzero(q) == len(src)
    assert q[e] == pytest.approx(queue[r, g] / len(src))
    assert roads.levels(q)[e] == 3 and roads.levels(q).max() == 3
    assert roads.levels(np.zeros(len(edges))).max() == 0
    one_per_lane = roads.lanes.copy()  # a short queue on a long road: yellow (a queue waits), not more
    assert (roads.levels(one_per_lane) >= 1).all()
    assert roads.levels(roads.lanes * 0.9).max() == 0
    queue[r, g] = np.nan  # unknown (comm loss) is not a queue
    assert roads.queue_veh(queue)[e] == 0.0


def test_a_held_stage_queues_the_waiting_roads_live(srv: LiveServer, tok: dict[str, str]) -> None:
    """Hold B1 on one stage: the roads of the other stage carry the queue, with the level that share gives."""
    with srv.client(tok["operator"]) as c:
        d = c.get("/api/intersections/B1").json()
        stage = d["model"]["stages"][0]["id"]
        r = c.post("/api/commands", json={"intersections": ["B1"], "kind": "hold", "stage": stage,
                                          "duration_s": 600, "reason": "queue test"})  # fmt: skip
        assert r.status_code == 201, r.text
        cid = r.json()[0]["id"]
    with srv.client(tok["viewer"]) as c:
        net = c.get("/api/network").json()
    b1_in = [k for k, e in enumerate(net["edges"]) if e["to"] == "B1"]
    assert b1_in

    def queued() -> dict[str, Any] | None:
        roads = snap(srv, tok["viewer"])["roads"]
        return roads if max(roads["queue_veh"][k] for k in b1_in) >= 3 else None

    roads = wait_for(queued, 60, "a queue of 3 vehicles on a road into B1")
    lanes = {e["id"]: e["lanes"] for e in net["edges"]}
    for k in b1_in:
        share = roads["queue_veh"][k] / net["road_storage_veh"][k]
        per_lane = roads["queue_veh"][k] / lanes[net["edges"][k]["id"]]
        want = max(sum(share >= t for t in (0.25, 0.5, 0.75)), sum(per_lane >= t for t in (1, 8)))
        assert roads["level"][k] == want
    with srv.client(tok["operator"]) as c:
        assert c.post(f"/api/commands/{cid}/cancel").status_code == 200


def test_timing_against_the_plan_and_coordination(srv: LiveServer, tok: dict[str, str]) -> None:
    with srv.client(tok["engineer"]) as c:
        tpl = c.get("/api/intersections/C1/plan-template").json()
        tpl["offset_s"] = 10.0
        pv = c.post("/api/plans", json={"plan": tpl, "comment": "timing"}).json()
        assert c.post(f"/api/plans/{pv['id']}/activate", json={}).status_code == 200

    def measured() -> dict[str, Any] | None:
        t = snap(srv, tok["viewer"])["intersections"]["C1"]["timing"]
        return t if t.get("plan") and t["cycle_s"] and t["offset_s"] is not None else None

    t = wait_for(measured, 90, "a full cycle of the plan measured")
    assert t["plan"]["cycle_s"] == tpl["cycle_s"] and t["plan"]["offset_s"] == 10.0
    assert set(t["plan"]["splits_s"]) == {s["stage"] for s in tpl["stages"]}
    assert t["coordination"] in ("coordinated", "transition")

    # A fixed-time plan is run as written: after the transition cycle, actual cycle = planned cycle, in step.
    def in_step() -> dict[str, Any] | None:
        t = snap(srv, tok["viewer"])["intersections"]["C1"]["timing"]
        ok = t["coordination"] == "coordinated" and t["cycle_s"] and abs(t["cycle_s"] - tpl["cycle_s"]) <= 2.0
        return t if ok else None

    t = wait_for(in_step, 120, "C1 coordinated, running the planned cycle")
    assert abs(t["offset_error_s"]) <= 5.0 and set(t["splits_s"]) <= set(t["plan"]["splits_s"])
    free = snap(srv, tok["viewer"])["intersections"]["A0"]["timing"]
    assert free["coordination"] == "free" and "plan" not in free


def test_measures_come_from_stored_events(srv: LiveServer, tok: dict[str, str]) -> None:
    with srv.client(tok["viewer"]) as c:

        def doc() -> dict[str, Any] | None:
            m = c.get("/api/intersections/B2/measures").json()
            return m if m.get("measures", {}).get("split_monitor") and m.get("events", 0) > 50 else None

        m = wait_for(doc, 90, "stored events enough for the measures")
        assert m["intersection"] == "B2" and m["phases"]
        assert "pcd" in m["measures"] or "pcd" in m["skipped"]
        if "pcd" in m["measures"]:
            one = next(iter(m["measures"]["pcd"].values()))
            assert one["cycles"] and "aog_pct" in one["summary"]
        bad = c.get(
            "/api/intersections/B2/measures", params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
        )
        assert bad.status_code == 422 and bad.json()["detail"].startswith("end:")
        assert c.get("/api/intersections/NOPE/measures").status_code == 404


def test_history_pages_kpis_and_events(srv: LiveServer, tok: dict[str, str]) -> None:
    with srv.client(tok["viewer"]) as c:
        wait_for(lambda: len(c.get("/api/history/kpis").json()["samples"]) >= 3, 90, "three KPI samples stored")
        first = c.get("/api/history/kpis", params={"limit": 2}).json()
        assert len(first["samples"]) == 2 and first["next_after_id"] == first["samples"][-1]["id"]
        second = c.get("/api/history/kpis", params={"limit": 2, "after_id": first["next_after_id"]}).json()
        assert second["samples"][0]["id"] > first["samples"][-1]["id"]
        assert first["retention_days"] >= 7
        one = c.get("/api/history/kpis", params={"intersection": "A1"}).json()["samples"][0]
        assert {"queue_veh", "flow_veh_h", "aog_pct"} <= set(one)
        empty = c.get("/api/history/kpis", params={"start": "2001-01-01T00:00:00Z", "end": "2001-01-02T00:00:00Z"})
        assert empty.json()["samples"] == []
        # A window that ended 30 s (controller clock) ago: every event in it is written already (flush lag).
        from datetime import datetime

        end = (datetime.fromisoformat(c.get("/api/status").json()["clock"]) - timedelta(seconds=30)).isoformat()
        p1 = c.get("/api/events", params={"limit": 50, "order": "desc", "end": end}).json()
        assert len(p1["events"]) == 50 and p1["next_offset"] == 50 and p1["total"] > 50
        window = {"start": p1["start"], "end": p1["end"], "limit": 50, "order": "desc"}
        p2 = c.get("/api/events", params={**window, "offset": 50}).json()
        assert p2["events"][0][0] <= p1["events"][-1][0] and p2["total"] == p1["total"]
        whole = c.get("/api/events", params={**window, "limit": 100}).json()["events"]
        assert whole == p1["events"] + p2["events"][: len(whole) - 50]


def test_shelve_and_escalate(srv: LiveServer, tok: dict[str, str]) -> None:
    with srv.client(tok["admin"]) as c:
        assert c.post("/api/intersections/A2/link", json={"down": True, "reason": "drill"}).status_code == 200
        a = wait_for(
            lambda: [x for x in c.get("/api/alarms").json()["alarms"] if x["intersection"] == "A2"], 30, "alarm"
        )[0]
        # Unacknowledged for alarm_escalate_s (3 s): escalated one step, audited.
        wait_for(lambda: c.get("/api/alarms").json()["counts"]["escalated"] >= 1, 30, "escalation")
        esc = next(x for x in c.get("/api/alarms").json()["alarms"] if x["id"] == a["id"])
        assert esc["severity"] == a["severity"] - 1 and esc["escalated_at"]
        assert any(
            e["detail"]["alarm_id"] == a["id"] for e in c.get("/api/audit", params={"action": "alarm.escalate"}).json()
        )
        assert c.post(f"/api/alarms/{a['id']}/shelve", json={"minutes": 10}).status_code == 422  # a note is required
        r = c.post(f"/api/alarms/{a['id']}/shelve", json={"minutes": 10, "note": "crew on site"})
        assert r.status_code == 200 and r.json()["shelved_by"] == "admin"
        assert a["id"] not in [x["id"] for x in c.get("/api/alarms").json()["alarms"]]
        assert a["id"] in [x["id"] for x in c.get("/api/alarms", params={"state": "shelved"}).json()["alarms"]]
        wait_for(lambda: snap(srv, tok["viewer"])["intersections"]["A2"]["alarms"] == 0, 10, "marker without alarm")
        # The shelf expires by itself (the engine's check, run here as if 11 minutes had passed).
        later = utcnow() + timedelta(minutes=11)
        srv.runner.post(lambda r: r.check_alarms(later))
        wait_for(lambda: a["id"] in [x["id"] for x in c.get("/api/alarms").json()["alarms"]], 10, "back on the list")
        assert c.post(f"/api/alarms/{a['id']}/unshelve").status_code == 409
        assert c.post("/api/alarms/999999/shelve", json={"minutes": 5, "note": "x"}).status_code == 404
        assert c.post("/api/intersections/A2/link", json={"down": False, "reason": "drill over"}).status_code == 200
    with srv.client(tok["viewer"]) as c:
        assert c.post(f"/api/alarms/{a['id']}/shelve", json={"minutes": 5, "note": "x"}).status_code == 403
