"""The field-protocol table: every protocol has one complete row, and the generic code asks it, not an if."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from field_io.endpoints import Endpoint
from field_io.polled import PolledFieldBackend
from field_io.protocols import PROTOCOLS, FieldProtocol, protocol_names, protocol_spec
from intersections.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_every_protocol_has_one_row_and_every_row_loads() -> None:
    assert list(PROTOCOLS) == list(FieldProtocol)
    for proto, spec in PROTOCOLS.items():
        assert spec.protocol is proto
        assert issubclass(spec.backend_class(), PolledFieldBackend)
        from field_io.protocols import load

        assert inspect.iscoroutinefunction(load(spec.emulator_server))
        driver = load(spec.commissioning_driver)
        for method in ("connect", "status", "clock", "heartbeat", "configuration", "upload_fallback", "close"):
            assert callable(getattr(driver, method, None)), (proto, method)


def test_command_line_options_of_the_table_exist() -> None:
    from api.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    flags: set[str] = set()
    for command in ("commission", "emulate"):
        parser = sub.choices[command]  # type: ignore[attr-defined]
        flags |= {f for a in parser._actions for f in a.option_strings}
        assert list(parser._option_string_actions["--protocol"].choices) == protocol_names(), command
    for spec in PROTOCOLS.values():
        assert [o for o in spec.cli_options if o not in flags] == [], spec.protocol


def test_unknown_protocol_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown field protocol 'bacnet' \(known: modbus, ntcip\)"):
        protocol_spec("bacnet")


def test_endpoints_are_addressed_as_their_row_says() -> None:
    modbus = Endpoint("J1", "modbus", "10.0.0.5", 502, device_id=3)
    assert modbus.label == "controller J1 (modbus 10.0.0.5:502 device 3)"
    assert Endpoint("J1", "ntcip", "10.0.0.5", 161, device_id=300).label == "controller J1 (ntcip 10.0.0.5:161)"
    with pytest.raises(InputError, match="Modbus device id must be 1-247, got 300"):
        Endpoint("J1", "modbus", "10.0.0.5", 502, device_id=300)
    assert protocol_spec("ntcip").endpoint_detail(1, "econolite") == " (econolite profile)"


def test_reading_the_table_imports_no_protocol_stack() -> None:
    code = "import sys, field_io.protocols, field_io.endpoints; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert not {m for m in loaded if m.split(".")[0] in ("pymodbus", "pysnmp")}
    assert not {m for m in loaded if m.endswith((".backend", ".server", ".agent", ".emulate"))}


def test_no_branch_on_a_protocol_outside_the_protocol_packages() -> None:
    """Adding a protocol is one package and one row: generic code never asks `is FieldProtocol.X`."""
    pattern = re.compile(r"FieldProtocol\.(MODBUS|NTCIP)|protocol\s*[!=]=\s*[\"'](modbus|ntcip)[\"']")
    offenders = []
    for path in [*ROOT.glob("field_io/*.py"), *ROOT.glob("field_io/emulator/*.py"), *ROOT.glob("api/**/*.py")]:
        if path.name == "protocols.py":
            continue
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    assert offenders == []
