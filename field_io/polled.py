"""One base for every polled field backend: :class:`PolledFieldBackend` and its :class:`PolledLink`.

A central system polls many field controllers once per tick, whatever the
protocol: it connects to each and checks who answers, reads the status,
turns it into one :class:`~controller.backend.Observation`, raises a
comm-loss alarm when a controller goes silent, commands only what it can
read, and hands every commanded controller back to its local plan on a clean
shutdown (``../shared/reference/field-io.md`` §1.8 and §1.12: comm age and a
watchdog on both sides, fallback on silence). None of that depends on the
wire, so it lives here once; a protocol package supplies only

* its **transport** (``_open_transport`` / ``_close_transport``: sockets,
  SNMP engines) and its transactions;
* its **codec and identity check** (``_connect``: reach the controller and
  decide whether it is the one the inventory describes; ``_poll``: one read of
  one controller into ``link.status``);
* its **command encoding** (``_command``: the transaction that carries this
  tick's command, or None - or ``_commands`` for all controllers at once, to
  batch them; ``_release``; ``_step`` in lockstep);
* the protocol's reading of its status into observation columns
  (``_row_counts``, ``_row_occupancy``, ``_row_extra``).

A link's ``status`` is whatever the protocol decodes, with the attributes the
observation needs: ``group_state``, ``queue_veh`` (or None), ``status_word``
(:class:`~field_io.commands.StatusBits`), ``mode`` and ``plan_clock_s``
(NaN when the controller does not report it).

Adding a protocol: see ``docs/field.md`` ("Adding a field protocol") and
:mod:`field_io.protocols`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

import numpy as np

from controller.backend import BaseBackend, Commands, Observation
from field_io.aio import PrivateLoop
from field_io.commands import StatusBits
from field_io.endpoints import Endpoint
from field_io.mapping import FieldMap
from intersections.errors import InputError
from intersections.network import Network

__all__ = ["PolledFieldBackend", "PolledLink", "PollOptions", "FAULT_BITS"]

log = logging.getLogger("greenwave.field")

#: Status bits that make a controller's row a fault (it is not running central's commands safely).
FAULT_BITS = int(StatusBits.FLASH | StatusBits.MMU_FAULT | StatusBits.LOCAL_OVERRIDE | StatusBits.COMMISSIONING)
_CENTRAL, _DONE = int(StatusBits.CENTRAL_CONTROL), int(StatusBits.PLANT_DONE)


class PollOptions(TypedDict, total=False):
    """The polling settings every field backend takes, passed through to :class:`PolledFieldBackend`."""

    dt_s: float
    lockstep: bool
    comm_timeout_s: float | None
    reconnect_delay_s: float
    reconnect_delay_max_s: float
    lockstep_timeout_s: float
    clock: Callable[[], float]
    record_latency: bool


@dataclass(kw_only=True)
class PolledLink:
    """What central knows about one controller, whatever the protocol (protocols subclass it)."""

    row: int
    endpoint: Endpoint
    fmap: FieldMap
    identity: Any = None  # what the controller said it is (None: not reached or not checked yet)
    refused: bool = False  # not the controller the inventory describes: never commanded until fixed
    problem: str | None = None  # why the controller is not commanded (None: fine)
    next_try_t: float = 0.0
    backoff_s: float = 0.0
    last_ok_t: float = -math.inf
    status: Any = None
    status_fresh: bool = False  # read this tick (or, in lockstep, by advance) and not yet observed
    alarm: bool = False
    was_active: bool = False
    reads: int = 0
    errors: int = 0
    latency_s: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.endpoint.label

    @property
    def readable(self) -> bool:
        return self.identity is not None and not self.refused


class PolledFieldBackend(BaseBackend):
    """The engine's backend for many field controllers polled once per tick (see the module docstring).

    ``lockstep`` (software in the loop): ``advance`` steps every emulated
    controller and waits for it, instead of waiting for the next tick in real
    time. ``comm_timeout_s`` (default two ticks): older status is stale, the
    row a fault and a comm-loss alarm is raised. Reconnection backs off
    exponentially from ``reconnect_delay_s`` to ``reconnect_delay_max_s``.
    """

    #: Name used in messages ("no Modbus endpoint for ...").
    protocol_name: ClassVar[str] = "field"
    #: Observation ``extra`` columns beyond ``field_mode`` and ``central_control``, filled by ``_row_extra``.
    extra_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        network: Network,
        endpoints: Sequence[Endpoint] | Mapping[str, Endpoint],
        *,
        dt_s: float = 1.0,
        lockstep: bool = False,
        comm_timeout_s: float | None = None,
        reconnect_delay_s: float = 0.5,
        reconnect_delay_max_s: float = 30.0,
        lockstep_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        record_latency: bool = False,
        max_concurrent_connects: int = 200,
    ) -> None:
        super().__init__(network, dt_s=dt_s)
        eps = dict(endpoints) if isinstance(endpoints, Mapping) else {e.intersection: e for e in endpoints}
        missing = [i.id for i in network.intersections if i.id not in eps]
        if missing:
            raise InputError(f"no {self.protocol_name} endpoint for intersections {missing}", where=type(self).__name__)
        self.lockstep = lockstep
        self.comm_timeout_s = 2.0 * dt_s if comm_timeout_s is None else comm_timeout_s
        self.reconnect_delay_s = reconnect_delay_s
        self.reconnect_delay_max_s = reconnect_delay_max_s
        self.lockstep_timeout_s = lockstep_timeout_s
        self.clock = clock
        self.record_latency = record_latency
        self.max_concurrent_connects = max_concurrent_connects
        self.problems: dict[str, str] = {}
        self.alarms: list[tuple[float, str, str]] = []
        self.events: list[tuple[float, str, str]] = []
        self.step = 0
        self.time_s = 0.0
        self.done = False
        self._loop: PrivateLoop | None = None
        self._t0 = 0.0
        self._next_tick = 0.0
        # This tick's batches decoded as whole arrays, for _fill_bulk: (rows, columns, the protocol's own).
        self._bulk: list[tuple[np.ndarray, dict[str, Any], Any]] = []
        self.links: list[Any] = [self._make_link(r, eps[i.id], i) for r, i in enumerate(network.intersections)]
        self._det_slices: list[slice] = []
        start = 0
        for link in self.links:
            self._det_slices.append(slice(start, start + link.fmap.n_detectors))
            start += link.fmap.n_detectors

    # ---- what a protocol supplies --------------------------------------------------------------------------
    def _make_link(self, row: int, endpoint: Endpoint, intersection: Any) -> PolledLink:
        raise NotImplementedError

    async def _open_transport(self) -> None:
        """Create what the links share (sockets are per link or per process); runs inside the private loop."""

    def _close_transport(self) -> None:
        """Release every socket and engine; the loop still exists but no longer runs tasks."""

    async def _connect(self, link: Any) -> None:
        """Reach the controller if not reached (respecting ``next_try_t``) and check its identity."""
        raise NotImplementedError

    async def _poll(self, link: Any) -> None:
        """One status read: on success ``_polled(link, status)``; on failure ``link.errors`` and a problem."""
        raise NotImplementedError

    async def _poll_all(self, links: Sequence[Any]) -> None:
        """Read every controller in ``links`` concurrently (a protocol may batch this)."""
        await asyncio.gather(*(self._poll(link) for link in links))

    def _command(self, link: Any, commands: Commands) -> Coroutine[Any, Any, None] | None:
        """This tick's transaction for an active, readable controller (None: nothing to send)."""
        raise NotImplementedError

    def _commands(self, links: Sequence[Any], commands: Commands) -> list[Coroutine[Any, Any, None]]:
        """This tick's transactions for the active, readable ``links`` (a protocol may batch them)."""
        return [tx for tx in (self._command(link, commands) for link in links) if tx is not None]

    def _idle(self, link: Any) -> None:
        """An inactive or unreadable controller this tick: nothing is ever sent for it."""

    def _step(self, link: Any) -> Coroutine[Any, Any, None] | None:
        """Lockstep: the transaction that steps this controller (and reads its status back)."""
        raise NotImplementedError

    async def _release(self, link: Any) -> None:
        """Clean shutdown: hand a commanded controller back to its local plan."""

    def _row_counts(self, link: Any, status: Any) -> np.ndarray:
        """Vehicle counts since the last observation for this controller's detectors (status is fresh)."""
        raise NotImplementedError

    def _row_occupancy(self, link: Any, status: Any) -> np.ndarray:
        """Occupancy 0..1 of this controller's detectors, NaN where the controller reports a fault code."""
        raise NotImplementedError

    def _row_extra(self, link: Any, status: Any) -> tuple[int, ...]:
        """Values of :attr:`extra_columns` for this controller."""
        return ()

    def _report(self, link: Any, status: Any) -> None:
        """Called once per fresh status (protocols report refused commands here)."""

    def _fill_bulk(self, cols: dict[str, Any]) -> tuple[np.ndarray | None, bool]:
        """Fill the observation's rows that a protocol decoded as whole arrays this tick.

        ``cols`` holds the observation arrays being built (``counts``, ``occupancy``,
        ``queue_veh``, ``signal_state``, ``fault``, ``mode``, ``central`` and ``extra``, one
        array per :attr:`extra_columns`). Each entry of ``_bulk`` is one batch the protocol
        decoded (its rows, its columns named as the status names them, and what else the
        protocol needs): the columns every protocol reports are filled here, the rest by
        :meth:`_fill_batch`. Returns the rows filled (None: none) and whether any reported
        PLANT_DONE. At thousands of controllers one array operation per column, instead of a
        handful per controller, is most of the observation's cost.
        """
        bulk, self._bulk = self._bulk, []
        if not bulk:
            return None, False
        filled = np.zeros(len(self.links), bool)
        done = False
        extra = dict(zip(self.extra_columns, cols["extra"], strict=True))
        for idx, arrays, more in bulk:
            g = arrays["group_state"].shape[1]
            cols["signal_state"][idx, :g] = arrays["group_state"]
            queue = arrays.get("queue_veh")
            if queue is not None:
                cols["queue_veh"][idx, :g] = queue
            sw = arrays["status_word"]
            cols["fault"][idx] = (sw & FAULT_BITS) != 0
            cols["mode"][idx] = arrays["mode"]
            cols["central"][idx] = (sw & _CENTRAL) != 0
            done = done or bool((sw & _DONE).any())
            self._fill_batch(cols, extra, idx, arrays, more)
            filled[idx] = True
        return filled, done

    def _fill_batch(
        self, cols: dict[str, Any], extra: dict[str, np.ndarray], idx: np.ndarray, arrays: dict[str, Any], more: Any
    ) -> None:
        """The protocol's own columns of one batch (counts, occupancy, ``extra``) and its per-row reports."""
        raise NotImplementedError

    # ---- lifecycle ------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._loop = PrivateLoop()
        self._loop.run(self._open_transport())
        self._t0 = self.clock()
        self._next_tick = self._t0
        gate = asyncio.Semaphore(self.max_concurrent_connects)

        async def connect(link: Any) -> None:
            async with gate:
                await self._connect(link)

        self._loop.run(self._gather(connect(link) for link in self.links))

    def _close(self) -> None:
        if self._loop is None:
            return
        try:
            self._loop.run(self._gather(self._release(link) for link in self.links if link.was_active))
        finally:
            try:
                self._close_transport()
            finally:
                self._loop.close()
                self._loop = None

    @staticmethod
    async def _gather(coros: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
        return await asyncio.gather(*coros)

    def _run(self, coros: Iterable[Coroutine[Any, Any, Any]]) -> None:
        assert self._loop is not None
        self._loop.run(self._gather(coros))

    # ---- health ---------------------------------------------------------------------------------------------
    def _set_problem(self, link: Any, message: str | None) -> None:
        """One message per controller and change: a problem is logged when it starts or changes, not every tick."""
        iid = link.fmap.id
        if message is None:
            if self.problems.pop(iid, None) is not None:
                log.warning("%s: answering again", link.label)
            link.problem = None
            return
        link.problem = message
        if self.problems.get(iid) != message:
            self.problems[iid] = message
            log.error("%s: %s", link.label, message)

    def _backoff(self, link: Any) -> None:
        """Exponential reconnection backoff, so a dead cabinet does not cost a connect attempt every tick."""
        link.backoff_s = min(max(link.backoff_s * 2, self.reconnect_delay_s), self.reconnect_delay_max_s)
        link.next_try_t = self.clock() + link.backoff_s

    def _polled(self, link: Any, status: Any, t0: float | None = None) -> None:
        """A successful read: the status is fresh and the controller's comm age restarts."""
        if self.record_latency and t0 is not None:
            link.latency_s.append(time.perf_counter() - t0)
        link.status = status
        link.status_fresh = True
        link.last_ok_t = self.clock()
        link.reads += 1

    def _alarm(self, link: Any, stale: bool, age: float) -> None:
        if stale and not link.alarm and link.last_ok_t > -math.inf:
            link.alarm = True
            msg = f"comm-loss alarm: silent for {age:.1f} s; not commanding it"
            self.alarms.append((self.time_s, link.fmap.id, msg))
            log.warning("%s: %s", link.label, msg)
        elif not stale and link.alarm:
            link.alarm = False
            self.alarms.append((self.time_s, link.fmap.id, "comm restored"))
            log.warning("%s: comm restored", link.label)

    # ---- the backend protocol -------------------------------------------------------------------------------
    def read(self) -> Observation:
        self._require_open()
        assert self._loop is not None
        if not self.lockstep or self.step == 0:
            self._loop.run(self._poll_all(self.links))
        else:  # lockstep: advance() already read the controllers that stepped
            self._loop.run(self._poll_all([link for link in self.links if not link.status_fresh]))
        return self._observation()

    def _observation(self) -> Observation:
        p = self.packed
        now = self.clock()
        n_det = len(self.detectors.ids)
        counts = np.full(n_det, np.nan)
        occ = np.full(n_det, np.nan)
        queue = np.full((p.n, p.g), np.nan)
        state = np.zeros((p.n, p.g), np.int8)
        comm_age = np.full(p.n, np.inf)
        fault = np.ones(p.n, bool)
        mode = np.full(p.n, -1, np.int64)
        central = np.zeros(p.n, bool)
        extra_cols = [np.zeros(p.n, np.int64) for _ in self.extra_columns]
        clocks = []
        bulk, done = self._fill_bulk(
            {
                "counts": counts,
                "occupancy": occ,
                "queue_veh": queue,
                "signal_state": state,
                "fault": fault,
                "mode": mode,
                "central": central,
                "extra": extra_cols,
            }
        )
        timeout = self.comm_timeout_s
        for link in self.links:
            r = link.row
            age = now - link.last_ok_t
            comm_age[r] = age
            stale = age > timeout
            if stale or link.alarm:
                self._alarm(link, stale, age)
            if bulk is not None and bulk[r]:
                link.status_fresh = False  # filled by _fill_bulk (fresh and just read: not stale)
                continue
            st = link.status  # (only here: a protocol may decode a batched row's status object on first use)
            if st is None or not link.readable:
                continue
            sl = self._det_slices[r]
            counts[sl] = self._row_counts(link, st) if link.status_fresh else 0.0  # nothing new read this tick
            occ[sl] = self._row_occupancy(link, st)
            g = link.fmap.n_groups
            state[r, :g] = st.group_state
            if st.queue_veh is not None:
                queue[r, :g] = st.queue_veh
            sw = int(st.status_word)
            fault[r] = bool(sw & FAULT_BITS) or stale
            mode[r] = st.mode
            central[r] = bool(sw & _CENTRAL)
            done = done or bool(sw & _DONE)
            for col, v in zip(extra_cols, self._row_extra(link, st), strict=True):
                col[r] = v
            if not math.isnan(st.plan_clock_s):
                clocks.append(st.plan_clock_s)
            link.status_fresh = False
            self._report(link, st)
        self.done = done
        if self.lockstep and clocks:
            self.time_s = float(max(clocks))
        elif not self.lockstep:
            self.time_s = now - self._t0
        extra: dict[str, np.ndarray] = {"field_mode": mode, "central_control": central}
        extra.update(zip(self.extra_columns, extra_cols, strict=True))
        return Observation(
            time_s=self.time_s,
            counts=counts,
            occupancy=occ,
            queue_veh=queue,
            signal_state=state,
            comm_age_s=comm_age,
            fault=fault,
            extra=extra,
        )

    def apply(self, commands: Commands) -> None:
        self._require_open()
        active = np.asarray(commands.active, bool)
        ready = []
        for link in self.links:
            ok = bool(active[link.row]) and link.readable
            link.was_active = ok
            if not ok:
                self._idle(link)
                continue  # never send anything for an intersection the engine does not command
            ready.append(link)
        todo = self._commands(ready, commands)
        if todo:
            self._run(todo)

    def advance(self) -> float:
        self._require_open()
        assert self._loop is not None
        if self.lockstep:
            self.step += 1
            self._run(tx for tx in (self._step(link) for link in self.links) if tx is not None)
            return self.time_s + self.dt_s
        self._next_tick += self.dt_s
        delay = self._next_tick - self.clock()
        if delay > 0:
            self._loop.run(asyncio.sleep(delay))
        elif delay < -5 * self.dt_s:
            self._next_tick = self.clock()  # far behind (a stall): restart the tick grid instead of bursting
        return self.clock() - self._t0

    # ---- convenience ----------------------------------------------------------------------------------------
    def status(self, intersection_id: str) -> Any:
        """The last decoded status of one controller (None: never read)."""
        for link in self.links:
            if link.fmap.id == intersection_id:
                return link.status
        raise KeyError(intersection_id)

    @property
    def central_control(self) -> np.ndarray:
        """Which controllers last reported that they run central's commands."""
        out = np.zeros(len(self.links), bool)
        for link in self.links:
            st = link.status
            out[link.row] = st is not None and bool(int(st.status_word) & _CENTRAL)
        return out
