"""NTCIP 1202 over real UDP sockets: NtcipBackend <-> emulated SNMP agents (v1 fast path, pysnmp, SNMPv3)."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from controller.engine import Engine
from controller.policies import make_policy
from field_io.aio import LoopThread, PrivateLoop
from field_io.commands import ControllerMode, RejectReason
from field_io.endpoints import Endpoint
from field_io.errors import NeverCommandError
from field_io.ntcip import ber
from field_io.ntcip.backend import NtcipBackend
from field_io.ntcip.codec import phases_to_masks
from field_io.ntcip.oids import OBJECTS
from field_io.ntcip.transport import FastSnmpClient
from field_io.security import SnmpCredentials

from .conftest import copies

V3 = SnmpCredentials(version=3, user="tmc-ops", auth_key="auth-pass-1234", priv_key="priv-pass-5678")


def drive(backend, ticks: int):
    backend.open()
    eng = Engine(backend, make_policy("actuated"))
    res = [eng.tick() for _ in range(ticks)]
    return res


@pytest.mark.parametrize("client", ["fast", "pysnmp"])
def test_central_commands_agents(example_net, emulator, client: str) -> None:
    net = copies(example_net, 2)
    emu = emulator(net, "ntcip")
    backend = NtcipBackend(net, emu.endpoints, dt_s=0.2, client=client)
    try:
        res = drive(backend, 20)
        modes = emu.core.mode.copy()
        targets = emu.core.target_req.copy()
    finally:
        backend.close()
    last = res[-1]
    assert backend.problems == {}
    assert (modes == ControllerMode.CENTRAL_STAGE).all()
    assert (targets == last.report.target).all()
    assert not last.observation.fault.any()
    # The greenwave extension carries the zone detectors' queue per group (gwGroupQueue).
    queues = np.stack([r.observation.queue_veh for r in res[3:]])
    assert np.isfinite(queues).all() and (queues >= 0).all() and queues.max() > 0
    shown = last.observation.signal_state
    assert (shown[:, :10] == emu.core.snapshot.group_state[:, :10]).mean() > 0.8  # same outputs, a tick apart at most


def test_snmpv3_auth_priv(example_net, emulator) -> None:
    emu = emulator(example_net, "ntcip", emu_kw={"snmp": V3})
    ep = dataclasses.replace(emu.endpoints[0], snmp=V3, timeout_s=0.5, retries=0)
    good = NtcipBackend(example_net, [ep], dt_s=0.2)
    try:
        res = drive(good, 6)
    finally:
        good.close()
    assert good.problems == {} and not res[-1].observation.fault[0]
    wrong = SnmpCredentials(**{**V3.model_dump(), "auth_key": "not-the-key-000"})
    bad = NtcipBackend(example_net, [dataclasses.replace(ep, snmp=wrong)], dt_s=0.2, reconnect_delay_s=10)
    try:
        res = drive(bad, 2)
    finally:
        bad.close()
    assert res[-1].observation.fault[0] and "J1" in bad.problems
    assert emu.core.hb_value[0] >= 0  # only the good manager's SETs arrived


def test_vendor_quirks_as_profiles(example_net, emulator) -> None:
    emu = emulator(example_net, "ntcip", emu_kw={"vendor": "legacy-instance1"})
    ep = dataclasses.replace(emu.endpoints[0], vendor="legacy-instance1")
    ok = NtcipBackend(example_net, [ep], dt_s=0.2)
    try:
        res = drive(ok, 8)
    finally:
        ok.close()
    assert ok.problems == {} and not res[-1].observation.fault[0]
    assert np.isnan(res[-1].observation.queue_veh).all()  # plain NTCIP 1202: no queue object
    wrong = NtcipBackend(example_net, [dataclasses.replace(ep, vendor="greenwave")], dt_s=0.2, reconnect_delay_s=10)
    try:
        drive(wrong, 2)
    finally:
        wrong.close()
    assert "vendor profile 'greenwave' does not match" in wrong.problems["J1"]


def test_backup_time_too_short_is_refused(example_net, emulator) -> None:
    emu = emulator(example_net, "ntcip", backup_time_s=0.4)
    backend = NtcipBackend(example_net, emu.endpoints, dt_s=1.0)
    try:
        backend.open()
    finally:
        backend.close()
    assert "shorter than two ticks" in backend.problems["J1"]


class _RogueAgent(asyncio.DatagramProtocol):
    """Answers every GET wrongly, in the way ``mode`` says."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def connection_made(self, transport) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr) -> None:
        m = ber.decode_message(data)
        vbs = m.varbinds
        status, index = 0, 0
        if self.mode == "wrong-type":
            vbs = tuple((o, (ber.OCTET_STRING, b"x")) for o, _ in vbs)
        elif self.mode == "no-such":
            vbs = tuple((o, (ber.NO_SUCH_INSTANCE, None)) for o, _ in vbs)
        elif self.mode == "error-status":
            status, index = 5, 1
        elif self.mode == "other-oids":
            vbs = tuple(((1, 3, 6, 1, 2, 1, 1, 5, 0), (ber.INTEGER, 1)) for _ in vbs)
        elif self.mode == "garbage":
            self.t.sendto(b"\x30\x82\xff\xff garbage", addr)
            return
        else:  # plausible identity, then out-of-range status values
            vbs = tuple(
                (o, (ber.OCTET_STRING, b"NTCIP 1202 v02") if o[-3:] == (1, 4, 0) else (ber.INTEGER, 9999))
                for o, _ in vbs
            )
        self.t.sendto(
            ber.encode_message(ber.Message(m.version, m.community, ber.RESPONSE, m.request_id, status, index, vbs)),
            addr,
        )


@pytest.mark.parametrize("mode", ["wrong-type", "no-such", "error-status", "other-oids", "garbage", "out-of-range"])
def test_wrong_answers_never_crash_the_central(example_net, mode: str) -> None:
    io = LoopThread("rogue-snmp")

    async def start():
        t, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _RogueAgent(mode), local_addr=("127.0.0.1", 0)
        )
        return t

    transport = io.call(start())
    try:
        port = transport.get_extra_info("sockname")[1]
        ep = Endpoint("J1", "ntcip", "127.0.0.1", port, vendor="ntcip1202-v02", timeout_s=0.2, retries=0)
        backend = NtcipBackend(example_net, [ep], dt_s=0.1, reconnect_delay_s=10)
        try:
            res = drive(backend, 3)
        finally:
            backend.close()
        assert res[-1].observation.fault[0]
        assert "J1" in backend.problems or res[-1].observation.comm_age_s[0] > 0.1
    finally:
        io.call(asyncio.sleep(0)) if False else None

        async def stop():
            transport.close()
            await asyncio.sleep(0)

        io.call(stop())
        io.close()


def test_agent_refuses_flash_incomplete_and_invalid_sets(example_net, emulator) -> None:
    emu = emulator(example_net, "ntcip")
    ep = emu.endpoints[0]
    prof_oid = lambda name, *i: (*OBJECTS[name].oid, *(i or (0,)))  # noqa: E731

    class Raw(FastSnmpClient):
        async def raw_set(self, ep, vbs):  # bypasses the never-command guard, like a misbehaving manager
            msg = await self._request(ep, ber.SET, vbs, ep.snmp.set_community)
            return msg.error_status

    block = [(prof_oid("systemPatternControl"), (ber.INTEGER, 0))] + [
        (prof_oid(n, 1), (ber.INTEGER, m))
        for n, m in (
            ("phaseControlGroupHold", phases_to_masks([2, 6], 1)[0]),
            ("phaseControlGroupForceOff", phases_to_masks([1, 4, 5, 8], 1)[0]),
            ("phaseControlGroupVehCall", phases_to_masks([2, 6], 1)[0]),
        )
    ]  # stage S2 = phases 2 and 6
    loop = PrivateLoop()
    c = Raw()
    try:
        assert loop.run(c.raw_set(ep, block)) == 0
        assert emu.core.accepted_seq[0] == 1
        flash = [(prof_oid("systemPatternControl"), (ber.INTEGER, 255)), *block[1:]]
        assert loop.run(c.raw_set(ep, flash)) == 3  # badValue (v1): flash is never accepted from central
        assert emu.core.reject_reason[0] == RejectReason.FORBIDDEN
        # One group on its own is standard NTCIP phase control (#16): accepted, the other groups keep their values.
        assert loop.run(c.raw_set(ep, block[:2])) == 0
        assert emu.core.accepted_seq[0] == 1  # same values as the block in force: a refresh, not a new command
        seq = int(emu.core.accepted_seq[0])
        bad_pattern = [
            (prof_oid("patternCycleTime", 2), (ber.INTEGER, 20)),
            (prof_oid("systemPatternControl"), (ber.INTEGER, 2)),
        ] + [(o, (ber.INTEGER, 0)) for o, _ in block[1:]]
        assert loop.run(c.raw_set(ep, bad_pattern)) == 3
        yellow = [((*OBJECTS["phaseYellowChange"].oid, 2), (ber.INTEGER, 10))]
        assert loop.run(c.raw_set(ep, yellow)) == 2  # noSuchName (v1 for notWritable): clearances are read-only
        assert emu.core.accepted_seq[0] == seq  # the last safe command stays
        with pytest.raises(NeverCommandError):  # and greenwave's own manager refuses before sending
            loop.run(c.set(ep, flash))
        with pytest.raises(NeverCommandError):
            loop.run(c.set(ep, yellow))
    finally:
        c.close()
        loop.close()
