"""What a standard controller reports, read by central, and the emulator's pedestrians and preemption.

Over real sockets on 127.0.0.1 (NTCIP over UDP, Modbus over TCP) against the
emulator: ``preemptState`` through entry, track service, dwell and exit;
push-button calls in ``phaseStatusGroupPedCalls`` until the crossing walks;
detector alarms, ``localFreeStatus`` and ``coordCycleStatus`` as observation
columns and alarms. The last test drives the local controller without sockets:
a standard central's phase control leaves the controller to serve a push button.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from controller.backend import FakeBackend
from controller.engine import Engine
from controller.policies import make_policy
from field_io.commands import CommandBlock, CommandKind, StatusBits
from field_io.emulator.core import EmulatorConfig, LocalController, PreemptState
from field_io.modbus.backend import ModbusBackend
from field_io.ntcip.backend import NtcipBackend
from intersections.errors import InputError
from intersections.model import SignalState

GREEN = int(SignalState.GREEN)
FAST = {"speed": 20.0, "preempt_track_green_s": 3.0, "preempt_min_dwell_s": 3.0}


def _dedup(xs: list[int]) -> list[int]:
    return [x for k, x in enumerate(xs) if k == 0 or xs[k - 1] != x]


def test_preemption_runs_entry_track_dwell_exit_and_central_sees_each_step(example_net, emulator) -> None:
    emu = emulator(example_net, "ntcip", **FAST)
    inter = example_net.intersections[0]
    dwell_groups = [inter.group_index(g) for g in inter.stages[1].groups if not inter.group(g).is_pedestrian]
    backend = NtcipBackend(example_net, emu.endpoints, dt_s=0.05)
    states, active, dwell_green = [], [], []
    with backend:
        eng = Engine(backend, make_policy("actuated"))
        for k in range(140):
            if k == 10:
                emu.core.set_preempt(0, True)
            if k == 20:
                emu.core.set_preempt(0, False)  # a short call: the minimum dwell still runs in full
            obs = eng.tick().observation
            states.append(int(obs.extra["preempt_state"][0]))
            active.append(int(obs.extra["preempt_active"][0]))
            if states[-1] == PreemptState.DWELL:
                dwell_green.append(bool((obs.signal_state[0, dwell_groups] == GREEN).all()))
            if k > 30 and states[-1] == PreemptState.NOT_ACTIVE and PreemptState.DWELL in states:
                break
    seq = _dedup(states)
    assert seq[0] == PreemptState.NOT_ACTIVE and seq[-1] == PreemptState.NOT_ACTIVE, seq
    steps = [s for s in seq if s != PreemptState.NOT_ACTIVE]
    # Entry may pass within one poll when the track stage is already green; track service and dwell never do.
    assert PreemptState.TRACK_SERVICE in steps and PreemptState.DWELL in steps, seq
    assert steps.index(PreemptState.TRACK_SERVICE) < steps.index(PreemptState.DWELL), seq
    assert set(steps) <= {4, 5, 6, 8}, seq
    assert dwell_green and any(dwell_green), "the dwell stage's vehicle groups show green during dwell"
    assert max(active) == 1 and active[-1] == 0
    msgs = [m for _t, i, m in backend.alarms if i == "J1"]
    assert any(m.startswith("preempt active") for m in msgs) and "preempt ended (preemptState notActive)" in msgs


def test_push_button_call_is_reported_until_the_crossing_walks(example_net, emulator) -> None:
    """The controller runs its local plan (central only reads): the call stands in phaseStatusGroupPedCalls
    until the crossing's stage comes and it shows WALK, then it is answered."""
    emu = emulator(example_net, "ntcip", speed=20.0)
    inter = example_net.intersections[0]
    ped = inter.group_index("PED_E")
    backend = NtcipBackend(example_net, emu.endpoints, dt_s=0.05)
    calls, walk = [], []
    with backend:
        while backend.read().signal_state[0, ped] == GREEN:  # press while the crossing shows DON'T WALK
            backend.advance()
        emu.core.press_ped_button(0, ped)
        for _ in range(300):
            backend.advance()
            obs = backend.read()
            calls.append(bool(int(obs.extra["ped_calls"][0]) >> ped & 1))
            walk.append(bool(obs.signal_state[0, ped] == GREEN))
            if walk[-1] and not calls[-1]:
                break
    first_call, first_walk = calls.index(True), walk.index(True)
    assert first_call <= 3, "the call is reported at the controller's next tick"
    assert all(calls[first_call:first_walk]), "the call stands until the crossing walks"
    assert not calls[-1] and walk[-1], "answered once it walked"
    assert int(obs.extra["ped_calls"][0]) & ~(1 << ped) == 0  # no other crossing was called
    with pytest.raises(InputError, match="not a pedestrian crossing"):
        emu.core.press_ped_button(0, inter.group_index("P2"))


def test_detector_alarms_local_free_and_cycle_position_are_read(example_net, emulator) -> None:
    inter = example_net.intersections[0]
    ch = int(inter.detectors[0].channel)
    emu = emulator(example_net, "ntcip", speed=20.0, detector_faults={("J1", ch): "stuck"})
    backend = NtcipBackend(example_net, emu.endpoints, dt_s=0.05)
    cycle, free, alarms = [], [], []
    with backend:
        backend.read()
        for _ in range(30):
            backend.advance()
            obs = backend.read()
            cycle.append(int(obs.extra["coord_cycle_s"][0]))
            free.append(int(obs.extra["local_free_status"][0]))
            alarms.append(int(obs.extra["detector_alarms"][0]))
    assert set(free) == {2}  # notFree: the local plan runs coordinated
    assert alarms[-1] == 1
    # coordCycleStatus counts down through the local plan's cycle (NTCIP 1202, field-io.md §1.6).
    plan_cycle = emu.core.fallback_plans["J1"].cycle_s
    assert len(set(cycle)) > 5 and 0 <= min(cycle) and max(cycle) <= plan_cycle
    assert any(b < a for a, b in itertools.pairwise(cycle))
    assert ("J1", f"detector alarm on channels [{ch}]") in [(i, m) for _t, i, m in backend.alarms]


def test_preempt_bit_over_modbus(example_net, emulator) -> None:
    emu = emulator(example_net, "modbus", **FAST)
    backend = ModbusBackend(example_net, emu.endpoints, dt_s=0.05)
    seen = []
    with backend:
        backend.read()
        emu.core.set_preempt(0, True)
        for _ in range(60):
            backend.advance()
            seen.append(int(backend.read().extra["preempt_active"][0]))
            if seen[-1]:
                break
        emu.core.set_preempt(0, False)
        assert backend.status("J1").status_word & StatusBits.PREEMPT
        for _ in range(400):
            backend.advance()
            seen.append(int(backend.read().extra["preempt_active"][0]))
            if seen[-1] == 0:
                break
    assert _dedup(seen)[-2:] == [1, 0], _dedup(seen)


def test_standard_phase_control_serves_a_push_button(example_net) -> None:
    """Under a standard central's phase control (no stage named, no vehicle call) the controller rests;
    a push button calls the crossing's stage, which it then serves, and the call is answered."""
    t = [0.0]
    cfg = EmulatorConfig(backup_time_s=30.0, resume_heartbeats=1)
    core = LocalController(example_net, config=cfg, clock=lambda: t[0])
    plant = FakeBackend(example_net, seed=1, arrival_rate_veh_s=0.0)
    plant.open()
    engine = Engine(plant, core)
    inter = example_net.intersections[0]
    ped = inter.group_index("PED_E")
    assert core.submit_command(0, CommandBlock(seq=1, kind=CommandKind.STAGE), phase_control=True) == 0
    states = []
    for k in range(120):
        core.submit_heartbeat(0, k + 1)
        if k == 40:
            core.press_ped_button(0, ped)
        res = engine.tick()
        core.publish(res)
        states.append(res.states[0].copy())
        t[0] += 1.0
    assert core.in_control[0]
    walked = [k for k, s in enumerate(states) if s[ped] == GREEN]
    before = [k for k in walked if k < 40]
    assert walked and min(k for k in walked if k >= 40) < 80, "the call is served within a stage change or two"
    assert not core.ped_call[0].any()
    assert not before or max(before) < 40  # (WALK before the press only if that stage was running anyway)
    assert np.asarray(states).shape[0] == 120


def test_random_push_buttons_and_bad_settings(example_net) -> None:
    """``ped_calls_per_hour`` presses crossings only (Poisson); a negative rate or stage is refused in one line."""
    t = [0.0]
    core = LocalController(example_net, config=EmulatorConfig(ped_calls_per_hour=1800.0), clock=lambda: t[0])
    plant = FakeBackend(example_net, seed=1, arrival_rate_veh_s=0.0)
    plant.open()
    engine = Engine(plant, core)
    seen = np.zeros_like(core.ped_call)
    for _ in range(60):
        res = engine.tick()
        core.publish(res)
        seen |= core.ped_call
        t[0] += 1.0
    inter = example_net.intersections[0]
    crossings = [k for k, g in enumerate(inter.groups) if g.is_pedestrian]
    assert set(np.flatnonzero(seen[0])) <= set(crossings) and seen[0].sum() >= 2
    with pytest.raises(InputError, match="ped_calls_per_hour must be >= 0, got -1"):
        EmulatorConfig(ped_calls_per_hour=-1)
    with pytest.raises(InputError, match="0-based stage numbers"):
        EmulatorConfig(preempt_dwell_stage=-2)
