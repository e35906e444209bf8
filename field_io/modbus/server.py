"""The field side of the greenwave Modbus profile: a small asyncio Modbus TCP (and TLS) server.

It serves the register map of :mod:`field_io.modbus.profile` for every
intersection of an emulator process, one unit/device id each, from the
local controller's state (:class:`~field_io.emulator.core.LocalController`).
Written here rather than on pymodbus's server on purpose: pymodbus marks its
simulator datastore "experimental, not for production", the register image
here is numpy rows that the controller updates once per tick, and the server
must defer a lockstep reply until the controller has stepped. Protocol
(Modbus Application Protocol v1.1b3 and Messaging on TCP/IP v1.0b): MBAP
header (transaction id, protocol id 0, length, unit id) + PDU; function codes
3, 4, 6, 16 and 23; exceptions 01, 02, 03 and 0B. Malformed frames close the
connection; they never stop the server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import numpy as np

from field_io.commands import CommandBlock
from field_io.emulator.core import LocalController
from field_io.modbus.codec import (
    BLOCK_LEN,
    BLOCK_START,
    CAP_QUEUES,
    MAX_READ,
    STATUS_BASE,
    STATUS_LEN,
    STATUS_RW_FRAME,
    decode_command_block,
    decode_plan_table,
    encode_config,
    encode_identity,
    encode_plan_table,
    encode_queues,
    encode_status,
    patch_live,
    patch_live_rows,
    status_layout,
)
from field_io.modbus.profile import COMMAND, FALLBACK_STORED, FALLBACK_UPLOAD, QUEUES, TABLES, Access, Table
from field_io.security import peer_role

__all__ = ["ModbusFieldServer"]

log = logging.getLogger("greenwave.field.modbus")

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, GATEWAY_NO_RESPONSE = 0x01, 0x02, 0x03, 0x0B
#: Modbus Application Protocol v1.1b3 §7 names, for log lines and for the commissioning tool's messages.
EXCEPTION_NAMES = {
    ILLEGAL_FUNCTION: "illegal function",
    ILLEGAL_ADDRESS: "illegal data address",
    ILLEGAL_VALUE: "illegal data value",
    0x04: "server device failure",
    0x06: "server device busy",
    GATEWAY_NO_RESPONSE: "gateway target device failed to respond",
}
_HB = COMMAND.address("heartbeat")
_STEP = COMMAND.address("step")
_CRC = COMMAND.address("crc")
_MAX_ADU = 260
# The batched answer below reads the queues table and the live status row as one image, and applies a
# heartbeat write that stops before the command block.
assert QUEUES.end == STATUS_BASE and _HB + 5 <= BLOCK_START


class _Device:
    """One intersection's register image."""

    def __init__(self, row: int, device_id: int, server: ModbusFieldServer, command: np.ndarray) -> None:
        core = server.core
        fmap = core.maps[row]
        self.row = row
        self.device_id = device_id
        self.identity = np.asarray(
            encode_identity(
                fmap,
                device_id=device_id,
                backup_time_s=core.config.backup_time_s,
                resume_heartbeats=core.config.resume_heartbeats,
                tick_s=core.config.dt_s,
                serial=server.serial_base + row,
                capabilities=0b011 | CAP_QUEUES | (0b100 if server.tls else 0),
            ),
            np.uint16,
        )
        config, intergreen = encode_config(fmap)
        self.config = np.asarray(config, np.uint16)
        self.intergreen = np.asarray(intergreen, np.uint16)
        self.command = command  # this device's row of the server's command image
        self.upload = np.zeros(FALLBACK_UPLOAD.length, np.uint16)


class ModbusFieldServer:
    """Serve ``core``'s intersections; ``device_ids`` maps unit id -> row (default: row + 1)."""

    def __init__(
        self,
        core: LocalController,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        device_ids: Mapping[int, int] | None = None,
        sslctx: ssl.SSLContext | None = None,
        required_role: str | None = None,
        serial_base: int = 1000,
    ) -> None:
        self.core = core
        self.host = host
        self.port = port
        self.tls = sslctx is not None
        self.sslctx = sslctx
        self.required_role = required_role
        self.refused_peers = 0
        self.serial_base = serial_base
        ids = dict(device_ids) if device_ids is not None else {r + 1: r for r in range(len(core.ids))}
        # Every device's command registers, one row each (in ``ids`` order), so a batch of heartbeat writes is
        # one assignment; unit id -> that row (-1: no such unit) and each row's intersection.
        self.command_image = np.zeros((len(ids), COMMAND.length), np.uint16)
        self.devices = {uid: _Device(row, uid, self, self.command_image[k]) for k, (uid, row) in enumerate(ids.items())}
        self._unit_index = np.full(max(256, max(ids, default=0) + 1), -1, np.intp)
        self._unit_index[list(ids)] = np.arange(len(ids))
        self._device_rows = np.fromiter(ids.values(), np.intp, len(ids))
        self.layout = status_layout(core.maps)
        self._status_tick = -2
        self._status = np.zeros((len(core.ids), STATUS_LEN), np.uint16)
        self._queues = encode_queues(np.zeros((0, 0)), len(core.ids))
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[_Connection] = set()
        self.requests = 0
        self.malformed = 0

    # ---- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, ssl=self.sslctx, backlog=4096, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def open_connections(self) -> int:
        """Central's TCP connections this server holds open now."""
        return len(self._conns)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for c in list(self._conns):
                c.abort()
            await self._server.wait_closed()
            self._server = None

    # ---- register image ------------------------------------------------------------------------------
    def _status_rows(self) -> np.ndarray:
        snap = self.core.snapshot
        if snap.tick != self._status_tick or snap.done:
            self._status = encode_status(
                self.layout,
                group_state=snap.group_state,
                stage=snap.stage,
                stage_timer_s=snap.stage_timer_s,
                target=snap.target,
                tick=max(snap.tick, 0),
                detector_sequence=snap.detector_sequence,
                plan_clock_s=snap.plan_clock_s,
                active_cycle_s=snap.active_cycle_s,
                volume=snap.volume,
                occupancy=snap.occupancy,
            )
            self._queues = encode_queues(snap.queue_veh, len(self.core.maps))
            self._status_tick = snap.tick
        return self._status

    def answer_status_batch(self, buf: bytes) -> tuple[int, bytes]:
        """Answer a run of steady-state status requests at once: (bytes used, the answers), or (0, b"") when
        ``buf`` does not start with such a run (then it goes request by request, as everything else does).

        Central's tick sends every commanded controller behind this port one function-23 request - the
        heartbeat write and the status read - in one write. Parsed as an array of records, applied as one
        heartbeat submission and answered from the tick's status image patched as arrays, a thousand of
        them cost the emulator about what a few dozen cost one by one. The run qualifies only if every
        record is such a request (which also proves the framing: each record's length field says 27 bytes),
        to distinct known units, with no lockstep step, reading within the queues and status tables;
        the answers are byte for byte the request-by-request ones (a test holds the two together), in
        request order.
        """
        size = STATUS_RW_FRAME.itemsize
        n = len(buf) // size
        if n < 2:
            return 0, b""
        req = np.frombuffer(buf, STATUS_RW_FRAME, n)
        ok = (req["pid"] == 0) & (req["len"] == size - 6) & (req["fc"] == 23) & (req["waddr"] == _HB)
        ok &= (req["wcount"] == 5) & (req["nbytes"] == 10) & (req["step"] == 0)
        raddr, rcount = req["raddr"].astype(np.intp), req["rcount"].astype(np.intp)
        ok &= (
            (rcount >= 1) & (rcount <= MAX_READ) & (raddr >= QUEUES.base) & (raddr + rcount <= STATUS_BASE + STATUS_LEN)
        )
        dev = self._unit_index[req["unit"]]
        if not ok.all() or (dev < 0).any() or len(np.unique(dev)) != n:
            return 0, b""
        rows = self._device_rows[dev]
        core = self.core
        with core.lock:
            self.command_image[dev, _HB - COMMAND.base : _HB - COMMAND.base + 4] = np.column_stack(
                (req["hb"], req["clock"])
            )
            self.command_image[dev, _STEP - COMMAND.base] = 0
            core.submit_heartbeats(rows, req["hb"])
            status = self._status_rows()[rows]  # a copy: the live fields are patched into it
            now = core.clock()
            patch_live_rows(
                status,
                wall_time_s=core.wall_clock() + core.config.clock_offset_s,
                heartbeat_age_s=now - core.hb_change_t[rows],
                status_word=core.status_words(rows, now),
                mode=core.mode[rows],
                heartbeat_echo=np.maximum(core.hb_value[rows], 0),
                accepted_seq=core.accepted_seq[rows],
                rejected_seq=core.rejected_seq[rows],
                reject_reason=core.reject_reason[rows],
                fault_bits=core.fault_bits[rows],
            )
            image = np.concatenate((self._queues[rows], status), axis=1)  # registers QUEUES.base ..
        self.requests += n
        start = raddr - QUEUES.base
        parts: list[bytes] = [b""] * n
        for first, count in set(zip(start.tolist(), rcount.tolist(), strict=True)):
            at = np.flatnonzero((start == first) & (rcount == count))
            out = np.zeros(len(at), _answer_frame(count))
            out["tid"], out["len"], out["unit"] = req["tid"][at], 3 + 2 * count, req["unit"][at]
            out["fc"], out["nbytes"], out["data"] = 23, 2 * count, image[at, first : first + count]
            if len(at) == n:
                return n * size, out.tobytes()
            data, step = out.tobytes(), out.itemsize
            for j, i in enumerate(at.tolist()):
                parts[i] = data[j * step : (j + 1) * step]
        return n * size, b"".join(parts)

    def _table(self, addr: int) -> Table | None:
        for t in TABLES:
            if t.base <= addr < t.end:
                return t
        return None

    def read(self, dev: _Device, addr: int, count: int) -> bytes | int:
        """Registers [addr, addr+count) as big-endian bytes, or an exception code."""
        out = []
        a, end = addr, addr + count
        core = self.core
        while a < end:
            t = self._table(a)
            if t is None:
                return ILLEGAL_ADDRESS
            stop = min(end, t.end)
            if t.name in ("status", "detectors"):
                stop = min(end, STATUS_BASE + STATUS_LEN)  # one live row for both tables
                with core.lock:
                    row = self._status_rows()[dev.row].copy()
                    r = dev.row
                    now = core.clock()
                    patch_live(
                        row,
                        wall_time_s=core.wall_clock() + core.config.clock_offset_s,
                        heartbeat_age_s=float(now - core.hb_change_t[r]),
                        status_word=core.status_word(r, now),
                        mode=core.mode[r],
                        heartbeat_echo=max(core.hb_value[r], 0),
                        accepted_seq=core.accepted_seq[r],
                        rejected_seq=core.rejected_seq[r],
                        reject_reason=core.reject_reason[r],
                        fault_bits=core.fault_bits[r],
                    )
                src, base = row, STATUS_BASE
            elif t.name == "queues":
                with core.lock:
                    self._status_rows()
                    src, base = self._queues[dev.row].copy(), t.base
            elif t.name == "identity":
                src, base = dev.identity, t.base
            elif t.name == "command":
                src, base = dev.command, t.base
            elif t.name == "config":
                src, base = dev.config, t.base
            elif t.name == "intergreen":
                src, base = dev.intergreen, t.base
            elif t.name == "fallback_upload":
                src, base = dev.upload, t.base
            else:  # fallback_stored
                inter = core.network.intersections[dev.row]
                with core.lock:
                    plan = core.fallback_plans.get(inter.id)
                    seq = int(core.stored_seq[dev.row])
                src, base = np.asarray(encode_plan_table(FALLBACK_STORED, seq, plan, inter), np.uint16), t.base
            out.append(np.asarray(src[a - base : stop - base], dtype=">u2").tobytes())
            a = stop
        return b"".join(out)

    def write(self, dev: _Device, addr: int, values: Sequence[int]) -> int | None:
        """Apply a register write; returns an exception code, None when done, or the lockstep step asked for."""
        end = addr + len(values)
        t = self._table(addr)
        if t is None or end > t.end or t.access is Access.READ:
            return ILLEGAL_ADDRESS
        core = self.core
        if t.access is Access.COMMISSIONING:
            dev.upload[addr - t.base : end - t.base] = values
            if end == t.end:  # the CRC register completes an upload
                inter = core.network.intersections[dev.row]
                seq, plan, reason = decode_plan_table(FALLBACK_UPLOAD, dev.upload.tolist(), inter)
                if plan is None and not seq:  # a corrupt upload is refused under the number it carries
                    seq = int(dev.upload[0])
                core.submit_fallback_plan(dev.row, seq, plan, reason)
            return None
        dev.command[addr - COMMAND.base : end - COMMAND.base] = values
        if addr <= _HB < end:
            core.submit_heartbeat(dev.row, int(dev.command[_HB - COMMAND.base]))
        step = int(dev.command[_STEP - COMMAND.base]) if addr <= _STEP < end else 0
        if end > BLOCK_START:
            inter = core.network.intersections[dev.row]
            words = dev.command[BLOCK_START - COMMAND.base :].tolist()
            assert len(words) == BLOCK_LEN
            block, reason = decode_command_block(words, inter)
            if block is None:  # half-written or corrupt: reject under the sequence number it carries
                seq = int(dev.command[COMMAND.offset("seq")])
                block = CommandBlock(seq=seq, kind=int(dev.command[COMMAND.offset("kind")]))
            core.submit_command(dev.row, block, reason)
        if step and core.config.lockstep:
            core.submit_step(dev.row, step)
            return -int(step)  # negative: defer the reply until the controller published this tick
        return None


@functools.cache
def _answer_frame(count: int) -> np.dtype:
    """A function-23 answer carrying ``count`` registers, MBAP header included, as one record."""
    return np.dtype(
        [
            ("tid", ">u2"),
            ("pid", ">u2"),
            ("len", ">u2"),
            ("unit", "u1"),
            ("fc", "u1"),
            ("nbytes", "u1"),
            ("data", ">u2", (count,)),
        ]
    )


class _Connection(asyncio.Protocol):
    def __init__(self, server: ModbusFieldServer) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.queue: asyncio.Queue[tuple[int, int, bytes | asyncio.Future]] | None = None
        self.worker: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport, TCP or TLS (asyncio's or uvloop's: the latter does not subclass the ABC).
        self.transport = stream = cast(asyncio.Transport, transport)
        self.server._conns.add(self)
        role = self.server.required_role
        if role is not None:
            # Modbus/TCP Security role-based authorisation: the client certificate must carry the role.
            sslobj = transport.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
            if peer_role(der) != role:
                self.server.refused_peers += 1
                log.warning("refusing a client without the role %r in its certificate", role)
                stream.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._conns.discard(self)
        if self.worker is not None:
            self.worker.cancel()
        self.transport = None

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        # Every complete request of this read is answered in one write: a central that polls a
        # gateway's units pipelines them on one connection, and one write per answer would cost
        # a system call per controller.
        buf = self.buf + data if self.buf else data
        if self.queue is None:  # (a deferred lockstep answer keeps the order through the worker)
            used, answers = self.server.answer_status_batch(buf)
            if used:
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(answers)
                buf = buf[used:]
        out: list[bytes] = []
        pos, n = 0, len(buf)
        try:
            while n - pos >= 7:
                tid, pid, length, uid = struct.unpack_from(">HHHB", buf, pos)
                if pid != 0 or not 2 <= length <= _MAX_ADU - 6:
                    self.server.malformed += 1
                    self.buf = b""
                    self.abort()
                    return
                end = pos + 6 + length
                if end > n:
                    break
                frame, pos = buf[pos:end], end
                # Every request is applied when it arrives (a lockstep step request reaches the
                # controller at once, whatever waits before it on the connection); the answers
                # leave in request order.
                reply = self.handle(tid, uid, frame[7:])
                if self.queue is not None:
                    self.queue.put_nowait((tid, uid, reply))
                elif isinstance(reply, bytes):
                    out.append(struct.pack(">HHHB", tid, 0, len(reply) + 1, uid) + reply)
                else:
                    # A deferred (lockstep) reply: from now on this connection answers in order via a worker.
                    if out and self.transport is not None:
                        self.transport.write(b"".join(out))
                        out = []
                    self.queue = asyncio.Queue()
                    self.queue.put_nowait((tid, uid, reply))
                    self.worker = asyncio.get_running_loop().create_task(self._drain())
            self.buf = buf[pos:]
        finally:
            if out and self.transport is not None and not self.transport.is_closing():
                self.transport.write(b"".join(out))

    async def _drain(self) -> None:
        try:
            assert self.queue is not None
            while not self.queue.empty():
                tid, uid, reply = self.queue.get_nowait()
                self.send(tid, uid, reply if isinstance(reply, bytes) else await reply)
        finally:
            self.worker = None
            self.queue = None

    def send(self, tid: int, uid: int, pdu: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, uid) + pdu)

    def handle(self, tid: int, uid: int, pdu: bytes) -> bytes | asyncio.Future:
        srv = self.server
        srv.requests += 1
        if not pdu:
            return self._refused(uid, bytes([0x80, ILLEGAL_FUNCTION]), pdu)
        fc = pdu[0]
        dev = srv.devices.get(uid)
        if dev is None:
            return self._refused(uid, bytes([fc | 0x80, GATEWAY_NO_RESPONSE]), pdu)
        try:
            reply = self._dispatch(fc, dev, pdu)
        except (struct.error, IndexError, ValueError):
            srv.malformed += 1
            reply = bytes([fc | 0x80, ILLEGAL_VALUE])
        if isinstance(reply, bytes) and len(reply) == 2 and reply[0] & 0x80:
            return self._refused(uid, reply, pdu)
        return reply

    def _refused(self, uid: int, reply: bytes, pdu: bytes) -> bytes:
        """Log a request answered with an exception, with its source (the controller's state is unchanged)."""
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        source = f"{peer[0]}:{peer[1]}" if peer else "unknown"
        what = f"function {pdu[0]}" if pdu else "an empty request"
        if len(pdu) >= 5:
            addr, n = struct.unpack_from(">HH", pdu, 1)
            what += f" at {addr} ({'count' if pdu[0] in (3, 4, 16, 23) else 'value'} {n})"
        log.warning(
            "Modbus unit %d: %s from %s refused: exception %02d %s",
            uid,
            what,
            source,
            reply[1],
            EXCEPTION_NAMES.get(reply[1], ""),
        )
        return reply

    def _dispatch(self, fc: int, dev: _Device, pdu: bytes) -> bytes | asyncio.Future:
        srv = self.server

        def exc(code: int) -> bytes:
            return bytes([fc | 0x80, code])

        if fc in (3, 4):
            addr, count = struct.unpack_from(">HH", pdu, 1)
            if not 1 <= count <= MAX_READ:
                return exc(ILLEGAL_VALUE)
            data = srv.read(dev, addr, count)
            return exc(data) if isinstance(data, int) else bytes([fc, len(data)]) + data
        if fc == 6:
            addr, value = struct.unpack_from(">HH", pdu, 1)
            r = srv.write(dev, addr, [value])
            if isinstance(r, int) and r > 0:
                return exc(r)
            return self._maybe_defer(r, pdu[:5])
        if fc == 16:
            addr, count, nbytes = struct.unpack_from(">HHB", pdu, 1)
            if not 1 <= count <= 123 or nbytes != 2 * count or len(pdu) != 6 + nbytes:
                return exc(ILLEGAL_VALUE)
            values = struct.unpack_from(f">{count}H", pdu, 6)
            r = srv.write(dev, addr, values)
            if isinstance(r, int) and r > 0:
                return exc(r)
            return self._maybe_defer(r, bytes([16]) + struct.pack(">HH", addr, count))
        if fc == 23:
            raddr, rcount, waddr, wcount, nbytes = struct.unpack_from(">HHHHB", pdu, 1)
            if not 1 <= rcount <= MAX_READ or not 1 <= wcount <= 121 or nbytes != 2 * wcount or len(pdu) != 10 + nbytes:
                return exc(ILLEGAL_VALUE)
            values = struct.unpack_from(f">{wcount}H", pdu, 10)
            r = srv.write(dev, waddr, values)
            if isinstance(r, int) and r > 0:
                return exc(r)

            def read_reply() -> bytes:
                data = srv.read(dev, raddr, rcount)
                return exc(data) if isinstance(data, int) else bytes([23, len(data)]) + data

            if r is None:
                return read_reply()
            return self._defer(-r, read_reply)
        return exc(ILLEGAL_FUNCTION)

    def _maybe_defer(self, r: int | None, reply: bytes) -> bytes | asyncio.Future:
        if r is None:
            return reply
        return self._defer(-r, lambda: reply)

    def _defer(self, step: int, make_reply: Callable[[], bytes]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def ready() -> None:  # runs in this loop (batched by the controller)
            if not fut.done():
                fut.set_result(make_reply())

        self.server.core.add_step_waiter(step, ready, loop)
        return fut
