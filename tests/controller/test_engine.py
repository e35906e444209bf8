"""Engine tick loop on the in-memory fake backend."""

import networkx as nx
import numpy as np
import pytest
from gwfactories import four_leg, two_phase

from controller.backend import BackendState, FakeBackend
from controller.engine import Engine
from controller.policies import make_policy, policy_names, register_policy
from controller.policies.fixed_time import FixedTimePolicy
from controller.safety import HOLD, Mode
from intersections.errors import GreenwaveError, InputError, PlanError
from intersections.model import SignalState
from intersections.network import Network
from intersections.plan import PlanStage, TimingPlan

G, Y, R, F = (int(s) for s in (SignalState.GREEN, SignalState.YELLOW, SignalState.RED, SignalState.FLASH))


def plans() -> dict[str, TimingPlan]:
    return {
        "J1": TimingPlan(
            "J1",
            92,
            10,
            (PlanStage("S1", 30, 12), PlanStage("S2", 8, 4), PlanStage("S3", 25, 3), PlanStage("S4", 6, 4)),
        ),
        "J2": TimingPlan("J2", 60, 0, (PlanStage("SA", 25, 5), PlanStage("SB", 25, 5))),
    }


def network() -> Network:
    return Network((four_leg("J1"), two_phase("J2")), nx.DiGraph())


def runs(series: np.ndarray, value: int) -> list[int]:
    """Lengths of the runs of ``value`` in a 1-D series (complete runs only)."""
    out, n, started = [], 0, False
    for v in series:
        if v == value:
            n += 1
        else:
            if n and started:
                out.append(n)
            n, started = 0, True
    return out


def test_fixed_time_plays_the_plan_on_the_fake() -> None:
    net = network()
    with FakeBackend(net, arrival_rate_veh_s=0.1, seed=1) as be:
        eng = Engine(be, make_policy("fixed", plans=plans()))
        eng.run(until_s=600)
    shown = np.array(be.shown)  # (T, N, G)
    j2a = shown[:, 1, 0]
    # Steady state: A green 25 s, yellow 3 s, then red for the rest of the 60 s cycle.
    assert set(runs(j2a, G)[1:-1]) == {25}
    assert set(runs(j2a, Y)) == {3}
    assert set(runs(j2a, R)[1:]) == {32}
    # J1's NS green lasts the plan's 30 s every cycle.
    assert set(runs(shown[:, 0, 0], G)[1:-1]) == {30}
    assert be.departed.sum() > 0.8 * be.arrived.sum()
    assert not eng.events


def test_policy_registry() -> None:
    assert "fixed" in policy_names()
    with pytest.raises(ValueError, match="already registered"):
        register_policy("fixed")(FixedTimePolicy)
    with pytest.raises(InputError, match="unknown controller 'nope'"):
        make_policy("nope")


def test_missing_or_bad_plan_is_refused_before_running() -> None:
    net = network()
    be = FakeBackend(net)
    with pytest.raises(PlanError, match="no timing plan for intersection J2"):
        Engine(be, make_policy("fixed", plans={"J1": plans()["J1"]}))
    bad = dict(plans())
    bad["J2"] = TimingPlan("J2", 30, 0, (PlanStage("SA", 10, 1), PlanStage("SB", 10, 9)))
    with pytest.raises(PlanError) as e:
        Engine(be, make_policy("fixed", plans=bad))
    assert "stages[0].intergreen_s: 1 s is shorter than the required clearance 5 s" in str(e.value)


class Flipper:
    """A hostile policy: asks for a different (sometimes invalid) stage every tick."""

    name = "flipper"

    def reset(self, network, packed):  # type: ignore[no-untyped-def]
        self.rng = np.random.default_rng(7)
        self.s = packed.s

    def decide(self, obs, est, ctx):  # type: ignore[no-untyped-def]
        return self.rng.integers(-1, self.s + 1, size=len(ctx.target))


def test_hostile_policy_never_produces_an_unsafe_state() -> None:
    net = network()
    with FakeBackend(net) as be:
        eng = Engine(be, Flipper())
        eng.run(ticks=400)
    shown = np.array(be.shown)
    for row, inter in enumerate(net.intersections):
        m = len(inter.groups)
        s = shown[:, row, :m]
        on = (s == G) | (s == Y)
        both = on[:, :, None] & on[:, None, :] & inter.conflicts[None]
        assert not both.any()
    assert any(e.kind == "refused" for e in eng.events)
    assert not any(e.kind == "violation" for e in eng.events)


def test_lost_backend_goes_to_local_plan_then_recovers() -> None:
    net = network()
    with FakeBackend(net) as be:
        eng = Engine(be, make_policy("fixed", plans=plans()), fallback_plans=plans())
        eng.run(ticks=50)
        be.fail([1])
        eng.run(ticks=20)
        assert eng.supervisor.mode[1] == Mode.LOCAL_PLAN
        assert eng.supervisor.mode[0] == Mode.NORMAL
        be.heal([1])
        eng.run(ticks=5)
        assert eng.supervisor.mode[1] == Mode.NORMAL
    kinds = [(e.intersection, e.kind) for e in eng.events]
    assert ("J2", "fail_safe") in kinds and ("J2", "recovered") in kinds


def test_lost_backend_without_local_plan_clears_to_flash() -> None:
    net = network()

    class Hold:
        name = "hold"

        def reset(self, network, packed):  # type: ignore[no-untyped-def]
            pass

        def decide(self, obs, est, ctx):  # type: ignore[no-untyped-def]
            return np.where(ctx.target < 0, 0, HOLD)

    with FakeBackend(net) as be:
        eng = Engine(be, Hold())
        eng.run(ticks=30)
        be.fail([0])
        res = [eng.tick() for _ in range(30)]
    modes = [r.report.mode[0] for r in res]
    assert modes[0] == Mode.CLEARING and modes[-1] == Mode.FLASH
    first_flash = modes.index(Mode.FLASH)
    # Before flashing, the supervisor showed yellow then red (an orderly clearance).
    ns = [r.states[0, 0] for r in res[:first_flash]]
    assert Y in ns and ns[-1] == R
    assert (res[-1].states[0, :5] == F).all()


def test_backend_lifecycle() -> None:
    be = FakeBackend(network())
    with pytest.raises(GreenwaveError, match="backend is new, not open"):
        be.read()
    be.open()
    assert be.lifecycle is BackendState.OPEN
    be.close()
    with pytest.raises(GreenwaveError, match="cannot open a backend that is closed"):
        be.open()


def test_policies_declare_the_fields_they_read() -> None:
    """The backend may skip what a policy never looks at; undeclared means everything."""
    from controller.backend import OBSERVATION_FIELDS, fields_read_by

    assert fields_read_by(make_policy("max-pressure")) == {"queue_veh", "exit_blocked"}
    assert fields_read_by(make_policy("actuated")) == {"counts", "occupancy", "extra"}  # extra: push buttons
    assert fields_read_by(make_policy("webster")) == frozenset()
    assert fields_read_by(make_policy("adaptive")) == OBSERVATION_FIELDS

    class Undeclared:
        name = "undeclared"

    assert fields_read_by(Undeclared()) == OBSERVATION_FIELDS

    class Typo:
        reads = frozenset({"queue"})

    with pytest.raises(ValueError, match="queue"):
        fields_read_by(Typo())


def test_estimator_without_counts_keeps_queues_and_judges_no_detector() -> None:
    from controller.backend import Observation
    from controller.estimate import DemandEstimator

    be = FakeBackend(network(), seed=None)
    lay, p = be.detectors, be.packed
    est = DemandEstimator(lay, p.n, p.g, counts_read=False)
    queue = np.where(p.group_valid, 2.0, np.nan)
    d = len(lay.ids)
    obs = Observation(
        time_s=0.0,
        counts=np.full(d, np.nan),
        occupancy=np.full(d, np.nan),
        queue_veh=queue,
        signal_state=np.zeros((p.n, p.g), np.int8),
        comm_age_s=np.zeros(p.n),
        fault=np.zeros(p.n, bool),
    )
    e = est.update(obs, 1.0)
    np.testing.assert_array_equal(e.queue_veh, np.where(p.group_valid, 2.0, 0.0))
    assert not e.detector_ok.any() and not e.flow_veh_h.any()
    # With counts read, the same estimator type sums them into flows.
    full = DemandEstimator(lay, p.n, p.g, half_life_s=0.0)
    counted = full.update(
        Observation(0.0, np.ones(d), np.zeros(d), queue, obs.signal_state, obs.comm_age_s, obs.fault), 1.0
    )
    assert counted.detector_ok.all() and counted.flow_veh_h.sum() > 0


def test_health_is_kept_only_for_the_same_read_only_arrays() -> None:
    """The engine keeps its health verdict only while a backend hands out the very same
    read-only arrays (SUMO's constants); arrays it can change in place are judged afresh."""
    from dataclasses import replace

    from controller.arrays import read_only

    be = FakeBackend(network(), seed=None)
    with be:
        eng = Engine(be, make_policy("max-pressure"))
        obs = be.read()
        fault, age = np.zeros(2, bool), np.zeros(2)
        writable = replace(obs, fault=fault, comm_age_s=age)
        assert eng._health(writable)[1] is True
        fault[1] = True  # changed in place: must be seen
        healthy, all_ok = eng._health(writable)
        assert healthy.tolist() == [True, False] and all_ok is False
        frozen = replace(obs, fault=read_only(np.zeros(2, bool))[0], comm_age_s=read_only(np.zeros(2))[0])
        first = eng._health(frozen)
        assert eng._health(frozen)[0] is first[0] and first[1] is True  # kept
        assert not first[0].flags.writeable  # handed out to apply(): nobody may change it
        stale = replace(frozen, comm_age_s=read_only(np.full(2, 99.0))[0])  # new arrays: judged afresh
        assert eng._health(stale)[0].tolist() == [False, False]
