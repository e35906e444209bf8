"""Throw-away certificates for the Modbus/TCP Security tests (never shipped in the package).

A CA, a server and client certificates signed by it (the client's carrying the Modbus/TCP Security
role extension, ``field_io.security.ROLE_OID``: ../shared/reference/field-io.md, "role-based client
authorization"), one without a role, and one signed by another CA, so that the tests can show each
refusal over a real TLS socket.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from field_io.security import ROLE_OID


def generate_test_pki(
    directory: str | Path, *, hosts: Sequence[str] = ("127.0.0.1", "localhost"), client_role: str | None = "operator"
) -> dict[str, Path]:
    """A throw-away CA, server and client certificate (for tests and demos only, 1-day validity).

    Returns paths: ``ca``, ``server_cert``, ``server_key``, ``client_cert``,
    ``client_key``, plus ``rogue_cert``/``rogue_key`` signed by another CA.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        k = key()
        c = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(k, hashes.SHA256())
        )
        return c, k

    def leaf(cn: str, issuer: tuple[x509.Certificate, Any], *, server: bool, role: str | None) -> tuple[Any, Any]:
        k = key()
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer[0].subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=1))
            .add_extension(
                x509.ExtendedKeyUsage(
                    [x509.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            sans: list[x509.GeneralName] = []
            for h in hosts:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    sans.append(x509.DNSName(h))
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if role is not None:
            raw = role.encode()
            b = b.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(ROLE_OID), bytes([0x0C, len(raw)]) + raw),
                critical=False,
            )
        return b.sign(issuer[1], hashes.SHA256()), k

    def write(stem: str, cert: Any, k: Any) -> tuple[Path, Path]:
        cp, kp = d / f"{stem}.crt", d / f"{stem}.key"
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kp.write_bytes(
            k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        kp.chmod(0o600)
        return cp, kp

    root = ca("greenwave test CA")
    other = ca("rogue CA")
    out: dict[str, Path] = {}
    out["ca"], _ = write("ca", *root)
    out["server_cert"], out["server_key"] = write("server", *leaf("controller", root, server=True, role=None))
    out["client_cert"], out["client_key"] = write("client", *leaf("central", root, server=False, role=client_role))
    out["norole_cert"], out["norole_key"] = write("norole", *leaf("central-norole", root, server=False, role=None))
    out["rogue_cert"], out["rogue_key"] = write("rogue", *leaf("intruder", other, server=False, role=client_role))
    return out
