"""A traffic light over several junctions a road apart (netconvert ``--tls.join``, common in imported
city networks) is one intersection per junction, driven as one SUMO light.

Found on the generated corpus (issue #15, docs/results/corpus.md): netconvert's program for such a
light can serve the junctions' side roads one junction after the other (spider08's ring of eight
junctions 25 m apart: 16 green phases, a 544-s cycle), and with stages taken from that program no
controller could serve two side roads at once; light demand waited minutes at every side road. A
program that runs its junctions in step (every phase moves every junction) is their coordination
and stays one intersection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sumo_nets

from intersections.loaders.sumo_net import load_sumo_net
from intersections.model import SignalState
from simulation.runner import resolve_run, simulate

pytestmark = pytest.mark.sumo

# Two crossroads 100 m apart on a west-east main road, one light "J" over both (node attribute tl).
NODES = """<nodes>
  <node id="A" x="0" y="0" type="traffic_light" tl="J"/>
  <node id="B" x="100" y="0" type="traffic_light" tl="J"/>
  <node id="W" x="-200" y="0" type="priority"/>
  <node id="E" x="300" y="0" type="priority"/>
  <node id="AN" x="0" y="200" type="priority"/>
  <node id="AS" x="0" y="-200" type="priority"/>
  <node id="BN" x="100" y="200" type="priority"/>
  <node id="BS" x="100" y="-200" type="priority"/>
</nodes>
"""
PAIRS = [("W", "A"), ("A", "B"), ("B", "E"), ("AN", "A"), ("AS", "A"), ("BN", "B"), ("BS", "B")]
EDGES = "".join(
    f'  <edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="13.9"/>\n'
    f'  <edge id="{b}{a}" from="{b}" to="{a}" numLanes="1" speed="13.9"/>\n'
    for a, b in PAIRS
)
# The side roads carry the demand; the main road a little.
FLOWS = [("ANA", "AAS", 500), ("ASA", "AAN", 500), ("BNB", "BBS", 500), ("BSB", "BBN", 500), ("WA", "BE", 100)]
SIDE_A, SIDE_B = ("ANA", "ASA"), ("BNB", "BSB")


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("joined")
    net = sumo_nets.plain(d, NODES, f"<edges>\n{EDGES}</edges>\n", name="joined")
    routes = d / "side.rou.xml"
    flows = "".join(
        f'  <flow id="f{k}" from="{a}" to="{b}" begin="0" end="300" vehsPerHour="{v}" departLane="best"/>\n'
        for k, (a, b, v) in enumerate(FLOWS)
    )
    routes.write_text(f"<routes>\n{flows}</routes>\n")
    return net, routes


def _side_links(net: Path, side: tuple[str, ...]) -> set[int]:
    """Link indices of light J fed by the given approach edges (from the net's connections)."""
    import sumolib

    tls = sumolib.net.readNet(str(net)).getTLS("J")
    return {index for in_lane, _out, index in tls.getConnections() if in_lane.getEdge().getID() in side}


def _program(net: Path, path: Path, phases: list[tuple[float, set[int]]]) -> Path:
    """An additional file with a program for J: each green phase followed by its 3-s yellow."""
    import sumolib

    tls = sumolib.net.readNet(str(net), withPrograms=True).getTLS("J")
    width = len(next(iter(tls.getPrograms().values())).getPhases()[0].state)
    lines = []
    for duration, green in phases:
        lines.append(
            f'    <phase duration="{duration}" state="{"".join("G" if i in green else "r" for i in range(width))}"/>'
        )
        lines.append(f'    <phase duration="3" state="{"".join("y" if i in green else "r" for i in range(width))}"/>')
    path.write_text(
        '<additional>\n  <tlLogic id="J" programID="p" offset="0" type="static">\n'
        + "\n".join(lines)
        + "\n  </tlLogic>\n</additional>\n"
    )
    return path


def _all_links(net: Path) -> set[int]:
    import sumolib

    return {index for _in, _out, index in sumolib.net.readNet(str(net)).getTLS("J").getConnections()}


@pytest.fixture(scope="module")
def serialised(joined: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What netconvert writes for a ring of joined junctions, on two: the main road at both, then
    each junction's side road in turn while the other keeps the main road green."""
    net, _routes = joined
    a, b = _side_links(net, SIDE_A), _side_links(net, SIDE_B)
    main_a, main_b = _links_of(net, "A") - a, _links_of(net, "B") - b
    main = main_a | main_b
    path = tmp_path_factory.mktemp("serialised") / "serialised.add.xml"
    return _program(net, path, [(30, main), (20, a | main_b), (20, b | main_a)])


def _links_of(net: Path, junction: str) -> set[int]:
    import sumolib

    tls = sumolib.net.readNet(str(net)).getTLS("J")
    return {index for in_lane, _out, index in tls.getConnections() if in_lane.getEdge().getToNode().getID() == junction}


def test_a_light_that_serves_its_junctions_in_turn_is_one_intersection_per_junction(
    joined: tuple[Path, Path], serialised: Path
) -> None:
    net, _routes = joined
    network = load_sumo_net(net, additional_files=[serialised])
    assert network.ids == ("J@A", "J@B")
    assert {i.tls_id for i in network.intersections} == {"J"}
    a, b = network.get("J@A"), network.get("J@B")
    assert {m.from_edge for g in a.groups for m in g.movements} == {"WA", "BA", "ANA", "ASA"}
    assert {m.from_edge for g in b.groups for m in g.movements} == {"AB", "EB", "BNB", "BSB"}
    links = [{li for g in inter.groups for li in g.link_indices} for inter in (a, b)]
    assert links[0] and links[1] and not links[0] & links[1]
    assert (b.x_m - a.x_m, b.y_m - a.y_m) == (100.0, 0.0)  # each at its own junction
    # the road graph names each junction's own intersection (Webster's demand, coordination)
    assert network.graph.nodes["A"]["tls"] == "J@A" and network.graph.nodes["B"]["tls"] == "J@B"


def test_both_side_roads_get_green_together_and_sumo_shows_what_each_part_commands(
    joined: tuple[Path, Path], serialised: Path, tmp_path: Path
) -> None:
    import libsumo

    net, routes = joined
    a, b = _side_links(net, SIDE_A), _side_links(net, SIDE_B)
    spec = resolve_run(net=net, routes=[routes], additional=(serialised,), end_s=300.0)
    network = load_sumo_net(net, additional_files=[serialised])
    shown: list[str] = []
    mismatches: list[str] = []
    char_ok = {int(SignalState.GREEN): "Gg", int(SignalState.YELLOW): "y", int(SignalState.RED): "r"}

    def on_tick(res) -> None:  # type: ignore[no-untyped-def]
        text = libsumo.trafficlight.getRedYellowGreenState("J")
        shown.append(text)
        for row, inter in enumerate(network.intersections):
            for k, grp in enumerate(inter.groups):
                ok = char_ok.get(int(res.states[row, k]), "")
                if any(text[li] not in ok for li in grp.link_indices):
                    mismatches.append(f"t={res.time_s} {inter.id} {grp.id}: {text}")

    k = simulate(spec, "max-pressure", out_dir=tmp_path, on_tick=on_tick, network=network)
    assert k["throughput_veh"] > 0
    assert not mismatches, mismatches[:3]
    assert any(all(s[i] in "Gg" for i in a | b) for s in shown)


def test_a_light_whose_program_runs_its_junctions_in_step_stays_one_intersection(
    joined: tuple[Path, Path], tmp_path: Path
) -> None:
    """Both junctions move together: the program's sequence is their coordination (netconvert's
    own program for this pair is such a one too)."""
    net, _routes = joined
    a, b = _side_links(net, SIDE_A), _side_links(net, SIDE_B)
    in_step = _program(net, tmp_path / "in_step.add.xml", [(30, _all_links(net) - a - b), (20, a | b)])
    assert load_sumo_net(net, additional_files=[in_step]).ids == ("J",)
    assert load_sumo_net(net).ids == ("J",)
