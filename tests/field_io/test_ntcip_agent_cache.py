"""An agent's answer to central's status GET on the compiled path is the full path's, byte for byte.

The farm answers the fixed status poll from compiled value functions and a
per-OID memo of encoded varbinds (``SnmpAgent.cached_get``,
``ber.VarbindEncoder``); every other request walks the MIB
(``SnmpAgent.handle``). Over ticks in which the controllers' state changes
(central's command, local flash, a pedestrian call, a preempt, a SET through
the agent itself) the two must give the same bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.backend import FakeBackend
from controller.engine import Engine
from field_io.commands import stage_request
from field_io.emulator.core import EmulatorConfig, LocalController
from field_io.ntcip import ber
from field_io.ntcip.agent import RowMib, SnmpAgent
from field_io.ntcip.backend import status_oids
from field_io.ntcip.oids import OBJECTS
from field_io.ntcip.profiles import PROFILES
from field_io.security import SnmpCredentials

from .conftest import TEST_SNMP, copies

ASC = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)
OIDS = [(*ASC, 1, 4, 1, k, 1) for k in range(2, 14)] + [(*ASC, 2, 5, 4, 1, k, 300) for k in (1, 2)]
V2C = SnmpCredentials(version=2, community="gw-test-read", write_community="gw-test-write")

ints = st.one_of(st.integers(-300, 300), st.integers(-(2**31), 2**31 - 1), st.integers(-(2**40), 2**40))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(ints, min_size=len(OIDS), max_size=len(OIDS)), min_size=2, max_size=8))
def test_a_reused_encoder_gives_the_bytes_of_a_fresh_one(rounds: list[list[int]]) -> None:
    """The memo learned from earlier answers never changes a later answer's bytes."""
    enc = ber.VarbindEncoder(OIDS)
    for xs in rounds:
        vals = [(ber.INTEGER, x) for x in xs]
        assert enc.encode(vals) == ber.VarbindEncoder(OIDS).encode(vals)
        msg = ber.decode_message(ber.encode_response(0, b"c", 9, 0, 0, enc.encode(vals)))
        assert list(msg.varbinds) == list(zip(OIDS, vals, strict=True))


@pytest.mark.parametrize(("profile", "snmp"), [("greenwave", TEST_SNMP), ("ntcip1202-v02", V2C)])
def test_compiled_status_answer_equals_the_full_path_over_changing_ticks(example_net, profile: str, snmp) -> None:
    n = 3
    net = copies(example_net, n)
    t = [0.0]
    core = LocalController(net, config=EmulatorConfig(backup_time_s=3.0, resume_heartbeats=1), clock=lambda: t[0])
    plant = FakeBackend(net, seed=2)
    plant.open()
    try:
        engine = Engine(plant, core)
        prof = PROFILES[profile]
        agents = [SnmpAgent(RowMib(core, r, prof), host="127.0.0.1", port=0, snmp=snmp) for r in range(n)]
        version = 0 if snmp.version == 1 else 1
        reqs = []
        for a in agents:
            oids = [o for _k, o in status_oids(a.mib.fmap, prof, max(1, len(core.preempts)))]
            reqs.append(
                [ber.GetTemplate(oids).request(version, snmp.community.encode(), 0x0100_0000 + k) for k in (1, 2)]
            )
        peds = [k for k, g in enumerate(net.intersections[0].groups) if g.is_pedestrian]
        fast_answers = 0
        seen: set[bytes] = set()
        for tick in range(40):
            for r in range(n):
                core.submit_heartbeat(r, tick + 1)
            if tick == 3:
                core.submit_command(0, stage_request(1, 1, 3))
            if tick == 8:
                core.set_local_flash(1, True)
            if tick == 14:
                core.set_local_flash(1, False)
                for k in peds:
                    core.press_ped_button(2, k)
            if tick == 18 and core.preempts:
                core.set_preempt(2, True)
            if tick == 24 and core.preempts:
                core.set_preempt(2, False)
            res = engine.tick()
            core.publish(res)
            t[0] += 1.0
            for a, (first, again) in zip(agents, reqs, strict=True):
                if tick == 30:  # a SET through the agent between two GETs of one tick
                    _set_stage(a, snmp, prof)
                for data in (first, again):
                    fast = a.cached_get(data)
                    full = a.handle(ber.decode_message(data), lambda _m: None)
                    assert full is not None
                    if fast is not None:
                        fast_answers += 1
                        assert fast == ber.encode_message(full), (tick, a.mib.fmap.id)
                        seen.add(fast)
        assert fast_answers >= 2 * n * 38  # all but the first tick went the compiled way
        assert len(seen) > 2 * n * 5  # the answers did change over the ticks
    finally:
        plant.close()


def _set_stage(agent: SnmpAgent, snmp: SnmpCredentials, prof) -> None:
    """A SET of the system pattern through ``agent`` (accepted or not, it is a request that may change state)."""
    oid = prof.scalar(OBJECTS["systemPatternControl"].oid)
    version = 0 if snmp.version == 1 else 1
    msg = ber.Message(version, snmp.set_community.encode(), ber.SET, 77, 0, 0, ((oid, (ber.INTEGER, 3)),))
    agent.handle(msg, lambda _m: None)
