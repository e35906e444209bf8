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
from functools import partial
from typing import Any, TypeGuard, Unpack

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
    FieldStatus,
    Identity,
    StatusRead,
    decode_identity,
    decode_status,
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
#: Function 23 writing the five heartbeat registers (heartbeat, central clock, step) and reading the status.
_RW_HEARTBEAT = struct.Struct(">BHHHHB5H")
_CENTRAL, _PENDING = int(StatusBits.CENTRAL_CONTROL), int(StatusBits.PENDING_HANDBACK)
_DONE = int(StatusBits.PLANT_DONE)
_PREEMPT, _DETECTOR_FAULT = int(StatusBits.PREEMPT), int(StatusBits.DETECTOR_FAULT)


def _clean(answer: bytes | None, fc: int, count: int) -> TypeGuard[bytes]:
    """A clean answer to function ``fc`` with ``count`` registers (anything else is retried alone)."""
    return answer is not None and len(answer) == 2 + 2 * count and answer[0] == fc and answer[1] == 2 * count


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
    status: FieldStatus | None = None
    heartbeat: int = 0
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

    def __post_init__(self) -> None:
        self.read_plan = status_read(self.fmap, 0)

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


class _StatusBatch:
    """One tick's batched status poll: the answers by row as they arrive, connection by connection.

    ``groups`` are the batch's links, one list per connection. When every request of a connection is
    answered, ``on_group(k)`` is scheduled, so that a connection's answers are decoded while the
    others are still outstanding (the decode is off the round's critical path but for the last
    connection's); one waiter covers the whole batch.
    """

    def __init__(self, groups: list[list[ModbusLink]], record_latency: bool, on_group: Callable[[int], None]) -> None:
        self.groups = groups
        self.answers: dict[int, bytes | None] = {}
        self.answered_t: dict[int, float] = {}
        self.tid: dict[int, int] = {}  # row -> transaction id (to forget a straggler's)
        self.fc: dict[int, int] = {}  # row -> the request's function code (what a clean answer echoes)
        self.group_left = [len(g) for g in groups]
        self.decoded = [False] * len(groups)
        self.left = sum(self.group_left)
        self.record_latency = record_latency
        self.on_group = on_group
        self.t0 = 0.0
        self.loop = asyncio.get_running_loop()
        self.waiter: asyncio.Future[None] = self.loop.create_future()

    def answered(self, group: int, row: int, answer: bytes | None) -> None:
        """The transport's callback: an answer (None: the connection failed)."""
        self.answers[row] = answer
        if self.record_latency:
            self.answered_t[row] = time.perf_counter()
        self.group_left[group] -= 1
        if self.group_left[group] == 0:
            self.loop.call_soon(self.on_group, group)
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
        super().__init__(network, endpoints, max_concurrent_connects=max_concurrent_connects, **poll)

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
        words = heartbeat_words(link.heartbeat + 1, self.wall_clock()) + encode_command_block(
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
        self._set_problem(link, None)

    def _disconnect(self, link: ModbusLink, message: str, *, refused: bool = False) -> None:
        # A device that answers wrongly leaves the connection to the others behind the same address.
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
        words = heartbeat_words(link.heartbeat, self.wall_clock(), step or 0)
        if not link.was_active:
            return _HB + 4, words[4:5]  # lockstep step only: no heartbeat for an inactive row
        link.heartbeat = (link.heartbeat + 1) & 0xFFFF
        words[0] = link.heartbeat
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
                if not tick.decoded[k]:
                    retry.extend(self._decode_status_group(tick.groups[k], tick))
                    tick.decoded[k] = True

            tick = _StatusBatch(list(by_conn.values()), self.record_latency, decode)
            self._send_status_batch(tick)
            await tick.wait(max(link.endpoint.timeout_s for link in batch))
            for k in range(len(tick.groups)):
                decode(k)
            if retry:
                await asyncio.gather(*(self._poll(link) for link in retry))
        if others is not None:
            await others

    def _send_status_batch(self, tick: _StatusBatch) -> None:
        """Write every controller's status request, one write per connection (a gateway's units share it),
        each connection's as soon as it is built (its emulator or gateway starts on it while the next is
        built); a commanded controller's read carries its next heartbeat and the central clock (function 23)."""
        # Every commanded controller's heartbeat carries the same central clock this tick: its words
        # once, and the write's range checked once (the same five registers for every controller).
        clock_words = heartbeat_words(0, self.wall_clock())[1:4]
        check_modbus_write(_HB, 5)
        answered, fc, tids = tick.answered, tick.fc, tick.tid
        tick.t0 = time.perf_counter()
        for k, group in enumerate(tick.groups):
            items = []
            for link in group:
                plan = link.read_plan
                assert plan is not None  # batched links were chosen for having one
                if link.was_active:  # what _status_words gives without a step: the next heartbeat and the clock
                    link.heartbeat = hb = (link.heartbeat + 1) & 0xFFFF
                    pdu = _RW_HEARTBEAT.pack(23, plan.base, plan.count, _HB, 5, 10, hb, *clock_words, 0)
                else:
                    pdu = read_pdu(plan.base, plan.count)
                fc[link.row] = pdu[0]
                items.append((link.endpoint.device_id, pdu, partial(answered, k, link.row)))
            for link, tid in zip(group, group[0].client.send_many(items), strict=True):
                tids[link.row] = tid

    def _decode_status_group(self, group: Sequence[ModbusLink], tick: _StatusBatch) -> list[ModbusLink]:
        """Decode one connection's clean answers a register layout at a time (for ``_fill_bulk``); returns
        the links to retry one by one (no answer in time, an exception answer, a short answer)."""
        retry = []
        layouts: dict[tuple, list[tuple[ModbusLink, bytes]]] = {}
        answers = tick.answers
        for link in group:
            answer = answers.get(link.row)
            plan = link.read_plan
            assert plan is not None
            if not _clean(answer, tick.fc[link.row], plan.count):
                if link.client is not None:
                    link.client.forget(tick.tid[link.row])
                retry.append(link)
                continue
            if self.record_latency:
                link.latency_s.append(tick.answered_t[link.row] - tick.t0)  # from the batch's start
            layouts.setdefault(link.layout_key(), []).append((link, answer))
        for (count, skip, _g, _ch), rows in layouts.items():
            words = np.frombuffer(b"".join(a[2:] for _l, a in rows), dtype=">u2").reshape(len(rows), count)
            arrays: dict[str, np.ndarray] = {}
            fm0 = rows[0][0].fmap
            for (link, _a), st in zip(rows, decode_status_rows(words, fm0, skip=skip, arrays=arrays), strict=True):
                self._polled(link, st)
            idx = np.fromiter((link.row for link, _a in rows), np.intp, len(rows))
            det = self._det_start[idx][:, None] + np.arange(fm0.n_detectors)[None, :]
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
        st = link.status
        if want is None or st is None:
            return False
        inter = link.fmap.intersection
        new = want != link.content
        in_control = bool(st.status_word & _CENTRAL)
        pending = bool(st.status_word & _PENDING)
        if not new and link.block is not None:
            ours = link.block.seq
            if st.rejected_seq == ours:
                return False  # refused: do not insist with the same block
            if st.accepted_seq == ours and (in_control or pending):
                return False  # in force, or waiting for the handback
            if st.accepted_seq != ours and link.written_seq == ours:
                return True  # written but not seen: resend the same block
            if st.accepted_seq == ours:
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
        link.heartbeat = (link.heartbeat + 1) & 0xFFFF
        words = heartbeat_words(link.heartbeat, self.wall_clock()) + encode_command_block(
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
