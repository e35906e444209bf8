"""Compiled reads over libsumo's C++ API give exactly what its getters give, and step aside where unsure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scenarios.specs import resolve_run
from simulation import native_reads
from simulation.native_reads import NATIVE_ENV, NATIVE_MIN_IDS, CheckedReads, native_getter

libsumo = pytest.importorskip("libsumo")


def test_std_string_values_hold_short_ids_in_place_and_point_at_long_ones() -> None:
    ids = ["gw_m0", "gw_e2_a_lane_id_of_some_length_0"]
    buf, chars = native_reads._strings(ids)
    raw = buf.view(np.uint8)
    short, long_ = (s.encode() for s in ids)
    assert int(buf[0, 0]) == buf.ctypes.data + 16 and int(buf[0, 1]) == len(short)
    assert bytes(raw[0, 16 : 16 + len(short) + 1]) == short + b"\0"
    assert int(buf[1, 0]) == chars.ctypes.data and int(buf[1, 1]) == len(long_) == int(buf[1, 2])
    assert bytes(chars[: len(long_) + 1]) == long_ + b"\0"


def test_libstdcxx_reads_our_strings_as_the_ids_they_hold() -> None:
    assert native_reads._layout_agrees()


def test_what_is_not_libsumo_or_not_known_keeps_the_getters() -> None:
    assert native_getter(object(), "inductionloop", "getIntervalVehicleNumber", ["gw_m0"]) is None
    assert native_getter(libsumo, "inductionloop", "noSuchGetter", ["gw_m0"]) is None
    assert native_getter(libsumo, "vehicle", "getSpeed", ["v0"], float) is None


@pytest.mark.sumo
def test_loop_and_zone_reads_equal_the_getters_tick_by_tick(tmp_path: Path) -> None:
    """Loops and lane-area zones on every lane of a small grid, read both ways for four simulated minutes."""
    import sumolib

    spec = replace(resolve_run(scenario="grid4x4", scenario_dir=tmp_path, seed=1, end_s=240.0), model="micro")
    net = sumolib.net.readNet(str(spec.net))
    lanes = [ln for e in net.getEdges() if e.getFunction() == "" for ln in e.getLanes()]
    e1 = [f"l{k}" if k % 2 else f"gw_loop_long_enough_{k}" for k in range(len(lanes))]  # short and long ids
    e2 = [f"gw_zone_{ln.getID()}" for ln in lanes]
    add = tmp_path / "dets.add.xml"
    body = [
        f'<inductionLoop id="{i}" lane="{ln.getID()}" pos="1" period="100000" file="NUL"/>'
        f'<laneAreaDetector id="{z}" lane="{ln.getID()}" pos="0" endPos="{ln.getLength():.2f}" period="100000" '
        'file="NUL"/>'
        for i, z, ln in zip(e1, e2, lanes, strict=True)
    ]
    add.write_text("<additional>" + "".join(body) + "</additional>", encoding="utf-8")
    assert spec.sumocfg is not None
    libsumo.start(["sumo", "-c", str(spec.sumocfg), "-a", str(add), "--no-step-log", "true", "--end", "240"])
    try:
        il, la = libsumo.inductionloop, libsumo.lanearea
        cases = [
            ("inductionloop", "getIntervalVehicleNumber", e1, int, il.getIntervalVehicleNumber),
            ("lanearea", "getIntervalVehicleNumber", e2, int, la.getIntervalVehicleNumber),
            ("lanearea", "getLastStepHaltingNumber", e2, int, la.getLastStepHaltingNumber),
            ("lanearea", "getLastStepOccupancy", e2, float, la.getLastStepOccupancy),
        ]
        readers = [native_getter(libsumo, dom, name, ids, kind) for dom, name, ids, kind, _get in cases]
        assert all(r is not None for r in readers), (
            "libsumo's C++ getters not found or std::string layout not confirmed"
        )
        seen = np.zeros(len(cases))
        for _ in range(240):
            libsumo.simulationStep()
            for k, (reader, (_dom, _name, ids, _kind, get)) in enumerate(zip(readers, cases, strict=True)):
                assert reader is not None
                got = reader.read()
                assert np.array_equal(got, [get(i) for i in ids]), cases[k][:2]
                seen[k] += got.sum()
        assert (seen > 0).all()
        occ = la.getLastStepOccupancy
        checked = CheckedReads(libsumo, "lanearea", "getLastStepOccupancy", e2, occ, returns=float, min_ids=1)
        assert checked.native is not None and np.array_equal(checked.read(), [occ(z) for z in e2])
        # A district's few ids keep the getter (NATIVE_MIN_IDS), and so does every read when switched off.
        assert len(e2) < NATIVE_MIN_IDS
        assert CheckedReads(libsumo, "lanearea", "getLastStepOccupancy", e2, occ, returns=float).native is None
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(NATIVE_ENV, "0")
            off = CheckedReads(libsumo, "lanearea", "getLastStepOccupancy", e2, occ, returns=float, min_ids=1)
            assert off.native is None and np.array_equal(off.read(), [occ(z) for z in e2])
    finally:
        libsumo.close()


def test_checked_reads_keep_to_the_getter_after_a_difference() -> None:
    class Wrong:
        n = 2

        def read(self) -> np.ndarray:
            return np.array([1.0, 5.0])

    checked = CheckedReads(object(), "inductionloop", "getIntervalVehicleNumber", ["a", "b"], {"a": 1, "b": 2}.get)
    assert checked.native is None  # not libsumo: the getter from the start
    checked.native, checked._checks = Wrong(), 3  # type: ignore[assignment]
    assert checked.read().tolist() == [1.0, 2.0] and checked.native is None
    assert checked.read().tolist() == [1.0, 2.0]
