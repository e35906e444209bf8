"""A small BER codec for SNMPv1 / SNMPv2c messages (RFC 1157, RFC 3416, X.690 BER).

Why not pysnmp's own encoder for the hot path: measured here, pysnmp's
high-level ``get_cmd`` costs ~20 ms of CPU for a 53-varbind GET and its
pyasn1 encode + decode alone ~5 ms; a central that polls 500 controllers a
second cannot afford that. This codec handles exactly the SNMP message
shapes (``Message``, the PDUs, ``VarBind``) with OID byte caches, and is
tested against pysnmp's encoder and decoder both ways
(``tests/field_io/test_ntcip_ber.py``). SNMPv3 (USM authPriv) goes through
pysnmp (:mod:`field_io.ntcip.transport`).

Values are ``(tag, python value)``: :data:`INTEGER` and the application
integer types carry ``int``, :data:`OCTET_STRING` ``bytes``, :data:`OID` a
tuple, :data:`NULL` ``None``; the SNMPv2 exceptions
(:data:`NO_SUCH_OBJECT`, :data:`NO_SUCH_INSTANCE`, :data:`END_OF_MIB_VIEW`)
``None``. Anything malformed raises :class:`BerError` (a
:class:`~field_io.errors.ProtocolError`), never something else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from field_io.errors import ProtocolError

__all__ = [
    "BerError",
    "Message",
    "encode_message",
    "decode_message",
    "INTEGER",
    "OCTET_STRING",
    "NULL",
    "OID",
    "IP_ADDRESS",
    "COUNTER32",
    "GAUGE32",
    "TIMETICKS",
    "COUNTER64",
    "NO_SUCH_OBJECT",
    "NO_SUCH_INSTANCE",
    "END_OF_MIB_VIEW",
    "GET",
    "GET_NEXT",
    "RESPONSE",
    "SET",
    "GET_BULK",
    "ERROR_NAMES",
    "ErrorStatus",
    "VarbindEncoder",
    "GetTemplate",
    "request_slot",
    "encode_varbinds",
]

INTEGER, OCTET_STRING, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GET_NEXT, RESPONSE, SET, TRAP_V1, GET_BULK, INFORM, TRAP_V2, REPORT = (
    0xA0,
    0xA1,
    0xA2,
    0xA3,
    0xA4,
    0xA5,
    0xA6,
    0xA7,
    0xA8,
)
_PDUS = {GET, GET_NEXT, RESPONSE, SET, GET_BULK, INFORM, TRAP_V2, REPORT}
_INTS = {INTEGER, COUNTER32, GAUGE32, TIMETICKS, COUNTER64}
_EXC = {NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW}


class ErrorStatus(IntEnum):
    """RFC 3416 §3 error-status of a response PDU (0-5 are SNMPv1's); ERROR_NAMES spells them as the RFC does."""

    NO_ERROR = 0
    TOO_BIG = 1
    NO_SUCH_NAME = 2
    BAD_VALUE = 3
    READ_ONLY = 4
    GEN_ERR = 5
    NO_ACCESS = 6
    WRONG_TYPE = 7
    WRONG_LENGTH = 8
    WRONG_ENCODING = 9
    WRONG_VALUE = 10
    NO_CREATION = 11
    INCONSISTENT_VALUE = 12
    RESOURCE_UNAVAILABLE = 13
    COMMIT_FAILED = 14
    UNDO_FAILED = 15
    AUTHORIZATION_ERROR = 16
    NOT_WRITABLE = 17
    INCONSISTENT_NAME = 18


#: RFC 3416 error-status names by value, spelled as the RFC does (``NOT_WRITABLE`` -> ``notWritable``).
ERROR_NAMES = {
    int(s): "".join(w.capitalize() if k else w.lower() for k, w in enumerate(s.name.split("_"))) for s in ErrorStatus
}


class BerError(ProtocolError):
    pass


Value = tuple[int, Any]


@dataclass(frozen=True)
class Message:
    """An SNMPv1 (``version`` 0) or SNMPv2c (1) message with one PDU."""

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int = 0  # for GETBULK: non-repeaters
    error_index: int = 0  # for GETBULK: max-repetitions
    varbinds: tuple[tuple[tuple[int, ...], Value], ...] = ()


# ---- encoding --------------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(b),)) + b


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _len(len(body)) + body


def _int_body(v: int) -> bytes:
    return int(v).to_bytes(max(1, (int(v).bit_length() + 8) // 8), "big", signed=True)


def _uint_body(v: int) -> bytes:
    v = int(v)
    if v < 0:
        raise BerError(f"negative value {v} for an unsigned SNMP type")
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    return b"\x00" + b if b[0] & 0x80 else b


_OID_ENC: dict[tuple[int, ...], bytes] = {}


def _oid_tlv(oid: tuple[int, ...]) -> bytes:
    hit = _OID_ENC.get(oid)
    if hit is not None:
        return hit
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise BerError(f"invalid OID {oid}")
    arcs = [oid[0] * 40 + oid[1], *oid[2:]]
    out = bytearray()
    for a in arcs:
        if a < 0:
            raise BerError(f"invalid OID {oid}")
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out.extend(reversed(chunk))
    enc = _tlv(OID, bytes(out))
    if len(_OID_ENC) < 100_000:
        _OID_ENC[oid] = enc
    return enc


def _value(v: Value) -> bytes:
    tag, x = v
    if tag == INTEGER:
        return _tlv(INTEGER, _int_body(x))
    if tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        return _tlv(tag, _uint_body(x))
    if tag in (OCTET_STRING, IP_ADDRESS, OPAQUE):
        return _tlv(tag, bytes(x))
    if tag == OID:
        return _oid_tlv(tuple(x))
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return bytes((tag, 0))
    raise BerError(f"cannot encode value type 0x{tag:02x}")


_NULL_VB: dict[tuple[int, ...], bytes] = {}


def encode_message(m: Message) -> bytes:
    parts = []
    for oid, v in m.varbinds:
        if v[0] == NULL:
            vb = _NULL_VB.get(oid)
            if vb is None:
                vb = _tlv(SEQUENCE, _oid_tlv(oid) + b"\x05\x00")
                if len(_NULL_VB) < 100_000:
                    _NULL_VB[oid] = vb
            parts.append(vb)
        else:
            parts.append(_tlv(SEQUENCE, _oid_tlv(oid) + _value(v)))
    vbl = _tlv(SEQUENCE, b"".join(parts))
    pdu = _tlv(
        m.pdu_type,
        _tlv(INTEGER, _int_body(m.request_id))
        + _tlv(INTEGER, _int_body(m.error_status))
        + _tlv(INTEGER, _int_body(m.error_index))
        + vbl,
    )
    return _tlv(SEQUENCE, _tlv(INTEGER, _int_body(m.version)) + _tlv(OCTET_STRING, m.community) + pdu)


# ---- decoding ---------------------------------------------------------------------------------------------

_OID_DEC: dict[bytes, tuple[int, ...]] = {}


def _header(buf: bytes, i: int, end: int) -> tuple[int, int, int]:
    """(tag, body start, body end) of the TLV at ``i``."""
    if i + 2 > end:
        raise BerError("truncated TLV")
    tag = buf[i]
    n = buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or i + k > end:
            raise BerError("bad length")
        n = int.from_bytes(buf[i : i + k], "big")
        i += k
    if i + n > end:
        raise BerError("length runs past the end")
    return tag, i, i + n


def _int(buf: bytes, a: int, b: int) -> int:
    if a == b or b - a > 9:
        raise BerError("bad INTEGER length")
    return int.from_bytes(buf[a:b], "big", signed=True)


def _oid(buf: bytes, a: int, b: int) -> tuple[int, ...]:
    raw = buf[a:b]
    hit = _OID_DEC.get(raw)
    if hit is not None:
        return hit
    if not raw or raw[-1] & 0x80:
        raise BerError("bad OID encoding")
    arcs: list[int] = []
    acc = 0
    for byte in raw:
        acc = (acc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(acc)
            acc = 0
    first = arcs[0]
    x = min(first // 40, 2)
    out = (x, first - 40 * x, *arcs[1:])
    if len(_OID_DEC) < 100_000:
        _OID_DEC[bytes(raw)] = out
    return out


def _decode_value(buf: bytes, tag: int, a: int, b: int) -> Value:
    if tag == INTEGER:
        return (tag, _int(buf, a, b))
    if tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        if a == b or b - a > 9:
            raise BerError("bad unsigned length")
        return (tag, int.from_bytes(buf[a:b], "big"))
    if tag in (OCTET_STRING, IP_ADDRESS, OPAQUE):
        return (tag, bytes(buf[a:b]))
    if tag == OID:
        return (tag, _oid(buf, a, b))
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        if a != b:
            raise BerError("non-empty NULL")
        return (tag, None)
    raise BerError(f"unknown value type 0x{tag:02x}")


def _pdu_head(data: bytes) -> tuple[bytes, int, bytes, int, list[int], int, int]:
    """An SNMPv1/v2c message's head: (bytes, version, community, PDU type, [request id, error
    status, error index], where the varbind list starts, where the PDU ends)."""
    buf = bytes(data)
    end = len(buf)
    tag, a, b = _header(buf, 0, end)
    if tag != SEQUENCE or b != end:
        raise BerError("not an SNMP message")
    tag, va, vb = _header(buf, a, b)
    if tag != INTEGER:
        raise BerError("bad version")
    version = _int(buf, va, vb)
    if version not in (0, 1):
        raise BerError(f"SNMP version {version} is not v1/v2c")
    tag, ca, cb = _header(buf, vb, b)
    if tag != OCTET_STRING:
        raise BerError("bad community")
    pdu_type, pa, pb = _header(buf, cb, b)
    if pdu_type not in _PDUS:
        raise BerError(f"unsupported PDU type 0x{pdu_type:02x}")
    fields = []
    i = pa
    for _ in range(3):
        tag, x, y = _header(buf, i, pb)
        if tag != INTEGER:
            raise BerError("bad PDU header")
        fields.append(_int(buf, x, y))
        i = y
    return buf, version, buf[ca:cb], pdu_type, fields, i, pb


def decode_message(data: bytes) -> Message:
    """Decode one SNMPv1/v2c message; :class:`BerError` for anything else (including SNMPv3)."""
    buf, version, community, pdu_type, fields, i, pb = _pdu_head(data)
    tag, la, lb = _header(buf, i, pb)
    if tag != SEQUENCE:
        raise BerError("bad varbind list")
    vbs = []
    i = la
    while i < lb:
        tag, sa, sb = _header(buf, i, lb)
        if tag != SEQUENCE:
            raise BerError("bad varbind")
        tag, oa, ob = _header(buf, sa, sb)
        if tag != OID:
            raise BerError("varbind name is not an OID")
        oid = _oid(buf, oa, ob)
        vtag, xa, xb = _header(buf, ob, sb)
        if xb != sb:
            raise BerError("trailing bytes in varbind")
        vbs.append((oid, _decode_value(buf, vtag, xa, xb)))
        i = sb
    return Message(version, community, pdu_type, fields[0], fields[1], fields[2], tuple(vbs))


def split_request(data: bytes) -> tuple[int, bytes, int, int, int, int, bytes]:
    """(version, community, pdu type, request id, error status, error index, varbind-list TLV bytes), cheaply.

    Agents answer the same poll every tick: the varbind list of a request is
    a cache key, so the full decode is needed only on a cache miss.
    """
    buf, version, community, pdu_type, fields, i, pb = _pdu_head(data)
    tag, _la, lb = _header(buf, i, pb)
    if tag != SEQUENCE or lb != pb:
        raise BerError("bad varbind list")
    return version, community, pdu_type, fields[0], fields[1], fields[2], buf[i:pb]


_SMALL_INTS = [bytes((INTEGER, 1, v)) for v in range(128)]


def encode_varbinds(varbinds: Sequence[tuple[tuple[int, ...], Value]]) -> bytes:
    """The varbind-list TLV alone (see :func:`encode_response`)."""
    parts = []
    for o, v in varbinds:
        t = _oid_tlv(o)
        x = v[1]
        val = _SMALL_INTS[x] if v[0] == INTEGER and type(x) is int and 0 <= x < 128 else _value(v)
        n = len(t) + len(val)
        parts.append((b"\x30" + bytes((n,)) if n < 128 else b"\x30" + _len(n)) + t + val)
    return _tlv(SEQUENCE, b"".join(parts))


class VarbindEncoder:
    """The varbind list of a fixed OID list, with every OID's bytes encoded once.

    An agent answers the same status poll every tick: only the values change,
    and nearly all of them are INTEGERs below 128. Those varbinds are one
    pre-encoded head (``SEQUENCE``, length, OID, ``INTEGER`` tag and length 1)
    plus one byte; any other value is encoded in full, so the bytes are the same
    as :func:`encode_varbinds` gives (tested against it).
    """

    def __init__(self, oids: Sequence[tuple[int, ...]]) -> None:
        self.oids = [tuple(o) for o in oids]
        tlvs = [_oid_tlv(o) for o in self.oids]
        if any(len(t) > 120 for t in tlvs):
            raise BerError("OID too long for the compiled encoder")
        # For each OID, the head of an INTEGER varbind whose value takes 1, 2, 3 or 4 bytes.
        self.heads = [
            tuple(b"\x30" + bytes((len(t) + 2 + n,)) + t + bytes((INTEGER, n)) for n in (1, 2, 3, 4)) for t in tlvs
        ]
        # Per OID, INTEGER value -> its whole varbind, learned as met: a status object takes a few
        # distinct values tick after tick (masks, modes, counters), so a farm encodes each once.
        self.memos: list[dict[int, bytes]] = [{} for _ in self.oids]

    def _integer(self, k: int, x: int) -> bytes:
        """The varbind of OID ``k`` with INTEGER ``x`` (a 32-bit ``int``), remembered while the memo is small."""
        heads = self.heads[k]
        if 0 <= x < 128:
            b = heads[0] + _BYTES[x]
        else:  # minimal two's complement (X.690 §8.3.2)
            n = ((x if x >= 0 else ~x).bit_length() + 8) // 8
            b = heads[n - 1] + x.to_bytes(n, "big", signed=True)
        memo = self.memos[k]
        if len(memo) < self.MEMO_MAX:
            memo[x] = b
        return b

    #: Most values remembered per OID (a counter such as gwTick takes a new value every tick).
    MEMO_MAX = 512

    def encode(self, values: Sequence[Value]) -> bytes:
        parts: list[bytes] = []
        app = parts.append
        for k, (memo, v) in enumerate(zip(self.memos, values, strict=True)):
            x = v[1]
            if v[0] == INTEGER and type(x) is int:
                b = memo.get(x)
                if b is not None:
                    app(b)
                elif -0x8000_0000 <= x <= 0x7FFF_FFFF:
                    app(self._integer(k, x))
                else:
                    app(_varbind(self.oids[k], v))
            else:
                app(_varbind(self.oids[k], v))
        return _tlv(SEQUENCE, b"".join(parts))


_BYTES = [bytes((v,)) for v in range(256)]


def _varbind(o: tuple[int, ...], v: Value) -> bytes:
    t = _oid_tlv(o)
    val = _value(v)
    n = len(t) + len(val)
    return (b"\x30" + bytes((n,)) if n < 128 else b"\x30" + _len(n)) + t + val


def encode_response(version: int, community: bytes, request_id: int, status: int, index: int, vbl: bytes) -> bytes:
    """A Response PDU around an already encoded varbind list."""
    pdu = _tlv(
        RESPONSE,
        _tlv(INTEGER, _int_body(request_id)) + _tlv(INTEGER, _int_body(status)) + _tlv(INTEGER, _int_body(index)) + vbl,
    )
    return _tlv(SEQUENCE, _tlv(INTEGER, _int_body(version)) + _tlv(OCTET_STRING, community) + pdu)


class _IntTlvs(dict[bytes, int]):
    """INTEGER TLV bytes -> value, learned as met: a status answer repeats a few hundred distinct values,
    and a dictionary hit in a C-level ``map`` costs a fraction of slicing and ``int.from_bytes`` per value."""

    def __missing__(self, tlv: bytes) -> int:
        v = int.from_bytes(tlv[2:], "big", signed=True)
        if len(self) < 200_000:
            self[tlv] = v
        return v


_INT_TLVS = _IntTlvs()


def request_slot(version: int, community: bytes, pdu_type: int, vbl: bytes) -> tuple[bytearray, int]:
    """A request around an encoded varbind list, with a four-byte request id, and where those bytes start.

    The id is patched in place per send. Only ids 0x01000000..0x7fffffff may go there: their
    minimal BER encoding (X.690 §8.3.2) is four bytes.
    """
    body = b"\x02\x04\x01\x00\x00\x00\x02\x01\x00\x02\x01\x00" + vbl
    pdu = bytes((pdu_type,)) + _len(len(body)) + body
    head = _tlv(INTEGER, _int_body(version)) + _tlv(OCTET_STRING, community)
    msg = bytes((SEQUENCE,)) + _len(len(head) + len(pdu)) + head + pdu
    at = len(msg) - len(pdu) + 1 + len(_len(len(body))) + 2
    return bytearray(msg), at


class GetTemplate:
    """A GET of a fixed OID list, encoded once; answers decoded by comparing OID bytes, not parsing them.

    A central polls the same objects of a controller every tick: the request
    differs only in its request id, and the response echoes the OIDs in
    order. Anything unexpected falls back to :func:`decode_message`.
    """

    def __init__(self, oids: Sequence[tuple[int, ...]]) -> None:
        self.oids = tuple(tuple(o) for o in oids)
        self.oid_tlvs = [_oid_tlv(o) for o in self.oids]
        self.vbl = _tlv(SEQUENCE, b"".join(_tlv(SEQUENCE, t + b"\x05\x00") for t in self.oid_tlvs))
        # All-INTEGER answers (the common case) match one compiled pattern: no per-byte Python work.
        value = b"(\x02\x01.|\x02\x02..|\x02\x03...|\x02\x04....|\x02\x05.....)"
        self._ints = re.compile(b"".join(b"\x30[\x00-\x7f]" + re.escape(t) + value for t in self.oid_tlvs), re.DOTALL)

    def request(self, version: int, community: bytes, request_id: int) -> bytes:
        pdu = _tlv(GET, _tlv(INTEGER, _int_body(request_id)) + b"\x02\x01\x00\x02\x01\x00" + self.vbl)
        return _tlv(SEQUENCE, _tlv(INTEGER, _int_body(version)) + _tlv(OCTET_STRING, community) + pdu)

    def request_slot(self, version: int, community: bytes) -> tuple[bytearray, int]:
        """The request with a four-byte request id, and where those bytes start (see :func:`request_slot`)."""
        return request_slot(version, community, GET, self.vbl)

    def ints(self, data: bytes) -> tuple[int, int, int, list[int] | None]:
        """(request id, error status, error index, integer values); values None unless every one is an INTEGER."""
        _v, _c, pdu_type, rid, status, index, vbl = split_request(data)
        if pdu_type != RESPONSE:
            raise BerError("not a response")
        if status:
            return rid, status, index, None
        _tag, a, b = _header(vbl, 0, len(vbl))
        m = self._ints.fullmatch(vbl, a, b)
        if m is None:
            return rid, 0, 0, None
        return rid, 0, 0, list(map(_INT_TLVS.__getitem__, m.groups()))

    def values(self, data: bytes) -> tuple[int, int, int, list[Value]]:
        """(request id, error status, error index, values) of a response to :meth:`request`."""
        _v, _c, pdu_type, rid, status, index, vbl = split_request(data)
        if pdu_type != RESPONSE:
            raise BerError("not a response")
        if status:
            return rid, status, index, []
        buf = vbl
        end = len(buf)
        tag, i, lb = _header(buf, 0, end)
        out: list[Value] = []
        for t in self.oid_tlvs:
            if i >= lb:
                raise BerError("fewer varbinds than asked")
            tag, a, b = _header(buf, i, lb)
            if tag != SEQUENCE or not buf.startswith(t, a):
                raise BerError("answered other objects than asked")
            a += len(t)
            vtag, xa, xb = _header(buf, a, b)
            if xb != b:
                raise BerError("trailing bytes in varbind")
            if vtag == INTEGER:
                if xa == xb or xb - xa > 9:
                    raise BerError("bad INTEGER length")
                out.append((INTEGER, int.from_bytes(buf[xa:xb], "big", signed=True)))
            else:
                out.append(_decode_value(buf, vtag, xa, xb))
            i = b
        if i != lb:
            raise BerError("more varbinds than asked")
        return rid, 0, 0, out


def ints(varbinds: Sequence[tuple[tuple[int, ...], Value]]) -> list[int | None]:
    """The integer values of a response (None where the value is not an integer)."""
    return [v[1] if v[0] in _INTS else None for _, v in varbinds]
