"""greenwave's adaptive policy: queue-clearing stages, chosen by pressure, bounded by starvation.

The algorithm (``docs/adaptive.md`` has the equations and sources) combines
what the field's evidence says works, decided for all intersections at once
from arrays:

1. **Serve a stage while it discharges a queue** (SURTRAC's schedule view,
   Smith et al. 2013: a green is worth keeping while vehicles are released at
   saturation flow). The current stage stays green while one of its groups
   still has a standing queue that can leave (not blocked downstream), or a
   vehicle has arrived within ``passage_s`` (the NTCIP unit extension). A
   standing queue is never cut short for another stage (every switch costs an
   intergreen of lost time for everybody: cutting a discharging queue
   thrashes), except at the stage's maximum green or to end starvation.
2. **Switch to the stage of highest pressure** (Varaiya 2013 max-pressure:
   queue minus downstream queue, weighted by lanes) amplified by how long its
   vehicles have waited, once the current stage has served its minimum green.
   A stage that only extends for sporadic arrivals yields to a stage whose
   pressure exceeds ``switch_ratio`` times its own (hysteresis), and every
   stage yields at its maximum green, which is adapted to the measured degree of
   saturation (SCATS: more green where more demand, bounded by the groups'
   configured maximum).
3. **Spillback protection**: a movement whose downstream link is nearly full
   (queue over ``spillback_fraction`` of its storage) counts no demand, so
   green is never given or kept for traffic that cannot leave. That queue is
   the downstream *signal's*; where the exit leads elsewhere (an unsignalised
   junction, a light left on its own program, the network's edge, the other
   part of a joined junction) the measured ``exit_blocked`` says it instead: a
   group whose whole queue is held up by exits jammed back to the junction
   counts no demand, does not hold its stage, and a stage of only such groups
   ends after its minimum green so that the cross street can clear the jam; a
   partly held group's pressure is scaled by the share that can leave
   (capacity-aware back-pressure, Gregoire et al. 2015). A blocked group's red wait is held,
   not reset, and does not force its stage while blocked (green there would
   only fill the junction); it forces it as soon as the exit frees.
4. **No starvation**: a group with demand that has been red longer than
   ``max_red_s`` forces its stage, whatever the pressures (the bound the
   property tests check).
5. **Degraded detection**: a detector that reports NaN (failed) or is stuck
   on (occupancy ≥ 0.99 with no vehicle counted for ``stuck_s``) stops counting; its group falls back
   to a fixed share of demand (recall), so it is neither starved nor favoured.

Every decision is a stage request and goes through the safety supervisor.
No constant depends on a scenario: the parameters are engineering values
tuned once, over all library scenarios, and the policy runs unchanged on
networks it has never seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from controller.arrays import PackedNetwork, any_rows, any_set
from controller.backend import (
    OBSERVATION_FIELDS,
    ZONE_COVERED_OCCUPANCY,
    Observation,
    crossing_calls,
    detector_layout,
    exit_blocked_share,
)
from controller.estimate import Estimate
from controller.events import EventCode
from controller.policies import register_policy
from controller.policies.base import Policy, PolicyContext
from controller.policies.common import (
    downstream_matrix,
    group_lanes,
    group_roads,
    next_stage_with_demand,
    stage_green_elapsed_s,
    starvation_score,
)
from controller.safety import HOLD
from intersections.model import DetectorKind, SignalState
from intersections.network import Network

__all__ = ["AdaptivePolicy", "AdaptiveNoTsp"]

GREEN = int(SignalState.GREEN)
BLIND_HISTORY_WEIGHT = 0.25  # EWMA weight of a group's latest green in its historical profile
VEHICLE_SPACING_M = 7.0  # jam spacing of a car; a motorcycle takes about a third (PCU ~0.3)


@register_policy("adaptive")
class AdaptivePolicy(Policy):
    name = "adaptive"
    reads = OBSERVATION_FIELDS  # counts, occupancy, queues, exits, and bus/emergency records for priority
    # Set by reset(), for every tick after it.
    last_termination: np.ndarray
    detector_failed: np.ndarray
    pending_events: list[tuple[int, int, int]]

    def __init__(
        self,
        *,
        passage_s: float = 3.0,
        switch_ratio: float = float("inf"),
        wait_weight_s: float = 60.0,
        max_red_s: float = 120.0,
        spillback_fraction: float = 0.85,
        min_max_green_s: float = 20.0,
        stuck_s: float = 120.0,
        queue_threshold_veh: float = 0.5,
        approach_window_s: float = 8.0,
        stall_s: float = 6.0,
        tsp: bool = True,
        tsp_lateness_s: float = 15.0,
        tsp_distance_m: float = 150.0,
        tsp_max_extension_s: float = 15.0,
        tsp_cooldown_s: float = 90.0,
        preempt_distance_m: float = 300.0,
        order: str = "pressure",
    ) -> None:
        self.passage_s = float(passage_s)
        self.switch_ratio = float(switch_ratio)
        self.wait_weight_s = float(wait_weight_s)
        self.max_red_s = float(max_red_s)
        self.spillback_fraction = float(spillback_fraction)
        self.min_max_green_s = float(min_max_green_s)
        self.stuck_s = float(stuck_s)
        self.queue_threshold_veh = float(queue_threshold_veh)
        self.approach_window_s = float(approach_window_s)
        self.stall_s = float(stall_s)
        self.tsp = bool(tsp)
        self.tsp_lateness_s = float(tsp_lateness_s)
        self.tsp_distance_m = float(tsp_distance_m)
        self.tsp_max_extension_s = float(tsp_max_extension_s)
        self.tsp_cooldown_s = float(tsp_cooldown_s)
        self.preempt_distance_m = float(preempt_distance_m)
        if order not in ("pressure", "cyclic"):
            raise ValueError(f"order must be 'pressure' or 'cyclic', got {order!r}")
        self.order = order

    # ------------------------------------------------------------------
    def reset(self, network: Network, packed: PackedNetwork) -> None:
        self.packed = packed
        n, g = packed.n, packed.g
        self.layout = detector_layout(network)
        self.down = downstream_matrix(network, packed)
        self.weight = group_lanes(network, packed) * packed.group_valid
        # The stage sums' 0/1 weights, cast once. A member green only as a permissive movement that
        # another stage protects (a filtering left, ``Stage.yielding``) is not credited to the stage
        # where it yields: its queue calls the protected stage, as a controller's protected-left phase
        # is called by its own detector (HCM 7th ed. ch. 19: permissive capacity vanishes against a
        # saturated opposing flow). Whatever does filter through is still served, and a yielding queue
        # that discharges still holds its stage (``members`` below).
        self.credit = packed.stage_mask & ~packed.stage_yield
        self.stage_mask_f = self.credit.astype(float)
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
        self.stage_min_s = packed.stage_min_green_s
        # A vehicle is counted once by each detector of its lane (zone entry, advance loop).
        per_group = np.bincount(self.flat, minlength=n * g).reshape(n, g) if len(self.layout.ids) else np.zeros((n, g))
        lanes_g = np.maximum(group_lanes(network, packed), 1.0)
        self.arrivals_per_vehicle = np.maximum(per_group / lanes_g, 1.0)
        # Passage per lane of an approach: which (group, lane) pairs detectors hear, and how many
        # approaches each group serves. The lanes heard are recounted when detectors fail.
        pair_index: dict[tuple[int, str], int] = {}
        self.pair_of = np.array(
            [pair_index.setdefault((int(f), d.lane), len(pair_index))
             for f, d in zip(self.flat, (d for i in network.intersections for d in i.detectors), strict=True)],
            dtype=np.int64,
        )  # fmt: skip
        self.pair_group = np.array([f for f, _lane in pair_index], dtype=np.int64)
        self.roads = group_roads(network, packed)
        self._passage_all_heard = self._passage(np.ones(len(self.layout.ids), bool))
        self.passage_g = self._passage_all_heard
        self.since_arrival_s = np.full((n, g), np.inf)
        self.red_wait_s = np.zeros((n, g))
        self.since_release_s = np.zeros((n, g))
        self._yielding_prev = np.zeros((n, g), bool)
        self._prev_q = np.zeros((n, g))
        self._exit_kept: tuple[np.ndarray | None, np.ndarray, np.ndarray] | None = None
        self.stuck_for_s = np.zeros(len(self.layout.ids))
        self.last_termination = np.zeros(n, np.int16)
        self.detector_failed = np.zeros(len(self.layout.ids), bool)
        # Historical profile for blind groups: each group's typical green (EWMA of the greens it
        # ended while its detectors worked), and last tick's green state to see greens end.
        self.green_hist_s = np.full((n, g), np.nan)
        self._was_green = np.zeros((n, g), bool)
        self._was_green_s = np.zeros((n, g))
        self._arrival_ring: np.ndarray | None = None
        self._ring_at = 0
        # Priority state: time since the last transit-priority action, extension used so far,
        # which intersections are under emergency preemption; events for the hi-res log.
        self.since_tsp_s = np.full(n, np.inf)
        self.tsp_extension_s = np.zeros(n)
        self.preempting = np.zeros(n, bool)
        self.pending_events = []

    # ------------------------------------------------------------------
    def _detectors(self, obs: Observation, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Healthy arrivals per group this tick and a per-group 'no usable detector' mask."""
        p = self.packed
        n, g = p.n, p.g
        if not len(self.layout.ids):
            return np.zeros((n, g)), ~self.has_detector & p.group_valid
        # Stuck on: full occupancy with no vehicle entering. A standing queue also fills a zone (and
        # motorcycles abreast can read above 100 %), but its zone counts vehicles whenever it moves.
        stuck_for_s = np.empty(len(self.flat))
        failed = np.empty(len(self.flat), np.bool_)
        arrivals_flat, heard = np.zeros(n * g), np.zeros(n * g, np.int64)
        any_failed = _detector_pass(
            np.ascontiguousarray(obs.counts, np.float64), np.ascontiguousarray(obs.occupancy, np.float64),
            self.stuck_for_s, float(dt), self.stuck_s, self.flat, stuck_for_s, failed, arrivals_flat, heard,
        )  # fmt: skip
        self.stuck_for_s = stuck_for_s
        self.detector_failed = failed
        arrivals = arrivals_flat.reshape(n, g)
        self.passage_g = self._passage(~failed) if any_failed else self._passage_all_heard
        blind = p.group_valid & ~(heard.reshape(n, g) > 0)
        # A failed stop-line zone takes the group's queue measurement with it: no queue, no count to
        # trust for that approach, so it falls back too.
        if any_failed:
            lost = self.layout.stop_line_groups(failed, (n, g))
            blind |= p.group_valid & lost & ~np.isfinite(obs.queue_veh)
        return arrivals, blind

    def _full_zones(self, obs: Observation) -> np.ndarray:
        """(N, G) bool: every working stop-line zone of the group is covered by vehicles end to end.

        Covered means occupancy of at least :data:`~controller.backend.ZONE_COVERED_OCCUPANCY`, the
        same test the exit zones use for a jam reaching back to the junction.
        """
        p = self.packed
        if not len(self.layout.ids):
            return np.zeros((p.n, p.g), bool)
        zone = self.layout.stop_line & ~self.detector_failed
        occ = np.nan_to_num(np.asarray(obs.occupancy, float))
        size = p.n * p.g
        zones = np.bincount(self.flat, weights=zone, minlength=size)
        short = np.bincount(self.flat, weights=zone & (occ < ZONE_COVERED_OCCUPANCY), minlength=size)
        full: np.ndarray = ((zones > 0) & (short == 0)).reshape(p.n, p.g)
        return full

    def _blind_service(
        self, q: np.ndarray, blind: np.ndarray, green: np.ndarray, ctx: PolicyContext, dt: float
    ) -> np.ndarray:
        """The queue that keeps a stage green: measured, or for a blind group its historical green.

        A blind group's recall demand (``q = 1``) calls its stage in turn; once
        green it is served for as long as its greens lasted while its detectors
        worked (EWMA over its last greens: the historical profile of the
        issue's fallback), then yields. Without a history (never detected) it
        keeps the recall to the adapted maximum green, as a controller's max
        recall does. Served to the maximum every time, a blind approach would
        take green from the approaches still measured (docs/adaptive.md, step 6).
        """
        ended = self._was_green & ~green & ~blind
        if ended.any():
            dur = self._was_green_s[ended] + dt
            old = self.green_hist_s[ended]
            self.green_hist_s[ended] = np.where(np.isnan(old), dur, old + BLIND_HISTORY_WEIGHT * (dur - old))
        self._was_green = green
        self._was_green_s = np.where(green, ctx.state_time_s, 0.0)
        known = blind & np.isfinite(self.green_hist_s)
        if not known.any():
            return q
        within = green & (ctx.state_time_s < np.nan_to_num(self.green_hist_s))
        return np.where(known, within.astype(float), q)

    def _passage(self, ok: np.ndarray) -> np.ndarray:
        """(N, G) passage time: ``passage_s`` divided by the lanes heard per approach (>= 1).

        A group's gap timer hears every lane of every approach it serves: the
        more lanes call one phase, the shorter the gap between detections at
        the same per-lane headway (FHWA Traffic Signal Timing Manual,
        FHWA-HOP-08-024, ch. 5: passage time follows from the maximum
        allowable headway, lower where several lanes call one phase). Only
        lanes with a reporting detector count: a lane whose detectors failed
        no longer shortens its group's gaps, or the group would gap out on
        the traffic it can no longer see.
        """
        p = self.packed
        n, g = p.n, p.g
        heard_pair = np.bincount(self.pair_of[ok], minlength=len(self.pair_group)) > 0
        lanes = np.bincount(self.pair_group, weights=heard_pair, minlength=n * g).reshape(n, g)
        result: np.ndarray = self.passage_s / np.maximum(lanes / self.roads, 1.0)
        return result

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        """One tick for every intersection: the module docstring's steps 1-5, each a named method.

        The steps share arrays computed once per tick (the current stage, its members, the
        green mask); each method updates only its own part of the policy's state.
        """
        p = self.packed
        dt = ctx.dt_s
        rows = np.arange(p.n)
        arrivals, blind = self._detectors(obs, dt)
        q, blind = self._queues(obs, est, ctx, blind)
        green = ctx.state == GREEN
        q_serve = self._blind_service(q, blind, green, ctx, dt)
        self.since_arrival_s = np.where(arrivals > 0, 0.0, self.since_arrival_s + dt)
        approaching = self._approaching(arrivals, dt)
        # A permissive movement green only where it yields (``Stage.yielding``) is not served there:
        # its wait keeps counting until the stage that protects it comes.
        cur = ctx.target
        has = cur >= 0
        cur_c = np.where(has, cur, 0)
        yielding_now = p.stage_yield[rows, cur_c] & has[:, None]
        pressure, score, starving_stage, blocked = self._pressure(obs, q, approaching, green, yielding_now, dt)
        members = p.stage_groups(cur)
        best, best_score = self._best_other(score, starving_stage, cur, cur_c, rows)
        cur_pressure = pressure[rows, cur_c]
        elapsed = stage_green_elapsed_s(ctx, p)
        past_min = elapsed >= self.stage_min_s[rows, cur_c]
        discharging, alive = self._alive(obs, q_serve, approaching, green, yielding_now, blocked, members, dt)
        maxed = elapsed >= self._max_green(pressure, cur_pressure, rows, cur_c)
        want = best_score > 0
        if np.isfinite(self.switch_ratio):
            overwhelmed = best_score > self.switch_ratio * np.maximum(cur_pressure, 0.0) + 1e-9
        else:
            overwhelmed = np.zeros(p.n, bool)
        forced = starving_stage[rows, best]
        switch = has & past_min & want & (~alive | maxed | forced | (overwhelmed & ~discharging))
        switch, best = self._transit_priority(obs, ctx, switch, best, score, members, past_min, forced, dt)
        self.last_termination = _termination(switch, alive, maxed)
        out = np.where(switch, best, HOLD)
        first = np.where(any_rows(np.isfinite(score)), score.argmax(axis=1), 0)
        out = np.where(has, out, first)
        return self._preempt(obs, out)

    def _queues(
        self, obs: Observation, est: Estimate, ctx: PolicyContext, blind: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(each group's queue as the policy counts it, the blind mask without actuated crossings).

        Measured where the backend measures it, estimated elsewhere. Crossings with push
        buttons (a field controller's, or people waiting at the kerb in SUMO) are actuated:
        one waiting person calls the stage, as a vehicle does. Blind groups (no or failed
        detectors) get a recall-like constant demand: served in turn, neither starved nor
        favoured. A crossing that has walked this stage waits for no green.
        """
        p = self.packed
        q = np.where(np.isfinite(obs.queue_veh), obs.queue_veh, est.queue_veh) * p.group_valid
        buttons = crossing_calls(obs, p)
        if buttons is not None:
            pushed = p.is_pedestrian & p.group_valid
            blind = blind & ~pushed
            q = np.where(pushed, buttons.astype(float), q)
        q = np.where(blind, 1.0, q)
        if ctx.served is not None:
            q = np.where(ctx.served, 0.0, q)
        return q, blind

    def _approaching(self, arrivals: np.ndarray, dt: float) -> np.ndarray:
        """(N, G) vehicles that entered detection in the last ``approach_window_s``, still on their way.

        SURTRAC's approaching platoon, from advance detection: a ring of the last ticks'
        arrivals, summed and divided by the detectors each vehicle crosses.
        """
        p = self.packed
        slots = max(1, round(self.approach_window_s / dt))
        if self._arrival_ring is None or self._arrival_ring.shape[0] != slots:
            self._arrival_ring = np.zeros((slots, p.n, p.g))
            self._ring_at = 0
        self._arrival_ring[self._ring_at] = arrivals
        self._ring_at = (self._ring_at + 1) % slots
        approaching: np.ndarray = self._arrival_ring.sum(axis=0) / self.arrivals_per_vehicle
        return approaching

    def _pressure(
        self,
        obs: Observation,
        q: np.ndarray,
        approaching: np.ndarray,
        green: np.ndarray,
        yielding_now: np.ndarray,
        dt: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(stage pressure, stage score, starving-stage mask, blocked groups): steps 2 to 4.

        A group is blocked when its downstream link is nearly full (spillback) or its exits
        are measured jammed back to the junction; it then counts no demand. Pressure is
        max-pressure's queue minus downstream queue, weighted by lanes and by the share of the
        queue that can leave, amplified by the red wait.
        """
        p = self.packed
        down = (self.down @ q.ravel()).reshape(q.shape)
        exit_share, exit_full = self._exit_share(obs)
        blocked = (down >= self.spillback_fraction * self.storage) | exit_full
        want = q + approaching
        demand = np.where(blocked, 0.0, want)
        red_forcing = self._red_wait(want, demand, green, yielding_now, exit_full, dt)
        w = self.weight * (1.0 - exit_share)
        pressure_g = w * np.maximum(demand - down, 0.0) * (1.0 + red_forcing / self.wait_weight_s)
        pressure = np.einsum("nsg,ng->ns", self.stage_mask_f, pressure_g)
        pressure = np.where(p.stage_valid, pressure, -np.inf)
        score, starving_stage = starvation_score(pressure, p, red_forcing, self.max_red_s, self.credit)
        return pressure, score, starving_stage, blocked

    def _red_wait(
        self,
        want: np.ndarray,
        demand: np.ndarray,
        green: np.ndarray,
        yielding_now: np.ndarray,
        exit_full: np.ndarray,
        dt: float,
    ) -> np.ndarray:
        """Advance each group's red wait; return the waits that may force a stage (starvation).

        A group kept red only by its jammed exit keeps its wait (a jam that flickers must not
        reset the starvation clock) but does not force its stage while the jam lasts.
        """
        p = self.packed
        waiting = ~(green & ~yielding_now) & (demand > self.queue_threshold_veh) & p.group_valid
        held = exit_full & ~green & (want > self.queue_threshold_veh)
        self.red_wait_s = np.where(waiting, self.red_wait_s + dt, np.where(held, self.red_wait_s, 0.0))
        forcing: np.ndarray = np.where(exit_full, 0.0, self.red_wait_s) if any_set(held) else self.red_wait_s
        return forcing

    def _best_other(
        self, score: np.ndarray, starving_stage: np.ndarray, cur: np.ndarray, cur_c: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the best stage other than the current one, its score) per intersection.

        Highest score in ``pressure`` order; in ``cyclic`` order the next stage in sequence
        with demand (a starving stage still jumps the queue).
        """
        others = score.copy()
        others[rows, cur_c] = -np.inf
        best = others.argmax(axis=1)
        if self.order == "cyclic":
            nxt = next_stage_with_demand(cur, others > 0, self.packed.stage_valid)
            best = np.where((nxt >= 0) & ~starving_stage[rows, best], nxt, best)
        return best, others[rows, best]

    def _alive(
        self,
        obs: Observation,
        q_serve: np.ndarray,
        approaching: np.ndarray,
        green: np.ndarray,
        yielding_now: np.ndarray,
        blocked: np.ndarray,
        members: np.ndarray,
        dt: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the current stage discharges a queue, the current stage is alive): step 1.

        A queue discharges while it shrinks: one that has not for ``stall_s`` of green (a
        permissive left waiting for a gap, a turn held by pedestrians) is not released at
        saturation flow and does not hold the stage (SURTRAC's criterion; HCM start-up lost
        time 2 s plus two saturation headways of ~2 s bound ``stall_s`` from below). A stage
        is alive while it discharges, or while vehicles approach and one arrived within the
        passage time (the NTCIP unit extension).
        """
        standing = q_serve > self.queue_threshold_veh
        shrank = q_serve < self._prev_q - 1e-9
        # A filtering movement that stalled while it yielded starts afresh when its protected stage
        # comes: it now leaves at saturation flow, and must not gap out on its permissive past.
        protected_now = self._yielding_prev & ~yielding_now & green
        self._yielding_prev = yielding_now
        # A zone standing full from end to end cannot show a discharge in its halting count: the
        # queue behind refills it as fast as the front leaves. But a full zone takes a vehicle in
        # only when one leaves at the front, so a full zone still counting arrivals is discharging
        # (a stalled one, a left turn waiting for a gap, counts nothing).
        stalled = green & standing & ~shrank & ~protected_now
        if any_set(stalled):
            stalled &= ~(self._full_zones(obs) & (self.since_arrival_s < self.stall_s))
        self.since_release_s = np.where(stalled, self.since_release_s + dt, 0.0)
        self._prev_q = q_serve
        releasing = standing & (self.since_release_s < self.stall_s)
        discharging = any_rows(members & releasing & ~blocked)
        arriving = any_rows(members & (approaching > self.queue_threshold_veh) & ~blocked)
        if self.passage_s > 0:
            arriving &= any_rows(members & (self.since_arrival_s < self.passage_g)) | discharging
        return discharging, discharging | arriving

    def _max_green(
        self, pressure: np.ndarray, cur_pressure: np.ndarray, rows: np.ndarray, cur_c: np.ndarray
    ) -> np.ndarray:
        """(N,) the current stage's maximum green, adapted to its share of the total pressure (SCATS)."""
        p = self.packed
        total = np.where(p.stage_valid, np.maximum(pressure, 0.0), 0.0).sum(axis=1)
        share = np.divide(np.maximum(cur_pressure, 0.0), total, out=np.ones(p.n), where=total > 0)
        max_green: np.ndarray = np.maximum(
            self.min_max_green_s, self.stage_max_s[rows, cur_c] * np.clip(0.5 + share, 0.5, 1.0)
        )
        return max_green

    def _exit_share(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """(share of each group's queue held up by a jammed exit, whole queue held) from ``obs.exit_blocked``.

        A backend hands out the same read-only array while nothing changes (SUMO: NaN where
        not measured, zeros while no exit is jammed); the answer is then kept, not recomputed.
        """
        x = obs.exit_blocked
        kept = self._exit_kept
        if kept is not None and kept[0] is x:
            return kept[1], kept[2]
        share = exit_blocked_share(obs, self.packed.group_valid.shape) * self.packed.group_valid
        full = share >= 1.0 - 1e-9
        if x is None or not np.asarray(x).flags.writeable:
            self._exit_kept = (x, share, full)
        return share, full

    # ------------------------------------------------------------------
    def _stage_for(self, rows: np.ndarray, groups: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
        """For each (row, group): the valid stage serving the group (best-scoring when several)."""
        p = self.packed
        serves = p.stage_mask[rows, :, groups] & p.stage_valid[rows]  # (k, S)
        if score is None:
            return np.where(serves.any(axis=1), serves.argmax(axis=1), -1)
        sc = np.where(serves, score[rows], -np.inf)
        return np.where(serves.any(axis=1), sc.argmax(axis=1), -1)

    def _transit_priority(
        self,
        obs: Observation,
        ctx: PolicyContext,
        switch: np.ndarray,
        best: np.ndarray,
        score: np.ndarray,
        members: np.ndarray,
        past_min: np.ndarray,
        forced: np.ndarray,
        dt: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Green extension or early green for late buses, within limits that protect cross traffic.

        A bus later than ``tsp_lateness_s`` against its schedule (docs/adaptive.md,
        step 7, says why 15 s) and within
        ``tsp_distance_m`` of the stop line: if its group is green, the
        stage is held up to ``tsp_max_extension_s`` beyond where it would
        have ended; if red, its stage is called next as soon as the current
        one has served its minimum green. One priority action per
        intersection per ``tsp_cooldown_s``, never against a starving
        movement (the starvation bound wins).
        """
        self.since_tsp_s += dt
        bus = obs.extra.get("bus") if obs.extra else None
        if not self.tsp or bus is None or not len(bus):
            self.tsp_extension_s[:] = 0.0
            return switch, best
        p = self.packed
        late = bus[(bus["lateness_s"] >= self.tsp_lateness_s) & (bus["distance_m"] <= self.tsp_distance_m)]
        if not len(late):
            self.tsp_extension_s[:] = 0.0
            return switch, best
        rows = late["row"].astype(np.int64)
        groups = late["group"].astype(np.int64)
        want_g = np.zeros((p.n, p.g), bool)
        want_g[rows, groups] = True
        green = ctx.state == GREEN
        ready = self.since_tsp_s >= self.tsp_cooldown_s
        # Extension: the bus's group is green in the current stage.
        extend = (want_g & green & members).any(axis=1) & switch & ~forced
        extend &= (self.tsp_extension_s < self.tsp_max_extension_s) & (ready | (self.tsp_extension_s > 0))
        self.tsp_extension_s = np.where(extend, self.tsp_extension_s + dt, 0.0)
        started = extend & (self.tsp_extension_s == dt)
        switch = switch & ~extend
        # Early green: the bus's group is red; call its stage once min green is served.
        red_bus = want_g & ~green
        r_idx, g_idx = np.nonzero(red_bus)
        early = np.zeros(p.n, bool)
        target = best.copy()
        if r_idx.size:
            st = self._stage_for(r_idx, g_idx, score)
            ok = (st >= 0) & ready[r_idx] & past_min[r_idx] & ~forced[r_idx] & (st != ctx.target[r_idx])
            early[r_idx[ok]] = True
            target[r_idx[ok]] = st[ok]
        switch = switch | early
        best = np.where(early, target, best)
        acted = started | early
        self.since_tsp_s[acted] = 0.0
        for r in np.flatnonzero(started):
            self.pending_events.append((int(r), 114, 1))  # TSP extend green
        for r in np.flatnonzero(early):
            self.pending_events.append((int(r), 113, 1))  # TSP early green
        return switch, best

    def _preempt(self, obs: Observation, out: np.ndarray) -> np.ndarray:
        """Emergency preemption: the approaching vehicle's stage, after safe clearance.

        The request goes through the supervisor like any other, so yellow,
        all-red and minimum greens are served in full before the emergency
        vehicle's green; the stage is held while the vehicle approaches, and
        normal (coordinated/adaptive) control resumes when it has passed.
        """
        em = obs.extra.get("emergency") if obs.extra else None
        active = np.zeros(self.packed.n, bool)
        if em is not None and len(em):
            near = em[em["distance_m"] <= self.preempt_distance_m]
            if len(near):
                rows = near["row"].astype(np.int64)
                st = self._stage_for(rows, near["group"].astype(np.int64))
                ok = st >= 0
                out = out.copy()
                out[rows[ok]] = st[ok]
                active[rows[ok]] = True
        for r in np.flatnonzero(active & ~self.preempting):
            self.pending_events.append((int(r), 102, 1))  # preempt call on
        for r in np.flatnonzero(~active & self.preempting):
            self.pending_events.append((int(r), 104, 1))  # preempt call off: back to normal control
        self.preempting = active
        return out


@register_policy("adaptive-no-tsp")
def AdaptiveNoTsp(**params: Any) -> AdaptivePolicy:
    """The adaptive policy without transit priority: the 'without' side of the TSP comparison.

    ``params`` are AdaptivePolicy's keyword arguments, passed on (any ``tsp`` is overridden).
    """
    pol = AdaptivePolicy(**{**params, "tsp": False})
    pol.name = "adaptive-no-tsp"
    return pol


def _termination(switch: np.ndarray, alive: np.ndarray, maxed: np.ndarray) -> np.ndarray:
    """(N,) int16 event code of each stage ended this tick (0 where none): gap-out, max-out or force-off.

    The codes are the Indiana hi-res log's (:class:`~controller.events.EventCode`), which the
    engine writes for every switch.
    """
    term = np.zeros(len(switch), np.int16)
    term[switch & ~alive] = EventCode.GAP_OUT
    term[switch & alive & maxed] = EventCode.MAX_OUT
    term[switch & alive & ~maxed] = EventCode.FORCE_OFF
    return term


# fmt: off
@njit(cache=True)
def _detector_pass(  # type: ignore[no-untyped-def]
    counts, occ, stuck_prev, dt, stuck_s, flat,
    stuck_for_s, failed, arrivals, heard,  # outputs: (D,), (D,), (N·G,) zeroed, (N·G,) zeroed
):
# fmt: on
    """:meth:`AdaptivePolicy._detectors` over every detector in one compiled pass; True if any failed.

    A detector fails when it reports NaN or infinity, or when it has been stuck on
    (occupancy at least 0.99, NaN counting as 0, with no vehicle counted) for ``stuck_s``;
    the healthy ones add their counts to their group's arrivals, in detector order (the
    order ``np.bincount`` sums in, so the sums are bit-identical to the array form), and
    count as heard. Compiled because a city has ~15,000 detectors and the array form made
    six passes over them each tick. It calls nothing in another file, so numba's cache,
    keyed on this file, is never stale.
    """
    any_failed = False
    for k in range(len(counts)):
        c = counts[k]
        o = occ[k]
        stuck = o >= 0.99 and (c == 0.0 or np.isnan(c))
        t = stuck_prev[k] + dt if stuck else 0.0
        stuck_for_s[k] = t
        bad = not np.isfinite(c) or not np.isfinite(o) or t >= stuck_s
        failed[k] = bad
        if bad:
            any_failed = True
        else:
            arrivals[flat[k]] += c
            heard[flat[k]] += 1
    return any_failed
