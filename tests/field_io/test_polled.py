"""The polled field-backend base: what every protocol inherits (lifecycle, comm age, alarms, commands).

A protocol on the base supplies only codec and transport, so the base is tested
here through the smallest protocol there can be - controllers in a dict, read
and commanded by explicit ticks on a hand-driven clock - and through the two
real protocols (they define none of the shared behaviour themselves).
"""

from __future__ import annotations

import math
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from controller.backend import Commands
from field_io.commands import ControllerMode, StatusBits
from field_io.endpoints import Endpoint
from field_io.mapping import field_map
from field_io.polled import PolledFieldBackend, PolledLink
from intersections.errors import GreenwaveError, InputError
from tests.field_io.conftest import copies


@dataclass
class _Status:
    group_state: np.ndarray
    volume: np.ndarray
    status_word: int
    mode: int = int(ControllerMode.CENTRAL_STAGE)
    plan_clock_s: float = math.nan
    queue_veh: np.ndarray | None = None


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class _DictBackend(PolledFieldBackend):
    """Controllers as dicts: ``silent`` rows do not answer, ``impostor`` rows are another intersection."""

    protocol_name = "dict"
    extra_columns = ("last_target",)

    def __init__(self, network: Any, eps: list[Endpoint] | None = None, **kw: Any) -> None:
        eps = eps if eps is not None else [Endpoint(i.id, "ntcip", "127.0.0.1", 161) for i in network.intersections]
        self.silent: set[int] = set()
        self.impostor: set[int] = set()
        self.volume = np.zeros((len(network.intersections), 64))
        self.sent: list[tuple[int, int]] = []
        self.released: list[int] = []
        self.connects = 0
        super().__init__(network, eps, **kw)

    def _make_link(self, row: int, endpoint: Endpoint, intersection: Any) -> PolledLink:
        return PolledLink(row=row, endpoint=endpoint, fmap=field_map(intersection))

    async def _connect(self, link: PolledLink) -> None:
        if link.identity is not None or self.clock() < link.next_try_t:
            return
        self.connects += 1
        if link.row in self.silent:
            self._backoff(link)
            self._set_problem(link, f"unreachable; retrying in {link.backoff_s:g} s")
            return
        if link.row in self.impostor:
            link.identity, link.refused = "J99", True
            self._set_problem(link, "reports intersection 'J99'; not commanding it")
            return
        link.identity, link.refused, link.backoff_s = link.fmap.id, False, 0.0
        self._set_problem(link, None)

    async def _poll(self, link: PolledLink) -> None:
        await self._connect(link)
        if not link.readable or link.row in self.silent:
            return
        n = link.fmap.n_detectors
        g = link.fmap.n_groups
        self._polled(
            link,
            _Status(np.zeros(g, np.int8), self.volume[link.row, :n].copy(), int(StatusBits.CENTRAL_CONTROL)),
        )

    def _command(self, link: PolledLink, commands: Commands) -> Coroutine[Any, Any, None] | None:
        t = int(commands.target_stage[link.row])

        async def send() -> None:
            self.sent.append((link.row, t))

        return send() if t >= 0 else None

    async def _release(self, link: PolledLink) -> None:
        self.released.append(link.row)

    def _row_counts(self, link: PolledLink, st: Any) -> np.ndarray:
        return st.volume

    def _row_occupancy(self, link: PolledLink, st: Any) -> np.ndarray:
        return np.zeros(len(st.volume))

    def _row_extra(self, link: PolledLink, st: Any) -> tuple[int, ...]:
        return (max((t for r, t in self.sent if r == link.row), default=-1),)


def _commands(n: int, target: int, active: list[bool] | None = None) -> Commands:
    return Commands(
        time_s=0.0,
        states=np.zeros((n, 32), np.int8),
        target_stage=np.full(n, target),
        active=np.array(active if active else [True] * n),
    )


@pytest.fixture
def net(example_net: Any) -> Any:
    return copies(example_net, 3)


def test_lifecycle_refuses_reuse_and_releases_only_commanded_controllers(net: Any) -> None:
    b = _DictBackend(net, clock=_Clock())
    with pytest.raises(GreenwaveError, match="not open"):
        b.read()
    with b:
        b.read()
        b.apply(_commands(3, 1, [True, False, True]))
    assert sorted(b.released) == [0, 2]  # the inactive row was never commanded, so it is not released
    with pytest.raises(GreenwaveError, match="closed"):
        b.open()


def test_missing_endpoint_is_one_line_naming_the_intersections(net: Any) -> None:
    eps = [Endpoint("J1", "ntcip", "127.0.0.1", 161)]
    with pytest.raises(InputError, match=r"no dict endpoint for intersections \['J2', 'J3'\]"):
        _DictBackend(net, eps)


def test_comm_age_fault_and_alarm_follow_the_clock(net: Any) -> None:
    clock = _Clock()
    b = _DictBackend(net, clock=clock, dt_s=1.0)
    with b:
        obs = b.read()
        assert obs.comm_age_s.tolist() == [0.0, 0.0, 0.0] and not obs.fault.any()
        b.silent.add(1)
        for _ in range(2):  # two ticks of silence: not yet stale (comm_timeout_s = two ticks)
            clock.t += 1.0
            obs = b.read()
        assert obs.comm_age_s[1] == 2.0 and not obs.fault[1] and b.alarms == []
        clock.t += 1.0
        obs = b.read()
        assert obs.fault.tolist() == [False, True, False]
        assert [(iid, m.split(":")[0]) for _t, iid, m in b.alarms] == [("J2", "comm-loss alarm")]
        clock.t += 1.0
        b.read()
        assert len(b.alarms) == 1  # raised once, not every tick
        b.silent.clear()
        clock.t += 1.0
        obs = b.read()
        assert not obs.fault[1] and b.alarms[-1][1:] == ("J2", "comm restored")


def test_unreachable_controller_backs_off_exponentially(net: Any) -> None:
    clock = _Clock()
    b = _DictBackend(net, clock=clock, reconnect_delay_s=0.5, reconnect_delay_max_s=2.0)
    b.silent.add(0)
    with b:
        tries = []
        for _ in range(40):
            before = b.connects
            b.read()
            if b.connects > before:
                tries.append(clock.t)
            clock.t += 0.25
    # the silent row is retried after 0.5, 1, 2, 2, ... s (the reachable rows connect once)
    gaps = np.diff([t for t in tries if t > 0])
    assert gaps[:3].tolist() == [1.0, 2.0, 2.0] and (gaps <= 2.0).all()
    assert "unreachable" in b.problems["J1"]


def test_never_commands_inactive_refused_or_unread_controllers(net: Any) -> None:
    b = _DictBackend(net, clock=_Clock())
    b.impostor.add(2)
    with b:
        b.read()
        b.apply(_commands(3, 1, [True, False, True]))
        obs = b.read()
    assert b.sent == [(0, 1)]  # row 1 inactive, row 2 another intersection
    assert obs.fault.tolist() == [False, False, True]
    assert "not commanding it" in b.problems["J3"]
    assert obs.extra["last_target"].tolist() == [1, -1, 0]  # the protocol's own extra column


def test_counts_come_only_from_fresh_reads(net: Any) -> None:
    clock = _Clock()
    b = _DictBackend(net, clock=clock)
    with b:
        b.volume[0, :3] = [1, 2, 3]
        obs = b.read()
        n = len(net.intersections[0].detectors)
        assert obs.counts[:3].tolist() == [1, 2, 3]
        b.silent.add(0)  # nothing new read: the same status must not be counted twice
        clock.t += 1.0
        obs = b.read()
        assert (obs.counts[:n] == 0).all()


@pytest.mark.parametrize("name", ["ModbusBackend", "NtcipBackend"])
def test_protocols_supply_only_codec_and_transport(name: str) -> None:
    """The shared behaviour lives once: neither protocol redefines it."""
    from field_io.protocols import PROTOCOLS

    cls = next(s.backend_class() for s in PROTOCOLS.values() if s.backend.endswith(name))
    assert issubclass(cls, PolledFieldBackend)
    shared = ("read", "_observation", "_alarm", "apply", "advance", "_set_problem", "_backoff", "_open", "_close")
    assert [m for m in shared if m in vars(cls)] == []
