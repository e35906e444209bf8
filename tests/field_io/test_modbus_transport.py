"""Central's lean Modbus TCP client and the batch decode: the same bytes as pymodbus, the same values as one by one."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import numpy as np
import pytest

from field_io.mapping import field_map
from field_io.modbus import codec
from field_io.modbus.transport import (
    ModbusExceptionAnswer,
    ModbusMalformed,
    ModbusTcpClient,
    ModbusTimeout,
    read_pdu,
    read_write_pdu,
    registers,
    write_pdu,
)


def test_request_pdus_are_pymodbus_bytes() -> None:
    """Golden vectors: our PDUs are byte for byte what pymodbus encodes for the same request."""
    from pymodbus.pdu.register_message import (
        ReadHoldingRegistersRequest,
        ReadWriteMultipleRegistersRequest,
        WriteMultipleRegistersRequest,
    )

    def ref(req: object, fc: int) -> bytes:
        return bytes([fc]) + req.encode()  # type: ignore[attr-defined]

    assert read_pdu(200, 108) == ref(ReadHoldingRegistersRequest(address=200, count=108), 3)
    assert write_pdu(300, [1, 2, 65535]) == ref(WriteMultipleRegistersRequest(address=300, registers=[1, 2, 65535]), 16)
    rw = ReadWriteMultipleRegistersRequest(read_address=168, read_count=108, write_address=300, write_registers=[7, 8])
    assert read_write_pdu(168, 108, 300, [7, 8]) == ref(rw, 23)
    assert read_pdu(200, 2) == bytes.fromhex("0300c80002")


def test_registers_of_an_answer() -> None:
    assert registers(bytes.fromhex("0304000100ff")) == [1, 255]
    with pytest.raises(ModbusMalformed, match="byte count 5"):
        registers(bytes.fromhex("0305000100ff"))


def test_decode_of_many_rows_equals_decode_one_by_one(example_net) -> None:
    fm = field_map(example_net.intersections[0])
    rng = np.random.default_rng(7)
    for caps in (0, codec.CAP_QUEUES):
        plan = codec.status_read(fm, caps)
        words = rng.integers(0, 65536, size=(64, plan.count))
        for row, st in zip(words, codec.decode_status_rows(words, fm, skip=plan.skip), strict=True):
            one = codec.decode_status(row.tolist(), fm, None, skip=plan.skip)
            for name in one.__dataclass_fields__:
                a, b = getattr(st, name), getattr(one, name)
                if isinstance(b, np.ndarray):
                    assert np.array_equal(a, b, equal_nan=True), name
                else:
                    assert a == b and type(a) is type(b), name


class _Server(asyncio.Protocol):
    """Answers function 3 with the register addresses as values; unit 9 with exception 02; unit 7 never."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        while data:
            tid, _pid, length, unit = struct.unpack_from(">HHHB", data)
            pdu, data = data[7 : 6 + length], data[6 + length :]
            if unit == 7:
                continue
            if unit == 9:
                out = bytes([pdu[0] | 0x80, 2])
            else:
                addr, count = struct.unpack_from(">HH", pdu, 1)
                out = bytes([3, 2 * count]) + struct.pack(f">{count}H", *range(addr, addr + count))
            self.t.write(struct.pack(">HHHB", tid, 0, len(out) + 1, unit) + out)  # type: ignore[attr-defined]


def test_client_against_a_real_socket() -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        c = ModbusTcpClient("127.0.0.1", port, timeout_s=0.2, retries=1)
        try:
            assert await c.connect() and c.connected and c.idle
            assert registers(await c.request(1, read_pdu(10, 3))) == [10, 11, 12]
            with pytest.raises(ModbusExceptionAnswer) as e:
                await c.request(9, read_pdu(10, 3))
            assert e.value.code == 2
            with pytest.raises(ModbusTimeout, match=r"within 0.2 s x 2 tries"):
                await c.request(7, read_pdu(10, 3))
            got: list[bytes | None] = []
            done = asyncio.Event()
            c.send(1, read_pdu(5, 1), lambda a: (got.append(a), done.set()))
            await asyncio.wait_for(done.wait(), 1.0)
            assert got == [bytes.fromhex("03020005")] and c.idle
        finally:
            c.close()
            server.close()
            await server.wait_closed()
        assert not await ModbusTcpClient("127.0.0.1", port, timeout_s=0.2, retries=0).connect()  # refused

    asyncio.run(main())


class _Reversed(asyncio.Protocol):
    """A gateway that answers each read's requests in reverse order (Modbus TCP pairs them by transaction id)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        out = []
        while data:
            tid, _pid, length, unit = struct.unpack_from(">HHHB", data)
            pdu, data = data[7 : 6 + length], data[6 + length :]
            addr, _count = struct.unpack_from(">HH", pdu, 1)
            body = bytes([3, 2]) + struct.pack(">H", unit * 100 + addr)
            out.append(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)
        self.t.write(b"".join(reversed(out)))  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def _reversed_gateway() -> AsyncIterator[ModbusTcpClient]:
    """A client connected to a :class:`_Reversed` gateway on 127.0.0.1; both closed afterwards."""
    server = await asyncio.get_running_loop().create_server(_Reversed, "127.0.0.1", 0)
    c = ModbusTcpClient("127.0.0.1", server.sockets[0].getsockname()[1], timeout_s=0.5, retries=0)
    try:
        assert await c.connect()
        yield c
    finally:
        c.close()
        server.close()
        await server.wait_closed()


def test_pipelined_transactions_are_paired_by_transaction_id() -> None:
    """The units of a gateway share one connection: one write carries every unit's request, and answers
    that come back in any order reach the right caller."""

    async def main() -> None:
        async with _reversed_gateway() as c:
            got: dict[int, bytes | None] = {}
            done = asyncio.Event()

            def answered(unit: int, a: bytes | None) -> None:
                got[unit] = a
                if len(got) == 5:
                    done.set()

            tids = c.send_many([(u, read_pdu(u, 1), lambda a, u=u: answered(u, a)) for u in range(1, 6)])
            assert len(set(tids)) == 5
            await asyncio.wait_for(done.wait(), 1.0)
            assert {u: registers(a) for u, a in got.items() if a is not None} == {u: [101 * u] for u in range(1, 6)}
            assert c.idle
            # Concurrent requests (a task each) on the same connection are paired the same way.
            answers = await asyncio.gather(*(c.request(u, read_pdu(7, 1)) for u in (3, 1, 2)))
            assert [registers(a) for a in answers] == [[307], [107], [207]]
            # A forgotten transaction's late answer is dropped, not handed to the next caller.
            tid = c.send(4, read_pdu(1, 1), lambda a: pytest.fail("a forgotten answer was delivered"))
            c.forget(tid)
            assert registers(await c.request(2, read_pdu(2, 1))) == [202]

    asyncio.run(main())


@pytest.mark.parametrize("t", [0.0, 1_765_000_000.123, 12_345.999])
def test_batched_request_records_are_the_generic_frames(t: float) -> None:
    """The batched poll builds a connection's requests as one array of records; each record is byte for byte
    the MBAP header and the function 23 (heartbeat write and status read) or function 3 PDU."""
    from field_io.modbus.backend import _FRAME_READ, _FRAME_RW, _HB
    from field_io.modbus.codec import heartbeat_words
    from field_io.modbus.transport import read_write_pdu

    for tid, unit, hb in ((1, 1, 0), (65535, 247, 1), (300, 17, 65535)):
        rw = np.zeros(1, _FRAME_RW)
        rw["tid"], rw["len"], rw["unit"], rw["fc"], rw["raddr"], rw["rcount"] = tid, 21, unit, 23, 10, 40
        rw["waddr"], rw["wcount"], rw["nbytes"], rw["hb"] = _HB, 5, 10, hb
        rw["clock"] = heartbeat_words(0, t)[1:4]
        pdu = read_write_pdu(10, 40, _HB, heartbeat_words(hb, t))
        assert rw.tobytes() == struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
        rd = np.zeros(1, _FRAME_READ)
        rd["tid"], rd["len"], rd["unit"], rd["fc"], rd["raddr"], rd["rcount"] = tid, 6, unit, 3, 200, 77
        assert rd.tobytes() == struct.pack(">HHHB", tid, 0, 6, unit) + read_pdu(200, 77)


class _Batch:
    def __init__(self, n: int) -> None:
        self.got: list[bytes | None] = [None] * n
        self.lost_calls = 0
        self.done = asyncio.Event()

    def answer(self, i: int, pdu: bytes) -> None:
        self.got[i] = pdu
        if None not in self.got:
            self.done.set()

    def lost(self) -> None:
        self.lost_calls += 1
        self.done.set()


def test_a_batch_of_consecutive_transaction_ids_shares_the_connection_with_requests() -> None:
    """A batch reserves consecutive ids (skipping one in flight), gets each answer by its place in the batch
    whatever the order, leaves concurrent requests their own ids, drops late answers once ended, and hears
    of a lost connection."""

    async def main() -> None:
        async with _reversed_gateway() as c:
            c._tid = 65533  # the batch's ids wrap past 65535
            pending = c.send(9, read_pdu(9, 1), lambda a: None)  # 65534, in flight: the batch goes past it
            batch = _Batch(4)
            first = c.begin_batch(4, batch)
            assert first == 65535
            tids = [(first + i) & 0xFFFF for i in range(4)]
            assert pending not in tids and tids == [65535, 0, 1, 2]
            c.write(
                b"".join(
                    struct.pack(">HHHB", tid, 0, 6, u) + read_pdu(u, 1)
                    for tid, u in zip(tids, (1, 2, 3, 4), strict=True)
                )
            )
            # a request meanwhile takes an id outside the batch
            assert registers(await c.request(5, read_pdu(5, 1))) == [505]
            await asyncio.wait_for(batch.done.wait(), 1.0)
            assert [registers(a) for a in batch.got if a is not None] == [[101], [202], [303], [404]]
            c.end_batch()
            late = _Batch(1)
            assert c.begin_batch(1, late) == 4  # after the request's id (3)
            c.end_batch()
            c.write(struct.pack(">HHHB", 4, 0, 6, 1) + read_pdu(1, 1))  # its answer arrives after the end: dropped
            assert registers(await c.request(2, read_pdu(2, 1))) == [202]
            assert late.got == [None]
            lost = _Batch(2)
            assert c.begin_batch(2, lost) is not None
            c.close()
            assert lost.lost_calls == 1 and c.begin_batch(1, _Batch(1)) is None

    asyncio.run(main())
