"""The SUMO net loader against nets that netgenerate builds in a temporary directory.

Expectations are read from the net.xml itself (phases, connections, right-of-way
matrix) with ElementTree, independently of sumolib and of the loader.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from intersections.clearance import ite_all_red_s, ite_yellow_s, ped_clearance_s
from intersections.errors import InputError, NetworkFileError
from intersections.loaders import load_network, load_sumo_net
from intersections.loaders.sumo_net import (
    DEFAULT_MIN_GREEN_S,
    SATURATION_FLOW_PCU_H_PER_LANE,
    program_timing,
)
from intersections.model import GroupKind, Intersection
from intersections.plan import PlanStage, TimingPlan, check_plan

# B1 of a 3x3 grid with two lanes: link indices per approach (SUMO numbers them clockwise
# from the north approach, right to left within an approach).
N_THRU, N_LEFT, E_THRU, S_THRU, W_THRU = 1, 3, 6, 11, 16

# A split program for B1: N through, S through, N+S lefts, E+W (permissive lefts), all-red.
SPLIT = """    <tlLogic id="B1" type="static" programID="split" offset="0">
        <phase duration="30" state="GGGrrrrrrrrrrrrrrrrr"/>
        <phase duration="3"  state="yyyrrrrrrrrrrrrrrrrr"/>
        <phase duration="30" state="rrrrrrrrrrGGGrrrrrrr"/>
        <phase duration="3"  state="rrrrrrrrrryyyrrrrrrr"/>
        <phase duration="20" state="rrrGGrrrrrrrrGGrrrrr"/>
        <phase duration="3"  state="rrryyrrrrrrrryyrrrrr"/>
        <phase duration="30" state="rrrrrGGGggrrrrrGGGgg"/>
        <phase duration="3"  state="rrrrryyyyyrrrrryyyyy"/>
        <phase duration="2"  state="rrrrrrrrrrrrrrrrrrrr"/>
    </tlLogic>
"""


def _tool(name: str) -> str:
    """The SUMO binary itself (the venv's ``bin/`` entry point costs a Python start-up)."""
    candidates: list[str | Path | None] = []
    try:
        import sumo

        candidates.append(Path(sumo.SUMO_HOME) / "bin" / name)
    except ImportError:
        pass
    candidates += [Path(sys.executable).parent / name, shutil.which(name)]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.skip(f"{name} not found (install eclipse-sumo)")


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("nets")
    grid = ["--grid", "--grid.number=3", "--grid.length=200", "--default.lanenumber=2"]
    args = {
        "grid": [*grid, "--tls.guess=true"],
        "notls": grid,
        "one": [*grid, "--tls.set=B1"],
        "ped": [
            "--grid", "--grid.number=2", "--grid.length=200", "--grid.attach-length=150",
            "--default.lanenumber=2", "--default.junctions.type=traffic_light",
            "--sidewalks.guess=true", "--crossings.guess=true",
        ],
        "joined": [
            "--grid", "--grid.x-number=2", "--grid.y-number=1", "--grid.x-length=20", "--grid.attach-length=100",
            "--tls.set=A0,B0", "--tls.join", "--tls.join-dist=30",
        ],
    }  # fmt: skip
    exe = _tool("netgenerate")
    out = {name: d / f"{name}.net.xml" for name in args}
    # netgenerate runs in parallel: the nets are independent.
    env = {**os.environ, "SUMO_HOME": str(Path(exe).parents[1])}
    procs = [
        subprocess.Popen([exe, *a, "-o", str(out[name])], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        for name, a in args.items()
    ]
    for proc in procs:
        _stdout, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    text = out["one"].read_text()
    end = text.index("</tlLogic>") + len("</tlLogic>\n")
    out["split"] = d / "split.net.xml"
    out["split"].write_text(text[:end] + SPLIT + text[end:])
    return out


# ---- reading the net.xml independently --------------------------------------------------


def _programs(path: Path) -> dict[str, list[tuple[float, str]]]:
    """tls id -> phases (duration, state) of its last program."""
    out: dict[str, list[tuple[float, str]]] = {}
    for tl in ET.parse(path).getroot().iter("tlLogic"):
        out[tl.get("id")] = [(float(p.get("duration")), p.get("state")) for p in tl.iter("phase")]
    return out


def _tls_links(path: Path, tls: str) -> set[int]:
    return {int(c.get("linkIndex")) for c in ET.parse(path).getroot().iter("connection") if c.get("tl") == tls}


def _foes(path: Path, junction: str, a: int, b: int) -> bool:
    for j in ET.parse(path).getroot().iter("junction"):
        if j.get("id") == junction:
            req = {int(r.get("index")): r.get("foes") for r in j.iter("request")}
            return req[a][len(req[a]) - 1 - b] == "1"
    raise AssertionError(junction)


def _group_of(inter: Intersection, link: int) -> int:
    (k,) = [k for k, g in enumerate(inter.groups) if link in g.link_indices]
    return k


def _plan_from_program(inter: Intersection, phases: list[tuple[float, str]]) -> TimingPlan:
    """The net's own program as a TimingPlan over the loader's stages."""
    green = "Ggs"
    by_links = {frozenset(i for g in s.groups for i in inter.group(g).link_indices): s.id for s in inter.stages}
    stages: list[list[float | str]] = []
    for dur, state in phases:
        links = frozenset(i for i, ch in enumerate(state) if ch in green)
        clean = links and not set(state) & set("yu")
        if clean and links in by_links:
            stages.append([by_links[links], dur, 0.0])
        else:
            stages[-1][2] += dur  # transition phases add to the previous stage's intergreen
    cycle = sum(d for d, _ in phases)
    return TimingPlan(inter.id, cycle, 0.0, tuple(PlanStage(s, g, ig) for s, g, ig in stages))


# ---- structure ---------------------------------------------------------------------------


def test_every_traffic_light_becomes_an_intersection(nets: dict[str, Path]) -> None:
    net = load_sumo_net(nets["grid"])
    programs = _programs(nets["grid"])
    assert net.ids == tuple(sorted(programs))
    assert net.source == str(nets["grid"])
    b1 = net.get("B1")
    assert (b1.tls_id, b1.x_m, b1.y_m) == ("B1", 200.0, 200.0)
    assert b1.detectors == ()
    assert dict(b1.approach_speed_m_s) == {e: 13.89 for e in ("A1B1", "B0B1", "B2B1", "C1B1")}


@pytest.mark.parametrize("name", ["grid", "ped", "joined"])
def test_groups_cover_every_link_index_exactly_once(nets: dict[str, Path], name: str) -> None:
    net = load_sumo_net(nets[name])
    programs = _programs(nets[name])
    for inter in net:
        indices = [i for g in inter.groups for i in g.link_indices]
        assert len(indices) == len(set(indices))
        assert set(indices) == _tls_links(nets[name], inter.id)
        assert len(set(inter.group_ids)) == len(inter.groups)
        # A group is links whose state is the same in every phase.
        for g in inter.groups:
            columns = {"".join(state[i] for _d, state in programs[inter.id]) for i in g.link_indices}
            assert len(columns) == 1, g.id


def test_group_ids_movements_and_turns(nets: dict[str, Path]) -> None:
    b1 = load_sumo_net(nets["grid"]).get("B1")
    # North and south through+right show the same aspects: one group, readable id.
    through = b1.groups[_group_of(b1, N_THRU)]
    assert through.id == "B2B1_rs+B0B1_rs"
    assert through.link_indices == (0, 1, 2, 10, 11, 12)
    assert {(m.from_edge, m.to_edge, m.turn) for m in through.movements} == {
        ("B2B1", "B1A1", "r"), ("B2B1", "B1B0", "s"), ("B0B1", "B1C1", "r"), ("B0B1", "B1B2", "s"),
    }  # fmt: skip
    (straight,) = [m for m in through.movements if m.from_edge == "B2B1" and m.turn == "s"]
    assert straight.lanes == ("B2B1_0", "B2B1_1")
    left = b1.groups[_group_of(b1, N_LEFT)]
    assert left.id == "B2B1_lt+B0B1_lt" and {m.turn for m in left.movements} == {"l", "t"}
    assert all(g.kind is GroupKind.VEHICLE for g in b1.groups)


def test_stages_are_the_distinct_green_sets_in_program_order(nets: dict[str, Path]) -> None:
    net = load_sumo_net(nets["grid"])
    for inter in net:
        expected: list[frozenset[int]] = []
        for _d, state in _programs(nets["grid"])[inter.id]:
            links = frozenset(i for i, ch in enumerate(state) if ch in "Gg")
            if links and "y" not in state and links not in expected:
                expected.append(links)
        got = [frozenset(i for g in s.groups for i in inter.group(g).link_indices) for s in inter.stages]
        assert got == expected
        assert [s.id for s in inter.stages] == [f"S{k + 1}" for k in range(len(expected))]


# ---- conflicts ------------------------------------------------------------------------------


def test_conflicts_are_symmetric_and_crossing_throughs_conflict(nets: dict[str, Path]) -> None:
    for inter in load_sumo_net(nets["grid"]):
        assert np.array_equal(inter.conflicts, inter.conflicts.T)
        assert not inter.conflicts.diagonal().any()
    b1 = load_sumo_net(nets["grid"]).get("B1")
    assert _foes(nets["grid"], "B1", N_THRU, E_THRU)
    assert b1.conflicts[_group_of(b1, N_THRU), _group_of(b1, E_THRU)]
    assert b1.conflicts[_group_of(b1, N_THRU), _group_of(b1, W_THRU)]


def test_permissive_left_is_compatible_with_oncoming_through(nets: dict[str, Path]) -> None:
    """The N left shows 'g' while S through shows 'G': foes that yield, not a conflict."""
    b1 = load_sumo_net(nets["grid"]).get("B1")
    phases = _programs(nets["grid"])["B1"]
    assert phases[0][1][N_LEFT] == "g" and phases[0][1][S_THRU] == "G"
    assert _foes(nets["grid"], "B1", N_LEFT, S_THRU)
    assert not b1.conflicts[_group_of(b1, N_LEFT), _group_of(b1, S_THRU)]
    assert any(
        {b1.groups[_group_of(b1, N_LEFT)].id, b1.groups[_group_of(b1, S_THRU)].id} <= s.groups for s in b1.stages
    )


def test_parallel_throughs_never_green_together_still_do_not_conflict(nets: dict[str, Path]) -> None:
    """Conflict needs foes: N and S through, run in separate phases by the split program, are no foes."""
    b1 = load_sumo_net(nets["split"], program_id="split").get("B1")
    n, s, e = _group_of(b1, N_THRU), _group_of(b1, S_THRU), _group_of(b1, E_THRU)
    assert n != s
    assert not _foes(nets["split"], "B1", N_THRU, S_THRU)
    assert not b1.conflicts[n, s]
    assert b1.conflicts[n, e] and b1.conflicts[s, e]
    assert len(b1.stages) == 4


# ---- clearances -----------------------------------------------------------------------------


def test_intergreens_cover_yellow_and_match_the_program(nets: dict[str, Path]) -> None:
    net = load_sumo_net(nets["grid"])
    programs = _programs(nets["grid"])
    for inter in net:
        for i, g in enumerate(inter.groups):
            column = "".join(state[g.link_indices[0]] for _d, state in programs[inter.id])
            # The program's 3 s yellow; a group green throughout (the T-junction's right turn)
            # never shows one, so the ITE yellow stands in for flash and fail-safe transitions.
            assert g.yellow_s == (3.0 if "y" in column else float(ite_yellow_s(13.89)))
            row = inter.intergreen_s[i][inter.conflicts[i]]
            assert (row >= g.yellow_s).all()
    b1 = net.get("B1")
    # netgenerate's default programs go straight from yellow to the next green: no all-red.
    i, j = _group_of(b1, N_THRU), _group_of(b1, E_THRU)
    assert b1.intergreen_s[i, j] == 3.0 and b1.groups[i].all_red_s == 0.0
    assert b1.groups[i].min_green_s == DEFAULT_MIN_GREEN_S and b1.groups[i].max_green_s == 60.0


def test_all_red_and_non_direct_transitions(nets: dict[str, Path]) -> None:
    b1 = load_sumo_net(nets["split"], program_id="split").get("B1")
    n, e, left = _group_of(b1, N_THRU), _group_of(b1, E_THRU), _group_of(b1, N_LEFT)
    # E/W ends: 3 s yellow + 2 s all-red, then the N through starts.
    assert b1.intergreen_s[e, n] == 5.0
    assert (b1.groups[e].yellow_s, b1.groups[e].all_red_s) == (3.0, 2.0)
    # The N through is followed by the (compatible) S through; every conflicting group starts
    # only after another stage's whole green: sequencing, not clearance, so ITE fills in.
    shape = next(j.get("shape") for j in ET.parse(nets["split"]).getroot().iter("junction") if j.get("id") == "B1")
    xy = np.array([[float(v) for v in p.split(",")] for p in shape.split()])
    width = float((xy.max(axis=0) - xy.min(axis=0)).max())
    ite_red = float(ite_all_red_s(13.89, crossing_width_m=width))
    assert b1.groups[n].all_red_s == pytest.approx(ite_red)
    assert b1.intergreen_s[n, left] == pytest.approx(3.0 + ite_red)
    assert b1.intergreen_s[n, e] == pytest.approx(3.0 + ite_red)
    assert b1.intergreen_s[n, left] < 30


def test_pedestrian_crossings_become_pedestrian_groups(nets: dict[str, Path]) -> None:
    a1 = load_sumo_net(nets["ped"]).get("A1")
    peds = [g for g in a1.groups if g.kind is GroupKind.PEDESTRIAN]
    assert [g.id for g in peds] == ["ped_A1_c0+A1_c2", "ped_A1_c1+A1_c3"]
    assert {i for g in peds for i in g.link_indices} == {20, 21, 22, 23}
    root = ET.parse(nets["ped"]).getroot()
    length = max(float(ln.get("length")) for e in root.iter("edge") if e.get("id") == ":A1_c0" for ln in e)
    for g in peds:
        assert g.yellow_s == 0.0 and g.walk_s == 7.0 and g.required_green_s == 7.0
        assert all(m.turn == "p" and m.to_edge.startswith(":A1_c") for m in g.movements)
        # The crossing time at 3.5 ft/s exceeds the 8 s the program leaves (5 s of vehicle
        # green after the WALK + 3 s yellow), so it is bounded to fit the program.
        assert float(ped_clearance_s(length)) > 8.0
        assert g.ped_clearance_s == 8.0
    # Crossings of the N/S legs walk with the E/W traffic and conflict with N/S vehicles only.
    k = a1.group_index("ped_A1_c0+A1_c2")
    conflicting = {a1.group_ids[j] for j in np.flatnonzero(a1.conflicts[k])}
    assert conflicting == {"top0A1_rlt+A0A1_rlt", "top0A1_s+A0A1_s"}
    assert (a1.intergreen_s[k][a1.conflicts[k]] == 8.0).all()


@pytest.mark.parametrize("name", ["grid", "ped", "joined"])
def test_the_nets_own_program_passes_the_plan_checker(nets: dict[str, Path], name: str) -> None:
    programs = _programs(nets[name])
    for inter in load_sumo_net(nets[name]):
        check_plan(_plan_from_program(inter, programs[inter.id]), inter)


def test_joined_traffic_light_is_one_intersection(nets: dict[str, Path]) -> None:
    net = load_sumo_net(nets["joined"])
    assert net.ids == ("joinedS_A0_B0",)
    j = net.get("joinedS_A0_B0")
    assert (j.x_m, j.y_m) == (110.0, 100.0)  # mean of junctions A0 (100, 100) and B0 (120, 100)
    assert net.graph.nodes["A0"]["tls"] == net.graph.nodes["B0"]["tls"] == "joinedS_A0_B0"


def test_program_timing_direct_and_sequenced_transitions() -> None:
    # Three groups A, B, C served in turn; A's yellow 3 s + 1 s all-red before B.
    columns = ["GyrrrrrrG", "rrrGyrrrr", "rrrrrrGyr"]
    # phases:   0  1  2  3  4  5  6  7  8
    durations = [20, 3, 1, 20, 3, 2, 20, 3, 0]
    t = program_timing(columns, durations)
    assert t.cycle_s == 72
    assert list(t.yellow_s) == [3, 3, 3]
    assert t.intergreen_s[0, 1] == 4 and t.intergreen_s[1, 2] == 5 and t.intergreen_s[2, 0] == 3
    # A -> C spans B's whole green: not a clearance, left for the ITE fallback.
    assert np.isinf(t.intergreen_s[0, 2])
    assert list(t.shortest_green_s) == [20, 20, 20]
    assert [sorted(s) for s in t.stages] == [[0], [1], [2]]


def test_program_timing_actuated_min_and_max() -> None:
    t = program_timing(["Gyr", "rrG"], [30, 3, 30], min_durations_s=[8, -1, 30], max_durations_s=[45, -1, 30])
    assert t.shortest_min_green_s[0] == 8 and np.isnan(t.shortest_min_green_s[1])
    assert t.longest_max_green_s[0] == 45


def test_road_graph(nets: dict[str, Path]) -> None:
    net = load_sumo_net(nets["grid"])
    g = net.graph
    root = ET.parse(nets["grid"]).getroot()
    junctions = {j.get("id") for j in root.iter("junction") if not j.get("id").startswith(":")}
    edges = {e.get("id") for e in root.iter("edge") if not e.get("function")}
    assert set(g.nodes) == junctions
    assert {d["id"] for _a, _b, d in g.edges(data=True)} == edges
    assert g.nodes["B1"] == {"x_m": 200.0, "y_m": 200.0, "signalised": True, "tls": "B1"}
    assert g.nodes["A0"]["signalised"] is False and g.nodes["A0"]["tls"] == ""
    d = g.edges["A1", "B1"]
    assert d["id"] == "A1B1" and d["lanes"] == 2 and d["free_speed_m_s"] == 13.89
    assert d["saturation_flow_pcu_h"] == 2 * SATURATION_FLOW_PCU_H_PER_LANE
    assert 150 < d["length_m"] <= 200


# ---- programs and errors --------------------------------------------------------------------


def test_program_selection(nets: dict[str, Path]) -> None:
    default = load_sumo_net(nets["split"]).get("B1")
    split = load_sumo_net(nets["split"], program_id="split").get("B1")
    zero = load_sumo_net(nets["split"], program_id="0").get("B1")
    assert len(split.stages) == 4 and len(zero.stages) == 2
    assert default.group_ids == split.group_ids  # SUMO runs the last program loaded


def test_unknown_program(nets: dict[str, Path]) -> None:
    with pytest.raises(NetworkFileError) as e:
        load_sumo_net(nets["one"], program_id="night")
    assert str(e.value) == (
        f"{nets['one']}: unknown program 'night': traffic light B1 has no such program (its programs: 0)"
    )
    assert e.value.where == str(nets["one"])


def test_net_without_traffic_lights(nets: dict[str, Path]) -> None:
    with pytest.raises(NetworkFileError, match="no traffic-light-controlled junctions") as e:
        load_sumo_net(nets["notls"])
    assert e.value.where == str(nets["notls"])


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.net.xml"
    with pytest.raises(NetworkFileError) as e:
        load_sumo_net(path)
    assert str(e.value) == f"{path}: file not found"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is not xml", "not well-formed XML at line 1, column 0"),
        ('<?xml version="1.0"?>\n<net version="1.20">\n  <edge id="a">\n</net>\n',
         "not well-formed XML at line 4, column 2: mismatched tag"),
        ('<?xml version="1.0"?>\n<routes/>\n', "not a SUMO network: the root element is <routes>, expected <net>"),
        ("", "not well-formed XML at line 1"),
    ],
)  # fmt: skip
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.net.xml"
    path.write_text(text)
    with pytest.raises(NetworkFileError) as e:
        load_sumo_net(path)
    assert str(e.value).startswith(f"{path}: {message}")
    assert "Traceback" not in str(e.value)


def test_load_network_dispatches_on_suffix(nets: dict[str, Path], tmp_path: Path) -> None:
    assert load_network(nets["grid"]).ids == load_sumo_net(nets["grid"]).ids
    examples = Path(__file__).resolve().parents[2] / "examples" / "intersection.toml"
    assert load_network(examples).ids == ("J1",)
    with pytest.raises(InputError, match="unknown network file type") as e:
        load_network(tmp_path / "net.csv")
    assert e.value.where == str(tmp_path / "net.csv")


@pytest.mark.parametrize("name", ["grid", "ped", "joined"])
def test_one_pass_link_indices_match_sumolib(nets: dict[str, Path], name: str) -> None:
    """The fast right-of-way index equals sumolib's own ``Node.getLinkIndex`` (it reads a private field)."""
    import sumolib

    from intersections.loaders.sumo_net import _junction_link_indices

    net = sumolib.net.readNet(str(nets[name]), withInternal=True, withPedestrianConnections=True, lxml=False)
    for node in net.getNodes():
        fast = _junction_link_indices(node)
        assert fast is not None
        for conn in node.getConnections():
            if conn.getFrom().getFunction() != "internal":
                assert fast.get(id(conn), -1) == node.getLinkIndex(conn)


def test_protected_left_after_through_is_sequencing_not_clearance() -> None:
    """SUMO's generated program with protected lefts (netconvert --tls.left-green.time): the
    NS through ends, the NS left carries on alone for 6 s, then yellow + 2 s all-red. The
    through's clearance to the EW through is its yellow plus the program's all-red (5 s), not
    the 14 s gap that contains the left's own stage."""
    columns = [
        "GyrrrrrrrrR"[:10],  # NS through
        "ggGyrrrrrr",  # NS left: permissive, then protected
        "rrrrrGyrrr",  # EW through
        "rrrrrggGyr",  # EW left
    ]
    durations = [31, 3, 6, 3, 2, 31, 3, 6, 3, 2]
    t = program_timing(columns, durations)
    assert t.intergreen_s[0, 2] == 5.0  # 3 s yellow + 2 s all-red
    assert t.intergreen_s[1, 2] == 5.0  # direct: the left's yellow, then the all-red
    assert t.intergreen_s[2, 0] == 5.0


def test_stages_dominated_by_a_larger_green_set_are_dropped_but_protected_lefts_stay() -> None:
    import numpy as np

    from intersections.loaders.sumo_net import maximal_stages

    # Groups: 0 through, 1 left (permissive g with the through, protected G alone), 2 cross, 3 walk.
    columns = ["Grrr", "gGrr", "rrGG", "rrGr"]
    green = np.array([[c[p] in "Ggs" for p in range(4)] for c in columns])
    stages = (frozenset({0, 1}), frozenset({1}), frozenset({2, 3}), frozenset({2}))
    kept = maximal_stages(stages, columns, green)
    # {1} alone gives the left a protected G it only has as g beside the through: kept.
    # {2} is {2, 3} less the walk, with nothing better protected: an overlap step, dropped.
    assert kept == (frozenset({0, 1}), frozenset({1}), frozenset({2, 3}))
    # The left filters (g) beside the through and is protected (G) alone: it yields in the first set only.
    from intersections.loaders.sumo_net import yielding_members

    assert yielding_members(kept, columns, green) == (frozenset({1}), frozenset(), frozenset())
    # A movement that is only ever permissive (no protected set) yields nowhere: its demand stays
    # with the sets that serve it.
    only_g = ["Grr", "grr", "rrG"]
    green3 = np.array([[c[p] in "Ggs" for p in range(3)] for c in only_g])
    assert yielding_members((frozenset({0, 1}), frozenset({2})), only_g, green3) == (frozenset(), frozenset())
