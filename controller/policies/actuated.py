"""Fully actuated control: gap-out / max-out per stage, skipping stages with no call.

The classic NEMA actuated logic (HCM 6th ed. ch. 19 "actuated control"; NTCIP
1202 phasePassage / phaseMaximum1, ``../shared/reference/field-io.md`` §1.3),
expressed on stages and vectorised over intersections:

* a group's detectors place a *call* while it is not green (latched until
  served); groups without detectors are on recall (always calling), except crossings
  whose push buttons the backend reports (``Observation.extra["ped_calls"]``: NTCIP ped
  calls, people waiting at the kerb in SUMO), which are called by somebody waiting;
* the current stage holds at least its minimum green (the supervisor enforces
  it too), then *gaps out* once every group of the stage has seen no vehicle
  for ``passage_s`` (the unit extension), or *maxes out* after the stage's
  maximum green (the smallest ``max_green_s`` of its groups);
* it then moves to the next stage in sequence that has a call; with no call
  anywhere it rests in the current green.
"""

from __future__ import annotations

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import Observation, crossing_calls, detector_layout
from controller.estimate import Estimate
from controller.events import EventCode
from controller.policies import register_policy
from controller.policies.base import Policy, PolicyContext
from controller.policies.common import actuations, next_stage_with_demand, presence, stage_green_elapsed_s
from controller.safety import HOLD
from intersections.model import SignalState
from intersections.network import Network

__all__ = ["ActuatedPolicy"]


@register_policy("actuated")
class ActuatedPolicy(Policy):
    name = "actuated"
    reads = frozenset({"counts", "occupancy", "extra"})  # calls and gaps from detectors; push buttons

    def __init__(self, passage_s: float = 3.0, max_green_scale: float = 1.0) -> None:
        if passage_s <= 0:
            raise ValueError("passage_s must be > 0")
        self.passage_s = float(passage_s)
        self.max_green_scale = float(max_green_scale)

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        self.packed = packed
        self.layout = detector_layout(network)
        has_det = np.zeros((packed.n, packed.g), bool)
        if len(self.layout.ids):
            has_det[self.layout.row, self.layout.group] = True
        self.recall = packed.group_valid & ~has_det
        self.gap_s = np.full((packed.n, packed.g), np.inf)
        self.calls = np.zeros((packed.n, packed.g), bool)
        big = np.where(packed.group_valid[:, None, :] & packed.stage_mask, packed.max_green_s[:, None, :], np.inf)
        self.stage_max_s = big.min(axis=2) * self.max_green_scale  # (N, S)
        self.stage_min_s = packed.stage_min_green_s  # (N, S)
        self.last_termination = np.zeros(packed.n, np.int16)

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        p = self.packed
        act = actuations(obs, self.layout, p.n, p.g)
        self.gap_s = np.where(act, 0.0, self.gap_s + ctx.dt_s)
        green = ctx.state == int(SignalState.GREEN)
        present = presence(obs, self.layout, p.n, p.g)
        recall = self.recall
        pushed = crossing_calls(obs, p)
        if pushed is not None:  # crossings with push buttons: called by a waiting person, not on recall
            present = present | pushed
            recall = recall & ~p.is_pedestrian
        self.calls = (self.calls | present | recall) & ~green & p.group_valid
        if ctx.served is not None:
            self.calls &= ~ctx.served  # a crossing that has walked this stage calls again in the next
        stage_demand: np.ndarray = np.any(p.stage_mask & self.calls[:, None, :], axis=2)

        rows = np.arange(p.n)
        cur = ctx.target
        elapsed = stage_green_elapsed_s(ctx, p)
        has = cur >= 0
        cur_c = np.where(has, cur, 0)
        members = p.stage_groups(cur)
        gapped = ~(members & (self.gap_s < self.passage_s)).any(axis=1)
        maxed = elapsed >= self.stage_max_s[rows, cur_c]
        past_min = elapsed >= self.stage_min_s[rows, cur_c]
        nxt = next_stage_with_demand(cur, stage_demand, p.stage_valid)
        switch = has & past_min & (gapped | maxed) & (nxt >= 0) & (nxt != cur)
        out = np.where(switch, nxt, HOLD)
        # Why the stage ends (Indiana 4 gap-out / 5 max-out), logged by the engine's event recorder.
        term = np.zeros(p.n, np.int16)
        term[switch & gapped] = EventCode.GAP_OUT
        term[switch & ~gapped & maxed] = EventCode.MAX_OUT
        self.last_termination = term
        # Start-up: no stage yet -> the first stage with a call, else stage 0.
        first = next_stage_with_demand(np.full(p.n, -1), stage_demand, p.stage_valid)
        return np.where(has, out, np.where(first >= 0, first, 0))
