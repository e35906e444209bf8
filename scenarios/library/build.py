"""Building a scenario folder, and the build cache that reuses an identical build."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intersections.errors import InputError
from scenarios.library.city import build_city_net, write_city_routes
from scenarios.library.definition import load_scenario_def
from scenarios.library.network import _build_corridor_net, _build_grid_net, _strip_timestamp, _sumo_version
from scenarios.library.od import _bus_route, _corridor_ods, _grid_ods
from scenarios.library.schema import BuiltScenario, CityNetwork, GridNetwork, ScenarioDef
from scenarios.library.timetable import _emergency_vehicles, _timetables
from scenarios.library.writers import _sumo_options, _Timed, _write_routes, _write_stops, _write_sumocfg

# Bump when the generated files change for the same definition (invalidates caches).
_BUILD_VERSION = "1"


def _result(d: ScenarioDef, out: Path, seed: int) -> BuiltScenario:
    out = out.resolve()
    net, routes, cfg = out / f"{d.name}.net.xml", out / f"{d.name}.rou.xml", out / f"{d.name}.sumocfg"
    args: list[str] = ["--net-file", str(net), "--route-files", str(routes)]
    additional = (out / f"{d.name}.add.xml",) if d.has_bus_stops else ()
    if additional:
        args += ["--additional-files", ",".join(str(a) for a in additional)]
    for key, value in _sumo_options(d, seed):
        args += [f"--{key}", value]
    return BuiltScenario(
        name=d.name,
        directory=out,
        net=net,
        routes=(routes,),
        begin_s=d.begin_s,
        end_s=d.end_s,
        sumocfg=cfg,
        sumo_args=tuple(args),
        corridor=d.corridor,
        description=d.description,
        seed=seed,
        additional=additional,
        faults=d.faults.as_dict(seed) if d.faults is not None else {},
    )


def _build_key(d: ScenarioDef, seed: int) -> dict[str, Any]:
    return {
        "name": d.name,
        "definition_sha256": d.sha256,
        "seed": seed,
        "builder": _BUILD_VERSION,
        "sumo": _sumo_version(),
    }


def build_scenario(name_or_path: str | Path, out_dir: str | Path, seed: int = 42) -> BuiltScenario:
    """Build a scenario (library name or path to a TOML definition) into ``out_dir``.

    Deterministic: the same definition, ``seed`` and SUMO version give
    byte-identical files. If ``out_dir`` already holds that build (its
    ``<name>.build.json`` matches and the files exist) it is reused as is.
    The seed drives the route-rate jitter and SUMO's ``--seed``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}", where="seed")
    d = load_scenario_def(name_or_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / f"{d.name}.build.json"
    key = _build_key(d, seed)
    exts = ("net.xml", "rou.xml", "sumocfg", *(("add.xml",) if d.has_bus_stops else ()))
    products = [out / f"{d.name}.{ext}" for ext in exts]
    if manifest.is_file() and all(p.is_file() for p in products):
        try:
            if json.loads(manifest.read_text(encoding="utf-8")) == key:
                return _result(d, out, seed)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    manifest.unlink(missing_ok=True)

    if isinstance(d.network, CityNetwork):
        build_city_net(d, out)
        _strip_timestamp(out / f"{d.name}.net.xml")
        write_city_routes(d, out / f"{d.name}.net.xml", out / f"{d.name}.rou.xml", seed)
        _write_sumocfg(d, out / f"{d.name}.sumocfg", seed)
        return _finish(d, out, seed, manifest, key)
    if isinstance(d.network, GridNetwork):
        _build_grid_net(d, out)
    else:
        _build_corridor_net(d, out)
    net_path = out / f"{d.name}.net.xml"
    _strip_timestamp(net_path)

    rng = random.Random(seed)
    ods = _grid_ods(d, net_path, rng) if isinstance(d.network, GridNetwork) else _corridor_ods(d, rng)
    timed: list[_Timed] = []
    if d.has_bus_stops:
        stops, timed = _timetables(d, net_path)
        _write_stops(d, stops, out / f"{d.name}.add.xml")
    if d.demand.emergency:
        route_ids = {od.id for od in ods} | {_bus_route(d, line.direction)[0] for line in d.demand.buses}
        timed += _emergency_vehicles(d, route_ids)
    _write_routes(d, ods, out / f"{d.name}.rou.xml", seed, timed)
    _write_sumocfg(d, out / f"{d.name}.sumocfg", seed)
    return _finish(d, out, seed, manifest, key)


def _finish(d: ScenarioDef, out: Path, seed: int, manifest: Path, key: dict[str, Any]) -> BuiltScenario:
    """Copy the definition beside the build and write the manifest last (the cache trusts only it)."""
    if d.source.resolve() != (out / f"{d.name}.toml").resolve():
        shutil.copyfile(d.source, out / f"{d.name}.toml")
    manifest.write_text(json.dumps(key, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return _result(d, out, seed)


def detector_faults(n_detectors: int, faults: Mapping[str, Any]) -> dict[int, str]:
    """The detectors that fail under ``faults`` (a :attr:`BuiltScenario.faults`): index -> ``"dead"``/``"stuck"``.

    One rule, in :func:`simulation.faults.select_failed_detectors`, which the
    runner applies to the backend's observations.
    """
    from simulation.faults import select_failed_detectors

    return select_failed_detectors(n_detectors, faults)
