"""Run one controller on one SUMO simulation and measure it.

:func:`resolve_run` turns SUMO files (a ``.sumocfg``, or a net plus route
files) into a :class:`RunSpec` (library scenarios: :func:`scenarios.specs.resolve_run`);
:func:`simulate` loads the intersection model from the net, generates the
detectors, starts SUMO through :class:`~simulation.sumo_backend.SumoBackend`,
drives it with the engine and the named controller until the end time (or
until every vehicle has left), and returns the KPIs of :mod:`simulation.kpi`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from controller.backend import fields_read_by
from controller.engine import Engine, TickResult
from controller.policies import make_policy, policy_factory
from controller.policies.base import Policy, declared
from intersections.errors import InputError, NetworkFileError
from intersections.loaders.sumo_net import load_sumo_net, running_programs, sumo_time_s
from intersections.network import Network
from simulation import run_cache
from simulation.detectors import SumoDetectors, generate_detectors
from simulation.kpi import intersection_delays, read_statistics, read_tripinfo, read_vtype_classes, trip_kpis
from simulation.meso import MesoLoops, Model, estimated_fields, meso_loops, model_of, reader_over, refuse_unmet
from simulation.sumo_backend import SumoBackend, SumoRun, sumo_command

if TYPE_CHECKING:
    from controller.timing.demand import Demand

__all__ = [
    "RunSpec",
    "resolve_run",
    "simulate",
    "program_states",
    "controller_params",
    "load_run_network",
    "prepare_run",
]

log = logging.getLogger("greenwave")


@dataclass(frozen=True)
class RunSpec:
    """Inputs of one SUMO run, resolved to files."""

    net: Path
    routes: tuple[Path, ...] = ()
    additional: tuple[Path, ...] = ()
    sumocfg: Path | None = None
    begin_s: float | None = None
    end_s: float | None = None
    seed: int = 42
    sumo_args: tuple[str, ...] = ()  # the user's, verbatim
    step_length_s: float = 1.0
    traci: bool = False
    gui: bool = False
    tripinfo_output: Path | None = None
    name: str = ""
    scenario_args: tuple[str, ...] = ()  # options the scenario itself sets (sublane, ...)
    corridor: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    model: str = "micro"  # SUMO's traffic model (simulation.meso.Model); a --mesosim in sumo_args also means meso


def _cfg_value(root: ET.Element, *names: str) -> str | None:
    for name in names:
        for el in root.iter(name):
            v = el.get("value")
            if v is not None:
                return v
    return None


def _read_sumocfg(path: Path) -> tuple[Path, tuple[Path, ...], tuple[Path, ...], float | None, float | None]:
    if not path.exists():
        raise InputError("file not found", where=str(path))
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise InputError(f"not valid XML: {e}", where=str(path)) from None
    base = path.parent

    def files(v: str | None) -> tuple[Path, ...]:
        return tuple((base / f.strip()).resolve() for f in (v or "").replace(" ", ",").split(",") if f.strip())

    net = _cfg_value(root, "net-file")
    if not net:
        raise InputError("the configuration names no <net-file>", where=str(path))
    begin = _cfg_value(root, "begin")
    end = _cfg_value(root, "end")
    return (
        files(net)[0],
        files(_cfg_value(root, "route-files")),
        files(_cfg_value(root, "additional-files")),
        _cfg_time_s(begin, path, "begin"),
        _cfg_time_s(end, path, "end"),
    )


def _cfg_time_s(value: str | None, path: Path, name: str) -> float | None:
    """A sumocfg time: seconds or SUMO's ``[[D:]H:]M:S`` clock form."""
    if not value:
        return None
    try:
        return sumo_time_s(value)
    except ValueError:
        raise InputError(f"<{name}> is not a time: {value!r}", where=str(path)) from None


def resolve_run(
    *,
    sumocfg: str | Path | None = None,
    net: str | Path | None = None,
    routes: list[str | Path] | None = None,
    **kw: Any,
) -> RunSpec:
    """One of ``sumocfg`` or ``net`` (+ ``routes``); the rest as RunSpec fields.

    Library scenarios are resolved a layer up (:func:`scenarios.specs.resolve_run`
    builds one and hands its sumocfg here): the simulator knows SUMO files only.
    """
    if (sumocfg is None) == (net is None):
        raise InputError("give exactly one of --sumocfg, --net (with --routes) or --scenario")
    kw = {k: v for k, v in kw.items() if v is not None}
    if sumocfg is not None:
        cfg = Path(sumocfg).resolve()
        net_p, route_p, add_p, b, e = _read_sumocfg(cfg)
        kw.setdefault("begin_s", b)
        kw.setdefault("end_s", e)
        return RunSpec(net=net_p, routes=route_p, additional=add_p, sumocfg=cfg, name=cfg.stem, **kw)
    assert net is not None  # exactly one of sumocfg and net, checked above
    net_p = Path(net).resolve()
    if not net_p.exists():
        raise NetworkFileError("file not found", where=str(net))
    route_p = tuple(Path(r).resolve() for r in (routes or []))
    for r in route_p:
        if not r.exists():
            raise InputError("route file not found", where=str(r))
    return RunSpec(net=net_p, routes=route_p, name=net_p.name.split(".")[0], **kw)


def program_states(
    net_file: str | Path, additional_files: Iterable[str | Path] = (), *, begin_s: float = 0.0
) -> dict[str, list[str]]:
    """Phase state strings of the program SUMO runs per tls (net, additional files, WAUTs).

    Served from what :func:`load_run_network` read with the network when the files have not
    changed since (one parse of the net per run instead of two: seconds on a city).
    """
    adds = tuple(additional_files)
    key = _programs_key(net_file, adds, begin_s)
    with _PROGRAMS_LOCK:
        hit = _PROGRAMS.get(key) if key is not None else None
    return hit if hit is not None else running_programs(net_file, adds, begin_s=begin_s)


#: Running programs read along with a run's network, by :func:`_programs_key` (a few entries).
_ProgramsKey = tuple[tuple[tuple[str, int, int], ...], float]  # ((path, size, mtime ns), ...), begin s
_PROGRAMS: dict[_ProgramsKey, dict[str, list[str]]] = {}
_PROGRAMS_LOCK = threading.Lock()  # runs of a sweep may start side by side in threads


def _programs_key(net_file: str | Path, additional: Iterable[str | Path], begin_s: float) -> _ProgramsKey | None:
    """The files (path, size, mtime) and begin time the programs depend on; None when a file is unreadable."""
    try:
        files = tuple((str(Path(f).resolve()), (st := Path(f).stat()).st_size, st.st_mtime_ns)
                      for f in (net_file, *additional))  # fmt: skip
    except OSError:
        return None
    return (files, float(begin_s))


def load_run_network(spec: RunSpec) -> Network:
    """The intersection model of a run: the programs SUMO runs, from the net and the additional files.

    Traffic lights the model cannot hold keep their own programs; one warning line each goes
    to the ``greenwave`` logger (the command line prints it). Kept on disk by the files'
    content (:mod:`simulation.run_cache`): a city's net takes seconds to read and convert.
    """
    return _load_run_network(spec)[0]


def _load_run_network(spec: RunSpec) -> tuple[Network, str | None]:
    """:func:`load_run_network`, and the cache key it was kept under (None: not kept)."""
    begin = spec.begin_s or 0.0
    cache_key = run_cache.content_key("network", (spec.net, *spec.additional), (begin,))
    hit = run_cache.load(cache_key)
    if hit is not None:
        network, states = hit
    else:
        states = {}
        network = load_sumo_net(spec.net, additional_files=spec.additional, begin_s=begin, programs_out=states)
        run_cache.store(cache_key, (network, states))
    key = _programs_key(spec.net, spec.additional, begin)
    if key is not None:
        with _PROGRAMS_LOCK:
            while len(_PROGRAMS) >= 4:
                _PROGRAMS.pop(next(iter(_PROGRAMS)))
            _PROGRAMS[key] = states
    for tls, reason in network.unmodelled:
        log.warning("traffic light %s keeps its own program: %s", tls, reason)
    return network, cache_key


def prepare_run(spec: RunSpec, controller: str, *, extra_args: tuple[str, ...] = ()) -> None:
    """Derive what a run of ``controller`` on ``spec`` derives from its net before SUMO starts (the
    intersection model and programs, the detectors and, in meso, the loops), and keep it in
    :mod:`simulation.run_cache`: the runs after it, in this process or another, start from there.
    Nothing is kept while the cache is off.
    """
    network, key = _load_run_network(spec)
    policy = make_policy(controller, **controller_params(controller, spec, network))
    meso = run_model(spec, extra_args) is Model.MESO
    exits = "exit_blocked" in fields_read_by(policy) and not meso
    with tempfile.TemporaryDirectory(prefix="gw-prepare-") as tmp:
        _detectors(spec, network, Path(tmp), exits=exits, meso=meso, net_key=key)


def controller_params(controller: str, spec: RunSpec, network: Network) -> dict[str, Any]:
    """Parameters a controller needs from the run, as the policy declares them.

    A policy with ``plans_from_demand`` (:class:`~controller.policies.base.PlanDesign`,
    e.g. ``webster``) gets ``plans`` designed from the run's route files.
    """
    design = declared(policy_factory(controller), "plans_from_demand")
    if design is None:
        return {}
    from controller.timing import compute_plans

    if not spec.routes:
        raise InputError(f"the {design.method} controller needs route files to estimate demand")
    # vTypes may live in the additional files (real scenarios keep them there): read those first.
    vtype_files = [str(a) for a in spec.additional if _defines_vtypes(a)]
    demand = _design_demand([*vtype_files, *(str(r) for r in spec.routes)], network, spec)
    plans = compute_plans(network, demand, method=design.method)
    if design.coordinate:
        from controller.timing.coordination import coordinate

        plans, _report = coordinate(network, demand, plans)
    return {"plans": {p.intersection_id: p for p in plans}}


def _defines_vtypes(path: Path) -> bool:
    """Does an additional file hold vType definitions (and so matter to the demand reader)?"""
    import gzip

    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            return "<vType" in f.read()
    except OSError:
        return False


def _design_demand(routes: list[str], network: Network, spec: RunSpec) -> Demand:
    """Demand of the busiest 15-minute window: fixed-time plans are designed for the peak.

    (HCM practice: the peak 15 minutes, expanded to an hourly rate, i.e.
    hourly volume / PHF.) Over a run without a clear horizon the whole file
    is used.
    """
    from controller.timing.demand import load_demand

    begin = spec.begin_s or 0.0
    end = spec.end_s
    if end is None or end - begin <= 900:
        return load_demand(routes, network, begin_s=spec.begin_s, end_s=spec.end_s)
    windows = (load_demand(routes, network, begin_s=float(w0), end_s=float(w0 + 900))
               for w0 in np.arange(begin, end - 899, 300.0))  # fmt: skip
    # The first of the busiest windows (there is one at least: the run is longer than 900 s).
    return max(windows, key=lambda d: float(sum(np.sum(f) for f in d.flows_veh_h.values())))


def simulate(
    spec: RunSpec,
    controller: str,
    *,
    out_dir: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    dt_s: float = 1.0,
    progress: Callable[[float, float], None] | None = None,
    on_tick: Callable[[TickResult], None] | None = None,
    network: Network | None = None,
    extra_args: tuple[str, ...] = (),
    events_path: str | Path | None = None,
    also_read: Iterable[str] = (),
) -> dict[str, Any]:
    """Run ``controller`` on ``spec`` and return its KPIs (see :mod:`simulation.kpi`).

    ``events_path``: also write the controller's high-resolution events
    (Indiana codes, gzip CSV: :mod:`controller.events`).

    ``extra_args`` are SUMO options greenwave adds for this run (outputs for
    plots); the user's ``spec.sumo_args`` still override them.

    SUMO is asked each tick only for what is used: the fields the policy
    declares it reads (:func:`controller.backend.fields_read_by`), the
    stop-line queues (the queue KPIs), and counts and occupancy when events
    are logged (detector on/off). ``on_tick`` sees the other fields as NaN
    unless it names them in ``also_read``.
    """
    tmp = None
    if out_dir is None:
        tmp = tempfile.mkdtemp(prefix="gw-run-")
        out = Path(tmp)
    else:
        out = Path(out_dir).resolve()  # SUMO resolves relative output paths against its own files, not our cwd
        out.mkdir(parents=True, exist_ok=True)
    try:
        return _simulate(
            spec,
            controller,
            out,
            params or {},
            dt_s,
            progress,
            on_tick,
            network,
            extra_args,
            events_path,
            frozenset(also_read),
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _simulate(
    spec: RunSpec,
    controller: str,
    out: Path,
    params: Mapping[str, Any],
    dt_s: float,
    progress: Callable[[float, float], None] | None,
    on_tick: Callable[[TickResult], None] | None,
    network: Network | None,
    extra_args: tuple[str, ...] = (),
    events_path: str | Path | None = None,
    also_read: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The run behind :func:`simulate`: build the backend, drive the engine, read SUMO's outputs."""
    net_key = None
    if network is None:
        network, net_key = _load_run_network(spec)
    all_params = {**controller_params(controller, spec, network), **params}
    policy = make_policy(controller, **all_params)
    model = run_model(spec, extra_args)
    if model is Model.MESO:
        refuse_unmet(controller, fields_read_by(policy))
    reads = fields_read_by(policy) | {"queue_veh"} | also_read
    if events_path is not None:
        reads |= {"counts", "occupancy"}
    backend, det, outputs = _sumo_backend(spec, network, policy, out, dt_s, reads, extra_args, model=model,
                                          net_key=net_key)  # fmt: skip
    wall0 = time.perf_counter()
    vtypes = _vtype_classes([*spec.routes, *spec.additional])
    with backend:
        engine = Engine(backend, policy, hires=events_path is not None)
        loop = _drive(engine, backend, spec.end_s, progress, on_tick)
        if engine.hires is not None and events_path is not None:
            engine.hires.write_csv(events_path)
        pending = backend.pending_depart_delays(vtypes)
        events = list(engine.events)
    wall = time.perf_counter() - wall0
    kpis = _run_kpis(outputs, vtypes, pending, network, det, backend, loop.ticks)
    kpis["meta"] = {
        "controller": controller,
        "seed": spec.seed,
        "scenario": spec.name,
        "wall_s": round(wall, 3),
        "loop_s": round(loop.wall_s, 4),
        "sumo_step_s": round(backend.step_wall_s, 4),
        # This process's CPU time in the loop and in SUMO's step (libsumo runs SUMO in it; over TraCI
        # the step's CPU is SUMO's process's and not counted): steadier than wall time on a busy machine.
        "loop_cpu_s": round(loop.cpu_s, 4),
        "sumo_step_cpu_s": round(backend.step_cpu_s, 4),
        "sim_s": round(backend.time_s - (spec.begin_s or 0.0), 3),
        "ticks": loop.ticks,
        "safety_events": len([e for e in events if e.kind in ("violation", "refused")]),
        "unmodelled": [list(u) for u in network.unmodelled],
    }
    if model is Model.MESO:
        # What this run's controller read that meso does not measure, and how it was filled.
        kpis["meta"]["model"] = model.value
        kpis["meta"]["estimated"] = estimated_fields(fields_read_by(policy) | {"queue_veh"})
    return kpis


@dataclass(frozen=True)
class _Loop:
    """What the tick loop took: ticks, and the wall and CPU seconds of the loop alone."""

    ticks: int
    wall_s: float
    cpu_s: float


@dataclass(frozen=True)
class _Outputs:
    """Where SUMO writes the run's trip info, statistics and edge data."""

    tripinfo: Path
    statistics: Path
    edgedata: Path


def _drive(
    engine: Engine,
    backend: SumoBackend,
    end: float | None,
    progress: Callable[[float, float], None] | None,
    on_tick: Callable[[TickResult], None] | None,
) -> _Loop:
    """Tick until ``end``, or, without an end, until every vehicle has left the network."""
    ticks = 0
    loop0, loop_c0 = time.perf_counter(), time.process_time()
    while True:
        res = engine.tick()
        ticks += 1
        if on_tick is not None:
            on_tick(res)
        t = backend.time_s
        if progress is not None:
            progress(t, end if end is not None else t)
        if end is not None and t >= end:
            break
        if end is None and backend.vehicles_remaining() == 0:
            break
    return _Loop(ticks, time.perf_counter() - loop0, time.process_time() - loop_c0)


def _run_kpis(
    outputs: _Outputs,
    vtypes: Mapping[str, tuple[str, float]],
    pending: dict[str, tuple[str, float]],
    network: Network,
    det: SumoDetectors,
    backend: SumoBackend,
    ticks: int,
) -> dict[str, Any]:
    """The trip KPIs (:func:`simulation.kpi.trip_kpis`), each intersection's delay and each approach's queue."""
    trips = read_tripinfo(outputs.tripinfo, vtypes)
    st = read_statistics(outputs.statistics)
    kpis = trip_kpis(trips, st, pending=pending)
    incoming = {
        i.id: sorted({m.from_edge for g in i.groups for m in g.movements if m.turn != "p"})
        for i in network.intersections
    }
    kpis["intersections"] = intersection_delays(outputs.edgedata, incoming)
    q_mean = backend.e2_halting_sum / max(ticks, 1)  # one read per tick
    kpis["queues"] = _approach_queues(det.e2_ids, q_mean, backend.e2_halting_max, det.network)
    return kpis


def run_model(spec: RunSpec, extra_args: Iterable[str] = ()) -> Model:
    """The traffic model a run uses: the spec's, or meso where the SUMO options ask for it.

    The user's ``--sumo-arg --mesosim=...`` has the last word, as on SUMO's command line.
    """
    chosen = Model(spec.model)
    given = [*spec.scenario_args, *extra_args, *spec.sumo_args]
    if any(a == "--mesosim" or a.startswith("--mesosim=") for a in given):
        return model_of([*(["--mesosim", "true"] if chosen is Model.MESO else []), *given])
    return chosen


def _sumo_backend(
    spec: RunSpec,
    network: Network,
    policy: Policy,
    out: Path,
    dt_s: float,
    reads: frozenset[str],
    extra_args: tuple[str, ...],
    *,
    model: Model = Model.MICRO,
    net_key: str | None = None,
) -> tuple[SumoBackend, SumoDetectors, _Outputs]:
    """The run's SUMO backend, its detectors, and where SUMO writes tripinfo, statistics and edge data.

    Meso gets the same model detectors (the engine's arrays do not change with the
    model) but SUMO loads loops only (:func:`simulation.meso.generate_meso_loops`).
    ``net_key``: the cache key ``network`` came from (:func:`_load_run_network`); the
    detectors and loops are kept under it too.
    """
    meso = model is Model.MESO
    # Exit zones only where they are read: SUMO updates every lane-area detector every step.
    det, loops = _detectors(spec, network, out, exits="exit_blocked" in reads and not meso, meso=meso, net_key=net_key)
    det_file, reader = (det.additional, None) if loops is None else (loops.additional, reader_over(det, loops, dt_s))
    outputs = _Outputs(
        tripinfo=Path(spec.tripinfo_output) if spec.tripinfo_output else out / "tripinfo.xml",
        statistics=out / "statistics.xml",
        edgedata=out / "edgedata.xml",
    )
    run = _sumo_run(spec, [*spec.additional, det_file, _edge_data_file(out, outputs.edgedata)], outputs,
                    out / "sumo.log", extra_args, model)  # fmt: skip
    backend = SumoBackend(
        network,
        run,
        detectors=det,
        control=not declared(policy, "passive"),
        dt_s=dt_s,
        program_states=program_states(spec.net, spec.additional, begin_s=spec.begin_s or 0.0),
        read_fields=reads,
        meso=reader,
    )
    faults = dict(spec.extra.get("faults", {}) or {})
    if faults:
        from simulation.faults import DetectorFaults

        backend.observation_filter = DetectorFaults(faults, len(backend.detectors.ids), backend.detectors)
    return backend, det, outputs


def _detectors(
    spec: RunSpec, network: Network, out: Path, *, exits: bool, meso: bool, net_key: str | None
) -> tuple[SumoDetectors, MesoLoops | None]:
    """The run's detectors (their file in ``out``) and, in meso, its loops (theirs too).

    Derived from one ``sumolib`` parse of the net (hanoi_city: ~1 s), or taken from
    :mod:`simulation.run_cache` when the network came from there (``net_key``): the same
    files, byte for byte, and the same arrays.
    """
    det_path, loops_path = out / "gw_detectors.add.xml", out / "gw_meso_loops.add.xml"
    key = run_cache.content_key("detectors", (), (net_key, exits, meso)) if net_key is not None else None
    hit = run_cache.load(key, (network.graph,))
    if hit is not None:
        det, det_xml, loops, loops_xml = hit
        det_path.write_bytes(det_xml)
        det = dataclasses.replace(det, additional=det_path)
        if loops is not None:
            loops_path.write_bytes(loops_xml)
            loops = dataclasses.replace(loops, additional=loops_path)
        return det, loops
    import sumolib

    # The net read once for the detectors and the meso loops (hanoi_city: ~1-2 s a parse).
    sumo_net = sumolib.net.readNet(str(spec.net))
    det = generate_detectors(network, spec.net, det_path, exits=exits, sumo_net=sumo_net)
    loops = meso_loops(det, spec.net, out, sumo_net) if meso else None
    if key is not None:
        kept = (det, det_path.read_bytes(), loops, loops_path.read_bytes() if loops is not None else None)
        run_cache.store(key, kept, (network.graph,))
    return det, loops


def _vtype_classes(files: list[Path]) -> dict[str, tuple[str, float]]:
    """:func:`~simulation.kpi.read_vtype_classes`, kept by the files' content (a city's route file: ~5 MB)."""
    key = run_cache.content_key("vtypes", files)
    hit = run_cache.load(key)
    if hit is None:
        hit = read_vtype_classes(files)
        run_cache.store(key, hit)
    return dict(hit)


def _edge_data_file(out: Path, edgedata: Path) -> Path:
    """An additional file asking SUMO for per-edge mean data over the run (the intersection delays)."""
    meandata = out / "gw_meandata.add.xml"
    meandata.write_text(
        f'<additional>\n    <edgeData id="gw_edges" file="{edgedata}" excludeEmpty="true" withInternal="false"/>\n'
        "</additional>\n",
        encoding="utf-8",
    )
    return meandata


def _sumo_run(
    spec: RunSpec,
    additional: list[Path],
    outputs: _Outputs,
    log_file: Path,
    extra_args: tuple[str, ...],
    model: Model,
) -> SumoRun:
    """The SUMO session of the run, its command line from :func:`~simulation.sumo_backend.sumo_command`."""
    args = sumo_command(
        net=spec.net,
        sumocfg=spec.sumocfg,
        routes=spec.routes,
        additional=additional,
        outputs=[
            *("--tripinfo-output", str(outputs.tripinfo)),
            *("--tripinfo-output.write-unfinished", "true"),
            *("--statistic-output", str(outputs.statistics)),
        ],
        seed=spec.seed,
        step_length_s=spec.step_length_s,
        log_file=log_file,
        begin_s=spec.begin_s,
        end_s=spec.end_s,
        scenario_args=[*spec.scenario_args, *extra_args],
        user_args=spec.sumo_args,
        model=model,
    )
    return SumoRun(
        sumo_args=args,
        gui=spec.gui,
        traci=spec.traci,
        step_length_s=spec.step_length_s,
        begin_s=spec.begin_s or 0.0,
        end_s=spec.end_s,
        log_file=log_file,
    )


def _approach_queues(
    e2_ids: tuple[str, ...], mean: np.ndarray, peak: np.ndarray, network: Network
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and max halting vehicles per approach (incoming edge) per intersection."""
    lane_of = {f"gw_e2_{ln}": ln for i in network.intersections for d in i.detectors for ln in [d.lane]}
    inter_of: dict[str, str] = {}
    for i in network.intersections:
        for d in i.detectors:
            inter_of[d.lane] = i.id
    out: dict[str, dict[str, dict[str, float]]] = {}
    for k, det in enumerate(e2_ids):
        lane = lane_of.get(det)
        if lane is None:
            continue
        edge = lane.rsplit("_", 1)[0]
        slot = out.setdefault(inter_of[lane], {}).setdefault(edge, {"mean_queue_veh": 0.0, "max_queue_veh": 0.0})
        slot["mean_queue_veh"] = round(slot["mean_queue_veh"] + float(mean[k]), 3)
        slot["max_queue_veh"] = round(slot["max_queue_veh"] + float(peak[k]), 3)
    return out
