"""``greenwave commission`` against emulated controllers over real sockets: pass, and every kind of failure."""

from __future__ import annotations

import json

import pytest

from api.cli import main

from .conftest import EXAMPLE, TEST_SNMP

FAST = ["--window", "2", "--poll", "0.1", "--timeout", "0.3"]


def commission(capsys, proto: str, port: int, *extra: str, inventory=EXAMPLE) -> tuple[int, str]:
    args = ["commission", "--protocol", proto, "--host", "127.0.0.1", "--port", str(port)]
    if proto == "ntcip":
        args += ["--community", TEST_SNMP.community, "--write-community", TEST_SNMP.set_community]
    code = main([*args, "--intersection", str(inventory), *FAST, *extra])
    return code, capsys.readouterr().out


def statuses(path) -> dict[str, str]:
    return {c["name"]: c["status"] for c in json.loads(path.read_text())["checks"]}


@pytest.mark.parametrize("proto", ["modbus", "ntcip"])
def test_commissioning_passes_on_a_good_controller(example_net, emulator, capsys, tmp_path, proto: str) -> None:
    emu = emulator(example_net, proto, commissioning=True, backup_time_s=1.0, speed=20.0)
    out_json = tmp_path / "checklist.json"
    code, out = commission(capsys, proto, emu.endpoints[0].port, "--json", str(out_json))
    assert code == 0, out
    assert "RESULT: PASS" in out and "Signature:" in out
    report = json.loads(out_json.read_text())
    assert report["passed"] is True and report["intersection"] == "J1"
    assert set(statuses(out_json).values()) == {"pass"}
    wd = next(c for c in report["checks"] if c["name"] == "watchdog")
    assert 0.5 <= wd["measured"]["fallback_after_s"] <= 2.5
    assert emu.core.fallback_plans["J1"].cycle_s == 86.0  # the uploaded plan, read back


def test_faulty_detectors_are_listed(example_net, emulator, capsys, tmp_path) -> None:
    faults = {("J1", 4): "stuck", ("J1", 6): "chatter"}
    emu = emulator(example_net, "ntcip", commissioning=True, speed=40.0, detector_faults=faults)
    out_json = tmp_path / "c.json"
    # 3 s at 40 x = 120 s of controller time: a whole 86-s cycle, so P2 shows its green (a stuck loop is
    # one occupied through 10 s of its group's green without a count).
    longer = ("--window", "3", "--poll", "0.025")
    code, out = commission(capsys, "ntcip", emu.endpoints[0].port, "--no-watchdog", *longer, "--json", str(out_json))
    assert code == 1
    st = statuses(out_json)
    assert st["detectors"] == "fail" and st["identity"] == st["configuration"] == st["fallback plan"] == "pass"
    assert "D04 (channel 4, group P2): stuck on" in out
    assert "D06 (channel 6, group P6): chattering" in out


def test_a_dead_loop_is_watched_to_the_longest_window_then_silent(example_net, emulator, capsys, tmp_path) -> None:
    # A loop with no count at the end of the window is watched on (a quiet approach can go a minute
    # without a vehicle) - but a dead one is still called silent once the longest window has passed.
    emu = emulator(example_net, "modbus", commissioning=True, speed=40.0, detector_faults={("J1", 3): "silent"})
    out_json = tmp_path / "c.json"
    window = ("--window", "1", "--max-window", "2.5", "--poll", "0.025")
    code, out = commission(capsys, "modbus", emu.endpoints[0].port, "--no-watchdog", *window, "--json", str(out_json))
    assert code == 1, out
    assert "D03 (channel 3, group" in out and "silent, no vehicle" in out
    assert "the window of 1 s was extended to wait for traffic" in out
    det = next(c for c in json.loads(out_json.read_text())["checks"] if c["name"] == "detectors")
    assert 2.5 <= det["measured"]["window_s"] < 3.5
    assert sum(1 for line in out.splitlines() if "silent, no vehicle" in line) == 1  # the live loops counted


def test_switch_off_and_clock_skew_fail(example_net, emulator, capsys, tmp_path) -> None:
    emu = emulator(example_net, "modbus", commissioning=False, speed=20.0, clock_offset_s=30.0)
    out_json = tmp_path / "c.json"
    code, out = commission(capsys, "modbus", emu.endpoints[0].port, "--no-watchdog", "--json", str(out_json))
    assert code == 1
    st = statuses(out_json)
    # The skew is measured against the middle of the read: +29.98 as well as +30.02 on a busy machine.
    clock = next(c for c in json.loads(out_json.read_text())["checks"] if c["name"] == "heartbeat and clock")
    assert st["heartbeat and clock"] == "fail" and "clock skew +" in out and "exceeds 2 s" in out
    assert abs(clock["measured"]["clock_skew_s"] - 30.0) < 0.5
    assert st["fallback plan"] == "fail" and "NOT_COMMISSIONING" in out


def test_inventory_disagreement_lists_every_difference(example_net, emulator, capsys, tmp_path) -> None:
    emu = emulator(example_net, "modbus", commissioning=True, speed=20.0)
    text = EXAMPLE.read_text(encoding="utf-8")
    changed = text.replace("min_green_s = 12", "min_green_s = 15", 1).replace("all_red_s = 2.5", "all_red_s = 3.0", 1)
    assert changed != text
    inv = tmp_path / "changed.toml"
    inv.write_text(changed, encoding="utf-8")
    code, out = commission(capsys, "modbus", emu.endpoints[0].port, "--no-watchdog", inventory=inv)
    assert code == 1
    assert "group P2: min_green_s controller 12 s, inventory 15 s" in out
    assert "group P4: all_red_s controller 2.5 s, inventory 3 s" in out


def test_unreachable_controller(capsys) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = commission(capsys, "modbus", port)
    assert code == 1
    assert "[FAIL] 1. identity: unreachable" in out
    assert "not run (an earlier check failed)" in out
