"""Central's Modbus TCP transport: one lean asyncio client connection per controller.

Modbus Messaging on TCP/IP v1.0b: every request is an MBAP header
(transaction id, protocol id 0, length, unit id) and a PDU; the answer echoes
the transaction id and carries the same function code, or the function code
with bit 7 set and one exception code (Modbus Application Protocol v1.1b3
§7). Central sends one request at a time per controller, so a connection
needs no more state than the one request in flight.

Why not pymodbus's client here: the poll loop runs one transaction per
controller per second, and at thousands of controllers the client's own
bookkeeping (transaction manager, framer objects, a task per request) costs
more than the frame itself. This client is the same wire format with a future
and a timer per request; pymodbus stays the reference (the tests talk to our
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
from collections.abc import Callable
from typing import Any

__all__ = [
    "ModbusTcpClient",
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


class ModbusTransportError(Exception):
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


class _Protocol(asyncio.Protocol):
    """The socket side: frames bytes into ADUs and resolves the request in flight."""

    def __init__(self, client: ModbusTcpClient) -> None:
        self.client = client
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while len(buf) >= 7:
            tid, pid, length, _unit = _MBAP.unpack_from(buf)
            if pid != 0 or not 2 <= length <= MAX_FRAME - 6:
                self.buf = b""
                self.client._malformed(f"protocol id {pid}, length {length}")
                return
            end = 6 + length
            if len(buf) < end:
                break
            self.client._answer(tid, buf[7:end])
            buf = buf[end:]
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(exc)


class ModbusTcpClient:
    """One connection to one controller (TCP, or TLS when ``sslctx`` is given: Modbus/TCP Security)."""

    def __init__(
        self, host: str, port: int, *, timeout_s: float, retries: int, sslctx: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s, self.retries = timeout_s, retries
        self.sslctx = sslctx
        self._transport: asyncio.Transport | None = None
        self._pending: asyncio.Future[bytes] | None = None
        self._callback: Callable[[bytes | None], None] | None = None  # a batched request (see send)
        self._tid = 0
        self._want_tid = -1

    @property
    def idle(self) -> bool:
        """No request in flight."""
        return self._pending is None and self._callback is None

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

    def send(self, unit: int, pdu: bytes, callback: Callable[[bytes | None], None]) -> None:
        """Send one PDU without a task: ``callback(answer)`` on the answer, ``callback(None)`` if the connection
        fails. No timeout and no retry here: the caller times the whole batch and retries the stragglers
        through :meth:`request`, whose new transaction id makes a late answer to this one harmless."""
        t = self._transport
        if t is None or t.is_closing():
            callback(None)
            return
        self._tid = tid = (self._tid + 1) & 0xFFFF
        self._want_tid = tid
        self._callback = callback
        t.write(_MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu)

    def forget(self) -> None:
        """Give up a batched request (its batch timed out): a late answer is dropped."""
        self._callback = None
        self._want_tid = -1

    async def _once(self, unit: int, pdu: bytes) -> bytes | None:
        t = self._transport
        if t is None or t.is_closing():
            raise ModbusConnectionLost("not connected")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        self._callback = None
        self._tid = tid = (self._tid + 1) & 0xFFFF
        self._want_tid = tid
        self._pending = fut
        t.write(_MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu)
        timer = loop.call_later(self.timeout_s, self._timeout, fut)
        try:
            return await fut
        except TimeoutError:
            return None
        finally:
            timer.cancel()
            if self._pending is fut:
                self._pending = None

    # ---- called by the protocol ------------------------------------------------------------------------
    @staticmethod
    def _timeout(fut: asyncio.Future[bytes]) -> None:
        if not fut.done():
            fut.set_exception(TimeoutError())

    def _answer(self, tid: int, pdu: bytes) -> None:
        cb = self._callback
        if cb is not None and tid == self._want_tid:
            self._callback = None
            cb(pdu)
            return
        fut = self._pending
        if fut is not None and tid == self._want_tid and not fut.done():
            fut.set_result(pdu)
        # an answer to a request that already timed out (or no request): dropped

    def _malformed(self, why: str) -> None:
        t, self._transport = self._transport, None
        if t is not None:
            t.abort()
        self._fail(ModbusMalformed(f"malformed frame ({why})"))

    def _lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(ModbusConnectionLost(str(exc) if exc else "closed by the controller"))

    def _fail(self, exc: Exception) -> None:
        cb, self._callback = self._callback, None
        if cb is not None:
            cb(None)
        fut = self._pending
        if fut is not None and not fut.done():
            fut.set_exception(exc)


def read_pdu(address: int, count: int) -> bytes:
    """Function 3, read holding registers."""
    return struct.pack(">BHH", 3, address, count)


def write_pdu(address: int, values: list[int] | tuple[int, ...]) -> bytes:
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
