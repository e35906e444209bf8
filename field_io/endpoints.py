"""Where each controller is, and how to talk to it (one :class:`Endpoint` per intersection).

Connection settings are one typed, frozen dataclass per controller (STYLE.md:
"connection settings as one typed dataclass"): protocol, host, port, the
Modbus unit/device id, the NTCIP vendor profile, timeouts, and the security
settings (:class:`~field_io.security.TlsConfig` for Modbus/TCP Security,
:class:`~field_io.security.SnmpCredentials` for SNMPv1 communities or SNMPv3
USM users). ``load_endpoints`` reads them from a small TOML file
(``examples/field.toml``) kept beside the inventory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from field_io.protocols import FieldProtocol, protocol_spec
from field_io.security import SnmpCredentials, TlsConfig
from intersections.config import ConfigModel, validate, where_of
from intersections.errors import InputError

__all__ = ["FieldProtocol", "Endpoint", "load_endpoints", "endpoints_from_json"]


@dataclass(frozen=True)
class Endpoint:
    """One field controller. ``device_id``: Modbus unit id; ``vendor``: NTCIP vendor profile name."""

    intersection: str
    protocol: FieldProtocol
    host: str
    port: int
    device_id: int = 1
    vendor: str = "greenwave"
    timeout_s: float = 0.5
    retries: int = 1
    tls: TlsConfig | None = None
    snmp: SnmpCredentials = field(default_factory=SnmpCredentials)

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", FieldProtocol(self.protocol))
        if not 0 < int(self.port) < 65536:
            raise InputError(f"port must be 1-65535, got {self.port!r}", where=self.label)
        spec = protocol_spec(self.protocol)
        if spec.device_id and not 1 <= int(self.device_id) <= 247:
            raise InputError(f"{spec.title} device id must be 1-247, got {self.device_id!r}", where=self.label)
        if self.timeout_s <= 0 or self.retries < 0:
            raise InputError("timeout_s must be > 0 and retries >= 0", where=self.label)

    @property
    def label(self) -> str:
        """How messages name the controller: ``J1 (modbus 10.0.0.5:502 device 1)``."""
        dev = f" device {self.device_id}" if protocol_spec(self.protocol).device_id else ""
        return f"controller {self.intersection} ({self.protocol.value} {self.host}:{self.port}{dev})"

    def to_json(self) -> dict[str, Any]:
        return {
            "intersection": self.intersection,
            "protocol": self.protocol.value,
            "host": self.host,
            "port": self.port,
            "device_id": self.device_id,
            "vendor": self.vendor,
        }


def endpoints_from_json(items: Iterable[Mapping[str, Any]], **overrides: Any) -> list[Endpoint]:
    """Endpoints from the emulator's ready line (``greenwave emulate`` prints them as JSON)."""
    out = []
    for it in items:
        e = Endpoint(
            intersection=str(it["intersection"]),
            protocol=FieldProtocol(it["protocol"]),
            host=str(it["host"]),
            port=int(it["port"]),
            device_id=int(it.get("device_id", 1)),
            vendor=str(it.get("vendor", "greenwave")),
        )
        out.append(replace(e, **overrides) if overrides else e)
    return out


class _ControllerTable(ConfigModel):
    intersection: str = Field(min_length=1)
    protocol: str
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    device_id: int = 1
    vendor: str = "greenwave"
    timeout_s: float = Field(0.5, gt=0)
    retries: int = Field(1, ge=0)
    tls: TlsConfig | None = None
    snmp: SnmpCredentials = Field(default_factory=SnmpCredentials)

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, v: str) -> str:
        if v not in {p.value for p in FieldProtocol}:
            raise ValueError(f"must be one of {', '.join(p.value for p in FieldProtocol)}; got {v!r}")
        return v


class _EndpointsFile(ConfigModel):
    controller: list[_ControllerTable] = Field(default_factory=list)


def load_endpoints(path: str | Path) -> list[Endpoint]:
    """Read ``[[controller]]`` tables (see ``examples/field.toml``); one error line names file, table and field."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", where=str(p)) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"not valid TOML: {e}", where=str(p)) from None
    doc = validate(_EndpointsFile, data, path=p)
    out = []
    for k, c in enumerate(doc.controller):
        # The endpoint's own checks (a protocol's device id range) worded by it, placed here.
        try:
            out.append(Endpoint(**{**dict(c), "protocol": FieldProtocol(c.protocol)}))
        except InputError as e:
            raise InputError(e.message, where=where_of(p, ("controller", k))) from None
    return out
