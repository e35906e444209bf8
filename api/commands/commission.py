"""``greenwave commission``: the field technician's checklist for one controller (Modbus or NTCIP)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from api.commands._field_args import add_link_security_args, snmp_credentials, tls_config
from field_io.protocols import protocol_names, protocol_spec

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commission",
        help="commission a field controller: identity, clock, configuration vs inventory, detectors, "
        "fallback plan upload, watchdog",
        description="Check one field controller against the intersection inventory and print a pass/fail "
        "checklist a technician can sign. Exit code 0 only if every check passed.",
    )
    p.add_argument("--protocol", required=True, choices=protocol_names(), help="field protocol")
    p.add_argument("--host", required=True, help="controller address")
    p.add_argument("--port", type=int, required=True, help="controller port (Modbus 502/802, SNMP 161)")
    p.add_argument("--intersection", required=True, metavar="FILE", help="the intersection inventory (.toml/.yaml)")
    p.add_argument("--id", dest="intersection_id", help="which intersection of the inventory (default: the only one)")
    p.add_argument("--json", metavar="PATH", help="also write the checklist as JSON")
    p.add_argument("--device-id", type=int, default=1, help="Modbus unit/device id (default 1)")
    p.add_argument("--plan", metavar="FILE", help="fallback plan to upload (JSON); default: every stage 15 s")
    p.add_argument("--window", type=float, default=60.0, metavar="S", help="detector observation window (default 60 s)")
    p.add_argument(
        "--max-window",
        type=float,
        metavar="S",
        help="watch a detector that has counted nothing by the end of the window on, up to S s, before calling "
        "it silent (default 3 x --window)",
    )
    p.add_argument("--poll", type=float, default=0.5, metavar="S", help="poll / heartbeat interval (default 0.5 s)")
    p.add_argument("--clock-tolerance", type=float, default=2.0, metavar="S", help="allowed clock skew (default 2 s)")
    p.add_argument("--no-watchdog", action="store_true", help="do not exercise the watchdog")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S", help="per-request timeout (default 1 s)")
    add_link_security_args(
        p,
        controller=False,
        insecure_demo_help="allow a default SNMP write community (public, private, ...): throw-away demos only",
    )
    p.set_defaults(func=run)


def _check_durations(args: argparse.Namespace) -> None:
    """Refuse a window or poll interval that is not a positive finite number of seconds, and a longest window
    shorter than the window, in one line naming the flag: a zero or negative window would pass the detector
    check without observing anything, and a zero poll would spin the loop."""
    from intersections.errors import InputError

    for flag, value in (("--window", args.window), ("--max-window", args.max_window), ("--poll", args.poll)):
        if value is not None and not (0.0 < value < math.inf):
            raise InputError(f"{flag} {value:g}: must be a positive number of seconds")
    if args.max_window is not None and args.max_window < args.window:
        raise InputError(
            f"--max-window {args.max_window:g}: shorter than --window {args.window:g} (it is the longest the "
            "window is extended to)"
        )


def run(args: argparse.Namespace) -> int:
    from field_io.commission import CommissionOptions, commission
    from field_io.endpoints import Endpoint, FieldProtocol
    from field_io.security import require_secure_snmp
    from intersections.errors import InputError
    from intersections.loaders import load_inventory
    from intersections.plan import load_plans

    _check_durations(args)
    network = load_inventory(args.intersection)
    if args.intersection_id:
        inter = network.get(args.intersection_id)
    elif len(network) == 1:
        inter = network.intersections[0]
    else:
        raise InputError(
            f"the inventory has {len(network)} intersections: choose one with --id ({', '.join(network.ids)})",
            where=args.intersection,
        )
    plan = None
    if args.plan:
        plans = load_plans(args.plan).by_intersection()
        if inter.id not in plans:
            raise InputError(f"no plan for intersection {inter.id}", where=args.plan)
        plan = plans[inter.id]
    ep = Endpoint(
        intersection=inter.id,
        protocol=FieldProtocol(args.protocol),
        host=args.host,
        port=args.port,
        device_id=args.device_id,
        vendor=args.vendor,
        timeout_s=args.timeout,
        retries=1,
        tls=tls_config(args),
        snmp=snmp_credentials(args),
    )
    if protocol_spec(ep.protocol).snmp_credentials:  # commissioning SETs (plan upload, heartbeats): never with `public`
        from field_io.ntcip.profiles import vendor_profile

        vendor_profile(ep.vendor)  # an unknown profile is the first thing to fix
        require_secure_snmp(ep.snmp, insecure_demo=args.insecure_demo, where="commission")
    opts = CommissionOptions(
        window_s=args.window,
        max_window_s=args.max_window,
        poll_s=args.poll,
        clock_tolerance_s=args.clock_tolerance,
        watchdog=not args.no_watchdog,
        plan=plan,
    )
    report = commission(ep, inter, opts)
    print(report.render(), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"checklist written to {args.json}")
    return 0 if report.passed else 1
