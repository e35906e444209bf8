"""The real-network half of the development corpus (issue #15).

Real cities break assumptions that generated grids never test: sub-metre lanes between the parts
of one junction, programs loaded from additional files, one ``tlLogic`` over several junctions,
permissive ``g`` links, pedestrian crossings, actuated phases
(``shared/reference/real-networks.md``, "Network features that generated grids do not have").
Every source here brings its own signal programs and its own demand, so greenwave is measured
against what the city (or the scenario's author) actually runs.

Where the data comes from, and why it is not all in this repository:

* sources from SUMO's own pip package (``eclipse-sumo``, EPL-2.0) are cut by
  :func:`rebuild_sources` and committed under ``scenarios/corpus/real/<name>/`` as ``*.xml.gz``;
* sources from the ``DLR-TS/sumo-scenarios`` snapshot are *not* committed here: the workplace
  keeps data from fetched repository snapshots out of developer commits (it may live only under
  the steering repo's ``shared/``). :func:`rebuild_sources` writes them into a directory of your
  choice (``--external-dest``); :func:`build_real` finds them there through
  ``GREENWAVE_REAL_DATA`` or ``<repo>/../shared/corpus/real``. A source whose data is in no
  data directory is reported with one line on stderr and left out.

``scenarios/corpus/real/SOURCES.md`` has origin, licence, citation, cut and size of each source.
Reserved for independent evaluation and never read here: ``bologna/``, Cologne, Ingolstadt.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scenarios.corpus import CorpusEntry

__all__ = [
    "DATA_DIR",
    "REAL_SOURCES",
    "RealSource",
    "SourceFile",
    "build_real",
    "data_dirs",
    "network_features",
    "rebuild_sources",
]

#: Committed data: ``<DATA_DIR>/<name>/*.xml.gz``, SOURCES.md and licence texts.
DATA_DIR = Path(__file__).resolve().parent / "real"
#: Extra data directories (os.pathsep-separated), searched after :data:`DATA_DIR`.
DATA_ENV = "GREENWAVE_REAL_DATA"
#: Bumped when the build output changes for identical inputs, so cached builds are redone.
BUILD_VERSION = 1
#: Folder names that must never be read: reserved for independent evaluation (issue #15).
RESERVED = ("bologna", "cologne", "ingolstadt", "fkk_in")

#: Additional-file elements that only write outputs: dropped, so a corpus run writes nothing
#: beside its sumocfg that the scenario's author meant as measurement, not as scenario.
OUTPUT_TAGS = frozenset({"edgeData", "laneData", "timedEvent", "edgeRelations", "tazRelations"})
#: Demand elements, and the attribute that says when each starts.
_DEMAND_START = {
    "vehicle": "depart",
    "trip": "depart",
    "person": "depart",
    "container": "depart",
    "flow": "begin",
    "personFlow": "begin",
    "containerFlow": "begin",
}

SUMO_SCENARIOS_COMMIT = "629e34c"  # DLR-TS/sumo-scenarios snapshot the cuts were made from
SUMO_SCENARIOS_DIR = "DLR-TS+sumo-scenarios/repo"  # under MIRROR_ROOT


@dataclass(frozen=True)
class SourceFile:
    """One input file of a source: where it is in the origin, its role in the sumocfg, its cut.

    ``window`` cuts demand to the source's ``[begin, end)`` (vehicles departing outside it are
    dropped; the rest stay as written); ``drop`` removes elements by tag (e.g. a stop on a
    parking area the repository does not ship); ``single`` turns each flow into its first
    departure (a detection that a demo repeats for hours).
    """

    path: str
    role: str  # "net" | "route" | "additional"
    window: bool = False
    drop: tuple[str, ...] = ()
    single: bool = False  # each flow/personFlow keeps only its first departure

    @property
    def stored(self) -> str:
        """File name under the data directory: the origin's base name, gzip-compressed."""
        base = Path(self.path).name
        base = base.removesuffix(".gz")
        return base + ".gz"

    @property
    def plain(self) -> str:
        """File name in the built scenario (decompressed)."""
        return self.stored.removesuffix(".gz")


@dataclass(frozen=True)
class RealSource:
    """One real scenario: its origin, licence, the window that was cut, and the features it
    exercises (as in :attr:`CorpusEntry.features`; :func:`network_features` recomputes them at
    build time and the test checks both agree)."""

    name: str
    origin: str  # "eclipse-sumo" (pip package) or "DLR-TS/sumo-scenarios"
    path: str  # folder inside the origin
    licence: str
    window: str  # what was cut, in words
    features: tuple[str, ...]
    begin: float
    end: float
    files: tuple[SourceFile, ...]
    committed: bool  # data under DATA_DIR (True) or only in an external data directory
    options: tuple[tuple[str, str], ...] = ()  # <processing> options kept from the source's config
    notes: str = ""

    @property
    def horizon(self) -> float:
        """Simulated seconds."""
        return self.end - self.begin

    @property
    def net(self) -> SourceFile:
        return next(f for f in self.files if f.role == "net")


_EPL = "EPL-2.0 (SUMO); road geometry from OpenStreetMap where noted, ODbL-1.0"
_DLR = "EPL-2.0 (DLR-TS/sumo-scenarios LICENSE); OSM-derived network, ODbL-1.0"
_GAME = "tools/game"


def _f(path: str, role: str, *, window: bool = False, drop: tuple[str, ...] = (), single: bool = False) -> SourceFile:
    return SourceFile(path, role, window, drop, single)


REAL_SOURCES: tuple[RealSource, ...] = (
    RealSource(
        name="fokr_bs",
        origin="eclipse-sumo",
        path=f"{_GAME}/fokr_bs_demo",
        licence="EPL-2.0 (SUMO); DLR research intersection Braunschweig (Tostmannplatz), DLR data",
        window="15:00-16:00 (54000-57600 s) as in fokr_bs_demo.sumocfg; vehicle trips before 54000 dropped; "
        "each bicycle flow (period 25 s) and pedestrian personFlow (period 15 s), one per detected road user "
        "repeated by the demo until 62000 s, cut to its first departure (the demo's repetition jams the "
        "intersection with ~21000 bicycles an hour)",
        features=("additional_programs", "pedestrians", "permissive"),
        begin=54000.0,
        end=57600.0,
        files=(
            _f("fokr_bs.net.xml.gz", "net"),
            _f("vtypes_default.add.xml", "additional"),
            _f("signalPlan.add.xml", "additional"),
            _f("15_16_veh.trips.xml.gz", "route", window=True),
            _f("15_16_bicycle.trips.xml", "route", window=True, single=True),
            _f("15_16_ped.trips.xml", "route", window=True, single=True),
        ),
        committed=True,
        options=(("xml-validation", "never"),),
        notes="one real intersection with a 46-link program in an additional file (programID "
        "DLR_UT_v1-0-0), cars, trucks, bicycles and pedestrians from detections",
    ),
    RealSource(
        name="tavf_hamburg",
        origin="DLR-TS/sumo-scenarios",
        path="TAVF-Hamburg",
        licence=_DLR,
        window="its own 0-1200 s; car/truck trips departing at or after 1200 s dropped",
        features=("actuated_phases", "joined", "permissive", "short_lanes"),
        begin=0.0,
        end=1200.0,
        files=(
            _f("network.net.xml.gz", "net"),
            _f("busStops.add.xml", "additional"),
            _f("bus_route.rou.xml", "route", window=True),
            _f("vType.xml", "route"),
            _f("PKW_automatic.rou.xml.gz", "route", window=True),
            _f("LKW_automatic.rou.xml", "route", window=True),
        ),
        committed=False,
    ),
    RealSource(
        name="doerpfeldstr",
        origin="DLR-TS/sumo-scenarios",
        path="Doerpfeldstr",
        licence=_DLR,
        window="14:00-15:00 (50400-54000 s) of all_modes.sumocfg's 50300-54100 s",
        features=(
            "actuated_phases",
            "additional_programs",
            "joined",
            "never_green",
            "pedestrians",
            "permissive",
            "short_lanes",
        ),
        begin=50400.0,
        end=54000.0,
        files=(
            _f("net.net.xml.gz", "net"),
            _f("vtypes.add.xml", "additional"),
            _f("stops.add.xml", "additional"),
            _f("tram_tls.add.xml", "additional"),
            _f("samplertrips.rou.xml", "route", window=True),
            _f("samplertrips_bike.rou.xml", "route", window=True),
            _f("parking_heavy.rou.xml", "route", window=True),
            _f("parking_vehicle.rou.xml", "route", window=True),
            _f("pt_lines.rou.xml", "route", window=True),
        ),
        committed=False,
        notes="all_modes.sumocfg without its two edgeData outputs; scenario.sumocfg names "
        "tram.rou.xml and parking_cars.rou.xml, which the repository does not have",
    ),
    RealSource(
        name="wildau",
        origin="DLR-TS/sumo-scenarios",
        path="Wildau",
        licence=_DLR,
        window="15:00-16:00 (54000-57600 s): the counted flows (flows_SUMOV2.2.rou.xml) cover exactly this hour",
        features=("actuated_phases", "pedestrians", "permissive", "short_lanes"),
        begin=54000.0,
        end=57600.0,
        files=(_f("net.net.xml.gz", "net"), _f("flows_SUMOV2.2.rou.xml", "route")),
        committed=False,
        notes="net.net.xml.gz is Netzmodell2.net.xml compressed (same netedit output)",
    ),
    RealSource(
        name="port_brunswick",
        origin="DLR-TS/sumo-scenarios",
        path="port_tutorials/port_brunswick",
        licence=_DLR,
        window="0-1800 s of its one-hour demand (trips departing later dropped), and without the "
        "pedestrians (osm.pedestrian.rou.xml, 4 MB of public-transport person plans): the full hour of "
        "vehicles alone took 72 s of wall time on 2 shared cores",
        features=("actuated_phases", "joined", "pedestrians", "permissive", "short_lanes"),
        begin=0.0,
        end=1800.0,
        files=(
            _f("osm.net.xml.gz", "net"),
            _f("osm_stops.add.xml", "additional"),
            _f("osm_pt.rou.xml", "route", window=True),
            _f("osm.passenger.trips.xml", "route", window=True),
            _f("osm.truck.trips.xml", "route", window=True),
        ),
        committed=False,
        options=(("ignore-route-errors", "true"),),
    ),
    RealSource(
        name="port_luebeck",
        origin="DLR-TS/sumo-scenarios",
        path="port_tutorials/port_lübeck",
        licence=_DLR,
        window="its own 0-3600 s",
        features=("actuated_phases", "pedestrians", "permissive", "short_lanes"),
        begin=0.0,
        end=3600.0,
        files=(
            _f("port.net.xml.gz", "net"),
            _f("stops.add.xml", "additional"),
            _f("veh.rou.xml", "route"),
        ),
        committed=False,
        options=(("ignore-route-errors", "true"),),
    ),
)


# --------------------------------------------------------------------------------------------
# features


def _sumo_time(value: str) -> float | None:
    """SUMO time: seconds, or ``[D:]H:M:S``. None for non-numeric departs ("triggered")."""
    try:
        return float(value)
    except ValueError:
        pass
    parts = value.split(":")
    if len(parts) not in (3, 4):
        return None
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return None
    seconds = nums[-1] + 60 * nums[-2] + 3600 * nums[-3]
    return seconds + (86400 * nums[0] if len(nums) == 4 else 0.0)


def _open_xml(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _programs(path: Path) -> tuple[list[ET.Element], bool]:
    """The tlLogic elements of an additional file, and whether it holds a WAUT."""
    logics: list[ET.Element] = []
    waut = False
    with _open_xml(path) as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag == "tlLogic":
                logics.append(elem)
            elif elem.tag == "WAUT":
                waut = True
    return logics, waut


def network_features(net_file: Path, additional_files: Sequence[Path] = ()) -> tuple[str, ...]:
    """The failure classes a network exercises, found by reading it the way SUMO loads it.

    Each name is one of the classes in ``shared/reference/real-networks.md``:
    ``short_lanes`` (a tls-controlled incoming lane shorter than 5 m: a detector must fit on its
    lane or SUMO refuses to start), ``joined`` (one tlLogic over more than one junction),
    ``permissive`` (``g`` in a state), ``pedestrians`` (crossings), ``never_green`` (a controlled
    link index that no phase of the running program makes G/g/s), ``actuated_phases``
    (minDur/maxDur differ, or a non-static type), ``additional_programs`` (tlLogic in an
    additional file) and ``waut``. The program that runs is the last one loaded for an id
    (additional files after the net), as SUMO does without a WAUT.
    """
    net = _scan_net(net_file)
    add_logics: list[ET.Element] = []
    waut = False
    for path in additional_files:
        logics, has_waut = _programs(path)
        add_logics.extend(logics)
        waut = waut or has_waut

    running: dict[str, ET.Element] = {}
    for logic in [*net.logics, *add_logics]:
        running[logic.get("id", "")] = logic
    found: set[str] = set()
    if net.crossings:
        found.add("pedestrians")
    if add_logics:
        found.add("additional_programs")
    if waut:
        found.add("waut")
    if any(len(js - {""}) > 1 for js in net.junctions.values()):
        found.add("joined")
    for logic in [*net.logics, *add_logics]:
        phases = logic.findall("phase")
        if logic.get("type", "static") != "static":
            found.add("actuated_phases")
        for ph in phases:
            if "g" in ph.get("state", ""):
                found.add("permissive")
            lo, hi = ph.get("minDur"), ph.get("maxDur")
            if lo is not None and hi is not None and float(lo) != float(hi):
                found.add("actuated_phases")
    for tl, logic in running.items():
        states = [ph.get("state", "") for ph in logic.findall("phase")]
        for index, lane in net.links.get(tl, {}).items():
            if net.lane_length.get(lane, 1e9) < 5.0:
                found.add("short_lanes")
            if states and not any(index < len(s) and s[index] in "Ggs" for s in states):
                found.add("never_green")
    return tuple(sorted(found))


@dataclass
class _NetScan:
    """What :func:`network_features` needs of a net file, read in one streaming pass."""

    lane_length: dict[str, float]  # lane id -> length (m), normal edges only
    crossings: bool  # any pedestrian crossing
    logics: list[ET.Element]  # the net's own tlLogic elements
    links: dict[str, dict[int, str]]  # tl -> link index -> incoming lane
    junctions: dict[str, set[str]]  # tl -> junctions its incoming normal edges end at


def _scan_net(net_file: Path) -> _NetScan:
    lane_length: dict[str, float] = {}
    edge_to: dict[str, str] = {}
    crossings = False
    net_logics: list[ET.Element] = []
    links: dict[str, dict[int, str]] = {}  # tl -> link index -> incoming lane
    junctions: dict[str, set[str]] = {}
    with _open_xml(net_file) as fh:
        for _, elem in ET.iterparse(fh):
            tag = elem.tag
            if tag == "edge":
                function = elem.get("function", "")
                if function == "crossing":
                    crossings = True
                if not function:
                    edge_to[elem.get("id", "")] = elem.get("to", "")
                    for lane_el in elem.iter("lane"):
                        lane_length[lane_el.get("id", "")] = float(lane_el.get("length", "0"))
                elem.clear()
            elif tag == "junction":
                elem.clear()
            elif tag == "tlLogic":
                net_logics.append(elem)
            elif tag == "connection" and elem.get("tl"):
                tl = elem.get("tl", "")
                src = elem.get("from", "")
                lane = f"{src}_{elem.get('fromLane', '0')}"
                for key in ("linkIndex", "linkIndex2"):
                    if elem.get(key) is not None:
                        links.setdefault(tl, {})[int(elem.get(key, "0"))] = lane
                if not src.startswith(":"):
                    junctions.setdefault(tl, set()).add(edge_to.get(src, ""))
                elem.clear()
    return _NetScan(lane_length, crossings, net_logics, links, junctions)


def _n_signals(net_file: Path, additional_files: Sequence[Path]) -> int:
    ids: set[str] = set()
    with _open_xml(net_file) as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag == "tlLogic":
                ids.add(elem.get("id", ""))
            elem.clear()
    for path in additional_files:
        ids.update(logic.get("id", "") for logic in _programs(path)[0])
    return len(ids)


# --------------------------------------------------------------------------------------------
# build


def data_dirs() -> list[Path]:
    """Where :func:`build_real` looks for ``<name>/`` data, first match wins.

    The committed :data:`DATA_DIR`, then ``$GREENWAVE_REAL_DATA`` (os.pathsep-separated), then
    ``<repo>/../shared/corpus/real`` (the steering repo's shared/ sits beside a clone, also in
    CI), which is where data that may not be committed here belongs.
    """
    dirs = [DATA_DIR]
    dirs += [Path(p) for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
    dirs.append(DATA_DIR.parents[3] / "shared" / "corpus" / "real")
    return dirs


def _find_data(source: RealSource, search: Sequence[Path]) -> Path | None:
    for base in search:
        folder = base / source.name
        if all((folder / f.stored).is_file() for f in source.files):
            return folder
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _spec_key(source: RealSource) -> str:
    spec = (BUILD_VERSION, source.begin, source.end, source.files, source.options)
    return hashlib.sha256(repr(spec).encode()).hexdigest()


_SECTION = {"xml-validation": "report"}


def _write_sumocfg(path: Path, source: RealSource) -> None:
    routes = ",".join(f.plain for f in source.files if f.role == "route")
    adds = ",".join(f.plain for f in source.files if f.role == "additional")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- greenwave corpus real/{source.name}: {source.origin} {source.path}; "
        f"{source.licence}. See scenarios/corpus/real/SOURCES.md -->",
        "<configuration>",
        "    <input>",
        f'        <net-file value="{source.net.plain}"/>',
    ]
    if routes:
        lines.append(f'        <route-files value="{routes}"/>')
    if adds:
        lines.append(f'        <additional-files value="{adds}"/>')
    lines += [
        "    </input>",
        "    <time>",
        f'        <begin value="{source.begin:g}"/>',
        f'        <end value="{source.end:g}"/>',
        "    </time>",
    ]
    for section in ("processing", "report"):
        opts = [(k, v) for k, v in source.options if _SECTION.get(k, "processing") == section]
        if opts:
            lines.append(f"    <{section}>")
            lines += [f'        <{k} value="{v}"/>' for k, v in opts]
            lines.append(f"    </{section}>")
    lines += ["</configuration>", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _entry(source: RealSource, sumocfg: Path, n_signals: int, features: Sequence[str]) -> CorpusEntry:
    return CorpusEntry(
        name=f"real/{source.name}",
        family="real",
        sumocfg=sumocfg,
        demand="own",
        mix="own",
        n_signals=n_signals,
        features=tuple(features),
        source=f"{source.origin}:{source.path}",
    )


def build_real(
    out_dir: Path, *, only: Iterable[str] | None = None, search: Sequence[Path] | None = None
) -> list[CorpusEntry]:
    """Materialise the real scenarios under ``out_dir/real/<name>/`` and return their entries.

    Each scenario gets its files decompressed beside a ``<name>.sumocfg`` (net, routes, the
    source's own additional files, begin and end), so ``greenwave simulate --sumocfg`` and plain
    ``sumo -c`` run it as it is. A build is skipped when ``corpus-key.json`` says the inputs and
    this builder are unchanged. A source whose data is in none of ``search`` (default
    :func:`data_dirs`) is named on stderr in one line and left out, so a checkout without the
    external data still builds the committed sources.
    """
    wanted = None if only is None else set(only)
    known = {s.name for s in REAL_SOURCES}
    if wanted is not None and wanted - known:
        raise ValueError(f"unknown real sources: {sorted(wanted - known)}")
    search = data_dirs() if search is None else list(search)
    entries: list[CorpusEntry] = []
    for source in REAL_SOURCES:
        if wanted is not None and source.name not in wanted:
            continue
        folder = _find_data(source, search)
        if folder is None:
            where = "committed data" if source.committed else f"external data (${DATA_ENV})"
            print(f"corpus real/{source.name}: data missing in {where}; skipped", file=sys.stderr)
            continue
        target = Path(out_dir) / "real" / source.name
        sumocfg = target / f"{source.name}.sumocfg"
        key = {
            "builder": _spec_key(source),
            "inputs": {f.stored: _sha256(folder / f.stored) for f in source.files},
        }
        key_file = target / "corpus-key.json"
        if key_file.is_file() and sumocfg.is_file():
            try:
                cached = json.loads(key_file.read_text())
            except (OSError, ValueError):
                cached = {}
            if cached.get("key") == key and all((target / f.plain).is_file() for f in source.files):
                entries.append(_entry(source, sumocfg, cached["n_signals"], cached["features"]))
                continue
        target.mkdir(parents=True, exist_ok=True)
        for f in source.files:
            with gzip.open(folder / f.stored, "rb") as src, open(target / f.plain, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        _write_sumocfg(sumocfg, source)
        net = target / source.net.plain
        adds = [target / f.plain for f in source.files if f.role == "additional"]
        features = network_features(net, adds)
        n_signals = _n_signals(net, adds)
        key_file.write_text(json.dumps({"key": key, "n_signals": n_signals, "features": list(features)}, indent=1))
        entries.append(_entry(source, sumocfg, n_signals, features))
    return entries


# --------------------------------------------------------------------------------------------
# rebuild from the public sources


def _sumo_root() -> Path:
    import sumo  # the eclipse-sumo pip package: its tools/ ship the game scenarios

    return Path(sumo.__file__).resolve().parent


def _read_origin(source: RealSource, rel: str, mirror_root: Path) -> bytes:
    """Bytes of one origin file: from the installed SUMO package, or from the git snapshot at
    the pinned commit (a bare git dir: no work tree to read)."""
    full = f"{source.path}/{rel}"
    if any(r in full.lower() for r in RESERVED):
        raise ValueError(f"refusing to read reserved evaluation data: {full}")
    if source.origin == "eclipse-sumo":
        return (_sumo_root() / full).read_bytes()
    repo = mirror_root / SUMO_SCENARIOS_DIR
    out = subprocess.run(
        ["git", "-C", str(repo), "show", f"{SUMO_SCENARIOS_COMMIT}:{full}"],
        check=True,
        capture_output=True,
    )
    return out.stdout


def _cut(data: bytes, f: SourceFile, source: RealSource) -> bytes:
    """Apply a file's cut: drop output-only elements, elements named in ``drop``, and demand
    outside the window; files without a cut pass through unchanged."""
    if f.role == "net":
        return data
    root = ET.fromstring(data)
    removed = 0
    for child in list(root):
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag in OUTPUT_TAGS or tag in f.drop:
            root.remove(child)
            removed += 1
            continue
        if f.window and tag in _DEMAND_START:
            start = _sumo_time(child.get(_DEMAND_START[tag], "0"))
            stop = _sumo_time(child.get("end", "")) if "Flow" in tag or tag == "flow" else start
            if start is None:
                continue
            if start >= source.end or (stop is not None and stop < source.begin):
                root.remove(child)
                removed += 1
                continue
        if f.single and tag in ("flow", "personFlow", "containerFlow"):
            start = _sumo_time(child.get("begin", "0")) or 0.0
            child.set("end", f"{start + 1:.3f}")
            child.set("number", "1")
            child.attrib.pop("period", None)
            removed += 1
        for sub in list(child):
            if sub.tag in f.drop:
                child.remove(sub)
                removed += 1
    if not removed:
        return data
    for attr in [a for a in root.attrib if a.startswith("{")]:
        del root.attrib[attr]
    ET.indent(root, space="    ")
    head = f"<!-- cut for greenwave corpus real/{source.name} from {source.origin} {source.path}/{f.path}: "
    head += f"{source.window} -->\n".replace("--", "- -").replace("<!- -", "<!--").replace("- ->", "-->")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + head.encode() + ET.tostring(root, encoding="utf-8") + b"\n"


def _store(path: Path, data: bytes) -> None:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)


def rebuild_sources(mirror_root: Path, *, external_dest: Path | None = None, only: Iterable[str] | None = None) -> None:
    """Re-create the data directories from the original public sources.

    Committed sources (SUMO's pip package) are written to :data:`DATA_DIR`; snapshot sources
    (``MIRROR_ROOT/DLR-TS+sumo-scenarios/repo`` at :data:`SUMO_SCENARIOS_COMMIT`) only to
    ``external_dest``, never into this repository, and are skipped with a note when it is not
    given. Steps per file: read it, drop output-only elements, cut demand to the window, gzip
    (mtime 0, so a rebuild is byte-identical). No netconvert run is needed for these sources.
    """
    wanted = None if only is None else set(only)
    for source in REAL_SOURCES:
        if wanted is not None and source.name not in wanted:
            continue
        if source.committed:
            dest = DATA_DIR / source.name
        elif external_dest is not None:
            dest = Path(external_dest) / source.name
        else:
            print(
                f"corpus real/{source.name}: snapshot data, not committed here; pass --external-dest", file=sys.stderr
            )
            continue
        for f in source.files:
            data = (
                gzip.decompress(raw) if (raw := _read_origin(source, f.path, mirror_root))[:2] == b"\x1f\x8b" else raw
            )
            _store(dest / f.stored, _cut(data, f, source))
        print(f"corpus real/{source.name}: {dest}", file=sys.stderr)


@dataclass
class _Args:
    rebuild: Path | None = None
    external_dest: Path | None = None
    build: Path | None = None
    only: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scenarios.corpus.real --rebuild MIRROR_ROOT [--external-dest DIR]`` re-creates
    the data; ``--build OUT`` materialises the scenarios and prints one line per entry."""
    parser = argparse.ArgumentParser(prog="python -m scenarios.corpus.real", description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", type=Path, metavar="MIRROR_ROOT", help="folder holding DLR-TS+sumo-scenarios/repo")
    parser.add_argument("--external-dest", type=Path, metavar="DIR", help="where snapshot-derived data goes")
    parser.add_argument("--build", type=Path, metavar="OUT", help="build the scenarios under OUT/real/")
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    args = parser.parse_args(argv, namespace=_Args())
    if args.rebuild is None and args.build is None:
        parser.error("give --rebuild MIRROR_ROOT and/or --build OUT")
    only = args.only or None
    if args.rebuild is not None:
        rebuild_sources(args.rebuild, external_dest=args.external_dest, only=only)
    if args.build is not None:
        extra = [args.external_dest] if args.external_dest else []
        for e in build_real(args.build, only=only, search=[*data_dirs(), *extra]):
            print(f"{e.name}\t{e.n_signals}\t{','.join(e.features)}\t{e.sumocfg}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
