"""How many field controllers one central process drives at 1 Hz (Modbus TCP and NTCIP).

One central process (this one) runs the real engine - ``ModbusBackend`` or
``NtcipBackend``, the ``actuated`` policy and the safety supervisor - against
N emulated controllers that run in separate processes (``greenwave emulate``,
each serving a share of the intersections on 127.0.0.1), once per second.
A **poll cycle** is one poll of all N controllers, as the engine's ``read``
does it: Modbus, one function-23 transaction per controller that also carries
the heartbeat, pipelined on one connection per emulator port (each port is a
gateway for up to 247 controllers, one unit id each), each connection's
answers decoded as soon as they are all in; NTCIP, one GET per
controller, one UDP agent each, every GET sent from one socket and the
answers decoded a controller shape at a time; decoded into the observation. The farm runs
``--per-process`` controllers per emulator process (default 1,000 Modbus,
250 NTCIP).
N is *sustained* when the p99 poll cycle stays under 200 ms and every
controller stays under central control with no failed transaction, while the
engine also decides and commands every tick (Modbus: a function-16 block when
a command changed; NTCIP: the complete command block SET, which is also the
heartbeat, when it changed and at least every unitBackupTime / 3, the tick's
SETs as one batch). The whole engine tick (poll + decide + command) is
reported beside it. The farm's processes freeze their start-up objects out of
the cyclic garbage collector (``Emulator.run`` in a main thread), as central does.
A Modbus emulator answers a connection's run of steady-state status requests as
arrays (``ModbusFieldServer.answer_status_batch``: the same bytes as one by one),
as central builds and decodes a connection's requests as arrays.

The ladder of N is measured side by side in one run; the table gives the
cycle latency (p50 / p99), the central's CPU per controller and second, and
the share of controllers under central control. Beside the poll's latency, the central's CPU
inside the poll (p50): a latency several times that CPU is time spent waiting - for the
emulators' answers, or for a core on a shared machine. The headline lines come last.

Usage::

    .venv/bin/python benchmarks/bench_field_poll.py            # full ladders
    .venv/bin/python benchmarks/bench_field_poll.py --quick    # small ladders (smoke test)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.engine import Engine  # noqa: E402
from controller.policies import make_policy  # noqa: E402
from field_io.endpoints import endpoints_from_json  # noqa: E402
from field_io.protocols import protocol_spec  # noqa: E402
from field_io.security import SnmpCredentials  # noqa: E402
from intersections.loaders import load_inventory  # noqa: E402
from intersections.network import Network  # noqa: E402

EXAMPLE = ROOT / "examples" / "intersection.toml"
P99_LIMIT_S = 0.200
WRITE_COMMUNITY = secrets.token_hex(8)  # this run's SNMP write community (emulators and central)


def inventory_text(ids: list[str]) -> str:
    """The example intersection repeated under other ids (TOML)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("[[intersection]]")
    end = text.index("[[node]]")
    block = text[start:end]
    return "\n".join(block.replace('id = "J1"', f'id = "{i}"', 1) for i in ids)


def network(n: int) -> Network:
    base = load_inventory(EXAMPLE).intersections[0]
    return Network(tuple(dataclasses.replace(base, id=f"J{k + 1}") for k in range(n)), nx.DiGraph())


def start_emulators(protocol: str, n: int, per_process: int, work: Path) -> tuple[list, list]:
    procs, eps = [], []
    ids = [f"J{k + 1}" for k in range(n)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    chunks = [ids[i : i + per_process] for i in range(0, n, per_process)]
    for k, chunk in enumerate(chunks):
        inv = work / f"{protocol}-{n}-{k}.toml"
        inv.write_text(inventory_text(chunk), encoding="utf-8")
        ready = work / f"{protocol}-{n}-{k}.ready.json"
        ready.unlink(missing_ok=True)  # a retry of the same level must not read the previous run's ports
        cmd = [sys.executable, "-m", "api.cli", "emulate", "--protocol", protocol, "--intersection", str(inv)]
        cmd += ["--port", "0", "--ready-file", str(ready), "--backup-time", "10"]
        if protocol_spec(protocol).snmp_credentials:
            cmd += ["--write-community", WRITE_COMMUNITY]  # never a default community for SETs
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env)
        procs.append((p, ready))
    for p, ready in procs:
        t0 = time.monotonic()
        while not ready.exists():
            if p.poll() is not None:
                raise RuntimeError(f"emulator failed: {p.stderr.read().decode() if p.stderr else ''}")
            if time.monotonic() - t0 > 300:
                raise RuntimeError("emulator not ready within 300 s")
            time.sleep(0.1)
        eps += endpoints_from_json(json.loads(ready.read_text()))
    return [p for p, _ in procs], eps


def stop(procs: list) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stderr is not None:
            p.stderr.close()


def proc_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of other processes (the emulator farm), from /proc (0 where unavailable)."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / hz
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(protocol: str, n: int, *, ticks: int, warmup: int, work: Path, per: int | None = None) -> dict:
    per = per or (1000 if protocol == "modbus" else 250)
    procs, eps = start_emulators(protocol, n, per, work)
    net = network(n)
    eps = [dataclasses.replace(e, timeout_s=2.0, retries=0) for e in eps]
    if protocol_spec(protocol).snmp_credentials:
        eps = [dataclasses.replace(e, snmp=SnmpCredentials(write_community=WRITE_COMMUNITY)) for e in eps]
    backend = protocol_spec(protocol).backend_class()(net, eps, dt_s=1.0)
    marks: list[float] = []
    polls: list[float] = []
    poll_cpu: list[float] = []  # central's CPU inside each poll: wall much above it is waiting (farm, cores)
    advance, read = backend.advance, backend.read

    def timed_advance() -> float:
        marks.append(time.perf_counter())
        return advance()

    def timed_read():  # type: ignore[no-untyped-def]
        t, c = time.perf_counter(), time.process_time()
        obs = read()
        polls.append(time.perf_counter() - t)
        poll_cpu.append(time.process_time() - c)
        return obs

    backend.advance = timed_advance  # type: ignore[method-assign]
    backend.read = timed_read  # type: ignore[method-assign]
    cycles, cpu = [], []
    try:
        t_open = time.perf_counter()
        backend.open()
        open_s = time.perf_counter() - t_open
        engine = Engine(backend, make_policy("actuated"))
        # A long-running central freezes its start-up objects out of the cyclic GC (Python's gc.freeze):
        # the collector then walks only what each tick allocates.
        gc.collect()
        gc.freeze()
        pids = [p.pid for p in procs]
        for k in range(warmup + ticks):
            if k == warmup:
                farm0, wall0, load0 = proc_cpu_s(pids), time.perf_counter(), os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            res = engine.tick()
            if k >= warmup:
                cycles.append(marks[-1] - t0)
                cpu.append(time.process_time() - c0)
        farm_s = proc_cpu_s(pids) - farm0
        wall_s = time.perf_counter() - wall0
        load = (load0 + os.getloadavg()[0]) / 2
        central = float(res.observation.extra["central_control"].mean())
        healthy = float((~res.observation.fault).mean())
        errors = int(sum(link.errors for link in backend.links))
        problems = len(backend.problems)
    finally:
        gc.unfreeze()
        backend.close()
        stop(procs)
        time.sleep(1.0)  # let the emulators' sockets close before the next level connects
    c = np.asarray(cycles)
    pc = np.asarray(polls[-ticks:])
    return {
        "protocol": protocol,
        "n": n,
        "p50_ms": float(np.percentile(pc, 50) * 1000),
        "p99_ms": float(np.percentile(pc, 99) * 1000),
        "poll_cpu_p50_ms": float(np.percentile(np.asarray(poll_cpu[-ticks:]), 50) * 1000),
        "tick_p50_ms": float(np.percentile(c, 50) * 1000),
        "tick_p99_ms": float(np.percentile(c, 99) * 1000),
        "cpu_us_per_ctl": float(np.mean(cpu) / n * 1e6),
        "farm_us_per_ctl": float(farm_s / wall_s / n * 1e6),
        "load": float(load),
        "central": central,
        "healthy": healthy,
        "errors": errors,
        "problems": problems,
        "open_s": open_s,
    }


def sustained(r: dict) -> bool:
    return r["p99_ms"] < P99_LIMIT_S * 1000 and r["central"] == 1.0 and r["errors"] == 0 and r["problems"] == 0


def ladder(
    protocol: str, levels: list[int], *, ticks: int, warmup: int, work: Path, per: int | None = None
) -> tuple[int, list[dict]]:
    best, rows = 0, []
    for n in levels:
        r = measure(protocol, n, ticks=ticks, warmup=warmup, work=work, per=per)
        ok = sustained(r)
        if not ok:  # the machine is shared: a level that fails is measured once more before the ladder stops
            print(f"{protocol:6s} N={n:5d}  first try: poll p99 {r['p99_ms']:.1f} ms; measuring again", flush=True)
            r = measure(protocol, n, ticks=ticks, warmup=warmup, work=work, per=per)
            ok = sustained(r)
        rows.append(r)
        print(
            f"{protocol:6s} N={n:5d}  poll cycle p50 {r['p50_ms']:6.1f} p99 {r['p99_ms']:6.1f} ms "
            f"(central cpu {r['poll_cpu_p50_ms']:5.1f})  "
            f"engine tick p50 {r['tick_p50_ms']:6.1f} p99 {r['tick_p99_ms']:6.1f} ms  "
            f"cpu {r['cpu_us_per_ctl']:5.1f} us/controller/s (emulators {r['farm_us_per_ctl']:5.1f})  "
            f"load {r['load']:4.1f}  central {r['central']:.3f}  errors {r['errors']}  "
            f"{'ok' if ok else 'NOT sustained'}",
            flush=True,
        )
        if not ok:
            break
        best = n
    return best, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small ladders (a smoke test)")
    ap.add_argument("--ticks", type=int, default=12, help="measured ticks per level (default 12)")
    ap.add_argument("--only", choices=["modbus", "ntcip"], help="one protocol's ladder only")
    ap.add_argument("--modbus-levels", metavar="N,N,...", help="the Modbus ladder (default 250 ... 6000)")
    ap.add_argument("--ntcip-levels", metavar="N,N,...", help="the NTCIP ladder (default 100 ... 1500)")
    ap.add_argument("--per-process", type=int, metavar="N", help="controllers per emulator process")
    args = ap.parse_args()
    if args.quick:
        mb_levels, nt_levels, ticks, warmup = [100, 200], [50, 100], 4, 2
    else:
        mb_levels = [250, 500, 1000, 2000, 3000, 4000, 5000, 6000]
        nt_levels = [100, 250, 500, 1000, 1500]
        ticks, warmup = args.ticks, 4
    if args.modbus_levels:
        mb_levels = [int(x) for x in args.modbus_levels.split(",")]
    if args.ntcip_levels:
        nt_levels = [int(x) for x in args.ntcip_levels.split(",")]
    print(f"bench_field_poll: one central process, emulators in separate processes, 1 Hz, {os.cpu_count()} cores")
    print(f"sustained = p99 poll cycle < {P99_LIMIT_S * 1000:.0f} ms, every controller under central control")
    with tempfile.TemporaryDirectory(prefix="gw-bench-field-") as d:
        work = Path(d)
        mb, mb_rows, nt, nt_rows = 0, [], 0, []
        if args.only != "ntcip":
            mb, mb_rows = ladder("modbus", mb_levels, ticks=ticks, warmup=warmup, work=work, per=args.per_process)
        if args.only != "modbus":
            nt, nt_rows = ladder("ntcip", nt_levels, ticks=ticks, warmup=warmup, work=work, per=args.per_process)
    best_mb = next((r for r in mb_rows if r["n"] == mb), None)
    best_nt = next((r for r in nt_rows if r["n"] == nt), None)
    if best_mb and best_nt:
        print(
            f"cpu per controller, NTCIP / Modbus: "
            f"{best_nt['cpu_us_per_ctl'] / max(best_mb['cpu_us_per_ctl'], 1e-9):.1f}x "
            f"(SNMP GET + SET vs one Modbus read/write transaction)"
        )
    # Central CPU per controller is the figure that does not move with the machine's other load as much as
    # latency does: taken at the largest level measured (sustained or not).
    for name, rows in (("modbus", mb_rows), ("ntcip", nt_rows)):
        if rows:
            r = rows[-1]
            print(
                f"{name}_central_cpu_us_per_controller: {r['cpu_us_per_ctl']:.1f} (N={r['n']}; "
                f"{1e6 / max(r['cpu_us_per_ctl'], 1e-9):.0f} controllers per central core at 1 Hz; "
                f"emulators {r['farm_us_per_ctl']:.1f} us/controller/s; load average {r['load']:.1f} on "
                f"{os.cpu_count()} cores)"
            )
    if best_mb:
        print(f"modbus_p99_poll_ms_at_sustained: {best_mb['p99_ms']:.1f}")
        print(f"modbus_p99_engine_tick_ms_at_sustained: {best_mb['tick_p99_ms']:.1f}")
    if best_nt:
        print(f"ntcip_p99_poll_ms_at_sustained: {best_nt['p99_ms']:.1f}")
        print(f"ntcip_p99_engine_tick_ms_at_sustained: {best_nt['tick_p99_ms']:.1f}")
    print(f"controllers_sustained: {mb}")
    print(f"ntcip_controllers_sustained: {nt}")


if __name__ == "__main__":
    main()
