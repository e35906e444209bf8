"""``greenwave emulate`` as a process, and one-line errors for bad input."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time

from api.cli import main

from .conftest import EXAMPLE, ROOT


def test_emulate_process_serves_and_writes_events(tmp_path) -> None:
    ready = tmp_path / "ready.json"
    events = tmp_path / "events.csv.gz"
    cmd = [sys.executable, "-m", "api.cli", "emulate", "--protocol", "modbus", "--intersection", str(EXAMPLE)]
    cmd += ["--port", "0", "--ready-file", str(ready), "--events", str(events), "--speed", "20"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env, text=True)
    try:
        t0 = time.monotonic()
        while not ready.exists() and time.monotonic() - t0 < 30:
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            time.sleep(0.05)
        eps = json.loads(ready.read_text())
        assert eps[0]["intersection"] == "J1" and eps[0]["device_id"] == 1 and eps[0]["port"] > 0
        time.sleep(3.0)  # 60 simulated seconds of the local plan: its first yellow comes at 36 s
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert f"J1: modbus 127.0.0.1:{eps[0]['port']} device 1" in out
    with gzip.open(events, "rt") as f:
        rows = f.read().splitlines()
    assert rows[0] == "TimeStamp,DeviceId,EventId,Parameter"
    codes = {int(r.split(",")[2]) for r in rows[1:]}
    assert {1, 8, 10}.issubset(codes)  # begin green, begin yellow, begin red clearance (Indiana codes)


def test_bad_input_prints_one_line(capsys, tmp_path) -> None:
    assert main(["emulate", "--protocol", "modbus", "--port", "0"]) == 2
    assert "give --intersection FILE" in capsys.readouterr().err
    assert main(["emulate", "--protocol", "modbus", "--port", "0", "--intersection", str(tmp_path / "none.toml")]) == 2
    assert "file not found" in capsys.readouterr().err
    args = ["emulate", "--protocol", "modbus", "--port", "0", "--intersection", str(EXAMPLE)]
    assert main([*args, "--detector-fault", "J1:99=stuck", "--duration", "0.1"]) == 2
    assert "no detector on channel 99" in capsys.readouterr().err
    assert main([*args, "--vehicle-feed-port", "5000"]) == 2
    assert "--vehicle-feed-port 5000: needs --sumo" in capsys.readouterr().err
    args = ["commission", "--protocol", "ntcip", "--host", "127.0.0.1", "--port", "1"]
    code = main([*args, "--intersection", str(EXAMPLE), "--vendor", "acme"])
    assert code == 2 and "unknown NTCIP vendor profile 'acme'" in capsys.readouterr().err


def test_secure_by_default_refuses_in_one_line(capsys) -> None:
    """#16: no SNMP writes with a default community, no plaintext Modbus off loopback, unless asked."""
    emu = ["emulate", "--port", "0", "--intersection", str(EXAMPLE), "--duration", "0.1"]
    assert main([*emu, "--protocol", "ntcip"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing SNMP writes" in err and "'public', a well-known default" in err
    assert "--insecure-demo" in err
    assert main([*emu, "--protocol", "ntcip", "--community", "x7", "--write-community", "private"]) == 2
    assert "the write community is 'private'" in capsys.readouterr().err
    assert main([*emu, "--protocol", "modbus", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to serve Modbus without TLS on 0.0.0.0" in err
    com = ["commission", "--protocol", "ntcip", "--host", "127.0.0.1", "--port", "1", "--intersection", str(EXAMPLE)]
    assert main(com) == 2
    assert "commission: refusing SNMP writes" in capsys.readouterr().err
    # The explicit demo starts (and says so), and so does a non-default write community.
    assert main([*emu, "--protocol", "ntcip", "--insecure-demo"]) == 0
    assert "INSECURE DEMO: SNMP writes accepted" in capsys.readouterr().err
    assert main([*emu, "--protocol", "ntcip", "--write-community", "t0ps3cret-J1"]) == 0
    assert "INSECURE" not in capsys.readouterr().err


def test_example_endpoints_file_loads(tmp_path) -> None:
    from field_io.endpoints import load_endpoints
    from intersections.errors import InputError

    eps = load_endpoints(EXAMPLE.parent / "field.toml")
    assert [(e.intersection, e.protocol.value, e.port, e.device_id) for e in eps] == [("J1", "modbus", 502, 1)]
    assert "controller J1 (modbus 10.20.1.15:502 device 1)" == eps[0].label
    bad = tmp_path / "bad.toml"
    bad.write_text('[[controller]]\nintersection = "J1"\nprotocol = "modbus"\nhost = "h"\nport = 502\ndevice = 3\n')
    try:
        load_endpoints(bad)
    except InputError as e:
        assert str(e) == f"{bad}:controller[0].device: unknown field 'device' (did you mean 'device_id'?)"
    else:
        raise AssertionError("an unknown key must be refused")
    # One line naming file, table and field, as every configuration file (intersections.config).
    for body, said in (
        ('port = 70000\n', "controller[0].port: must be <= 65535, got 70000"),
        ('port = "502"\n', "controller[0].port: must be a whole number, got '502'"),
        ('port = 502\n[controller.snmp]\nversion = 3\n', "controller[0].snmp: SNMPv3 needs a user name"),
        ('port = 502\n[controller.snmp]\nversion = "3"\n',
         "controller[0].snmp.version: must be a whole number, got '3'"),
        ('port = 502\n[controller.snmp]\ncomunity = "x"\n',
         "controller[0].snmp.comunity: unknown field 'comunity' (did you mean 'community'?)"),
        ('port = 502\n[controller.snmp]\nxyz = "x"\n', "controller[0].snmp.xyz: unknown field 'xyz' "
         "(known here: auth_key, auth_protocol, community, priv_key, priv_protocol, user, version, write_community)"),
        ('port = 502\n[controller.tls]\ncert = "c.pem"\nkey = "k.pem"\n',
         "controller[0].tls.ca: missing required field"),
        ('port = 502\n[controller.tls]\ncert = "c.pem"\nkey = "k.pem"\nca = "a.pem"\n',
         "controller[0].tls: TLS cert file not found: c.pem"),
    ):
        bad.write_text(f'[[controller]]\nintersection = "J1"\nprotocol = "modbus"\nhost = "h"\n{body}')
        try:
            load_endpoints(bad)
        except InputError as e:
            assert str(e) == f"{bad}:{said}"
        else:
            raise AssertionError(f"{body!r} must be refused")


def test_commission_refuses_a_window_that_cannot_observe(capsys) -> None:
    """A zero or negative --window would pass the detector check having watched nothing; --max-window is the
    longest the window is extended to, so it cannot be shorter than --window."""
    args = ["commission", "--protocol", "modbus", "--host", "127.0.0.1", "--port", "1", "--intersection", str(EXAMPLE)]
    for extra, said in (
        (["--window", "0"], "--window 0: must be a positive number of seconds"),
        (["--window", "-5"], "--window -5: must be a positive number of seconds"),
        (["--window", "nan"], "--window nan: must be a positive number of seconds"),
        (["--max-window", "-1"], "--max-window -1: must be a positive number of seconds"),
        (["--poll", "0"], "--poll 0: must be a positive number of seconds"),
        (["--window", "30", "--max-window", "10"], "--max-window 10: shorter than --window 30"),
    ):
        assert main([*args, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and said in err, (extra, err)
