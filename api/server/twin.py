"""The backend the control centre drives: the in-memory fake, the SUMO twin, or the twin through
emulated Modbus controllers.

One job of the control centre, apart from the engine runner that asks for a backend whenever a
run starts (and again when a scenario loops): which backend the settings name, built from what
the runner has loaded (the network, the generated detectors, the scenario's run spec).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from api.server.settings import BackendKind, Settings
from controller.backend import BaseBackend, FakeBackend
from intersections.errors import InputError
from intersections.network import Network

if TYPE_CHECKING:
    from field_io.emulator.runner import Emulator
    from field_io.vehicle_feed import FeedBackend
    from simulation.detectors import SumoDetectors
    from simulation.runner import RunSpec

__all__ = ["TwinInputs", "build_backend"]


@dataclass(frozen=True)
class TwinInputs:
    """What the runner has loaded for a run: the control model, the SUMO side of it (none for an
    inventory), the run's window and how many times the run has restarted (a new seed each time)."""

    network: Network
    detectors: SumoDetectors | None
    spec: RunSpec | None
    net_path: Path | None
    begin_s: float
    end_s: float | None
    restarts: int


def build_backend(s: Settings, twin: TwinInputs) -> tuple[BaseBackend | FeedBackend, Emulator | None]:
    """The backend ``s.backend`` names, and the emulator behind it (Modbus only; the caller closes it)."""
    if s.backend is BackendKind.FAKE:
        fake = FakeBackend(
            twin.network, dt_s=s.tick_s, arrival_rate_veh_s=0.06, seed=s.seed + twin.restarts, record=False
        )
        return fake, None
    if s.backend is BackendKind.MODBUS:
        return _modbus_backend(s, twin)
    return _sumo_backend(s, twin), None


def _modbus_backend(s: Settings, twin: TwinInputs) -> tuple[FeedBackend, Emulator]:
    """The twin through emulated controllers over Modbus TCP (field_io), in real time.

    An in-process :class:`~field_io.emulator.runner.Emulator` runs one local
    controller per intersection (its own supervisor, fallback plan and
    watchdog) behind the greenwave Modbus profile on a loopback port, and
    drives the scenario's SUMO run; the engine talks to it through
    :class:`~field_io.modbus.backend.ModbusBackend`, exactly as to a
    cabinet. Real time only (the controllers keep wall-clock time).
    """
    try:
        from field_io.emulator.core import EmulatorConfig
        from field_io.emulator.runner import Emulator
        from field_io.modbus.backend import ModbusBackend
        from field_io.vehicle_feed import FeedBackend, VehicleFeedClient
    except ImportError as e:  # pragma: no cover - field_io ships with the package
        raise InputError(f"backend 'modbus' needs field_io: {e}") from None
    if twin.spec is None:
        raise InputError("backend 'modbus' needs a scenario: the emulated controllers drive its SUMO twin")
    from dataclasses import replace as dc_replace

    from api.sil import SimulationCoupling

    assert twin.detectors is not None
    spec = dc_replace(twin.spec, seed=s.seed + twin.restarts)
    emu = Emulator(
        None,
        protocol="modbus",
        port=s.modbus_port,
        config=EmulatorConfig(dt_s=s.tick_s),
        sumo_spec=spec,
        sumo_coupling=SimulationCoupling(),
        sumo_out_dir=s.data_dir / "emulator",
        vehicle_feed_port=0,
    )
    endpoints = emu.run_in_thread()
    try:
        backend = ModbusBackend(twin.detectors.network, endpoints, dt_s=s.tick_s)
        # Bus GPS and emergency vehicles arrive beside the controllers, as the city's AVL feed does.
        assert emu.feed is not None  # the emulator serves a feed: vehicle_feed_port was given
        feed = VehicleFeedClient(twin.detectors.network, emu.feed.host, emu.feed.port)
        return FeedBackend(backend, feed), emu
    except BaseException:
        emu.close()
        raise


def _sumo_backend(s: Settings, twin: TwinInputs) -> BaseBackend:
    """The SUMO twin of the scenario (or of the configured net), with greenwave's detectors."""
    from simulation.runner import program_states
    from simulation.sumo_backend import SumoBackend, SumoRun, sumo_command

    spec, detectors, net_path = twin.spec, twin.detectors, twin.net_path
    assert detectors is not None and net_path is not None, "the SUMO twin runs on a .net.xml"
    log_file = s.data_dir / "sumo.log"
    det_file, meso = detectors.additional, None
    if s.model == "meso":  # loops only; queues estimated (simulation.meso)
        from simulation.meso import meso_reader

        det_file, meso = meso_reader(detectors, net_path, s.data_dir, s.tick_s)
    args = sumo_command(
        net=spec.net if spec is not None else net_path,
        sumocfg=spec.sumocfg if spec is not None else None,
        routes=spec.routes if spec is not None else (),
        additional=[*(spec.additional if spec else ()), det_file],
        seed=s.seed + twin.restarts,
        step_length_s=s.tick_s,
        log_file=log_file,
        begin_s=spec.begin_s if spec is not None else None,
        end_s=spec.end_s if spec is not None else None,
        scenario_args=spec.scenario_args if spec is not None else (),
        model=s.model,
    )
    run = SumoRun(sumo_args=args, step_length_s=s.tick_s, begin_s=twin.begin_s, end_s=twin.end_s, log_file=log_file)
    return SumoBackend(
        detectors.network,
        run,
        detectors=detectors,
        control=True,
        dt_s=s.tick_s,
        program_states=program_states(net_path),
        meso=meso,
    )
