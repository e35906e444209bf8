"""``greenwave emulate``: run emulated field controllers (Modbus TCP or NTCIP 1202) for many intersections."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.commands._field_args import add_link_security_args, snmp_credentials, tls_config
from api.commands._sumo_args import add_sumo_args
from field_io.protocols import protocol_names, protocol_spec

if TYPE_CHECKING:
    from field_io.emulator.runner import Emulator
    from field_io.endpoints import Endpoint

__all__ = ["register", "run", "parse_detector_faults"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "emulate",
        help="run emulated field controllers (Modbus TCP or NTCIP) for an inventory, optionally driving SUMO",
        description="Run a real local controller per intersection - its own safety supervisor, a fixed-time "
        "fallback plan and a watchdog - behind the greenwave Modbus TCP profile (one port, device id k for the "
        "k-th intersection) or NTCIP 1202 over SNMP (one UDP port per intersection: PORT, PORT+1, ...). With "
        "--sumo, the controllers' outputs drive the SUMO intersections and SUMO's detectors feed their inputs.",
    )
    p.add_argument("--protocol", required=True, choices=protocol_names(), help="field protocol")
    p.add_argument(
        "--intersection",
        metavar="FILE",
        help="inventory (.toml/.yaml) or SUMO network (.net.xml) with the intersections to emulate "
        "(optional with --sumo: then the scenario's network)",
    )
    p.add_argument("--port", type=int, required=True, metavar="N", help="TCP/UDP port (0: pick a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--sumo", metavar="SCENARIO", help="drive SUMO: a library scenario name, a scenario TOML or a .sumocfg"
    )
    p.add_argument("--lockstep", action="store_true", help="advance one tick per central step (software in the loop)")
    p.add_argument("--seed", type=int, default=42, help="SUMO seed (with --sumo; default 42)")
    p.add_argument("--tick", type=float, default=1.0, metavar="S", help="controller tick in seconds (default 1)")
    p.add_argument("--backup-time", type=float, default=5.0, metavar="S", help="watchdog backup time (default 5 s)")
    p.add_argument(
        "--resume-heartbeats",
        type=int,
        default=3,
        metavar="N",
        help="fresh heartbeats (with a new command block) before central gets control back (default 3)",
    )
    p.add_argument("--plan", metavar="FILE", help="fallback plans (JSON plan file); default: every stage 15 s")
    p.add_argument("--events", metavar="PATH", help="write high-resolution controller events (Indiana codes, gzip CSV)")
    p.add_argument(
        "--commissioning", action="store_true", help="the technician's commissioning switch is on (plan upload allowed)"
    )
    p.add_argument(
        "--detector-fault",
        action="append",
        default=[],
        metavar="ID:CH=KIND",
        help="emulate a faulty detector: KIND stuck, silent or chatter (e.g. J1:4=stuck); repeatable",
    )
    p.add_argument("--clock-offset", type=float, default=0.0, metavar="S", help="skew of the controller clock")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    p.add_argument(
        "--speed", type=float, default=1.0, metavar="X", help="run the controller clock X times real time (rehearsals)"
    )
    p.add_argument("--arrival-rate", type=float, default=0.1, metavar="VEH_S", help="synthetic demand per group")
    p.add_argument(
        "--ped-calls-per-hour",
        type=float,
        default=0.0,
        metavar="N",
        help="push-button presses per crossing and hour (Poisson; default 0: none)",
    )
    add_link_security_args(
        p,
        controller=True,
        insecure_demo_help="throw-away demo: accept SNMP writes with a default community and serve plaintext Modbus "
        "anywhere",
    )
    p.add_argument(
        "--plaintext-modbus",
        action="store_true",
        help="serve Modbus without TLS on a non-loopback --host (a closed cabinet network only)",
    )
    p.add_argument("--tls-role", metavar="ROLE", help="Modbus/TCP Security: role the client certificate must carry")
    p.add_argument("--ready-file", metavar="PATH", help="write the endpoints as JSON once listening")
    p.add_argument("--kpi-json", metavar="PATH", help="with --sumo: write the SUMO KPIs as JSON")
    p.add_argument(
        "--vehicle-feed-port",
        type=int,
        metavar="N",
        help="with --sumo: publish SUMO's buses and emergency vehicles (the AVL feed) as JSON lines on TCP port N",
    )
    add_sumo_args(p)
    p.set_defaults(func=run)


def parse_detector_faults(items: list[str]) -> dict[tuple[str, int], str]:
    from intersections.errors import InputError

    out: dict[tuple[str, int], str] = {}
    for it in items:
        try:
            where, kind = it.split("=", 1)
            iid, ch = where.rsplit(":", 1)
            out[(iid, int(ch))] = kind
        except ValueError:
            raise InputError(f"--detector-fault {it!r}: expected ID:CHANNEL=KIND, e.g. J1:4=stuck") from None
    return out


def _sumo_spec(args: argparse.Namespace) -> Any:
    from api.commands._sumo_args import spec_from_args

    if args.sumo.endswith(".json"):
        from api.sil import spec_from_json

        return spec_from_json(Path(args.sumo).read_text(encoding="utf-8"))
    args.tripinfo_output = None
    return spec_from_args(args, seed=args.seed, scenario=args.sumo)


def run(args: argparse.Namespace) -> int:
    emu = _emulator(args)
    try:
        eps = emu.start()
        _announce(args, emu, eps)

        def stop(signum: int, frame: Any) -> None:
            emu.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        kpis = emu.run()
        if kpis is not None:
            emu.wait_idle(5.0)
            print(f"simulation finished: {kpis.get('throughput_veh', 0):.0f} vehicles arrived", flush=True)
        if emu.events_path is not None:
            print(f"events written to {emu.events_path}", flush=True)
    finally:
        emu.close()
    if emu.error is not None:
        print(f"greenwave emulate: error: {emu.error}", file=sys.stderr)
        return 1
    return 0


def _emulator(args: argparse.Namespace) -> Emulator:
    """The emulator the options describe (not started), once they make sense together."""
    from api.sil import SimulationCoupling
    from field_io.emulator.core import EmulatorConfig
    from field_io.emulator.runner import Emulator
    from field_io.security import server_context
    from intersections.errors import InputError
    from intersections.loaders import load_network
    from intersections.plan import load_plans

    if not args.intersection and not args.sumo:
        raise InputError("give --intersection FILE (or --sumo SCENARIO to emulate a scenario's intersections)")
    if not 0 <= args.port < 65536:
        raise InputError(f"--port must be 0-65535, got {args.port}")
    if args.vehicle_feed_port is not None and not (args.sumo and 0 <= args.vehicle_feed_port < 65536):
        raise InputError(
            f"--vehicle-feed-port {args.vehicle_feed_port}: needs --sumo (the buses come from the SUMO run) "
            "and a port 0-65535"
        )
    network = load_network(args.intersection) if args.intersection else None
    plans = load_plans(args.plan).by_intersection() if args.plan else None
    config = EmulatorConfig(
        backup_time_s=args.backup_time,
        resume_heartbeats=args.resume_heartbeats,
        dt_s=args.tick,
        lockstep=args.lockstep,
        commissioning=args.commissioning,
        detector_faults=parse_detector_faults(args.detector_fault),
        clock_offset_s=args.clock_offset,
        speed=args.speed,
        ped_calls_per_hour=args.ped_calls_per_hour,
    )
    tls = None
    if (cfg := tls_config(args, role=args.tls_role)) is not None:
        if not protocol_spec(args.protocol).tls:
            raise InputError("--tls-* apply to Modbus; NTCIP uses SNMPv3 (--snmp-version 3)")
        tls = server_context(cfg)
    return Emulator(
        network,
        protocol=args.protocol,
        host=args.host,
        port=args.port,
        config=config,
        fallback_plans=plans,
        events_path=args.events,
        sumo_spec=_sumo_spec(args) if args.sumo else None,
        sumo_coupling=SimulationCoupling() if args.sumo else None,
        sumo_out_dir=args.out_dir,
        kpi_path=args.kpi_json,
        tls=tls,
        tls_role=args.tls_role,
        snmp=snmp_credentials(args),
        vendor=args.vendor,
        arrival_rate_veh_s=args.arrival_rate,
        duration_s=args.duration,
        vehicle_feed_port=args.vehicle_feed_port,
        insecure_demo=args.insecure_demo,
        plaintext_modbus=args.plaintext_modbus,
    )


def _announce(args: argparse.Namespace, emu: Emulator, eps: list[Endpoint]) -> None:
    """What a technician (or a test) reads once the controllers listen: endpoints, the vehicle feed,
    the demo warning, the mode, and the ready file with the endpoints as JSON."""
    for e in eps:
        dev = f" device {e.device_id}" if protocol_spec(args.protocol).device_id else ""
        print(f"{e.intersection}: {args.protocol} {e.host}:{e.port}{dev}", flush=True)
    if emu.feed is not None:
        print(f"vehicle feed (bus GPS, emergency): tcp {emu.feed.host}:{emu.feed.port}", flush=True)
    if args.insecure_demo and (why := emu.snmp.default_write) and protocol_spec(args.protocol).snmp_credentials:
        print(f"INSECURE DEMO: SNMP writes accepted although {why}", file=sys.stderr, flush=True)
    mode = "lockstep" if args.lockstep else f"real time, tick {args.tick:g} s"
    print(
        f"emulating {len(eps)} controller(s) ({mode}; backup time {args.backup_time:g} s; "
        f"commissioning switch {'on' if args.commissioning else 'off'}); Ctrl-C to stop",
        flush=True,
    )
    if args.ready_file:
        tmp = Path(str(args.ready_file) + ".tmp")
        tmp.write_text(json.dumps([e.to_json() for e in eps]), encoding="utf-8")
        tmp.replace(args.ready_file)
