"""The emulator's local controller without sockets: watchdog, hand-back, rejects, and safety under any input."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.backend import FakeBackend
from controller.engine import Engine
from controller.safety import Mode
from field_io.commands import CommandBlock, CommandKind, ControllerMode, FaultBits, RejectReason, stage_request
from field_io.emulator.core import EmulatorConfig, LocalController
from field_io.emulator.plans import default_fallback_plan
from intersections.plan import PlanStage, TimingPlan


class Rig:
    """A controller on a fake plant, with a fake clock: one tick = one second."""

    def __init__(self, net, **cfg) -> None:
        self.t = 0.0
        self.core = LocalController(
            net, config=EmulatorConfig(backup_time_s=3.0, resume_heartbeats=2, **cfg), clock=lambda: self.t
        )
        self.plant = FakeBackend(net, seed=1)
        self.plant.open()
        self.engine = Engine(self.plant, self.core)
        self.hb = 0
        self.states = []

    def tick(self, n: int = 1, *, beat: bool = True, block: CommandBlock | None = None):
        res = None
        for _ in range(n):
            if beat:
                self.hb += 1
                self.core.submit_heartbeat(0, self.hb)
            if block is not None:
                self.core.submit_command(0, block)
            res = self.engine.tick()
            self.core.publish(res)
            self.states.append(res.states.copy())
            self.t += 1.0
        return res


def test_starts_on_the_local_plan_and_takes_central_only_with_heartbeats_and_a_block(example_net) -> None:
    rig = Rig(example_net)
    rig.tick(3, beat=False)
    assert rig.core.mode[0] == ControllerMode.LOCAL_PLAN
    rig.tick(3)  # heartbeats but no command block
    assert rig.core.mode[0] == ControllerMode.LOCAL_PLAN
    rig.tick(1, block=stage_request(1, 1, 3))
    rig.tick(2)
    assert rig.core.mode[0] == ControllerMode.CENTRAL_STAGE
    res = rig.tick(30)
    assert res.report.target[0] == 1


def test_watchdog_fallback_and_handback_needs_a_new_block(example_net) -> None:
    rig = Rig(example_net)
    rig.tick(3, block=stage_request(1, 2, 3))
    assert rig.core.in_control[0]
    rig.tick(5, beat=False)  # backup time 3 s
    core = rig.core
    assert core.mode[0] == ControllerMode.LOCAL_PLAN and core.fault_bits[0] & FaultBits.COMM_LOSS
    rig.tick(4, block=stage_request(1, 2, 3))  # fresh heartbeats, the *old* block again
    assert not core.in_control[0]
    assert core.submit_command(0, stage_request(2, 2, 3)) is RejectReason.NONE
    rig.tick(2)
    assert core.in_control[0] and not core.fault_bits[0] & FaultBits.COMM_LOSS


def test_rejects_keep_the_last_safe_command(example_net) -> None:
    rig = Rig(example_net)
    inter = example_net.intersections[0]
    core = rig.core
    rig.tick(3, block=stage_request(1, 1, 3))
    assert core.submit_command(0, CommandBlock(seq=2, kind=7)) is RejectReason.UNKNOWN_KIND
    assert core.submit_command(0, CommandBlock(seq=3, kind=CommandKind.STAGE, target_stage=9, call=1, hold=1)) is (
        RejectReason.STAGE_OUT_OF_RANGE
    )
    bad = TimingPlan(inter.id, 30.0, 0.0, (PlanStage("S1", 2.0, 6.0), PlanStage("S2", 2.0, 20.0)))  # below minimums
    assert core.submit_command(0, CommandBlock(seq=4, kind=CommandKind.PLAN, plan=bad)) is RejectReason.PLAN_INVALID
    assert core.submit_command(0, stage_request(1, 0, 3)) is RejectReason.SEQUENCE_REUSED  # seq 1, other content
    assert core.accepted_seq[0] == 1 and core.rejected_seq[0] == 1
    rig.tick(20)
    assert core.mode[0] == ControllerMode.CENTRAL_STAGE and rig.engine.supervisor.target[0] == 1


def test_fallback_plan_upload_needs_the_commissioning_switch(example_net) -> None:
    inter = example_net.intersections[0]
    plan = default_fallback_plan(inter, green_s=20)
    rig = Rig(example_net)
    assert rig.core.submit_fallback_plan(0, 5, plan, RejectReason.NONE) is RejectReason.NOT_COMMISSIONING
    rig.core.set_commissioning(0, True)
    assert rig.core.submit_fallback_plan(0, 5, plan, RejectReason.NONE) is RejectReason.NONE
    assert rig.core.fallback_plans["J1"].cycle_s == plan.cycle_s and rig.core.stored_seq[0] == 5


def test_plans_sent_before_the_engine_starts_are_played(example_net) -> None:
    """A protocol thread may SET a plan in the emulator's first milliseconds, before the engine's reset()."""
    inter = example_net.intersections[0]
    core = LocalController(example_net, config=EmulatorConfig(commissioning=True))
    local = default_fallback_plan(inter, green_s=20)
    central = default_fallback_plan(inter, green_s=25)
    assert core.submit_fallback_plan(0, 5, local, RejectReason.NONE) is RejectReason.NONE
    assert core.submit_command(0, CommandBlock(seq=1, kind=CommandKind.PLAN, plan=central)) is RejectReason.NONE
    assert core.fallback_policy.cycle_s[0] == local.cycle_s and core.plan_policy.cycle_s[0] == central.cycle_s
    Engine(FakeBackend(example_net, seed=1), core)  # reset(): the players are built again from the same plans
    assert core.fallback_policy.cycle_s[0] == local.cycle_s and core.plan_policy.cycle_s[0] == central.cycle_s


def test_local_flash_switch_makes_central_read_only(example_net) -> None:
    rig = Rig(example_net)
    rig.tick(3, block=stage_request(1, 1, 3))
    rig.core.set_local_flash(0, True)
    rig.plant.fail([0])
    assert rig.core.submit_command(0, stage_request(2, 2, 3)) is RejectReason.LOCAL_OVERRIDE
    rig.tick(30)
    assert rig.core.mode[0] == ControllerMode.FLASH
    assert (rig.states[-1][0, : len(example_net.intersections[0].groups)] == 3).all()  # flashing


events = st.lists(
    st.one_of(
        st.tuples(st.just("beat"), st.integers(0, 4)),
        st.tuples(st.just("silence"), st.integers(1, 6)),
        st.tuples(st.just("stage"), st.integers(-1, 4)),
        st.tuples(st.just("kind"), st.integers(0, 9)),
        st.tuples(st.just("plan"), st.integers(0, 40)),
        st.tuples(st.just("reseq"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(events)
def test_no_command_sequence_produces_an_unsafe_state(example_net, evs) -> None:
    """Whatever central sends or fails to send, the outputs pass the independent MMU check."""
    inter = example_net.intersections[0]
    rig = Rig(example_net)
    seq = 0
    for what, x in evs:
        block = None
        if what == "stage":
            seq += 1
            block = (
                stage_request(seq, x, 3)
                if 0 <= x < 3
                else CommandBlock(seq=seq, kind=1, target_stage=x, call=1, hold=1)
            )
        elif what == "kind":
            seq += 1
            block = CommandBlock(seq=seq, kind=x, target_stage=0, call=1, hold=1)
        elif what == "plan":
            seq += 1
            # Greens from 1 to 40 s, unchecked: over a group's maximum the controller must refuse the plan.
            base = default_fallback_plan(inter)
            stages = tuple(dataclasses.replace(s, green_s=float(max(1, x))) for s in base.stages)
            cycle = sum(s.green_s + s.intergreen_s for s in stages)
            p = dataclasses.replace(base, stages=stages, cycle_s=cycle)
            block = CommandBlock(seq=seq, kind=CommandKind.PLAN, plan=p)
        elif what == "reseq":
            block = stage_request(seq, x % 3, 3)  # same seq, maybe other content
        rig.tick(1 + (x if what == "beat" else 0), beat=what != "silence", block=block)
        if what == "silence":
            rig.tick(x, beat=False)
    sup = rig.engine.supervisor
    assert (sup.mode != Mode.FAULT).all(), "the supervisor latched a fault"
    conflicts = rig.engine.packed.conflicts[0]
    for s in rig.states:
        shown = (s[0] == 1) | (s[0] == 2)  # yellow or green
        assert not (conflicts & shown[:, None] & shown[None, :]).any(), "conflicting groups shown together"
