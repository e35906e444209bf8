"""Actuated and max-pressure policies on the fake backend."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest
from gwfactories import two_phase

from controller.backend import FakeBackend
from controller.engine import Engine
from controller.policies import make_policy
from controller.policies.common import next_stage_with_demand
from intersections.model import SignalState
from intersections.network import Network

G = int(SignalState.GREEN)


def one() -> Network:
    return Network((two_phase("J"),), nx.DiGraph())


def green_share(shown: np.ndarray, group: int) -> float:
    return float((shown[:, 0, group] == G).mean())


def test_next_stage_with_demand_wraps_and_skips() -> None:
    demand = np.array([[True, False, True, False], [False, False, False, False], [False, True, False, False]])
    valid = np.ones((3, 4), bool)
    assert next_stage_with_demand(np.array([0, 1, 1]), demand, valid).tolist() == [2, -1, 1]
    assert next_stage_with_demand(np.array([2, -1, 3]), demand, valid).tolist() == [0, -1, 1]


def test_actuated_rests_in_green_without_conflicting_calls() -> None:
    with FakeBackend(one(), arrival_rate_veh_s=np.array([[0.2, 0.0]]), seed=3) as be:
        Engine(be, make_policy("actuated")).run(ticks=300)
    shown = np.array(be.shown)
    assert green_share(shown[20:], 0) == 1.0


def test_actuated_gaps_out_and_serves_both() -> None:
    rates = np.array([[0.25, 0.08]])
    with FakeBackend(one(), arrival_rate_veh_s=rates, seed=3) as be:
        eng = Engine(be, make_policy("actuated", passage_s=2.0))
        eng.run(ticks=1200)
    shown = np.array(be.shown)
    a, b = green_share(shown, 0), green_share(shown, 1)
    assert a > b > 0.1
    assert be.queue.max() < 15
    # Max-out: no green of A is longer than its 60 s maximum.
    run, longest = 0, 0
    for v in shown[:, 0, 0]:
        run = run + 1 if v == G else 0
        longest = max(longest, run)
    assert longest <= 60


def test_max_pressure_favours_the_heavier_approach_without_starving() -> None:
    rates = np.array([[0.3, 0.05]])
    worst = 0
    red_queued = 0
    with FakeBackend(one(), arrival_rate_veh_s=rates, seed=5) as be:
        eng = Engine(be, make_policy("max-pressure", max_red_s=90.0))
        for _ in range(1800):
            res = eng.tick()
            # Time B has had a queue without being green.
            red_queued = red_queued + 1 if res.states[0, 1] != G and be.queue[0, 1] > 0.5 else 0
            worst = max(worst, red_queued)
    shown = np.array(be.shown)
    assert green_share(shown, 0) > 2 * green_share(shown, 1) > 0
    assert be.departed.sum() > 0.9 * be.arrived.sum()
    # Forced after max_red_s, then at most A's remaining min green and the intergreen.
    assert worst <= 90 + 5 + 5 + 1


def test_max_pressure_beats_a_bad_fixed_plan_on_queues() -> None:
    from intersections.plan import PlanStage, TimingPlan

    rates = np.array([[0.3, 0.05]])
    plan = {"J": TimingPlan("J", 60, 0, (PlanStage("SA", 25, 5), PlanStage("SB", 25, 5)))}
    out = {}
    for name, pol in (("fixed", make_policy("fixed", plans=plan)), ("mp", make_policy("max-pressure"))):
        with FakeBackend(one(), arrival_rate_veh_s=rates, seed=11) as be:
            eng = Engine(be, pol)
            qs = []
            for _ in range(1800):
                eng.tick()
                qs.append(be.queue.sum())
        out[name] = np.mean(qs)
    assert out["mp"] < 0.6 * out["fixed"]


def test_pressure_map_is_the_pressure_formula(tmp_path: Path) -> None:
    """The folded sparse map gives Varaiya's stage pressure exactly as the formula spells it."""
    from sumo_nets import grid

    from controller.arrays import pack
    from controller.policies.common import downstream_matrix, group_lanes
    from controller.policies.max_pressure import pressure_map, stage_pressure
    from intersections.loaders.sumo_net import load_sumo_net

    net = load_sumo_net(grid(tmp_path, n=3))
    p = pack(net.intersections)
    down = downstream_matrix(net, p)
    assert down.rows.size > 0  # the grid's links feed each other
    w = group_lanes(net, p) * p.group_valid
    pm = pressure_map(down, w, p.stage_mask)
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.uniform(0, 30, (p.n, p.g)) * p.group_valid
        formula = stage_pressure(q, (down @ q.ravel()).reshape(q.shape), w, p.stage_mask.astype(float))
        np.testing.assert_allclose((pm @ q.ravel()).reshape(p.n, p.s), formula, atol=1e-9)


def test_max_pressure_kernel_decides_as_the_rule_reads(tmp_path: Path) -> None:
    """The compiled decision against the rule spelled out in numpy: pressure by the formula,
    a movement's share scaled by the share of its exit lanes not jammed (capacity-aware), starving
    stages first (longest wait first; a group whose every exit is jammed holds its wait and forces
    nothing), a switch only once the current stage has served its ready time and the best beats it
    by the margin; no stage yet: the best at once."""
    from sumo_nets import grid

    from controller.arrays import pack
    from controller.estimate import Estimate
    from controller.policies.base import PolicyContext
    from controller.policies.common import downstream_matrix, group_lanes
    from controller.policies.kernels import STARVING_SCORE
    from controller.policies.max_pressure import MaxPressurePolicy, stage_pressure
    from controller.safety import HOLD
    from intersections.loaders.sumo_net import load_sumo_net

    net = load_sumo_net(grid(tmp_path, n=3))
    p = pack(net.intersections)
    pol = MaxPressurePolicy(min_stage_s=5.0, switch_margin=1.0, max_red_s=20.0)
    pol.reset(net, p)
    down, w = downstream_matrix(net, p), group_lanes(net, p) * p.group_valid
    rng = np.random.default_rng(5)
    decided = switched = starved = held = 0
    for it in range(300):
        q = rng.uniform(0, 12, (p.n, p.g)) * p.group_valid
        # Half the ticks without exit detection (None: not blocked), half with jammed exits.
        exit_share = rng.choice([0.0, 0.0, 0.0, 0.5, 1.0], (p.n, p.g)) if it % 2 else np.zeros((p.n, p.g))
        obs = None if it % 2 == 0 else SimpleNamespace(exit_blocked=exit_share)
        target = rng.integers(-1, p.s, p.n)
        target = np.where(p.stage_valid[np.arange(p.n), np.maximum(target, 0)], target, 0)
        shown = p.stage_groups(target) | (rng.random((p.n, p.g)) < 0.1)
        state = np.where(shown, int(SignalState.GREEN), int(SignalState.RED)).astype(np.int8)
        times = rng.choice([0.0, 3.0, 8.0, 20.0, 40.0], (p.n, p.g))
        pol.red_s = rng.choice([0.0, 5.0, 19.5, 24.0, 30.0, 45.0], (p.n, p.g)) * p.group_valid
        red_before = pol.red_s.copy()
        ctx = PolicyContext(0.0, 1.0, target.copy(), state, times)
        est = Estimate(flow_veh_h=0 * q, occupancy=0 * q, queue_veh=q, detector_ok=np.ones(0, bool))
        got = pol.decide(obs, est, ctx)  # type: ignore[arg-type]  # the estimate and the exits only
        # The rule, spelled out.
        pressure = stage_pressure(
            q, (down @ q.ravel()).reshape(q.shape), w * (1.0 - exit_share), p.stage_mask.astype(float)
        )
        pressure[~p.stage_valid] = -np.inf
        full = exit_share >= 1.0
        waiting = (q > 0.5) & (state != SignalState.GREEN) & p.group_valid
        red = np.where(waiting, np.where(full, red_before, red_before + 1.0), 0.0)
        np.testing.assert_array_equal(pol.red_s, red)
        held += int((waiting & full & (red_before > 20.0)).sum())
        forcing = np.where(full, 0.0, red)
        member = p.stage_mask & (forcing > 20.0)[:, None, :] & p.stage_valid[:, :, None]
        wait = np.where(member, forcing[:, None, :], 0).max(axis=2)
        score = np.where(member.any(axis=2), STARVING_SCORE + wait, pressure)
        best = score.argmax(axis=1)
        rows = np.arange(p.n)
        cur = np.maximum(target, 0)
        ready_s = (p.stage_min_green_s + 5.0)[rows, cur]
        ready = ~(p.stage_groups(target) & ~((state == SignalState.GREEN) & (times >= ready_s[:, None]))).any(axis=1)
        go = (ready & (score[rows, best] > score[rows, cur] + 1.0) & (best != target)) | (target < 0)
        # The formula sums in another order than the folded map: leave out near-ties, where that may tip it.
        top2 = np.sort(score, axis=1)[:, -2:]

        def near(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.isclose(a, b, rtol=0.0, atol=1e-6)

        close = near(score[rows, best], score[rows, cur] + 1.0) | near(top2[:, 0], top2[:, 1])
        want = np.where(go, best, HOLD)
        bad = np.flatnonzero((got != want) & ~close)
        assert not bad.size, (bad, got[bad], want[bad], score[bad].tolist(), target[bad])
        decided += int((target >= 0).sum())
        switched += int((got >= 0).sum())
        starved += int(member.any())
    assert decided > 1000 and switched > 200 and starved > 50  # every branch taken, many times
    assert held > 20  # jammed groups past the bound that the rule kept from forcing their stage


class _JammedExit(FakeBackend):
    """The fake point-queue model with a measured exit: ``jam[t]`` (N, G) shares reported at tick t."""

    def __init__(self, *a: object, jam: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.jam = jam

    def read(self):  # type: ignore[no-untyped-def]
        obs = super().read()
        share = np.asarray(self.jam(self.time_s), float)  # type: ignore[operator]
        return dataclasses.replace(obs, exit_blocked=share)

    def advance(self) -> float:
        # A group whose every exit is jammed releases nobody, even on green (the jam is real).
        held = np.asarray(self.jam(self.time_s), float) >= 1.0  # type: ignore[operator]
        shown = self.state
        self.state = np.where(held, int(SignalState.RED), shown).astype(np.int8)
        try:
            return super().advance()
        finally:
            self.state = shown


@pytest.mark.parametrize("controller", ["max-pressure", "adaptive"])
def test_a_group_whose_exit_is_jammed_gets_no_green_and_the_other_is_served(controller: str) -> None:
    """A's exit jammed from 0 to 600 s: A (the heavier approach) is not given green, B is served;
    once the jam clears A is served again. The jam never forces A's stage through starvation."""

    def jam(t: float) -> np.ndarray:
        return np.array([[1.0 if t < 600 else 0.0, 0.0]])

    with _JammedExit(one(), arrival_rate_veh_s=np.array([[0.2, 0.08]]), seed=2, jam=jam) as be:
        Engine(be, make_policy(controller)).run(ticks=1200)
    shown = np.array(be.shown)
    jammed, free = shown[60:600], shown[700:]  # (the first stage, taken at once with no demand, aside)
    assert green_share(jammed, 0) == 0.0 and green_share(jammed, 1) > 0.9
    assert green_share(free, 0) > 0.3 and green_share(free, 1) > 0.05


@pytest.mark.parametrize("controller", ["max-pressure", "adaptive"])
def test_a_stage_whose_exit_jams_ends_so_the_cross_street_can_clear_it(controller: str) -> None:
    """A is green on a standing queue when its exit jams: its stage ends once its minimum green is
    served, and B (waiting) gets green although A still has a queue; A is not served during the jam."""
    jam_from = [np.inf]

    def jam(t: float) -> np.ndarray:
        return np.array([[1.0 if jam_from[0] <= t < jam_from[0] + 100 else 0.0, 0.0]])

    with _JammedExit(one(), arrival_rate_veh_s=np.array([[0.45, 0.05]]), seed=4, jam=jam) as be:
        eng = Engine(be, make_policy(controller))
        for _ in range(200):
            eng.tick()
        while not (be.state[0, 0] == G and be.queue[0, 0] > 5 and be.queue[0, 1] >= 2):  # A green, both queued
            eng.tick()
        jam_from[0] = be.time_s
        t0 = len(be.shown)
        for _ in range(100):
            eng.tick()
    shown = np.array(be.shown)
    assert be.queue[0, 0] > 5  # A still has vehicles: only its exit stopped it
    # A's minimum green (5 s), the change interval (5 s) and a tick or two: then B is green throughout.
    after = shown[t0 + 12 : t0 + 100, 0]
    assert (after[:, 1] == G).all() and not (after[:, 0] == G).any()


def test_without_exit_detection_max_pressure_decides_as_before() -> None:
    """A backend with no exit detection (None) and one reporting nothing jammed (zeros) or not
    measured (NaN) give identical runs."""
    runs = []
    for value in (None, 0.0, np.nan):
        cls = FakeBackend if value is None else _JammedExit
        kw = {} if value is None else {"jam": lambda t, v=value: np.full((1, 2), v)}
        with cls(one(), arrival_rate_veh_s=np.array([[0.2, 0.1]]), seed=9, **kw) as be:
            Engine(be, make_policy("max-pressure")).run(ticks=600)
        runs.append(np.array(be.shown))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
