"""The inventory loader: the shipped example, its YAML twin, and every malformed case pinned by message."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from intersections.clearance import ite_all_red_s, ite_yellow_s, ped_clearance_s
from intersections.errors import InventoryError
from intersections.loaders import load_inventory, load_network
from intersections.loaders.inventory import inventory_from_dict
from intersections.model import DetectorKind, GroupKind
from intersections.network import Network
from intersections.plan import PlanStage, TimingPlan, check_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "intersection.toml"
SOURCE = "examples/intersection.toml"


@pytest.fixture(scope="module")
def example() -> Network:
    return load_inventory(EXAMPLE)


@pytest.fixture
def data() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_loads(example: Network) -> None:
    assert example.ids == ("J1",) and example.source == str(EXAMPLE)
    j = example.get("J1")
    assert j.group_ids == ("P1", "P2", "P5", "P6", "P4", "P8", "PED_N", "PED_S", "PED_E", "PED_W")
    assert [j.group(g).phase for g in ("P1", "P2", "P4", "P5", "P6", "P8")] == [1, 2, 4, 5, 6, 8]
    assert [s.id for s in j.stages] == ["S1", "S2", "S3"]
    assert j.stage("S2").groups == {"P2", "P6", "PED_N", "PED_S"}
    assert np.array_equal(j.conflicts, j.conflicts.T) and j.conflicts.sum() == 2 * 22
    p2 = j.group("P2")
    assert (p2.min_green_s, p2.max_green_s, p2.yellow_s, p2.all_red_s) == (12, 70, 3, 2)
    assert {(m.from_edge, m.to_edge, m.turn) for m in p2.movements} == {
        ("km_w_in", "km_e_out", "s"), ("km_w_in", "lg_s_out", "r"),
    }  # fmt: skip
    assert dict(j.approach_speed_m_s)["lg_n_in"] == 11.1
    assert j.group("PED_N").kind is GroupKind.PEDESTRIAN and j.group("PED_N").yellow_s == 0


def test_example_clearances(example: Network) -> None:
    j = example.get("J1")
    ig = lambda a, b: j.intergreen_s[j.group_index(a), j.group_index(b)]  # noqa: E731
    assert ig("P2", "P4") == 6.0  # explicit entry
    assert ig("P1", "P2") == 5.0  # yellow 3 + all-red 2
    assert ig("P4", "P1") == 5.5
    # P5 gives neither yellow nor all-red: ITE at Kim Ma's 13.9 m/s, W = the group's 28 m.
    p5 = j.group("P5")
    assert p5.yellow_s == pytest.approx(float(ite_yellow_s(13.9)))
    assert p5.all_red_s == pytest.approx(float(ite_all_red_s(13.9, crossing_width_m=28.0)))
    assert ig("P5", "P6") == pytest.approx(p5.yellow_s + p5.all_red_s)
    # Pedestrians: crossing time at 1.07 m/s from the crossing length, or given.
    assert j.group("PED_N").ped_clearance_s == pytest.approx(float(ped_clearance_s(19.0)))
    assert j.group("PED_N").walk_s == 7.0 and j.group("PED_N").required_green_s == 7.0
    assert ig("PED_E", "P2") == 17.0  # ped clearance 16 + all-red 1


def test_example_detectors_and_road_graph(example: Network) -> None:
    j = example.get("J1")
    assert len(j.detectors) == 16
    assert sorted(d.channel for d in j.detectors) == [*range(1, 13), 21, 22, 23, 24]
    d4 = next(d for d in j.detectors if d.id == "D04")
    assert (d4.kind, d4.position_m, d4.length_m, d4.group) == (DetectorKind.ADVANCE, 60.0, 2.0, "P2")
    g = example.graph
    assert g.nodes["J1"] == {"x_m": 0.0, "y_m": 0.0, "signalised": True, "tls": "J1"}
    assert g.nodes["KM_W"]["signalised"] is False
    assert g.number_of_edges() == 8
    assert g.edges["KM_W", "J1"] == {
        "id": "km_w_in", "length_m": 420.0, "free_speed_m_s": 13.9, "lanes": 3, "saturation_flow_pcu_h": 5700.0,
    }  # fmt: skip
    assert g.edges["LG_S", "J1"]["saturation_flow_pcu_h"] == 3400.0


def test_a_plan_for_the_example_passes_the_checker(example: Network) -> None:
    j = example.get("J1")
    order = ["S1", "S2", "S3"]
    greens = {"S1": 12.0, "S2": 40.0, "S3": 30.0}
    stages = [PlanStage(s, greens[s], j.transition_s(s, order[(k + 1) % 3])) for k, s in enumerate(order)]
    cycle = sum(s.green_s + s.intergreen_s for s in stages)
    check_plan(TimingPlan("J1", cycle, 0.0, tuple(stages)), j)


def test_yaml_twin_loads_the_same(example: Network, data: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "intersection.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    twin = load_network(path)
    a, b = example.get("J1"), twin.get("J1")
    assert a.groups == b.groups and a.stages == b.stages and a.detectors == b.detectors
    assert np.array_equal(a.conflicts, b.conflicts) and np.array_equal(a.intergreen_s, b.intergreen_s)
    assert sorted(example.graph.edges(data=True)) == sorted(twin.graph.edges(data=True))
    assert twin.source == str(path)


def _group(data: dict[str, Any], gid: str) -> dict[str, Any]:
    return next(g for g in data["intersection"][0]["group"] if g["id"] == gid)


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def edit(d: dict[str, Any]) -> None:
        target: Any = d
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return edit


J = ("intersection", 0)
CASES: list[tuple[str, Any, str]] = [
    ("non-numeric duration", _set((*J, "group", 2, "min_green_s"), "abc"),
     "intersection[0].group[2].min_green_s: must be a number of seconds, got 'abc'"),
    ("negative duration", _set((*J, "group", 1, "yellow_s"), -3),
     "intersection[0].group[1].yellow_s: must be >= 0 seconds, got -3"),
    ("boolean is not a number", _set((*J, "group", 0, "max_green_s"), True),
     "intersection[0].group[0].max_green_s: must be a number of seconds, got True"),
    ("unknown group in stage", _set((*J, "stage", 1, "groups"), ["P2", "P6", "P9"]),
     "intersection[0].stage[1].groups: unknown signal group 'P9' "
     "(known: P1, P2, P5, P6, P4, P8, PED_N, PED_S, PED_E, PED_W)"),
    ("conflicting groups in stage", _set((*J, "stage", 0, "groups"), ["P1", "P5", "P2"]),
     "intersection[0].stage[0].groups: groups P1 and P2 are in conflict and cannot be green together"),
    ("group served by no stage", _set((*J, "stage", 2, "groups"), ["P4", "P8", "PED_E"]),
     "intersection[0].stage: signal groups PED_W are served by no stage"),
    ("unknown key", _set((*J, "group", 0, "min_gren_s"), 5),
     "intersection[0].group[0].min_gren_s: unknown field 'min_gren_s' (did you mean 'min_green_s'?)"),
    ("unknown intersection key", _set((*J, "nmae"), "x"),
     "intersection[0].nmae: unknown field 'nmae' (did you mean 'name'?)"),
    ("unknown top-level key", _set(("intersections",), []),
     "intersections: unknown field 'intersections' (did you mean 'intersection'?)"),
    ("missing group id", _set((*J, "group", 2, "id"), KeyError),
     "intersection[0].group[2].id: missing required field"),
    ("missing intersection id", _set((*J, "id"), KeyError),
     "intersection[0].id: missing required field"),
    ("duplicate group id", _set((*J, "group", 1, "id"), "P1"),
     "intersection[0].group[1].id: duplicate signal group id 'P1'"),
    ("bad kind", _set((*J, "group", 6, "kind"), "ped"),
     "intersection[0].group[6].kind: must be one of vehicle, pedestrian, bus, bicycle, got 'ped'"),
    ("bad turn", _set((*J, "group", 0, "movements", 0, "turn"), "left"),
     "intersection[0].group[0].movements[0].turn: must be one of l, s, r, t, p, got 'left'"),
    ("speed in km/h", _set((*J, "approach_speed_m_s", "km_w_in"), 50),
     "intersection[0].approach_speed_m_s.km_w_in: 50 m/s (180 km/h) is implausible for a signalised approach; "
     "the unit is m/s (50 km/h = 13.9 m/s)"),
    ("grade in percent", _set((*J, "group", 4, "grade"), -2),
     "intersection[0].group[4].grade: grade is a decimal (0.03 = 3 % uphill), got -2"),
    ("yellow on a pedestrian group", _set((*J, "group", 6, "yellow_s"), 3),
     "intersection[0].group[6].yellow_s: pedestrian groups have no yellow; their clearance is ped_clearance_s"),
    ("walk on a vehicle group", _set((*J, "group", 0, "walk_s"), 7),
     'intersection[0].group[0].walk_s: walk_s applies to pedestrian groups only (kind = "pedestrian")'),
    ("max below min", _set((*J, "group", 0, "max_green_s"), 4),
     "intersection[0].group[0].max_green_s: 4 s is below min_green_s 5 s"),
    ("yellow cannot be computed", _set((*J, "approach_speed_m_s"), {}),
     "intersection[0].group[2].yellow_s: not given and cannot be computed: give yellow_s, or approach_speed_m_s"),
    ("conflict with an unknown group", _set((*J, "conflicts", 0), ["P1", "P22"]),
     "intersection[0].conflicts[0]: unknown signal group 'P22'"),
    ("conflict not a pair", _set((*J, "conflicts", 0), ["P1"]),
     "intersection[0].conflicts[0]: must be a pair [group, group], got ['P1']"),
    ("intergreen below yellow", _set((*J, "intergreen", 0, "intergreen_s"), 2),
     "intersection[0].intergreen[0].intergreen_s: 2 s is shorter than P2's yellow 3 s"),
    ("intergreen of a compatible pair", _set((*J, "intergreen", 0, "to"), "P6"),
     "intersection[0].intergreen[0]: P2 and P6 are not in conflict; an intergreen only applies to a conflicting "
     "pair (add it to conflicts)"),
    ("detector of an unknown group", _set((*J, "detector", 0, "group"), "P7"),
     "intersection[0].detector[0].group: unknown signal group 'P7'"),
    ("detector kind", _set((*J, "detector", 0, "kind"), "loop"),
     "intersection[0].detector[0].kind: must be one of stop_line, advance, pedestrian, bus, exit, got 'loop'"),
    ("duplicate channel", _set((*J, "detector", 1, "channel"), 1),
     "intersection[0].detector[1].channel: channel 1 is already used by detector D01"),
    ("negative channel", _set((*J, "detector", 1, "channel"), -1),
     "intersection[0].detector[1].channel: must be >= 0, got -1"),
    ("duplicate vehicle phase", _set((*J, "group", 1, "phase"), 1),
     "intersection[0].group[1].phase: NTCIP phase 1 is already used by group P1"),
    ("link to an unknown node", _set(("link", 0, "from"), "KM_X"),
     "link[0].from: unknown node 'KM_X' (declare it as an [[intersection]] or a [[node]])"),
    ("link without speed", _set(("link", 0, "free_speed_m_s"), KeyError),
     "link[0].free_speed_m_s: missing required field"),
    ("unknown movement key", _set((*J, "group", 0, "movements", 0, "form"), "x"),
     "intersection[0].group[0].movements[0].form: unknown field 'form' (did you mean 'from'?)"),
    ("newer schema", _set(("schema_version",), 2), "schema_version: this greenwave reads schema_version 1, got 2"),
    ("link lanes as text", _set(("link", 1, "lanes"), "2"), "link[1].lanes: must be a whole number, got '2'"),
    ("no intersections", _set(("intersection",), []),
     "intersection: the inventory needs at least one [[intersection]]"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_inventory(data: dict[str, Any], edit: Any, message: str) -> None:
    bad = copy.deepcopy(data)
    edit(bad)
    with pytest.raises(InventoryError) as e:
        inventory_from_dict(bad, source=SOURCE)
    assert str(e.value).startswith(f"{SOURCE}:{message}")


def test_message_names_the_real_file(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("min_green_s = 12", 'min_green_s = "abc"', 1)
    path = tmp_path / "intersection.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as e:
        load_inventory(path)
    assert str(e.value) == f"{path}:intersection[0].group[1].min_green_s: must be a number of seconds, got 'abc'"
    assert e.value.where == f"{path}:intersection[0].group[1].min_green_s"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "[[intersection]]\nid = \n", "not valid TOML: Invalid value (at line 2, column 6)"),
        ("bad.yaml", "intersection:\n  - id: J1\n   group: [\n", "not valid YAML at line 3"),
        ("empty.yaml", "", "the file is empty"),
        ("list.yaml", "- 1\n- 2\n", "must be a table"),
        ("net.json", "{}", "an inventory must be a .toml, .yaml or .yml file"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as e:
        load_inventory(path)
    assert str(e.value).startswith(f"{path}: {message}")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as e:
        load_inventory(tmp_path / "nope.toml")
    assert str(e.value) == f"{tmp_path / 'nope.toml'}: file not found"


def test_minimal_inventory_uses_defaults() -> None:
    net = inventory_from_dict(
        {
            "intersection": [
                {
                    "id": "X",
                    "approach_speed_m_s": {"a": 11.1, "b": 11.1},
                    "crossing_width_m": 20.0,
                    "group": [
                        {"id": "A", "movements": [{"from": "a", "to": "c"}]},
                        {"id": "B", "movements": [{"from": "b", "to": "d"}]},
                        {"id": "W", "kind": "pedestrian"},
                    ],
                    "conflicts": [["A", "B"], ["W", "A"]],
                    "stage": [{"id": "1", "groups": ["A"]}, {"id": "2", "groups": ["B", "W"]}],
                }
            ]
        }
    )
    x = net.get("X")
    a, w = x.group("A"), x.group("W")
    assert (a.min_green_s, a.max_green_s) == (5.0, 60.0)
    assert a.yellow_s == pytest.approx(float(ite_yellow_s(11.1)))
    assert a.all_red_s == pytest.approx(float(ite_all_red_s(11.1, crossing_width_m=20.0)))
    assert a.movements[0].turn == "s"
    assert (w.walk_s, w.all_red_s, w.min_green_s) == (7.0, 0.0, 7.0)
    assert w.ped_clearance_s == pytest.approx(20.0 / 1.07)
    assert x.intergreen_s[x.group_index("W"), x.group_index("A")] == pytest.approx(20.0 / 1.07)
    assert x.detectors == () and net.graph.number_of_nodes() == 1


def test_the_yaml_in_the_docs_loads(tmp_path: Path) -> None:
    doc = (EXAMPLE.parents[1] / "docs" / "inventory.md").read_text(encoding="utf-8")
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "doc.yaml"
    path.write_text(block, encoding="utf-8")
    j = load_inventory(path).get("J1")
    assert j.group_ids == ("P2", "P4")
    assert j.group("P4").yellow_s == pytest.approx(float(ite_yellow_s(11.1)))  # computed: not given
