"""Run emulated controllers: the local controller, its protocol server, and the plant it drives.

One :class:`Emulator` serves every intersection of an inventory (or of a SUMO
scenario) from one process:

* **Modbus**: one TCP port, unit/device id ``k + 1`` for the k-th
  intersection (a gateway, as in a cabinet with several controllers); past
  247 intersections (the unit-id range) the next port, and so on; past
  247 intersections (the unit-id range) the next port, and so on;
* **NTCIP**: one UDP port per intersection, ``port + k`` (each controller has
  its own SNMP agent, as in the field); port 0 picks free ports.

The plant is either an in-memory point-queue model
(:class:`~controller.backend.FakeBackend`: Poisson arrivals, departures on
green; fine for commissioning rehearsals and load tests) or, with a SUMO
run, the SUMO intersections themselves: the emulator's outputs drive SUMO
and SUMO's detectors feed its inputs, through the project's own
:func:`simulation.runner.simulate` (so KPIs come from the same code as a
direct run).

Timing: real time by default (one tick per ``dt_s`` of wall clock);
``lockstep`` for software-in-the-loop: one tick per central step request.
"""

from __future__ import annotations

import gc
import json
import logging
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from controller.arrays import pack
from controller.backend import FakeBackend
from controller.engine import Engine, TickResult
from controller.safety import SafetySupervisor
from field_io.aio import LoopThread
from field_io.emulator.core import EmulatorConfig, EmulatorStopped, LocalController
from field_io.endpoints import Endpoint, FieldProtocol
from field_io.modbus.emulate import MODBUS_UNITS
from field_io.protocols import load, protocol_spec
from field_io.security import SnmpCredentials, is_loopback, require_secure_snmp
from intersections.errors import InputError
from intersections.network import Network
from intersections.plan import TimingPlan

if TYPE_CHECKING:
    from field_io.vehicle_feed import VehicleFeedServer

__all__ = ["Emulator", "EmulatorStopped", "MODBUS_UNITS", "SumoCoupling"]


log = logging.getLogger("greenwave.field.emulator")


class SumoCoupling(Protocol):
    """The simulator side of a SUMO-coupled emulator, handed in from above (``api.sil.SimulationCoupling``).

    Software in the loop couples field I/O and simulation, so it lives above both
    (DESIGN.md): this package never imports ``simulation``.
    """

    def detector_network(self, base: Network, net_file: Path, add_file: Path) -> Network: ...

    def simulate(self, spec: Any, controller: str, **kw: Any) -> dict[str, Any]: ...


class FieldServer(Protocol):
    """A protocol's server of emulated controllers, as the protocol table's ``emulator_server`` binds it."""

    @property
    def open_connections(self) -> int:
        """Central's connections held open now (0 for a datagram protocol)."""
        ...

    async def stop(self) -> None: ...


@dataclass
class _SumoRun:
    spec: Any  # simulation.runner.RunSpec
    out_dir: Path | None
    kpi_path: Path | None
    coupling: SumoCoupling


class Emulator:
    """See the module docstring. Use :meth:`start` then :meth:`run` (blocking), or :meth:`run_in_thread`."""

    def __init__(
        self,
        network: Network | None,
        *,
        protocol: FieldProtocol | str,
        host: str = "127.0.0.1",
        port: int = 0,
        config: EmulatorConfig | None = None,
        fallback_plans: Mapping[str, TimingPlan] | None = None,
        events_path: str | Path | None = None,
        sumo_spec: Any = None,
        sumo_coupling: SumoCoupling | None = None,
        sumo_out_dir: str | Path | None = None,
        kpi_path: str | Path | None = None,
        tls: ssl.SSLContext | None = None,
        tls_role: str | None = None,
        snmp: SnmpCredentials | None = None,
        vendor: str = "greenwave",
        arrival_rate_veh_s: float = 0.1,
        seed: int | None = 0,
        duration_s: float | None = None,
        vehicle_feed_port: int | None = None,
        insecure_demo: bool = False,
        plaintext_modbus: bool = False,
    ) -> None:
        self.protocol = FieldProtocol(protocol)
        self.insecure_demo = insecure_demo
        self._check_security(host, tls, snmp or SnmpCredentials(), insecure_demo, plaintext_modbus)
        self.host = host
        self.port = port
        self.config = config or EmulatorConfig()
        self.events_path = Path(events_path) if events_path else None
        self.tls = tls
        self.tls_role = tls_role
        self.snmp = snmp or SnmpCredentials()
        self.vendor = vendor
        self.arrival_rate_veh_s = arrival_rate_veh_s
        self.seed = seed
        self.duration_s = duration_s
        self.sumo: _SumoRun | None = None
        self.base_network = network
        if sumo_spec is not None:
            if sumo_coupling is None:
                raise InputError("an emulator coupled to SUMO needs sumo_coupling (api.sil.SimulationCoupling)")
            self.sumo = _SumoRun(
                sumo_spec,
                Path(sumo_out_dir) if sumo_out_dir else None,
                Path(kpi_path) if kpi_path else None,
                sumo_coupling,
            )
            network = self._sumo_network(network, sumo_spec)
        assert network is not None, "an emulator needs intersections (an inventory or a SUMO run)"
        self.network = network
        self.core = LocalController(
            network, config=self.config, fallback_plans=fallback_plans, events=self.events_path is not None, pace=True
        )
        self.feed: VehicleFeedServer | None = None
        if vehicle_feed_port is not None:
            from field_io.vehicle_feed import VehicleFeedServer

            self.feed = VehicleFeedServer(network, host=host, port=vehicle_feed_port)
            self.core.feed_sink = self.feed.publish
        self.io: LoopThread | None = None
        self.servers: list[FieldServer] = []
        self.endpoints: list[Endpoint] = []
        self.plant: FakeBackend | None = None
        self.kpis: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # ---- set-up ------------------------------------------------------------------------------------
    def _check_security(
        self, host: str, tls: ssl.SSLContext | None, snmp: SnmpCredentials, demo: bool, plaintext: bool
    ) -> None:
        """Secure by default (field-io.md §4): refuse to start rather than serve an open controller.

        NTCIP: no SETs with a default community (``public``, ``private``, ...)
        unless ``insecure_demo``. Modbus has no authentication of its own: without
        TLS it listens on loopback only, unless ``plaintext_modbus`` (a closed
        cabinet network, zone Z4 of field-io.md §4.3) or ``insecure_demo`` says otherwise.
        """
        spec = protocol_spec(self.protocol)
        if spec.snmp_credentials:
            require_secure_snmp(snmp, insecure_demo=demo, where="emulator")
        elif spec.tls and tls is None and not is_loopback(host) and not (plaintext or demo):
            raise InputError(
                f"refusing to serve Modbus without TLS on {host}: give --tls-cert/--tls-key/--tls-ca, "
                "listen on 127.0.0.1, or --plaintext-modbus for a closed cabinet network",
                where="emulator",
            )

    def _sumo_network(self, network: Network | None, spec: Any) -> Network:
        import tempfile

        from intersections.loaders.sumo_net import load_sumo_net

        assert self.sumo is not None
        base = network or load_sumo_net(spec.net, additional_files=spec.additional, begin_s=spec.begin_s or 0.0)
        self.base_network = base
        tmp = Path(tempfile.mkdtemp(prefix="gw-emu-det-"))
        return self.sumo.coupling.detector_network(base, spec.net, tmp / "gw_detectors.add.xml")

    def start(self) -> list[Endpoint]:
        """Bind the protocol servers; returns where each intersection answers."""
        # The tick loop's supervisor is compiled code: load it (compile it, on a first run:
        # ~1.5 s) before the endpoints are announced, so that the first tick comes on time.
        SafetySupervisor(pack(self.network.intersections[:1]))
        self.io = LoopThread(name=f"greenwave-{self.protocol.value}-emulator")
        try:
            serve = load(protocol_spec(self.protocol).emulator_server)
            self.endpoints = self.io.call(serve(self), timeout=30)
        except BaseException:
            self.close()
            raise
        return self.endpoints

    # ---- running -------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        """The tick loop, in the calling thread, until :meth:`stop`, ``duration_s`` or the end of the SUMO run.

        Run from a process's main thread (``greenwave emulate``), the start-up objects - the
        controllers' MIB and register tables, hundreds of thousands of them in a farm of a thousand
        controllers - are frozen out of the cyclic garbage collector for the run (``gc.freeze``):
        otherwise each full collection walks them all and stalls every answer behind it, which is
        what a central sees as its slowest polls.
        """
        freeze = threading.current_thread() is threading.main_thread()
        if freeze:
            gc.collect()
            gc.freeze()
        try:
            if self.sumo is not None:
                return self._run_sumo()
            self._run_standalone()
            return None
        except EmulatorStopped:
            return None
        finally:
            if freeze:
                gc.unfreeze()
            self.core.finish()
            self._write_events()

    def _run_standalone(self) -> None:
        core = self.core
        self.plant = FakeBackend(
            self.network,
            arrival_rate_veh_s=self.arrival_rate_veh_s,
            seed=self.seed,
            record=False,
            dt_s=self.config.dt_s,
        )
        with self.plant:
            engine = Engine(self.plant, core)
            t_end = None if self.duration_s is None else core.clock() + self.duration_s
            while not core.stopped:
                res = engine.tick()
                core.publish(res)
                if t_end is not None and core.clock() >= t_end:
                    break

    def _run_sumo(self) -> dict[str, Any]:
        assert self.sumo is not None
        core = self.core

        def on_tick(res: TickResult) -> None:
            if core.stopped:
                raise EmulatorStopped
            core.publish(res)

        kpis = self.sumo.coupling.simulate(
            self.sumo.spec,
            "field-emulator",
            out_dir=self.sumo.out_dir,
            params={"core": core},
            on_tick=on_tick,
            network=self.base_network,
            dt_s=self.config.dt_s,
        )
        self.kpis = kpis
        if self.sumo.kpi_path is not None:
            self.sumo.kpi_path.write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
        return kpis

    def run_in_thread(self) -> list[Endpoint]:
        """Start the servers and run the tick loop in a background thread (tests, benchmarks)."""
        eps = self.start()

        def main() -> None:
            try:
                self.run()
            except BaseException as e:  # surfaced by close()
                self.error = e
                log.exception("emulator tick loop failed")

        self._thread = threading.Thread(target=main, name="greenwave-emulator-ticks", daemon=True)
        self._thread.start()
        return eps

    def wait_idle(self, timeout_s: float) -> None:
        """After the plant finished: give central time to read the last status and disconnect."""
        import time

        holds = protocol_spec(self.protocol).emulator_holds_connections
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if not holds or sum(s.open_connections for s in self.servers) == 0:
                break
            time.sleep(0.05)
        if not holds:  # datagrams: no connection to wait for, only central's last read
            time.sleep(min(0.5, timeout_s))

    def set_local_flash(self, intersection_id: str, on: bool) -> None:
        """The cabinet's manual flash switch (standalone plant only)."""
        row = self.core.row(intersection_id)
        self.core.set_local_flash(row, on)
        if self.plant is not None:
            (self.plant.fail if on else self.plant.heal)([row])

    def stop(self) -> None:
        self.core.stop()

    def close(self) -> None:
        """Stop ticking, close the servers, join threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.core.stop()
        if self._thread is not None:
            self._thread.join(30)
        if self.io is not None:
            try:
                for s in self.servers:
                    self.io.call(s.stop(), timeout=10)
            finally:
                self.io.close()
        self.servers.clear()
        if self.feed is not None:
            self.feed.close()

    def _write_events(self) -> None:
        rec = self.core.recorder
        if rec is not None and self.events_path is not None:
            rec.write_csv(self.events_path)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
