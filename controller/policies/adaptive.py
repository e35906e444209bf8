"""greenwave's adaptive policy: queue-clearing stages, chosen by pressure, bounded by starvation.

The algorithm (``docs/adaptive.md`` has the equations and sources) combines
what the field's evidence says works, decided for all intersections at once
from arrays:

1. **Serve a stage while it discharges a queue** (SURTRAC's schedule view,
   Smith et al. 2013: a green is worth keeping while vehicles are released at
   saturation flow). The current stage stays green while one of its groups
   still has a standing queue that can leave (not blocked downstream), or a
   vehicle has arrived within ``passage_s`` (the NTCIP unit extension).
2. **Switch to the stage of highest pressure** (Varaiya 2013 max-pressure:
   queue minus downstream queue, weighted by lanes) amplified by how long its
   vehicles have waited, once the current stage has served its minimum green.
   A switch costs the intergreen for everybody, so while the current stage
   still discharges it only yields to a stage whose pressure exceeds
   ``switch_ratio`` times its own (hysteresis), and it always yields at the
   stage's maximum green, which is adapted to the measured degree of
   saturation (SCATS: more green where more demand, bounded by the groups'
   configured maximum).
3. **Spillback protection**: a movement whose downstream link is nearly full
   (queue over ``spillback_fraction`` of its storage) counts no demand, so
   green is never given or kept for traffic that cannot leave.
4. **No starvation**: a group with demand that has been red longer than
   ``max_red_s`` forces its stage, whatever the pressures (the bound the
   property tests check).
5. **Degraded detection**: a detector that reports NaN (failed) or is stuck
   on (occupancy ≥ 0.99 for ``stuck_s``) stops counting; its group falls back
   to a fixed share of demand (recall), so it is neither starved nor favoured.

Every decision is a stage request and goes through the safety supervisor.
No constant depends on a scenario: the parameters are engineering values
tuned once, over all library scenarios, and the policy runs unchanged on
networks it has never seen.
"""

from __future__ import annotations

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import Observation, detector_layout
from controller.estimate import Estimate
from controller.events import EventCode
from controller.policies import register_policy
from controller.policies.base import PolicyContext
from controller.policies.common import downstream_matrix, group_lanes, stage_green_elapsed_s
from controller.safety import HOLD
from intersections.model import DetectorKind, SignalState
from intersections.network import Network

__all__ = ["AdaptivePolicy"]

GREEN = int(SignalState.GREEN)
VEHICLE_SPACING_M = 7.0  # jam spacing of a car; a motorcycle takes about a third (PCU ~0.3)


@register_policy("adaptive")
class AdaptivePolicy:
    name = "adaptive"

    def __init__(
        self,
        *,
        passage_s: float = 2.5,
        switch_ratio: float = 2.0,
        wait_weight_s: float = 60.0,
        max_red_s: float = 120.0,
        spillback_fraction: float = 0.85,
        min_max_green_s: float = 20.0,
        stuck_s: float = 120.0,
        queue_threshold_veh: float = 0.5,
    ) -> None:
        self.passage_s = float(passage_s)
        self.switch_ratio = float(switch_ratio)
        self.wait_weight_s = float(wait_weight_s)
        self.max_red_s = float(max_red_s)
        self.spillback_fraction = float(spillback_fraction)
        self.min_max_green_s = float(min_max_green_s)
        self.stuck_s = float(stuck_s)
        self.queue_threshold_veh = float(queue_threshold_veh)

    # ------------------------------------------------------------------
    def reset(self, network: Network, packed: PackedNetwork) -> None:
        self.packed = packed
        n, g = packed.n, packed.g
        self.layout = detector_layout(network)
        self.down = downstream_matrix(network, packed)
        self.weight = group_lanes(network, packed) * packed.group_valid
        self.has_detector = np.zeros((n, g), bool)
        if len(self.layout.ids):
            self.has_detector[self.layout.row, self.layout.group] = True
        self.flat = self.layout.row * g + self.layout.group
        self.advance = np.array(
            [d.kind is DetectorKind.ADVANCE for i in network.intersections for d in i.detectors], bool
        )
        # Storage of each movement's downstream link, in vehicles (all lanes).
        storage = np.full((n, g), np.inf)
        edge_len: dict[str, tuple[float, int]] = {
            d["id"]: (d["length_m"], d["lanes"]) for _u, _v, d in network.graph.edges(data=True)
        }
        for r, inter in enumerate(network.intersections):
            for k, grp in enumerate(inter.groups):
                caps = [edge_len[m.to_edge] for m in grp.movements if m.to_edge in edge_len and m.turn != "p"]
                if caps:
                    storage[r, k] = min(length * lanes / VEHICLE_SPACING_M for length, lanes in caps)
        self.storage = storage
        # Stage maximum: the smallest configured max green of its groups.
        big = np.where(packed.stage_mask, packed.max_green_s[:, None, :], np.inf)
        self.stage_max_s = np.where(packed.stage_valid, big.min(axis=2), 0.0)
        self.stage_min_s = np.where(packed.stage_mask, packed.min_green_s[:, None, :], 0.0).max(axis=2)
        self.since_arrival_s = np.full((n, g), np.inf)
        self.red_wait_s = np.zeros((n, g))
        self.stuck_for_s = np.zeros(len(self.layout.ids))
        self.last_termination = np.zeros(n, np.int16)
        self.detector_failed = np.zeros(len(self.layout.ids), bool)

    # ------------------------------------------------------------------
    def _detectors(self, obs: Observation, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Healthy arrivals per group this tick and a per-group 'no usable detector' mask."""
        p = self.packed
        n, g = p.n, p.g
        if not len(self.layout.ids):
            return np.zeros((n, g)), ~self.has_detector & p.group_valid
        counts = np.asarray(obs.counts, float)
        occ = np.asarray(obs.occupancy, float)
        nan = ~np.isfinite(counts) | ~np.isfinite(occ)
        self.stuck_for_s = np.where(np.nan_to_num(occ) >= 0.99, self.stuck_for_s + dt, 0.0)
        failed = nan | (self.stuck_for_s >= self.stuck_s)
        self.detector_failed = failed
        ok = ~failed
        arrivals = np.bincount(self.flat[ok], weights=np.nan_to_num(counts)[ok], minlength=n * g).reshape(n, g)
        healthy = np.bincount(self.flat[ok], minlength=n * g).reshape(n, g) > 0
        blind = p.group_valid & ~healthy
        return arrivals, blind

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        p = self.packed
        dt = ctx.dt_s
        rows = np.arange(p.n)
        arrivals, blind = self._detectors(obs, dt)
        q = np.where(np.isfinite(obs.queue_veh), obs.queue_veh, est.queue_veh) * p.group_valid
        # Blind groups (no or failed detectors) get a recall-like constant demand: served in turn,
        # neither starved nor favoured.
        q = np.where(blind, 1.0, q)
        self.since_arrival_s = np.where(arrivals > 0, 0.0, self.since_arrival_s + dt)

        down = (self.down @ q.ravel()).reshape(q.shape)
        blocked = down >= self.spillback_fraction * self.storage
        demand = np.where(blocked, 0.0, q)
        green = ctx.state == GREEN
        waiting = ~green & (demand > self.queue_threshold_veh) & p.group_valid
        self.red_wait_s = np.where(waiting, self.red_wait_s + dt, 0.0)

        w = self.weight
        pressure_g = w * np.maximum(demand - down, 0.0) * (1.0 + self.red_wait_s / self.wait_weight_s)
        mask = p.stage_mask.astype(float)
        pressure = np.einsum("nsg,ng->ns", mask, pressure_g)
        pressure = np.where(p.stage_valid, pressure, -np.inf)
        starving = self.red_wait_s > self.max_red_s
        starving_stage = (p.stage_mask & starving[:, None, :]).any(axis=2) & p.stage_valid
        score = np.where(starving_stage, np.inf, pressure)

        cur = ctx.target
        has = cur >= 0
        cur_c = np.where(has, cur, 0)
        members = p.stage_mask[rows, cur_c] & has[:, None]
        # Candidates: stages other than the current one.
        others = score.copy()
        others[rows, cur_c] = -np.inf
        best = others.argmax(axis=1)
        best_score = others[rows, best]
        cur_pressure = pressure[rows, cur_c]

        elapsed = stage_green_elapsed_s(ctx, p)
        past_min = elapsed >= self.stage_min_s[rows, cur_c]
        discharging = (members & (demand > self.queue_threshold_veh)).any(axis=1)
        arriving = (members & (self.since_arrival_s < self.passage_s) & ~blocked).any(axis=1)
        alive = discharging | arriving
        # Degree-of-saturation-adapted maximum: the current stage's share of total pressure.
        total = np.where(p.stage_valid, np.maximum(pressure, 0.0), 0.0).sum(axis=1)
        share = np.divide(np.maximum(cur_pressure, 0.0), total, out=np.ones(p.n), where=total > 0)
        max_green = np.maximum(self.min_max_green_s, self.stage_max_s[rows, cur_c] * np.clip(0.5 + share, 0.5, 1.0))
        maxed = elapsed >= max_green
        want = best_score > 0
        # A vehicle that just arrived on the current stage is worth one queued vehicle per lane.
        credit = (w * (members & (self.since_arrival_s < self.passage_s))).sum(axis=1)
        overwhelmed = best_score > self.switch_ratio * (np.maximum(cur_pressure, 0.0) + credit) + 1e-9
        forced = starving_stage[rows, best]
        switch = has & past_min & want & (~alive | maxed | forced | overwhelmed)
        term = np.zeros(p.n, np.int16)
        term[switch & ~alive] = EventCode.GAP_OUT
        term[switch & alive & maxed] = EventCode.MAX_OUT
        term[switch & alive & ~maxed] = EventCode.FORCE_OFF
        self.last_termination = term
        out = np.where(switch, best, HOLD)
        first = np.where(np.isfinite(score).any(axis=1), score.argmax(axis=1), 0)
        return np.where(has, out, first)
