"""Central's Modbus TCP transport: one lean asyncio client connection per controller address.

Modbus Messaging on TCP/IP v1.0b: every request is an MBAP header
(transaction id, protocol id 0, length, unit id) and a PDU; the answer echoes
the transaction id and carries the same function code, or the function code
with bit 7 set and one exception code (Modbus Application Protocol v1.1b3
§7). Central sends one request at a time per controller; the controllers
behind one address (a gateway's unit ids) share the connection, their
transactions in flight told apart by transaction id.

Why not pymodbus's client here: the poll loop runs one transaction per
controller per second, and at thousands of controllers the client's own
bookkeeping (transaction manager, framer objects, a task per request) costs
more than the frame itself. This client is the same wire format with a future
and a timer per request, or, for the tick's poll, a callback per request and
one write per connection; pymodbus stays the reference (the tests talk to our
server with it, and commissioning uses it), and the backend's golden-vector
tests hold both to the same bytes.

Failures are exceptions of this module, worded by the backend:
:class:`ModbusTimeout` (no valid answer in ``timeout_s`` x ``retries + 1``
tries), :class:`ModbusConnectionLost`, :class:`ModbusMalformed` (the stream
cannot be resynchronised: the connection is closed), and
:class:`ModbusExceptionAnswer` (the device answered an exception code).
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from intersections.errors import FieldIOError

__all__ = [
    "ModbusTcpClient",
    "BatchReceiver",
    "ModbusTransportError",
    "ModbusTimeout",
    "ModbusConnectionLost",
    "ModbusMalformed",
    "ModbusExceptionAnswer",
    "MAX_FRAME",
    "read_pdu",
    "write_pdu",
    "read_write_pdu",
    "registers",
]

MAX_FRAME = 260  # MBAP (7) + PDU (253): the Modbus TCP ADU limit
_MBAP = struct.Struct(">HHHB")


class ModbusTransportError(FieldIOError):
    """A transaction failed; ``str(e)`` says how."""


class ModbusTimeout(ModbusTransportError):
    pass


class ModbusConnectionLost(ModbusTransportError):
    pass


class ModbusMalformed(ModbusTransportError):
    pass


class ModbusExceptionAnswer(ModbusTransportError):
    def __init__(self, code: int) -> None:
        super().__init__(f"exception {code:02d}")
        self.code = code


class BatchReceiver(Protocol):
    """Where the answers of a :meth:`ModbusTcpClient.begin_batch` go: ``answer(i, pdu)`` for the ``i``-th
    transaction id of the batch, ``lost()`` when the connection fails first."""

    def answer(self, i: int, pdu: bytes) -> None: ...

    def lost(self) -> None: ...


class _Protocol(asyncio.Protocol):
    """The socket side: frames bytes into ADUs and resolves the transactions in flight by transaction id."""

    def __init__(self, client: ModbusTcpClient) -> None:
        self.client = client
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport (asyncio's or uvloop's: the latter does not subclass the ABC).
        self.client._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        answer = self.client._answer
        n, pos = len(buf), 0
        while n - pos >= 7:
            tid, pid, length, _unit = _MBAP.unpack_from(buf, pos)
            if pid != 0 or not 2 <= length <= MAX_FRAME - 6:
                self.buf = b""
                self.client._malformed(f"protocol id {pid}, length {length}")
                return
            end = pos + 6 + length
            if end > n:
                break
            answer(tid, buf[pos + 7 : end])
            pos = end
        self.buf = buf[pos:] if pos < n else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(exc)


class ModbusTcpClient:
    """One connection (TCP, or TLS when ``sslctx`` is given: Modbus/TCP Security) to one controller or gateway.

    Transactions are pipelined: each carries its own transaction id, and
    answers are matched by it (Modbus Messaging on TCP/IP v1.0b §3.1.3, the
    transaction identifier "used for transaction pairing"), so the units of a
    gateway - several controllers behind one address, distinguished by unit id -
    share one connection, and a tick's requests to all of them go out in one
    write (:meth:`send_many`).
    """

    def __init__(
        self, host: str, port: int, *, timeout_s: float, retries: int, sslctx: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s, self.retries = timeout_s, retries
        self.sslctx = sslctx
        self._transport: asyncio.Transport | None = None
        # tid -> the future of a :meth:`request`, or the callback of a batched :meth:`send`
        self._inflight: dict[int, asyncio.Future[bytes] | Callable[[bytes | None], None]] = {}
        self._tid = 0
        # One batch of consecutive transaction ids (begin_batch): (first id, how many, receiver)
        self._batch: tuple[int, int, BatchReceiver] | None = None

    @property
    def idle(self) -> bool:
        """No transaction in flight."""
        return not self._inflight

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def connect(self) -> bool:
        """Open the connection; False when it is refused or times out (TLS failures raise: their reason matters)."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Protocol(self),
                    self.host,
                    self.port,
                    ssl=self.sslctx,
                    server_hostname=self.host if self.sslctx is not None else None,
                ),
                self.timeout_s,
            )
        except (ConnectionError, TimeoutError):
            return False
        except OSError as e:
            if isinstance(e, ssl.SSLError):
                raise
            return False  # no route, host unknown
        return True

    def close(self) -> None:
        """Abort at once (a TLS close would otherwise wait for a shutdown handshake)."""
        t, self._transport = self._transport, None
        if t is not None:
            t.abort()
        self._fail(ModbusConnectionLost("connection closed"))

    def _next_tid(self) -> int:
        tid = self._tid
        inflight, batch = self._inflight, self._batch
        for _ in range(0x10000):
            tid = (tid + 1) & 0xFFFF
            if tid not in inflight and (batch is None or (tid - batch[0]) & 0xFFFF >= batch[1]):
                break
        else:  # pragma: no cover - 65,536 transactions in flight on one connection
            raise ModbusTransportError("no free transaction id")
        self._tid = tid
        return tid

    async def request(self, unit: int, pdu: bytes) -> bytes:
        """Send one PDU to ``unit`` and return the answer's PDU (retried on timeout, not on an answer)."""
        fc = pdu[0]
        for _ in range(self.retries + 1):
            answer = await self._once(unit, pdu)
            if answer is None:
                continue  # timed out: try again
            if answer[0] == fc:
                return answer
            if answer[0] == fc | 0x80 and len(answer) >= 2:
                raise ModbusExceptionAnswer(answer[1])
            raise ModbusMalformed(f"function code {answer[0]} in the answer to function {fc}")
        raise ModbusTimeout(f"within {self.timeout_s:g} s x {self.retries + 1} tries")

    def send(self, unit: int, pdu: bytes, callback: Callable[[bytes | None], None]) -> int:
        """Send one PDU without a task: ``callback(answer)`` on the answer, ``callback(None)`` if the connection
        fails; returns the transaction id. No timeout and no retry here: the caller times the whole batch,
        :meth:`forget` s what did not answer and retries it through :meth:`request`, whose new transaction id
        makes a late answer to this one harmless."""
        return self.send_many([(unit, pdu, callback)])[0]

    def send_many(self, items: list[tuple[int, bytes, Callable[[bytes | None], None]]]) -> list[int]:
        """:meth:`send` for many (unit, pdu, callback) at once, in one write; their transaction ids."""
        t = self._transport
        if t is None or t.is_closing():
            for _u, _p, cb in items:
                cb(None)
            return [-1] * len(items)
        frames, tids = [], []
        pack, inflight, next_tid = _MBAP.pack, self._inflight, self._next_tid
        for unit, pdu, cb in items:
            tid = next_tid()
            inflight[tid] = cb
            tids.append(tid)
            frames.append(pack(tid, 0, len(pdu) + 1, unit))
            frames.append(pdu)
        t.write(b"".join(frames))
        return tids

    def begin_batch(self, n: int, receiver: BatchReceiver) -> int | None:
        """Reserve ``n`` consecutive transaction ids for one batch whose frames the caller builds as a whole
        (and writes with :meth:`write`); returns the first id (they wrap at 65,536), or None when not
        connected. Each answer goes to ``receiver.answer(i, pdu)``, ``i`` its id's place in the batch, with no
        per-transaction bookkeeping: at thousands of units per connection a future or a callback each costs
        more than the frame. One batch at a time: a new one, or :meth:`end_batch`, drops the last one's late
        answers. No timeout here: the caller times the batch and retries what is missing apart."""
        t = self._transport
        if t is None or t.is_closing():
            return None
        if not 0 < n <= 0xFFFF - len(self._inflight):
            raise ModbusTransportError(f"no {n} free transaction ids")
        self._batch = None
        first = (self._tid + 1) & 0xFFFF
        for _ in range(len(self._inflight) + 1):  # past every id in flight inside the range, if any
            clash = [tid for tid in self._inflight if (tid - first) & 0xFFFF < n]
            if not clash:
                break
            first = (max(clash, key=lambda tid: (tid - first) & 0xFFFF) + 1) & 0xFFFF
        else:  # pragma: no cover - ids in flight spread over the whole space
            raise ModbusTransportError(f"no {n} consecutive free transaction ids")
        self._batch = (first, n, receiver)
        self._tid = (first + n - 1) & 0xFFFF
        return first

    def end_batch(self) -> None:
        """Drop the current batch: its late answers are ignored from now on."""
        self._batch = None

    def write(self, data: bytes) -> None:
        """Write frames built by the caller (a batch's); nothing if the connection is gone (the batch's
        receiver learns it through ``lost``)."""
        t = self._transport
        if t is not None and not t.is_closing():
            t.write(data)

    def forget(self, tid: int) -> None:
        """Give up a batched transaction (its batch timed out): a late answer is dropped."""
        self._inflight.pop(tid, None)

    async def _once(self, unit: int, pdu: bytes) -> bytes | None:
        t = self._transport
        if t is None or t.is_closing():
            raise ModbusConnectionLost("not connected")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        tid = self._next_tid()
        self._inflight[tid] = fut
        t.write(_MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu)
        timer = loop.call_later(self.timeout_s, self._timeout, fut)
        try:
            return await fut
        except TimeoutError:
            return None
        finally:
            timer.cancel()
            if self._inflight.get(tid) is fut:
                del self._inflight[tid]

    # ---- called by the protocol ------------------------------------------------------------------------
    @staticmethod
    def _timeout(fut: asyncio.Future[bytes]) -> None:
        if not fut.done():
            fut.set_exception(TimeoutError())

    def _answer(self, tid: int, pdu: bytes) -> None:
        batch = self._batch
        if batch is not None:
            i = (tid - batch[0]) & 0xFFFF
            if i < batch[1]:
                batch[2].answer(i, pdu)
                return
        waiter = self._inflight.pop(tid, None)
        if waiter is None:
            return  # an answer to a transaction that already timed out (or to none): dropped
        if isinstance(waiter, asyncio.Future):
            if not waiter.done():
                waiter.set_result(pdu)
        else:
            waiter(pdu)

    def _malformed(self, why: str) -> None:
        t, self._transport = self._transport, None
        if t is not None:
            t.abort()
        self._fail(ModbusMalformed(f"malformed frame ({why})"))

    def _lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(ModbusConnectionLost(str(exc) if exc else "closed by the controller"))

    def _fail(self, exc: Exception) -> None:
        batch, self._batch = self._batch, None
        if batch is not None:
            batch[2].lost()
        waiting, self._inflight = self._inflight, {}
        for waiter in waiting.values():
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_exception(exc)
            else:
                waiter(None)


def read_pdu(address: int, count: int) -> bytes:
    """Function 3, read holding registers."""
    return struct.pack(">BHH", 3, address, count)


def write_pdu(address: int, values: Sequence[int]) -> bytes:
    """Function 16, write multiple registers."""
    n = len(values)
    return struct.pack(f">BHHB{n}H", 16, address, n, 2 * n, *values)


def read_write_pdu(read_address: int, read_count: int, write_address: int, values: Any) -> bytes:
    """Function 23, read/write multiple registers (the write happens first)."""
    n = len(values)
    return struct.pack(f">BHHHHB{n}H", 23, read_address, read_count, write_address, n, 2 * n, *values)


def registers(answer: bytes) -> list[int]:
    """The registers of a function 3/4/23 answer; :class:`ModbusMalformed` when its byte count does not fit."""
    n = answer[1] if len(answer) >= 2 else -1
    if n < 0 or n % 2 or len(answer) != 2 + n:
        raise ModbusMalformed(f"byte count {n} does not fit an answer of {len(answer) - 2} bytes")
    return list(struct.unpack_from(f">{n // 2}H", answer, 2))
