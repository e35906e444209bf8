"""A run's start-up reads its SUMO net once per parser setup (issue #18: a city's net takes seconds).

The intersection model and the programs SUMO runs come from one parse; the detectors and the
meso loops share another. What each produces must not change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import intersections.loaders.sumo_net as sumo_net
from intersections.loaders.sumo_net import running_programs
from simulation import runner
from simulation.detectors import generate_detectors
from simulation.meso import meso_reader
from simulation.runner import load_run_network, program_states, resolve_run


def _netgenerate() -> str:
    candidates: list[str | Path | None] = []
    try:
        import sumo

        candidates.append(Path(sumo.SUMO_HOME) / "bin" / "netgenerate")
    except ImportError:
        pass
    candidates += [Path(sys.executable).parent / "netgenerate", shutil.which("netgenerate")]
    for c in candidates:
        if c and Path(c).exists():
            return str(c)
    pytest.skip("netgenerate not found (install eclipse-sumo)")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = _netgenerate()
    out = tmp_path_factory.mktemp("startup") / "grid.net.xml"
    env = {**os.environ, "SUMO_HOME": str(Path(exe).parents[1])}
    subprocess.run(
        [exe, "--grid", "--grid.number=3", "--grid.length=200", "--default.lanenumber=2", "--tls.guess=true",
         "-o", str(out)],
        check=True, capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    return out


def test_programs_come_from_the_network_parse(grid: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = running_programs(grid)
    calls: list[Path] = []
    real = sumo_net._read_net
    monkeypatch.setattr(sumo_net, "_read_net", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(runner, "_PROGRAMS", {})
    spec = resolve_run(net=grid)
    load_run_network(spec)
    assert program_states(spec.net, spec.additional, begin_s=0.0) == expected
    assert len(calls) == 1  # the programs were not read again
    # A changed file is read again, never served stale.
    grid.touch()
    os.utime(grid, ns=(grid.stat().st_atime_ns, grid.stat().st_mtime_ns + 10**9))
    assert program_states(spec.net, spec.additional, begin_s=0.0) == expected
    assert len(calls) == 2


def test_shared_parse_writes_the_same_detectors_and_loops(grid: Path, tmp_path: Path) -> None:
    import sumolib

    network = load_run_network(resolve_run(net=grid))
    own, shared = tmp_path / "own", tmp_path / "shared"
    own.mkdir()
    shared.mkdir()
    parsed = sumolib.net.readNet(str(grid))
    d1 = generate_detectors(network, grid, own / "d.add.xml", exits=True)
    d2 = generate_detectors(network, grid, shared / "d.add.xml", exits=True, sumo_net=parsed)
    assert (own / "d.add.xml").read_bytes() == (shared / "d.add.xml").read_bytes()
    f1, r1 = meso_reader(d1, grid, own, 1.0)
    f2, r2 = meso_reader(d2, grid, shared, 1.0, parsed)
    assert f1.read_bytes() == f2.read_bytes()
    assert r1.loops.loop_ids == r2.loops.loop_ids and r1.loops.edge_length_m == r2.loops.edge_length_m
