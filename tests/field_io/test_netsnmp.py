"""The emulators driven by third-party tools, exactly as a field technician or another vendor's central would:
net-snmp's ``snmpwalk`` / ``snmpbulkwalk`` / ``snmpget`` / ``snmpset`` and ``mbpoll`` (#16).

``./dev test`` installs Debian's ``snmp`` and ``mbpoll`` packages; elsewhere these tests skip and say why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from field_io.commands import ControllerMode
from field_io.modbus.profile import MAGIC
from field_io.ntcip.codec import phases_to_masks
from field_io.ntcip.oids import OBJECTS, oid_str
from field_io.security import SnmpCredentials

from .conftest import ROOT

REFERENCE = ROOT.parent / "shared" / "reference" / "ntcip1202-oids.tsv"
V2C = SnmpCredentials(version=2, community="gw-ro-J1", write_community="gw-rw-J1")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian: apt-get install snmp mbpoll; ./dev test installs them)")
    return path


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if ok:
        assert r.returncode == 0, f"{' '.join(args)}: {r.stderr}"
    return r


def oid(name: str, *idx: int) -> str:
    o = OBJECTS[name]
    return "." + oid_str((*o.oid, 0) if o.scalar else (*o.oid, *idx))


@pytest.fixture
def agent(example_net, emulator):
    tool("snmpget")
    emu = emulator(example_net, "ntcip", backup_time_s=2.0, resume_heartbeats=2, speed=10.0, emu_kw={"snmp": V2C})
    return emu, f"127.0.0.1:{emu.endpoints[0].port}"


def test_snmpwalk_and_snmpbulkwalk_cover_the_reference_table(agent) -> None:
    if not REFERENCE.exists():
        pytest.skip(f"reference table not found at {REFERENCE}")
    tool("snmpbulkwalk")
    _emu, target = agent
    walks = {}
    for cmd in ("snmpwalk", "snmpbulkwalk"):
        r = run(cmd, "-v2c", "-c", V2C.community, "-On", "-t", "2", target, ".1.3.6")
        assert "not increasing" not in r.stderr  # net-snmp checks the order itself
        walks[cmd] = [line.split(" = ", 1)[0] for line in r.stdout.splitlines() if " = " in line]
    assert walks["snmpwalk"] == walks["snmpbulkwalk"] and len(walks["snmpwalk"]) > 1000
    got = set(walks["snmpwalk"])
    missing = []
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        o, name, access = line.split("\t")
        if access and not name.startswith("port1") and not any(x.startswith("." + o + ".") for x in got):
            missing.append(name)
    assert missing == []


def test_snmpget_exceptions_and_live_values(agent) -> None:
    _emu, target = agent
    r = run("snmpget", "-v2c", "-c", V2C.community, "-On", target, oid("maxPhases"), oid("phaseMinimumGreen", 99),
            ".1.3.6.1.4.1.1206.4.2.1.99.0")  # fmt: skip
    lines = r.stdout.splitlines()
    assert lines[0].endswith("INTEGER: 8")
    assert "No Such Instance currently exists at this OID" in lines[1]
    assert "No Such Object available on this agent at this OID" in lines[2]
    seen = set()
    for _ in range(6):
        out = run("snmpget", "-v2c", "-c", V2C.community, "-Oqv", target, oid("coordCycleStatus")).stdout
        seen.add(int(out))
        time.sleep(0.2)
    assert len(seen) >= 3  # counts down the local plan's cycle


def test_a_third_party_central_with_snmpset(agent) -> None:
    emu, target = agent
    core = emu.core

    def sset(*vbs: str, community: str = V2C.set_community, ok: bool = True) -> subprocess.CompletedProcess:
        return run("snmpset", "-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On", target, *vbs, ok=ok)

    def heartbeat_until(cond, secs: float = 10.0) -> bool:
        t0 = time.monotonic()
        while time.monotonic() - t0 < secs:
            sset(oid("systemPatternControl"), "i", "1")  # the NTCIP heartbeat: systemPatternControl alone
            if cond():
                return True
            time.sleep(0.2)
        return False

    assert heartbeat_until(lambda: core.in_control[0] and core.mode[0] == ControllerMode.CENTRAL_PLAN)
    assert run("snmpget", "-v2c", "-c", V2C.community, "-Oqv", target, oid("unitControlStatus")).stdout.strip() == "2"
    # Hold phases 2 and 6 (stage S2): the controller gets there and stays.
    sset(oid("phaseControlGroupHold", 1), "i", str(phases_to_masks([2, 6], 1)[0]))
    assert heartbeat_until(lambda: int(core.snapshot.stage[0]) == 1)
    stages = set()
    assert not heartbeat_until(lambda: stages.add(int(core.snapshot.stage[0])) or False, 2.0)
    assert stages == {1}
    # Release the hold, omit phases 4 and 8: S3 is never served.
    sset(oid("phaseControlGroupHold", 1), "i", "0", oid("phaseControlGroupPhaseOmit", 1), "i",
         str(phases_to_masks([4, 8], 1)[0]))  # fmt: skip
    stages.clear()
    # 15 s: a full change from S2 takes real seconds on a loaded machine.
    heartbeat_until(lambda: stages.add(int(core.snapshot.stage[0])) or False, 15.0)
    assert 2 not in stages and {0, 1} <= stages
    # Bad input: the standard error, nothing changes.
    before = (int(core.accepted_seq[0]), int(core.hb_value[0]))
    assert "notWritable" in sset(oid("unitControlStatus"), "i", "1", ok=False).stderr
    assert "wrongValue" in sset(oid("systemPatternControl"), "i", "300", ok=False).stderr
    assert "wrongType" in sset(oid("systemPatternControl"), "s", "1", ok=False).stderr
    assert "wrongValue" in sset(oid("systemPatternControl"), "i", "255", ok=False).stderr  # flash: never from central
    assert "Timeout" in sset(oid("systemPatternControl"), "i", "1", community="public", ok=False).stderr
    assert (int(core.accepted_seq[0]), int(core.hb_value[0])) == before
    # Release: pattern 0 with no phase control.
    sset(oid("phaseControlGroupPhaseOmit", 1), "i", "0", oid("systemPatternControl"), "i", "0")
    t0 = time.monotonic()
    while core.in_control[0] and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert not core.in_control[0]


def test_mbpoll_reads_writes_and_gets_the_standard_exceptions(example_net, emulator) -> None:
    tool("mbpoll")
    emu = emulator(example_net, "modbus")
    base = ["mbpoll", "-m", "tcp", "-a", "1", "-0", "-t", "4", "-1", "-p", str(emu.endpoints[0].port)]
    r = run(*base, "-r", "0", "-c", "4", "127.0.0.1")
    values = [int(v) for v in re.findall(r"^\[\d+\]:\s+(-?\d+)", r.stdout, re.M)]
    assert values[0] == MAGIC  # the profile's identity magic at address 0
    run(*base, "-r", "100", "127.0.0.1", "4242")  # one register (function 6): the heartbeat
    assert int(emu.core.hb_value[0]) == 4242
    r = run(*base, "-r", "200", "127.0.0.1", "1", ok=False)  # the status table is read-only
    assert r.returncode != 0 and "Illegal data address" in r.stdout + r.stderr
    assert int(emu.core.hb_value[0]) == 4242
