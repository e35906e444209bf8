"""Push-button calls from SUMO: people waiting at the kerb of a signalled crossing (simulation.pedestrians).

A four-arm junction with sidewalks and crossings built here with netconvert, run in real SUMO
under its own program; people walk across it for the first minutes only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sumo_nets

from intersections.loaders.sumo_net import load_sumo_net
from intersections.model import GroupKind
from simulation.sumo_backend import SumoBackend, SumoRun

pytestmark = pytest.mark.sumo

NODES = """<nodes>
  <node id="C" x="0" y="0" type="traffic_light"/>
  <node id="W" x="-150" y="0"/> <node id="E" x="150" y="0"/>
  <node id="N" x="0" y="150"/> <node id="S" x="0" y="-150"/>
</nodes>
"""
EDGES = "<edges>\n" + "".join(
    f'  <edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="11.1"/>\n'
    for a, b in [("W", "C"), ("C", "W"), ("E", "C"), ("C", "E"), ("N", "C"), ("C", "N"), ("S", "C"), ("C", "S")]
) + "</edges>\n"
# People walk west -> east along the sidewalk for 200 s (each crosses an arm's crossing); cars all along.
ROUTES = """<routes>
  <personFlow id="p" begin="0" end="200" period="4"><walk from="WC" to="CE"/></personFlow>
  <flow id="v" begin="0" end="600" period="6" from="NC" to="CS"/>
</routes>
"""


@pytest.fixture(scope="module")
def crossing_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("peds")
    (d / "r.rou.xml").write_text(ROUTES)
    return sumo_nets.plain(
        d, NODES, EDGES, name="peds", options=("--no-turnarounds", "--sidewalks.guess", "--crossings.guess")
    )


def test_people_waiting_at_a_crossing_call_it_and_nobody_calls_an_empty_one(crossing_net: Path) -> None:
    network = load_sumo_net(crossing_net)
    (inter,) = network.intersections
    peds = [k for k, g in enumerate(inter.groups) if g.kind is GroupKind.PEDESTRIAN]
    assert peds, "netconvert made no signalled crossing"
    run = SumoRun(
        ["-n", str(crossing_net), "-r", str(crossing_net.with_name("r.rou.xml")), "--no-step-log", "--no-warnings"],
        end_s=600,
    )
    calls = []
    with SumoBackend(network, run, control=False) as be:
        for _ in range(600):
            obs = be.read()
            assert "ped_calls" in obs.extra
            calls.append(np.asarray(obs.extra["ped_calls"])[0].copy())
            be.advance()
    seen = np.array(calls)
    assert seen.shape[1] >= len(inter.groups)
    vehicle = [k for k in range(len(inter.groups)) if k not in peds]
    assert not seen[:, vehicle].any()  # only crossings have push buttons
    assert seen[:260, peds].any()  # people waited at a red crossing while they walked
    # The last walker has crossed well before 320 s: nobody is waiting, nothing calls.
    assert not seen[320:, peds].any()
