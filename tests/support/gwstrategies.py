"""Hypothesis strategies for random intersections (shared by policy property tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from intersections.model import Detector, DetectorKind, GroupKind, Intersection, Movement, SignalGroup, Stage


@st.composite
def random_intersection(draw: st.DrawFn, iid: str = "J", max_groups: int = 7) -> Intersection:
    n = draw(st.integers(2, max_groups))
    peds = [draw(st.booleans()) and k >= 2 for k in range(n)]
    groups = []
    for k in range(n):
        if peds[k]:
            groups.append(
                SignalGroup(f"g{k}", kind=GroupKind.PEDESTRIAN, min_green_s=0,
                            walk_s=draw(st.sampled_from([4.0, 5.0, 7.0])),
                            ped_clearance_s=draw(st.sampled_from([6.0, 9.5, 12.0])))
            )  # fmt: skip
        else:
            groups.append(
                SignalGroup(
                    f"g{k}",
                    movements=(Movement(f"in{k}", f"out{k}", (f"in{k}_0",)),),
                    min_green_s=draw(st.sampled_from([3.0, 5.0, 7.5])),
                    max_green_s=draw(st.sampled_from([20.0, 40.0, 60.0])),
                    yellow_s=draw(st.sampled_from([3.0, 3.5, 4.0])),
                    all_red_s=draw(st.sampled_from([0.0, 1.0, 2.5])),
                )
            )
    c = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(i + 1, n):
            c[i, j] = c[j, i] = draw(st.booleans())
    ig = np.zeros((n, n))
    for i, g in enumerate(groups):
        for j in range(n):
            base = g.clearance_s
            ig[i, j] = base + draw(st.sampled_from([0.0, 0.0, 1.0, 2.5]))
    # Stages: greedy maximal compatible sets covering every group, in random order.
    order = draw(st.permutations(range(n)))
    stages, covered = [], set()
    for start in order:
        if start in covered:
            continue
        members = [start]
        for k in order:
            if k not in members and not any(c[k, m] for m in members):
                members.append(k)
        covered |= set(members)
        stages.append(Stage(f"S{len(stages) + 1}", {f"g{m}" for m in members}))
    dets = tuple(Detector(f"d{k}", f"in{k}_0", f"g{k}", DetectorKind.STOP_LINE) for k in range(n) if not peds[k])
    return Intersection(iid, tuple(groups), c, ig, tuple(stages), dets)
