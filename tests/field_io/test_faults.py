"""Fault injection over real sockets: central killed, network delay and drops, a controller gone silent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from controller.arrays import pack
from controller.engine import Engine
from controller.policies import make_policy
from controller.safety import Mode
from field_io.aio import LoopThread
from field_io.commands import ControllerMode, FaultBits
from field_io.endpoints import Endpoint
from field_io.modbus.backend import ModbusBackend
from field_io.ntcip.backend import NtcipBackend

from .conftest import EXAMPLE, ROOT, TEST_SNMP, copies

CENTRAL = """
import json, sys
from controller.arrays import pack
from controller.engine import Engine
from controller.policies import make_policy
from field_io.endpoints import endpoints_from_json
from intersections.loaders import load_inventory
from field_io.security import SnmpCredentials
proto = sys.argv[1]
snmp = SnmpCredentials(community=sys.argv[4], write_community=sys.argv[5])  # the ready JSON carries no secrets
eps = endpoints_from_json(json.loads(sys.argv[2]), snmp=snmp)
net = load_inventory(sys.argv[3])
if proto == "modbus":
    from field_io.modbus.backend import ModbusBackend as B
else:
    from field_io.ntcip.backend import NtcipBackend as B
backend = B(net, eps, dt_s=0.1)
backend.open()
engine = Engine(backend, make_policy("actuated"))
print("central running", flush=True)
while True:
    engine.tick()
"""


def _unsafe(states: list[np.ndarray], conflicts: np.ndarray) -> int:
    bad = 0
    for s in states:
        shown = (s == 1) | (s == 2)
        bad += int((conflicts & shown[:, :, None] & shown[:, None, :]).any())
    return bad


def _wait(cond, timeout: float, step: float = 0.02) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


@pytest.mark.parametrize("protocol", ["modbus", "ntcip"])
def test_central_killed_mid_run_emulator_falls_back_within_backup_time(example_net, emulator, protocol: str) -> None:
    backup = 1.0
    emu = emulator(example_net, protocol, backup_time_s=backup, dt_s=1.0, speed=10.0)
    emu.plant.record = True  # every state the outputs showed
    eps = json.dumps([e.to_json() for e in emu.endpoints])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    central = subprocess.Popen(
        [sys.executable, "-c", CENTRAL, protocol, eps, str(EXAMPLE), TEST_SNMP.community, TEST_SNMP.set_community],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        core = emu.core
        assert _wait(lambda: core.in_control[0], 20.0) is not None, "central never got control"
        time.sleep(0.5)
        central.send_signal(signal.SIGKILL)
        t_kill = time.monotonic()
        central.wait(5)
        t = _wait(lambda: core.mode[0] == ControllerMode.LOCAL_PLAN and core.fault_bits[0] & FaultBits.COMM_LOSS, 5.0)
        assert t is not None, "no fallback after the central died"
        t_fb = time.monotonic()
        tick_wall = 1.0 / 10.0
        elapsed = t_fb - t_kill
        assert elapsed <= backup + 2 * tick_wall + 0.3, f"fell back {elapsed:.2f} s after the kill (backup {backup} s)"
        silent = t_fb - float(core.hb_change_t[0])  # since the last heartbeat the controller saw
        assert backup - 0.05 <= silent <= backup + 2 * tick_wall + 0.3, f"fell back after {silent:.2f} s of silence"
        time.sleep(0.5)  # the local plan runs on
    finally:
        if central.poll() is None:
            central.kill()
            central.wait(5)
        if central.stdout is not None:
            central.stdout.close()
    packed = pack(example_net.intersections)
    assert emu.plant.shown, "nothing recorded"
    assert _unsafe(emu.plant.shown, packed.conflicts) == 0
    assert (emu.core._last_supervisor_mode != Mode.FAULT).all()


class Proxy:
    """A TCP proxy on 127.0.0.1 that delays every chunk and can black-hole responses."""

    def __init__(self, target_port: int, delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.drop = False
        self.io = LoopThread("proxy")
        self.server = self.io.call(self._start())
        self.port = self.server.sockets[0].getsockname()[1]
        self.writers: list[asyncio.StreamWriter] = []

    async def _start(self):
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, responses: bool) -> None:
        try:
            while data := await r.read(4096):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if responses and self.drop:
                    continue
                w.write(data)
                await w.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [w, uw]
        await asyncio.gather(self._pipe(r, uw, False), self._pipe(ur, w, True))

    def close(self) -> None:
        async def stop():
            self.server.close()
            for w in self.writers:
                w.close()
            await asyncio.sleep(0.05)

        self.io.call(stop())
        self.io.close()


def test_network_delay_and_dropped_responses(example_net, emulator) -> None:
    net = copies(example_net, 2)
    emu = emulator(net, "modbus", backup_time_s=1.5, speed=5.0)
    proxy = Proxy(emu.endpoints[0].port, delay_s=0.03)
    try:
        eps = [
            Endpoint(e.intersection, "modbus", "127.0.0.1", proxy.port, device_id=e.device_id, timeout_s=0.15)
            for e in emu.endpoints
        ]
        backend = ModbusBackend(
            net, eps, dt_s=0.2, comm_timeout_s=0.6, reconnect_delay_s=0.2, reconnect_delay_max_s=0.4
        )
        backend.open()
        eng = Engine(backend, make_policy("actuated"))
        for _ in range(15):  # 30 ms each way: still in control
            res = eng.tick()
        assert not res.observation.fault.any() and emu.core.in_control.all() and backend.alarms == []
        proxy.drop = True  # the controllers' answers vanish
        for _ in range(10):
            res = eng.tick()
        assert res.observation.fault.all()
        assert {a[1] for a in backend.alarms if "comm-loss" in a[2]} == {"J1", "J2"}
        assert all(link.was_active is False for link in backend.links)  # not commanded while it cannot be read
        assert _wait(lambda: not emu.core.in_control.any(), 3.0) is not None  # their watchdogs fall back
        proxy.drop = False
        ok = None
        for _ in range(40):
            res = eng.tick()
            if emu.core.in_control.all() and not res.observation.fault.any():
                ok = True
                break
        assert ok, "central did not regain control after the network recovered"
        assert any(a[2] == "comm restored" for a in backend.alarms)
        backend.close()
    finally:
        proxy.close()


def test_a_controller_that_goes_silent_raises_an_alarm_and_is_not_commanded(example_net, emulator) -> None:
    net = copies(example_net, 2)
    emu = emulator(net, "ntcip", backup_time_s=2.0, speed=5.0)
    eps = [
        Endpoint(e.intersection, "ntcip", e.host, e.port, timeout_s=0.1, retries=0, snmp=TEST_SNMP)
        for e in emu.endpoints
    ]
    backend = NtcipBackend(net, eps, dt_s=0.2, comm_timeout_s=0.5)
    backend.open()
    try:
        eng = Engine(backend, make_policy("actuated"))
        for _ in range(10):
            eng.tick()
        assert emu.core.in_control.all()
        # J2's agent stops answering (its port closes).
        emu.io.call(emu.servers[1].stop())
        for _ in range(6):
            res = eng.tick()
        assert res.observation.fault.tolist() == [False, True]
        assert [a[1] for a in backend.alarms if "comm-loss" in a[2]] == ["J2"]
        assert backend.links[1].was_active is False and backend.links[0].was_active is True
        assert _wait(lambda: not emu.core.in_control[1], 3.0) is not None  # J2 falls back on its own
        assert emu.core.in_control[0]
    finally:
        backend.close()
