"""SNMP managers for the central side: GET and SET, with timeouts and retries.

Two interchangeable transports behind one interface (``get``, ``set``):

* :class:`FastSnmpClient` - SNMPv1/v2c on one UDP socket shared by every
  controller (request ids demultiplex the answers), with the lean codec of
  :mod:`field_io.ntcip.ber`. The one a central polling hundreds of controllers
  a second uses.
* :class:`PysnmpClient` - pysnmp 7's asyncio high-level API
  (``get_cmd``/``set_cmd``, ``await UdpTransportTarget.create(...)``), for
  SNMPv3 USM authPriv (HMAC-SHA-2, AES) and as a cross-check of the fast path.

Both refuse, before anything is sent, every SET that is not on the list of
writes central may make (:func:`field_io.security.check_snmp_set`). Errors:
no answer -> :class:`~field_io.errors.DeviceTimeout`; an error status ->
:class:`~field_io.errors.DeviceException` (``code`` = RFC 3416 error-status,
``index`` = the varbind); an unparseable answer ->
:class:`~field_io.errors.ProtocolError`; a security failure (wrong key, wrong
user) -> :class:`~field_io.errors.DeviceUnreachable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from field_io.endpoints import Endpoint
from field_io.errors import DeviceException, DeviceTimeout, DeviceUnreachable, ProtocolError
from field_io.ntcip import ber
from field_io.security import check_snmp_set

__all__ = ["SnmpClient", "FastSnmpClient", "PysnmpClient", "snmp_client", "SnmpErrorStatus", "BatchGet", "PreparedGet"]

#: An SNMP agent drops a request with a wrong community, version or v3 user without a word (RFC 3584
#: §4.1, RFC 3414 §3.2): silence means "check those" as often as "check the cable".
_SILENT_HINT = "check the address and port, the SNMP version and the community or SNMPv3 user"

OID = tuple[int, ...]


class SnmpErrorStatus(DeviceException):
    """An SNMP error status in a response (``index``: 0-based varbind)."""

    def __init__(self, message: str, *, code: int, index: int, where: str | None = None) -> None:
        self.index = index
        super().__init__(message, code=code, where=where)


class SnmpClient:
    """Interface: ``await get(ep, oids)`` -> values; ``await set(ep, varbinds)``; ``close()``."""

    async def open(self) -> None:  # pragma: no cover - interface
        pass

    async def get(self, ep: Endpoint, oids: Sequence[OID]) -> list[ber.Value]:  # pragma: no cover - interface
        raise NotImplementedError

    async def set(
        self, ep: Endpoint, varbinds: Sequence[tuple[OID, ber.Value]], *, commissioning: bool = False
    ) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        pass


def _error(ep: Endpoint, status: int, index: int, names: Sequence[str] | None = None) -> SnmpErrorStatus:
    what = ber.ERROR_NAMES.get(status, f"error {status}")
    obj = ""
    if names is not None and 0 < index <= len(names):
        obj = f" on {names[index - 1]}"
    return SnmpErrorStatus(f"answers {what}{obj}", code=status, index=index - 1, where=ep.label)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: FastSnmpClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client._received(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        self.client.icmp_errors += 1


class FastSnmpClient(SnmpClient):
    """SNMPv1/v2c manager on one UDP socket (see the module docstring)."""

    def __init__(self, *, bind_host: str = "0.0.0.0", buffer_bytes: int = 4 << 20) -> None:
        self.bind_host = bind_host
        self.buffer_bytes = buffer_bytes
        self._transport: asyncio.DatagramTransport | None = None
        self._opening: asyncio.Future[None] | None = None
        self._pending: dict[int, tuple[asyncio.Future[bytes], tuple[str, int]]] = {}
        self._templates: dict[tuple[OID, ...], ber.GetTemplate] = {}
        self._ids = itertools.count(1)
        self.malformed = 0
        self.icmp_errors = 0
        self.sent = 0

    async def open(self) -> None:
        if self._transport is not None:
            return
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_future()
            try:
                self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(self.bind_host, 0)
                )
                sock = self._transport.get_extra_info("socket")
                for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    # A burst of answers from hundreds of controllers must not overflow the default
                    # ~200 kB buffer (the kernel caps this at net.core.rmem_max / wmem_max).
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, opt, self.buffer_bytes)
            finally:
                self._opening.set_result(None)
        else:  # another request is opening the socket: wait for it (one socket for all controllers)
            await asyncio.shield(self._opening)

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            rid = ber.split_request(data)[3]
        except ber.BerError:
            self.malformed += 1
            return
        hit = self._pending.get(rid)
        if hit is None:
            return  # late or unsolicited
        fut, dest = hit
        if addr[1] != dest[1]:
            return  # not from the controller asked
        if not fut.done():
            fut.set_result(data)

    async def _send_wait(self, ep: Endpoint, rid: int, data: bytes) -> bytes:
        await self.open()
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        dest = (ep.host, ep.port)
        self._pending[rid] = (fut, dest)
        tries = [ep.retries + 1]
        transport = self._transport
        timers: list[asyncio.TimerHandle | None] = [None]

        def send() -> None:
            # One timer per try (cheaper than asyncio.wait_for): resend, or give up after the last try.
            tries[0] -= 1
            transport.sendto(data, dest)
            self.sent += 1
            timers[0] = loop.call_later(ep.timeout_s, expire)

        def expire() -> None:
            if fut.done():
                return
            if tries[0] > 0:
                send()
            else:
                fut.set_exception(
                    DeviceTimeout(
                        f"no SNMP answer within {ep.timeout_s:g} s x {ep.retries + 1} tries ({_SILENT_HINT})",
                        where=ep.label,
                    )
                )

        try:
            send()
            return await fut
        finally:
            self._pending.pop(rid, None)
            if timers[0] is not None:
                timers[0].cancel()

    async def _request(
        self, ep: Endpoint, pdu_type: int, varbinds: Sequence[tuple[OID, ber.Value]], community: str
    ) -> ber.Message:
        rid = next(self._ids) & 0x7FFFFFFF
        version = 0 if ep.snmp.version == 1 else 1
        data = ber.encode_message(ber.Message(version, community.encode(), pdu_type, rid, 0, 0, tuple(varbinds)))
        try:
            return ber.decode_message(await self._send_wait(ep, rid, data))
        except ber.BerError as e:
            raise ProtocolError(f"unparseable SNMP answer: {e.message}", where=ep.label) from None

    async def get_ints(self, ep: Endpoint, oids: Sequence[OID]) -> list[int] | list[ber.Value]:
        """Like :meth:`get`, but plain ints when every answer is an INTEGER (the fast path of a status poll)."""
        tpl = self._template(oids)
        rid = next(self._ids) & 0x7FFFFFFF
        version = 0 if ep.snmp.version == 1 else 1
        data = await self._send_wait(ep, rid, tpl.request(version, ep.snmp.community.encode(), rid))
        try:
            _rid, status, index, ints = tpl.ints(data)
            if status:
                raise _error(ep, status, index)
            if ints is not None:
                return ints
            return tpl.values(data)[3]
        except ber.BerError as e:
            raise ProtocolError(e.message, where=ep.label) from None

    def _template(self, oids: Sequence[OID]) -> ber.GetTemplate:
        key = oids if isinstance(oids, tuple) else tuple(oids)
        tpl = self._templates.get(key)
        if tpl is None:
            if len(self._templates) > 10_000:
                self._templates.clear()
            tpl = self._templates[key] = ber.GetTemplate(key)
        return tpl

    async def get(self, ep: Endpoint, oids: Sequence[OID]) -> list[ber.Value]:
        key = oids if isinstance(oids, tuple) else tuple(oids)
        tpl = self._templates.get(key)
        if tpl is None:
            if len(self._templates) > 10_000:
                self._templates.clear()
            tpl = self._templates[key] = ber.GetTemplate(key)
        rid = next(self._ids) & 0x7FFFFFFF
        version = 0 if ep.snmp.version == 1 else 1
        data = await self._send_wait(ep, rid, tpl.request(version, ep.snmp.community.encode(), rid))
        try:
            _rid, status, index, values = tpl.values(data)
        except ber.BerError as e:
            raise ProtocolError(e.message, where=ep.label) from None
        if status:
            raise _error(ep, status, index)
        return values

    async def set(
        self, ep: Endpoint, varbinds: Sequence[tuple[OID, ber.Value]], *, commissioning: bool = False
    ) -> None:
        check_snmp_set(((o, v[1]) for o, v in varbinds), commissioning=commissioning)
        msg = await self._request(ep, ber.SET, varbinds, ep.snmp.set_community)
        if msg.error_status:
            raise _error(ep, msg.error_status, msg.error_index)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._opening = None


#: Request ids of batched GETs: 0x01000000..0x7effffff are exactly the values whose minimal BER encoding
#: (X.690 §8.3.2) is four bytes, so a pre-encoded request is patched in place.
_RID_LO, _RID_HI = 0x0100_0000, 0x7EFF_FFFF


@dataclass(frozen=True)
class PreparedGet:
    """One controller's request, encoded once: only the four request-id bytes change per send.

    ``template``: the GET's template, which decodes its answer (None for a prepared SET).
    """

    data: bytearray
    rid_at: int  # where the request id's four bytes start
    template: ber.GetTemplate | None
    dest: tuple[str, int]


class BatchGet:
    """The status GETs (or command SETs) of many controllers at once, on one UDP socket (SNMPv1/v2c).

    A central asks every controller the same question every tick. Per poll
    this sends each controller's pre-encoded request (:class:`PreparedGet`,
    request ids ``base + k`` so an answer finds its slot by subtraction),
    keeps at most ``window`` requests outstanding (the answers' burst must
    fit the socket's receive buffer), and collects the answers as raw bytes
    for a batch decode. The socket is read by a reader callback that drains
    every datagram waiting: asyncio's datagram transport reads one datagram
    per event-loop iteration, an ``epoll`` call and a loop pass per
    controller, which was a third of central's CPU at a few hundred
    controllers. No task, future or timer is created per controller.
    """

    def __init__(self, *, window: int = 256, bind_host: str = "0.0.0.0", buffer_bytes: int = 4 << 20) -> None:
        self.window = window
        self.bind_host = bind_host
        self.buffer_bytes = buffer_bytes
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next = _RID_LO
        self._base = 0
        self._answers: list[bytes | None] = []
        self._items: Sequence[PreparedGet] = ()
        self._sent = 0
        self._left = 0
        self._waiter: asyncio.Future[None] | None = None
        self._on_answer: Callable[[int, bytes], None] | None = None
        self._templates: dict[tuple[tuple[int, ...], ...], ber.GetTemplate] = {}
        self.malformed = 0
        self.sent = 0

    def prepare(self, ep: Endpoint, oids: Sequence[OID]) -> PreparedGet:
        key = tuple(oids)
        tpl = self._templates.get(key)
        if tpl is None:
            tpl = self._templates[key] = ber.GetTemplate(key)
        version = 0 if ep.snmp.version == 1 else 1
        data, at = tpl.request_slot(version, ep.snmp.community.encode())
        return PreparedGet(data, at, tpl, (ep.host, ep.port))

    def prepare_set(
        self, ep: Endpoint, varbinds: Sequence[tuple[OID, ber.Value]], *, commissioning: bool = False
    ) -> PreparedGet:
        """A SET encoded once, refused here as :meth:`FastSnmpClient.set` refuses it (``check_snmp_set``)."""
        check_snmp_set(((o, v[1]) for o, v in varbinds), commissioning=commissioning)
        version = 0 if ep.snmp.version == 1 else 1
        vbl = ber.encode_varbinds(varbinds)
        data, at = ber.request_slot(version, ep.snmp.set_community.encode(), ber.SET, vbl)
        return PreparedGet(data, at, None, (ep.host, ep.port))

    def _open(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, self.buffer_bytes)
        sock.bind((self.bind_host, 0))
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._drain)
        self._sock = sock

    def _send_more(self) -> None:
        sock, items = self._sock, self._items
        assert sock is not None
        n = len(items)
        answered = n - self._left
        while self._sent < n and self._sent - answered < self.window:
            k = self._sent
            it = items[k]
            rid = self._base + k
            it.data[it.rid_at : it.rid_at + 4] = rid.to_bytes(4, "big")
            try:
                sock.sendto(it.data, it.dest)
            except (BlockingIOError, InterruptedError):
                break  # the send buffer is full: the rest go out as answers free it
            except OSError:
                pass  # unreachable right now: it times out like a lost datagram
            self._sent += 1
            self.sent += 1

    def _drain(self) -> None:
        sock = self._sock
        if sock is None:
            return
        answers, base, n = self._answers, self._base, len(self._answers)
        fresh: list[int] = []
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            rid = _response_rid(data)
            if rid is None:
                self.malformed += 1
                continue
            k = rid - base
            if 0 <= k < n and answers[k] is None and addr[1] == self._items[k].dest[1]:
                answers[k] = data
                fresh.append(k)
        if fresh:
            got = len(fresh)
            self._left -= got
            if self._sent < len(self._items):
                self._send_more()  # refill the window first: the next requests are on their way while ...
            on_answer = self._on_answer
            if on_answer is not None:
                for k in fresh:  # ... these answers are read
                    on_answer(k, answers[k])  # type: ignore[arg-type]  # set just above
            if self._left <= 0 and self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    async def poll(
        self,
        items: Sequence[PreparedGet],
        timeout_s: float,
        on_answer: Callable[[int, bytes], None] | None = None,
    ) -> list[bytes | None]:
        """Each controller's raw answer (None: no answer within ``timeout_s`` of the batch's start).

        ``on_answer(k, data)``, when given, is called as item ``k``'s answer arrives (after the
        window is refilled), so that the caller reads answers while the rest are on their way
        instead of all of them after the last; it must not raise.
        """
        self._open()
        n = len(items)
        if n == 0:
            return []
        if self._next + n > _RID_HI:
            self._next = _RID_LO
        self._base, self._next = self._next, self._next + n
        self._items, self._answers, self._sent, self._left = items, [None] * n, 0, n
        self._on_answer = on_answer
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        def expire() -> None:
            if not waiter.done():
                waiter.set_result(None)

        timer = loop.call_later(timeout_s, expire)
        try:
            self._send_more()
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
            self._on_answer = None
        answers, self._answers, self._items = self._answers, [], ()
        return answers

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


def _response_rid(data: bytes) -> int | None:
    """The request id of an SNMPv1/v2c Response, read at its fixed place after the community (None: not one)."""
    try:
        if data[0] != 0x30:
            return None
        i = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
        if data[i] != ber.INTEGER:
            return None
        i += 2 + data[i + 1]
        if data[i] != ber.OCTET_STRING or data[i + 1] & 0x80:
            return None
        i += 2 + data[i + 1]
        if data[i] != ber.RESPONSE:
            return None
        i += 2 + (data[i + 1] & 0x7F if data[i + 1] & 0x80 else 0)
        if data[i] != ber.INTEGER or not 1 <= data[i + 1] <= 4:
            return None
        return int.from_bytes(data[i + 2 : i + 2 + data[i + 1]], "big")
    except IndexError:
        return None


class PysnmpClient(SnmpClient):
    """pysnmp 7 high-level asyncio API (v1, v2c and v3 USM authPriv)."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._targets: dict[tuple[str, int, float, int], Any] = {}

    async def open(self) -> None:
        if self._engine is None:
            from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

            self._engine = SnmpEngine()

    def _auth(self, ep: Endpoint, *, write: bool) -> Any:
        from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData

        s = ep.snmp
        if s.version in (1, 2):
            return CommunityData(s.set_community if write else s.community, mpModel=0 if s.version == 1 else 1)
        from pysnmp.entity import config

        auth = {
            "SHA": config.USM_AUTH_HMAC96_SHA,
            "SHA-256": config.USM_AUTH_HMAC192_SHA256,
            "SHA-384": config.USM_AUTH_HMAC256_SHA384,
            "SHA-512": config.USM_AUTH_HMAC384_SHA512,
        }[s.auth_protocol]
        priv = {
            "AES-128": config.USM_PRIV_CFB128_AES,
            "AES-192": config.USM_PRIV_CFB192_AES,
            "AES-256": config.USM_PRIV_CFB256_AES,
        }[s.priv_protocol]
        return UsmUserData(s.user, s.auth_key, s.priv_key, authProtocol=auth, privProtocol=priv)

    async def _target(self, ep: Endpoint) -> Any:
        from pysnmp.hlapi.v3arch.asyncio import UdpTransportTarget

        key = (ep.host, ep.port, ep.timeout_s, ep.retries)
        t = self._targets.get(key)
        if t is None:
            t = await UdpTransportTarget.create((ep.host, ep.port), timeout=ep.timeout_s, retries=ep.retries)
            self._targets[key] = t
        return t

    def _raise(self, ep: Endpoint, ei: Any, es: Any, eidx: Any) -> None:
        if ei:
            text = str(ei)
            if "timeout" in text.lower() or "no snmp response" in text.lower():
                raise DeviceTimeout(f"no SNMP answer ({text}; {_SILENT_HINT})", where=ep.label)
            raise DeviceUnreachable(f"SNMP security/transport failure: {text}", where=ep.label)
        if es:
            code = int(es)
            raise SnmpErrorStatus(
                f"answers {ber.ERROR_NAMES.get(code, code)}", code=code, index=int(eidx) - 1, where=ep.label
            )

    async def get(self, ep: Endpoint, oids: Sequence[OID]) -> list[ber.Value]:
        from pysnmp.hlapi.v3arch.asyncio import ContextData, ObjectIdentity, ObjectType, get_cmd

        await self.open()
        objs = [ObjectType(ObjectIdentity(o)) for o in oids]
        ei, es, eidx, vbs = await get_cmd(
            self._engine, self._auth(ep, write=False), await self._target(ep), ContextData(), *objs, lookupMib=False
        )
        self._raise(ep, ei, es, eidx)
        if len(vbs) != len(oids):
            raise ProtocolError("answered other objects than asked", where=ep.label)
        return [_from_pysnmp(v) for _o, v in vbs]

    async def set(
        self, ep: Endpoint, varbinds: Sequence[tuple[OID, ber.Value]], *, commissioning: bool = False
    ) -> None:
        from pysnmp.hlapi.v3arch.asyncio import ContextData, ObjectIdentity, ObjectType, set_cmd
        from pysnmp.proto.rfc1902 import Integer32, OctetString

        check_snmp_set(((o, v[1]) for o, v in varbinds), commissioning=commissioning)
        await self.open()
        objs = [
            ObjectType(ObjectIdentity(o), Integer32(v[1]) if v[0] == ber.INTEGER else OctetString(v[1]))
            for o, v in varbinds
        ]
        ei, es, eidx, _vbs = await set_cmd(
            self._engine, self._auth(ep, write=True), await self._target(ep), ContextData(), *objs, lookupMib=False
        )
        self._raise(ep, ei, es, eidx)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None


def _from_pysnmp(v: Any) -> ber.Value:
    name = v.__class__.__name__
    if name in ("NoSuchInstance", "NoSuchObject", "EndOfMibView"):
        return (
            {"NoSuchInstance": ber.NO_SUCH_INSTANCE, "NoSuchObject": ber.NO_SUCH_OBJECT}.get(name, ber.END_OF_MIB_VIEW),
            None,
        )
    if name in ("Integer32", "Integer", "Unsigned32"):
        return (ber.INTEGER, int(v))
    if name in ("Counter32", "Gauge32", "TimeTicks", "Counter64"):
        return (
            {"Counter32": ber.COUNTER32, "Gauge32": ber.GAUGE32, "TimeTicks": ber.TIMETICKS}.get(name, ber.COUNTER64),
            int(v),
        )
    if name == "ObjectIdentifier":
        return (ber.OID, tuple(v))
    if name in ("OctetString", "IpAddress", "Opaque", "DisplayString"):
        return (ber.OCTET_STRING, bytes(v))
    if name == "Null":
        return (ber.NULL, None)
    return (ber.OCTET_STRING, bytes(str(v), "utf-8"))


def snmp_client(kind: str = "fast") -> SnmpClient:
    """``fast`` (v1/v2c, lean codec) or ``pysnmp`` (any version)."""
    if kind == "fast":
        return FastSnmpClient()
    if kind == "pysnmp":
        return PysnmpClient()
    raise ValueError(f"unknown SNMP client {kind!r}")
