"""What a run derives from its net, kept on disk by content (simulation/run_cache.py, issue #18).

A hit gives what the derivation gives (the same model, the same detector and loop files byte
for byte, the same arrays); a changed net, a corrupt entry or a switched-off cache derive
again; nothing is served stale.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import sumo_nets

import intersections.loaders.sumo_net as sumo_net
from simulation import run_cache, runner
from simulation.meso import Model
from simulation.runner import load_run_network, resolve_run

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sumo_nets.grid(tmp_path_factory.mktemp("run_cache"), n=3)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(run_cache.CACHE_ENV, str(folder))
    monkeypatch.setattr(runner, "_PROGRAMS", {})
    return folder


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every parse of the net by the model's loader."""
    calls: list[Path] = []
    real = sumo_net._read_net
    monkeypatch.setattr(sumo_net, "_read_net", lambda p: calls.append(p) or real(p))
    return calls


def _equal(a: object, b: object) -> bool:
    """Deep equality over the model's dataclasses, tuples, mappings and numpy arrays."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return isinstance(b, type(a)) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _model(network: runner.Network) -> tuple[object, ...]:
    return (network.intersections, sorted(network.graph.edges(data=True)), dict(network.graph.graph),
            network.unmodelled, network.source)  # fmt: skip


def test_a_hit_gives_the_same_model_without_reading_the_net(grid: Path, cache: Path, parses: list[Path]) -> None:
    spec = resolve_run(net=grid)
    first = load_run_network(spec)
    assert len(parses) == 1 and len(list(cache.glob("*.pkl"))) == 1
    again = load_run_network(spec)
    assert len(parses) == 1  # served from the cache
    assert again is not first and _equal(_model(again), _model(first))
    # The programs SUMO runs come with it (the backend asks for them next).
    assert runner.program_states(grid, (), begin_s=0.0) == sumo_net.running_programs(grid)


def test_a_changed_net_or_begin_is_read_again(grid: Path, cache: Path, parses: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "grid.net.xml"
    copy.write_bytes(grid.read_bytes())
    load_run_network(resolve_run(net=copy))
    load_run_network(resolve_run(net=copy, begin_s=10.0))
    assert len(parses) == 2  # another begin time: another entry
    text = copy.read_text()
    copy.write_text(text.replace("<net ", "<!-- edited -->\n<net ", 1))  # same size order, other content
    load_run_network(resolve_run(net=copy))
    assert len(parses) == 3


def test_a_corrupt_entry_is_a_miss_and_is_replaced(grid: Path, cache: Path, parses: list[Path]) -> None:
    spec = resolve_run(net=grid)
    first = load_run_network(spec)
    (entry,) = cache.glob("*.pkl")
    entry.write_bytes(entry.read_bytes()[:100])
    again = load_run_network(spec)
    assert len(parses) == 2 and _equal(_model(again), _model(first))
    load_run_network(spec)
    assert len(parses) == 2  # the rebuilt entry serves


def test_switched_off_nothing_is_kept(
    grid: Path, tmp_path: Path, parses: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(run_cache.CACHE_ENV, "0")
    assert run_cache.cache_dir() is None
    load_run_network(resolve_run(net=grid))
    load_run_network(resolve_run(net=grid))
    assert len(parses) == 2


def test_an_unwritable_cache_directory_is_no_error(grid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(run_cache.CACHE_ENV, str(blocker / "cache"))
    assert load_run_network(resolve_run(net=grid)).intersections


@pytest.mark.parametrize(("model", "exits"), [(Model.MICRO, False), (Model.MICRO, True), (Model.MESO, False)])
def test_kept_detectors_and_loops_are_the_derived_ones(grid: Path, cache: Path, tmp_path: Path, model: Model,
                                                       exits: bool) -> None:  # fmt: skip
    meso = model is Model.MESO  # meso has no exit zones
    spec = resolve_run(net=grid)
    network, key = runner._load_run_network(spec)
    assert key is not None
    derived, kept = tmp_path / "derived", tmp_path / "kept"
    derived.mkdir()
    kept.mkdir()
    d1, l1 = runner._detectors(spec, network, derived, exits=exits, meso=meso, net_key=key)
    import sumolib

    def no_parse(*_a: object, **_k: object) -> None:
        raise AssertionError("the net was parsed again")

    real = sumolib.net.readNet
    sumolib.net.readNet = no_parse
    try:
        d2, l2 = runner._detectors(spec, network, kept, exits=exits, meso=meso, net_key=key)
    finally:
        sumolib.net.readNet = real
    assert d2.additional == kept / "gw_detectors.add.xml"
    assert d1.additional.read_bytes() == d2.additional.read_bytes()
    assert (d1.e2_ids, d1.e1_ids, d1.exit_ids, d1.model_to_sumo, d1.exit_feeds) == (
        d2.e2_ids, d2.e1_ids, d2.exit_ids, d2.model_to_sumo, d2.exit_feeds)  # fmt: skip
    assert _equal(_model(d1.network), _model(d2.network))
    assert d2.network.graph is network.graph  # shared with the model, not a copy
    if not meso:
        assert l1 is None and l2 is None
        return
    assert l1 is not None and l2 is not None
    assert l2.additional == kept / "gw_meso_loops.add.xml" and l1.additional.read_bytes() == l2.additional.read_bytes()
    for name in ("pair_loop", "pair_flat", "pair_w0", "dep_loop", "dep_pair", "dep_w", "det_pair", "det_w",
                 "delay_s", "storage_veh", "stop_lanes", "zone_m"):  # fmt: skip
        np.testing.assert_array_equal(getattr(l1, name), getattr(l2, name), err_msg=name)
    assert (l1.loop_ids, l1.det_lane, l1.movement, l1.edge_length_m) == (
        l2.loop_ids, l2.det_lane, l2.movement, l2.edge_length_m)  # fmt: skip


def test_a_given_network_is_never_matched_to_an_entry(grid: Path, cache: Path, tmp_path: Path) -> None:
    """A caller's own network (edited, filtered) may differ from the file's: derived, not looked up."""
    spec = resolve_run(net=grid)
    network = load_run_network(spec)
    before = set(cache.glob("*.pkl"))
    runner._detectors(spec, network, tmp_path, exits=False, meso=True, net_key=None)
    assert set(cache.glob("*.pkl")) == before


@pytest.mark.parametrize("model", ["micro", "meso"])
def test_a_prepared_run_starts_without_reading_the_net(
    grid: Path, cache: Path, parses: list[Path], monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    import sumolib

    spec = resolve_run(net=grid, routes=[sumo_nets.flows(grid.parent, grid, end_s=60.0)], end_s=30.0, model=model)
    runner.prepare_run(spec, "actuated")
    assert len(parses) == 1

    def no_parse(*_a: object, **_k: object) -> None:
        raise AssertionError("the net was parsed again")

    monkeypatch.setattr(sumolib.net, "readNet", no_parse)
    kpis = runner.simulate(spec, "actuated")
    assert len(parses) == 1 and kpis["meta"]["ticks"] == 30


def test_the_least_recently_used_entries_go_first(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_cache, "MAX_ENTRIES", 3)
    keys = [f"{k:064x}" for k in range(5)]
    for k, key in enumerate(keys[:4]):
        run_cache.store(key, k)
        os.utime(cache / f"{key}.pkl", ns=(10**18 + k, 10**18 + k))  # stored long ago, in this order
    assert sorted(p.stem for p in cache.glob("*.pkl")) == keys[1:4]
    assert run_cache.load(keys[1]) == 1  # used now: the most recent of the three
    run_cache.store(keys[4], 4)
    assert sorted(p.stem for p in cache.glob("*.pkl")) == [keys[1], keys[3], keys[4]]
    monkeypatch.setattr(run_cache, "MAX_BYTES", 1)
    run_cache.store(keys[0], 0)
    assert [p.stem for p in cache.glob("*.pkl")] == [keys[0]]  # the newest always stays
