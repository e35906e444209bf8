"""Fixtures for the control-centre tests: a real uvicorn server in a thread, over a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gwlive import LiveServer, fake_settings


@pytest.fixture(scope="session")
def demo_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo scenario's SUMO network, built once per session (netgenerate, no simulation)."""
    from scenarios.specs import resolve_run

    spec = resolve_run(scenario="demo", scenario_dir=tmp_path_factory.mktemp("demo-scenario"), seed=42)
    return spec.net


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, demo_net: Path) -> Iterator[LiveServer]:
    """One running service (fake backend over the demo network) shared by a test module.

    The two-person rule is off here (one engineer activates alone, as a deployment may
    choose); ``test_approvals.py`` runs its own service with the rule on.
    """
    settings = fake_settings(tmp_path_factory.mktemp("live"), demo_net, two_person_rule=False)
    with LiveServer(**settings) as srv:
        srv.wait_healthy()
        yield srv


@pytest.fixture(scope="module")
def tokens(live: LiveServer) -> dict[str, str]:
    return {u: live.login(u) for u in ("admin", "engineer", "operator", "technician", "viewer")}
