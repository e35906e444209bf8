"""Operator overrides never bypass the safety supervisor (OverridePolicy + CentreBackend on the fake backend)."""

from __future__ import annotations

import networkx as nx
import numpy as np
from gwfactories import four_leg, two_phase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.server.control import CentreBackend, OverrideMode, OverridePolicy
from controller.backend import FakeBackend
from controller.engine import Engine
from controller.policies import make_policy
from controller.safety import Mode, mmu_faults
from intersections.model import SignalState
from intersections.network import Network
from intersections.plan import PlanStage, TimingPlan

GREEN, YELLOW = int(SignalState.GREEN), int(SignalState.YELLOW)


def _setup() -> tuple[Engine, OverridePolicy, CentreBackend]:
    net = Network((four_leg("J1"), two_phase("J2")), nx.DiGraph())
    backend = CentreBackend(FakeBackend(net, arrival_rate_veh_s=0.2, seed=1))
    backend.open()
    policy = OverridePolicy(make_policy("actuated"))
    return Engine(backend, policy), policy, backend


def _plan(inter_id: str, engine: Engine) -> TimingPlan:
    inter = engine.network.get(inter_id)
    stages = []
    for k, s in enumerate(inter.stages):
        nxt = inter.stages[(k + 1) % len(inter.stages)]
        stages.append(PlanStage(s.id, 20.0, inter.clearance_between_s(s.groups, nxt.groups)))
    return TimingPlan(inter_id, sum(x.green_s + x.intergreen_s for x in stages), 0.0, tuple(stages))


def _check_safe(engine: Engine, res: object) -> None:
    # The supervisor's own independent check must never have fired.
    assert not res.report.violation.any()  # type: ignore[attr-defined]
    shown = (res.states == GREEN) | (res.states == YELLOW)  # type: ignore[attr-defined]
    clash = (engine.packed.conflicts & shown[:, :, None] & shown[:, None, :]).any()
    assert not clash


def test_fixed_plan_hold_and_flash_go_through_the_supervisor() -> None:
    engine, policy, backend = _setup()
    try:
        policy.set_fixed(0, _plan("J1", engine))
        policy.set_hold(1, 1)
        for _ in range(200):
            res = engine.tick()
            _check_safe(engine, res)
        assert res.report.target[1] == 1  # the held stage is served
        # Flash request: an orderly clearance (yellow, all-red), then flash; never a jump.
        policy.set_flash(0)
        backend.flash_request[0] = True
        modes = []
        for _ in range(30):
            res = engine.tick()
            _check_safe(engine, res)
            modes.append(int(res.report.mode[0]))
        assert modes[0] == Mode.CLEARING and modes[-1] == Mode.FLASH
        # Back to adaptive: through all-red, no violation.
        policy.set_adaptive(0)
        backend.flash_request[0] = False
        for _ in range(60):
            res = engine.tick()
            _check_safe(engine, res)
        assert res.report.mode[0] == Mode.NORMAL
    finally:
        backend.close()


def test_link_cut_goes_stale_then_fail_safe() -> None:
    engine, _policy, backend = _setup()
    try:
        for _ in range(20):
            engine.tick()
        backend.link_down[1] = True
        seen = []
        for _ in range(40):
            res = engine.tick()
            seen.append(int(res.report.mode[1]))
            assert np.isnan(res.observation.queue_veh[1]).all()
        assert res.observation.comm_age_s[1] > engine.comm_timeout_s
        assert Mode.FLASH in seen and res.report.mode[0] == Mode.NORMAL
    finally:
        backend.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from(list(OverrideMode)), st.integers(0, 3), st.integers(1, 25)),
        min_size=1,
        max_size=12,
    )
)
def test_any_sequence_of_operator_overrides_is_safe(ops: list[tuple[int, OverrideMode, int, int]]) -> None:
    """Whatever operators switch, and however often, the supervisor's MMU check never fires."""
    engine, policy, backend = _setup()
    try:
        plans = [_plan("J1", engine), _plan("J2", engine)]
        prev_state = engine.supervisor.state.copy()
        for row, mode, stage, ticks in ops:
            backend.flash_request[row] = mode is OverrideMode.FLASH
            if mode is OverrideMode.FIXED:
                policy.set_fixed(row, plans[row])
            elif mode is OverrideMode.HOLD:
                policy.set_hold(row, stage % int(engine.packed.n_stages[row]))
            elif mode is OverrideMode.FLASH:
                policy.set_flash(row)
            else:
                policy.set_adaptive(row)
            for _ in range(ticks):
                sup = engine.supervisor
                prev_state, prev_time = sup.state.copy(), sup.state_time_s.copy()
                res = engine.tick()
                _check_safe(engine, res)
                assert not mmu_faults(
                    engine.packed, prev_state, prev_time, sup.since_green_end_s, res.states, engine.dt_s
                ).any()
    finally:
        backend.close()
