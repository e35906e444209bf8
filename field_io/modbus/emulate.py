"""The Modbus row of the protocol table's emulator column: serve an emulator's controllers over Modbus TCP.

Unit ids 1-247 per TCP port (the Modbus unit-id range, Modbus Messaging on
TCP/IP v1.0b): the next port serves the next 247 intersections, so one
emulator process can stand in for any number of controllers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from field_io.endpoints import Endpoint, FieldProtocol

if TYPE_CHECKING:
    from field_io.emulator.runner import Emulator

__all__ = ["start_servers", "MODBUS_UNITS"]

MODBUS_UNITS = 247  # Modbus unit ids 1-247 per port


async def start_servers(emulator: Emulator) -> list[Endpoint]:
    """Bind the servers for ``emulator`` (an :class:`~field_io.emulator.runner.Emulator`) on its I/O loop."""
    from field_io.modbus.server import ModbusFieldServer

    out = []
    core = emulator.core
    n = len(core.ids)
    for k, first in enumerate(range(0, n, MODBUS_UNITS)):
        rows = range(first, min(n, first + MODBUS_UNITS))
        srv = ModbusFieldServer(
            core,
            host=emulator.host,
            port=(emulator.port + k) if emulator.port else 0,
            device_ids={r - first + 1: r for r in rows},
            sslctx=emulator.tls,
            required_role=emulator.tls_role,
        )
        port = await srv.start()
        emulator.servers.append(srv)
        for r in rows:
            out.append(Endpoint(core.ids[r], FieldProtocol.MODBUS, emulator.host, port, device_id=r - first + 1))
    return out
