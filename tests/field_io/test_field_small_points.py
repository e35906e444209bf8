"""The smaller points of #16, each as behaviour: fault bits that clear, rejects under the right number,
refusals logged with their source, and commissioning messages a technician can act on."""

from __future__ import annotations

import logging
import socket
import struct

from pymodbus.client import ModbusTcpClient

from controller.backend import FakeBackend
from controller.engine import Engine
from field_io.commands import CommandBlock, CommandKind, FaultBits, RejectReason, stage_request
from field_io.emulator.core import EmulatorConfig, LocalController
from field_io.emulator.plans import default_fallback_plan
from field_io.modbus import codec
from field_io.modbus.profile import FALLBACK_UPLOAD, STATUS

from .conftest import EXAMPLE


def _core(net) -> tuple[LocalController, Engine, FakeBackend]:
    core = LocalController(net, config=EmulatorConfig(backup_time_s=3.0, resume_heartbeats=1), clock=lambda: 0.0)
    fake = FakeBackend(net, record=False)
    fake.open()
    return core, Engine(fake, core), fake


def test_plan_rejected_clears_after_a_later_good_command(example_net) -> None:
    core, eng, fake = _core(example_net)
    try:
        eng.tick()
        inter = example_net.intersections[0]
        base = default_fallback_plan(inter)
        too_short = base.__class__(base.intersection_id, 5.0, 0.0, base.stages[:1])
        assert core.submit_command(0, CommandBlock(seq=1, kind=CommandKind.PLAN, plan=too_short)) != RejectReason.NONE
        assert core.fault_bits[0] & FaultBits.PLAN_REJECTED
        assert core.submit_command(0, stage_request(2, 1, 3)) is RejectReason.NONE  # a stage request, not a plan
        assert not core.fault_bits[0] & FaultBits.PLAN_REJECTED
    finally:
        fake.close()


def test_a_numbered_zero_block_is_not_silently_ignored(example_net, caplog) -> None:
    core, _eng, fake = _core(example_net)
    try:
        with caplog.at_level(logging.WARNING, "greenwave.field.emulator"):
            assert core.submit_command(0, stage_request(0, 1, 3)) is RejectReason.NONE
            assert core.submit_command(0, CommandBlock(seq=0, kind=CommandKind.RELEASE)) is RejectReason.NONE
        msgs = [r.getMessage() for r in caplog.records]
        assert len(msgs) == 1 and "sequence number 0 ignored" in msgs[0] and "J1" in msgs[0]
        assert core.accepted_seq[0] == 0  # nothing ran
    finally:
        fake.close()


def test_modbus_bad_crc_upload_rejected_under_its_number_and_refusals_logged(example_net, emulator, caplog) -> None:
    emu = emulator(example_net, "modbus", commissioning=True)
    inter = example_net.intersections[0]
    c = ModbusTcpClient("127.0.0.1", port=emu.endpoints[0].port, timeout=1, retries=0)
    assert c.connect()
    try:
        words = codec.encode_plan_table(FALLBACK_UPLOAD, 7, default_fallback_plan(inter), inter)
        words[-1] ^= 0xFFFF  # corrupt CRC
        assert not c.write_registers(FALLBACK_UPLOAD.base, list(words), device_id=1).isError()
        st = codec.decode_status(
            c.read_holding_registers(STATUS.base, count=24, device_id=1).registers + [0] * 100,
            __import__("field_io.mapping").mapping.field_map(inter),
        )
        assert (st.rejected_seq, st.reject_reason) == (7, RejectReason.CHECKSUM)  # it said 0 before
        caplog.clear()
        with caplog.at_level(logging.WARNING, "greenwave.field.modbus"):
            with socket.create_connection(("127.0.0.1", emu.endpoints[0].port), timeout=1) as raw:
                raw.sendall(struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 0, 126))  # oversized read (pymodbus won't)
                assert raw.recv(64)[7:9] == bytes([0x83, 3])  # illegal data value
                hb = int(emu.core.hb_value[0])
                # An oversized write: FC16 announcing 124 registers (at most 123 fit in an ADU).
                raw.sendall(struct.pack(">HHHBBHHBH", 2, 0, 9, 1, 16, 100, 124, 2, 7))
                assert raw.recv(64)[7:9] == bytes([0x90, 3])
                assert int(emu.core.hb_value[0]) == hb  # nothing written
            rr = c.write_registers(STATUS.base, [1], device_id=1)  # read-only table
            assert rr.isError() and rr.exception_code == 2
        msgs = [r.getMessage() for r in caplog.records]
        assert any("exception 03 illegal data value" in m and "count 126" in m and "127.0.0.1:" in m for m in msgs)
        assert any("exception 02 illegal data address" in m for m in msgs)
        assert any("function 16 at 100 (count 124)" in m and "exception 03" in m for m in msgs)
    finally:
        c.close()


def test_commission_names_the_modbus_exception_and_prints_no_stray_lines(example_net, emulator, capsys) -> None:
    from api.cli import main

    emu = emulator(example_net, "modbus")
    args = ["commission", "--protocol", "modbus", "--host", "127.0.0.1", "--port", str(emu.endpoints[0].port)]
    code = main([*args, "--intersection", str(EXAMPLE), "--device-id", "9", "--no-watchdog", "--timeout", "0.3"])
    out = capsys.readouterr()
    assert code == 1
    assert "exception 11 (gateway target device failed to respond)" in out.out
    assert "Failed to connect" not in out.out + out.err


def test_no_snmp_answer_says_what_to_check(capsys) -> None:
    from api.cli import main

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a UDP port nobody answers on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        args = ["commission", "--protocol", "ntcip", "--host", "127.0.0.1", "--port", str(port)]
        args += ["--intersection", str(EXAMPLE), "--community", "r", "--write-community", "w-J1", "--timeout", "0.2"]
        assert main(args) == 1
    out = capsys.readouterr().out
    assert "no SNMP answer" in out and "the SNMP version and the community or SNMPv3 user" in out
