"""Hand-built intersections with known answers, shared by tests."""

from __future__ import annotations

import numpy as np

from intersections.model import Detector, GroupKind, Intersection, Movement, SignalGroup, Stage


def four_leg(id: str = "J1") -> Intersection:
    """A four-leg intersection: two through groups, two protected lefts, one crossing.

    Conflicts: NS through vs EW through; each left vs the opposing through and the
    cross street; the crossing (across the east leg) vs EW through and the NS left.
    """
    groups = (
        SignalGroup("NS", movements=(Movement("n_in", "s_out", ("n_in_0",)),), min_green_s=7, yellow_s=3, all_red_s=2),
        SignalGroup("EW", movements=(Movement("e_in", "w_out", ("e_in_0",)),), min_green_s=7, yellow_s=3, all_red_s=2),
        SignalGroup(
            "NL", movements=(Movement("n_in", "e_out", ("n_in_1",), "l"),), min_green_s=5, yellow_s=3, all_red_s=1
        ),
        SignalGroup(
            "EL", movements=(Movement("e_in", "s_out", ("e_in_1",), "l"),), min_green_s=5, yellow_s=3, all_red_s=1
        ),
        SignalGroup(
            "PE",
            kind=GroupKind.PEDESTRIAN,
            movements=(Movement("c_e", "c_e", (), "p"),),
            min_green_s=0,
            walk_s=7,
            ped_clearance_s=10,
        ),
    )
    ids = [g.id for g in groups]
    pairs = [("NS", "EW"), ("NS", "EL"), ("EW", "NL"), ("NL", "EL"), ("PE", "EW"), ("PE", "NL")]
    c = np.zeros((5, 5), bool)
    for a, b in pairs:
        c[ids.index(a), ids.index(b)] = c[ids.index(b), ids.index(a)] = True
    ig = np.zeros((5, 5))
    for i, g in enumerate(groups):
        ig[i, :] = g.ped_clearance_s + 2 if g.kind is GroupKind.PEDESTRIAN else g.yellow_s + g.all_red_s
    stages = (Stage("S1", {"NS", "PE"}), Stage("S2", {"NL"}), Stage("S3", {"EW"}), Stage("S4", {"EL"}))
    detectors = tuple(Detector(f"d_{g.id}", f"{g.id}_lane", g.id) for g in groups if g.kind is not GroupKind.PEDESTRIAN)
    return Intersection(id, groups, c, ig, stages, detectors)


def two_phase(id: str = "J2", yellow_s: float = 3.0, all_red_s: float = 2.0) -> Intersection:
    groups = (
        SignalGroup("A", min_green_s=5, yellow_s=yellow_s, all_red_s=all_red_s),
        SignalGroup("B", min_green_s=5, yellow_s=yellow_s, all_red_s=all_red_s),
    )
    c = np.array([[False, True], [True, False]])
    ig = np.full((2, 2), yellow_s + all_red_s)
    return Intersection(
        id,
        groups,
        c,
        ig,
        (Stage("SA", {"A"}), Stage("SB", {"B"})),
        (Detector("dA", "a0", "A"), Detector("dB", "b0", "B")),
    )


def two_way_main_street(id: str = "M1") -> Intersection:
    """A two-lane two-way main street crossing a one-lane two-way side street, two stages.

    Group ``M`` serves both main-street approaches (two lanes each), ``S`` both
    side-street approaches (one lane each); every lane has a stop-line zone and
    an advance loop, as greenwave generates them for SUMO.
    """
    from intersections.model import DetectorKind

    main = (Movement("w_in", "e_out", ("w_in_0", "w_in_1")), Movement("e_in", "w_out", ("e_in_0", "e_in_1")))
    side = (Movement("n_in", "s_out", ("n_in_0",)), Movement("s_in", "n_out", ("s_in_0",)))
    groups = (
        SignalGroup("M", movements=main, min_green_s=7, yellow_s=3, all_red_s=2),
        SignalGroup("S", movements=side, min_green_s=7, yellow_s=3, all_red_s=2),
    )
    c = np.array([[False, True], [True, False]])
    ig = np.full((2, 2), 5.0)
    dets = []
    for g in groups:
        for m in g.movements:
            for lane in m.lanes:
                dets.append(Detector(f"z_{lane}", lane, g.id))
                dets.append(Detector(f"a_{lane}", lane, g.id, DetectorKind.ADVANCE, position_m=60.0))
    return Intersection(id, groups, c, ig, (Stage("SM", {"M"}), Stage("SS", {"S"})), tuple(dets))


def permissive_left(id: str = "JP") -> Intersection:
    """:func:`four_leg` with its north left also filtering (SUMO's ``g``) beside the north through.

    The left is green in S1 only as a permissive movement (``Stage.yielding``) and protected in S2,
    as on real junctions whose programs run ``GGgg`` then ``GGGG``.
    """
    return four_leg(id).with_stages(
        (
            Stage("S1", {"NS", "NL"}, yielding={"NL"}),
            Stage("S2", {"NL"}),
            Stage("S3", {"EW"}),
            Stage("S4", {"EL"}),
            Stage("S5", {"NS", "PE"}),
        )
    )
