"""Compiled reads over libsumo's C++ API give exactly what its getters give, and step aside where unsure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scenarios.specs import resolve_run
from simulation import native_reads
from simulation.native_reads import native_int_getter

libsumo = pytest.importorskip("libsumo")


def test_std_string_values_point_into_themselves() -> None:
    buf = native_reads._strings(["gw_m0", "gw_m12345"])
    assert buf is not None
    raw = buf.view(np.uint8)
    for k, text in enumerate((b"gw_m0", b"gw_m12345")):
        assert int(buf[k, 0]) == buf.ctypes.data + 32 * k + 16
        assert int(buf[k, 1]) == len(text)
        assert bytes(raw[k, 16 : 16 + len(text) + 1]) == text + b"\0"


def test_ids_too_long_for_the_in_place_buffer_keep_the_getters() -> None:
    assert native_reads._strings(["x" * 16]) is None
    assert native_int_getter(libsumo, "inductionloop", "getIntervalVehicleNumber", ["gw_" + "m" * 20]) is None


def test_a_module_that_is_not_libsumo_keeps_the_getters() -> None:
    assert native_int_getter(object(), "inductionloop", "getIntervalVehicleNumber", ["gw_m0"]) is None


@pytest.mark.sumo
def test_loop_counts_equal_the_getters_tick_by_tick(tmp_path: Path) -> None:
    """Loops on every lane of a small grid in meso, read both ways for four simulated minutes."""
    import sumolib

    spec = replace(resolve_run(scenario="grid4x4", scenario_dir=tmp_path, seed=1, end_s=240.0), model="meso")
    net = sumolib.net.readNet(str(spec.net))
    lanes = [ln.getID() for e in net.getEdges() if e.getFunction() == "" for ln in e.getLanes()]
    ids = [f"gw_t{k}" for k in range(len(lanes))]
    add = tmp_path / "loops.add.xml"
    body = [
        f'<inductionLoop id="{i}" lane="{ln}" pos="1" period="100000" file="NUL"/>'
        for i, ln in zip(ids, lanes, strict=True)
    ]
    add.write_text("<additional>" + "".join(body) + "</additional>", encoding="utf-8")
    assert spec.sumocfg is not None
    libsumo.start(["sumo", "-c", str(spec.sumocfg), "--mesosim", "true", "-a", str(add), "--no-step-log", "true",
                   "--end", "240"])  # fmt: skip
    try:
        reader = native_int_getter(libsumo, "inductionloop", "getIntervalVehicleNumber", ids)
        assert reader is not None, "libsumo's C++ getter not found or std::string layout not confirmed"
        get = libsumo.inductionloop.getIntervalVehicleNumber
        out = np.empty(len(ids))
        for _ in range(240):
            libsumo.simulationStep()
            assert np.array_equal(reader.read(out), [get(i) for i in ids])
        assert out.sum() > 50
    finally:
        libsumo.close()
