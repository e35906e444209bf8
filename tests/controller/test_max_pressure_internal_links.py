"""Max-pressure on an intersection made of two junctions joined by a link that stores nothing.

The case is grid06's B0+B1 (issue #15): two junctions of one light 0.2 m apart,
one intersection. The link between them holds no queue; the stop-line zone of
its lanes reaches back over the approach that feeds it straight
(``simulation.detectors``), so the queue measured for the link's group is that
approach's. With the plain downstream matrix the approach had its own queue
subtracted from its pressure: on grid06, A0B0's pressure fell below zero and
max-pressure ran the link groups' stage alone where the stage adding A0B0 was
free, and the approaches turning into the link (C0B0, bottom1B0) lost their
greens the same way (C0's delay 20.9 -> 55.8 s).
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from controller.arrays import pack
from controller.estimate import Estimate
from controller.policies.base import PolicyContext
from controller.policies.common import downstream_matrix
from controller.policies.max_pressure import MaxPressurePolicy
from intersections.loaders.sumo_net import JOINED_PART_LINK_M
from intersections.model import Intersection, Movement, SignalGroup, SignalState, Stage
from intersections.network import Network, add_link


def _joined(link_m: float) -> Network:
    """J0 and J1 as one intersection ``J``, joined by ``link`` (``link_m`` long).

    Groups: ``A`` (a_in -> link: J0's approach, the link's straight feeder), ``L`` (the stop line at
    J1 for link -> out and for J1's own approach d_in -> out_d, one group as grid06's
    ``C1B1_rs+B0B1_s``), ``B`` (b_in -> out_b, crossing both). Stages: L alone, A with L, B alone,
    as grid06's B0+B1 has its link groups alone (stage 5) and with A0B0 (stage 2).
    """
    groups = (
        SignalGroup("A", movements=(Movement("a_in", "link", ("a_in_0",)),)),
        SignalGroup("L", movements=(Movement("link", "out", ("link_0",)), Movement("d_in", "out_d", ("d_in_0",)))),
        SignalGroup("B", movements=(Movement("b_in", "out_b", ("b_in_0",)),)),
    )
    conflicts = np.array([[False, False, True], [False, False, True], [True, True, False]])
    stages = (Stage("SL", frozenset({"L"})), Stage("SAL", frozenset({"A", "L"})), Stage("SB", frozenset({"B"})))
    inter = Intersection("J", groups, conflicts, np.full((3, 3), 5.0), stages)
    g: nx.DiGraph[str] = nx.DiGraph()
    for u, v, e, length in (
        ("a0", "J0", "a_in", 200.0),
        ("J0", "J1", "link", link_m),
        ("J1", "o0", "out", 200.0),
        ("d0", "J1", "d_in", 200.0),
        ("J1", "od", "out_d", 200.0),
        ("b0", "J1", "b_in", 200.0),
        ("J1", "ob", "out_b", 200.0),
    ):
        add_link(g, u, v, id=e, length_m=length, free_speed_m_s=13.89, lanes=1, saturation_flow_pcu_h=1900.0)
    return Network((inter,), g)


def _first_choice(net: Network, queue: dict[str, float]) -> int:
    """The stage max-pressure takes with no stage running yet, for queues by group id."""
    p = pack(net.intersections)
    pol = MaxPressurePolicy()
    pol.reset(net, p)
    q = np.zeros((p.n, p.g))
    for k, grp in enumerate(net.intersections[0].groups):
        q[0, k] = queue[grp.id]
    state = np.full((p.n, p.g), int(SignalState.RED), np.int8)
    ctx = PolicyContext(0.0, 1.0, np.full(p.n, -1), state, np.zeros((p.n, p.g)))
    est = Estimate(flow_veh_h=0 * q, occupancy=0 * q, queue_veh=q, detector_ok=np.ones(0, bool))
    return int(pol.decide(None, est, ctx)[0])  # type: ignore[arg-type]  # no exit detection


def test_an_approach_into_the_inner_link_keeps_its_own_queue_as_pressure() -> None:
    """A: 4 queued; L: 7 (the link's zone reaches back over A's lane: A's 4, and d_in's 3); B: 5.

    The plain rule took L's 7 as A's downstream: A's pressure 4 - 7 = -3, so stage SAL (A and L,
    4) lost to L alone (7) and A stayed red beside a green it does not conflict with (grid06
    seed 1: 373 of 1,800 s on stage 5 where stage 2 would add A0B0). Through the link, A's
    downstream is ``out`` (an exit: 0), SAL scores 4 + 7.
    """
    queues = {"A": 4.0, "L": 7.0, "B": 5.0}
    assert _first_choice(_joined(0.2), queues) == 1
    # A link that stores vehicles (60 m) is a link: its queue is A's downstream, as Varaiya's x_m.
    assert _first_choice(_joined(60.0), queues) == 0


def test_the_inner_link_is_looked_through_and_a_long_link_is_not() -> None:
    for link_m, a_row in ((0.2, []), (60.0, [1])):
        net = _joined(link_m)
        p = pack(net.intersections)
        d = downstream_matrix(net, p, look_through_m=JOINED_PART_LINK_M)
        assert d.cols[d.rows == 0].tolist() == a_row  # A discharges into L's link, or through it
        plain = downstream_matrix(net, p)
        assert plain.cols[plain.rows == 0].tolist() == [1]


@pytest.mark.parametrize("n", [2, 3])
def test_without_inner_links_the_matrix_is_the_plain_one_entry_for_entry(tmp_path: Path, n: int) -> None:
    """Separate junctions: the same entries in the same order, so decisions stay bit for bit."""
    from sumo_nets import grid

    from intersections.loaders.sumo_net import load_sumo_net

    net = load_sumo_net(grid(tmp_path, n=n))
    p = pack(net.intersections)
    a, b = downstream_matrix(net, p), downstream_matrix(net, p, look_through_m=JOINED_PART_LINK_M)
    assert a.rows.size > 0
    for x, y in ((a.rows, b.rows), (a.cols, b.cols), (a.vals, b.vals)):
        np.testing.assert_array_equal(x, y)
