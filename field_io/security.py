"""Security of field communications (``../shared/reference/field-io.md`` §3.5 and §4).

* **Modbus/TCP Security** (Modbus.org MB-TCP-Security): the Modbus ADU inside
  TLS 1.2+, **mutual** X.509 authentication, certificates configured per
  controller (:class:`TlsConfig`), and role-based authorisation from the
  client certificate's role extension (OID 1.3.6.1.4.1.50316.802.1), which
  pymodbus does not check itself: :func:`peer_role` does, in the field
  server.
* **SNMPv3 USM authPriv** (RFC 3414, HMAC-SHA-2 per RFC 7860, AES-128 per
  RFC 3826): :class:`SnmpCredentials`; v1/v2c communities remain for the
  controllers that only speak them (then: tunnel, ACL, unique communities).
* **The never-command list**, enforced here in code, on the only write paths
  central has (:func:`check_snmp_set` for every SNMP SET,
  :func:`check_modbus_write` for every Modbus write): central never drives
  lamps, never commands flash or dark, never writes clearances, minimum
  greens, the phasing (rings, concurrency, sequences, overlaps, channels),
  the backup time, preemption, ring stop-time / omit-red-clear or open-ended
  omits, and never takes local manual authority (``coordOperationalMode``).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import model_validator

from field_io.errors import NeverCommandError
from field_io.modbus.profile import _WRITABLE, writable_ranges
from intersections.config import SettingsModel
from intersections.errors import InputError

__all__ = [
    "TlsConfig",
    "SnmpCredentials",
    "DEFAULT_COMMUNITIES",
    "require_secure_snmp",
    "is_loopback",
    "server_context",
    "client_context",
    "peer_role",
    "ROLE_OID",
    "NEVER_WRITE",
    "CENTRAL_WRITABLE",
    "COMMISSIONING_WRITABLE",
    "FORBIDDEN_VALUES",
    "check_snmp_set",
    "check_modbus_write",
]

#: Modbus/TCP Security role extension (MB-TCP-Security v21, RoleOID).
ROLE_OID = "1.3.6.1.4.1.50316.802.1"


class TlsConfig(SettingsModel):
    """Certificates of one controller link (PEM files). Both ends present a certificate (mutual TLS).

    ``role``: on the server, the role a client certificate must carry; on the
    client, informational. ``server_name``: the name to verify in the server
    certificate (defaults to the host; IP addresses are matched against IP SANs).
    The same model reads a ``[controller.tls]`` table of an endpoints file.
    """

    where: ClassVar[str] = "tls"

    cert: str
    key: str
    ca: str
    role: str | None = None
    server_name: str | None = None

    @model_validator(mode="after")
    def _files_exist(self) -> TlsConfig:
        for name in ("cert", "key", "ca"):
            if not Path(getattr(self, name)).is_file():
                raise ValueError(f"TLS {name} file not found: {getattr(self, name)}")
        return self


def _base(ctx: ssl.SSLContext, tls: TlsConfig) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert, tls.key)
    ctx.load_verify_locations(tls.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.options |= ssl.OP_NO_COMPRESSION  # MB-TCP-Security: no TLS compression
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        ctx.options |= ssl.OP_NO_RENEGOTIATION
    return ctx


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """TLS 1.2+ server context that *requires* a client certificate signed by ``tls.ca``."""
    return _base(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls)


def client_context(tls: TlsConfig) -> ssl.SSLContext:
    """TLS 1.2+ client context: verifies the server (CA and name) and presents our certificate."""
    return _base(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), tls)


def peer_role(der: bytes | None) -> str | None:
    """The Modbus/TCP Security role carried by a peer certificate (DER), or None."""
    if not der:
        return None
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(ROLE_OID))
    except x509.ExtensionNotFound:
        return None
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    # The role is an ASN.1 UTF8String (tag 0x0C); tolerate a bare string.
    if len(raw) >= 2 and raw[0] == 0x0C and raw[1] == len(raw) - 2:
        raw = raw[2:]
    return raw.decode("utf-8", "replace")


class SnmpCredentials(SettingsModel):
    """SNMP security of one controller.

    ``version`` 1 or 2 (v2c): ``community`` (reads) and ``write_community``
    (SETs; defaults to ``community``; a default such as ``public`` is refused
    for writes outside an explicit demo, see :attr:`default_write`). ``version`` 3: USM user with authPriv
    only (``auth_key``/``priv_key`` at least 8 characters), HMAC-SHA-2 and AES
    by default (field-io.md §4.2: avoid MD5/DES). The same model reads a
    ``[controller.snmp]`` table of an endpoints file.
    """

    where: ClassVar[str] = "snmp"
    AUTH: ClassVar[tuple[str, ...]] = ("SHA-256", "SHA-384", "SHA-512", "SHA")
    PRIV: ClassVar[tuple[str, ...]] = ("AES-128", "AES-192", "AES-256")

    version: int = 1
    community: str = "public"
    write_community: str | None = None
    user: str = ""
    auth_key: str = ""
    priv_key: str = ""
    auth_protocol: str = "SHA-256"
    priv_protocol: str = "AES-128"

    @model_validator(mode="after")
    def _usable(self) -> SnmpCredentials:
        if self.version not in (1, 2, 3):
            raise ValueError(f"SNMP version must be 1, 2 (v2c) or 3, got {self.version!r}")
        if self.version == 3:
            if not self.user:
                raise ValueError("SNMPv3 needs a user name")
            if len(self.auth_key) < 8 or len(self.priv_key) < 8:
                raise ValueError("SNMPv3 authPriv needs auth and priv keys of at least 8 characters")
            if self.auth_protocol not in self.AUTH:
                raise ValueError(f"SNMPv3 auth protocol must be one of {', '.join(self.AUTH)}")
            if self.priv_protocol not in self.PRIV:
                raise ValueError(f"SNMPv3 priv protocol must be one of {', '.join(self.PRIV)}")
        return self

    @property
    def set_community(self) -> str:
        return self.write_community or self.community

    @property
    def default_write(self) -> str | None:
        """Why SETs with these credentials would be open to anyone (a default community), or None.

        SNMPv1/v2c send the community in clear text and ship with well-known
        defaults; a controller that accepts SETs with ``public`` or ``private``
        can be driven by anyone on the network (field-io.md §4.2: unique
        per-device communities, write disabled where central does not command).
        SNMPv3 authPriv has no default key, so it is never "default".
        """
        if self.version == 3:
            return None
        c = self.set_community
        if c.strip().lower() in DEFAULT_COMMUNITIES:
            given = "the write community" if self.write_community else "the write community (the read community)"
            return f"{given} is {c!r}, a well-known default"
        return None


#: Communities that ship as factory defaults or are guessed first (never accepted for SETs outside a demo).
DEFAULT_COMMUNITIES = frozenset(
    {"", "public", "private", "admin", "manager", "write", "secret", "community", "default", "snmp", "ntcip"}
)

INSECURE_DEMO_HINT = "give --write-community SECRET (or --snmp-version 3), or --insecure-demo for a throw-away demo"


def require_secure_snmp(snmp: SnmpCredentials, *, insecure_demo: bool, where: str) -> None:
    """Refuse default SNMP write credentials unless the caller said, explicitly, that this is a demo.

    One line, what and where: the emulator refuses to start and the
    commissioning tool refuses to connect (field-io.md §4.2).
    """
    why = snmp.default_write
    if why is not None and not insecure_demo:
        raise InputError(f"refusing SNMP writes: {why}; {INSECURE_DEMO_HINT}", where=where)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost`` (the only places plaintext Modbus listens by default)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- the never-command list ------------------------------------------------------------------------

#: Objects central never writes, with the reason (field-io.md §3.5 items 1-7).
NEVER_WRITE: dict[str, str] = {
    **{
        n: "clearance / pedestrian / minimum-green timings are agency-approved, commissioning-only values"
        for n in (
            "phaseWalk",
            "phasePedestrianClear",
            "phaseMinimumGreen",
            "phasePassage",
            "phaseMaximum1",
            "phaseMaximum2",
            "phaseYellowChange",
            "phaseRedClear",
            "phaseRedRevert",
            "unitRedRevert",
            "unitStartUpFlash",
        )
    },
    **{
        n: "the phasing model (rings, concurrency, sequences, overlaps, channels, detector assignment) is "
        "changed only in supervised commissioning"
        for n in (
            "phaseRing",
            "phaseConcurrency",
            "phaseStartup",
            "phaseOptions",
            "sequenceData",
            "overlapIncludedPhases",
            "channelControlSource",
            "channelControlType",
            "vehicleDetectorCallPhase",
            "vehicleDetectorOptions",
            "pedestrianDetectorCallPhase",
        )
    },
    **{
        n: "actuated timing is agency-approved configuration, changed only in supervised commissioning"
        for n in (
            "phaseAddedInitial",
            "phaseMaximumInitial",
            "phaseTimeBeforeReduction",
            "phaseCarsBeforeReduction",
            "phaseTimeToReduce",
            "phaseReduceBy",
            "phaseMinimumGap",
            "phaseDynamicMaxLimit",
            "phaseDynamicMaxStep",
            "unitAutoPedestrianClear",
        )
    },
    **{
        n: "detector configuration and diagnostics thresholds are set in commissioning, not by the optimiser"
        for n in (
            "vehicleDetectorSwitchPhase",
            "vehicleDetectorDelay",
            "vehicleDetectorExtend",
            "vehicleDetectorQueueLimit",
            "vehicleDetectorNoActivity",
            "vehicleDetectorMaxPresence",
            "vehicleDetectorErraticCounts",
            "vehicleDetectorFailTime",
            "vehicleDetectorReset",
            "pedestrianDetectorNoActivity",
            "pedestrianDetectorMaxPresence",
            "pedestrianDetectorErraticCounts",
        )
    },
    **{
        n: "coordination modes and the local time-of-day schedule are controller configuration"
        for n in (
            "coordCorrectionMode",
            "coordMaximumMode",
            "coordForceMode",
            "timebaseAscPatternSync",
            "timebaseAscAuxillaryFunction",
            "timebaseAscSpecialFunction",
        )
    },
    **{
        n: "central never touches preemption"
        for n in (
            "preemptLink",
            "preemptDelay",
            "preemptMinimumDuration",
            "preemptMinimumGreen",
            "preemptMinimumWalk",
            "preemptEnterPedClear",
            "preemptTrackGreen",
            "preemptDwellGreen",
            "preemptMaximumPresence",
            "preemptTrackPhase",
            "preemptDwellPhase",
            "preemptDwellPed",
            "preemptExitPhase",
        )
    },
    **{
        n: "the phasing model (rings, concurrency, sequences, overlaps, channels, detector assignment) is "
        "changed only in supervised commissioning"
        for n in ("overlapType", "overlapModifierPhases", "overlapTrailGreen", "overlapTrailYellow", "overlapTrailRed")
    },
    "port1DevicePresent": "the TS2 cabinet's device map is cabinet wiring, not a command",
    "port1Frame40Enable": "the TS2 cabinet's device map is cabinet wiring, not a command",
    "channelFlash": "central never drives lamps, channels or flash",
    "channelDim": "central never drives lamps, channels or flash",
    "specialFunctionOutputState": "central never drives outputs directly",
    "unitControl": "unit control bits are local configuration",
    "coordOperationalMode": "local manual override outranks the system and is not released by the backup timer",
    "unitBackupTime": "the backup time is the controller's watchdog; central never changes (or disables) it",
    "preemptControl": "central never touches preemption",
    "preemptControlState": "central never touches preemption",
    "ringControlGroupStopTime": "stop time is never commanded by central",
    "ringControlGroupOmitRedClear": "red clearance is never omitted",
    "ringControlGroupForceOff": "ring-level control is not used by central",
    "ringControlGroupMax2": "ring-level control is not used by central",
    "ringControlGroupMaxInhibit": "ring-level control is not used by central",
    "ringControlGroupPedRecycle": "ring-level control is not used by central",
    "ringControlGroupRedRest": "ring-level control is not used by central",
    "phaseControlGroupPhaseOmit": "open-ended omits are never commanded (a called phase must be served)",
    "phaseControlGroupPedOmit": "open-ended omits are never commanded (a called phase must be served)",
    "timebaseAscPattern": "the local time-of-day schedule is configuration",
    "globalTime": "the controller clock is set by its own time source, not by the optimiser",
    "systemSyncControl": "not used by greenwave",
    "volumeOccupancyPeriod": "the detector reporting period is controller configuration",
}

#: What central may SET in normal operation (everything else is refused).
CENTRAL_WRITABLE = frozenset(
    {
        "phaseControlGroupHold",
        "phaseControlGroupForceOff",
        "phaseControlGroupVehCall",
        "phaseControlGroupPedCall",
        "systemPatternControl",
        "patternCycleTime",
        "patternOffsetTime",
        "patternSplitNumber",
        "patternSequenceNumber",
        "splitTime",
        "splitMode",
        "splitCoordPhase",
        "gwLockstepStep",
    }
)
#: Extra objects a commissioning session may write (the fallback pattern is within CENTRAL_WRITABLE's objects).
COMMISSIONING_WRITABLE: frozenset[str] = frozenset()

#: Values refused even for writable objects: flash and free are operator actions, never automation.
FORBIDDEN_VALUES: dict[str, tuple[int, ...]] = {"systemPatternControl": (254, 255)}


_NAMES: dict[tuple[int, ...], str | None] = {}


def _name_of(oid: Sequence[int]) -> str | None:
    t = tuple(int(x) for x in oid)
    hit = _NAMES.get(t, "")
    if hit != "":
        return hit
    name = _lookup(t)
    if len(_NAMES) < 100_000:
        _NAMES[t] = name
    return name


def _lookup(t: tuple[int, ...]) -> str | None:
    from field_io.ntcip.oids import OBJECTS

    best = None
    for o in OBJECTS.values():
        n = len(o.oid)
        if t[:n] == o.oid and len(t) > n and (best is None or n > len(best.oid)):
            best = o
    return best.name if best is not None else None


def check_snmp_set(varbinds: Iterable[tuple[Sequence[int], Any]], *, commissioning: bool = False) -> None:
    """Raise :class:`NeverCommandError` unless every (oid, value) is a write central may make."""
    allowed = CENTRAL_WRITABLE | (COMMISSIONING_WRITABLE if commissioning else frozenset())
    for oid, value in varbinds:
        name = _name_of(oid)
        label = name or ".".join(str(x) for x in oid)
        if name in NEVER_WRITE:
            raise NeverCommandError(f"refusing to SET {label}: {NEVER_WRITE[name]}", where="never-command list")
        if name not in allowed:
            raise NeverCommandError(
                f"refusing to SET {label}: not an object central may write", where="never-command list"
            )
        bad = FORBIDDEN_VALUES.get(name)
        if bad and isinstance(value, int) and int(value) in bad:
            raise NeverCommandError(
                f"refusing to SET {label} = {value}: flash and free are operator actions, never automation",
                where="never-command list",
            )


def check_modbus_write(address: int, count: int, *, commissioning: bool = False) -> None:
    """Raise :class:`NeverCommandError` unless [address, address+count) lies in one writable table.

    Runs before every write of every tick (thousands of controllers), so the
    profile's ranges are imported once with the module, not per call.
    """
    end = address + count
    for a, b in _WRITABLE[commissioning]:
        if a <= address and end <= b:
            return
    raise NeverCommandError(
        f"refusing to write registers {address}-{end - 1}: outside the profile's writable tables "
        f"{', '.join(f'{a}-{b - 1}' for a, b in writable_ranges(commissioning=commissioning))}",
        where="never-command list",
    )
