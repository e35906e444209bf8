"""Protocol-neutral command blocks, controller modes and reject codes.

Both protocols carry the same things: a heartbeat the field side watches, and
a *command block* (a sequence number, what to do, and a checksum) that the
controller applies whole or not at all. The Modbus profile writes the block
as registers with a CRC-16 (:mod:`field_io.modbus.profile`); NTCIP carries it
as one SET PDU (RFC 1157 §4.1.5: the variable bindings of one SetRequest are
applied "as if simultaneously", all or none).

What a block may ask for (:class:`CommandKind`): *release* (the controller
runs its own local plan), a *stage request* (call / hold / force-off masks
over stages: the controller sequences the change with its own minimum greens
and clearances), or a *plan* (cycle, offset, stage greens) the controller
runs locally. There is deliberately no kind for lamps, flash, dark or
clearance changes (``../shared/reference/field-io.md`` §3.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum, IntFlag

from intersections.model import Intersection
from intersections.plan import PlanStage, TimingPlan, plan_problems

__all__ = [
    "CommandKind",
    "ControllerMode",
    "RejectReason",
    "StatusBits",
    "FaultBits",
    "CommandBlock",
    "stage_request",
    "plan_entries",
    "plan_from_entries",
    "validate_block",
    "MAX_PLAN_STAGES",
    "quantize_plan",
]

MAX_PLAN_STAGES = 16


class CommandKind(IntEnum):
    RELEASE = 0  # central relinquishes control: the controller runs its local plan
    STAGE = 1  # stage request (call / hold / force-off masks, target stage)
    PLAN = 2  # run this plan (cycle, offset, stage greens) locally


class ControllerMode(IntEnum):
    """What the controller is doing (read-only status)."""

    LOCAL_PLAN = 0  # its own fixed-time plan: start-up, released, or watchdog fallback
    CENTRAL_STAGE = 1  # executing central stage requests
    CENTRAL_PLAN = 2  # running a plan commanded by central
    FLASH = 3  # local flash (manual switch or fail-safe): read-only status
    FAULT = 4  # conflict-monitor fault: latched flash until a technician resets


class RejectReason(IntEnum):
    NONE = 0
    CHECKSUM = 1  # CRC does not match: a half-written or corrupted block
    UNKNOWN_KIND = 2  # not release/stage/plan (there is no flash, dark or lamp command)
    STAGE_OUT_OF_RANGE = 3
    MASKS_INCONSISTENT = 4  # target stage not called and held, or also forced off
    PLAN_INVALID = 5  # check_plan fails against the controller's own timings
    PLAN_OUT_OF_RANGE = 6  # zero cycle, no stages, more stages than the profile carries
    LOCAL_OVERRIDE = 7  # local manual control, flash or fault: central is read-only
    NOT_COMMISSIONING = 8  # commissioning-only block written outside commissioning
    SEQUENCE_REUSED = 9  # same sequence number, different content
    FORBIDDEN = 10  # a forbidden value (flash, free) for an allowed object
    INCOMPLETE = 11  # a SET that does not carry the complete command block


class StatusBits(IntFlag):
    CENTRAL_CONTROL = 1 << 0
    FALLBACK = 1 << 1  # watchdog expired: running the local plan
    FLASH = 1 << 2
    MMU_FAULT = 1 << 3
    LOCAL_OVERRIDE = 1 << 4  # manual control / police panel
    COMMISSIONING = 1 << 5  # technician's commissioning switch is on
    DETECTOR_FAULT = 1 << 6
    LOCKSTEP = 1 << 7  # software-in-the-loop: advances one step per central step request
    STEP_WAITING = 1 << 8  # lockstep: waiting for the next step request
    HEARTBEAT_OK = 1 << 9  # a heartbeat arrived within the backup time
    PLANT_DONE = 1 << 10  # software-in-the-loop: the coupled simulation has ended
    PENDING_HANDBACK = 1 << 11  # a new block is accepted; control returns after fresh heartbeats
    PREEMPT = 1 << 12  # a preemption sequence runs: central's commands wait (NTCIP preemptState != notActive)


class FaultBits(IntFlag):
    COMM_LOSS = 1 << 0  # central heartbeats stopped for the backup time
    MMU = 1 << 1
    FLASH = 1 << 2
    DETECTOR = 1 << 3
    PLAN_REJECTED = 1 << 4
    LOCAL_OVERRIDE = 1 << 5


@dataclass(frozen=True)
class CommandBlock:
    """One command block. Stage numbers are 0-based indices into the intersection's stages.

    ``call``/``hold``/``force_off`` are bit masks over stages (bit k = stage
    k). ``plan`` is set for :attr:`CommandKind.PLAN`.
    """

    seq: int
    kind: int
    target_stage: int = -1
    call: int = 0
    hold: int = 0
    force_off: int = 0
    plan: TimingPlan | None = None
    extra: dict[str, int] = field(default_factory=dict, compare=False)

    def content(self) -> tuple:
        """Everything but the sequence number (for 'same seq, other content' checks)."""
        plan = None
        if self.plan is not None:
            plan = (
                round(self.plan.cycle_s, 1),
                round(self.plan.offset_s, 1),
                tuple((s.stage, round(s.green_s, 1), round(s.intergreen_s, 1)) for s in self.plan.stages),
            )
        return (int(self.kind), int(self.target_stage), self.call, self.hold, self.force_off, plan)


def stage_request(seq: int, target: int, n_stages: int) -> CommandBlock:
    """The block that asks for ``target``: call and hold it, force off every other stage."""
    everyone = (1 << n_stages) - 1
    bit = 1 << int(target)
    return CommandBlock(
        seq=seq, kind=CommandKind.STAGE, target_stage=int(target), call=bit, hold=bit, force_off=everyone & ~bit
    )


def plan_entries(plan: TimingPlan, inter: Intersection) -> list[tuple[int, float, float]]:
    """A plan as (stage index, green_s, intergreen_s) rows; stages must be the intersection's own."""
    by_id = {s.id: k for k, s in enumerate(inter.stages)}
    by_groups = {s.groups: k for k, s in enumerate(inter.stages)}
    out = []
    for st in plan.stages:
        k = by_groups.get(st.groups) if st.groups else by_id.get(st.stage)
        if k is None:
            raise ValueError(f"plan stage {st.stage!r} is not a stage of intersection {inter.id}")
        out.append((k, float(st.green_s), float(st.intergreen_s)))
    return out


def plan_from_entries(
    inter: Intersection, cycle_s: float, offset_s: float, entries: Sequence[tuple[int, float, float]], name: str = ""
) -> TimingPlan:
    stages = tuple(PlanStage(inter.stages[k].id, float(g), float(ig)) for k, g, ig in entries)
    return TimingPlan(inter.id, float(cycle_s), float(offset_s), stages, name=name)


def validate_block(block: CommandBlock, inter: Intersection) -> RejectReason:
    """Why the controller must refuse ``block``; :attr:`RejectReason.NONE` if it is sound.

    The plan is checked with the project's one plan checker against the
    controller's own timings (minimum greens, clearances, conflicts).
    """
    n = len(inter.stages)
    if block.kind == CommandKind.RELEASE:
        return RejectReason.NONE
    if block.kind == CommandKind.STAGE:
        t = block.target_stage
        if not 0 <= t < n:
            return RejectReason.STAGE_OUT_OF_RANGE
        valid = (1 << n) - 1
        if (block.call | block.hold | block.force_off) & ~valid:
            return RejectReason.STAGE_OUT_OF_RANGE
        bit = 1 << t
        if not (block.call & bit) or not (block.hold & bit) or (block.force_off & bit):
            return RejectReason.MASKS_INCONSISTENT
        return RejectReason.NONE
    if block.kind == CommandKind.PLAN:
        p = block.plan
        if p is None or not p.stages or len(p.stages) > MAX_PLAN_STAGES or p.cycle_s <= 0:
            return RejectReason.PLAN_OUT_OF_RANGE
        if plan_problems(p, inter):
            return RejectReason.PLAN_INVALID
        return RejectReason.NONE
    return RejectReason.UNKNOWN_KIND


def quantize_plan(plan: TimingPlan, step_s: float) -> TimingPlan:
    """The plan on a ``step_s`` grid (0.1 s for Modbus, 1 s for NTCIP), never shorter than asked.

    Greens and intergreens are rounded *up* (a clearance or a minimum green is
    never cut by rounding), the cycle is their sum, the offset is rounded to
    the nearest step.
    """

    def up(x: float) -> float:
        return round(math.ceil(float(x) / step_s - 1e-6) * step_s, 6)

    stages = tuple(replace(s, green_s=up(s.green_s), intergreen_s=up(s.intergreen_s)) for s in plan.stages)
    cycle = round(sum(s.green_s + s.intergreen_s for s in stages), 6)
    offset = round(round(float(plan.offset_s) / step_s) * step_s, 6) % cycle if cycle > 0 else 0.0
    return replace(plan, cycle_s=cycle, offset_s=offset, stages=stages)
