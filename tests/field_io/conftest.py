"""Fixtures for the field I/O tests: the example inventory and emulators on 127.0.0.1 ephemeral ports."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from field_io.emulator.core import EmulatorConfig
from field_io.emulator.runner import Emulator
from field_io.security import SnmpCredentials
from intersections.loaders import load_inventory
from intersections.network import Network

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "intersection.toml"
#: SNMPv1 communities of the test emulators (not defaults: the emulator refuses write with those).
TEST_SNMP = SnmpCredentials(community="gw-test-read", write_community="gw-test-write")


@pytest.fixture(scope="session")
def example_net() -> Network:
    return load_inventory(EXAMPLE)


def copies(net: Network, n: int) -> Network:
    """``n`` copies of the first intersection (ids J1..Jn)."""
    base = net.intersections[0]
    return Network(tuple(dataclasses.replace(base, id=f"J{k + 1}") for k in range(n)), nx.DiGraph())


@pytest.fixture
def emulator() -> Iterator[Callable[..., Emulator]]:
    """Factory: ``emulator(network, protocol, **config)`` -> a running emulator (closed after the test)."""
    made: list[Emulator] = []

    def make(network: Network, protocol: str, *, emu_kw: dict[str, Any] | None = None, **config: Any) -> Emulator:
        cfg = {"backup_time_s": 1.0, "resume_heartbeats": 2, "dt_s": 1.0, "speed": 10.0, **config}
        kw = dict(emu_kw or {})
        if protocol == "ntcip":
            kw.setdefault("snmp", TEST_SNMP)  # no default community: the emulator refuses `public` for writes
        emu = Emulator(network, protocol=protocol, config=EmulatorConfig(**cfg), **kw)
        made.append(emu)
        emu.run_in_thread()
        return emu

    yield make
    for e in made:
        e.close()
        assert e.error is None, f"emulator tick loop failed: {e.error!r}"


@contextlib.contextmanager
def opened(backend: Any) -> Iterator[Any]:
    with backend:
        yield backend


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test so that a leaked socket is reported by the test that leaked it."""
    yield
    import gc

    gc.collect()
