"""The live engine: a background thread that ticks the backend, and what it publishes.

:class:`EngineRunner` owns the backend, the engine and the policy. The FastAPI
lifespan starts it and stops it. Each loop it

1. runs the operations the API queued (:meth:`EngineRunner.post`): new
   commands, cancellations, plan activations, schedules, link cuts — so the
   engine is only ever touched by its own thread, between ticks;
2. resolves what each intersection should run: the newest unexpired operator
   command, else the time-of-day schedule entry in force, else the standing
   mode (adaptive, or the activated plan), and hands changes to the
   :class:`~api.server.control.OverridePolicy` / :class:`~api.server.control.CentreBackend`;
3. ticks the engine (read -> estimate -> policy -> safety supervisor -> write);
4. raises and clears alarms, keeps short histories (signal states, detector
   presence, queues) for the dashboard, accumulates KPIs, writes the
   high-resolution events to the database in compressed chunks, and publishes
   an immutable snapshot that API requests and the server-sent-event stream read;
5. paces itself: ``speed`` simulated seconds per wall-clock second (0: flat out).

The twin's time maps to a *controller clock*: the wall-clock time at which the
service started plus the simulated seconds run since (restarts of the scenario
keep counting). Event timestamps and time-of-day schedules use that clock;
command expiries use the wall clock.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from api.server.actual_timing import ActualTiming
from api.server.alarm_book import ALARM_TYPES, AlarmBook
from api.server.control import ADAPTIVE, CentreBackend, Control, ControlKind, OverridePolicy
from api.server.control_book import ControlBook
from api.server.db import (
    AlarmRow,
    Database,
    EventChunk,
    IntersectionRow,
    KpiSample,
    utcnow,
)
from api.server.event_log import DrainingRecorder
from api.server.kpi_window import KpiWindow
from api.server.metrics import Metrics
from api.server.recent import RecentTicks
from api.server.roads import ROAD_LANE_LEVELS_VEH, ROAD_LEVELS, VEHICLE_SPACING_M, RoadMap, RoadTraffic
from api.server.settings import BackendKind, Settings
from api.server.site import corridor_of, load_site, signal_positions
from api.server.snapshot import SnapshotRows
from api.server.twin import TwinInputs, build_backend
from controller.backend import BaseBackend
from controller.engine import Engine, TickResult
from controller.events import EventCode
from controller.policies import make_policy
from controller.safety import Mode
from intersections.errors import GreenwaveError, InputError, PlanError
from intersections.model import Intersection, SignalGroup, SignalState
from intersections.network import Network

if TYPE_CHECKING:
    from controller.backend import DetectorLayout
    from field_io.emulator.runner import Emulator
    from field_io.vehicle_feed import FeedBackend
    from scenarios.atspm.detectors import IntersectionDetectors
    from simulation.detectors import SumoDetectors

__all__ = [
    "Control",
    "EngineRunner",
    "EngineUnavailable",
    "ALARM_TYPES",
    "intersection_model",
    "STATUS_VALUES",
    "SnapshotFrame",
    "TickSignal",
    "RoadMap",
    "VEHICLE_SPACING_M",
    "ROAD_LEVELS",
    "ROAD_LANE_LEVELS_VEH",
]

log = logging.getLogger("greenwave.control_centre")

GREEN, YELLOW, RED, FLASH = (
    int(s) for s in (SignalState.GREEN, SignalState.YELLOW, SignalState.RED, SignalState.FLASH)
)
STATE_CHARS = np.array(["R", "Y", "G", "F"])


HISTORY_TICKS = 900
KPI_INTERVAL_S = 30.0
KPI_SAMPLES = 240
STATUS_VALUES = ("adaptive", "fixed", "manual", "flash", "comm_loss", "fault")
MAINTENANCE_S = 60.0  # wall seconds between retention prunes and alarm escalation checks


class EngineUnavailable(GreenwaveError):
    pass


class SnapshotFrame:
    """One tick's live snapshot and its encodings, each made at most once, whoever asks first.

    Every API request and every live-stream client of the same tick shares the
    same bytes (JSON, gzip, the server-sent-event frame): a city of 1,024
    intersections costs one ``json.dumps`` per tick, not one per request or per
    client. A new tick publishes a new frame; frames never change.
    """

    __slots__ = ("_gzip", "_json", "_lock", "_sse", "data", "etag", "seq")

    def __init__(self, data: dict[str, Any]) -> None:
        self.seq = int(data.get("seq", 0))
        self.data = data
        self.etag = f'"gw-{self.seq}"'.encode()
        self._lock = threading.Lock()
        self._json: bytes | None = None
        self._gzip: bytes | None = None
        self._sse: bytes | None = None

    def json(self) -> bytes:
        if self._json is None:
            with self._lock:
                if self._json is None:
                    self._json = json.dumps(self.data, separators=(",", ":")).encode()
        return self._json

    def gzip(self) -> bytes:
        if self._gzip is None:
            body = self.json()
            with self._lock:
                if self._gzip is None:
                    self._gzip = gzip.compress(body, compresslevel=6, mtime=0)  # once per tick: size matters more
        return self._gzip

    def sse(self) -> bytes:
        if self._sse is None:
            body = self.json()
            with self._lock:
                if self._sse is None:
                    self._sse = b"event: status\nid: %d\ndata: " % self.seq + body + b"\n\n"
        return self._sse


class TickSignal:
    """Wakes every live-stream client of an event loop once per tick (one thread hop per loop, not per client).

    The engine thread calls :meth:`fire`; each asyncio loop that awaits
    :meth:`wait` holds one future that is resolved (through
    ``call_soon_threadsafe``) and replaced at every tick.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}

    async def wait(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            fut = self._futures.get(loop)
            if fut is None or fut.done():
                fut = self._futures[loop] = loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            pass

    def fire(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, {}
        for loop, fut in futures.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


#: NTCIP pattern number logged (PATTERN_CHANGE) when a control starts: a fixed plan logs its version.
_PATTERN_OF = {ControlKind.FLASH: 255, ControlKind.HOLD: 254, ControlKind.ADAPTIVE: 0}


def intersection_model(inter: Intersection) -> dict[str, Any]:
    """What the dashboard shows of an intersection's model."""

    def label(g: SignalGroup) -> str:
        if g.movements:
            src = sorted({m.from_edge for m in g.movements})
            turns = "".join(sorted({m.turn for m in g.movements}))
            return f"{'/'.join(src)} {turns}"
        return g.id

    return {
        "groups": [
            {
                "id": g.id,
                "label": label(g),
                "kind": str(g.kind),
                "phase": g.phase,
                "min_green_s": g.min_green_s,
                "max_green_s": g.max_green_s,
                "yellow_s": g.yellow_s,
                "all_red_s": g.all_red_s,
            }
            for g in inter.groups
        ],
        "stages": [{"id": s.id, "groups": sorted(s.groups)} for s in inter.stages],
        "detectors": [
            {"id": d.id, "group": d.group, "kind": str(d.kind), "lane": d.lane, "channel": d.channel}
            for d in inter.detectors
        ],
    }


class EngineRunner:
    """Runs the engine in a background thread; see the module docstring."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.state = "starting"  # starting | running | stopped | failed | finished
        self.error: str | None = None
        self.network: Network | None = None
        self.geometry: dict[str, Any] = {"bounds": [0, 0, 1, 1], "edges": []}
        self.positions: dict[str, tuple[float, float]] = {}
        self.corridor: dict[str, Any] | None = None
        self.net_path: Path | None = None
        self.detectors: SumoDetectors | None = None
        self.layout: DetectorLayout | None = None
        self._emulator: Emulator | None = None
        #: Detector configuration for the signal performance measures, built on their first request.
        self.atspm_config: dict[str, IntersectionDetectors] | None = None
        self.policy_name = settings.policy_name
        # Emulated field controllers keep wall-clock time: the Modbus twin runs in real time.
        self.speed = 1.0 if settings.backend is BackendKind.MODBUS else settings.speed
        self.epoch = utcnow()
        self._last_publish = -1e9  # monotonic time of the last live frame (live_max_hz)
        self.sim_offset_s = 0.0
        self.begin_s = 0.0
        self.end_s: float | None = None
        self.ticks = 0
        self.metrics = Metrics()
        self.sim_time_s = 0.0
        self.restarts = 0
        self.network_ready = threading.Event()
        self.first_tick = threading.Event()
        self._ops: queue.SimpleQueue[Callable[[EngineRunner], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.snapshot: dict[str, Any] = {"seq": 0, "engine": "starting", "intersections": {}}
        self.seq = 0
        self._feed: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=500)
        self._feed_seq = 0
        self.kpi_samples: deque[dict[str, Any]] = deque(maxlen=KPI_SAMPLES)
        self.frame = SnapshotFrame(self.snapshot)
        self.tick_signal = TickSignal()
        self.summary: dict[str, Any] = {"by_status": {}, "online": 0, "alarms_open": 0}
        self.roads: RoadMap | None = None
        self.alarms = AlarmBook(db, (), self.publish)  # the network's own once it is loaded
        self._last_maintenance = 0.0
        self._last_prune = -float("inf")
        self._tick_wait_s = 0.0  # this tick's wait for real time inside advance (CentreBackend.on_wait)
        self.snapshot_rows = SnapshotRows()  # each intersection's live row, from the newest tick
        self.recorder: DrainingRecorder | None = None  # the high-resolution event log, with the engine
        self.actual_timing = ActualTiming(0)  # actual cycle, splits and offset, from the served stages
        self.history = RecentTicks(0, 0, 0, HISTORY_TICKS)  # the last ticks, for the snapshot and timelines
        self.kpi_window = KpiWindow(0, KPI_INTERVAL_S)  # the KPI interval being summed
        self.road_traffic = RoadTraffic(0, 0, 0)  # what the map's road colours come from

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the engine runner was already started")
        self._thread = threading.Thread(target=self._main, name="greenwave-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self.state == "running" and self.first_tick.is_set()

    def post(self, op: Callable[[EngineRunner], None]) -> None:
        """Queue ``op(runner)`` to run in the engine thread before the next tick."""
        self._ops.put(op)

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        """Push an item (alarm, command, audit) to the live feed the SSE stream relays."""
        with self._lock:
            self._feed_seq += 1
            self._feed.append((self._feed_seq, kind, payload))

    def feed_since(self, seq: int) -> tuple[int, list[tuple[int, str, dict[str, Any]]]]:
        with self._lock:
            items = [x for x in self._feed if x[0] > seq]
            return self._feed_seq, items

    def clock(self, sim_time_s: float) -> datetime:
        """The controller clock at a simulated time of the current run."""
        return self.epoch + timedelta(seconds=self.sim_offset_s + sim_time_s - self.begin_s)

    def row_of(self, intersection_id: str) -> int:
        if self.network is None:
            raise EngineUnavailable("the network is not loaded yet")
        try:
            return self.network.ids.index(intersection_id)
        except ValueError:
            raise InputError(f"unknown intersection {intersection_id!r}") from None

    # ---- thread -------------------------------------------------------------------------------
    def _main(self) -> None:
        backend: CentreBackend | None = None
        try:
            self._setup()
            backend = self._open_backend()
            self.state = "running"
            self._loop(backend)
            if self.state == "running":
                self.state = "stopped"
        except Exception as e:  # the API reports it on /healthz
            log.exception("engine failed")
            self.state = "failed"
            self.error = f"{type(e).__name__}: {e}"
        finally:
            try:
                self._flush_events()
            except Exception:  # pragma: no cover - best effort at shutdown
                log.exception("could not write the last events")
            if backend is not None:
                backend.close()
            self._close_emulator()
            self._publish_snapshot(force=True)

    def _setup(self) -> None:
        site = load_site(self.settings)
        self.spec, self.net_path, self.detectors, self.geometry = (
            site.spec,
            site.net_path,
            site.detectors,
            site.geometry,
        )
        if site.spec is not None:
            self.begin_s = float(site.spec.begin_s or 0.0)
            self.end_s = site.spec.end_s
        self._setup_network(site.network)

    def _setup_network(self, network: Network) -> None:
        self.model_net = network
        self.positions.update(signal_positions(network))
        self.corridor = corridor_of(network, self.positions, self.spec.corridor if self.spec is not None else ())
        from controller.backend import detector_layout

        self.roads = RoadMap.build(network, [e["id"] for e in self.geometry["edges"]], detector_layout(network).ids)
        self._sync_intersections(network)
        n = len(network)
        self.layout = None
        self.network = network
        self.controls = ControlBook(self.db, network.ids)  # what each intersection should run
        self.applied: list[Control | None] = [None] * n
        self.alarms = AlarmBook(self.db, network.ids, self.publish)
        self.link_down = np.zeros(n, bool)
        self._load_state()
        self.policy = OverridePolicy(make_policy(self.policy_name))
        self.network_ready.set()

    def _sync_intersections(self, network: Network) -> None:
        with self.db.session() as s:
            for inter in network.intersections:
                row = s.get(IntersectionRow, inter.id)
                x, y = self.positions[inter.id]
                if row is None:
                    row = IntersectionRow(id=inter.id, name=inter.id, standing_mode="adaptive")
                    s.add(row)
                row.x_m, row.y_m = x, y
                row.model = intersection_model(inter)

    def _load_state(self) -> None:
        """Standing modes, schedules, unexpired commands and open alarms from the database."""
        now = utcnow()
        with self.db.session() as s:
            self.controls.load(s, now)
            for a in s.scalars(select(AlarmRow).where(AlarmRow.cleared_at.is_(None))):
                a.cleared_at = now
                a.message += " (cleared at service restart; raised again if it persists)"
            self.alarms.load(s)

    def _make_inner(self) -> BaseBackend | FeedBackend:
        """The backend the settings name (:mod:`api.server.twin`); a Modbus emulator is kept to close."""
        twin = TwinInputs(
            network=self.model_net,
            detectors=self.detectors,
            spec=self.spec,
            net_path=self.net_path,
            begin_s=self.begin_s,
            end_s=self.end_s,
            restarts=self.restarts,
        )
        backend, self._emulator = build_backend(self.settings, twin)
        return backend

    def _close_emulator(self) -> None:
        emu, self._emulator = self._emulator, None
        if emu is not None:
            emu.close()

    def _open_backend(self, previous: CentreBackend | None = None) -> CentreBackend:
        backend = CentreBackend(self._make_inner(), on_read=self.metrics.backend_read.observe, on_wait=self._add_wait)
        if previous is not None:
            backend.copy_state_from(previous)
        backend.link_down[:] = self.link_down
        backend.open()
        try:
            assert self.network is not None
            self.recorder = DrainingRecorder(self.network, backend.packed, backend.detectors)
            self.engine = Engine(backend, self.policy, comm_timeout_s=self.settings.comm_timeout_s, hires=self.recorder)
        except BaseException:
            backend.close()
            raise
        self.backend = backend
        self.layout = backend.detectors
        n, g = backend.packed.n, backend.packed.g
        d = len(backend.detectors.ids)
        self.history = RecentTicks(n, g, d, HISTORY_TICKS)
        self.last_queue = np.zeros((n, g))
        self.tick_state_time_s = np.zeros((n, g))  # set with each tick's history (see _after_tick)
        self.tick_modes = np.zeros(n, np.int8)
        self.road_traffic = RoadTraffic(n, g, len(self.roads.ids) if self.roads else 0)
        self.actual_timing = ActualTiming(n)
        self.kpi_window = KpiWindow(len(self.controls.standing), KPI_INTERVAL_S)
        self.applied = [None] * n  # re-apply every control to the new engine
        return backend

    # ---- the loop -----------------------------------------------------------------------
    def _add_wait(self, seconds: float) -> None:
        self._tick_wait_s += seconds

    def _loop(self, backend: CentreBackend) -> None:
        s = self.settings
        wall0, sim0 = time.monotonic(), None
        last_flush = time.monotonic()
        while not self._stop.is_set():
            self._run_ops()
            self._resolve_controls(utcnow())
            t0 = time.perf_counter()
            self._tick_wait_s = 0.0
            res = self.engine.tick()
            wait = self._tick_wait_s
            self.metrics.tick.observe(max(time.perf_counter() - t0 - wait, 0.0))  # engine time: alert on this
            self.metrics.tick_wait.observe(wait)
            self.ticks += 1
            self.sim_time_s = res.time_s
            self._after_tick(res)
            self.first_tick.set()
            if time.monotonic() - self._last_maintenance >= min(MAINTENANCE_S, s.alarm_escalate_s / 4):
                self._maintenance(utcnow())
            if time.monotonic() - last_flush >= s.event_flush_s:
                self._flush_events()
                last_flush = time.monotonic()
            ended = backend.inner.done or (
                s.backend is not BackendKind.MODBUS
                and self.end_s is not None
                and res.time_s + self.engine.dt_s >= self.end_s
            )
            if ended:
                self._flush_events()
                if not s.loop_scenario:
                    self.state = "finished"
                    return
                backend.close()
                self._close_emulator()
                assert self.end_s is not None, "a looped run needs an end time"
                self.sim_offset_s += self.end_s - self.begin_s
                self.restarts += 1
                backend = self._open_backend(previous=backend)
                wall0, sim0 = time.monotonic(), None
                continue
            if sim0 is None:
                sim0 = res.time_s
            if self.speed > 0:
                target = wall0 + (res.time_s + self.engine.dt_s - sim0) / self.speed
                delay = target - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                elif delay < -5.0:  # far behind (a slow machine): do not try to catch up
                    wall0, sim0 = time.monotonic(), res.time_s
            elif self.ticks % 50 == 0:
                time.sleep(0.001)  # let API threads in

    def _run_ops(self) -> None:
        while True:
            try:
                op = self._ops.get_nowait()
            except queue.Empty:
                return
            try:
                op(self)
            except GreenwaveError as e:
                log.warning("control-centre operation refused: %s", e)
            except Exception:
                log.exception("control-centre operation failed")

    # ---- controls -------------------------------------------------------------------------
    def _resolve_controls(self, now: datetime) -> None:
        for cid, iid in self.controls.expire(now):
            self.publish("command", {"id": cid, "status": "expired", "intersection": iid})
        for r, want in enumerate(self.controls.wanted(self._minute_of_day)):
            if self.applied[r] != want:
                self._apply_control(r, want)

    def _minute_of_day(self) -> int:
        clock = self.clock(self.sim_time_s)
        return clock.hour * 60 + clock.minute

    def _apply_control(self, r: int, c: Control) -> None:
        pol, be = self.policy, self.backend
        try:
            match c.kind:
                case ControlKind.FIXED if c.plan is not None:
                    pol.set_fixed(r, c.plan)
                case ControlKind.HOLD if c.stage is not None:
                    assert self.network is not None
                    stages = [st.id for st in self.network.intersections[r].stages]
                    pol.set_hold(r, stages.index(c.stage))
                case ControlKind.FLASH:
                    pol.set_flash(r)
                case _:
                    pol.set_adaptive(r)
        except (PlanError, ValueError) as e:
            log.error("%s: control %s refused: %s", self.network.ids[r] if self.network else r, c.kind, e)
            pol.set_adaptive(r)
            c = ADAPTIVE
        be.flash_request[r] = c.kind is ControlKind.FLASH
        param = (c.plan_version or 1) % 253 or 253 if c.kind is ControlKind.FIXED else _PATTERN_OF[c.kind]
        assert self.recorder is not None  # controls apply once the engine (and its recorder) run
        self.recorder.emit(self.sim_time_s, r, EventCode.PATTERN_CHANGE, param)
        self.applied[r] = c
        self.actual_timing.restart(r)  # a new control: measure its cycles afresh

    # operations the API posts ---------------------------------------------------------
    def set_standing(self, intersection_id: str, control: Control) -> None:
        self.controls.set_standing(self.row_of(intersection_id), control)

    def add_command(self, command_id: int, intersection_id: str, control: Control) -> None:
        self.controls.add_command(command_id, self.row_of(intersection_id), control)

    def end_command(self, command_id: int) -> None:
        self.controls.end_command(command_id)

    def set_schedule(self, intersection_id: str, entries: list[tuple[str, Control]]) -> None:
        self.controls.set_schedule(self.row_of(intersection_id), entries)

    def set_link(self, intersection_id: str, down: bool) -> None:
        r = self.row_of(intersection_id)
        self.link_down[r] = down
        self.backend.link_down[r] = down

    def note_ack(self, alarm_id: int) -> None:
        self.alarms.note_ack(alarm_id)

    # ---- after each tick ----------------------------------------------------------------
    def _after_tick(self, res: TickResult) -> None:
        obs = res.observation
        n = len(self.controls.standing)
        lay = self.layout
        assert lay is not None  # bound with the backend, before the first tick
        comm = obs.comm_age_s > self.engine.comm_timeout_s
        det_fault = np.zeros(n, bool)
        bad = ~np.isfinite(obs.occupancy)
        if bad.any():
            det_fault[lay.row[bad]] = True
        cond = {
            "comm_loss": comm,
            "mmu_fault": res.report.mode == Mode.FAULT,
            "controller_fault": self.backend.controller_fault & ~comm,
            "detector_fault": det_fault & ~comm,
        }
        assert self.recorder is not None  # alarms start and end in the event log
        self.alarms.update(cond, res.time_s, self.recorder.emit)
        with self._lock:
            presence = (np.nan_to_num(obs.occupancy) > 0) | (np.nan_to_num(obs.counts) > 0)
            q = np.nan_to_num(obs.queue_veh).sum(axis=1)
            self.history.push(res.time_s, res.states, res.report.target, presence, q)
            self.last_queue = np.asarray(obs.queue_veh, float).copy()
            # The supervisor's timers and modes of this tick, for the snapshot: the engine steps the
            # supervisor outside the lock, so the live ones may be a tick ahead of the history (a copy:
            # a technician's reset clears the timers in place). The report's modes are its own already.
            self.tick_state_time_s = self.engine.supervisor.state_time_s.copy()
            self.tick_modes = res.report.mode
        self._road_accumulate(res)
        assert self.network is not None
        self.actual_timing.track(res.report.target, res.time_s, self.network, self.policy)
        assert self.layout is not None  # bound with the backend, before the first tick
        sample = self.kpi_window.add(res, q, self.layout, self.engine.dt_s, self.clock)
        if sample is not None:
            self.kpi_samples.append(sample)
            self._store_kpis(sample)
        # An accelerated twin ticks faster than anyone can watch: with live_max_hz the live state is
        # published at most that often (wall clock), still once per published tick for everyone.
        hz = self.settings.live_max_hz
        now = time.monotonic()
        if hz is None or now - self._last_publish >= 1.0 / hz:
            self._last_publish = now
            self._publish_snapshot()

    # ---- roads, timing, history, alarms maintenance ------------------------------------------
    def _road_accumulate(self, res: TickResult) -> None:
        assert self.layout is not None  # bound with the backend, before the first tick
        self.road_traffic.add(res, self.layout, self.engine.dt_s, self.roads)

    def timing_of(self, r: int) -> dict[str, Any]:
        """Actual timing of row ``r``'s last complete cycle against its running plan (:class:`ActualTiming`)."""
        return self.actual_timing.of(r, self.policy)

    def _store_kpis(self, sample: dict[str, Any]) -> None:
        """Keep the KPI interval in the database (history beyond the in-memory window)."""
        assert self.network is not None
        data = {k: [None if x != x else x for x in v] if isinstance(v, list) else v for k, v in sample.items()}
        data["ids"] = list(self.network.ids)
        try:
            with self.db.session() as s:
                s.add(KpiSample(at=self.clock(sample["t"]), sim_t_s=float(sample["t"]), data=data))
        except Exception:  # pragma: no cover - history is best effort; the live view goes on
            log.exception("could not store a KPI sample")

    def _maintenance(self, now: datetime) -> None:
        """Prune history older than ``history_days``; escalate unacknowledged alarms; end expired shelves."""
        self._last_maintenance = time.monotonic()
        if self._last_maintenance - self._last_prune >= MAINTENANCE_S:
            self._last_prune = self._last_maintenance
            keep_from = self.clock(self.sim_time_s) - timedelta(days=self.settings.history_days)
            from sqlalchemy import delete

            with self.db.session() as s:
                s.execute(delete(EventChunk).where(EventChunk.end_at < keep_from))
                s.execute(delete(KpiSample).where(KpiSample.at < keep_from))
        self.check_alarms(now)

    def check_alarms(self, now: datetime) -> None:
        """Escalate alarms left unacknowledged ``alarm_escalate_s``; return expired shelves (:class:`AlarmBook`)."""
        self.alarms.check(now, self.settings.alarm_escalate_s)

    def set_shelved(self, alarm_id: int, until: datetime | None) -> None:
        self.alarms.set_shelved(alarm_id, until)

    # ---- snapshot --------------------------------------------------------------------------
    def _publish_snapshot(self, force: bool = False) -> None:
        net = self.network
        if net is None or len(self.history) == 0:
            snap = {"seq": self.seq + 1, "engine": self.state, "error": self.error, "intersections": {}}
            self.seq += 1
            self.snapshot = snap
            self.frame = SnapshotFrame(snap)
            self.tick_signal.fire()
            return
        alarms_by_row = self.alarms.open_by_row()
        assert self.layout is not None  # bound with the backend, before the first tick
        out = self.snapshot_rows.rows(
            net,
            self.layout,
            self.history,
            self.tick_state_time_s,
            self.tick_modes,
            comm_age_s=self.backend.down_age_s,
            comm_loss=self.alarms.cond["comm_loss"],
            link_down=self.link_down,
            alarms_by_row=alarms_by_row,
            controls=self.applied,
            timing_of=self.timing_of,
        )
        self.seq += 1
        self.snapshot = {
            "seq": self.seq,
            "engine": self.state,
            "error": self.error,
            "policy": self.policy_name,
            "backend": str(self.settings.backend),
            "model": self.settings.model if self.settings.backend is BackendKind.SUMO else None,
            "speed": self.speed,
            "sim_time_s": round(self.sim_time_s, 1),
            "clock": self.clock(self.sim_time_s).isoformat(timespec="seconds"),
            "restarts": self.restarts,
            "intersections": out,
            "roads": self._roads_live(),
        }
        counts: dict[str, int] = {}
        for v in out.values():
            counts[v["status"]] = counts.get(v["status"], 0) + 1
        self.summary = {
            "by_status": counts,
            "online": sum(n for k, n in counts.items() if k != "comm_loss"),
            "alarms_open": int(alarms_by_row.sum()),
        }
        self.frame = SnapshotFrame(self.snapshot)
        self.tick_signal.fire()

    def _roads_live(self) -> dict[str, Any]:
        """Per map road, in ``/api/network`` order: queue, its level, occupancy and degree of saturation."""
        return self.road_traffic.live(self.roads, self.last_queue)

    def timeline(self, intersection_id: str, seconds: float) -> dict[str, Any]:
        """Signal states, served stage and detector presence of the last ``seconds`` (sim)."""
        r = self.row_of(intersection_id)
        assert self.network is not None
        inter = self.network.intersections[r]
        with self._lock:
            h = self.history
            if len(h) == 0:
                return {"t": [], "signals": [], "stage": [], "detectors": [], "groups": inter.group_ids}
            keep = h.window(seconds)
            t = h.time[keep]
            states = h.states[keep, r, : len(inter.groups)]
            target = h.target[keep, r]
            layout = self.layout
            assert layout is not None
            dets = np.flatnonzero(layout.row == r)
            pres = h.presence[np.ix_(keep, dets)] if dets.size else np.zeros((len(keep), 0), bool)
        stage_ids = [s.id for s in inter.stages]
        return {
            "groups": list(inter.group_ids),
            "detector_ids": [layout.ids[k] for k in dets],
            "t": np.round(t, 1).tolist(),
            "signals": ["".join(STATE_CHARS[row]) for row in states],
            "stage": [stage_ids[k] if 0 <= k < len(stage_ids) else None for k in target.tolist()],
            "detectors": ["".join("1" if v else "0" for v in row) for row in pres],
        }

    def queues(self) -> dict[str, dict[str, float | None]]:
        """Vehicles queued per signal group, as last observed (NaN: unknown, e.g. comm loss)."""
        assert self.network is not None
        with self._lock:
            q = self.last_queue.copy()
        out: dict[str, dict[str, float | None]] = {}
        for r, inter in enumerate(self.network.intersections):
            out[inter.id] = {
                g: (None if np.isnan(q[r, k]) else round(float(q[r, k]), 1)) for k, g in enumerate(inter.group_ids)
            }
        return out

    # ---- hi-res events --------------------------------------------------------------------
    def _flush_events(self) -> None:
        if self.recorder is not None and self.network is not None:
            self.recorder.flush(self.db, self.network.ids, self.clock)
