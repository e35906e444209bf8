"""The NTCIP row of the protocol table's emulator column: one SNMP agent (UDP port) per emulated controller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from field_io.endpoints import Endpoint, FieldProtocol

if TYPE_CHECKING:
    from field_io.emulator.runner import Emulator

__all__ = ["start_servers"]


async def start_servers(emulator: Emulator) -> list[Endpoint]:
    """Bind the agents for ``emulator`` (an :class:`~field_io.emulator.runner.Emulator`) on its I/O loop."""
    from field_io.ntcip.agent import start_agents

    core = emulator.core
    agents = await start_agents(
        core,
        host=emulator.host,
        port=emulator.port,
        snmp=emulator.snmp,
        vendor=emulator.vendor,
        insecure_demo=emulator.insecure_demo,
    )
    emulator.servers.extend(agents)
    return [
        Endpoint(iid, FieldProtocol.NTCIP, emulator.host, a.port, vendor=emulator.vendor, snmp=emulator.snmp)
        for iid, a in zip(core.ids, agents, strict=True)
    ]
