"""The local controller of an emulator process, vectorised over its intersections.

A field controller times its own intervals. Here that is the project's own
logic, unchanged: the emulator runs an :class:`~controller.engine.Engine`
whose safety supervisor (:class:`~controller.safety.SafetySupervisor`, the
software MMU) sequences every request, and whose policy is
:class:`LocalController`: it decides, per intersection and per tick, *which
source* of stage requests the supervisor serves:

* the central command block (stage requests: call / hold / force-off masks),
* a plan commanded by central (played by a :class:`FixedTimePolicy`),
* or the local fallback plan (another :class:`FixedTimePolicy`), at start-up,
  after a release, and whenever the **watchdog** expires: no heartbeat change
  for ``backup_time_s`` (NTCIP 1202 ``unitBackupTime``, §1.8 of
  ``../shared/reference/field-io.md``). Control is handed back only after
  ``resume_heartbeats`` fresh heartbeats **and** a complete new command block.

Protocol front-ends (the Modbus server, the SNMP agent) call the ``submit_*``
methods from their own thread; everything they touch is guarded by
``self.lock``. Each tick :meth:`decide` first publishes a
:class:`Snapshot` (what the controller's outputs showed and what its
detectors saw), then - in lockstep (software-in-the-loop) - waits until
central asked for the next step, then picks the requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import networkx as nx
import numpy as np

from controller.arrays import PackedNetwork, pack
from controller.backend import Observation, detector_layout
from controller.engine import TickResult
from controller.estimate import Estimate
from controller.events import EventCode, EventRecorder
from controller.policies import register_policy
from controller.policies.base import Policy, PolicyContext
from controller.policies.common import next_stage_with_demand, stage_green_elapsed_s
from controller.policies.fixed_time import FixedTimePolicy, plan_arrays
from controller.safety import HOLD, Mode
from field_io.commands import (
    CommandBlock,
    CommandKind,
    ControllerMode,
    FaultBits,
    RejectReason,
    StatusBits,
    validate_block,
)
from field_io.emulator.plans import default_fallback_plan
from field_io.mapping import FieldMap, network_maps
from intersections.errors import GreenwaveError, InputError
from intersections.model import Intersection, SignalState
from intersections.network import Network
from intersections.plan import TimingPlan, plan_problems

__all__ = [
    "EmulatorConfig",
    "LocalController",
    "Snapshot",
    "DETECTOR_FAULTS",
    "EmulatorStopped",
    "PreemptState",
    "PreemptConfig",
    "MAX_PREEMPTS",
]

DETECTOR_FAULTS = ("stuck", "silent", "chatter")
#: Preempts per emulated controller at most (what the emulator answers as NTCIP 1202 maxPreempts).
MAX_PREEMPTS = 6
log = logging.getLogger("greenwave.field.emulator")
FLASH = int(SignalState.FLASH)


class EmulatorStopped(GreenwaveError):
    """Raised inside the tick loop when the emulator is asked to stop (the emulator's run() catches it)."""

    def __init__(self) -> None:
        super().__init__("the emulator was asked to stop")


class PreemptState(IntEnum):
    """NTCIP 1202 ``preemptState`` values (``../shared/reference/field-io.md`` §1.9).

    The emulator runs notActiveWithCall (a call timing its ``preemptDelay``) -> entry ->
    track service -> dwell -> exit, and ``linkActive`` for a preempt whose dwell handed over to
    the preempt it links to (:class:`PreemptConfig`); ``maxPresence`` is not modelled.
    """

    NOT_ACTIVE = 2
    NOT_ACTIVE_WITH_CALL = 3
    ENTRY_STARTED = 4
    TRACK_SERVICE = 5
    DWELL = 6
    LINK_ACTIVE = 7
    EXIT_STARTED = 8
    MAX_PRESENCE = 9


@dataclass(frozen=True)
class PreemptConfig:
    """One preempt of the emulated controllers: a row of NTCIP 1202's ``preemptTable`` (field-io.md §1.9).

    ``track_stage`` / ``dwell_stage`` (0-based stages, a stage past an
    intersection's last means its last) and ``track_green_s`` /
    ``min_dwell_s`` are ``preemptTrackPhase`` / ``preemptDwellPhase`` /
    ``preemptTrackGreen`` / ``preemptDwellGreen``. ``delay_s``
    (``preemptDelay``, 0-600 s): the input must stand this long before the
    sequence starts; a call dropped sooner never starts it (the state reads
    notActiveWithCall meanwhile). ``min_duration_s``
    (``preemptMinimumDuration``, 0-65535 s, timed from the end of the delay):
    the preempt stays in dwell at least this long even when the input drops.
    ``link`` (``preemptLink``, 0 none): at the end of the dwell's minimum
    time, while this preempt's input still stands, the preempt it names gets
    an automatic call (no delay) for as long as the input stands, and this
    preempt reads linkActive. NTCIP 1202 numbers preempts by priority (1 the
    highest) and a link names a higher-priority preempt, so a link may only
    name a lower number; a higher-priority preempt called while a lower one
    runs takes over, and the lower one starts again once it is done.
    """

    track_stage: int = 0
    dwell_stage: int = 1
    track_green_s: float = 10.0
    min_dwell_s: float = 10.0
    delay_s: float = 0.0
    min_duration_s: float = 0.0
    link: int = 0

    def check(self, number: int, count: int) -> None:
        """One-line errors naming the preempt (``number`` 1-based of ``count``)."""
        where = f"emulator preempt {number}"
        if min(self.track_stage, self.dwell_stage) < 0:
            raise InputError("preempt track and dwell stages are 0-based stage numbers (>= 0)", where=where)
        if min(self.track_green_s, self.min_dwell_s) < 0:
            raise InputError("preempt track green and minimum dwell must be >= 0 s", where=where)
        if not 0 <= self.delay_s <= 600:
            raise InputError(f"preemptDelay must be 0-600 s, got {self.delay_s:g}", where=where)
        if not 0 <= self.min_duration_s <= 65535:
            raise InputError(f"preemptMinimumDuration must be 0-65535 s, got {self.min_duration_s:g}", where=where)
        if self.link and not 1 <= self.link < number:
            raise InputError(
                f"preemptLink {self.link}: a link names a higher-priority preempt, 1..{number - 1} "
                f"(preempts are numbered by priority, 1 the highest; {count} configured)",
                where=where,
            )


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated controllers behave (the same for every intersection of the process).

    ``backup_time_s``: watchdog (NTCIP ``unitBackupTime``); ``resume_heartbeats``:
    fresh heartbeats needed, with a new command block, to hand control back;
    ``lockstep``: advance one tick per central step request (software in the
    loop) instead of wall-clock time; ``ped_calls_per_hour``: push-button
    presses per crossing and hour in the in-memory plant (Poisson; 0: only the
    presses of :meth:`LocalController.press_ped_button` and central's
    ``phaseControlGroupPedCall``); ``preempt_*``: the preemption sequence
    (NTCIP 1202 ``preemptTrackPhase`` / ``preemptDwellPhase`` /
    ``preemptTrackGreen`` / ``preemptDwellGreen`` as stages and seconds; a stage
    past an intersection's last means its last) of a controller with one preempt;
    ``preempts``: the preempt table instead (:class:`PreemptConfig`, one per preempt,
    priority order; it replaces the ``preempt_*`` settings); ``commissioning``: the technician's
    commissioning switch (fallback plan upload allowed); ``detector_faults``:
    ``(intersection id, channel) -> "stuck" | "silent" | "chatter"``, to
    rehearse the commissioning detector check; ``clock_offset_s``: skew of the
    controller clock.
    """

    backup_time_s: float = 5.0
    resume_heartbeats: int = 3
    dt_s: float = 1.0
    lockstep: bool = False
    commissioning: bool = False
    detector_faults: Mapping[tuple[str, int], str] = field(default_factory=dict)
    clock_offset_s: float = 0.0
    lockstep_straggler_s: float = 2.0
    speed: float = 1.0  # real time: simulated seconds per wall second (rehearsals and tests run faster)
    ped_calls_per_hour: float = 0.0
    preempt_track_stage: int = 0
    preempt_dwell_stage: int = 1
    preempt_track_green_s: float = 10.0
    preempt_min_dwell_s: float = 10.0
    preempts: tuple[PreemptConfig, ...] = ()

    @property
    def preempt_table(self) -> tuple[PreemptConfig, ...]:
        """The preempts the controllers run (``preempts``, or one made of the ``preempt_*`` settings)."""
        if self.preempts:
            return self.preempts
        return (
            PreemptConfig(
                self.preempt_track_stage, self.preempt_dwell_stage, self.preempt_track_green_s, self.preempt_min_dwell_s
            ),
        )

    def __post_init__(self) -> None:
        if self.backup_time_s <= 0:
            raise InputError("the backup time must be > 0 s (0 would disable the watchdog)", where="emulator")
        if self.speed <= 0 or self.dt_s <= 0:
            raise InputError("tick and speed must be > 0", where="emulator")
        if self.resume_heartbeats < 1:
            raise InputError("resume_heartbeats must be >= 1", where="emulator")
        if self.ped_calls_per_hour < 0:
            raise InputError(f"ped_calls_per_hour must be >= 0, got {self.ped_calls_per_hour}", where="emulator")
        if min(self.preempt_track_stage, self.preempt_dwell_stage) < 0:
            raise InputError("preempt track and dwell stages are 0-based stage numbers (>= 0)", where="emulator")
        if min(self.preempt_track_green_s, self.preempt_min_dwell_s) < 0:
            raise InputError("preempt track green and minimum dwell must be >= 0 s", where="emulator")
        if len(self.preempts) > MAX_PREEMPTS:
            raise InputError(f"at most {MAX_PREEMPTS} preempts, got {len(self.preempts)}", where="emulator")
        for k, pc in enumerate(self.preempts):
            pc.check(k + 1, len(self.preempts))
        for (_i, _c), kind in self.detector_faults.items():
            if kind not in DETECTOR_FAULTS:
                raise InputError(f"unknown detector fault {kind!r} (known: {', '.join(DETECTOR_FAULTS)})")


@dataclass(frozen=True)
class Snapshot:
    """What one tick published: outputs and detectors (protocol-neutral)."""

    tick: int
    plan_clock_s: float
    wall_time_s: float
    group_state: np.ndarray  # (N, G) SignalState codes
    stage: np.ndarray  # (N,) stage fully green (0-based), -1 in transition
    stage_timer_s: np.ndarray  # (N,)
    target: np.ndarray  # (N,)
    volume: np.ndarray  # (D,) uint16 free-running counters
    period_count: np.ndarray  # (D,) vehicles in the last period
    occupancy: np.ndarray  # (D,) 0..1 over the last period
    queue_veh: np.ndarray  # (N, G) vehicles standing in the stop-line zones, NaN not measured
    detector_sequence: int
    active_cycle_s: np.ndarray  # (N,)
    supervisor_mode: np.ndarray  # (N,) controller.safety.Mode of the previous tick
    done: bool = False


class LocalController(Policy):
    """Policy of the emulator's engine; see the module docstring."""

    name = "field-emulator"
    passive = False

    def __init__(
        self,
        network: Network,
        *,
        config: EmulatorConfig | None = None,
        fallback_plans: Mapping[str, TimingPlan] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        events: bool = False,
        pace: bool = False,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.pace = pace  # real-time runs sleep to the next tick in publish()
        self.clock = clock
        self.wall_clock = wall_clock
        self.lock = threading.RLock()
        self._tick_cond = threading.Condition(self.lock)
        self._stop = threading.Event()
        self.events_enabled = events
        self.recorder: EventRecorder | None = None
        self.fallback_plans = dict(fallback_plans or {})
        # Where the plant's special vehicles (bus GPS, emergency) go each tick: the AVL feed beside the
        # controllers (field_io.vehicle_feed), not a controller register.
        self.feed_sink: Callable[[float, Mapping[str, np.ndarray]], None] | None = None
        self._bind(network)

    # ------------------------------------------------------------------ binding
    def _bind(self, network: Network) -> None:
        """Size every per-intersection and per-detector array for ``network`` (at start and on a new network)."""
        self.network = network
        self.maps: tuple[FieldMap, ...] = network_maps(network)
        self.ids = tuple(i.id for i in network.intersections)
        self.row_of = {iid: r for r, iid in enumerate(self.ids)}
        n = len(self.ids)
        self.fallback_plans = self._checked_fallback_plans(network)
        self.central_plans: dict[str, TimingPlan] = dict(self.fallback_plans)
        # The plan players exist from the start, so a plan central or commissioning sends before the
        # engine's first reset() lands in them; reset() builds them again on the engine's rows.
        self._build_plan_players(network, pack(network.intersections))
        self.layout = detector_layout(network)
        self._bind_commands(n)
        self._bind_detectors(len(self.layout.ids))
        self.tick = -1
        self._started = self.clock()
        self.snapshot = self._empty_snapshot()
        self._step_waiters: list[tuple[int, Callable[[], None], asyncio.AbstractEventLoop | None]] = []
        self._last_req = np.full(n, -1, np.int64)
        self._last_supervisor_mode = np.zeros(n, np.int8)
        self._prev_mode = self.mode.copy()
        self._prev_target = np.full(n, -1, np.int64)
        self._deadline: float | None = None
        self._waiting = False
        self.done = False
        self._bind_crossings(n)
        self._bind_preempts(n)

    def _checked_fallback_plans(self, network: Network) -> dict[str, TimingPlan]:
        """Each intersection's fallback plan (given, or the default one), refused unless it passes the plan check."""
        plans = {}
        for inter in network.intersections:
            p = self.fallback_plans.get(inter.id) or default_fallback_plan(inter)
            problems = plan_problems(p, inter)
            if problems:
                raise InputError(f"fallback plan refused: {problems[0]}", where=f"intersection {inter.id}")
            plans[inter.id] = p
        return plans

    def _build_plan_players(self, network: Network, packed: PackedNetwork) -> None:
        """The fixed-time players of the local fallback plans and of the plans central commands."""
        fallback = FixedTimePolicy(self.fallback_plans)
        fallback.reset(network, packed)
        central = FixedTimePolicy(self.central_plans)
        central.reset(network, packed)
        self.fallback_policy, self.plan_policy = fallback, central

    def _bind_commands(self, n: int) -> None:
        """Heartbeat, hand-back and command-block state per intersection (the watchdog's and central's)."""
        self.hb_value = np.full(n, -1, np.int64)
        self.hb_change_t = np.full(n, -np.inf)
        self.fresh = np.zeros(n, np.int64)
        self.in_control = np.zeros(n, bool)
        self.fallback = np.zeros(n, bool)  # watchdog expired since the last handback
        self.pending = np.zeros(n, bool)  # a new valid block waits for the handback
        self.kind = np.zeros(n, np.int64)
        self.call = np.zeros(n, np.int64)
        self.hold = np.zeros(n, np.int64)
        self.force_off = np.zeros(n, np.int64)
        self.target_req = np.full(n, -1, np.int64)
        self.accepted_seq = np.zeros(n, np.int64)
        self.rejected_seq = np.zeros(n, np.int64)
        self.reject_reason = np.zeros(n, np.int64)
        self.fault_bits = np.zeros(n, np.int64)
        self.local_flash = np.zeros(n, bool)
        self.commissioning = np.full(n, bool(self.config.commissioning))
        self.mode = np.full(n, int(ControllerMode.LOCAL_PLAN), np.int64)
        self.stored_seq = np.zeros(n, np.int64)
        self.stale_seq = np.zeros(n, np.int64)  # the block in force when the watchdog expired
        self.requested_step = np.full(n, -1, np.int64)
        self.participating = np.zeros(n, bool)
        self.step_t = np.full(n, -np.inf)
        self._content: list[tuple | None] = [None] * n

    def _bind_detectors(self, d: int) -> None:
        """Detector counters and the configured detector faults (by intersection and channel)."""
        self._volume = np.zeros(d, np.int64)
        self._count_carry = np.zeros(d)  # fractions of a vehicle not yet counted (see _whole_vehicles)
        self._det_seq = 0
        self._fault_kind = np.zeros(d, np.int8)  # 0 none, 1 stuck, 2 silent, 3 chatter
        by_key = {
            (self.ids[r], int(c)): k for k, (r, c) in enumerate(zip(self.layout.row, self._channels(), strict=True))
        }
        for (iid, ch), kind in self.config.detector_faults.items():
            k = by_key.get((iid, int(ch)))
            if k is None:
                raise InputError(f"no detector on channel {ch}", where=f"intersection {iid}")
            self._fault_kind[k] = 1 + ("stuck", "silent", "chatter").index(kind)

    def _bind_crossings(self, n: int) -> None:
        """Pedestrian push buttons: latched calls, cleared when the crossing shows WALK."""
        g_max = max((m.n_groups for m in self.maps), default=0)
        self.ped_call = np.zeros((n, g_max), bool)
        self._is_ped = np.zeros((n, g_max), bool)
        for r, m in enumerate(self.maps):
            self._is_ped[r, : m.n_groups] = [grp.is_pedestrian for grp in m.intersection.groups]
        self._ped_rng = np.random.default_rng(12345)

    def _bind_preempts(self, n: int) -> None:
        """Preemption, one column per preempt of the table (priority order).

        Inputs, automatic calls from links, NTCIP ``preemptState``, and when the call came,
        the sequence started and the step began.
        """
        self.preempts = self.config.preempt_table
        n_pre = len(self.preempts)
        self.preempt_input = np.zeros((n, n_pre), bool)
        self.preempt_link_call = np.zeros((n, n_pre), bool)
        self.preempt_state = np.full((n, n_pre), int(PreemptState.NOT_ACTIVE), np.int64)
        self._preempt_call_t = np.zeros((n, n_pre))
        self._preempt_start_t = np.zeros((n, n_pre))
        self.preempt_since = np.zeros((n, n_pre))
        last = np.array([max(m.n_stages - 1, 0) for m in self.maps], np.int64)[:, None]
        self.preempt_track_stage = np.minimum(np.array([[pc.track_stage for pc in self.preempts]]), last)
        self.preempt_dwell_stage = np.minimum(np.array([[pc.dwell_stage for pc in self.preempts]]), last)

    def _channels(self) -> np.ndarray:
        return np.concatenate([m.channel for m in self.maps]) if self.maps else np.zeros(0, np.int64)

    def _empty_snapshot(self) -> Snapshot:
        n = len(self.ids)
        g = max(m.n_groups for m in self.maps)
        d = len(self.layout.ids)
        return Snapshot(
            tick=-1,
            plan_clock_s=0.0,
            wall_time_s=self.wall_clock() + self.config.clock_offset_s,
            group_state=np.zeros((n, g), np.int8),
            stage=np.full(n, -1),
            stage_timer_s=np.zeros(n),
            target=np.full(n, -1),
            volume=np.zeros(d, np.int64),
            period_count=np.zeros(d),
            occupancy=np.zeros(d),
            queue_veh=np.full((n, g), np.nan),
            detector_sequence=0,
            active_cycle_s=np.zeros(n),
            supervisor_mode=np.zeros(n, np.int8),
        )

    # ------------------------------------------------------------------ policy protocol
    def reset(self, network: Network, packed: PackedNetwork) -> None:
        if tuple(i.id for i in network.intersections) != self.ids or detector_layout(network).ids != self.layout.ids:
            self._bind(network)
        self.packed = packed
        # Under the lock: a protocol thread's SET (submit_command -> _set_plan_row) must never see a
        # policy that exists but is not reset yet (a SET in the emulator's first milliseconds did).
        with self.lock:
            self._build_plan_players(network, packed)
        if self.events_enabled:
            self.recorder = EventRecorder(network, packed, self.layout)

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        if self._stop.is_set():
            raise EmulatorStopped
        self.tick += 1
        self._publish(obs, ctx)
        if self.config.lockstep:
            self._wait_for_step()
            if self._stop.is_set():
                raise EmulatorStopped
        now = self.clock()
        with self.lock:
            self._watchdog(now)
            self._pedestrians(ctx)
            req = self._requests(ctx)
            req = self._preempt(ctx, req)
            self._update_mode(ctx.time_s)
        self._last_req = req
        return req

    # ------------------------------------------------------------------ snapshot
    def _publish(self, obs: Observation, ctx: PolicyContext) -> None:
        counts = np.nan_to_num(np.asarray(obs.counts, float))
        occ = np.clip(np.nan_to_num(np.asarray(obs.occupancy, float)), 0.0, 1.0)
        fk = self._fault_kind
        if fk.any():
            counts = np.where(fk == 1, 0.0, np.where(fk == 2, 0.0, np.where(fk == 3, counts + 3.0, counts)))
            occ = np.where(fk == 1, 1.0, np.where(fk == 2, 0.0, np.where(fk == 3, np.maximum(occ, 0.02), occ)))
        queue = np.array(obs.queue_veh, float, copy=True)
        if fk.any():  # a faulty stop-line zone cannot measure its group's queue either
            queue[self.layout.stop_line_groups(fk > 0, queue.shape)] = np.nan
        counts = self._whole_vehicles(counts)
        self._volume = (self._volume + counts) & 0xFFFF
        self._det_seq = (self._det_seq + 1) & 0xFFFF
        elapsed = stage_green_elapsed_s(ctx, self.packed)
        stage = np.where(elapsed >= 0, ctx.target, -1)
        active_cycle = np.where(
            (self.mode == ControllerMode.CENTRAL_PLAN),
            self.plan_policy.cycle_s,
            np.where(self.mode == ControllerMode.LOCAL_PLAN, self.fallback_policy.cycle_s, 0.0),
        )
        snap = Snapshot(
            tick=self.tick,
            plan_clock_s=float(ctx.time_s),
            wall_time_s=self.wall_clock() + self.config.clock_offset_s,
            group_state=np.asarray(ctx.state, np.int8).copy(),
            stage=stage,
            stage_timer_s=np.maximum(elapsed, 0.0),
            target=np.asarray(ctx.target).copy(),
            volume=self._volume.copy(),
            period_count=counts.astype(float),
            occupancy=occ,
            queue_veh=queue,
            detector_sequence=self._det_seq,
            active_cycle_s=active_cycle,
            supervisor_mode=self._last_supervisor_mode.copy(),
        )
        if self.feed_sink is not None and obs.extra:
            self.feed_sink(float(ctx.time_s), obs.extra)  # before the step reply: central reads it with the status
        with self.lock:
            self.snapshot = snap
            self._release_waiters(self.tick)

    def _whole_vehicles(self, counts: np.ndarray) -> np.ndarray:
        """Whole vehicles per detector this tick, the fractions carried to the next tick.

        A loop counts vehicles, never fractions of them; the in-memory plant's
        fluid model releases e.g. 0.5 vehicle per 1-s tick at saturation flow.
        Rounding each tick on its own loses them all (0.5 rounds to 0: a
        detector occupied through a whole green without a count, which the
        commissioning check rightly calls stuck). Carrying the remainder keeps
        the running total within one vehicle of the model's, so the free-running
        ``detectorVolume`` / volume registers count every vehicle that left.
        """
        total = self._count_carry + np.maximum(counts, 0.0)
        whole = np.floor(total + 1e-9)
        self._count_carry = np.maximum(total - whole, 0.0)
        return whole.astype(np.int64)

    def _release_waiters(self, tick: int) -> None:
        """Run the waiters whose tick is published: one wake-up per event loop, not one per waiter.

        (Each cross-thread wake-up costs a GIL hand-over; batching them keeps a
        lockstep tick at a few milliseconds.)
        """
        keep, due = [], []
        for target, cb, loop in self._step_waiters:
            if target <= tick or self.done:
                due.append((cb, loop))
            else:
                keep.append((target, cb, loop))
        self._step_waiters = keep
        by_loop: dict[asyncio.AbstractEventLoop, list[Callable[[], None]]] = {}
        for cb, loop in due:
            if loop is None:
                cb()
            else:
                by_loop.setdefault(loop, []).append(cb)
        for loop, cbs in by_loop.items():
            loop.call_soon_threadsafe(_run_all, cbs)

    def finish(self) -> None:
        """The coupled simulation ended: answer every waiting step request, flag PLANT_DONE."""
        with self.lock:
            self.done = True
            self.snapshot = Snapshot(**{**self.snapshot.__dict__, "done": True})
            self._release_waiters(1 << 62)
            self._tick_cond.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self.lock:
            self._tick_cond.notify_all()

    # ------------------------------------------------------------------ lockstep
    def add_step_waiter(
        self, target_tick: int, callback: Callable[[], None], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Run ``callback`` once the status for ``target_tick`` is published (in ``loop`` when given)."""
        with self.lock:
            if self.snapshot.tick >= target_tick or self.done:
                callback()
            else:
                self._step_waiters.append((target_tick, callback, loop))

    def _wait_for_step(self) -> None:
        """Block until every participating intersection asked for tick ``self.tick + 1``.

        Stragglers are waited for ``lockstep_straggler_s`` after the first
        request; if no participating intersection has a live central (no
        heartbeat for the backup time), the controller runs on in real time
        so that its fallback plays out.
        """
        want = self.tick + 1
        first_seen: float | None = None
        cfg = self.config
        with self.lock:
            self._waiting = True
        try:
            self._wait_loop(want, first_seen, cfg)
        finally:
            with self.lock:
                self._waiting = False

    def _wait_loop(self, want: int, first_seen: float | None, cfg: EmulatorConfig) -> None:
        with self.lock:
            while not self._stop.is_set():
                now = self.clock()
                part = self.participating
                live = part & (now - np.maximum(self.hb_change_t, self.step_t) <= cfg.backup_time_s)
                if part.any() and not live.any():
                    break  # central silent: real-time fallback
                asked = self.requested_step >= want
                if part.any() and asked[part].all():
                    return
                if (asked & part).any():
                    first_seen = first_seen if first_seen is not None else now
                    if now - first_seen >= cfg.lockstep_straggler_s:
                        return
                self._tick_cond.wait(timeout=0.05)
        if not self._stop.is_set():
            self._stop.wait(cfg.dt_s)

    # ------------------------------------------------------------------ protocol side
    def row(self, intersection_id: str) -> int:
        return self.row_of[intersection_id]

    def submit_heartbeat(self, row: int, value: int) -> None:
        """A heartbeat write: a *change* of the value is a fresh heartbeat."""
        now = self.clock()
        with self.lock:
            if int(value) != int(self.hb_value[row]):
                if now - self.hb_change_t[row] > self.config.backup_time_s:
                    self.fresh[row] = 0
                self.fresh[row] += 1
                self.hb_value[row] = int(value)
                self.hb_change_t[row] = now

    def submit_heartbeats(self, rows: np.ndarray, values: np.ndarray) -> None:
        """:meth:`submit_heartbeat` for many distinct rows at once (a server answering a batch of reads)."""
        now = self.clock()
        with self.lock:
            v = np.asarray(values, np.int64)
            changed = v != self.hb_value[rows]
            if changed.any():
                r = rows[changed]
                self.fresh[r[now - self.hb_change_t[r] > self.config.backup_time_s]] = 0
                self.fresh[r] += 1
                self.hb_value[r] = v[changed]
                self.hb_change_t[r] = now

    def submit_step(self, row: int, step: int) -> None:
        """Lockstep: central read tick ``step - 1`` and sent its commands; advance to ``step``."""
        if not self.config.lockstep or step <= 0:
            return
        with self.lock:
            self.participating[row] = True
            self.step_t[row] = self.clock()
            if step > self.requested_step[row]:
                self.requested_step[row] = int(step)
                part = self.participating
                if (self.requested_step[part] >= step).all():
                    self._tick_cond.notify_all()  # wake the tick thread once, when everyone asked

    def submit_command(
        self,
        row: int,
        block: CommandBlock | None,
        reason: RejectReason = RejectReason.NONE,
        *,
        phase_control: bool = False,
    ) -> RejectReason:
        """A complete command block arrived (``reason`` set when the protocol layer already refused it).

        ``phase_control``: the block carries NTCIP 1202 phase control as a
        standard central sets it, one group at a time (hold, force-off, call,
        omit, field-io.md §1.4): the masks need not name one target stage
        that is called and held (greenwave's own block does); only their range
        is checked, and ``target_stage`` may be -1 (no stage requested).
        """
        inter = self.network.intersections[row]
        with self.lock:
            seq = 0 if block is None else int(block.seq)
            if reason == RejectReason.NONE and block is not None:
                if seq == 0:  # "no command yet" (the registers at power-up); a real block is numbered from 1
                    if block.content() != CommandBlock(seq=0, kind=CommandKind.RELEASE).content():
                        log.warning(
                            "intersection %s: a command block with sequence number 0 ignored "
                            "(0 means 'no command'; number blocks 1-65535)",
                            inter.id,
                        )
                    return RejectReason.NONE
                if seq == self.accepted_seq[row] and self._content[row] is not None:
                    if block.content() == self._content[row]:
                        return RejectReason.NONE  # a refresh of the block in force
                    reason = RejectReason.SEQUENCE_REUSED
                elif not self.in_control[row] and seq == self.stale_seq[row]:
                    return RejectReason.NONE  # the block that was in force before the fallback: not new
                elif self.local_flash[row] or self._last_supervisor_mode[row] == Mode.FAULT:
                    reason = RejectReason.LOCAL_OVERRIDE
                else:
                    reason = _validate_phase_control(block, inter) if phase_control else validate_block(block, inter)
            if reason != RejectReason.NONE:
                self.rejected_seq[row] = seq
                self.reject_reason[row] = int(reason)
                if block is not None and block.kind == CommandKind.PLAN:
                    self.fault_bits[row] |= FaultBits.PLAN_REJECTED
                return reason
            assert block is not None
            self.accepted_seq[row] = seq
            self._content[row] = block.content()
            self.kind[row] = int(block.kind)
            if block.kind == CommandKind.STAGE:
                self.call[row], self.hold[row], self.force_off[row] = block.call, block.hold, block.force_off
                self.target_req[row] = block.target_stage
            elif block.kind == CommandKind.PLAN:
                assert block.plan is not None
                self.central_plans[inter.id] = block.plan
                self._set_plan_row(self.plan_policy, row, block.plan)
            # The alarm names the *last* command: a later good block of any kind clears it (a plan
            # refused an hour ago must not read as a current fault once central moved on).
            self.fault_bits[row] &= ~FaultBits.PLAN_REJECTED
            if block.kind == CommandKind.RELEASE:
                self.in_control[row] = False
                self.pending[row] = False
            elif not self.in_control[row]:
                self.pending[row] = True
            return RejectReason.NONE

    def submit_fallback_plan(self, row: int, seq: int, plan: TimingPlan | None, reason: RejectReason) -> RejectReason:
        """Commissioning: store a new local fallback plan (only with the commissioning switch on)."""
        inter = self.network.intersections[row]
        with self.lock:
            if reason == RejectReason.NONE and not self.commissioning[row]:
                reason = RejectReason.NOT_COMMISSIONING
            if reason == RejectReason.NONE and (plan is None or plan_problems(plan, inter)):
                reason = RejectReason.PLAN_INVALID
            if reason != RejectReason.NONE:
                self.rejected_seq[row] = seq
                self.reject_reason[row] = int(reason)
                return reason
            assert plan is not None
            self.fallback_plans[inter.id] = plan
            self._set_plan_row(self.fallback_policy, row, plan)
            self.stored_seq[row] = int(seq)
            return RejectReason.NONE

    def set_local_flash(self, row: int, on: bool) -> None:
        """The cabinet's manual flash switch (local override: central becomes read-only)."""
        with self.lock:
            self.local_flash[row] = bool(on)
            if on:
                self.in_control[row] = False
                self.pending[row] = False

    def press_ped_button(self, row: int, group: int) -> None:
        """A push-button press at crossing ``group`` (inventory index) of ``row``: a call latched until it walks.

        Pressing again while the call stands changes nothing (a real button
        latches once); a group that is not a crossing is refused.
        """
        with self.lock:
            if not self._is_ped[row, group]:
                raise InputError(f"group {group} is not a pedestrian crossing", where=f"intersection {self.ids[row]}")
            self.ped_call[row, group] = True

    def set_preempt(self, row: int, on: bool, number: int = 1) -> None:
        """The cabinet's input of preempt ``number`` (a railway track circuit, an emergency-vehicle detector)."""
        if not 1 <= number <= len(self.preempts):
            raise InputError(
                f"no preempt {number}: the controllers have {len(self.preempts)}", where=f"intersection {self.ids[row]}"
            )
        with self.lock:
            self.preempt_input[row, number - 1] = bool(on)

    def set_commissioning(self, row: int, on: bool) -> None:
        with self.lock:
            self.commissioning[row] = bool(on)

    def _set_plan_row(self, policy: FixedTimePolicy, row: int, plan: TimingPlan) -> None:
        inter = self.network.intersections[row]
        one = Network((inter,), nx.DiGraph())
        cycle, offset, ends, idx = plan_arrays(one, {inter.id: plan})
        k = ends.shape[1]
        if k > policy.green_end_s.shape[1]:
            pad = k - policy.green_end_s.shape[1]
            policy.green_end_s = np.pad(policy.green_end_s, ((0, 0), (0, pad)), constant_values=np.inf)
            policy.stage_index = np.pad(policy.stage_index, ((0, 0), (0, pad)), constant_values=-1)
        policy.green_end_s[row] = np.inf
        policy.stage_index[row] = -1
        policy.green_end_s[row, :k] = ends[0]
        policy.stage_index[row, :k] = idx[0]
        policy.cycle_s[row] = cycle[0]
        policy.offset_s[row] = offset[0]
        policy.n_stages[row] = int((idx[0] >= 0).sum())
        policy.plans[inter.id] = plan

    # ------------------------------------------------------------------ the tick's decisions
    def heartbeat_age_s(self, now: float | None = None) -> np.ndarray:
        now = self.clock() if now is None else now
        return now - self.hb_change_t

    def _watchdog(self, now: float) -> None:
        cfg = self.config
        fresh_link = now - self.hb_change_t <= cfg.backup_time_s
        expired = self.in_control & ~fresh_link
        if expired.any():
            # NTCIP backup mode: the central command is forgotten; the local plan runs.
            self.in_control[expired] = False
            self.fallback[expired] = True
            self.pending[expired] = False
            self.fault_bits[expired] |= FaultBits.COMM_LOSS
            self.fresh[expired] = 0
            self.stale_seq[expired] = self.accepted_seq[expired]
            self._content_reset(np.flatnonzero(expired))
        lost = ~fresh_link & (self.fresh > 0)
        self.fresh[lost] = 0
        override = self.local_flash | (self._last_supervisor_mode == Mode.FAULT)
        hand = ~self.in_control & self.pending & fresh_link & (self.fresh >= cfg.resume_heartbeats) & ~override
        if hand.any():
            self.in_control[hand] = True
            self.pending[hand] = False
            self.fallback[hand] = False
            self.fault_bits[hand] &= ~FaultBits.COMM_LOSS

    def _pedestrians(self, ctx: PolicyContext) -> None:
        """Push-button presses of this tick (Poisson), and calls served: a crossing that shows WALK is answered."""
        rate = self.config.ped_calls_per_hour
        if rate > 0:
            p = 1.0 - np.exp(-rate / 3600.0 * self.config.dt_s)
            self.ped_call |= self._is_ped & (self._ped_rng.random(self.ped_call.shape) < p)
        state = np.asarray(ctx.state)
        g = min(state.shape[1], self.ped_call.shape[1])
        self.ped_call[:, :g] &= state[:, :g] != int(SignalState.GREEN)

    def _ped_call_stages(self) -> np.ndarray:
        """Per row, the bit mask of the stages that serve a called crossing."""
        out = np.zeros(len(self.ids), np.int64)
        for r in np.flatnonzero(self.ped_call.any(axis=1)):
            inter = self.network.intersections[r]
            called = {inter.groups[k].id for k in np.flatnonzero(self.ped_call[r])}
            for k, st in enumerate(inter.stages):
                if called & set(st.groups):
                    out[r] |= 1 << k
        return out

    def _preempt(self, ctx: PolicyContext, req: np.ndarray) -> np.ndarray:
        """Preemption overrides every other source of requests (central, plan, fallback).

        A call first times its delay (notActiveWithCall); then entry: the
        track-clearance stage is requested (the supervisor still times the
        running green's minimum and the clearances); track service: it is held
        for the track green; dwell: the dwell stage is requested and held for
        the minimum dwell and the preempt's minimum duration, and then while the
        input stands - or, with a link, the linked preempt takes over
        (linkActive); exit: normal requests again. The highest-priority preempt
        ready runs. NTCIP 1202 ``preemptState`` reports each step
        (``../shared/reference/field-io.md`` §1.9; :class:`PreemptConfig`).
        """
        st = self.preempt_state
        calls = self.preempt_input | self.preempt_link_call
        rows = np.flatnonzero(calls.any(axis=1) | (st != PreemptState.NOT_ACTIVE).any(axis=1))
        if not rows.size:
            return req
        req = req.copy()
        t = float(ctx.time_s)
        elapsed = stage_green_elapsed_s(ctx, self.packed)
        target = np.asarray(ctx.target)
        for r in rows.tolist():
            want = self._preempt_row(r, t, bool(elapsed[r] >= 0), int(target[r]))
            if want >= 0:
                req[r] = want
        return req

    def _preempt_row(self, r: int, t: float, green: bool, cur: int) -> int:
        """One controller's preempt table for this tick: the stage it requests (-1: normal requests)."""
        st, cfgs = self.preempt_state[r], self.preempts
        inp, auto = self.preempt_input[r], self.preempt_link_call[r]
        idle, waiting = PreemptState.NOT_ACTIVE, PreemptState.NOT_ACTIVE_WITH_CALL
        running_states = (PreemptState.ENTRY_STARTED, PreemptState.TRACK_SERVICE, PreemptState.DWELL)
        for p in range(len(cfgs)):  # calls come and go; a call times its delay
            if st[p] in (idle, waiting, PreemptState.EXIT_STARTED):
                if not (inp[p] or auto[p]):
                    st[p] = idle
                elif st[p] != waiting:
                    st[p], self._preempt_call_t[r, p] = waiting, t
        run = -1
        for p in range(len(cfgs)):  # the highest-priority preempt running or ready runs
            if st[p] in running_states:
                run = p
                break
            if st[p] == waiting and (auto[p] or t - self._preempt_call_t[r, p] >= cfgs[p].delay_s):
                st[p] = PreemptState.ENTRY_STARTED
                self._preempt_start_t[r, p] = self.preempt_since[r, p] = t
                run = p
                break
        want = -1
        if run >= 0:
            for q in range(run + 1, len(cfgs)):  # pre-empted by a higher priority: it starts again afterwards
                if st[q] in running_states:
                    st[q] = waiting
            want = self._preempt_step(r, run, t, green, cur)
        for p in range(len(cfgs)):  # a link stands while the linking preempt's own input does
            if st[p] == PreemptState.LINK_ACTIVE:
                auto[cfgs[p].link - 1] = bool(inp[p])
                if not inp[p]:
                    st[p] = idle
        return want

    def _preempt_step(self, r: int, p: int, t: float, green: bool, cur: int) -> int:
        """Entry, track service and dwell of preempt ``p`` (0-based) of row ``r``; the stage requested."""
        st, cfg = self.preempt_state[r], self.preempts[p]
        track, dwell = int(self.preempt_track_stage[r, p]), int(self.preempt_dwell_stage[r, p])
        s, want = int(st[p]), -1
        if s == PreemptState.ENTRY_STARTED:
            if cur == track and green:
                s, self.preempt_since[r, p] = PreemptState.TRACK_SERVICE, t
            else:
                want = track
        if s == PreemptState.TRACK_SERVICE:
            if t - self.preempt_since[r, p] < cfg.track_green_s:
                want = track
            elif cur == dwell and green:
                s, self.preempt_since[r, p] = PreemptState.DWELL, t
            else:
                want = dwell
        if s == PreemptState.DWELL:
            held = (
                t - self.preempt_since[r, p] < cfg.min_dwell_s
                or t - self._preempt_start_t[r, p] < cfg.min_duration_s
            )
            own = bool(self.preempt_input[r, p])
            if held:
                want = dwell
            elif own and cfg.link:
                s, want = PreemptState.LINK_ACTIVE, dwell  # the linked preempt takes over from the next tick
                self.preempt_link_call[r, cfg.link - 1] = True
            elif own or self.preempt_link_call[r, p]:
                want = dwell
            else:
                s = PreemptState.EXIT_STARTED  # this tick's normal requests take over
        st[p] = s
        return want

    def _content_reset(self, rows: np.ndarray) -> None:
        for r in rows:
            self._content[int(r)] = None  # a refresh of the old block is not a new block
            self.kind[r] = CommandKind.RELEASE

    def _requests(self, ctx: PolicyContext) -> np.ndarray:
        p = self.packed
        t = ctx.time_s
        fb = self.fallback_policy.requests_at(t)
        cp = self.plan_policy.requests_at(t)
        s = p.s
        bits = 1 << np.arange(s)
        # A standard central's phase control (no target stage named) leaves the controller to serve its
        # own calls, pedestrian push buttons among them; greenwave's block names the stage to run.
        standard = self.target_req < 0
        ped = np.where(standard, self._ped_call_stages(), 0) if self.ped_call.any() else 0
        call = ((self.call | ped)[:, None] & bits[None, :]) != 0
        cur = np.asarray(ctx.target)
        has = cur >= 0
        cur_bit = np.where(has, 1 << np.maximum(cur, 0), 0)
        held = has & ((self.hold & cur_bit) != 0) & ((self.force_off & cur_bit) == 0)
        nxt = next_stage_with_demand(cur, call, p.stage_valid)
        # The next stage is chosen once the current one is green: during a change interval the target
        # stands (re-choosing "the stage after the target" every tick would chase the target forever when
        # several stages are called, as a standard central's phase call or recall does).
        changing = stage_green_elapsed_s(ctx, p) < 0
        stage_req = np.where(held | (nxt < 0) | changing, HOLD, nxt)
        # No stage running yet (start-up all-red): the named target, else the first called stage.
        first_called = np.where(call.any(axis=1), np.argmax(call, axis=1), HOLD)
        stage_req = np.where(has, stage_req, np.where(self.target_req >= 0, self.target_req, first_called))
        central = self.in_control
        req = np.where(
            central & (self.kind == CommandKind.STAGE),
            stage_req,
            np.where(central & (self.kind == CommandKind.PLAN), cp, fb),
        )
        return req.astype(np.int64)

    def _update_mode(self, t: float) -> None:
        sup = self._last_supervisor_mode
        mode = np.where(
            self.in_control & (self.kind == CommandKind.PLAN),
            int(ControllerMode.CENTRAL_PLAN),
            np.where(self.in_control, int(ControllerMode.CENTRAL_STAGE), int(ControllerMode.LOCAL_PLAN)),
        )
        flashing = self.local_flash | (sup == Mode.CLEARING) | (sup == Mode.FLASH)
        mode = np.where(flashing, int(ControllerMode.FLASH), mode)
        mode = np.where(sup == Mode.FAULT, int(ControllerMode.FAULT), mode)
        self.mode = mode.astype(np.int64)
        fb = self.fault_bits
        fb[:] = np.where(sup == Mode.FAULT, fb | FaultBits.MMU, fb)
        fb[:] = np.where(flashing | (sup == Mode.FAULT), fb | FaultBits.FLASH, fb & ~FaultBits.FLASH)
        fb[:] = np.where(self.local_flash, fb | FaultBits.LOCAL_OVERRIDE, fb & ~FaultBits.LOCAL_OVERRIDE)
        fb[:] = np.where(self._fault_rows(), fb | FaultBits.DETECTOR, fb & ~FaultBits.DETECTOR)
        if self.recorder is not None:
            changed = np.flatnonzero(self.mode != self._prev_mode)
            pattern = {ControllerMode.LOCAL_PLAN: 1, ControllerMode.CENTRAL_PLAN: 2, ControllerMode.CENTRAL_STAGE: 254}
            for r in changed:
                m = ControllerMode(int(self.mode[r]))
                if m in pattern:
                    self.recorder.emit(t, int(r), EventCode.PATTERN_CHANGE, pattern[m])
                was_fb = bool(self.fallback[r]) and m == ControllerMode.LOCAL_PLAN
                if was_fb:
                    self.recorder.emit(t, int(r), EventCode.ALARM_ON, 1)
                elif self._prev_mode[r] == ControllerMode.LOCAL_PLAN and m in (
                    ControllerMode.CENTRAL_PLAN,
                    ControllerMode.CENTRAL_STAGE,
                ):
                    self.recorder.emit(t, int(r), EventCode.ALARM_OFF, 1)
        self._prev_mode = self.mode.copy()

    def _fault_rows(self) -> np.ndarray:
        out = np.zeros(len(self.ids), bool)
        if self._fault_kind.any():
            out[self.layout.row[self._fault_kind > 0]] = True
        return out

    # ------------------------------------------------------------------ after each tick
    def publish(self, res: TickResult) -> None:
        """Engine ``on_tick`` hook: remember the supervisor's mode, log hi-res events, pace real time."""
        self._last_supervisor_mode = np.asarray(res.report.mode, np.int8).copy()
        if self.recorder is not None:
            obs = res.observation
            presence = (np.nan_to_num(obs.occupancy) > 0) | (np.nan_to_num(obs.counts) > 0)
            target = np.asarray(res.report.target)
            # A controller ends a green on its plan's or central's force-off (Indiana code 6).
            term = np.where((self._prev_target >= 0) & (target != self._prev_target), int(EventCode.FORCE_OFF), 0)
            self.recorder.record(res.time_s, res.states, presence, self.config.dt_s, termination=term)
            self._prev_target = target.copy()
        if self.pace and not self.config.lockstep:
            self._pace()

    def _pace(self) -> None:
        now = self.clock()
        if self._deadline is None:
            self._deadline = now
        period = self.config.dt_s / self.config.speed
        self._deadline += period
        delay = self._deadline - now
        if delay > 0:
            self._stop.wait(delay)
        elif delay < -5 * period:
            self._deadline = now  # fell far behind (suspended?): do not race to catch up

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ status for the protocols
    def status_words(self, rows: np.ndarray, now: float) -> np.ndarray:
        """:meth:`status_word` of many rows at once, the same bits (a test holds the two together)."""
        m = self.mode[rows]
        central = self.in_control[rows]
        bits = np.where(central, _SB_CENTRAL, 0)
        bits |= np.where(self.fallback[rows] & ~central, _SB_FALLBACK, 0)
        bits |= np.where(m == _MODE_FLASH, _SB_FLASH, 0) | np.where(m == _MODE_FAULT, _SB_FLASH | _SB_MMU, 0)
        bits |= np.where(self.local_flash[rows], _SB_LOCAL, 0)
        bits |= np.where(self.commissioning[rows], _SB_COMMISSIONING, 0)
        bits |= np.where(self.fault_bits[rows] & _FB_DETECTOR, _SB_DETECTOR, 0)
        if self.config.lockstep:
            bits |= _SB_LOCKSTEP | (_SB_STEP_WAITING if self._waiting else 0)
        bits |= np.where(self.pending[rows] & ~central, _SB_PENDING, 0)
        bits |= np.where(now - self.hb_change_t[rows] <= self.config.backup_time_s, _SB_HEARTBEAT_OK, 0)
        if self.snapshot.done:
            bits |= _SB_DONE
        bits |= np.where((self.preempt_state[rows] > _PREEMPT_CALL).any(axis=1), _SB_PREEMPT, 0)
        return bits

    def status_word(self, row: int, now: float | None = None) -> int:
        # Plain ints, not enum arithmetic: the protocol servers call this for every status read.
        now = self.clock() if now is None else now
        m = int(self.mode[row])
        in_control = bool(self.in_control[row])
        bits = _SB_CENTRAL if in_control else 0
        if self.fallback[row] and not in_control:
            bits |= _SB_FALLBACK
        if m == _MODE_FLASH:
            bits |= _SB_FLASH
        elif m == _MODE_FAULT:
            bits |= _SB_FLASH | _SB_MMU
        if self.local_flash[row]:
            bits |= _SB_LOCAL
        if self.commissioning[row]:
            bits |= _SB_COMMISSIONING
        if int(self.fault_bits[row]) & _FB_DETECTOR:
            bits |= _SB_DETECTOR
        if self.config.lockstep:
            bits |= _SB_LOCKSTEP
            if self._waiting:
                bits |= _SB_STEP_WAITING
        if self.pending[row] and not in_control:
            bits |= _SB_PENDING
        if now - float(self.hb_change_t[row]) <= self.config.backup_time_s:
            bits |= _SB_HEARTBEAT_OK
        if self.snapshot.done:
            bits |= _SB_DONE
        if (self.preempt_state[row] > _PREEMPT_CALL).any():  # a sequence runs (a call timing its delay does not)
            bits |= _SB_PREEMPT
        return bits


_SB_CENTRAL, _SB_FALLBACK, _SB_FLASH = int(StatusBits.CENTRAL_CONTROL), int(StatusBits.FALLBACK), int(StatusBits.FLASH)
_SB_MMU, _SB_LOCAL, _SB_COMMISSIONING = (
    int(StatusBits.MMU_FAULT),
    int(StatusBits.LOCAL_OVERRIDE),
    int(StatusBits.COMMISSIONING),
)
_SB_DETECTOR, _SB_LOCKSTEP, _SB_STEP_WAITING = (
    int(StatusBits.DETECTOR_FAULT),
    int(StatusBits.LOCKSTEP),
    int(StatusBits.STEP_WAITING),
)
_SB_PENDING, _SB_HEARTBEAT_OK, _SB_DONE = (
    int(StatusBits.PENDING_HANDBACK),
    int(StatusBits.HEARTBEAT_OK),
    int(StatusBits.PLANT_DONE),
)
_MODE_FLASH, _MODE_FAULT = int(ControllerMode.FLASH), int(ControllerMode.FAULT)
_SB_PREEMPT, _PREEMPT_CALL = int(StatusBits.PREEMPT), int(PreemptState.NOT_ACTIVE_WITH_CALL)
_FB_DETECTOR = int(FaultBits.DETECTOR)


def _validate_phase_control(block: CommandBlock, inter: Intersection) -> RejectReason:
    """Range checks of a standard phase-control block (see :meth:`LocalController.submit_command`)."""
    n = len(inter.stages)
    if block.kind != CommandKind.STAGE:
        return validate_block(block, inter)
    if not -1 <= block.target_stage < n or (block.call | block.hold | block.force_off) & ~((1 << n) - 1):
        return RejectReason.STAGE_OUT_OF_RANGE
    return RejectReason.NONE


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for cb in callbacks:
        cb()


@register_policy("field-emulator")
def _field_emulator(core: LocalController | None = None) -> LocalController:
    """The emulator's local controller as a named policy (so that ``simulate`` can drive SUMO with it)."""
    if core is None:
        raise InputError("the field-emulator controller runs only inside `greenwave emulate --sumo`")
    return core
