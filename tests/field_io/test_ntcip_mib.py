"""The emulator's SNMP agent as a standard NTCIP 1202 central sees it (#16): the whole ASC MIB, walks in order,
RFC 3416 exceptions, live status, and phase control one group at a time, over real UDP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
import time
from itertools import count

import pytest

from field_io.commands import ControllerMode
from field_io.ntcip import ber
from field_io.ntcip.codec import phases_to_masks
from field_io.ntcip.oids import ASC, OBJECTS, oid_str

from .conftest import ROOT, TEST_SNMP

REFERENCE = ROOT.parent / "shared" / "reference" / "ntcip1202-oids.tsv"
_ids = count(1)


class Manager:
    """A bare SNMPv1/v2c manager on a blocking UDP socket (what any third-party central does)."""

    def __init__(self, port: int, *, version: int = 0, community: str = TEST_SNMP.community) -> None:
        self.addr = ("127.0.0.1", port)
        self.version = version
        self.community = community.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(1.0)

    def request(self, pdu: int, vbs, *, community: bytes | None = None, status: int = 0, index: int = 0):
        rid = next(_ids)
        m = ber.Message(self.version, community or self.community, pdu, rid, status, index, tuple(vbs))
        self.sock.sendto(ber.encode_message(m), self.addr)
        while True:
            reply = ber.decode_message(self.sock.recv(65535))
            if reply.request_id == rid:
                return reply

    def get(self, *oids):
        return self.request(ber.GET, [(o, (ber.NULL, None)) for o in oids])

    def set(self, *pairs, community: str = TEST_SNMP.set_community):
        vbs = [(o, (ber.INTEGER, v) if isinstance(v, int) else v) for o, v in pairs]
        return self.request(ber.SET, vbs, community=community.encode())

    def walk(self, start: tuple[int, ...]) -> list[tuple[tuple[int, ...], ber.Value]]:
        out, cur = [], start
        while True:
            r = self.request(ber.GET_NEXT, [(cur, (ber.NULL, None))])
            if r.error_status:  # v1: noSuchName at the end of the MIB view
                return out
            oid, val = r.varbinds[0]
            if val[0] == ber.END_OF_MIB_VIEW:
                return out
            out.append((oid, val))
            cur = oid

    def close(self) -> None:
        self.sock.close()


def oid(name: str, *idx: int) -> tuple[int, ...]:
    o = OBJECTS[name]
    return (*o.oid, 0) if o.scalar else (*o.oid, *idx)


def reference_leaves() -> dict[str, tuple[int, ...]]:
    if not REFERENCE.exists():
        pytest.skip(f"reference table not found at {REFERENCE}")
    out = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        o, name, access = line.split("\t")
        if access:
            out[name] = tuple(int(x) for x in o.split("."))
    return out


#: Columns of tables the emulator has no rows in, and why (they answer noSuchInstance, not noSuchObject).
EMPTY_TABLES = {"port1": "no TS2 cabinet devices: maxPort1Addresses is 0"}


def test_walk_covers_every_reference_object_in_order(example_net, emulator) -> None:
    leaves = reference_leaves()
    emu = emulator(example_net, "ntcip")
    m = Manager(emu.endpoints[0].port)
    try:
        walked = m.walk((1, 3, 6))
    finally:
        m.close()
    oids = [o for o, _v in walked]
    assert oids == sorted(oids) and len(set(oids)) == len(oids)  # strictly increasing: a walk never loops
    assert oids[0][:7] == (1, 3, 6, 1, 2, 1, 1)  # MIB-II system first, the greenwave extension last
    seen = {o[:n] for o in oids for n in {len(x) for x in leaves.values()}}
    missing = [n for n, ref in leaves.items() if ref not in seen and not n.startswith(tuple(EMPTY_TABLES))]
    assert missing == [], f"reference objects the agent does not answer: {missing}"
    assert len(leaves) == 183 and sum(1 for n in leaves if n.startswith("port1")) == 5
    assert all(v[0] in (ber.INTEGER, ber.OCTET_STRING, ber.OID, ber.TIMETICKS, ber.COUNTER32) for _o, v in walked)


def test_rfc3416_exceptions_and_bulk_order(example_net, emulator) -> None:
    emu = emulator(example_net, "ntcip")
    m = Manager(emu.endpoints[0].port)  # SNMPv1 (message version 0): one error for the whole PDU
    try:
        r = m.get(oid("maxPhases"), (*ASC, 99, 1, 0))
        assert r.error_status == 2 and r.error_index == 2  # noSuchName at the second varbind
    finally:
        m.close()
    emu2 = emulator(
        example_net, "ntcip", emu_kw={"snmp": type(TEST_SNMP)(version=2, community="r-2c", write_community="w-2c")}
    )
    v2 = Manager(emu2.endpoints[0].port, version=1, community="r-2c")
    try:
        r = v2.get(oid("maxPhases"), oid("phaseMinimumGreen", 99), (*ASC, 99, 1, 0), (*ASC, 1, 2, 1, 77, 1))
        kinds = [v[0] for _o, v in r.varbinds]
        assert r.error_status == 0
        assert kinds == [ber.INTEGER, ber.NO_SUCH_INSTANCE, ber.NO_SUCH_OBJECT, ber.NO_SUCH_OBJECT]
        # GETBULK: 1 non-repeater, 2 repeaters x 3 repetitions, row by row (RFC 3416 §4.2.3).
        greens, reds = oid("phaseStatusGroupGreens", 1)[:-1], oid("phaseStatusGroupReds", 1)[:-1]
        vbs = [(oid("maxPhases")[:-1], (ber.NULL, None)), (greens, (ber.NULL, None)), (reds, (ber.NULL, None))]
        r = v2.request(ber.GET_BULK, vbs, status=1, index=3)
        got = [o for o, _v in r.varbinds]
        assert got[0] == oid("maxPhases")
        # One phase group: each column has one row, so repetition 2 moves to the next column.
        assert got[1:] == [
            oid("phaseStatusGroupGreens", 1),
            oid("phaseStatusGroupReds", 1),
            oid("phaseStatusGroupDontWalks", 1),
            oid("phaseStatusGroupYellows", 1),
            oid("phaseStatusGroupPedClears", 1),
            oid("phaseStatusGroupGreens", 1),
        ]
    finally:
        v2.close()


def test_live_status_objects(example_net, emulator) -> None:
    faults = {("J1", 4): "stuck"}
    emu = emulator(example_net, "ntcip", speed=10.0, detector_faults=faults)
    m = Manager(emu.endpoints[0].port)
    try:
        cycles = set()
        for _ in range(8):
            r = m.get(oid("coordCycleStatus"), oid("coordSyncStatus"), oid("coordPatternStatus"))
            cycles.add(r.varbinds[0][1][1])
            time.sleep(0.15)
        assert len(cycles) >= 3  # the local plan's cycle position counts (it read 0 before #16)
        plan = emu.core.fallback_plans["J1"]
        assert all(0 <= c < plan.cycle_s for c in cycles)
        r = m.get(
            oid("vehicleDetectorAlarms", 4),
            oid("vehicleDetectorStatusGroupAlarms", 1),
            oid("maxChannels"),
            oid("channelControlSource", 2),
            oid("channelControlType", 7),
            oid("sequenceData", 1, 1),
            oid("phaseStatusGroupNumber", 1),
            oid("splitPhase", 3, 6),
        )
        vals = [v[1] for _o, v in r.varbinds]
        assert vals[0] == 0b10  # stuck on: max presence
        assert vals[1] & 1 << 3  # channel 4 in group 1
        assert vals[2:5] == [10, 2, 3]  # one channel per signal group; P2 drives phase 2; PED_N is pedestrian
        assert vals[5] == bytes([1, 2, 4])  # ring 1: the first phase of each stage, in stage order
        assert vals[6:] == [1, 6]
        # Channel greens mirror the outputs: exactly the groups the controller shows green.
        for _ in range(10):
            snap = emu.core.snapshot
            r = m.get(oid("channelStatusGroupGreens", 1), oid("channelStatusGroupGreens", 2))
            if emu.core.snapshot.tick == snap.tick:
                greens = r.varbinds[0][1][1] | r.varbinds[1][1][1] << 8
                want = sum(1 << k for k, s in enumerate(snap.group_state[0][:10]) if s == 2)
                assert greens == want
                break
    finally:
        m.close()


def _stage_of(emu) -> int:
    return int(emu.core.snapshot.stage[0])


def _wait(cond, timeout: float = 8.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_system_pattern_control_alone_is_a_plan_call_and_the_heartbeat(example_net, emulator) -> None:
    emu = emulator(example_net, "ntcip", backup_time_s=1.0, resume_heartbeats=2, speed=10.0)
    m = Manager(emu.endpoints[0].port)
    core = emu.core
    try:
        for _ in range(3):  # resume_heartbeats SETs of systemPatternControl, nothing else
            r = m.set((oid("systemPatternControl"), 1))
            assert r.error_status == 0
            time.sleep(0.1)
        assert _wait(lambda: core.in_control[0] and core.mode[0] == ControllerMode.CENTRAL_PLAN)
        assert m.get(oid("unitControlStatus")).varbinds[0][1][1] == 2  # systemControl
        assert m.get(oid("coordPatternStatus")).varbinds[0][1][1] == 2  # the central pattern row in use
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # re-SET every 0.3 s (< backup time 1 s): control is kept
            assert m.set((oid("systemPatternControl"), 1)).error_status == 0
            assert core.in_control[0]
            time.sleep(0.3)
        # Silence: backup mode after the backup time; the control objects read 0.
        assert _wait(lambda: not core.in_control[0], 3.0)
        assert m.get(oid("systemPatternControl")).varbinds[0][1][1] == 0
        assert m.get(oid("unitControlStatus")).varbinds[0][1][1] == 4  # backupMode
        # Release: pattern 0 (standby).
        for _ in range(3):
            m.set((oid("systemPatternControl"), 1))
            time.sleep(0.1)
        assert _wait(lambda: core.in_control[0])
        assert m.set((oid("systemPatternControl"), 0)).error_status == 0
        assert _wait(lambda: not core.in_control[0])
    finally:
        m.close()


def _keep_alive(m: Manager, secs: float, cond=None) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        assert m.set((oid("systemPatternControl"), 1)).error_status == 0
        if cond is not None and cond():
            return True
        time.sleep(0.1)
    return cond is None


@pytest.mark.parametrize("group", ["hold", "force_off", "omit", "call"])
def test_phase_control_one_group_at_a_time(example_net, emulator, group: str) -> None:
    """Stages: S1 = phases 1+5, S2 = 2+6, S3 = 4+8 (examples/intersection.toml)."""
    emu = emulator(example_net, "ntcip", backup_time_s=2.0, resume_heartbeats=1, speed=10.0)
    m = Manager(emu.endpoints[0].port)
    core = emu.core
    names = {
        "hold": "phaseControlGroupHold",
        "force_off": "phaseControlGroupForceOff",
        "omit": "phaseControlGroupPhaseOmit",
        "call": "phaseControlGroupVehCall",
    }
    try:
        mask = phases_to_masks({"hold": [2, 6], "force_off": [2, 6], "omit": [4, 8], "call": [4, 8]}[group], 1)[0]
        r = m.set((oid(names[group], 1), mask))  # this group alone, no systemPatternControl in the PDU
        assert r.error_status == 0, ber.ERROR_NAMES.get(r.error_status)
        assert m.get(oid(names[group], 1)).varbinds[0][1][1] == mask
        assert _keep_alive(m, 3.0, lambda: core.in_control[0] and core.mode[0] == ControllerMode.CENTRAL_STAGE)
        seen = []

        def watch() -> bool:
            seen.append(_stage_of(emu))
            return False

        if group == "hold":  # reaches S2 (phases 2, 6 held) and stays
            assert _keep_alive(m, 10.0, lambda: _stage_of(emu) == 1)
            seen.clear()
            _keep_alive(m, 3.0, watch)
            assert set(seen) == {1}
        elif group == "force_off":  # S2 is never held: the controller keeps cycling and leaves it
            _keep_alive(m, 10.0, watch)
            assert {0, 2} <= set(seen)
            runs = _runs(seen, 1)
            assert all(n <= 16 for n in runs)  # ~12 s minimum green at 10 x: a few polls at most
        elif group == "omit":  # S3 (phases 4, 8) is never served
            _keep_alive(m, 10.0, watch)
            assert 2 not in seen and {0, 1} <= set(seen)
        else:  # only S3 is called: the controller goes there and rests
            assert _keep_alive(m, 10.0, lambda: _stage_of(emu) == 2)
            seen.clear()
            _keep_alive(m, 3.0, watch)
            assert set(seen) == {2}
    finally:
        m.close()


def _runs(seq: list[int], value: int) -> list[int]:
    out, n = [], 0
    for s in seq:
        if s == value:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out


def test_bad_sets_leave_the_state_and_are_logged(example_net, emulator, caplog) -> None:
    emu = emulator(example_net, "ntcip")
    m = Manager(emu.endpoints[0].port)
    core = emu.core
    try:
        assert m.set((oid("systemPatternControl"), 1)).error_status == 0
        spc = oid("systemPatternControl")
        before = (int(core.accepted_seq[0]), int(core.hb_value[0]), m.get(spc).varbinds[0][1][1])
        caplog.clear()
        cases = [
            ([(oid("unitControlStatus"), 2)], 2),  # read-only: notWritable -> noSuchName in v1
            ([(oid("systemPatternControl"), 300)], 3),  # out of range: wrongValue -> badValue
            ([(oid("systemPatternControl"), (ber.OCTET_STRING, b"1"))], 3),  # wrong type -> badValue
            ([(oid("systemPatternControl"), 255)], 3),  # flash from central: refused
            ([(oid("phaseControlGroupHold", 9), 1)], 2),  # no such phase group
        ]
        for vbs, status in cases:
            r = m.set(*vbs)
            assert r.error_status == status, vbs
        after = (int(core.accepted_seq[0]), int(core.hb_value[0]), m.get(spc).varbinds[0][1][1])
        assert after == before  # nothing applied, no heartbeat counted
        logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(logged) == len(cases) and all("from 127.0.0.1:" in x for x in logged)
        # Wrong community: dropped unanswered (RFC 3584), and logged with its source.
        caplog.clear()
        with pytest.raises(TimeoutError):
            m.set((oid("systemPatternControl"), 1), community="public")
        assert any("wrong community" in r.getMessage() and "127.0.0.1" in r.getMessage() for r in caplog.records)
    finally:
        m.close()


def test_extension_table_in_docs_is_generated_from_the_code() -> None:
    from field_io.ntcip.oids import extension_table

    text = (ROOT / "docs" / "field.md").read_text(encoding="utf-8")
    table = extension_table()
    assert table in text, "docs/field.md: regenerate the extension OID table (python -m field_io.ntcip.oids)"
    for o in OBJECTS.values():
        if o.source == "greenwave":
            assert f"`{o.name}`" in table and oid_str(o.oid) in table


def test_greenwave_central_drives_a_standard_only_controller(example_net, emulator) -> None:
    """A controller that answers only NTCIP 1202 objects (no greenwave extension): central reads the standard
    status, commands through the standard phase-control and pattern objects, and gets control."""
    from controller.engine import Engine
    from controller.policies import make_policy
    from field_io.ntcip.backend import NtcipBackend

    emu = emulator(example_net, "ntcip", emu_kw={"vendor": "ntcip1202-v02"})
    m = Manager(emu.endpoints[0].port)
    try:
        r = m.get((*OBJECTS["gwMode"].oid, 0))
        assert r.error_status == 2  # noSuchName (v1): this controller has no greenwave objects at all
    finally:
        m.close()
    ep = dataclasses.replace(emu.endpoints[0], vendor="ntcip1202-v02")
    backend = NtcipBackend(example_net, [ep], dt_s=0.2)
    backend.open()
    try:
        eng = Engine(backend, make_policy("actuated"))
        res = [eng.tick() for _ in range(25)]
        in_control, mode, target = bool(emu.core.in_control[0]), int(emu.core.mode[0]), int(emu.core.target_req[0])
    finally:
        backend.close()  # releases control (systemPatternControl 0)
    assert backend.problems == {}
    assert not res[-1].observation.fault.any()
    assert in_control and mode == ControllerMode.CENTRAL_STAGE
    assert target == int(res[-1].report.target[0])
