"""Webster's fixed-time signal settings, vectorised over many intersections.

Webster, F. V. (1958). *Traffic Signal Settings*. Road Research Technical
Paper No. 39, HMSO, London. For one intersection with stages ``k = 1..K``:

``y_k``
    Critical flow ratio of stage k: the largest ``q / s`` (pcu/h over pcu/h)
    of the signal groups it serves (see :func:`stage_flow_ratios` for groups
    green in several stages).
``Y = Σ_k y_k``
    Intersection flow ratio.
``L = Σ_k (I_k + l1 - e)``  [s]
    Lost time per cycle. ``I_k`` is the intergreen (yellow + all-red) after
    stage k, i.e. ``Intersection.transition_s(stage_k, stage_k+1)``; ``l1`` the
    start-up lost time and ``e`` the extension of effective green into the
    yellow (HCM convention, both 2.0 s by default, so ``L = Σ I_k``). Per stage
    the lost time is ``t_L = l1 + l2`` with clearance lost time ``l2 = I_k - e``.
``C0 = (1.5 L + 5) / (1 - Y)``  [s]
    Optimum cycle (minimum delay), bounded to ``[cycle_min_s, cycle_max_s]``
    (defaults 40-150 s: below 40 s lost time dominates and pedestrians cannot
    cross; above 150 s delay grows with little capacity gain; Webster's delay
    curve is flat within ±25 % of C0).
``g_k = (y_k / Y)(C - L)``  [s]
    Effective green of stage k; displayed green ``G_k = g_k + l1 - e`` so that
    ``C = Σ_k (G_k + I_k)``, exactly what :func:`intersections.plan.check_plan`
    checks.

Minimum greens. A stage whose displayed green would fall below its minimum
``G_min`` (the largest minimum green or WALK of its groups) is fixed at
``G_min``; its effective green ``G_min - l1 + e`` is then treated as lost time
for the others, as Webster & Cobbe (1966) treat a fixed pedestrian stage, and
the cycle and the remaining greens are recomputed with ``L' = L + Σ g_fixed``
and ``Y' = Σ_free y_k`` until every stage meets its minimum (at most K rounds).
The cycle is ``C = L + Σ g_k``, consistent by construction; it exceeds
``cycle_max_s`` only when minimum greens plus intergreens alone do
(``cycle_over_max``).

Oversaturation. Webster's formula is meaningless for ``Y >= 1`` and gives
impractically long cycles well before; for ``Y >= y_limit`` (default 0.95)
the cycle is set to ``cycle_max_s`` (maximum capacity for this phasing), the
greens are still split in proportion to ``y`` and ``oversaturated`` is set so
the caller can warn: the stage design (or the demand) needs attention.

:func:`webster_timings` works on padded ``(n_intersections, n_stages)`` arrays
with a mask; :func:`webster_reference` is the same algorithm for one
intersection in plain Python, the oracle of the tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from controller.timing.groups import LaneGroup
from controller.timing.result import IntersectionTiming, evaluate_plan
from intersections.errors import InputError
from intersections.model import Intersection, SignalGroup
from intersections.plan import PlanStage, TimingPlan, check_plan

__all__ = [
    "CYCLE_MIN_S",
    "CYCLE_MAX_S",
    "STARTUP_LOST_S",
    "GREEN_EXTENSION_S",
    "Y_LIMIT",
    "WebsterResult",
    "webster_cycle_s",
    "webster_effective_greens_s",
    "webster_timings",
    "webster_reference",
    "stage_flow_ratios",
    "stage_intergreens_s",
    "clearance_min_greens_s",
    "stage_min_greens_s",
    "plan_webster",
]

CYCLE_MIN_S = 40.0
CYCLE_MAX_S = 150.0
STARTUP_LOST_S = 2.0  # l1, HCM 2000 default start-up lost time
GREEN_EXTENSION_S = 2.0  # e, HCM 2000 default extension of effective green into yellow
Y_LIMIT = 0.95
_TOL_S = 1e-9


def webster_cycle_s(lost_time_s: ArrayLike, flow_ratio_sum: ArrayLike) -> np.ndarray:
    """Webster's optimum cycle ``C0 = (1.5 L + 5) / (1 - Y)`` in s; ``inf`` where ``Y >= 1``."""
    lt, y = np.broadcast_arrays(np.asarray(lost_time_s, dtype=float), np.asarray(flow_ratio_sum, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        c0 = (1.5 * lt + 5.0) / (1.0 - y)
    return np.where(y < 1.0, c0, np.inf)


def webster_effective_greens_s(flow_ratios: ArrayLike, cycle_s: ArrayLike, lost_time_s: ArrayLike) -> np.ndarray:
    """Effective greens ``g_k = (y_k / Y)(C - L)`` in s (last axis = stages)."""
    y = np.asarray(flow_ratios, dtype=float)
    total = y.sum(axis=-1, keepdims=True)
    avail = np.asarray(cycle_s, dtype=float)[..., None] - np.asarray(lost_time_s, dtype=float)[..., None]
    share = np.divide(y, total, out=np.full_like(y, 1.0 / y.shape[-1]), where=total > 0)
    result: np.ndarray = share * avail
    return result


@dataclass(frozen=True, eq=False)
class WebsterResult:
    """Webster timings for ``n`` intersections with up to ``K`` stages (padded).

    Per intersection (shape ``(n,)``): ``cycle_s`` (the plan's cycle),
    ``optimal_cycle_s`` (unbounded C0 from ``L`` and ``Y``; ``inf`` if Y >= 1),
    ``flow_ratio_sum`` (Y), ``lost_time_s`` (L), ``oversaturated`` (Y >=
    y_limit), ``cycle_capped`` (C0 above ``cycle_max_s``), ``cycle_over_max``
    (minimum greens and intergreens alone exceed ``cycle_max_s``).
    Per stage (``(n, K)``, zero in padding): ``effective_green_s``,
    ``green_s`` (displayed), ``at_min_green`` and ``mask``.
    """

    cycle_s: np.ndarray
    optimal_cycle_s: np.ndarray
    flow_ratio_sum: np.ndarray
    lost_time_s: np.ndarray
    effective_green_s: np.ndarray
    green_s: np.ndarray
    at_min_green: np.ndarray
    oversaturated: np.ndarray
    cycle_capped: np.ndarray
    cycle_over_max: np.ndarray
    mask: np.ndarray


def _rowsum(a: np.ndarray) -> np.ndarray:
    # Sum over stages in a fixed left-to-right order (the reference does the same),
    # vectorised over intersections; K is small.
    acc = np.zeros(a.shape[0])
    for k in range(a.shape[1]):
        acc = acc + a[:, k]
    return acc


def _check_params(
    cycle_min_s: float,
    cycle_max_s: float,
    startup_lost_s: float,
    green_extension_s: float,
    y_limit: float,
    cycle_step_s: float | None,
) -> None:
    if not (0 < cycle_min_s <= cycle_max_s) or not math.isfinite(cycle_max_s):
        raise ValueError(f"need 0 < cycle_min_s <= cycle_max_s < inf, got {cycle_min_s}, {cycle_max_s}")
    if startup_lost_s < 0 or green_extension_s < 0:
        raise ValueError("start-up lost time and green extension must be >= 0 s")
    if not (0 < y_limit <= 1):
        raise ValueError(f"y_limit must be in (0, 1], got {y_limit}")
    if cycle_step_s is not None and cycle_step_s <= 0:
        raise ValueError("cycle_step_s must be > 0")


def _bound_cycle(c0: np.ndarray, cycle_min_s: float, cycle_max_s: float, cycle_step_s: float | None) -> np.ndarray:
    c: np.ndarray = np.minimum(np.maximum(c0, cycle_min_s), cycle_max_s)
    if cycle_step_s is not None:
        c = np.minimum(np.ceil(c / cycle_step_s - 1e-9) * cycle_step_s, cycle_max_s)
    return c


def webster_timings(
    flow_ratio: ArrayLike,
    intergreen_s: ArrayLike,
    min_green_s: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    cycle_min_s: float = CYCLE_MIN_S,
    cycle_max_s: float = CYCLE_MAX_S,
    startup_lost_s: float = STARTUP_LOST_S,
    green_extension_s: float = GREEN_EXTENSION_S,
    y_limit: float = Y_LIMIT,
    cycle_step_s: float | None = None,
) -> WebsterResult:
    """Webster cycle and greens for many intersections at once (see module docstring).

    ``flow_ratio`` (critical ``y`` per stage), ``intergreen_s`` (transition
    after each stage, s) and ``min_green_s`` (displayed minimum green per
    stage, s) are ``(n, K)`` arrays; ``mask`` marks real stages (padding is
    ignored; default all true). ``cycle_step_s`` rounds the cycle up to a
    multiple (e.g. 1 or 5 s) before splitting the greens. Work is
    O(n K²) numpy operations: at most K rounds of minimum-green fixing.
    One function on purpose: it is one vectorised pass of Webster's method
    (checks, lost time, cycle, capping, green split with minimum-green fixing)
    whose steps share the same masked (n, K) arrays and read as the method does.
    """
    _check_params(cycle_min_s, cycle_max_s, startup_lost_s, green_extension_s, y_limit, cycle_step_s)
    y = np.atleast_2d(np.asarray(flow_ratio, dtype=float))
    ig = np.atleast_2d(np.asarray(intergreen_s, dtype=float))
    gmin = np.atleast_2d(np.asarray(min_green_s, dtype=float))
    m = np.ones(y.shape, dtype=bool) if mask is None else np.atleast_2d(np.asarray(mask, dtype=bool))
    if not (y.shape == ig.shape == gmin.shape == m.shape) or y.ndim != 2:
        raise ValueError(
            f"flow_ratio, intergreen_s, min_green_s and mask must share one 2-D shape, got "
            f"{y.shape}, {ig.shape}, {gmin.shape}, {m.shape}"
        )
    for name, a in (("flow_ratio", y), ("intergreen_s", ig), ("min_green_s", gmin)):
        bad = m & ~(np.isfinite(a) & (a >= 0))
        if bad.any():
            i, k = np.argwhere(bad)[0]
            raise ValueError(f"{name}[{i}, {k}] must be a finite number >= 0, got {a[i, k]!r}")
    if not m.any(axis=1).all():
        raise ValueError(f"intersection rows {np.flatnonzero(~m.any(axis=1)).tolist()} have no stage")
    y = np.where(m, y, 0.0)
    ig = np.where(m, ig, 0.0)
    gmin = np.where(m, gmin, 0.0)
    n, n_stages = y.shape
    d = green_extension_s - startup_lost_s  # effective minus displayed green
    n_real = _rowsum(m.astype(float))
    lost = _rowsum(ig) + n_real * (startup_lost_s - green_extension_s)
    total_y = _rowsum(y)
    over = total_y >= y_limit
    optimal = webster_cycle_s(lost, total_y)
    gmin_eff = gmin + d

    fixed = np.zeros((n, n_stages), dtype=bool)
    g = np.zeros((n, n_stages))
    for _ in range(n_stages + 1):
        free = m & ~fixed
        lost_p = lost + _rowsum(np.where(fixed, gmin_eff, 0.0))
        y_p = _rowsum(np.where(free, y, 0.0))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            c0 = (1.5 * lost_p + 5.0) / (1.0 - y_p)
        c0 = np.where(over | (y_p >= y_limit), np.inf, c0)
        cyc = _bound_cycle(c0, cycle_min_s, cycle_max_s, cycle_step_s)
        avail = cyc - lost_p
        n_free = _rowsum(free.astype(float))
        y_p_safe = np.where(y_p > 0, y_p, 1.0)[:, None]
        n_free_safe = np.maximum(n_free, 1.0)[:, None]
        # free ratios are <= their sum, so the division cannot overflow
        share = np.where((y_p > 0)[:, None], np.where(free, y, 0.0) / y_p_safe, 1.0 / n_free_safe)
        g = np.where(free, share * avail[:, None], np.where(fixed, gmin_eff, 0.0))
        newly = free & (g - d < gmin - _TOL_S)
        if not newly.any():
            break
        fixed |= newly
    cycle = lost + _rowsum(g)
    green = np.where(m, g - d, 0.0)
    return WebsterResult(
        cycle_s=cycle,
        optimal_cycle_s=optimal,
        flow_ratio_sum=total_y,
        lost_time_s=lost,
        effective_green_s=np.where(m, g, 0.0),
        green_s=green,
        at_min_green=fixed,
        oversaturated=over,
        cycle_capped=optimal > cycle_max_s,
        cycle_over_max=cycle > cycle_max_s + _TOL_S,
        mask=m,
    )


def webster_reference(
    flow_ratio: Sequence[float],
    intergreen_s: Sequence[float],
    min_green_s: Sequence[float],
    *,
    cycle_min_s: float = CYCLE_MIN_S,
    cycle_max_s: float = CYCLE_MAX_S,
    startup_lost_s: float = STARTUP_LOST_S,
    green_extension_s: float = GREEN_EXTENSION_S,
    y_limit: float = Y_LIMIT,
    cycle_step_s: float | None = None,
) -> dict[str, object]:
    """Slow, plain-Python Webster for one intersection: the oracle for :func:`webster_timings`.

    Returns a dict with ``cycle_s``, ``optimal_cycle_s``, ``flow_ratio_sum``,
    ``lost_time_s``, ``effective_green_s``, ``green_s`` and ``at_min_green``
    (lists per stage), ``oversaturated``, ``cycle_capped``, ``cycle_over_max``.
    """
    _check_params(cycle_min_s, cycle_max_s, startup_lost_s, green_extension_s, y_limit, cycle_step_s)
    y, ig, gmin = list(map(float, flow_ratio)), list(map(float, intergreen_s)), list(map(float, min_green_s))
    k_n = len(y)
    if not (k_n == len(ig) == len(gmin)) or k_n == 0:
        raise ValueError("need the same, non-zero number of stages in every argument")
    d = green_extension_s - startup_lost_s

    def total(values: Sequence[float]) -> float:
        acc = 0.0
        for v in values:
            acc = acc + v
        return acc

    lost = total(ig) + k_n * (startup_lost_s - green_extension_s)
    big_y = total(y)
    over = big_y >= y_limit
    optimal = (1.5 * lost + 5.0) / (1.0 - big_y) if big_y < 1.0 else math.inf

    def bound(c0: float) -> float:
        c = min(max(c0, cycle_min_s), cycle_max_s)
        if cycle_step_s is not None:
            c = min(math.ceil(c / cycle_step_s - 1e-9) * cycle_step_s, cycle_max_s)
        return c

    fixed = [False] * k_n
    g = [0.0] * k_n
    for _ in range(k_n + 1):
        lost_p = lost + total([gmin[k] + d if fixed[k] else 0.0 for k in range(k_n)])
        y_p = total([0.0 if fixed[k] else y[k] for k in range(k_n)])
        n_free = sum(1 for f in fixed if not f)
        if over or y_p >= y_limit:
            c0 = math.inf
        else:
            c0 = (1.5 * lost_p + 5.0) / (1.0 - y_p)
        avail = bound(c0) - lost_p
        for k in range(k_n):
            if fixed[k]:
                g[k] = gmin[k] + d
            elif y_p > 0:
                g[k] = y[k] / y_p * avail
            else:
                g[k] = 1.0 / n_free * avail
        newly = [k for k in range(k_n) if not fixed[k] and g[k] - d < gmin[k] - _TOL_S]
        if not newly:
            break
        for k in newly:
            fixed[k] = True
    cycle = lost + total(g)
    return {
        "cycle_s": cycle,
        "optimal_cycle_s": optimal,
        "flow_ratio_sum": big_y,
        "lost_time_s": lost,
        "effective_green_s": list(g),
        "green_s": [gk - d for gk in g],
        "at_min_green": fixed,
        "oversaturated": over,
        "cycle_capped": optimal > cycle_max_s,
        "cycle_over_max": cycle > cycle_max_s + _TOL_S,
    }


# ---- from an intersection model to Webster's stage inputs -------------------------------------


def stage_flow_ratios(
    inter: Intersection, flow_ratio: ArrayLike, served: Sequence[Iterable[int]] | None = None
) -> np.ndarray:
    """Critical flow ratio ``y_k`` of each stage (in ``inter.stages`` order).

    ``flow_ratio[i]`` is ``q / s`` of item ``i`` (a lane group, or by default
    a signal group in ``inter.groups`` order) and ``served[i]`` the indices of
    the stages that serve it (by default the stages in which the group is
    green). Items served by one stage set ``y_k = max`` of their ratios (the
    critical lane group). An item served by several stages (an overlap, e.g. a
    left turn permitted in the through stage and protected after it) is
    served by all of them: only the part of its ratio those stages do not
    already provide is added, to the stage among them with the fewest signal
    groups (its most exclusive stage, e.g. the protected-left stage; ties: the
    earlier stage). Items are taken in decreasing ratio. For a plain stage
    design this is the textbook "largest ratio per phase".
    """
    ratios = np.asarray(flow_ratio, dtype=float)
    mask = inter.stage_mask()  # (K, G)
    n_stages = mask.shape[0]
    if served is None:
        served = [np.flatnonzero(mask[:, gi]) for gi in range(mask.shape[1])]
    sets = [sorted({int(k) for k in s}) for s in served]
    if len(sets) != ratios.shape[0]:
        raise ValueError("need one set of serving stages per flow ratio")
    y = np.zeros(n_stages)
    for i, st in enumerate(sets):
        if len(st) == 1:
            y[st[0]] = max(y[st[0]], float(ratios[i]))
    size = mask.sum(axis=1)
    multi = sorted((i for i, st in enumerate(sets) if len(st) > 1), key=lambda i: (-float(ratios[i]), i))
    for i in multi:
        deficit = float(ratios[i]) - float(sum(y[k] for k in sets[i]))
        if deficit > 0:
            k = min(sets[i], key=lambda s: (int(size[s]), s))
            y[k] += deficit
    return y


def stage_intergreens_s(inter: Intersection) -> np.ndarray:
    """Transition after each stage to the next (cyclic), s: ``Intersection.transition_s``.

    A single-stage intersection has no transition (0 s).
    """
    stages = inter.stages
    if len(stages) < 2:
        return np.zeros(len(stages))
    return np.array([inter.transition_s(stages[k].id, stages[(k + 1) % len(stages)].id) for k in range(len(stages))])


def stage_min_greens_s(inter: Intersection, floor_s: float = 0.0) -> np.ndarray:
    """Least displayed green per stage, s, so that every group's green run meets its minimum (or WALK).

    A group's minimum green holds for its whole green, which the checker counts
    over the consecutive stages it is green in and the transitions between
    them (a NEMA phase's minimum green, not each stage's): a group green in one
    stage sets that stage's floor, one green over ``m`` stages sets each of them
    ``1/m`` of its minimum, so the run meets it whatever the transitions.
    Demanding the whole minimum of every stage it crosses (the older rule) made
    a real program's long runs impossible: on the real tavf_hamburg junction a
    23-s minimum over three stages raised all three to 23 s, and a left turn
    green through four stages could then not stay under its 60-s maximum green.
    """
    g = np.full(len(inter.stages), float(floor_s))
    for grp, run in stage_runs(inter):  # a group green in every stage: its one run is the whole cycle
        g[run] = np.maximum(g[run], grp.required_green_s / len(run))
    return g


def stage_runs(inter: Intersection) -> list[tuple[SignalGroup, list[int]]]:
    """Each group's green runs: the indices of consecutive stages (cyclic) it is green in.

    A group green in every stage has one run of all stages; the checker
    (:func:`intersections.plan.check_plan`) counts greens over the same runs.
    """
    stages = [frozenset(st.groups) for st in inter.stages]
    n = len(stages)
    out: list[tuple[SignalGroup, list[int]]] = []
    for grp in inter.groups:
        on = [grp.id in st for st in stages]
        if all(on) and n:
            out.append((grp, list(range(n))))
            continue
        if not any(on):
            continue
        first_off = on.index(False)
        run: list[int] = []
        for step in range(1, n + 1):
            k = (first_off + step) % n
            if on[k]:
                run.append(k)
            if run and (not on[k] or step == n):
                out.append((grp, run))
                run = []
    return out


def stage_max_greens_s(inter: Intersection) -> np.ndarray:
    """Longest green per stage, s: the smallest ``max_green_s`` of its groups.

    Groups green in every stage are left out (nothing waits for them to end,
    and :func:`intersections.plan.check_plan` exempts them), and so are
    crossings (they show WALK for their walk time whatever the stage lasts); a
    stage of only such groups is unbounded (``inf``).
    """
    every = frozenset.intersection(*(frozenset(s.groups) for s in inter.stages)) if inter.stages else frozenset()
    pedestrian = {grp.id: grp.is_pedestrian for grp in inter.groups}
    return np.array(
        [
            min([np.inf, *(inter.group(g).max_green_s for g in s.groups if g not in every and not pedestrian[g])])
            for s in inter.stages
        ],
        dtype=float,
    )


def cap_green_runs_s(
    inter: Intersection, green_s: np.ndarray, transition_s: np.ndarray, floor_s: np.ndarray
) -> np.ndarray:
    """Shorten stage greens so that no group's contiguous green (across consecutive stages and the
    transitions between them, as the checker counts it) exceeds its ``max_green_s``.

    The excess is taken from the run's stages with the most green above their floor, never below
    the floor; groups green in every stage are exempt (as in the checker).
    """
    g: np.ndarray = np.maximum(np.asarray(green_s, dtype=float), floor_s).copy()
    n = len(inter.stages)
    # A group green in every stage never ends; a crossing's WALK is not its run.
    runs = [(grp, run) for grp, run in stage_runs(inter) if len(run) < n and not grp.is_pedestrian]
    for _ in range(4 * n):
        changed = False
        for grp, run in runs:
            excess = sum(g[j] for j in run) + sum(transition_s[j] for j in run[:-1]) - grp.max_green_s
            while excess > 1e-6:
                j = max(run, key=lambda q: g[q] - floor_s[q])
                cut = min(excess, g[j] - floor_s[j])
                if cut <= 1e-6:
                    break
                g[j] = np.floor((g[j] - cut) * 1000.0 + 1e-6) / 1000.0
                excess = sum(g[q] for q in run) + sum(transition_s[q] for q in run[:-1]) - grp.max_green_s
                changed = True
        if not changed:
            break
    return g


def clearance_min_greens_s(inter: Intersection, min_green_s: np.ndarray, transition_s: np.ndarray) -> np.ndarray:
    """Raise stage minimum greens so that clearances spanning several stages are served.

    A group ``i`` that ends after stage ``k`` and a conflicting group ``j`` that starts at a
    later stage ``l`` (not the next one) are separated by the transitions and the greens of the
    stages in between; where that is shorter than the intergreen ``IG[i, j]`` (a long
    pedestrian clearance before a movement two stages on, as in real overlap programs), the
    deficit is added to the green of the stage just before ``l``. Adjacent transitions already
    cover their own intergreens (``Intersection.transition_s``). A few passes settle the
    interactions; the plan checker remains the judge.
    """
    stages = [frozenset(st.groups) for st in inter.stages]
    n = len(stages)
    g = np.asarray(min_green_s, dtype=float).copy()
    if n < 3:
        return g
    idx = {grp.id: k for k, grp in enumerate(inter.groups)}
    for _pass in range(3):
        changed = False
        for k in range(n):
            ending = stages[k] - stages[(k + 1) % n]
            for gi in ending:
                for m in range(2, n):
                    l_ = (k + m) % n
                    prev = (l_ - 1) % n
                    starting = stages[l_] - stages[prev]
                    gap = float(transition_s[k]) + sum(
                        float(g[(k + q) % n] + transition_s[(k + q) % n]) for q in range(1, m)
                    )
                    for gj in starting:
                        if gj == gi or not inter.conflicts[idx[gi], idx[gj]]:
                            continue
                        need = float(inter.intergreen_s[idx[gi], idx[gj]])
                        if gap + 1e-9 < need:
                            g[prev] += need - gap
                            gap = need
                            changed = True
                    if gi in stages[l_]:
                        break  # i is green again: later starts are measured from its next end
        if not changed:
            break
    return g


def _ceil_ms(a: np.ndarray) -> np.ndarray:
    return np.ceil(np.asarray(a, dtype=float) * 1000.0 - 1e-6) / 1000.0


# ---- the "webster" timing method: intersections in, checked plans out ------------------------


def plan_webster(
    intersections: Sequence[Intersection],
    lane_groups: Sequence[Sequence[LaneGroup]],
    *,
    cycle_min_s: float = CYCLE_MIN_S,
    cycle_max_s: float = CYCLE_MAX_S,
    startup_lost_s: float = STARTUP_LOST_S,
    green_extension_s: float = GREEN_EXTENSION_S,
    y_limit: float = Y_LIMIT,
    cycle_step_s: float | None = None,
    min_green_s: float = 0.0,
    offset_s: float = 0.0,
) -> list[IntersectionTiming]:
    """Webster plans for many intersections in one vectorised call.

    ``lane_groups[i]`` are the lane groups of ``intersections[i]`` with
    flow and saturation flow (:func:`controller.timing.groups.lane_groups`).
    Stages run in ``Intersection.stages`` order, each followed by the required
    transition to the next. ``min_green_s`` is an extra floor under every
    stage's minimum green; ``offset_s`` is written into every plan (offsets
    are coordination's business). Plans are on a 1 ms grid (intergreens and
    minimum greens rounded up, other greens rounded cumulatively) so that they
    survive being saved. Every plan is checked with
    :func:`intersections.plan.check_plan`; warnings (oversaturation, capped
    cycle, lane groups over capacity) are attached to each result.
    """
    inters = list(intersections)
    if len(inters) != len(lane_groups):
        raise ValueError("need one list of lane groups per intersection")
    if not inters:
        return []
    y, ig, gmin, mask = _stage_arrays(inters, lane_groups, min_green_s)
    res = webster_timings(
        y,
        ig,
        gmin,
        mask,
        cycle_min_s=cycle_min_s,
        cycle_max_s=cycle_max_s,
        startup_lost_s=startup_lost_s,
        green_extension_s=green_extension_s,
        y_limit=y_limit,
        cycle_step_s=cycle_step_s,
    )
    out: list[IntersectionTiming] = []
    # Plans go to files with millisecond precision: put every interval on that grid
    # (intergreens and minimum greens rounded up) so that a saved and re-loaded plan
    # still meets every minimum.
    # Greens are rounded cumulatively so their sum (and the cycle) moves by < 0.5 ms.
    cum = np.round(np.cumsum(res.green_s, axis=1) * 1000.0)
    rounded = np.diff(cum, axis=1, prepend=0.0) / 1000.0
    greens_ms = np.maximum(rounded, _ceil_ms(gmin))
    ig_ms = _ceil_ms(ig)
    for i, inter in enumerate(inters):
        k = len(inter.stages)
        # No green above its groups' maximum (the checker refuses it, the supervisor would cut it):
        # the capped time is given up, not handed to other stages, and the cycle shortens.
        greens_ms[i, :k] = cap_green_runs_s(
            inter, np.minimum(greens_ms[i, :k], stage_max_greens_s(inter)), ig_ms[i, :k], _ceil_ms(gmin[i, :k])
        )
        plan = _checked_plan(inter, greens_ms[i, :k], ig_ms[i, :k], offset_s)
        cycle = plan.cycle_s
        warnings = _cycle_warnings(res, i, inter, y[i, :k], cycle, y_limit=y_limit, cycle_max_s=cycle_max_s)
        timing = evaluate_plan(
            plan,
            inter,
            lane_groups[i],
            method="webster",
            stage_flow_ratio=y[i, :k],
            lost_time_s=float(res.lost_time_s[i]),
            optimal_cycle_s=float(res.optimal_cycle_s[i]),
            startup_lost_s=startup_lost_s,
            green_extension_s=green_extension_s,
        )
        over = [lg.id for lg, x in zip(timing.lane_groups, timing.v_c, strict=True) if lg.flow_pcu_h > 0 and x > 1.0]
        if over:
            warnings.append(f"lane groups {over} over capacity (v/c up to {timing.max_v_c:.2f})")
        out.append(replace(timing, warnings=tuple(warnings)))
    return out


def _checked_plan(inter: Intersection, greens_s: np.ndarray, intergreens_s: np.ndarray, offset_s: float) -> TimingPlan:
    """The Webster plan of ``inter`` from its stages' greens and intergreens, through the plan checker."""
    cycle = float(greens_s.sum() + intergreens_s.sum())
    plan = TimingPlan(
        intersection_id=inter.id,
        cycle_s=cycle,
        offset_s=float(offset_s) % cycle,
        stages=tuple(
            PlanStage(stage=st.id, green_s=float(greens_s[j]), intergreen_s=float(intergreens_s[j]))
            for j, st in enumerate(inter.stages)
        ),
        name="webster",
    )
    return check_plan(plan, inter)


def _stage_arrays(
    inters: Sequence[Intersection], lane_groups: Sequence[Sequence[LaneGroup]], min_green_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per intersection and stage (padded to the most stages): critical flow ratio, intergreen to the
    next stage, minimum green, and which cells are real stages."""
    stage_y, stage_ig, stage_min = [], [], []
    for inter, lgs in zip(inters, lane_groups, strict=True):
        where = f"intersection {inter.id}"
        if not inter.stages:
            raise InputError("has no stages: cannot build a fixed-time plan", where=where)
        starved = [lg.id for lg in lgs if lg.flow_pcu_h > 0 and not lg.saturation_pcu_h > 0]
        if starved:
            raise InputError(f"lane groups {starved} have demand but no saturation flow", where=where)
        ratio = np.array([lg.flow_ratio for lg in lgs], dtype=float)
        stage_y.append(stage_flow_ratios(inter, ratio, [lg.stages for lg in lgs]))
        stage_ig.append(stage_intergreens_s(inter))
        stage_min.append(clearance_min_greens_s(inter, stage_min_greens_s(inter, min_green_s), stage_ig[-1]))
    n_max = max(len(i.stages) for i in inters)
    n = len(inters)
    y = np.zeros((n, n_max))
    ig = np.zeros((n, n_max))
    gmin = np.zeros((n, n_max))
    mask = np.zeros((n, n_max), dtype=bool)
    for i, (a, b, c) in enumerate(zip(stage_y, stage_ig, stage_min, strict=True)):
        k = len(a)
        y[i, :k], ig[i, :k], gmin[i, :k], mask[i, :k] = a, b, c, True
    return y, ig, gmin, mask


def _cycle_warnings(
    res: WebsterResult,
    i: int,
    inter: Intersection,
    y: np.ndarray,  # (k,) the stages' critical flow ratios
    cycle: float,
    *,
    y_limit: float,
    cycle_max_s: float,
) -> list[str]:
    """What an engineer should know about intersection ``i``'s cycle: oversaturated, capped, minimum
    greens and intergreens beyond cycle_max, stages held at their minimum, no demand."""
    k = len(inter.stages)
    warnings: list[str] = []
    big_y = float(res.flow_ratio_sum[i])
    if res.oversaturated[i]:
        warnings.append(
            f"Y = {big_y:.3f} >= {y_limit:g}: oversaturated; cycle set to cycle_max {cycle_max_s:g} s "
            "(review the stages or the demand)"
        )
    elif res.cycle_capped[i]:
        warnings.append(
            f"Webster cycle {float(res.optimal_cycle_s[i]):.1f} s exceeds cycle_max {cycle_max_s:g} s: capped"
        )
    if res.cycle_over_max[i]:
        warnings.append(f"minimum greens and intergreens need {cycle:.1f} s, more than cycle_max {cycle_max_s:g} s")
    fixed = [inter.stages[j].id for j in np.flatnonzero(res.at_min_green[i, :k] & (y > 0))]
    if fixed:
        warnings.append(f"stages {fixed} held at their minimum green")
    if big_y == 0:
        warnings.append("no demand: shortest cycle, equal splits")
    return warnings
