"""Modbus profile over real sockets (127.0.0.1, ephemeral ports): ModbusBackend <-> emulated controllers."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import time

import numpy as np
import pytest
from gwpki import generate_test_pki

from controller.engine import Engine
from controller.policies import make_policy
from field_io.aio import LoopThread
from field_io.commands import ControllerMode, RejectReason, stage_request
from field_io.endpoints import Endpoint
from field_io.mapping import field_map
from field_io.modbus import codec
from field_io.modbus.backend import ModbusBackend
from field_io.modbus.profile import COMMAND, STATUS
from field_io.security import TlsConfig, server_context

from .conftest import copies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_engine(backend, ticks: int, policy: str = "actuated") -> list:
    out = []
    with backend:
        eng = Engine(backend, make_policy(policy))
        for _ in range(ticks):
            out.append(eng.tick())
    return out


def test_central_commands_several_controllers(example_net, emulator) -> None:
    net = copies(example_net, 3)
    emu = emulator(net, "modbus")
    backend = ModbusBackend(net, emu.endpoints, dt_s=0.2)
    backend.open()
    eng = Engine(backend, make_policy("actuated"))
    res = [eng.tick() for _ in range(25)]
    last = res[-1]
    core = emu.core
    modes = core.mode.copy()
    targets = core.target_req.copy()
    backend.close()
    assert (modes == ControllerMode.CENTRAL_STAGE).all()
    # The controllers serve what central asked for, through their own supervisor.
    assert (targets == last.report.target).all()
    assert backend.problems == {} and backend.alarms == []
    assert not last.observation.fault.any()
    # Zone detectors report queues (profile 1.1): whole vehicles for every configured group.
    queues = np.stack([r.observation.queue_veh for r in res[3:]])
    assert np.isfinite(queues).all() and (queues >= 0).all() and (queues == np.rint(queues)).all()
    assert queues.max() > 0
    assert (last.observation.comm_age_s < 1.0).all()
    assert last.observation.extra["central_control"].all()
    counts = np.concatenate([r.observation.counts for r in res[3:]])
    assert np.isfinite(counts).all() and (counts >= 0).all()
    # Released on close: back on the local plan, no comm-loss fault.
    time.sleep(0.4)
    assert (core.mode == ControllerMode.LOCAL_PLAN).all() and not core.fault_bits.any()


def test_bad_input_each_gets_one_clear_message_and_no_command(example_net, emulator) -> None:
    net = copies(example_net, 5)
    other = dataclasses.replace(example_net.intersections[0], id="J9")
    emu = emulator(net, "modbus")
    emu_other = emulator(copies(example_net, 1).__class__((other,), net.graph), "modbus")
    ep = emu.endpoints
    eps = [
        ep[0],
        dataclasses.replace(ep[1], port=free_port(), timeout_s=0.2),  # unreachable
        dataclasses.replace(ep[2], device_id=42),  # wrong device id
        dataclasses.replace(emu_other.endpoints[0], intersection="J4"),  # another intersection answers
        ep[4],
    ]
    backend = ModbusBackend(net, eps, dt_s=0.2, reconnect_delay_s=5.0)
    before = emu.servers[0].requests
    res = run_engine(backend, 8)
    msgs = backend.problems
    assert set(msgs) == {"J2", "J3", "J4"}
    assert "unreachable" in msgs["J2"]
    assert "exception 11" in msgs["J3"] and "wrong device id" in msgs["J3"]
    assert "reports intersection 'J9'" in msgs["J4"] and "not commanding it" in msgs["J4"]
    fault = res[-1].observation.fault
    assert fault.tolist() == [False, True, True, True, False]
    assert emu_other.core.accepted_seq[0] == 0 and emu_other.core.hb_value[0] == -1  # never commanded
    assert emu.core.hb_value[2] == -1  # device 42 does not exist; device 3 untouched
    assert emu.servers[0].requests > before


class _RogueServer:
    """A Modbus TCP server that answers with a chosen behaviour (for central-side robustness)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.io = LoopThread("rogue")
        self.server = self.io.call(self._start())
        self.port = self.server.sockets[0].getsockname()[1]

    async def _start(self):
        self.conns: list[_Rogue] = []

        def make() -> _Rogue:
            p = _Rogue(self.behaviour)
            self.conns.append(p)
            return p

        return await asyncio.get_running_loop().create_server(make, "127.0.0.1", 0)

    def close(self) -> None:
        async def stop():
            self.server.close()
            for p in self.conns:
                p.t.close()
            await self.server.wait_closed()
            await asyncio.sleep(0.01)

        self.io.call(stop())
        self.io.close()


class _Rogue(asyncio.Protocol):
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour

    def connection_made(self, transport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        tid, _pid, _ln, uid = struct.unpack_from(">HHHB", data)
        fc = data[7]
        if self.behaviour == "garbage":
            self.t.write(b"\xff\x00garbage that is not a frame" * 3)
            return
        if self.behaviour == "exception":
            pdu = bytes([fc | 0x80, 4])
        else:  # profile 2.0 identity
            ident = codec.encode_identity(
                field_map(self.inter),
                device_id=uid,
                backup_time_s=5,
                resume_heartbeats=3,
                tick_s=1,
                profile=(2, 0),
            )
            count = struct.unpack_from(">H", data, 10)[0]
            words = ident[:count] + [0] * max(0, count - len(ident))
            pdu = bytes([fc, 2 * count]) + struct.pack(f">{count}H", *words)
        self.t.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, uid) + pdu)


ROGUES = [
    ("exception", "exception 04"),
    ("garbage", "no valid answer"),
    ("profile2", "profile version 2.0 is not supported"),
]


@pytest.mark.parametrize(("behaviour", "expected"), ROGUES)
def test_central_survives_wrong_answers(example_net, behaviour: str, expected: str) -> None:
    _Rogue.inter = example_net.intersections[0]  # type: ignore[attr-defined]
    rogue = _RogueServer(behaviour)
    try:
        ep = Endpoint("J1", "modbus", "127.0.0.1", rogue.port, timeout_s=0.2, retries=0)
        backend = ModbusBackend(example_net, [ep], dt_s=0.1, reconnect_delay_s=5.0)
        res = run_engine(backend, 3)
        assert res[-1].observation.fault[0]
        assert expected in backend.problems.get("J1", "")
    finally:
        rogue.close()


def test_half_written_and_out_of_range_blocks_are_rejected(example_net, emulator) -> None:
    from pymodbus.client import ModbusTcpClient

    emu = emulator(example_net, "modbus")
    inter = example_net.intersections[0]
    c = ModbusTcpClient("127.0.0.1", port=emu.endpoints[0].port, timeout=1, retries=0)
    assert c.connect()
    try:

        def status():
            rr = c.read_holding_registers(STATUS.base, count=24, device_id=1)
            return codec.decode_status(
                rr.registers + [0] * 100, __import__("field_io.mapping").mapping.field_map(inter)
            )

        def write(words, addr=COMMAND.base + 5):
            rr = c.write_registers(addr, words, device_id=1)
            assert not rr.isError()

        good = codec.encode_command_block(stage_request(5, 1, 3), inter)
        write(good)
        assert status().accepted_seq == 5
        half = codec.encode_command_block(stage_request(6, 2, 3), inter)
        write(half[:20])  # the rest of block 6 never arrives
        st = status()
        assert (st.rejected_seq, st.reject_reason, st.accepted_seq) == (6, RejectReason.CHECKSUM, 5)
        bad = codec.encode_command_block(stage_request(7, 2, 3), inter)
        bad[2] = 9  # target stage 9 of 3, CRC recomputed: well-formed but out of range
        bad[-1] = codec.crc16_modbus(bad[:-1])
        write(bad)
        st = status()
        assert (st.rejected_seq, st.reject_reason, st.accepted_seq) == (7, RejectReason.STAGE_OUT_OF_RANGE, 5)
        flash = list(good)
        flash[0], flash[1] = 8, 3  # "kind 3" (flash) does not exist
        flash[-1] = codec.crc16_modbus(flash[:-1])
        write(flash)
        assert status().reject_reason == RejectReason.UNKNOWN_KIND
        assert emu.core.accepted_seq[0] == 5  # the last safe command stays
        rr = c.write_registers(STATUS.base, [1], device_id=1)  # status is read-only
        assert rr.isError() and rr.exception_code == 2
        rr = c.write_registers(400 + 4, [10], device_id=1)  # no register changes a clearance
        assert rr.isError() and rr.exception_code == 2
    finally:
        c.close()


def test_malformed_frames_never_stop_the_server(example_net, emulator) -> None:
    emu = emulator(example_net, "modbus")
    port = emu.endpoints[0].port
    junks = (
        b"\x00",  # a truncated header
        b"\x00\x01\x00\x07\x00\x06\x01\x03",  # protocol id 7
        b"\x00\x01\x00\x00\xff\xff" + b"x" * 50,  # length 65535
        struct.pack(">HHHB", 1, 0, 2, 1) + b"\x03",  # a read without its address
        struct.pack(">HHHBBHH", 2, 0, 6, 1, 3, 0, 999),  # 999 registers
    )
    for junk in junks:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(junk)
            s.settimeout(0.3)
            try:
                s.recv(100)
            except (TimeoutError, ConnectionResetError):
                pass
    backend = ModbusBackend(example_net, emu.endpoints, dt_s=0.1)
    run_engine(backend, 3)
    assert backend.problems == {}
    assert emu.servers[0].malformed >= 2


def test_mutual_tls_with_role(example_net, emulator, tmp_path) -> None:
    pki = generate_test_pki(tmp_path, client_role="greenwave-central")
    srv = TlsConfig(
        cert=str(pki["server_cert"]), key=str(pki["server_key"]), ca=str(pki["ca"]), role="greenwave-central"
    )
    emu = emulator(example_net, "modbus", emu_kw={"tls": server_context(srv), "tls_role": "greenwave-central"})
    ep = emu.endpoints[0]

    def central(cert: str, key: str) -> ModbusBackend:
        tls = TlsConfig(cert=cert, key=key, ca=str(pki["ca"]))
        return ModbusBackend(example_net, [dataclasses.replace(ep, tls=tls, timeout_s=0.5, retries=0)], dt_s=0.1)

    ok = central(str(pki["client_cert"]), str(pki["client_key"]))
    res = run_engine(ok, 4)
    assert ok.problems == {} and not res[-1].observation.fault[0]
    for stem in ("rogue", "norole"):  # another CA; the right CA but no role in the certificate
        bad = central(str(pki[f"{stem}_cert"]), str(pki[f"{stem}_key"]))
        res = run_engine(bad, 2)
        assert res[-1].observation.fault[0], stem
        assert "J1" in bad.problems, stem
    assert emu.servers[0].refused_peers >= 1


def test_controllers_behind_one_address_share_one_connection(example_net, emulator) -> None:
    """An emulator serves up to 247 controllers per port, one unit id each (a gateway): central opens one
    connection per address, not one per controller, and still reads and commands each on its own."""
    net = copies(example_net, 4)
    emu = emulator(net, "modbus")
    assert len({e.port for e in emu.endpoints}) == 1
    backend = ModbusBackend(net, emu.endpoints, dt_s=0.2)
    conns: list[int] = []
    with backend:
        eng = Engine(backend, make_policy("actuated"))
        for _ in range(12):
            res = eng.tick()
            conns.append(len(emu.servers[0]._conns))
        users = [c.users for c in backend._conns.values()]
    assert set(conns) == {1}
    assert users == [{0, 1, 2, 3}]  # every controller that waited for the connection to open is its user
    assert backend.problems == {} and sum(link.errors for link in backend.links) == 0
    assert res.observation.extra["central_control"].all()
    assert {link.reads for link in backend.links} == {12}


def test_one_refused_unit_leaves_the_shared_connection_to_the_others(example_net, emulator) -> None:
    """A wrong device id behind a gateway answers exception 0B: that controller is refused, the others on
    the same connection keep being read and commanded."""
    net = copies(example_net, 3)
    emu = emulator(net, "modbus")
    eps = list(emu.endpoints)
    eps[1] = dataclasses.replace(eps[1], device_id=200)  # nobody answers as unit 200 on this port
    backend = ModbusBackend(net, eps, dt_s=0.2)
    seen: list[int] = []
    with backend:
        eng = Engine(backend, make_policy("actuated"))
        for _ in range(10):
            eng.tick()
            seen.append(len(emu.servers[0]._conns))
        central = backend.central_control.copy()
    assert list(backend.problems) == ["J2"] and "exception 11" in backend.problems["J2"]
    assert central.tolist() == [True, False, True]
    assert set(seen) == {1}


def test_batched_observation_equals_the_per_controller_path(example_net, emulator) -> None:
    """The batched poll fills the observation a register layout at a time (``_fill_bulk``); the same
    statuses through the per-controller path give the same observation, column by column."""
    net = copies(example_net, 3)
    emu = emulator(net, "modbus")
    backend = ModbusBackend(net, emu.endpoints, dt_s=0.1)
    with backend:
        eng = Engine(backend, make_policy("actuated"))
        for _ in range(8):
            eng.tick()
        assert backend._loop is not None
        for _ in range(40):  # until some detector counted a vehicle since the last read
            backend.advance()
            backend._loop.run(backend._poll_all(backend.links))
            assert len(backend._bulk) == 1 and len(backend._bulk[0][0]) == 3  # one layout, every controller
            prev = backend._prev_volume.copy()
            fresh = [link.status_fresh for link in backend.links]
            bulk = backend._observation()
            backend._prev_volume[:] = prev
            for link, f in zip(backend.links, fresh, strict=True):
                link.status_fresh = f
            one_by_one = backend._observation()
            if np.nansum(bulk.counts) > 0:
                break
    for name in ("counts", "occupancy", "queue_veh", "signal_state", "fault"):
        assert np.array_equal(getattr(bulk, name), getattr(one_by_one, name), equal_nan=True), name
    assert bulk.extra.keys() == one_by_one.extra.keys()
    for k in bulk.extra:
        assert np.array_equal(bulk.extra[k], one_by_one.extra[k]), k
    assert np.nansum(bulk.counts) > 0 and bulk.extra["central_control"].all()
