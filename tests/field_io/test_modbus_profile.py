"""The Modbus profile as data: generated docs, golden vectors, codec round trips, no forbidden registers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from field_io.commands import CommandBlock, CommandKind, RejectReason, stage_request
from field_io.emulator.plans import default_fallback_plan
from field_io.errors import NeverCommandError
from field_io.mapping import field_map
from field_io.modbus import codec
from field_io.modbus.profile import COMMAND, PROFILE, TABLES, Access, render_markdown, writable_ranges
from field_io.security import check_modbus_write

from .conftest import ROOT


def test_docs_are_generated_from_the_table() -> None:
    doc = (ROOT / "docs" / "modbus-profile.md").read_text(encoding="utf-8")
    assert doc == render_markdown(), "regenerate: python -m field_io.modbus.profile > docs/modbus-profile.md"


def test_crc16_modbus_check_value() -> None:
    assert codec.crc16_bytes(b"123456789") == 0x4B37  # CRC-16/MODBUS catalogue check value
    assert codec.crc16_modbus([0x3132, 0x3334]) == codec.crc16_bytes(b"1234")


def test_command_block_golden_vector(example_net) -> None:
    inter = example_net.intersections[0]
    words = codec.encode_command_block(stage_request(7, 1, 3), inter)
    assert len(words) == codec.BLOCK_LEN == 59
    # seq, kind, target (1-based), call, hold, force-off, then zeros, then the CRC.
    assert words[:6] == [7, 1, 2, 0b010, 0b010, 0b101]
    assert words[6:-1] == [0] * 52
    assert words[-1] == codec.crc16_modbus(words[:-1]) == 0x60DC  # bit-wise reference: see test_crc16_bitwise


def test_command_block_round_trip_and_half_written(example_net) -> None:
    inter = example_net.intersections[0]
    plan = default_fallback_plan(inter)
    words = codec.encode_command_block(CommandBlock(seq=9, kind=CommandKind.PLAN, plan=plan), inter)
    block, why = codec.decode_command_block(words, inter)
    assert why is RejectReason.NONE and block is not None
    assert block.plan is not None and block.plan.cycle_s == plan.cycle_s
    assert [s.green_s for s in block.plan.stages] == [s.green_s for s in plan.stages]
    half = list(words)
    half[20:] = [0] * (len(half) - 20)  # the tail of the block (and its CRC) never arrived
    assert codec.decode_command_block(half, inter) == (None, RejectReason.CHECKSUM)
    bad_kind = list(words)
    bad_kind[1] = 3  # "flash" does not exist
    bad_kind[-1] = codec.crc16_modbus(bad_kind[:-1])
    assert codec.decode_command_block(bad_kind, inter)[1] is RejectReason.UNKNOWN_KIND


def test_status_round_trip(example_net) -> None:
    fmap = field_map(example_net.intersections[0])
    layout = codec.status_layout([fmap])
    states = np.array([[2, 1, 0, 0, 2, 3, 0, 0, 2, 0]], np.int8)
    occ = np.linspace(0, 1, fmap.n_detectors)
    occ[3] = 0.0004  # a whisker of presence must stay visible
    rows = codec.encode_status(
        layout,
        group_state=states,
        stage=np.array([1]),
        stage_timer_s=np.array([12.3]),
        target=np.array([1]),
        tick=70000,
        detector_sequence=5,
        plan_clock_s=1234.5,
        active_cycle_s=np.array([86.0]),
        volume=np.arange(fmap.n_detectors) * 1000 + 65000,
        occupancy=occ,
    )
    st = codec.decode_status(rows[0, : codec.status_read_count(fmap)].tolist(), fmap)
    assert st.group_state.tolist() == states[0].tolist()
    assert st.current_stage == 1 and st.stage_timer_s == pytest.approx(12.3)
    assert st.tick_counter == 70000 % 65536 and st.plan_clock_s == pytest.approx(1234.5)
    assert st.volume.tolist() == ((np.arange(fmap.n_detectors) * 1000 + 65000) % 65536).tolist()
    assert st.occupancy_raw[3] == 1 and st.occupancy_raw[-1] == 1000
    assert codec.status_read_count(fmap) <= 125  # one read covers status and detectors


def test_queues_ride_in_the_status_read_when_they_fit(example_net) -> None:
    fmap = field_map(example_net.intersections[0])
    q = np.full((1, fmap.n_groups), np.nan)
    q[0, :3] = [0.0, 4.4, 70000.0]  # rounded; clipped below the not-measured code
    words = codec.encode_queues(q, 1)[0]
    assert words[fmap.n_groups :].tolist() == [0xFFFF] * (32 - fmap.n_groups)
    out = codec.decode_queues(words.tolist(), fmap.n_groups)
    assert out[:3].tolist() == [0.0, 4.0, 65534.0] and np.isnan(out[3:]).all()
    # Without the capability: the plain status read; with it, one read from 168 while <= 125 registers.
    plain = codec.status_read(fmap, 0b011)
    assert (plain.base, plain.queues, plain.skip) == (200, False, 0)
    read = codec.status_read(fmap, 0b011 | codec.CAP_QUEUES)
    assert read.base == 168 and read.skip == 32 and not read.queue_apart
    assert read.count == 32 + codec.status_read_count(fmap) <= 125
    wide = dataclasses.replace(fmap, channel=np.array([*range(1, fmap.n_detectors), 40]))
    apart = codec.status_read(wide, codec.CAP_QUEUES)
    assert apart.base == 200 and apart.queue_apart and apart.count <= 125


def test_identity_and_config_round_trip(example_net) -> None:
    fmap = field_map(example_net.intersections[0])
    ident = codec.decode_identity(
        codec.encode_identity(fmap, device_id=3, backup_time_s=5, resume_heartbeats=3, tick_s=1)
    )
    assert ident.intersection_id == "J1" and ident.device_id == 3 and ident.profile == "1.1"
    cfg, ig = codec.encode_config(fmap)
    out = codec.decode_config(cfg, ig, fmap.n_groups)
    inter = fmap.intersection
    assert out["phase"] == fmap.phase.tolist()
    assert (out["conflicts"] == inter.conflicts).all()
    assert len(out["stages"]) == len(inter.stages)


def test_no_register_commands_lamps_flash_or_clearances() -> None:
    # Central may write the command table only; the fallback upload only in commissioning.
    assert writable_ranges() == [(COMMAND.base, COMMAND.end)]
    assert [t.name for t in TABLES if t.access is Access.COMMISSIONING] == ["fallback_upload"]
    names = {f.name for t in TABLES if t.access is not Access.READ for f in t.fields}
    for word in ("lamp", "flash", "dark", "yellow", "all_red", "clearance", "channel", "output"):
        assert not any(word in n for n in names), word
    assert {int(k) for k in CommandKind} == {0, 1, 2}  # release, stage, plan: nothing else
    assert PROFILE["config"].access is Access.READ


@pytest.mark.parametrize(
    ("address", "count", "commissioning", "ok"),
    [(100, 64, False, True), (100, 65, False, False), (200, 1, False, False), (400, 8, False, False),
     (1900, 53, False, False), (1900, 53, True, True), (0, 1, True, False)],
)  # fmt: skip
def test_modbus_never_command_guard(address: int, count: int, commissioning: bool, ok: bool) -> None:
    if ok:
        check_modbus_write(address, count, commissioning=commissioning)
    else:
        with pytest.raises(NeverCommandError):
            check_modbus_write(address, count, commissioning=commissioning)


def test_crc16_bitwise() -> None:
    """The table-driven CRC equals the bit-wise definition (poly 0xA001 reflected, init 0xFFFF)."""
    import struct

    rng = np.random.default_rng(3)
    for _ in range(20):
        words = rng.integers(0, 65536, size=int(rng.integers(1, 60))).tolist()
        crc = 0xFFFF
        for b in b"".join(struct.pack(">H", w) for w in words):
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        assert codec.crc16_modbus(words) == crc
