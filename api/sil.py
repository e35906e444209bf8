"""Software in the loop: engine -> Modbus or NTCIP -> emulated controllers -> SUMO, on one machine.

:func:`run_sil` starts ``greenwave emulate --sumo ... --lockstep`` as a child
process (the controllers and SUMO, driven by the project's own
:func:`simulation.runner.simulate`, so the KPIs are computed exactly as for a
direct run), then runs the central engine with the named controller against
it through the real protocol over a real 127.0.0.1 socket.

Lockstep makes it deterministic: each central tick reads the controllers'
status, decides, and sends one transaction per controller carrying the
heartbeat, the command block and a step request; each emulator answers once
its controllers and SUMO have advanced one step. The emulated controllers run
the same safety supervisor as the central engine, fed the same stage
requests, so with the same controller and seed the field path shows what a
direct SUMO run shows. The controllers report queues from their zone
detectors (Modbus profile 1.1 queues table, NTCIP ``gwGroupQueue``), and the
buses' GPS and emergency vehicles reach central on the emulator's vehicle feed
(:mod:`field_io.vehicle_feed`), as the city's AVL feed does beside the field
network; ``tests/field_io/test_sil.py`` checks the KPIs agree
within 5 %.

It lives above both ``field_io/`` and ``simulation/`` because it couples them
(DESIGN.md: field I/O never imports the simulator); :class:`SimulationCoupling`
is what the emulator gets, from here, to drive SUMO.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.engine import Engine
from controller.policies import make_policy
from field_io.endpoints import FieldProtocol, endpoints_from_json
from field_io.protocols import protocol_spec
from field_io.security import SnmpCredentials
from field_io.vehicle_feed import FeedBackend, VehicleFeedClient
from intersections.errors import SimulationError
from intersections.loaders.sumo_net import load_sumo_net
from intersections.network import Network

if TYPE_CHECKING:
    from simulation.runner import RunSpec

__all__ = ["SimulationCoupling", "run_sil", "spec_to_json", "spec_from_json"]

log = logging.getLogger("greenwave.field.sil")
ROOT = Path(__file__).resolve().parents[1]


class SimulationCoupling:
    """The simulator side of an emulator coupled to SUMO (:class:`field_io.emulator.runner.SumoCoupling`)."""

    def detector_network(self, base: Network, net_file: Path, add_file: Path) -> Network:
        """``base`` with the detectors the emulated controllers read, written to ``add_file`` for SUMO."""
        from simulation.detectors import generate_detectors

        return generate_detectors(base, net_file, add_file).network

    def simulate(self, spec: RunSpec, controller: str, **kw: Any) -> dict[str, Any]:
        """Run SUMO with the emulated controllers (``params={"core": ...}``) and return its KPIs."""
        from simulation.runner import simulate

        return simulate(spec, controller, **kw)


def spec_to_json(spec: RunSpec) -> str:
    """A :class:`~simulation.runner.RunSpec` as JSON (paths as strings)."""

    def conv(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        if isinstance(v, Mapping):
            return {k: conv(x) for k, x in v.items()}
        return v

    return json.dumps({k: conv(v) for k, v in asdict(spec).items()})


def spec_from_json(text: str) -> RunSpec:
    from simulation.runner import RunSpec

    d = json.loads(text)
    kw: dict[str, Any] = {}
    for f in fields(RunSpec):
        if f.name not in d:
            continue
        v = d[f.name]
        if f.name in ("net", "sumocfg", "tripinfo_output"):
            v = Path(v) if v is not None else None
        elif f.name in ("routes", "additional"):
            v = tuple(Path(x) for x in v)
        elif f.name in ("sumo_args", "scenario_args", "corridor"):
            v = tuple(v)
        kw[f.name] = v
    return RunSpec(**kw)


def run_sil(
    spec: RunSpec,
    controller: str,
    *,
    via: FieldProtocol | str,
    out_dir: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    progress: Callable[[float, float], None] | None = None,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Run ``controller`` through emulated field controllers that drive SUMO; return SUMO's KPIs.

    The KPI dictionary has the shape of :func:`simulation.runner.simulate`'s;
    ``meta`` names the central controller and adds ``via`` and the field-link
    statistics (ticks, failed transactions, comm-loss alarms).
    """
    from simulation.detectors import generate_detectors
    from simulation.runner import controller_params

    via = FieldProtocol(via)
    work = Path(tempfile.mkdtemp(prefix="gw-sil-"))
    out = Path(out_dir) if out_dir else work / "emulator"
    out.mkdir(parents=True, exist_ok=True)
    base = load_sumo_net(spec.net, additional_files=spec.additional, begin_s=spec.begin_s or 0.0)
    network = generate_detectors(base, spec.net, work / "gw_detectors.add.xml").network
    spec_file = work / "spec.json"
    spec_file.write_text(spec_to_json(spec), encoding="utf-8")
    ready, kpi_file = work / "ready.json", work / "kpis.json"
    # NTCIP: per-run communities (the emulator refuses SNMP writes with a default one, #16); the ready
    # file carries no secrets, so central gets them here.
    snmp = SnmpCredentials(community=f"gw-sil-{secrets.token_hex(6)}", write_community=secrets.token_hex(12))
    feed_port = _free_port()
    cmd = _emulator_command(via, spec, spec_file, ready, kpi_file, out, feed_port, snmp)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    log_file = work / "emulator.log"
    wall0 = time.perf_counter()
    with open(log_file, "wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env)
        try:
            endpoints = _wait_ready(proc, ready, log_file, timeout_s)
            kpis_central = _central(
                spec, controller, via, network, endpoints, params, progress, controller_params, feed_port, snmp
            )
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise SimulationError(
                    "the emulator did not finish after the run", where="software in the loop"
                ) from None
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if proc.returncode != 0 or not kpi_file.exists():
        raise SimulationError(
            f"the emulator failed (exit {proc.returncode}): {_tail(log_file)}", where="software in the loop"
        )
    kpis = json.loads(kpi_file.read_text(encoding="utf-8"))
    meta = kpis.setdefault("meta", {})
    meta.update(kpis_central)
    meta["controller"] = controller
    meta["via"] = via.value
    meta["wall_s"] = round(time.perf_counter() - wall0, 3)
    return kpis


def _emulator_command(
    via: FieldProtocol,
    spec: RunSpec,
    spec_file: Path,
    ready: Path,
    kpi_file: Path,
    out: Path,
    feed_port: int,
    snmp: SnmpCredentials,
) -> list[str]:
    """``greenwave emulate`` in lockstep with SUMO, as a child process, for one software-in-the-loop run."""
    cmd = [
        sys.executable,
        "-m",
        "api.cli",
        "emulate",
        "--protocol",
        via.value,
        "--port",
        "0",
        "--sumo",
        str(spec_file),
        "--lockstep",
        "--ready-file",
        str(ready),
        "--kpi-json",
        str(kpi_file),
        "--out-dir",
        str(out),
        "--tick",
        f"{spec.step_length_s:g}",
        "--resume-heartbeats",
        "1",
        "--vehicle-feed-port",
        str(feed_port),
    ]
    if protocol_spec(via).snmp_credentials:
        cmd += ["--community", snmp.community, "--write-community", snmp.set_community]
    return cmd


def _free_port() -> int:
    """An ephemeral TCP port for the emulator's vehicle feed (bound and released here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 6) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _wait_ready(proc: subprocess.Popen, ready: Path, log_file: Path, timeout_s: float) -> list[Any]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if ready.exists():
            return json.loads(ready.read_text(encoding="utf-8"))
        if proc.poll() is not None:
            raise SimulationError(
                f"the emulator exited before listening (exit {proc.returncode}): {_tail(log_file)}",
                where="software in the loop",
            )
        time.sleep(0.05)
    raise SimulationError(f"the emulator was not ready within {timeout_s:g} s", where="software in the loop")


def _central(
    spec: RunSpec,
    controller: str,
    via: FieldProtocol,
    network: Network,
    endpoints: list[Any],
    params: Mapping[str, Any] | None,
    progress: Callable[[float, float], None] | None,
    controller_params: Callable[..., dict[str, Any]],
    feed_port: int,
    snmp: SnmpCredentials,
) -> dict[str, Any]:
    eps = [replace(e, timeout_s=2.0, snmp=snmp) for e in endpoints_from_json(endpoints)]
    all_params = {**controller_params(controller, spec, network), **(params or {})}
    policy = make_policy(controller, **all_params)
    dt = spec.step_length_s
    field = protocol_spec(via).backend_class()(network, eps, dt_s=dt, lockstep=True)
    # Bus GPS and emergency vehicles reach central beside the controllers, as the city's AVL feed does.
    feed = VehicleFeedClient(network, "127.0.0.1", feed_port, timeout_s=10.0)
    backend = FeedBackend(field, feed, lockstep=True)
    ticks = 0
    with backend:
        if field.problems:
            raise SimulationError(
                "; ".join(f"{k}: {v}" for k, v in field.problems.items()), where="software in the loop"
            )
        engine = Engine(backend, policy)
        end = spec.end_s
        while True:
            res = engine.tick()
            ticks += 1
            if progress is not None:
                progress(res.time_s, end if end is not None else res.time_s)
            if backend.done:
                break
    return {
        "central_ticks": ticks,
        "field_alarms": len(field.alarms),
        "field_errors": int(sum(link.errors for link in field.links)),
        "field_problems": dict(field.problems),
        "vehicle_feed_messages": feed.messages,
    }
