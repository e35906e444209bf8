"""A slow, plain-Python, per-intersection reference of :class:`AdaptivePolicy`.

Written loop by loop from the algorithm's description (``docs/adaptive.md``)
so the vectorised policy can be tested against it decision for decision
(tests/controller/test_adaptive.py) and measured against it
(benchmarks/bench_policy.py), as networkx tests its fast algorithms against
slow ones. Not registered as a controller.
"""

from __future__ import annotations

import math

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import ZONE_COVERED_OCCUPANCY, Observation, crossing_calls
from controller.estimate import Estimate
from controller.policies.adaptive import BLIND_HISTORY_WEIGHT, AdaptivePolicy
from controller.policies.base import PolicyContext
from controller.policies.kernels import STARVING_SCORE
from controller.safety import HOLD
from intersections.model import SignalState
from intersections.network import Network

__all__ = ["AdaptiveReference"]


class AdaptiveReference(AdaptivePolicy):
    """Same parameters and state as the vectorised policy; decides one intersection at a time."""

    name = "adaptive-reference"

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        super().reset(network, packed)
        # Each detector's lane, and the approaches (incoming roads) each group serves.
        self._lane = [d.lane for inter in network.intersections for d in inter.detectors]
        self._roads = [[1] * packed.g for _ in range(packed.n)]
        for r, inter in enumerate(network.intersections):
            for k, grp in enumerate(inter.groups):
                self._roads[r][k] = max(1, len({m.from_edge for m in grp.movements if m.turn != "p"}))

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        """One tick, loop by loop: detectors, each group's queue, the approaching platoons, each row's choice."""
        if self.order != "pressure":
            raise NotImplementedError("the reference follows the default pressure order only")
        p = self.packed
        dt = ctx.dt_s
        arrivals, healthy, lost, heard = self._ref_detectors(obs, dt)
        full_zone = self._ref_full_zones(obs)
        # Passage per group: the unit extension divided by the lanes still heard per approach.
        passage = [
            [self.passage_s / max(1.0, len(heard.get((r, k), ())) / self._roads[r][k]) for k in range(p.g)]
            for r in range(p.n)
        ]
        queue_all, serve = self._ref_groups(obs, est, ctx, arrivals, healthy, lost, full_zone)
        approaching = self._ref_approaching(arrivals, dt)
        down_all = (self.down @ np.array(queue_all).ravel()).reshape(p.n, p.g)
        out = np.full(p.n, HOLD, dtype=np.int64)
        term = np.zeros(p.n, np.int16)
        for r in range(p.n):
            chosen = self._ref_row(r, obs, ctx, queue_all, serve, approaching, down_all, passage)
            if chosen is not None:
                out[r], term[r] = chosen
        self.last_termination = term
        return out

    def _ref_detectors(
        self, obs: Observation, dt: float
    ) -> tuple[list[list[float]], list[list[bool]], list[list[bool]], dict[tuple[int, int], set[str]]]:
        """(arrivals, healthy, lost stop-line zone per group; lanes with a reporting detector per group)."""
        p = self.packed
        lay = self.layout
        arrivals = [[0.0] * p.g for _ in range(p.n)]
        healthy = [[False] * p.g for _ in range(p.n)]
        lost = [[False] * p.g for _ in range(p.n)]
        heard: dict[tuple[int, int], set[str]] = {}
        for d in range(len(lay.ids)):
            c, o = float(obs.counts[d]), float(obs.occupancy[d])
            nan = not (math.isfinite(c) and math.isfinite(o))
            self.stuck_for_s[d] = self.stuck_for_s[d] + dt if (not nan and o >= 0.99 and c == 0) else 0.0
            failed = nan or self.stuck_for_s[d] >= self.stuck_s
            self.detector_failed[d] = failed
            r, k = int(lay.row[d]), int(lay.group[d])
            if not failed:
                arrivals[r][k] += c
                healthy[r][k] = True
                heard.setdefault((r, k), set()).add(self._lane[d])
            elif lay.stop_line[d]:
                lost[r][k] = True
        return arrivals, healthy, lost, heard

    def _ref_full_zones(self, obs: Observation) -> list[list[bool]]:
        """Stop-line zones covered end to end: every working one of the group at least half occupied."""
        p = self.packed
        lay = self.layout
        zones = [[0] * p.g for _ in range(p.n)]
        short = [[0] * p.g for _ in range(p.n)]
        for d in range(len(lay.ids)):
            if lay.stop_line[d] and not self.detector_failed[d]:
                r, k = int(lay.row[d]), int(lay.group[d])
                zones[r][k] += 1
                o = float(obs.occupancy[d])
                short[r][k] += 0 if (math.isfinite(o) and o >= ZONE_COVERED_OCCUPANCY) else 1
        return [[zones[r][k] > 0 and short[r][k] == 0 for k in range(p.g)] for r in range(p.n)]

    def _ref_groups(
        self,
        obs: Observation,
        est: Estimate,
        ctx: PolicyContext,
        arrivals: list[list[float]],
        healthy: list[list[bool]],
        lost: list[list[bool]],
        full_zone: list[list[bool]],
    ) -> tuple[list[list[float]], list[list[float]]]:
        """(each group's queue, the queue that keeps its stage green), updating the per-group clocks."""
        p = self.packed
        dt = ctx.dt_s
        buttons = crossing_calls(obs, p)
        queue_all = [[0.0] * p.g for _ in range(p.n)]
        serve = [[0.0] * p.g for _ in range(p.n)]
        for r in range(p.n):
            for k in range(p.g):
                is_green = int(ctx.state[r, k]) == int(SignalState.GREEN)
                if not p.group_valid[r, k]:
                    self._was_green[r, k] = is_green
                    self._was_green_s[r, k] = float(ctx.state_time_s[r, k]) if is_green else 0.0
                    continue
                qv = float(obs.queue_veh[r, k])
                q = qv if math.isfinite(qv) else float(est.queue_veh[r, k])
                blind = not healthy[r][k] or (lost[r][k] and not math.isfinite(qv))
                if buttons is not None and p.is_pedestrian[r, k]:
                    blind = False  # a push button: actuated, not on recall
                    q = 1.0 if buttons[r, k] else 0.0
                if blind:
                    q = 1.0
                if ctx.served is not None and ctx.served[r, k]:
                    q = 0.0  # walked this stage, resting in DON'T WALK
                queue_all[r][k] = q
                serve[r][k] = self._ref_serve(r, k, q, blind, is_green, ctx)
                self.since_arrival_s[r, k] = 0.0 if arrivals[r][k] > 0 else self.since_arrival_s[r, k] + dt
                self._ref_stall(r, k, serve[r][k], is_green, full_zone[r][k], ctx)
        return queue_all, serve

    def _ref_serve(self, r: int, k: int, q: float, blind: bool, is_green: bool, ctx: PolicyContext) -> float:
        """The queue that keeps the stage green; a blind group's from the greens it ended while detected."""
        if self._was_green[r, k] and not is_green and not blind:
            dur = float(self._was_green_s[r, k]) + ctx.dt_s
            old = float(self.green_hist_s[r, k])
            self.green_hist_s[r, k] = dur if math.isnan(old) else old + BLIND_HISTORY_WEIGHT * (dur - old)
        self._was_green[r, k] = is_green
        self._was_green_s[r, k] = float(ctx.state_time_s[r, k]) if is_green else 0.0
        hist = float(self.green_hist_s[r, k])
        if blind and not math.isnan(hist):
            return 1.0 if is_green and float(ctx.state_time_s[r, k]) < hist else 0.0
        return q

    def _ref_stall(self, r: int, k: int, serve: float, is_green: bool, full_zone: bool, ctx: PolicyContext) -> None:
        """Seconds of green that a standing queue has not shrunk (a stalled queue is not discharging)."""
        p = self.packed
        standing = serve > self.queue_threshold_veh
        shrank = serve < float(self._prev_q[r, k]) - 1e-9
        cur_t = int(ctx.target[r])
        yielding_now = cur_t >= 0 and bool(p.stage_yield[r, cur_t, k])
        protected_now = bool(self._yielding_prev[r, k]) and not yielding_now and is_green
        self._yielding_prev[r, k] = yielding_now
        # A full zone still counting arrivals is discharging: it takes a vehicle in only when
        # one leaves at the front.
        moving_full = full_zone and self.since_arrival_s[r, k] < self.stall_s
        stalled = is_green and standing and not shrank and not protected_now and not moving_full
        self.since_release_s[r, k] = float(self.since_release_s[r, k]) + ctx.dt_s if stalled else 0.0
        self._prev_q[r, k] = serve

    def _ref_approaching(self, arrivals: list[list[float]], dt: float) -> list[list[float]]:
        """Vehicles detected within the approach window, per group, slot by slot of the ring."""
        p = self.packed
        slots = max(1, round(self.approach_window_s / dt))
        if self._arrival_ring is None or self._arrival_ring.shape[0] != slots:
            self._arrival_ring = np.zeros((slots, p.n, p.g))
            self._ring_at = 0
        approaching = [[0.0] * p.g for _ in range(p.n)]
        for r in range(p.n):
            for k in range(p.g):
                self._arrival_ring[self._ring_at, r, k] = arrivals[r][k]
                total = 0.0
                for slot in range(slots):
                    total += self._arrival_ring[slot, r, k]
                approaching[r][k] = total / self.arrivals_per_vehicle[r, k]
        self._ring_at = (self._ring_at + 1) % slots
        return approaching

    def _ref_group_pressure(
        self,
        r: int,
        groups: list[int],
        obs: Observation,
        ctx: PolicyContext,
        queue_all: list[list[float]],
        approaching: list[list[float]],
        down_all: np.ndarray,
    ) -> tuple[dict[int, bool], dict[int, float], dict[int, float]]:
        """(blocked, pressure, red wait that may force) per group of row ``r``, advancing the red waits."""
        p = self.packed
        blocked, pg, forcing = {}, {}, {}
        for k in groups:
            # Share of the group's queue held up by an exit jammed to the junction (unknown: 0).
            x = math.nan if obs.exit_blocked is None else float(obs.exit_blocked[r, k])
            share = min(max(x, 0.0), 1.0) if math.isfinite(x) else 0.0
            exit_full = share >= 1.0 - 1e-9
            blocked[k] = down_all[r, k] >= self.spillback_fraction * self.storage[r, k] or exit_full
            want = queue_all[r][k] + approaching[r][k]
            demand = 0.0 if blocked[k] else want
            is_green = ctx.state[r, k] == int(SignalState.GREEN)
            yielding_now = int(ctx.target[r]) >= 0 and bool(p.stage_yield[r, int(ctx.target[r]), k])
            waiting = not (is_green and not yielding_now) and demand > self.queue_threshold_veh
            held = exit_full and not is_green and want > self.queue_threshold_veh
            if waiting:
                self.red_wait_s[r, k] = self.red_wait_s[r, k] + ctx.dt_s
            elif not held:
                self.red_wait_s[r, k] = 0.0
            forcing[k] = 0.0 if exit_full else float(self.red_wait_s[r, k])
            pg[k] = (
                self.weight[r, k]
                * (1.0 - share)
                * max(demand - down_all[r, k], 0.0)
                * (1.0 + forcing[k] / self.wait_weight_s)
            )
        return blocked, pg, forcing

    def _ref_row(
        self,
        r: int,
        obs: Observation,
        ctx: PolicyContext,
        queue_all: list[list[float]],
        serve: list[list[float]],
        approaching: list[list[float]],
        down_all: np.ndarray,
        passage: list[list[float]],
    ) -> tuple[int, int] | None:
        """(stage to request, termination event code) for intersection ``r``; None to hold."""
        p = self.packed
        groups = [k for k in range(p.g) if p.group_valid[r, k]]
        blocked, pg, forcing = self._ref_group_pressure(r, groups, obs, ctx, queue_all, approaching, down_all)
        stages = [s for s in range(p.s) if p.stage_valid[r, s]]
        members = {s: [k for k in groups if p.stage_mask[r, s, k]] for s in stages}
        # A permissive member is credited to (and its starvation ended by) the stage that protects it.
        credit = {s: [k for k in members[s] if not p.stage_yield[r, s, k]] for s in stages}
        pressure = {s: sum(pg[k] for k in credit[s]) for s in stages}
        starving = {s: any(forcing[k] > self.max_red_s for k in credit[s]) for s in stages}
        # Starving stages first, the longest-waiting first among them.
        score = {}
        for s in stages:
            waits = [forcing[k] for k in credit[s] if forcing[k] > self.max_red_s]
            score[s] = STARVING_SCORE + max(waits) if waits else pressure[s]
        cur = int(ctx.target[r])
        if cur < 0:
            return (max(stages, key=lambda s: (score[s], -s)) if stages else 0), 0
        others = [s for s in stages if s != cur]
        if not others:
            return None
        best = max(others, key=lambda s: (score[s], -s))
        mem = members.get(cur, [])
        elapsed = self._ref_elapsed(r, mem, ctx)
        stage_min = max((float(p.min_green_s[r, k]) for k in mem), default=0.0)
        if elapsed < stage_min:
            return None
        discharging = any(
            serve[r][k] > self.queue_threshold_veh and self.since_release_s[r, k] < self.stall_s and not blocked[k]
            for k in mem
        )
        arriving = any(approaching[r][k] > self.queue_threshold_veh and not blocked[k] for k in mem)
        if self.passage_s > 0:
            recent = any(self.since_arrival_s[r, k] < passage[r][k] for k in mem)
            arriving = arriving and (recent or discharging)
        alive = discharging or arriving
        total = sum(max(pressure[s], 0.0) for s in stages)
        cur_p = pressure.get(cur, 0.0)
        share = max(cur_p, 0.0) / total if total > 0 else 1.0
        max_green = max(self.min_max_green_s, float(self.stage_max_s[r, cur]) * min(max(0.5 + share, 0.5), 1.0))
        maxed = elapsed >= max_green
        overwhelmed = math.isfinite(self.switch_ratio) and score[best] > self.switch_ratio * max(cur_p, 0.0) + 1e-9
        if score[best] > 0 and (not alive or maxed or starving[best] or (overwhelmed and not discharging)):
            return best, 4 if not alive else (5 if maxed else 6)
        return None

    def _ref_elapsed(self, r: int, mem: list[int], ctx: PolicyContext) -> float:
        """Elapsed green of the current stage (the youngest of its groups), -1 if not all green.

        A crossing resting in DON'T WALK after its WALK (served) no longer counts.
        """
        left = [k for k in mem if ctx.served is None or not ctx.served[r, k]]
        if mem and not left:
            return math.inf
        if left and all(ctx.state[r, k] == int(SignalState.GREEN) for k in left):
            return min(float(ctx.state_time_s[r, k]) for k in left)
        return -1.0
