"""The supervisor's run-time watchdog (rule (e) of :mod:`controller.safety`): maximum green and maximum red.

Property tests over the same random intersections, request sequences, ticks and
health episodes as ``test_safety.py`` (its generators), with the watchdog on and
short limits so that it fires often: every group's maximum green is cut to a few
seconds above its minimum and the maximum red to 20-90 s. Whatever the requests,

* nothing the supervisor guarantees without the watchdog breaks: no MMU
  violation, no conflicting groups shown together, no green shorter than its
  minimum (or WALK);
* no green lasts longer than its maximum plus, for each group that may be
  overdue before it and once for itself, the time to serve a stage (the
  liveness bound of ``test_safety.py``), except a group green in every stage
  or in conflict with no group (the maximum times only against a conflicting call).
  The forced end is taken at the tick the maximum runs out (pinned by
  ``test_a_held_stage_is_forced_off_at_max_green_and_served_again_after``)
  unless an overdue red is being served (two limits must not chase each other
  for ever) or a longer overdue green is ended first; limits here are far
  tighter than real ones (maximum green down to the minimum) so that these
  interactions happen;
* no group that some stage serves stays red (while the intersection is
  supervised, not in flash) longer than its maximum red plus, for each group
  that may be overdue before it and once for itself, the time to clear what
  is green and serve a stage (the liveness bound of ``test_safety.py``): the
  overdue red waiting longest is served first.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.arrays import pack
from controller.safety import HOLD, Hold, Mode, SafetySupervisor
from intersections.model import Intersection, SignalGroup, Stage


def _generators():  # type: ignore[no-untyped-def]
    """test_safety.py's generators and helpers (the suite imports test modules by path: --import-mode=importlib)."""
    name = "greenwave_test_safety_generators"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_safety.py"))
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


_gen = _generators()
SAFETY, TOL, G, R, Scenario = _gen.SAFETY, _gen.TOL, _gen.G, _gen.R, _gen.Scenario
examples, liveness_bound_s, scenarios, slack_s = _gen.examples, _gen.liveness_bound_s, _gen.scenarios, _gen.slack_s

EXAMPLES = max(10, examples("test_random_operation_is_safe") // 4)


def short_limits(scn: Scenario, extra_s: list[float]) -> Scenario:
    """The scenario with each group's max green a few seconds above its required green."""
    inters = []
    for r, inter in enumerate(scn.intersections):
        groups = tuple(
            replace(g, max_green_s=g.required_green_s + extra_s[(r * 8 + k) % len(extra_s)])
            for k, g in enumerate(inter.groups)
        )
        inters.append(replace(inter, groups=groups))
    return replace(scn, intersections=tuple(inters))


def run_lengths(mask: np.ndarray, times: np.ndarray) -> list[tuple[int, float]]:
    """(index of the run's first state, duration) of each run of True in one (T+1,) series; the last run is
    measured to the last tick."""
    out: list[tuple[int, float]] = []
    start: int | None = None
    for k, on in enumerate(mask):
        if on and start is None:
            start = k
        elif not on and start is not None:
            out.append((start, times[k] - times[start]))
            start = None
    if start is not None:
        out.append((start, times[-1] - times[start]))
    return out


@settings(SAFETY, max_examples=EXAMPLES)
@given(
    scenarios(rows=(2, 6), kind="random"),
    st.lists(st.floats(0.0, 20.0), min_size=1, max_size=16),
    st.floats(20.0, 90.0),
)
def test_watchdog_bounds_green_and_red_whatever_is_requested(
    scn: Scenario, extra_s: list[float], max_red_s: float
) -> None:
    scn = short_limits(scn, extra_s)
    packed = pack(list(scn.intersections))
    sup = SafetySupervisor(
        packed, fail_safe=scn.fail_safe, startup_clearance=scn.startup_clearance, max_red_s=max_red_s
    )
    steps, n = len(scn.dts), len(scn.intersections)
    states = np.empty((steps + 1, n, packed.g), np.int8)
    states[0] = sup.state
    modes = np.empty((steps + 1, n), np.int8)
    modes[0] = Mode.NORMAL
    targets = np.full((steps + 1, n), -1)
    holds = np.zeros((steps + 1, n), int)
    watched = 0
    for k in range(steps):
        fb = None if scn.fallback is None else scn.fallback[k]
        out, rep = sup.step(scn.requests[k], float(scn.dts[k]), healthy=scn.healthy[k], fallback_requests=fb)
        states[k + 1], modes[k + 1] = out, rep.mode
        targets[k + 1], holds[k + 1] = rep.target, rep.hold
        assert not rep.violation.any(), f"MMU violation at tick {k}"
        assert rep.watchdog is not None
        assert ((rep.hold == Hold.WATCHDOG) <= rep.watchdog).all()
        watched += int(rep.watchdog.sum())
    times = np.concatenate([[0.0], np.cumsum(scn.dts)])

    def history(r: int, start: int, dur: float) -> str:
        end = int(np.searchsorted(times, times[start] + dur)) + 2
        rows = [
            f"t={times[k]:g} st={states[k, r, : len(scn.intersections[r].groups)].tolist()} "
            f"req={scn.requests[k - 1, r] if k else '-'} "
            f"fb={scn.fallback[k - 1, r] if k and scn.fallback is not None else '-'} "
            f"ok={scn.healthy[k - 1, r] if k else '-'} "
            f"mode={modes[k, r]} tgt={targets[k, r]} hold={holds[k, r]}"
            for k in range(start, min(end, steps + 1))
        ]
        inter = scn.intersections[r]
        return (
            f"\nstages={[sorted(s.groups) for s in inter.stages]} groups="
            f"{[(g.id, g.required_green_s, g.max_green_s) for g in inter.groups]}\n" + "\n".join(rows)
        )

    dt_max = float(scn.dts.max()) if steps else 0.0
    slack_dts = np.asarray(scn.dts)
    for r, inter in enumerate(scn.intersections):
        stage_sets = [s.groups for s in inter.stages]
        bound = liveness_bound_s(inter, slack_dts) + slack_s(slack_dts) + dt_max
        for j, grp in enumerate(inter.groups):
            col = states[:, r, j]
            for a, b in zip(*np.nonzero(inter.conflicts), strict=True):
                shown = np.isin(states[:, r, a], (G, 1)) & np.isin(states[:, r, b], (G, 1))
                assert not shown.any(), f"{inter.id}: {inter.groups[a].id} and {inter.groups[b].id} shown together"
            # Exempt: green in every stage, or in conflict with nothing (no call can wait for it to end).
            always = all(grp.id in s for s in stage_sets) or not inter.conflicts[j].any()
            for start, dur in run_lengths(col == G, times) if not always else []:
                assert dur <= grp.max_green_s + (len(inter.groups) + 1) * bound + TOL, (
                    f"{inter.id}: {grp.id} green {dur:g} s from t={times[start]:g}, max green {grp.max_green_s:g} s"
                    + history(r, start, dur)
                )
            if not any(grp.id in s for s in stage_sets):
                continue
            # Red while supervised: a run of red in NORMAL or LOCAL_PLAN mode (flash resets the count). A crossing
            # of the stage being served that has walked rests in DON'T WALK until the stage changes (NEMA
            # pedestrian timing, controller/safety.py): not a red the watchdog can end without a stage change.
            supervised = np.isin(modes[:, r], (Mode.NORMAL, Mode.LOCAL_PLAN))
            if grp.is_pedestrian:
                in_stage = np.array([t >= 0 and grp.id in stage_sets[t] for t in targets[:, r]])
                supervised &= ~in_stage
            for start, dur in run_lengths((col == R) & supervised, times):
                assert dur <= max_red_s + (len(inter.groups) + 1) * bound + TOL, (
                    f"{inter.id}: {grp.id} red {dur:g} s from t={times[start]:g}, max red {max_red_s:g} s"
                    + history(r, start, dur)
                )


def _two_roads(max_green_s: float = 20.0) -> Intersection:
    a = SignalGroup("A", min_green_s=5, max_green_s=max_green_s, yellow_s=3, all_red_s=2)
    b = SignalGroup("B", min_green_s=5, max_green_s=max_green_s, yellow_s=3, all_red_s=2)
    conflicts = np.array([[False, True], [True, False]])
    ig = np.array([[5.0, 5.0], [5.0, 5.0]])
    return Intersection("X", (a, b), conflicts, ig, (Stage("SA", {"A"}), Stage("SB", {"B"})))


def test_a_held_stage_is_forced_off_at_max_green_and_served_again_after() -> None:
    """An operator's (or a plan's) hold of stage A for 120 s: A ends at 20 s, B gets its minimum green, A returns."""
    sup = SafetySupervisor(pack([_two_roads()]), startup_clearance=False)
    shown, holds = [], []
    for k in range(120):
        out, rep = sup.step(np.array([0]), 0.0 if k == 0 else 1.0)
        shown.append(int(out[0, 0]))
        holds.append(int(rep.hold[0]))
    first_end = shown.index(1)  # A's yellow
    assert first_end == 20  # green from t=0 for 20 s: yellow at the tick the maximum ran out
    assert Hold.WATCHDOG in holds
    assert shown[first_end + 10 :].count(G) > 0  # A is served again once B had its turn


def test_a_carried_over_green_does_not_cut_off_the_longest_waiting_red() -> None:
    """Found by the policy property test (max-pressure): stages {A, C}, {A, B} and {D}; A green through two.

    A policy serves B (waiting longest) by asking for {A, B} just before A's maximum green
    runs out: the stage stands until B is green, then A is ended. Before, the watchdog ended
    A (and with it the stage) before B could start, and B waited on.
    """
    a = SignalGroup("A", min_green_s=5, max_green_s=20, yellow_s=3, all_red_s=2)
    b = SignalGroup("B", min_green_s=5, max_green_s=60, yellow_s=3, all_red_s=2)
    c = SignalGroup("C", min_green_s=5, max_green_s=60, yellow_s=3, all_red_s=2)
    d = SignalGroup("D", min_green_s=5, max_green_s=60, yellow_s=3, all_red_s=2)
    conflicts = np.zeros((4, 4), bool)
    for x, y in ((0, 3), (1, 2), (1, 3), (2, 3)):  # A-D, B-C, B-D, C-D
        conflicts[x, y] = conflicts[y, x] = True
    stages = (Stage("AC", {"A", "C"}), Stage("AB", {"A", "B"}), Stage("D", {"D"}))
    inter = Intersection("X", (a, b, c, d), conflicts, np.full((4, 4), 5.0), stages)
    sup = SafetySupervisor(pack([inter]), startup_clearance=False)
    b_green_at = None
    for k in range(60):
        req = 0 if k < 17 else 1  # {A, C}, then {A, B} for B three seconds before A's 20 s run out
        out, _ = sup.step(np.array([req]), 0.0 if k == 0 else 1.0)
        if out[0, 1] == G and b_green_at is None:
            b_green_at = k
    assert b_green_at is not None and b_green_at <= 17 + 3 + 2 + 1  # C's yellow and all-red, then B


def test_a_starved_group_is_served_after_max_red() -> None:
    """A policy that asks for A and nothing else: B is forced on after max red, then A again."""
    sup = SafetySupervisor(pack([_two_roads(max_green_s=200)]), startup_clearance=False, max_red_s=60)
    b_green_at = None
    for k in range(100):
        out, _ = sup.step(np.array([0 if k < 5 else HOLD]), 0.0 if k == 0 else 1.0)
        if out[0, 1] == G and b_green_at is None:
            b_green_at = k
    assert b_green_at is not None and 60 <= b_green_at <= 60 + 5 + 5 + 2


def test_a_rested_crossing_does_not_hide_a_starved_group() -> None:
    """Found by the property test above: stages {P, V} and {P}, and a policy that asks for {P} for ever.

    P walks, then rests in DON'T WALK until the stage changes. Counted as an
    overdue red that the current stage serves, it would stop the watchdog from
    forcing {P, V} again once it was red as long as V: V red for ever.
    """
    from intersections.model import GroupKind

    p = SignalGroup("P", kind=GroupKind.PEDESTRIAN, min_green_s=0, max_green_s=4, yellow_s=0, walk_s=4)
    v = SignalGroup("V", min_green_s=1, max_green_s=1, yellow_s=3)
    inter = Intersection(
        "J", (p, v), np.zeros((2, 2), bool), np.zeros((2, 2)), (Stage("PV", {"P", "V"}), Stage("P", {"P"}))
    )
    sup = SafetySupervisor(pack([inter]), startup_clearance=False, max_red_s=20)
    v_greens, red_run, longest = 0, 0, 0
    for _ in range(200):
        out, _rep = sup.step(np.array([1]), 1.0)
        red_run = red_run + 1 if out[0, 1] == R else 0
        longest = max(longest, red_run)
        v_greens += int(out[0, 1] == G)
    assert v_greens >= 200 // 30  # V is forced on after every 20 s of red, not once
    assert longest <= 20 + 1


def test_no_watchdog_where_nothing_runs_out() -> None:
    """Requests within the limits are shown as asked: the watchdog changes nothing (existing behaviour kept)."""
    inter = _two_roads(max_green_s=60)
    on = SafetySupervisor(pack([inter]), startup_clearance=False)
    off = SafetySupervisor(pack([inter]), startup_clearance=False, watchdog=False)
    for k in range(300):
        req = np.array([(k // 40) % 2])
        a, ra = on.step(req, 0.0 if k == 0 else 1.0)
        b, _ = off.step(req, 0.0 if k == 0 else 1.0)
        np.testing.assert_array_equal(a, b)
        assert not ra.watchdog.any()  # type: ignore[union-attr]


@pytest.mark.parametrize("watchdog", [True, False])
def test_watchdog_can_be_turned_off_only_explicitly(watchdog: bool) -> None:
    sup = SafetySupervisor(pack([_two_roads()]), startup_clearance=False, watchdog=watchdog)
    for k in range(60):
        out, _ = sup.step(np.array([0]), 0.0 if k == 0 else 1.0)
    assert bool(out[0, 0] == G) is (not watchdog)
