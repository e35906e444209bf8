"""The engine: read -> estimate -> policy -> safety supervisor -> write.

One :class:`Engine` drives one backend. Each tick it reads an
:class:`~controller.backend.Observation`, updates the demand estimate, asks
the policy for a stage per intersection, passes the requests through the
:class:`~controller.safety.SafetySupervisor`, applies the resulting safe
states (and intents) to the backend and advances its clock. Intersections
whose backend lost contact are not commanded: the supervisor puts them into
their fail-safe (flash, or the local fixed-time plan when one is configured).

Every refused request, fail-safe entry and detected violation becomes an
:class:`EngineEvent`, kept in ``engine.events`` and sent to the ``logging``
logger ``greenwave.engine``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from controller.arrays import any_set, read_only
from controller.backend import BaseBackend, Commands, Observation, crossing_calls, exit_blocked_share
from controller.estimate import DemandEstimator, Estimate
from controller.events import EventRecorder
from controller.policies import Policy
from controller.policies.base import PolicyContext, declared
from controller.policies.fixed_time import FixedTimePolicy
from controller.safety import FailSafe, Mode, SafetySupervisor, SupervisorReport
from intersections.plan import TimingPlan

__all__ = ["Engine", "EngineEvent", "TickResult"]

log = logging.getLogger("greenwave.engine")


@dataclass(frozen=True)
class EngineEvent:
    time_s: float
    intersection: str
    kind: str  # "refused", "fail_safe", "recovered", "violation", "detector_fault", "detector_restored"
    message: str


@dataclass(frozen=True)
class TickResult:
    time_s: float
    observation: Observation
    estimate: Estimate
    requests: np.ndarray
    states: np.ndarray
    report: SupervisorReport


class Engine:
    """Ties a backend, a policy and the supervisor together.

    ``fallback_plans`` (plans per intersection id) enables the LOCAL_PLAN
    fail-safe for the intersections they cover; elsewhere the fail-safe is
    flash. ``comm_timeout_s`` is how stale an intersection's data may be
    before the engine stops commanding it (field-io.md §3.5 item 8: two poll
    periods by default).
    """

    def __init__(
        self,
        backend: BaseBackend,
        policy: Policy,
        *,
        fallback_plans: Mapping[str, TimingPlan] | None = None,
        comm_timeout_s: float | None = None,
        estimator_half_life_s: float = 300.0,
        hires: EventRecorder | bool = False,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.network = backend.network
        self.packed = backend.packed
        self.dt_s = backend.dt_s
        self.comm_timeout_s = 2 * self.dt_s if comm_timeout_s is None else comm_timeout_s
        fail_safe = np.full(self.packed.n, FailSafe.FLASH, dtype=np.int8)
        self.fallback: FixedTimePolicy | None = None
        if fallback_plans:
            covered = np.array([i.id in fallback_plans for i in self.network.intersections])
            fail_safe[covered] = FailSafe.LOCAL_PLAN
            if covered.all():
                self.fallback = FixedTimePolicy(fallback_plans)
                self.fallback.reset(self.network, self.packed)
            else:
                fail_safe[:] = FailSafe.FLASH  # a partial set cannot be played as one array; flash is the safe default
        self.supervisor = SafetySupervisor(self.packed, fail_safe=fail_safe)
        self.estimator = DemandEstimator(
            backend.detectors,
            self.packed.n,
            self.packed.g,
            half_life_s=estimator_half_life_s,
            counts_read="counts" in backend.read_fields,
        )
        self.policy.reset(self.network, self.packed)
        self.passive = bool(declared(policy, "passive"))
        self.events: list[EngineEvent] = []
        # High-resolution controller events (Indiana codes) for signal performance measures.
        if hires is True:
            hires = EventRecorder(self.network, self.packed, backend.detectors)
        self.hires: EventRecorder | None = hires if isinstance(hires, EventRecorder) else None
        self._prev_mode = self.supervisor.mode.copy()
        self._prev_watchdog = np.zeros(self.packed.n, bool)
        self._prev_failed = np.zeros(len(backend.detectors.ids), bool)
        self._prev_failed_any = False
        self._health_kept: tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None = None
        self._blocked_kept: tuple[np.ndarray, np.ndarray | None] | None = None
        self.ticks = 0

    def _context(self, time_s: float) -> PolicyContext:
        s = self.supervisor
        return PolicyContext(
            time_s=time_s,
            dt_s=self.dt_s,
            target=s.target.copy(),
            state=s.state.copy(),
            # The states have been shown for one more tick by now.
            state_time_s=s.state_time_s + (self.dt_s if self.ticks else 0.0),
            served=s.walked.copy(),
        )

    def _health(self, obs: Observation) -> tuple[np.ndarray, bool]:
        """(healthy per intersection, all healthy): in contact and not in a controller fault.

        A backend whose health never changes (SUMO) hands out the same read-only arrays
        every tick; the answer is then kept, not recomputed (three numpy calls a tick).
        Writable arrays are always judged afresh: they may have changed in place.
        """
        fault, age = obs.fault, obs.comm_age_s
        kept = self._health_kept
        if kept is not None and kept[0] is fault and kept[1] is age:
            return kept[2], kept[3]
        healthy = ~fault & (age <= self.comm_timeout_s)
        all_healthy = bool(np.count_nonzero(healthy) == len(healthy))
        if not (fault.flags.writeable or age.flags.writeable):
            (healthy,) = read_only(healthy)
            self._health_kept = (fault, age, healthy, all_healthy)
        return healthy, all_healthy

    def _blocked(self, obs: Observation, shape: tuple[int, int]) -> np.ndarray | None:
        """(N, G) bool: groups whose exit is jammed (``exit_blocked_share >= 1``); None where none is.

        A backend that does not measure exits (meso, or a run whose policy does not read them)
        hands out the same read-only array every tick: the answer is then kept, not recomputed.
        """
        x = obs.exit_blocked
        if x is None:
            return None
        kept = self._blocked_kept
        if kept is not None and kept[0] is x:
            return kept[1]
        blocked = exit_blocked_share(obs, shape) >= 1.0
        out = blocked if any_set(blocked) else None
        if isinstance(x, np.ndarray) and not x.flags.writeable:
            self._blocked_kept = (x, out)
        return out

    def _event(self, time_s: float, row: int, kind: str, message: str) -> None:
        ev = EngineEvent(time_s, self.packed.ids[row], kind, message)
        self.events.append(ev)
        level = logging.ERROR if kind == "violation" else logging.WARNING
        log.log(level, "%s t=%.1f %s: %s", ev.intersection, time_s, kind, message)

    def tick(self) -> TickResult:
        obs = self.backend.read()
        t = obs.time_s
        est = self.estimator.update(obs, self.dt_s)
        ctx = self._context(t)
        requests = np.asarray(self.policy.decide(obs, est, ctx), dtype=np.int64)
        if self.passive:
            # The backend's own programs run; nothing is commanded, everything is still observed.
            n = self.packed.n
            report = SupervisorReport(
                hold=np.zeros(n, np.int8),
                refused=np.zeros(n, bool),
                violation=np.zeros(n, bool),
                mode=np.zeros(n, np.int8),
                target=np.full(n, -1),
            )
            self.backend.apply(
                Commands(time_s=t, states=obs.signal_state, target_stage=report.target, active=np.zeros(n, bool))
            )
            self._log_hires(t, obs, obs.signal_state)
            self.backend.advance()
            self.ticks += 1
            return TickResult(t, obs, est, requests, obs.signal_state, report)
        healthy, all_healthy = self._health(obs)
        fallback = self.fallback.requests_at(t) if self.fallback is not None else None
        dt = 0.0 if self.ticks == 0 else self.dt_s
        # Calls for the supervisor's watchdog: maximum green and red time only against detected demand,
        # and a group whose exit is jammed has none that green could serve (never green into a blocked exit).
        calls = (est.queue_veh > 0) | (est.occupancy > 0)
        blocked = self._blocked(obs, est.queue_veh.shape)
        if blocked is not None:
            calls &= ~blocked
        pushed = crossing_calls(obs, self.supervisor.packed)
        if pushed is not None:  # somebody waiting at a crossing: its maximum red counts too
            calls |= pushed
        states, report = self.supervisor.step(
            requests, dt, healthy=None if all_healthy else healthy, fallback_requests=fallback, calls=calls
        )
        self._report(t, requests, report)
        self._report_detectors(t)
        # Unhealthy intersections are not commanded (field-io.md §3.5 item 8); a
        # backend that simulates the controller itself (SUMO) may still show
        # the supervisor's fail-safe states for them.
        self.backend.apply(Commands(time_s=t, states=states, target_stage=report.target, active=healthy))
        self._log_hires(t, obs, states)
        self.backend.advance()
        self.ticks += 1
        return TickResult(t, obs, est, requests, states, report)

    def _log_hires(self, t: float, obs: Observation, states: np.ndarray) -> None:
        pending = declared(self.policy, "pending_events")
        if self.hires is None:
            if pending:
                pending.clear()
            return
        if pending:
            for row, code, param in pending:
                self.hires.emit(t, row, code, param)
            pending.clear()
        presence = (np.nan_to_num(obs.occupancy) > 0) | (np.nan_to_num(obs.counts) > 0)
        self.hires.record(t, states, presence, self.dt_s, termination=declared(self.policy, "last_termination"))

    def _report_detectors(self, t: float) -> None:
        """Detectors the policy has declared failed (or restored): reported once each."""
        failed = declared(self.policy, "detector_failed")
        if failed is None or len(failed) != len(self._prev_failed):
            return
        now_any = any_set(failed)
        if not (now_any or self._prev_failed_any):  # none failed before or now (a city: ~15,000 detectors)
            return
        lay = self.backend.detectors
        for k in np.flatnonzero(failed & ~self._prev_failed):
            msg = f"detector {lay.ids[k]} failed (no data or stuck on): its group falls back to recall"
            self._event(t, int(lay.row[k]), "detector_fault", msg)
            if self.hires is not None:
                self.hires.emit(t, int(lay.row[k]), 84, int(self.hires.channel[k]))
        for k in np.flatnonzero(~failed & self._prev_failed):
            self._event(t, int(lay.row[k]), "detector_restored", f"detector {lay.ids[k]} reports again")
            if self.hires is not None:
                self.hires.emit(t, int(lay.row[k]), 83, int(self.hires.channel[k]))
        self._prev_failed = np.array(failed, bool)
        self._prev_failed_any = now_any

    def _report(self, t: float, requests: np.ndarray, report: SupervisorReport) -> None:
        if any_set(report.refused):
            for r in np.flatnonzero(report.refused):
                self._event(t, int(r), "refused", f"request for stage {int(requests[r])} refused: no such stage")
        if any_set(report.violation):
            for r in np.flatnonzero(report.violation):
                self._event(t, int(r), "violation", "MMU check failed: latched fault flash")
        if report.watchdog is not None and any_set(report.watchdog):
            for r in np.flatnonzero(report.watchdog & ~self._prev_watchdog):
                msg = f"maximum green or red ran out, stage {int(report.target[r])} forced"
                self._event(t, int(r), "watchdog", msg)
            self._prev_watchdog = report.watchdog.copy()
        elif self._prev_watchdog.any():
            self._prev_watchdog[:] = False
        if not (any_set(report.mode) or any_set(self._prev_mode)):  # all normal before and after: nothing changed
            return
        changed = np.flatnonzero(report.mode != self._prev_mode)
        for r in changed:
            new = Mode(int(report.mode[r]))
            if new is Mode.NORMAL:
                self._event(t, int(r), "recovered", "backend healthy again: normal control")
            elif new is not Mode.FAULT:
                self._event(t, int(r), "fail_safe", f"entering {new.name.lower()}")
        self._prev_mode = report.mode.copy()

    def run(self, *, ticks: int | None = None, until_s: float | None = None) -> int:
        """Run ``ticks`` ticks, or until the backend clock reaches ``until_s``."""
        if (ticks is None) == (until_s is None):
            raise ValueError("give exactly one of ticks or until_s")
        done = 0
        while True:
            if ticks is not None and done >= ticks:
                break
            res = self.tick()
            done += 1
            if until_s is not None and res.time_s + self.dt_s >= until_s:
                break
        return done
