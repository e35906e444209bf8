"""The real half of the development corpus (issue #15): built entries are complete and honest.

No SUMO run here: building is decompressing and writing a sumocfg, and the features come from
reading the XML, so these checks stay fast enough for every CI run.
"""

from __future__ import annotations

import gzip
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scenarios.corpus import CorpusEntry
from scenarios.corpus.real import DATA_DIR, REAL_SOURCES, RESERVED, build_real, data_dirs, network_features

REPO = Path(__file__).resolve().parents[2]
COMMITTED = [s for s in REAL_SOURCES if s.committed]


def _sumocfg_files(sumocfg: Path) -> list[Path]:
    root = ET.parse(sumocfg).getroot()
    files: list[Path] = []
    for key in ("net-file", "route-files", "additional-files"):
        for elem in root.iter(key):
            files += [sumocfg.parent / v.strip() for v in elem.get("value", "").split(",") if v.strip()]
    return files


def test_sources_are_declared_unique_and_enough():
    names = [s.name for s in REAL_SOURCES]
    assert len(names) == len(set(names))
    assert len(REAL_SOURCES) >= 6
    for s in REAL_SOURCES:
        assert 0 < s.horizon <= 3600, s.name
        assert sum(f.role == "net" for f in s.files) == 1, s.name
        assert any(f.role == "route" for f in s.files), f"{s.name}: a real source brings its own demand"
        assert s.licence and s.window and s.origin


def test_committed_sources_build_with_complete_sumocfgs(tmp_path):
    entries = build_real(tmp_path, search=[DATA_DIR])
    assert [e.name for e in entries] == [f"real/{s.name}" for s in COMMITTED]
    for entry, source in zip(entries, COMMITTED, strict=True):
        assert isinstance(entry, CorpusEntry)
        assert entry.family == "real" and entry.demand == "own" and entry.mix == "own"
        assert entry.sumocfg == tmp_path / "real" / source.name / f"{source.name}.sumocfg"
        files = _sumocfg_files(entry.sumocfg)
        assert len(files) == len(source.files)
        for f in files:
            assert f.is_file() and f.stat().st_size > 0, f
        assert entry.n_signals >= 1
        assert entry.features == tuple(sorted(source.features)), f"{source.name}: declared features are stale"


def test_build_is_cached_until_an_input_changes(tmp_path):
    data = tmp_path / "data"
    src = COMMITTED[0]
    (data / src.name).mkdir(parents=True)
    for f in src.files:
        (data / src.name / f.stored).write_bytes((DATA_DIR / src.name / f.stored).read_bytes())
    first = build_real(tmp_path / "out", only=[src.name], search=[data])
    cfg = first[0].sumocfg
    stamp = cfg.stat().st_mtime_ns
    assert build_real(tmp_path / "out", only=[src.name], search=[data]) == first
    assert cfg.stat().st_mtime_ns == stamp, "an unchanged build must be skipped"
    route = next(f for f in src.files if f.role == "route")
    stored = data / src.name / route.stored
    stored.write_bytes(gzip.compress(gzip.decompress(stored.read_bytes()) + b"<!-- changed -->\n"))
    build_real(tmp_path / "out", only=[src.name], search=[data])
    assert (cfg.parent / route.plain).read_text().endswith("<!-- changed -->\n"), "a changed input is rebuilt"


def test_missing_data_is_one_line_on_stderr_and_the_rest_build(tmp_path, capsys):
    external = [s for s in REAL_SOURCES if not s.committed]
    entries = build_real(tmp_path, search=[DATA_DIR, tmp_path / "nowhere"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(external)
    for line, source in zip(err, external, strict=True):
        assert f"real/{source.name}" in line and "missing" in line
    assert len(entries) == len(COMMITTED)
    with pytest.raises(ValueError):
        build_real(tmp_path, only=["no_such_source"])


def test_every_source_builds_where_the_external_data_is_present(tmp_path):
    """On a machine with the snapshot-derived data (``$GREENWAVE_REAL_DATA`` or ``../shared``)
    the whole real half builds: at least six scenarios with their own programs and demand."""
    available = [s for s in REAL_SOURCES if any((d / s.name).is_dir() for d in data_dirs())]
    if len(available) < len(REAL_SOURCES):
        pytest.skip("snapshot-derived data not on this machine (see scenarios/corpus/real/SOURCES.md)")
    entries = build_real(tmp_path)
    assert len(entries) >= 6
    for entry in entries:
        for f in _sumocfg_files(entry.sumocfg):
            assert f.is_file(), f
    assert len({e.name for e in entries}) == len(entries)
    declared = {f"real/{s.name}": tuple(sorted(s.features)) for s in REAL_SOURCES}
    assert {e.name: e.features for e in entries} == declared


def _tiny_net(path: Path) -> None:
    """Two junctions under one tlLogic, a 0.4 m incoming lane, a crossing, a link never green."""
    path.write_text(
        """<net>
    <edge id=":J0_c0" function="crossing" crossingEdges="a"><lane id=":J0_c0_0" length="5"/></edge>
    <edge id="a" from="S" to="J0"><lane id="a_0" length="100"/></edge>
    <edge id="b" from="J0" to="J1"><lane id="b_0" length="0.4"/></edge>
    <edge id="c" from="J1" to="E"><lane id="c_0" length="80"/></edge>
    <edge id="d" from="N" to="J1"><lane id="d_0" length="80"/></edge>
    <tlLogic id="T" type="static" programID="0" offset="0">
        <phase duration="30" state="Grg"/>
        <phase duration="3" state="yrr"/>
        <phase duration="30" state="rrg" minDur="5" maxDur="40"/>
    </tlLogic>
    <connection from="a" to="b" fromLane="0" toLane="0" tl="T" linkIndex="0"/>
    <connection from="b" to="c" fromLane="0" toLane="0" tl="T" linkIndex="1"/>
    <connection from="d" to="c" fromLane="0" toLane="0" tl="T" linkIndex="2"/>
</net>
"""
    )


def test_network_features_on_known_cases(tmp_path):
    net = tmp_path / "tiny.net.xml"
    _tiny_net(net)
    assert network_features(net) == (
        "actuated_phases",
        "joined",
        "never_green",
        "pedestrians",
        "permissive",
        "short_lanes",
    )
    add = tmp_path / "tls.add.xml"
    add.write_text(
        """<additional>
    <tlLogic id="T" type="static" programID="p1" offset="0">
        <phase duration="30" state="GGG"/><phase duration="3" state="yyy"/>
    </tlLogic>
    <WAUT refTime="0" id="w" startProg="p1"><wautSwitch time="100" to="0"/></WAUT>
</additional>
"""
    )
    with_add = network_features(net, [add])
    assert {"additional_programs", "waut"} <= set(with_add)
    assert "never_green" not in with_add, "the program SUMO runs is the last one loaded, which greens link 1"
    # the real case: SUMO's Braunschweig research intersection, program in an additional file
    fokr = next(s for s in COMMITTED if s.name == "fokr_bs")
    built = build_real(tmp_path / "out", only=["fokr_bs"], search=[DATA_DIR])[0]
    assert {"additional_programs", "pedestrians", "permissive"} <= set(built.features) == set(fokr.features)


def test_no_committed_path_names_reserved_evaluation_data():
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "scenarios/corpus"], capture_output=True, text=True, check=True
    ).stdout.lower()
    on_disk = "\n".join(str(p.relative_to(REPO)) for p in DATA_DIR.rglob("*")).lower()
    declared = "\n".join(f"{s.path}/{f.path}" for s in REAL_SOURCES for f in s.files).lower()
    for word in ("bologna", "cologne", "köln", "koeln", "ingolstadt"):
        assert word not in tracked and word not in on_disk and word not in declared, word
    assert all(r not in declared for r in RESERVED)
