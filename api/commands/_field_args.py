"""How central and a field controller secure their link: the same flags on both sides.

``greenwave commission`` (central's side) and ``greenwave emulate`` (the controller's side) take
the same NTCIP vendor, SNMP and Modbus/TCP Security flags and read them the same way; only which
side is "this" one differs in the help.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the commands import their libraries when run, not when the CLI starts
    from field_io.security import SnmpCredentials, TlsConfig

__all__ = ["add_link_security_args", "snmp_credentials", "tls_config"]


def add_link_security_args(p: argparse.ArgumentParser, *, controller: bool, insecure_demo_help: str) -> None:
    """``--vendor``, the SNMP flags and the Modbus/TCP Security flags (``controller``: the emulator's side)."""
    me, peer = ("this controller's", "central's") if controller else ("central's", "the controller's")
    vendor = "NTCIP vendor profile to play" if controller else "NTCIP vendor profile"
    p.add_argument("--vendor", default="greenwave", help=f"{vendor} (default greenwave)")
    p.add_argument("--snmp-version", type=int, choices=[1, 2, 3], default=1, help="SNMP version (default 1)")
    community = "SNMPv1/v2c read community" + (" (default public)" if controller else "")
    p.add_argument("--community", default="public", help=community)
    p.add_argument(
        "--write-community",
        help="SNMPv1/v2c write community (default: the read community); a default such as public is refused",
    )
    p.add_argument("--insecure-demo", action="store_true", help=insecure_demo_help)
    p.add_argument("--snmp-user", default="", help="SNMPv3 user (authPriv)")
    p.add_argument("--auth-key", default="", help="SNMPv3 authentication key" + (" (SHA-256)" if controller else ""))
    p.add_argument("--priv-key", default="", help="SNMPv3 privacy key" + (" (AES-128)" if controller else ""))
    p.add_argument("--tls-cert", metavar="PEM", help=f"Modbus/TCP Security: {me} certificate")
    p.add_argument("--tls-key", metavar="PEM", help="Modbus/TCP Security: its private key")
    p.add_argument("--tls-ca", metavar="PEM", help=f"Modbus/TCP Security: CA that signs {peer} certificate")


def tls_config(args: argparse.Namespace, *, role: str | None = None) -> TlsConfig | None:
    """The Modbus/TCP Security settings the flags give, or None without them; all three or none."""
    from field_io.security import TlsConfig
    from intersections.errors import InputError

    if not any((args.tls_cert, args.tls_key, args.tls_ca)):
        return None
    if not all((args.tls_cert, args.tls_key, args.tls_ca)):
        raise InputError("Modbus/TCP Security needs --tls-cert, --tls-key and --tls-ca together")
    return TlsConfig(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca, role=role)


def snmp_credentials(args: argparse.Namespace) -> SnmpCredentials:
    from field_io.security import SnmpCredentials

    return SnmpCredentials(
        version=args.snmp_version,
        community=args.community,
        write_community=args.write_community,
        user=args.snmp_user,
        auth_key=args.auth_key,
        priv_key=args.priv_key,
    )
