"""NTCIP 1202 encodings: phase-group bit masks, detector reports, stage <-> phase control, plans <-> patterns.

* Status and control groups (phaseStatusGroup*, phaseControlGroup*): INTEGER
  0..255, **bit 0 = phase 8g-7 ... bit 7 = phase 8g** for group g
  (NTCIP 1202 v02 text, field-io.md §1.4).
* ``detectorVolume``: vehicles in the last period, 0-254, 255 = overflow;
  ``detectorOccupancy``: 0-200 = 0-100 % in 0.5 % steps, above 200 fault
  codes (210 max presence, 211 no activity, 212 open loop, 213 shorted loop,
  214 excessive change, 216 watchdog, 217 erratic) that must never reach the
  optimiser as occupancy (field-io.md §1.7).
* A stage request becomes phase control: **hold** and **vehicle call** on the
  target stage's phases, **force-off** on every other phase in use; the
  controller's own logic times the change. The emulator inverts it exactly.
* A plan becomes a pattern: ``patternCycleTime``/``patternOffsetTime`` in
  whole seconds and one ``splitTime`` per phase, the split **including** the
  change and clearance intervals (NTCIP 1202 splitTime text, field-io.md
  §1.6); stages run in inventory order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from field_io.commands import CommandBlock, CommandKind, plan_entries
from field_io.mapping import FieldMap
from intersections.errors import InputError
from intersections.plan import PlanStage, TimingPlan, plan_problems

__all__ = [
    "phase_groups",
    "phases_to_masks",
    "masks_to_phases",
    "stage_phase_control",
    "phase_control_block",
    "plan_to_pattern",
    "pattern_to_plan",
    "occupancy_from_ntcip",
    "occupancy_to_ntcip",
    "volume_to_ntcip",
    "OCC_FAULTS",
]

OCC_FAULTS = {210: "max presence", 211: "no activity", 212: "open loop", 213: "shorted loop",
              214: "excessive change", 216: "watchdog", 217: "erratic"}  # fmt: skip


def phase_groups(max_phase: int) -> int:
    """Phase groups (of 8) needed to cover phases 1..max_phase."""
    return max(1, (int(max_phase) + 7) // 8)


def phases_to_masks(phases: Iterable[int], groups: int) -> list[int]:
    """Bit masks per phase group (group g covers phases 8g-7 .. 8g, bit 0 = the lowest)."""
    out = [0] * groups
    for p in phases:
        g, bit = divmod(int(p) - 1, 8)
        if 0 <= g < groups:
            out[g] |= 1 << bit
    return out


def masks_to_phases(masks: Iterable[int]) -> frozenset[int]:
    out = set()
    for g, m in enumerate(masks):
        for bit in range(8):
            if int(m) >> bit & 1:
                out.add(8 * g + bit + 1)
    return frozenset(out)


def stage_phase_control(fmap: FieldMap, target: int) -> tuple[list[int], list[int], list[int]]:
    """(hold, force-off, vehicle call) masks per phase group that ask for stage ``target``."""
    groups = phase_groups(fmap.max_phase)
    want = fmap.stage_phases[target]
    others = set(fmap.phases) - set(want)
    return phases_to_masks(want, groups), phases_to_masks(others, groups), phases_to_masks(want, groups)


def phase_control_block(
    fmap: FieldMap, seq: int, hold: frozenset[int], force: frozenset[int], call: frozenset[int]
) -> CommandBlock:
    """Phase-control bit masks -> the stage request they express (the controller side of the mapping)."""
    n = fmap.n_stages
    hold_m = call_m = force_m = 0
    target = -1
    for k, ph in enumerate(fmap.stage_phases):
        if ph and ph <= hold:
            hold_m |= 1 << k
        if ph and ph <= call:
            call_m |= 1 << k
        if ph & force:
            force_m |= 1 << k
        if ph == hold:
            target = k
    if target < 0 and hold:
        target = n  # no stage has exactly these phases: out of range, rejected by validate_block
    return CommandBlock(
        seq=seq, kind=CommandKind.STAGE, target_stage=target, call=call_m, hold=hold_m, force_off=force_m
    )


def plan_to_pattern(plan: TimingPlan, fmap: FieldMap) -> tuple[int, int, dict[int, int]]:
    """(cycle s, offset s, split s per phase) of a plan whose times are whole seconds.

    Raises :class:`InputError` when the plan cannot be expressed as an NTCIP
    pattern: fractional seconds, or a stage order other than the inventory's.
    """
    inter = fmap.intersection
    entries = plan_entries(plan, inter)
    where = f"intersection {inter.id}"
    order = [k for k, _g, _i in entries]
    if order != sorted(order) or len(set(order)) != len(order):
        raise InputError("an NTCIP pattern runs the stages in inventory order, each at most once", where=where)
    for v in (plan.cycle_s, plan.offset_s, *(g for _k, g, _i in entries), *(i for _k, _g, i in entries)):
        if abs(v - round(v)) > 1e-6:
            raise InputError("NTCIP patterns carry whole seconds: quantize the plan first", where=where)
    splits: dict[int, int] = {p: 0 for p in fmap.phases}
    for k, green, ig in entries:
        for p in fmap.stage_phases[k]:
            if splits[p]:
                raise InputError(f"phase {p} runs in two stages of the plan; use stage requests", where=where)
            splits[p] = round(green + ig)
    return round(plan.cycle_s), round(plan.offset_s), splits


def pattern_to_plan(cycle_s: int, offset_s: int, splits: Mapping[int, int], fmap: FieldMap) -> TimingPlan | None:
    """The plan a pattern describes (None if it is inconsistent: splits differ within a stage, do not sum
    to the cycle, or leave no room for the clearance)."""
    inter = fmap.intersection
    chosen = []
    for k, ph in enumerate(fmap.stage_phases):
        vals = {int(splits.get(p, 0)) for p in ph}
        if vals == {0}:
            continue
        if len(vals) != 1:
            return None
        chosen.append((k, vals.pop()))
    if not chosen or cycle_s <= 0 or sum(s for _k, s in chosen) != int(cycle_s):
        return None
    stages = []
    for j, (k, split) in enumerate(chosen):
        nxt = chosen[(j + 1) % len(chosen)][0]
        ig = 0.0 if len(chosen) == 1 else inter.transition_s(inter.stages[k].id, inter.stages[nxt].id)
        ig = float(math.ceil(ig - 1e-9))
        if split - ig < 0:
            return None
        stages.append(PlanStage(inter.stages[k].id, float(split - ig), ig))
    plan = TimingPlan(inter.id, float(cycle_s), float(offset_s % cycle_s), tuple(stages))
    return None if plan_problems(plan, inter) else plan


def occupancy_to_ntcip(occupancy: np.ndarray, full_scale: int = 200) -> np.ndarray:
    """0..1 -> 0..full_scale, rounded up so that any presence stays visible."""
    occ = np.clip(np.nan_to_num(np.asarray(occupancy, float)), 0.0, 1.0)
    return np.ceil(occ * full_scale - 1e-9).astype(np.int64)


def occupancy_from_ntcip(raw: np.ndarray, full_scale: int = 200) -> np.ndarray:
    """0..full_scale -> 0..1; fault codes and anything out of range -> NaN."""
    r = np.asarray(raw, float)
    return np.where((r >= 0) & (r <= full_scale), r / full_scale, np.nan)


def volume_to_ntcip(count: np.ndarray) -> np.ndarray:
    """Vehicles in the period, 0-254; 255 = overflow."""
    return np.clip(np.rint(np.asarray(count, float)), 0, 255).astype(np.int64)
