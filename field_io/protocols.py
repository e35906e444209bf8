"""The field-protocol table: one row per protocol, naming everything greenwave needs to speak it.

Like pymodbus's ``FramerType`` -> class table (STYLE.md: "enums mapped to
implementations through one table"), :data:`PROTOCOLS` maps each
:class:`FieldProtocol` to

* its central **backend** (a :class:`~field_io.polled.PolledFieldBackend`),
* its **emulator server** (an async function that binds the protocol's
  servers for an emulator's local controllers and returns their endpoints),
* its **commissioning driver** (the transactions ``greenwave commission`` runs),
* its **command-line options** (the flags of ``commission`` / ``emulate`` that
  only this protocol reads),
* and the few facts the generic code asks of a protocol (does an endpoint carry
  a device id or a vendor profile, the plan resolution of its command block,
  whether its emulator holds connections that central closes).

Implementations are named by import path and loaded on first use, so that
reading the table (the command line's ``--protocol`` choices, endpoint files)
never imports pymodbus or an SNMP stack. Adding a protocol: one package under
``field_io/`` supplying codec and transport to the polled-backend base, one
member of :class:`FieldProtocol` and one row below (``docs/field.md``, "Adding a
field protocol").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from field_io.polled import PolledFieldBackend

__all__ = ["FieldProtocol", "ProtocolSpec", "PROTOCOLS", "protocol_spec", "protocol_names", "load"]


class FieldProtocol(StrEnum):
    """The field protocols central speaks (each has one row in :data:`PROTOCOLS`)."""

    MODBUS = "modbus"
    NTCIP = "ntcip"


@dataclass(frozen=True)
class ProtocolSpec:
    """One row of the protocol table.

    ``backend``, ``emulator_server`` and ``commissioning_driver`` are
    ``"module:attribute"`` paths (see :func:`load`). ``emulator_server`` is an
    async function ``(emulator) -> list[Endpoint]`` run on the emulator's I/O
    loop. ``device_id``: endpoints are addressed by a unit/device id (validated
    1-247, shown in labels); ``vendor_profile``: endpoints name a vendor profile.
    ``plan_step_s``: the resolution of plan times in the command block.
    ``snmp_credentials``: writes are authorised by SNMP credentials (communities
    or a USM user), so default communities are refused outside a demo;
    ``tls``: the protocol has no authentication of its own and is secured by
    TLS (Modbus/TCP Security), so without TLS it listens on loopback only.
    ``emulator_holds_connections``: the emulator's servers keep one connection
    per central (TCP), so a finishing emulator waits for central to close them;
    otherwise (UDP) it waits a fixed half second for central's last read.
    """

    protocol: FieldProtocol
    title: str
    backend: str
    emulator_server: str
    commissioning_driver: str
    cli_options: tuple[str, ...]
    device_id: bool
    vendor_profile: bool
    plan_step_s: float
    emulator_holds_connections: bool
    snmp_credentials: bool
    tls: bool

    def backend_class(self) -> type[PolledFieldBackend]:
        """The central backend class (a :class:`~field_io.polled.PolledFieldBackend` subclass)."""
        cls: type[PolledFieldBackend] = load(self.backend)
        return cls

    def endpoint_detail(self, device_id: int, vendor: str) -> str:
        """How a message names the device behind an address: `` device 3`` or `` (econolite profile)``."""
        if self.device_id:
            return f" device {device_id}"
        if self.vendor_profile:
            return f" ({vendor} profile)"
        return ""


#: The table. Modbus: the greenwave Modbus TCP profile (docs/modbus-profile.md); NTCIP: NTCIP 1202 over SNMP
#: (../shared/reference/field-io.md §1).
PROTOCOLS: dict[FieldProtocol, ProtocolSpec] = {
    FieldProtocol.MODBUS: ProtocolSpec(
        protocol=FieldProtocol.MODBUS,
        title="Modbus",
        backend="field_io.modbus.backend:ModbusBackend",
        emulator_server="field_io.modbus.emulate:start_servers",
        commissioning_driver="field_io.commission:_ModbusDriver",
        cli_options=("--device-id", "--tls-cert", "--tls-key", "--tls-ca", "--tls-role"),
        device_id=True,
        vendor_profile=False,
        plan_step_s=0.1,
        emulator_holds_connections=True,
        snmp_credentials=False,
        tls=True,
    ),
    FieldProtocol.NTCIP: ProtocolSpec(
        protocol=FieldProtocol.NTCIP,
        title="NTCIP",
        backend="field_io.ntcip.backend:NtcipBackend",
        emulator_server="field_io.ntcip.emulate:start_servers",
        commissioning_driver="field_io.commission:_NtcipDriver",
        cli_options=(
            "--vendor",
            "--snmp-version",
            "--community",
            "--write-community",
            "--snmp-user",
            "--auth-key",
            "--priv-key",
        ),
        device_id=False,
        vendor_profile=True,
        plan_step_s=1.0,
        emulator_holds_connections=False,
        snmp_credentials=True,
        tls=False,
    ),
}


def protocol_spec(protocol: FieldProtocol | str) -> ProtocolSpec:
    """The table row of ``protocol``; an unknown name is a one-line error listing the known ones."""
    try:
        return PROTOCOLS[FieldProtocol(protocol)]
    except ValueError:
        raise ValueError(f"unknown field protocol {protocol!r} (known: {', '.join(protocol_names())})") from None


def protocol_names() -> list[str]:
    """The ``--protocol`` choices of the command line, in table order."""
    return [p.value for p in PROTOCOLS]


def load(path: str) -> Any:
    """Import ``"package.module:attribute"`` (implementations load on first use, not with the table)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
