"""The watchdog's calls leave out groups whose exit is jammed; the engine keeps that answer while the
backend hands out the same read-only array, and judges any other afresh (issue #18: a city's tick)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from controller.arrays import read_only
from controller.backend import FakeBackend, exit_blocked_share
from controller.engine import Engine
from controller.policies import make_policy
from intersections.network import Network


@pytest.fixture
def engine(net2: Network) -> Engine:
    return Engine(FakeBackend(net2), make_policy("max-pressure"))


def _blocked(engine: Engine, x: np.ndarray | None) -> np.ndarray | None:
    obs = dataclasses.replace(engine.backend.read(), exit_blocked=x)
    return engine._blocked(obs, (engine.packed.n, engine.packed.g))


def _expected(engine: Engine, x: np.ndarray | None) -> np.ndarray:
    obs = dataclasses.replace(engine.backend.read(), exit_blocked=x)
    return exit_blocked_share(obs, (engine.packed.n, engine.packed.g)) >= 1.0


def test_nothing_known_blocked_is_none(engine: Engine) -> None:
    shape = (engine.packed.n, engine.packed.g)
    with engine.backend:
        assert _blocked(engine, None) is None
        (nan,) = read_only(np.full(shape, np.nan))
        assert _blocked(engine, nan) is None and _blocked(engine, nan) is None
        assert not _expected(engine, nan).any()


def test_a_read_only_array_is_judged_once_a_writable_one_every_time(engine: Engine) -> None:
    shape = (engine.packed.n, engine.packed.g)
    with engine.backend:
        jam = np.zeros(shape)
        jam[0, 1] = 1.0
        (fixed,) = read_only(jam.copy())
        first = _blocked(engine, fixed)
        assert first is not None and np.array_equal(first, _expected(engine, fixed))
        assert _blocked(engine, fixed) is first  # kept: the same read-only array
        live = jam.copy()
        assert np.array_equal(_blocked(engine, live), _expected(engine, live))
        live[0, 1] = 0.5  # changed in place: judged again
        assert _blocked(engine, live) is None
        live[1, 0] = 1.0
        assert np.array_equal(_blocked(engine, live), _expected(engine, live))
