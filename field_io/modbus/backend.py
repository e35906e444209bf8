"""Central side of the greenwave Modbus profile: :class:`ModbusBackend`, the engine's backend for many controllers.

Per tick and per controller (``docs/modbus-profile.md``):

* ``read``: one function-23 transaction that writes the heartbeat (and the
  central clock) and reads the status and detector tables, up to the highest
  detector channel in use. Controllers that were not commanded last tick
  (``Commands.active`` False) are only read (function 3): they get no
  heartbeat either.
* ``apply``: for active controllers only, a function-16 write of the command
  block when the command changed (or when the controller has not
  acknowledged it: lost write, fallback). ``Commands.target_stage`` becomes a
  stage request (call and hold the target, force off the others);
  ``Commands.plans`` a plan block. Nothing is ever sent for inactive rows.
* ``advance``: waits for the next tick (real time), or - in lockstep
  (software-in-the-loop) - writes heartbeat, step and command block and reads
  the status in one function-23 transaction that the emulator answers once it
  has stepped.

All controllers are polled concurrently on the private event loop of
:class:`~field_io.polled.PolledFieldBackend` (one TCP or TLS connection each,
:mod:`field_io.modbus.transport`): in the steady state as one batch - every
request written at once, one timer for all - and otherwise, or for a
controller that did not answer the batch cleanly, one transaction at a time
with per-request timeouts and retries; reconnection backs off
exponentially. ``modbus_client`` (pymodbus) serves commissioning. A
controller that cannot be read is never commanded: unreachable, wrong device
id, exception answers, a profile-version mismatch or an identity that
disagrees with the inventory each produce one clear message naming the
controller (:attr:`ModbusBackend.problems`), and a controller that goes
silent raises a comm-loss alarm (:attr:`ModbusBackend.alarms`).

Observation: ``counts`` are differences of the controllers' volume counters,
``occupancy`` their last-period occupancy (NaN for fault codes), ``queue_veh``
from the queues table where the controller's zone detectors measure queues
(profile 1.1, capability bit 3; read in the status transaction) and NaN
elsewhere (loops cannot), ``comm_age_s`` from polling,
``fault`` True for flash, MMU fault, local override, commissioning and comm
loss. ``extra`` carries ``field_mode`` (:class:`ControllerMode`, -1 unknown)
and ``central_control``.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

import numpy as np

from controller.backend import Commands
from field_io.commands import (
    CommandBlock,
    CommandKind,
    ControllerMode,
    RejectReason,
    StatusBits,
    quantize_plan,
    stage_request,
)
from field_io.endpoints import Endpoint
from field_io.mapping import field_map
from field_io.modbus.codec import (
    BLOCK_START,
    OCC_SCALE,
    STATUS_READ_FRAME,
    STATUS_RW_FRAME,
    FieldStatus,
    Identity,
    StatusRead,
    decode_identity,
    decode_status,
    decode_status_arrays,
    decode_status_rows,
    encode_command_block,
    heartbeat_words,
    status_read,
)
from field_io.modbus.profile import COMMAND, IDENTITY, MAGIC, PROFILE_MAJOR, QUEUES
from field_io.modbus.transport import (
    ModbusConnectionLost,
    ModbusExceptionAnswer,
    ModbusMalformed,
    ModbusTcpClient,
    ModbusTimeout,
    read_pdu,
    read_write_pdu,
    registers,
    write_pdu,
)
from field_io.polled import PolledFieldBackend, PolledLink, PollOptions
from field_io.security import check_modbus_write, client_context
from intersections.errors import FieldIOError
from intersections.network import Network

__all__ = ["ModbusBackend", "ModbusLink", "EXCEPTION_NAMES", "modbus_client", "close_client"]

log = logging.getLogger("greenwave.field.modbus")

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
_HB = COMMAND.address("heartbeat")
_FRAME_RW, _FRAME_READ = STATUS_RW_FRAME, STATUS_READ_FRAME  # a connection's requests as one array
_CENTRAL, _PENDING = int(StatusBits.CENTRAL_CONTROL), int(StatusBits.PENDING_HANDBACK)
_DONE = int(StatusBits.PLANT_DONE)
_PREEMPT, _DETECTOR_FAULT = int(StatusBits.PREEMPT), int(StatusBits.DETECTOR_FAULT)


class _Fail(FieldIOError):
    """One controller's transaction failed (message already worded); caught within this backend."""

    def __init__(self, message: str, *, comm: bool = True) -> None:
        super().__init__(message)
        self.comm = comm  # True: a communication failure (reconnect); False: the device answered wrongly


def close_client(client: Any) -> None:
    """Close a pymodbus client at once (abort: a TLS close would wait for a shutdown handshake that the
    private event loop no longer runs)."""
    transport = getattr(getattr(client, "ctx", None), "transport", None)
    if transport is not None:
        transport.abort()
    client.close()


_FAST_RESPONSES: list[type] = []


def _fast_responses() -> list[type]:
    """Register-read responses decoded with one ``struct.unpack`` instead of one per register.

    Registered on each client through pymodbus's own ``client.register`` (its
    custom-response hook); the wire format is unchanged.
    """
    if not _FAST_RESPONSES:
        from pymodbus.exceptions import ModbusIOException
        from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadWriteMultipleRegistersResponse

        def decode(self: Any, data: bytes) -> None:
            n = int(data[0])
            if n >= len(data) or n % 2:
                raise ModbusIOException(f"byte_count {n} does not fit a packet of {len(data)}")
            self.registers = list(struct.unpack_from(f">{n // 2}H", data, 1))

        for base in (ReadHoldingRegistersResponse, ReadWriteMultipleRegistersResponse):
            _FAST_RESPONSES.append(type(f"Fast{base.__name__}", (base,), {"decode": decode}))
    return _FAST_RESPONSES


def modbus_client(ep: Endpoint, *, timeout_s: float | None = None) -> Any:
    """A pymodbus asyncio client for ``ep`` (TLS when ``ep.tls`` is set); reconnection is ours, not pymodbus's."""
    from pymodbus.client import AsyncModbusTcpClient, AsyncModbusTlsClient

    t = timeout_s if timeout_s is not None else ep.timeout_s
    client: AsyncModbusTcpClient
    if ep.tls is not None:
        client = AsyncModbusTlsClient(
            ep.host, port=ep.port, sslctx=client_context(ep.tls), timeout=t, retries=ep.retries, reconnect_delay=0
        )
    else:
        client = AsyncModbusTcpClient(ep.host, port=ep.port, timeout=t, retries=ep.retries, reconnect_delay=0)
    for cls in _fast_responses():
        client.register(cls)
    return client


@dataclass
class _Conn:
    """One connection to an address, shared by the controllers (unit ids) behind it."""

    client: ModbusTcpClient
    connecting: asyncio.Future | None = None  # set while the connection is being opened
    users: set[int] = field(default_factory=set)  # rows of the links that use it


@dataclass(kw_only=True)
class ModbusLink(PolledLink):
    """What central knows about one Modbus controller beyond :class:`~field_io.polled.PolledLink`."""

    client: Any = None
    identity: Identity | None = None
    seq: int = 0
    content: tuple | None = None
    block: CommandBlock | None = None
    written_seq: int = -1
    reported_reject: int = 0
    must_write: bool = False  # lockstep: the block goes out with the next step
    write_failures: int = 0
    read_plan: StatusRead | None = None

    _layout: tuple = ()
    _layout_plan: StatusRead | None = None
    _status: FieldStatus | None = None
    _rows: _StatusRows | None = None  # the batch this controller's last status came in, not yet made an object
    _i: int = 0  # its row there

    def __post_init__(self) -> None:
        self.read_plan = status_read(self.fmap, 0)

    @property  # type: ignore[misc]  # PolledLink's plain attribute, decoded on first use here
    def status(self) -> FieldStatus | None:
        """The last decoded status. A batched poll keeps its statuses as arrays (what the observation is filled
        from) and makes this object only when someone asks for it: at thousands of controllers per tick an object
        each is most of the decode's cost, and few are ever looked at."""
        rows = self._rows
        if rows is not None:
            self._status, self._rows = rows.status(self._i), None
        return self._status

    @status.setter
    def status(self, st: FieldStatus | None) -> None:
        self._status, self._rows = st, None

    def seq_state(self) -> tuple[int, int, int] | None:
        """(status word, accepted, rejected block sequence) of the last status, without decoding the rest
        (what the command step reads every tick); None: never read."""
        rows = self._rows
        if rows is not None:
            i = self._i
            return rows.status_word[i], rows.accepted_seq[i], rows.rejected_seq[i]
        st = self._status
        return None if st is None else (st.status_word, st.accepted_seq, st.rejected_seq)

    def layout_key(self) -> tuple:
        """What decides how this controller's status answer decodes (read length, offset of the status table,
        groups, detector channels): controllers with equal keys decode as one array. Cached per read plan."""
        plan = self.read_plan
        assert plan is not None
        if self._layout_plan is not plan:
            fm = self.fmap
            self._layout, self._layout_plan = (plan.count, plan.skip, fm.n_groups, fm.channel.tobytes()), plan
        return self._layout

    @property
    def readable(self) -> bool:
        return self.client is not None and self.identity is not None and not self.refused


class _StatusRows:
    """One register layout's status answers of one tick, decoded as arrays; a row's :class:`FieldStatus` on demand."""

    __slots__ = ("accepted_seq", "fmap", "rejected_seq", "skip", "status_word", "words")

    def __init__(self, words: np.ndarray, fmap: Any, skip: int, arrays: dict[str, np.ndarray]) -> None:
        self.words, self.fmap, self.skip = words, fmap, skip
        self.status_word: list[int] = arrays["status_word"].tolist()
        self.accepted_seq: list[int] = arrays["accepted_seq"].tolist()
        self.rejected_seq: list[int] = arrays["rejected_seq"].tolist()

    def status(self, i: int) -> FieldStatus:
        return decode_status_rows(self.words[i : i + 1], self.fmap, skip=self.skip)[0]


@dataclass
class _Layout:
    """The controllers of one connection whose status answers decode alike (see ``ModbusLink.layout_key``)."""

    at: np.ndarray  # their places in the connection's batch
    at_list: list[int]
    count: int
    skip: int
    fmap: Any
    rows: np.ndarray  # their observation rows
    det: np.ndarray  # (len, detectors): their detectors' places in the observation


class _ConnPlan:
    """The steady-state status requests of the controllers sharing one connection, as arrays built once.

    The controllers (in batch order), their unit ids, registers and layouts change only when a controller
    connects, is refused or loses its connection; each tick then fills in transaction ids, heartbeats and
    the clock, and writes the connection's requests as one buffer.
    """

    def __init__(self, key: tuple, links: list[ModbusLink], det_start: np.ndarray) -> None:
        n = len(links)
        self.key = key
        self.links = links
        self.client: ModbusTcpClient = links[0].client
        self.rows = np.fromiter((link.row for link in links), np.intp, n)
        self.timeout_s = max(link.endpoint.timeout_s for link in links)
        plans = [link.read_plan for link in links]
        assert all(p is not None for p in plans)
        units = [link.endpoint.device_id for link in links]
        base = [p.base for p in plans]  # type: ignore[union-attr]
        count = [p.count for p in plans]  # type: ignore[union-attr]
        self.rw = np.zeros(n, _FRAME_RW)
        self.rw["len"], self.rw["fc"], self.rw["waddr"], self.rw["wcount"], self.rw["nbytes"] = 21, 23, _HB, 5, 10
        self.read = np.zeros(n, _FRAME_READ)
        self.read["len"], self.read["fc"] = 6, 3
        for frames in (self.rw, self.read):
            frames["unit"], frames["raddr"], frames["rcount"] = units, base, count
        self.layouts: list[_Layout] = []
        by_layout: dict[tuple, list[int]] = {}
        for i, link in enumerate(links):
            by_layout.setdefault(link.layout_key(), []).append(i)
        for (cnt, skip, _g, _ch), at in by_layout.items():
            fm = links[at[0]].fmap
            rows = self.rows[at]
            det = det_start[rows][:, None] + np.arange(fm.n_detectors)[None, :]
            self.layouts.append(_Layout(np.asarray(at, np.intp), at, cnt, skip, fm, rows, det))


class _ConnBatch:
    """One connection's share of a tick's poll: its answers by place in the batch as they arrive."""

    __slots__ = ("answered_t", "answers", "decoded", "fc", "k", "left", "plan", "poll", "t0")

    def __init__(self, plan: _ConnPlan, poll: _Poll, k: int) -> None:
        n = len(plan.links)
        self.plan, self.poll, self.k = plan, poll, k
        self.answers: list[bytes | None] = [None] * n
        self.answered_t: list[float] | None = [0.0] * n if poll.record_latency else None
        self.left = n
        self.fc = np.full(n, 3, np.uint8)  # the function code a clean answer echoes
        self.t0 = 0.0
        self.decoded = False

    def answer(self, i: int, pdu: bytes) -> None:
        answers = self.answers
        if answers[i] is not None:
            return  # a duplicate
        answers[i] = pdu
        if self.answered_t is not None:
            self.answered_t[i] = time.perf_counter()
        self.left -= 1
        if self.left == 0:
            self.poll.group_done(self.k)

    def lost(self) -> None:
        if self.left > 0:
            self.left = 0
            self.poll.group_done(self.k)


class _Poll:
    """One tick's batched status poll over every connection; one waiter for the whole of it.

    When every request of a connection is answered, ``on_group(k)`` is scheduled, so that a connection's
    answers are decoded while the others are still outstanding (the decode is off the round's critical
    path but for the last connection's).
    """

    def __init__(self, record_latency: bool, on_group: Callable[[int], None]) -> None:
        self.groups: list[_ConnBatch] = []
        self.record_latency = record_latency
        self.on_group = on_group
        self.left = 0
        self.loop = asyncio.get_running_loop()
        self.waiter: asyncio.Future[None] = self.loop.create_future()

    def add(self, plan: _ConnPlan) -> _ConnBatch:
        batch = _ConnBatch(plan, self, len(self.groups))
        self.groups.append(batch)
        self.left += 1
        return batch

    def group_done(self, k: int) -> None:
        self.loop.call_soon(self.on_group, k)
        self.left -= 1
        if self.left == 0 and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, timeout_s: float) -> None:
        """Until every request is answered or ``timeout_s`` has passed (what is missing is retried apart)."""
        if self.left <= 0:
            return
        timer = self.loop.call_later(timeout_s, self.waiter.cancel)
        try:
            await asyncio.shield(self.waiter)
        except asyncio.CancelledError:
            if not self.waiter.cancelled():
                raise
        finally:
            timer.cancel()


class ModbusBackend(PolledFieldBackend):
    """Backend for field controllers speaking the greenwave Modbus profile (see the module docstring).

    The Modbus codec and transport on the shared :class:`~field_io.polled.PolledFieldBackend`.
    """

    protocol_name = "Modbus"
    #: ``preempt_active`` and ``detector_fault``: the profile's status bits PREEMPT and DETECTOR_FAULT (0/1),
    #: what the Modbus profile has of NTCIP's preemptState and detector alarms.
    extra_columns = ("accepted_seq", "reject_reason", "preempt_active", "detector_fault")

    def __init__(
        self,
        network: Network,
        endpoints: Sequence[Endpoint] | Mapping[str, Endpoint],
        *,
        wall_clock: Callable[[], float] = time.time,
        max_concurrent_connects: int = 200,
        **poll: Unpack[PollOptions],
    ) -> None:
        self.wall_clock = wall_clock
        self._conns: dict[tuple, _Conn] = {}
        self._conn_plans: dict[int, _ConnPlan] = {}  # id(client) -> its batch's requests, built once
        self._plan_gen = 0  # counts the changes (connects, refusals, losses) that invalidate those
        super().__init__(network, endpoints, max_concurrent_connects=max_concurrent_connects, **poll)
        self._heartbeat = np.zeros(len(self.links), np.int64)  # the last heartbeat sent to each row

    def _next_heartbeat(self, row: int) -> int:
        hb = self._heartbeat[row] = (self._heartbeat[row] + 1) & 0xFFFF
        return int(hb)

    def _make_link(self, row: int, endpoint: Endpoint, intersection: Any) -> ModbusLink:
        return ModbusLink(row=row, endpoint=endpoint, fmap=field_map(intersection))

    @property
    def _det_start(self) -> np.ndarray:
        """Each row's first detector in the observation's detector order."""
        ds = self.__dict__.get("_det_start_arr")
        if ds is None:
            ds = self.__dict__["_det_start_arr"] = np.array([sl.start for sl in self._det_slices], np.intp)
        return ds

    @property
    def _prev_volume(self) -> np.ndarray:
        """Each detector's volume counter at its last read (NaN: none since the connection), detector order."""
        pv = self.__dict__.get("_prev_volume_arr")
        if pv is None:
            pv = self.__dict__["_prev_volume_arr"] = np.full(len(self.detectors.ids), np.nan)
        return pv

    # ---- transport ---------------------------------------------------------------------------------
    def _close_transport(self) -> None:
        for link in self.links:
            link.client = None
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            close_client(conn.client)

    async def _shared_client(self, link: ModbusLink) -> tuple[ModbusTcpClient | None, str]:
        """The connection to the link's address, opened once for every controller behind it.

        A gateway (or an emulator) serves several controllers on one address,
        one unit id each; their transactions share one connection (see
        :mod:`field_io.modbus.transport`), so a tick's poll costs one write
        per address, not one per controller. Returns (client, why it failed).
        """
        ep = link.endpoint
        key = (ep.host, ep.port, ep.tls)
        conn = self._conns.get(key)
        if conn is not None:
            if conn.connecting is not None:
                client, why = await asyncio.shield(conn.connecting)
                if client is not None:
                    conn.users.add(link.row)
                return client, why
            if conn.client.connected:
                conn.users.add(link.row)
                return conn.client, ""
            del self._conns[key]
            close_client(conn.client)
        timeout = max(ep.timeout_s, self.lockstep_timeout_s) if self.lockstep else ep.timeout_s
        client = ModbusTcpClient(
            ep.host,
            ep.port,
            timeout_s=timeout,
            retries=ep.retries,
            sslctx=client_context(ep.tls) if ep.tls is not None else None,
        )
        fut: asyncio.Future[tuple[ModbusTcpClient | None, str]] = asyncio.get_running_loop().create_future()
        conn = self._conns[key] = _Conn(client=client, connecting=fut)
        try:
            ok = await client.connect()
            why = "connection refused or timed out"
        except Exception as e:  # ssl errors and the like
            ok, why = False, f"{type(e).__name__}: {e}"
        conn.connecting = None
        if not ok:
            close_client(client)
            if self._conns.get(key) is conn:
                del self._conns[key]
            fut.set_result((None, why))
            return None, why
        conn.users.add(link.row)
        fut.set_result((client, ""))
        return client, ""

    def _unlink(self, link: ModbusLink, *, close: bool) -> None:
        """Forget the link's connection; close it when asked (a broken connection) or when nobody else uses it."""
        self._plan_gen += 1
        client, link.client = link.client, None
        if client is None:
            return
        ep = link.endpoint
        key = (ep.host, ep.port, ep.tls)
        conn = self._conns.get(key)
        if conn is not None and conn.client is client:
            conn.users.discard(link.row)
            if close or not conn.users or not client.connected:
                del self._conns[key]
                close_client(client)
        else:
            close_client(client)

    async def _release(self, link: ModbusLink) -> None:
        """On a clean shutdown, hand every commanded controller back to its local plan."""
        if not link.readable:
            return
        link.seq = link.seq % 0xFFFF + 1
        block = CommandBlock(seq=link.seq, kind=CommandKind.RELEASE)
        words = heartbeat_words(int(self._heartbeat[link.row]) + 1, self.wall_clock()) + encode_command_block(
            block, link.fmap.intersection
        )
        try:
            await self._write(link, _HB, words)
        except _Fail as e:
            log.info("%s: release not confirmed (%s); its watchdog will fall back", link.label, e)

    # ---- connection and identity ---------------------------------------------------------------------
    async def _connect(self, link: ModbusLink) -> None:
        if link.client is not None and link.identity is not None:
            return  # a lost connection is noticed by the failing transaction (_comm_fail)
        now = self.clock()
        if now < link.next_try_t:
            return
        if link.client is not None:
            self._unlink(link, close=False)
        link.identity = None
        client, why = await self._shared_client(link)
        link.client = client
        if client is None:
            self._backoff(link)
            self._set_problem(link, f"unreachable ({why}); retrying in {link.backoff_s:g} s")
            return
        link.backoff_s = 0.0
        await self._check_identity(link)

    async def _check_identity(self, link: ModbusLink) -> None:
        self._plan_gen += 1  # whatever it finds, the batch's requests are built again
        try:
            words = await self._read(link, IDENTITY.base, IDENTITY.length, what="identity")
        except _Fail as e:
            self._disconnect(link, str(e), refused=not e.comm)
            return
        ident = decode_identity(words)
        fm = link.fmap
        problem = None
        if ident.magic != MAGIC:
            problem = f"not a greenwave Modbus profile device (magic 0x{ident.magic:04X}, expected 0x{MAGIC:04X})"
        elif ident.profile_major != PROFILE_MAJOR:
            problem = f"profile version {ident.profile} is not supported (this central speaks {PROFILE_MAJOR}.x)"
        elif ident.device_id != link.endpoint.device_id:
            problem = f"answers as device id {ident.device_id}, configured {link.endpoint.device_id}"
        elif ident.intersection_id != fm.id:
            problem = (
                f"reports intersection {ident.intersection_id!r}, the inventory expects {fm.id!r}: wrong device id?"
            )
        elif ident.group_count != fm.n_groups or ident.stage_count != fm.n_stages:
            problem = (
                f"has {ident.group_count} signal groups and {ident.stage_count} stages configured, the inventory "
                f"{fm.n_groups} and {fm.n_stages}: run `greenwave commission` to list every difference"
            )
        elif ident.detector_channels < fm.max_channel:
            problem = (
                f"has detector channels up to {ident.detector_channels}, the inventory uses up to {fm.max_channel}"
            )
        if problem is not None:
            link.refused = True
            link.identity = ident
            self._set_problem(link, problem + "; not commanding it")
            return
        link.identity = ident
        link.refused = False
        self._prev_volume[self._det_slices[link.row]] = np.nan  # counts restart from this connection
        link.read_plan = status_read(fm, ident.capabilities)
        self._plan_gen += 1
        self._set_problem(link, None)

    def _disconnect(self, link: ModbusLink, message: str, *, refused: bool = False) -> None:
        # A device that answers wrongly leaves the connection to the others behind the same address.
        self._plan_gen += 1
        self._unlink(link, close=not refused and link.client is not None and not link.client.connected)
        link.identity = None
        link.refused = refused
        self._backoff(link)
        self._set_problem(link, message + ("; not commanding it" if refused else ""))

    # ---- transactions (the only read and write paths) --------------------------------------------------
    async def _call(self, link: ModbusLink, pdu: bytes, what: Callable[[], str]) -> bytes:
        """One transaction; every failure becomes a :class:`_Fail` worded for the operator (``what`` lazily)."""
        t0 = time.perf_counter()
        try:
            answer = await link.client.request(link.endpoint.device_id, pdu)
        except ModbusExceptionAnswer as e:
            name = EXCEPTION_NAMES.get(e.code, "unknown exception")
            hint = " (wrong device id?)" if e.code in (10, 11) else ""
            raise _Fail(f"answers Modbus exception {e.code:02d} ({name}) to {what()}{hint}", comm=False) from None
        except ModbusConnectionLost as e:
            raise _Fail(f"connection lost during {what()}: {e}") from None
        except ModbusTimeout as e:
            raise _Fail(f"no valid answer to {what()} {e}") from None
        except ModbusMalformed as e:
            raise _Fail(f"no valid answer to {what()} ({e})") from None
        except OSError as e:
            raise _Fail(f"connection lost during {what()}: {e}") from None
        if self.record_latency:
            link.latency_s.append(time.perf_counter() - t0)
        return answer

    def _registers(self, answer: bytes, count: int, what: Callable[[], str]) -> list[int]:
        try:
            regs = registers(answer)
        except ModbusMalformed as e:
            raise _Fail(f"no valid answer to {what()} ({e})", comm=False) from None
        if len(regs) != count:
            raise _Fail(f"answered {len(regs)} registers to {what()}", comm=False)
        return regs

    async def _read(self, link: ModbusLink, address: int, count: int, *, what: str) -> list[int]:
        def describe() -> str:
            return f"a read of {what} (registers {address}-{address + count - 1})"

        return self._registers(await self._call(link, read_pdu(address, count), describe), count, describe)

    async def _write(self, link: ModbusLink, address: int, values: Sequence[int]) -> None:
        check_modbus_write(address, len(values))
        await self._call(
            link, write_pdu(address, values), lambda: f"a write of registers {address}-{address + len(values) - 1}"
        )

    async def _write_read(
        self, link: ModbusLink, waddr: int, values: Sequence[int], raddr: int, rcount: int
    ) -> list[int]:
        check_modbus_write(waddr, len(values))

        def describe() -> str:
            return f"a read/write (write {waddr}-{waddr + len(values) - 1}, read {raddr}-{raddr + rcount - 1})"

        answer = await self._call(link, read_write_pdu(raddr, rcount, waddr, values), describe)
        return self._registers(answer, rcount, describe)

    # ---- per tick ---------------------------------------------------------------------------------
    def _status_words(self, link: ModbusLink, step: int | None) -> tuple[int, list[int]] | None:
        """What this tick's status transaction writes (address, words), or None for a plain read.

        A commanded controller gets the next heartbeat with every read; in lockstep the step number
        (and a pending command block) ride along, and an inactive row gets the step alone.
        """
        if not (link.was_active or step is not None):
            return None
        words = heartbeat_words(int(self._heartbeat[link.row]), self.wall_clock(), step or 0)
        if not link.was_active:
            return _HB + 4, words[4:5]  # lockstep step only: no heartbeat for an inactive row
        words[0] = self._next_heartbeat(link.row)
        if step is not None and link.block is not None and link.must_write:
            words += encode_command_block(link.block, link.fmap.intersection)
            link.written_seq = link.block.seq
            link.must_write = False
        return _HB, words

    async def _poll(self, link: ModbusLink, *, step: int | None = None) -> None:
        """Read one controller's status (heartbeat with it when it is commanded)."""
        await self._connect(link)
        if not link.readable:
            return
        plan = link.read_plan
        assert plan is not None
        base, count = plan.base, plan.count
        try:
            write = self._status_words(link, step)
            if write is not None:
                regs = await self._write_read(link, write[0], write[1], base, count)
            else:
                regs = await self._read(link, base, count, what="status")
            queue_words = None
            if plan.queue_apart:
                queue_words = await self._read(link, QUEUES.base, QUEUES.length, what="queues")
        except _Fail as e:
            link.errors += 1
            if e.comm:
                self._comm_fail(link, str(e))
            else:
                self._disconnect(link, str(e), refused=True)
            return
        self._polled(link, decode_status(regs, link.fmap, queue_words, skip=plan.skip))

    async def _poll_all(self, links: Sequence[ModbusLink]) -> None:
        """Every controller's status in one batch: one request each written at once, one timer for all.

        The steady state - connected, identified, status in one transaction - costs a frame and a
        callback per controller and no task. Everything else (connecting, a queues table read apart,
        lockstep) and every straggler (no answer in time, an exception answer, a short answer) goes
        through :meth:`_poll`, which retries and words the failure exactly as a lone read would.
        """
        if self.lockstep:
            await super()._poll_all(links)
            return
        batch: list[ModbusLink] = []
        slow: list[ModbusLink] = []
        for link in links:
            plan = link.read_plan
            if link.readable and link.client.connected and plan is not None and not plan.queue_apart:
                batch.append(link)
            else:
                slow.append(link)
        others = asyncio.gather(*(self._poll(link) for link in slow)) if slow else None
        if batch:
            by_conn: dict[int, list[ModbusLink]] = {}
            for link in batch:
                by_conn.setdefault(id(link.client), []).append(link)
            retry: list[ModbusLink] = []

            def decode(k: int) -> None:  # a connection's answers are in (or the batch is over): decode them
                group = tick.groups[k]
                if not group.decoded:
                    group.decoded = True
                    retry.extend(self._decode_status_group(group))

            tick = _Poll(self.record_latency, decode)
            for cid, links_ in by_conn.items():
                self._send_status_batch(tick.add(self._conn_plan(cid, links_)))
            await tick.wait(max(group.plan.timeout_s for group in tick.groups))
            for group in tick.groups:
                group.plan.client.end_batch()  # a straggler's late answer is dropped: it is retried below
                decode(group.k)
            if retry:
                await asyncio.gather(*(self._poll(link) for link in retry))
        if others is not None:
            await others

    def _conn_plan(self, cid: int, links: list[ModbusLink]) -> _ConnPlan:
        """The connection's batch of requests, built again only when its controllers or their reads changed."""
        key = (self._plan_gen, tuple(link.row for link in links))
        plan = self._conn_plans.get(cid)
        if plan is None or plan.key != key or plan.client is not links[0].client:
            if len(self._conn_plans) > 2 * len(self._conns) + 8:  # connections come and go: forget the old ones
                self._conn_plans.clear()
            plan = self._conn_plans[cid] = _ConnPlan(key, links, self._det_start)
        return plan

    def _send_status_batch(self, group: _ConnBatch) -> None:
        """Write one connection's status requests as one buffer built as an array (a gateway's units share the
        connection); a commanded controller's read carries its next heartbeat and the central clock (function
        23), the others' are plain reads (function 3). Every commanded controller's heartbeat carries the same
        central clock this tick, and the write's range is the same five registers for all."""
        plan = group.plan
        links, n = plan.links, len(plan.links)
        first = plan.client.begin_batch(n, group)
        if first is None:
            group.lost()
            return
        check_modbus_write(_HB, 5)
        active = np.fromiter((link.was_active for link in links), bool, n)
        tids = (first + np.arange(n)) & 0xFFFF
        rw, read = plan.rw, plan.read
        if active.any():
            rows = plan.rows[active]
            hb = self._heartbeat[rows] = (self._heartbeat[rows] + 1) & 0xFFFF
            rw["tid"][active] = tids[active]
            rw["hb"][active] = hb
            rw["clock"][active] = heartbeat_words(0, self.wall_clock())[1:4]
            group.fc[active] = 23
        if active.all():
            data = rw.tobytes()
        elif not active.any():
            read["tid"] = tids
            data = read.tobytes()
        else:  # some commanded, some not (a start-up tick, a partial hand-over): one request each, in order
            read["tid"] = tids
            data = b"".join(rw[i].tobytes() if a else read[i].tobytes() for i, a in enumerate(active.tolist()))
        group.t0 = time.perf_counter()
        plan.client.write(data)

    def _decode_status_group(self, group: _ConnBatch) -> list[ModbusLink]:
        """Decode one connection's clean answers a register layout at a time, as arrays (for ``_fill_bulk``);
        returns the links to retry one by one (no answer in time, an exception answer, a short answer)."""
        plan, answers = group.plan, group.answers
        retry: list[ModbusLink] = []
        now = self.clock()
        for lay in plan.layouts:
            size = 2 + 2 * lay.count
            got = [answers[i] for i in lay.at_list]
            if None in got or set(map(len, got)) != {size}:  # type: ignore[arg-type]  # None: the first test
                keep = [a is not None and len(a) == size for a in got]
                retry.extend(plan.links[i] for i, k in zip(lay.at_list, keep, strict=True) if not k)
                at = lay.at[np.asarray(keep, bool)]
                got = [a for a, k in zip(got, keep, strict=True) if k]
            else:
                at = lay.at
            if not got:
                continue
            buf = b"".join(got)  # type: ignore[arg-type]  # None filtered out above
            head = np.frombuffer(buf, np.uint8).reshape(len(got), size)[:, :2]
            clean = (head[:, 0] == group.fc[at]) & (head[:, 1] == 2 * lay.count)
            words = np.ndarray((len(got), lay.count), ">u2", buffer=buf, offset=2, strides=(size, 2))
            if not clean.all():  # an exception answer is as long as a clean one only by accident; still
                retry.extend(plan.links[i] for i in at[~clean].tolist())
                at, words = at[clean], words[clean]
                if not len(at):
                    continue
            _arr, arrays = decode_status_arrays(words, lay.fmap, skip=lay.skip)
            rows = _StatusRows(words, lay.fmap, lay.skip, arrays)
            at_list = at.tolist()
            for i, k in enumerate(at_list):  # what _polled does, the status kept as the batch's row
                link = plan.links[k]
                link._rows, link._i = rows, i
                link.status_fresh = True
                link.last_ok_t = now
                link.reads += 1
            if group.answered_t is not None:
                for k in at_list:
                    plan.links[k].latency_s.append(group.answered_t[k] - group.t0)  # from the batch's start
            sel = lay.at_list == at_list
            idx = lay.rows if sel else plan.rows[at]
            det = lay.det if sel else self._det_start[idx][:, None] + np.arange(lay.fmap.n_detectors)[None, :]
            self._bulk.append((idx, arrays, det))
        return retry

    def _comm_fail(self, link: ModbusLink, message: str) -> None:
        """A timeout or a lost connection: the comm age grows; reconnect if the connection is gone."""
        if link.client is None or not link.client.connected:
            self._disconnect(link, message)
        else:
            log.debug("%s: %s", link.label, message)

    # ---- observation columns -------------------------------------------------------------------------
    def _row_counts(self, link: ModbusLink, st: FieldStatus) -> np.ndarray:
        """Differences of the controller's 16-bit volume counters (0 on the first read after a connect)."""
        sl = self._det_slices[link.row]
        prev = self._prev_volume[sl].copy()
        self._prev_volume[sl] = st.volume
        return np.nan_to_num((st.volume - prev) % 65536, nan=0.0)

    def _fill_batch(
        self, cols: dict[str, Any], extra: dict[str, np.ndarray], idx: np.ndarray, a: dict[str, Any], more: Any
    ) -> None:
        """Counts (differences of the 16-bit volume counters), occupancy, the Modbus columns and the refused
        blocks of one register layout's batch (see the base class)."""
        det: np.ndarray = more
        pv = self._prev_volume
        vol = a["volume"]
        prev = pv[det]
        cols["counts"][det] = np.nan_to_num((vol - prev) % 65536, nan=0.0)
        pv[det] = vol
        raw = a["occupancy_raw"]
        cols["occupancy"][det] = np.where(raw <= OCC_SCALE, raw / OCC_SCALE, np.nan)
        sw = a["status_word"]
        extra["accepted_seq"][idx] = a["accepted_seq"]
        extra["reject_reason"][idx] = a["reject_reason"]
        extra["preempt_active"][idx] = (sw & _PREEMPT) != 0
        extra["detector_fault"][idx] = (sw & _DETECTOR_FAULT) != 0
        for i in np.flatnonzero(a["rejected_seq"]):  # a refused block is reported once (_report_reject)
            link = self.links[idx[i]]
            self._report_reject(link, link.status)

    def _row_occupancy(self, link: ModbusLink, st: FieldStatus) -> np.ndarray:
        raw = st.occupancy_raw
        return np.where(raw <= OCC_SCALE, raw / OCC_SCALE, np.nan)

    def _row_extra(self, link: ModbusLink, st: FieldStatus) -> tuple[int, ...]:
        sw = st.status_word
        return (st.accepted_seq, st.reject_reason, int(bool(sw & _PREEMPT)), int(bool(sw & _DETECTOR_FAULT)))

    def _report(self, link: ModbusLink, st: FieldStatus) -> None:
        self._report_reject(link, st)

    def _report_reject(self, link: ModbusLink, st: FieldStatus) -> None:
        if link.block is not None and st.rejected_seq == link.block.seq and link.reported_reject != link.block.seq:
            link.reported_reject = link.block.seq
            try:
                why = RejectReason(st.reject_reason).name
            except ValueError:
                why = str(st.reject_reason)
            msg = f"command block {link.block.seq} rejected ({why}); the controller keeps its last safe plan"
            self.events.append((self.time_s, link.fmap.id, msg))
            log.warning("%s: %s", link.label, msg)

    # ---- commands ------------------------------------------------------------------------------------
    def _block_for(self, link: ModbusLink, commands: Commands) -> tuple | None:
        inter = link.fmap.intersection
        plan = (commands.plans or {}).get(inter.id)
        if plan is not None:
            return ("plan", quantize_plan(plan, 0.1))
        t = int(commands.target_stage[link.row])
        if t < 0:
            return None
        return ("stage", t)

    def _needs_write(self, link: ModbusLink, commands: Commands) -> bool:
        """Update the link's block for this tick; True when it must be (re)written."""
        want = self._block_for(link, commands)
        st = link.seq_state()
        if want is None or st is None:
            return False
        inter = link.fmap.intersection
        new = want != link.content
        status_word, accepted_seq, rejected_seq = st
        in_control = bool(status_word & _CENTRAL)
        pending = bool(status_word & _PENDING)
        if not new and link.block is not None:
            ours = link.block.seq
            if rejected_seq == ours:
                return False  # refused: do not insist with the same block
            if accepted_seq == ours and (in_control or pending):
                return False  # in force, or waiting for the handback
            if accepted_seq != ours and link.written_seq == ours:
                return True  # written but not seen: resend the same block
            if accepted_seq == ours:
                new = True  # the controller fell back since: a complete *new* block is needed
        if new:
            link.seq = link.seq % 0xFFFF + 1
            link.content = want
            if want[0] == "plan":
                link.block = CommandBlock(seq=link.seq, kind=CommandKind.PLAN, plan=want[1])
            else:
                link.block = stage_request(link.seq, want[1], len(inter.stages))
            return True
        return link.written_seq != link.block.seq if link.block is not None else False

    async def _send_block(self, link: ModbusLink) -> None:
        assert link.block is not None
        words = heartbeat_words(self._next_heartbeat(link.row), self.wall_clock()) + encode_command_block(
            link.block, link.fmap.intersection
        )
        try:
            await self._write(link, _HB, words)
            link.written_seq = link.block.seq
        except _Fail as e:
            link.write_failures += 1
            if e.comm:
                self._comm_fail(link, str(e))
            else:
                self._disconnect(link, str(e), refused=True)

    def _command(self, link: ModbusLink, commands: Commands) -> Coroutine[Any, Any, None] | None:
        if not self._needs_write(link, commands):
            return None
        if self.lockstep:
            link.must_write = True  # the block goes out with the next step
            return None
        return self._send_block(link)

    def _step(self, link: ModbusLink) -> Coroutine[Any, Any, None]:
        return self._poll(link, step=self.step)

    # ---- convenience -------------------------------------------------------------------------------------
    def mode(self, intersection_id: str) -> ControllerMode | None:
        st = self.status(intersection_id)
        return None if st is None else ControllerMode(st.mode)


_ = BLOCK_START  # the block's address, documented in the profile
