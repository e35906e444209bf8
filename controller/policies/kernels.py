"""Compiled (numba) per-row kernels of the policies.

They live in one module on purpose: numba's on-disk cache (``cache=True``)
re-compiles a function when *its own* source file changes, not when a
function it calls from another file does; kept together, an edit to any of
them invalidates them all.

A kernel goes through the intersections one row at a time in compiled code:
the numpy form of a policy is a few dozen array calls per tick, each costing
more than the few groups it touches, the more so on the caches SUMO's step
leaves cold (the timings are in the commit messages and benchmarks/).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from intersections.model import SignalState

__all__ = ["STARVING_SCORE", "starve_row", "starve_rows", "max_pressure_decide"]

GREEN = int(SignalState.GREEN)
HOLD = -1  # controller.safety.HOLD: keep the current stage
STARVING_SCORE = 1e12  # above any pressure: a starving stage outranks every non-starving one


# The kernels take numba's arguments untyped (numba types them from the arrays it is called with),
# hence their narrow `type: ignore[no-untyped-def]`; their callers are typed.
@njit(cache=True)
def starve_row(i, score, stage_mask, stage_valid, red_s, max_red_s, starving_stage):  # type: ignore[no-untyped-def]
    """Row ``i`` of :func:`starvation_score`, in place: a valid stage with a group red beyond
    ``max_red_s`` scores ``STARVING_SCORE`` + its longest such wait (``score`` is (N, S))."""
    n_s, n_g = stage_mask.shape[1], stage_mask.shape[2]
    for s in range(n_s):
        if not stage_valid[i, s]:
            continue
        hit = False
        wait = 0.0
        for g in range(n_g):
            if stage_mask[i, s, g] and red_s[i, g] > max_red_s:
                hit = True
                wait = max(wait, red_s[i, g])
        if hit:
            starving_stage[i, s] = True
            score[i, s] = STARVING_SCORE + wait


@njit(cache=True)
def starve_rows(score, stage_mask, stage_valid, red_s, max_red_s, starving_stage):  # type: ignore[no-untyped-def]
    for i in range(score.shape[0]):
        starve_row(i, score, stage_mask, stage_valid, red_s, max_red_s, starving_stage)


@njit(cache=True)
def max_pressure_decide(  # type: ignore[no-untyped-def]
    q, state, state_time_s, target, served, dt, red_s, pressure, exit_share, group_p, red_forcing,
    pm_rows, pm_cols, pm_vals, gm_rows, gm_cols, gm_vals,
    stage_mask, stage_valid, group_valid, stage_rows, stage_base, stage_ready_s,
    max_red_s, switch_margin, out,
):  # fmt: skip
    """One max-pressure decision per intersection, ``red_s`` updated in place (:mod:`controller.policies.max_pressure`).

    Compiled: the vectorised form is ~25 numpy calls a tick, each costing
    more than its data on the caches SUMO's step has just evicted. One long
    function on purpose: a numba kernel is one loop over the rows whose
    steps share scratch values in registers, and a call per step from it would
    cost what compiling it saves. The pressure map is applied entry by entry in its
    stored order, the order ``bincount`` summed in, so pressures (and ties)
    are those of :func:`stage_pressure` folded as before.

    ``exit_share`` (N, G): the share of each group's queue held up by an exit
    jammed back to the junction. A blocked movement contributes no pressure: where it is above
    0 the group's own pressure (``gm``: weight · (q − downstream q), into
    ``group_p``) times that share comes off its stages' sums, so rows with
    nothing blocked keep their pressures bit for bit. A group whose every exit
    is jammed keeps its red wait (``red_s``) but does not force its stage while
    the jam lasts (``red_forcing``, the wait the starvation rule sees).
    """
    n, n_s = pressure.shape
    n_g = q.shape[1]
    flat_q = q.ravel()
    flat_p = pressure.ravel()
    flat_p[:] = 0.0
    for e in range(len(pm_rows)):
        flat_p[pm_rows[e]] += pm_vals[e] * flat_q[pm_cols[e]]
    any_blocked = False
    for i in range(n):
        for g in range(n_g):
            if exit_share[i, g] > 0.0:
                any_blocked = True
    if any_blocked:
        flat_g = group_p.ravel()
        flat_g[:] = 0.0
        for e in range(len(gm_rows)):
            flat_g[gm_rows[e]] += gm_vals[e] * flat_q[gm_cols[e]]
        for i in range(n):
            for g in range(n_g):
                x = exit_share[i, g]
                if x > 0.0:
                    for s in range(n_s):
                        if stage_mask[i, s, g]:
                            pressure[i, s] -= x * group_p[i, g]
    starving = np.zeros((n, n_s), np.bool_)  # unread here: the adaptive policy's use of starve_row
    for i in range(n):
        # A queue held at red counts its wait; anything else starts again from 0 (a jammed exit holds it).
        for g in range(n_g):
            waiting = q[i, g] > 0.5 and state[i, g] != GREEN and group_valid[i, g]
            full = exit_share[i, g] >= 1.0 - 1e-9
            if not waiting:
                red_s[i, g] = 0.0
            elif not full:
                red_s[i, g] = red_s[i, g] + dt
            red_forcing[i, g] = 0.0 if full else red_s[i, g]
        for s in range(n_s):
            if not stage_valid[i, s]:
                pressure[i, s] = -np.inf  # padding stages are never chosen
        # Starved stages outrank every pressure, the longest-starved first.
        starve_row(i, pressure, stage_mask, stage_valid, red_forcing, max_red_s, starving)
        best = 0  # argmax: the first of equal scores (a NaN, as numpy, counts as the largest)
        for s in range(1, n_s):
            if np.isnan(pressure[i, best]):
                break
            if np.isnan(pressure[i, s]) or pressure[i, s] > pressure[i, best]:
                best = s
        cur = target[i]
        if cur < 0:
            out[i] = best  # no stage yet: take the best at once
            continue
        # The current stage may end once every group of it has been green for its stage_ready_s
        # (a crossing that has walked and rests in DON'T WALK, ``served``, has been).
        ready_s = stage_ready_s[i * n_s + cur]
        ready = True
        row = stage_base[i] + cur
        for g in range(n_g):
            if stage_rows[row, g] and not served[i, g] and not (state[i, g] == GREEN and state_time_s[i, g] >= ready_s):
                ready = False
                break
        better = pressure[i, best] > pressure[i, cur] + switch_margin
        out[i] = best if ready and better and best != cur else HOLD
