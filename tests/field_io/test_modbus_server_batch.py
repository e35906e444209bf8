"""The Modbus emulator answers a run of central's steady-state status requests as arrays: the same bytes and
the same controller state as request by request."""

from __future__ import annotations

import struct

import numpy as np

from controller.backend import FakeBackend
from controller.engine import Engine
from field_io.commands import stage_request
from field_io.emulator.core import EmulatorConfig, LocalController
from field_io.mapping import field_map
from field_io.modbus.codec import CAP_QUEUES, STATUS_BASE, heartbeat_words, status_read
from field_io.modbus.profile import COMMAND
from field_io.modbus.server import ModbusFieldServer, _Connection
from field_io.modbus.transport import read_pdu, read_write_pdu

from .conftest import copies

_HB = COMMAND.address("heartbeat")


def rig(net) -> tuple[LocalController, ModbusFieldServer]:
    """Five controllers in different states: some under central control (one of them without heartbeats of
    late), some on their local plan."""
    t = [0.0]
    core = LocalController(
        net,
        config=EmulatorConfig(backup_time_s=3.0, resume_heartbeats=1),
        clock=lambda: t[0],
        wall_clock=lambda: 1.7e9 + t[0],
    )
    plant = FakeBackend(net, seed=3)
    plant.open()
    engine = Engine(plant, core)
    for k in range(12):
        for row in (0, 1, 3):
            if row != 3 or k < 6:
                core.submit_heartbeat(row, k + 1)
            if k == 2:
                core.submit_command(row, stage_request(1, 1 + row % 2, 3))
        core.publish(engine.tick())
        t[0] += 1.0
    return core, ModbusFieldServer(core)


def requests(net, hb: int) -> bytes:
    frames = []
    for k, inter in enumerate(net.intersections):
        plan = status_read(field_map(inter), CAP_QUEUES if k != 2 else 0)  # one reads the status table alone
        pdu = read_write_pdu(plan.base, plan.count, _HB, heartbeat_words(hb + k, 1.7e9 + 11.5))
        frames.append(struct.pack(">HHHB", 100 + k, 0, len(pdu) + 1, k + 1) + pdu)
    return b"".join(frames)


def one_by_one(server: ModbusFieldServer, buf: bytes) -> bytes:
    conn, out, pos = _Connection(server), [], 0
    while pos < len(buf):
        tid, _pid, length, unit = struct.unpack_from(">HHHB", buf, pos)
        reply = conn.handle(tid, unit, buf[pos + 7 : pos + 6 + length])
        assert isinstance(reply, bytes)
        out.append(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
        pos += 6 + length
    return b"".join(out)


def test_a_batch_of_status_requests_answers_as_one_by_one(example_net) -> None:
    net = copies(example_net, 5)
    (core_a, batch), (core_b, single) = rig(net), rig(net)
    for hb in (500, 500, 501):  # a new heartbeat, the same again (not a fresh heartbeat), a new one
        buf = requests(net, hb)
        used, answers = batch.answer_status_batch(buf + b"\x00\x07")  # and the start of a next frame
        assert used == len(buf)
        assert answers == one_by_one(single, buf)
        for name in ("hb_value", "hb_change_t", "fresh"):
            assert np.array_equal(getattr(core_a, name), getattr(core_b, name)), name
        assert np.array_equal(batch.command_image, single.command_image)
        assert batch.requests == single.requests
    assert len(answers) > 5 * 100 and (core_a.in_control[[0, 1]]).all() and not core_a.in_control[[2, 4]].any()


def test_anything_else_goes_request_by_request(example_net) -> None:
    """A plain read, a lone request, a unit twice, an unknown unit, a lockstep step: not a batch."""
    net = copies(example_net, 5)
    _core, server = rig(net)
    good = requests(net, 7)
    size = len(good) // 5
    plain = struct.pack(">HHHB", 9, 0, 6, 1) + read_pdu(STATUS_BASE, 10)
    unknown, step = bytearray(good), bytearray(good)
    unknown[size + 6] = 99  # the second request's unit id
    step[size - 1] = 1  # the first request's step register
    for buf in (plain + good, good[:size], good[:size] * 2, bytes(unknown), bytes(step)):
        assert server.answer_status_batch(buf) == (0, b"")
    assert server.answer_status_batch(good)[0] == len(good)
