"""The adaptive policy: vectorised == reference, behaviour on the fake backend, degraded detection."""

import networkx as nx
import numpy as np
import pytest
from gwfactories import four_leg, permissive_left, two_phase, two_way_main_street

from controller.arrays import pack
from controller.backend import FakeBackend, Observation, detector_layout
from controller.engine import Engine
from controller.estimate import DemandEstimator
from controller.policies import make_policy
from controller.policies.adaptive import AdaptivePolicy
from controller.policies.adaptive_reference import AdaptiveReference
from controller.policies.base import PolicyContext
from controller.safety import SafetySupervisor
from intersections.model import SignalState, Stage
from intersections.network import Network

G = int(SignalState.GREEN)


def _leading_left(id: str = "JL") -> Network:
    """:func:`four_leg` with its north left protected beside the north through, then alone.

    S1 runs NS and NL together, S2 runs NL alone: S2 serves nothing S1 does not, as in the
    leading-left programs netconvert writes (``GGGG`` then ``rrGG``).
    """
    stages = (Stage("S1", {"NS", "NL"}), Stage("S2", {"NL"}), Stage("S3", {"EW"}), Stage("S4", {"EL", "PE"}))
    return Network((four_leg(id).with_stages(stages),), nx.DiGraph())


def _network(k: int = 6) -> Network:
    inters = []
    for i in range(k):
        inters.append(four_leg(f"F{i}") if i % 2 else two_phase(f"T{i}"))
    inters.append(two_way_main_street("M"))
    inters.append(permissive_left("P"))
    inters.extend(_leading_left("L").intersections)
    return Network(tuple(inters), nx.DiGraph())


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_equals_reference(seed: int) -> None:
    """Same observations, same supervisor state: identical decisions, tick after tick."""
    rng = np.random.default_rng(seed)
    net = _network()
    packed = pack(net.intersections)
    lay = detector_layout(net)
    fast, slow = AdaptivePolicy(), AdaptiveReference()
    fast.reset(net, packed)
    slow.reset(net, packed)
    sup = SafetySupervisor(packed)
    est = DemandEstimator(lay, packed.n, packed.g)
    d = len(lay.ids)
    jam = None
    for t in range(400):
        counts = rng.poisson(0.4, d).astype(float)
        occ = rng.uniform(0, 1, d) * (rng.uniform(0, 1, d) < 0.5)
        if t > 100:
            counts[::7] = np.nan  # failed detectors
            occ[3] = 1.0  # a stuck one
        queue = rng.poisson(3.0, (packed.n, packed.g)).astype(float) * rng.integers(0, 2, (packed.n, packed.g))
        if t > 200:  # some groups lose their queue measurement (with or without a failed zone detector)
            queue[rng.uniform(0, 1, queue.shape) < 0.3] = np.nan
        # Exits: not measured at first (None), then some groups' exits jammed for stretches (whole
        # or in part), some not measured (NaN).
        exits = None
        if t > 50:
            if t % 40 == 0 or jam is None:
                jam = rng.choice([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, np.nan], (packed.n, packed.g))
            exits = jam
        # Push buttons: none at first (crossings on recall), then calls as SUMO gives them ((N, G) bool),
        # then as a field controller does (a bit mask per intersection).
        extra = {}
        if 120 < t <= 260:
            extra = {"ped_calls": rng.uniform(0, 1, (packed.n, packed.g)) < 0.2}
        elif t > 260:
            extra = {"ped_calls": rng.integers(0, 1 << packed.g, packed.n)}
        obs = Observation(
            time_s=float(t), counts=counts, occupancy=occ, queue_veh=queue,
            signal_state=sup.state.copy(), comm_age_s=np.zeros(packed.n), fault=np.zeros(packed.n, bool),
            exit_blocked=exits, extra=extra,
        )  # fmt: skip
        e = est.update(obs, 1.0)
        ctx = PolicyContext(
            float(t), 1.0, sup.target.copy(), sup.state.copy(), sup.state_time_s + (1.0 if t else 0), sup.walked.copy()
        )
        a = fast.decide(obs, e, ctx)
        b = slow.decide(obs, e, ctx)
        np.testing.assert_array_equal(a, b, err_msg=f"tick {t}")
        np.testing.assert_array_equal(fast.last_termination, slow.last_termination)
        sup.step(a, 1.0 if t else 0.0)


def _midblock() -> Network:
    """A mid-block crossing signal: one vehicle group, one crossing, a stage each."""
    from intersections.model import Detector, GroupKind, Intersection, Movement, SignalGroup, Stage

    v = SignalGroup("V", movements=(Movement("a", "b", ("a_0",)),), min_green_s=5, yellow_s=3, all_red_s=2)
    p = SignalGroup("P", kind=GroupKind.PEDESTRIAN, movements=(Movement(":x_w0", ":x_c0", (), "p"),), walk_s=5,
                    ped_clearance_s=6)  # fmt: skip
    c = np.array([[False, True], [True, False]])
    ig = np.array([[5.0, 5.0], [8.0, 8.0]])
    inter = Intersection("X", (v, p), c, ig, (Stage("SV", {"V"}), Stage("SP", {"P"})), (Detector("d", "a_0", "V"),))
    return Network((inter,), nx.DiGraph())


@pytest.mark.parametrize("controller", ["adaptive", "actuated"])
@pytest.mark.parametrize("buttons", ["none", "never pushed", "pushed at 100 s"])
def test_a_crossing_with_a_push_button_is_served_only_when_called(buttons: str, controller: str) -> None:
    """Without buttons a crossing is on recall; with them it waits for a call, as on street.

    The vehicle queue stands and does not move (held by a jam further on), so the vehicle stage
    stalls and ends at every chance: a crossing on recall then took every other turn.
    """
    net = _midblock()
    packed = pack(net.intersections)
    pol = make_policy(controller)
    pol.reset(net, packed)
    sup = SafetySupervisor(packed, startup_clearance=False)
    est = DemandEstimator(detector_layout(net), packed.n, packed.g)
    walk_at: list[int] = []
    was_green = False
    for t in range(300):
        extra = {}
        pushed = buttons == "pushed at 100 s" and t >= 100 and not walk_at
        if buttons != "none":
            extra = {"ped_calls": np.array([[False, pushed]])}
        obs = Observation(
            time_s=float(t), counts=np.zeros(1), occupancy=np.ones(1), queue_veh=np.array([[4.0, 0.0]]),
            signal_state=sup.state.copy(), comm_age_s=np.zeros(1), fault=np.zeros(1, bool), extra=extra,
        )  # fmt: skip
        ctx = PolicyContext(float(t), 1.0, sup.target.copy(), sup.state.copy(), sup.state_time_s + 1.0, sup.walked)
        calls = np.array([[True, pushed or buttons == "none"]])  # the watchdog's, as the engine gives them
        out, _ = sup.step(pol.decide(obs, est.update(obs, 1.0), ctx), 1.0, calls=calls)
        if out[0, 1] == G and not was_green:
            walk_at.append(t)
        was_green = out[0, 1] == G
    if buttons == "none":
        assert len(walk_at) >= 5  # recall: the crossing walks at every turn
    elif buttons == "never pushed":
        assert walk_at == []
    else:
        assert len(walk_at) == 1 and 100 <= walk_at[0] <= 100 + 5 + 5  # after the vehicles' minimum and clearance


@pytest.mark.parametrize("moving", [True, False])
def test_a_full_zone_that_still_counts_arrivals_holds_its_stage(moving: bool) -> None:
    """A's zone is covered end to end and its halting count stands at 12 whether or not the queue moves.

    Moving (a vehicle enters the zone every 4 s, slower than the passage time: one must have left at
    the front), A keeps its
    stage well past the stall time; stalled (nothing enters), A gaps out after it and B is served.
    """
    net = Network((two_phase("J"),), nx.DiGraph())
    packed = pack(net.intersections)
    pol = AdaptivePolicy()
    pol.reset(net, packed)
    sup = SafetySupervisor(packed, startup_clearance=False, watchdog=False)
    est = DemandEstimator(detector_layout(net), packed.n, packed.g)
    a_green = 0
    for t in range(60):
        counts = np.array([1.0 if moving and t % 4 == 0 else 0.0, 0.0])
        obs = Observation(
            time_s=float(t), counts=counts, occupancy=np.array([0.7, 0.3]), queue_veh=np.array([[12.0, 3.0]]),
            signal_state=sup.state.copy(), comm_age_s=np.zeros(1), fault=np.zeros(1, bool),
        )  # fmt: skip
        ctx = PolicyContext(float(t), 1.0, sup.target.copy(), sup.state.copy(), sup.state_time_s + 1.0, sup.walked)
        out, _ = sup.step(pol.decide(obs, est.update(obs, 1.0), ctx), 1.0)
        a_green += int(out[0, 0] == G)
        if out[0, 1] == G:
            break
    if moving:
        assert a_green >= 40  # held to the adapted maximum, not cut at the stall time
    else:
        assert a_green <= 5 + int(pol.stall_s) + 2  # minimum green, then the stall ends it


def test_adaptive_gives_more_green_to_heavier_demand_and_serves_everyone() -> None:
    net = Network((two_phase("J"),), nx.DiGraph())
    with FakeBackend(net, arrival_rate_veh_s=np.array([[0.3, 0.06]]), seed=4) as be:
        Engine(be, make_policy("adaptive")).run(ticks=1800)
    shown = np.array(be.shown)
    a, b = (shown[:, 0, 0] == G).mean(), (shown[:, 0, 1] == G).mean()
    assert a > 2 * b > 0.05
    assert be.departed.sum() > 0.95 * be.arrived.sum()


def test_adaptive_beats_fixed_time_on_unbalanced_demand() -> None:
    from intersections.plan import PlanStage, TimingPlan

    net = Network((two_phase("J"),), nx.DiGraph())
    plan = {"J": TimingPlan("J", 60, 0, (PlanStage("SA", 25, 5), PlanStage("SB", 25, 5)))}
    mean_q = {}
    for name in ("fixed", "adaptive"):
        pol = make_policy(name, plans=plan) if name == "fixed" else make_policy(name)
        with FakeBackend(net, arrival_rate_veh_s=np.array([[0.3, 0.05]]), seed=9) as be:
            eng = Engine(be, pol)
            qs = []
            for _ in range(1800):
                eng.tick()
                qs.append(be.queue.sum())
        mean_q[name] = float(np.mean(qs))
    assert mean_q["adaptive"] < 0.6 * mean_q["fixed"]


def test_dead_detectors_fall_back_to_serving_in_turn() -> None:
    """Every detector reports NaN: the policy still cycles through all stages, safely."""

    class Dead(FakeBackend):
        def read(self):  # type: ignore[no-untyped-def]
            obs = super().read()
            nan = np.full_like(obs.counts, np.nan)
            return Observation(obs.time_s, nan, nan, np.full_like(obs.queue_veh, np.nan), obs.signal_state,
                               obs.comm_age_s, obs.fault)  # fmt: skip

    net = Network((four_leg("J"),), nx.DiGraph())
    with Dead(net, arrival_rate_veh_s=0.1, seed=1) as be:
        eng = Engine(be, make_policy("adaptive"))
        eng.run(ticks=900)
    shown = np.array(be.shown)
    served = (shown[:, 0, :5] == G).any(axis=0)
    assert served.all()
    assert eng.policy.detector_failed.all()


def test_failed_detectors_are_reported_once_by_the_engine() -> None:
    class Faulty(FakeBackend):
        def read(self):  # type: ignore[no-untyped-def]
            obs = super().read()
            if obs.time_s >= 50:
                c, o = obs.counts.copy(), obs.occupancy.copy()
                c[0] = o[0] = np.nan  # dead
                o[1], c[1] = 1.0, 0.0  # stuck on
                return Observation(obs.time_s, c, o, obs.queue_veh, obs.signal_state, obs.comm_age_s, obs.fault)
            return obs

    net = Network((two_phase("J"),), nx.DiGraph())
    with Faulty(net, arrival_rate_veh_s=0.1, seed=1) as be:
        eng = Engine(be, make_policy("adaptive", stuck_s=60.0), hires=True)
        eng.run(ticks=200)
    faults = [e for e in eng.events if e.kind == "detector_fault"]
    assert [e.message.split()[1] for e in faults] == ["dA", "dB"]
    assert faults[0].time_s == 50 and faults[1].time_s >= 50 + 60 - 1
    assert (eng.hires.table()[:, 2] == 84).sum() == 2


def test_passage_is_per_lane_of_an_approach_and_follows_failed_detectors() -> None:
    """3 s on a one-lane approach, 1.5 s on a two-lane one; a lane whose detectors fail stops counting."""
    net = Network((two_way_main_street("M"),), nx.DiGraph())
    packed = pack(net.intersections)
    lay = detector_layout(net)
    pol = AdaptivePolicy()
    pol.reset(net, packed)
    np.testing.assert_allclose(pol.passage_g[0, :2], [1.5, 3.0])

    def observe(dead: set[str]) -> np.ndarray:
        counts = np.array([np.nan if lay.ids[k].split("_", 1)[1] in dead else 0.0 for k in range(len(lay.ids))])
        obs = Observation(
            time_s=0.0, counts=counts, occupancy=np.where(np.isnan(counts), np.nan, 0.0),
            queue_veh=np.zeros((1, packed.g)), signal_state=np.zeros((1, packed.g), np.int8),
            comm_age_s=np.zeros(1), fault=np.zeros(1, bool),
        )  # fmt: skip
        pol._detectors(obs, 1.0)
        return pol.passage_g[0, :2].copy()

    np.testing.assert_allclose(observe({"w_in_0"}), [2.0, 3.0])  # three lanes heard over two approaches
    np.testing.assert_allclose(observe({"w_in_0", "w_in_1"}), [3.0, 3.0])  # one approach left blind
    np.testing.assert_allclose(observe({"n_in_0"}), [1.5, 3.0])  # side street: still one lane per approach heard
    np.testing.assert_allclose(observe(set()), [1.5, 3.0])  # restored


def _decide_on_queues(
    pol, sup, est, lay, t: int, queue: np.ndarray, extra: dict | None = None, counts: np.ndarray | None = None
) -> np.ndarray:
    """One 1-s decision of a single intersection on measured queues (and ``counts``; none by default)."""
    counts = np.zeros(len(lay.ids)) if counts is None else counts
    obs = Observation(
        time_s=float(t), counts=counts, occupancy=np.zeros(len(lay.ids)), queue_veh=queue,
        signal_state=sup.state.copy(), comm_age_s=np.zeros(1), fault=np.zeros(1, bool), extra=extra or {},
    )  # fmt: skip
    ctx = PolicyContext(
        float(t), 1.0, sup.target.copy(), sup.state.copy(), sup.state_time_s + (1.0 if t else 0), sup.walked.copy()
    )
    return pol.decide(obs, est.update(obs, 1.0), ctx)


@pytest.mark.parametrize("stall_s", [6.0, 1e9])
def test_a_queue_that_does_not_shrink_on_green_does_not_hold_the_stage(stall_s: float) -> None:
    """A standing queue that stays put on green (a permissive left waiting for a gap, a turn held by
    pedestrians) is not discharging: after stall_s the stage yields to the waiting one. Without the
    rule (stall_s huge) the same queue holds the stage until its maximum green."""
    net = Network((two_phase("J"),), nx.DiGraph())
    packed = pack(net.intersections)
    lay = detector_layout(net)
    pol = AdaptivePolicy(stall_s=stall_s)
    pol.reset(net, packed)
    sup = SafetySupervisor(packed)
    est = DemandEstimator(lay, packed.n, packed.g)
    switched_at = None
    for t in range(120):
        queue = np.array([[3.0, 3.0]])  # both groups: 3 standing vehicles, nobody leaves
        first_target = int(sup.target[0])
        out = _decide_on_queues(pol, sup, est, lay, t, queue)
        if t > 0 and first_target >= 0 and int(out[0]) not in (-1, first_target) and switched_at is None:
            switched_at = t
        sup.step(out, 1.0 if t else 0.0)
    assert switched_at is not None
    min_green = float(packed.min_green_s[0].max())
    if stall_s < 100:
        assert switched_at <= min_green + stall_s + 2
    else:
        assert switched_at > min_green + 6.0 + 2


def test_a_filtering_left_calls_its_protected_stage() -> None:
    """A left turn green in S1 only as a permissive movement (``Stage.yielding``) finds no gap there
    (its queue stands); protected in S2 it leaves at 0.5 veh/s once the opposing through has
    cleared (4 s). Its queue calls S2 and S2 is held while the queue discharges, so the left clears.
    Counted as served in S1 (the model before ``yielding``), S1 always outscored S2 and the left's
    stall in S1 carried over, so every S2 gapped out after a second and the left was never served:
    what happened on Wildau's main junction."""
    net = Network((permissive_left("P"),), nx.DiGraph())
    packed = pack(net.intersections)
    lay = detector_layout(net)
    pol = AdaptivePolicy()
    pol.reset(net, packed)
    sup = SafetySupervisor(packed)
    est = DemandEstimator(lay, packed.n, packed.g)
    ids = [g.id for g in net.intersections[0].groups]
    s2 = [s.id for s in net.intersections[0].stages].index("S2")
    nl = ids.index("NL")
    left_q, protected_s = 8.0, 0
    for t in range(240):
        queue = np.zeros((packed.n, packed.g))
        queue[0, ids.index("NS")] = 10.0  # a busy through keeps S1 attractive
        queue[0, ids.index("EW")] = 2.0
        queue[0, nl] = left_q
        out = _decide_on_queues(pol, sup, est, lay, t, queue)
        sup.step(out, 1.0 if t else 0.0)
        protected_s = protected_s + 1 if int(sup.target[0]) == s2 and sup.state[0, nl] == G else 0
        if protected_s > 4:
            left_q = max(left_q - 0.5, 0.0)  # protected, the opposing flow gone: saturation flow
    assert left_q <= pol.queue_threshold_veh, f"the filtering left kept {left_q} vehicles: S2 did not serve it"

