"""Indiana hi-res events from the engine on the fake backend."""

import gzip

import networkx as nx
import numpy as np
from gwfactories import two_phase

from controller.backend import FakeBackend
from controller.engine import Engine
from controller.events import EventCode, read_events_csv
from controller.policies import make_policy
from intersections.network import Network
from intersections.plan import PlanStage, TimingPlan


def test_fixed_plan_events_follow_the_plan(tmp_path) -> None:  # type: ignore[no-untyped-def]
    net = Network((two_phase("J"),), nx.DiGraph())
    plan = {"J": TimingPlan("J", 60, 0, (PlanStage("SA", 25, 5), PlanStage("SB", 25, 5)))}
    with FakeBackend(net, arrival_rate_veh_s=0.2, seed=2) as be:
        eng = Engine(be, make_policy("fixed", plans=plan), hires=True)
        eng.run(until_s=305)
    ev = eng.hires.table()
    # Group A is phase 1 (no NTCIP mapping: position + 1).
    green_a = ev[(ev[:, 2] == EventCode.BEGIN_GREEN) & (ev[:, 3] == 1), 0]
    yellow_a = ev[(ev[:, 2] == EventCode.BEGIN_YELLOW) & (ev[:, 3] == 1), 0]
    end_y = ev[(ev[:, 2] == EventCode.END_YELLOW) & (ev[:, 3] == 1), 0]
    end_rc = ev[(ev[:, 2] == EventCode.END_RED_CLEARANCE) & (ev[:, 3] == 1), 0]
    assert np.all(np.diff(green_a[1:]) == 60)  # one green per 60 s cycle
    assert np.allclose(yellow_a[1:] - green_a[1 : 1 + len(yellow_a) - 1], 25)
    assert np.allclose(end_y - yellow_a[: len(end_y)], 3)
    assert np.allclose(end_rc - end_y[: len(end_rc)], 2)  # all-red 2 s
    assert (ev[:, 2] == EventCode.DETECTOR_ON).any() and (ev[:, 2] == EventCode.DETECTOR_OFF).any()
    path = eng.hires.write_csv(tmp_path / "events.csv.gz")
    with gzip.open(path, "rt") as f:
        assert f.readline().strip() == "TimeStamp,DeviceId,EventId,Parameter"
    rows = list(read_events_csv(path))
    assert len(rows) == len(ev)
    assert rows[0][1] == "J"
    assert (rows[-1][0] - rows[0][0]).total_seconds() <= 305


def test_fixed_plan_logs_its_coordination_pattern() -> None:
    net = Network((two_phase("J"),), nx.DiGraph())
    plan = {"J": TimingPlan("J", 60, 7, (PlanStage("SA", 25, 5), PlanStage("SB", 25, 5)))}
    with FakeBackend(net, seed=2) as be:
        eng = Engine(be, make_policy("fixed", plans=plan), hires=True)
        eng.run(ticks=5)
    ev = eng.hires.table()
    got = {int(c): int(p) for _t, _r, c, p in ev if c in (131, 132, 133)}
    assert got == {131: 1, 132: 60, 133: 7}
