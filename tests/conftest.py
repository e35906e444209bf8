"""Shared fixtures. Factories live in tests/support/gwfactories.py (importable by tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))

from gwfactories import four_leg, two_phase

from intersections.model import Intersection
from intersections.network import Network


@pytest.fixture
def j4() -> Intersection:
    return four_leg()


@pytest.fixture
def net2() -> Network:
    return Network((four_leg("J1"), two_phase("J2")), nx.DiGraph())
