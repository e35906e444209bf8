"""The safety supervisor: a software malfunction-management unit (MMU).

Every decision of every policy reaches the signal heads only through
:class:`SafetySupervisor`. It turns a requested stage per intersection per
tick into signal-group states and guarantees, by construction and by an
independent check (:func:`mmu_faults`), that:

(a) no two conflicting groups are ever green, or green and yellow, together;
(b) minimum green (WALK for pedestrians), yellow and the intergreen
    (yellow + all-red, or pedestrian clearance) are always served in full;
(c) a request that cannot be executed now is held — executed as soon as it is
    legal — and reported with its reason (:class:`Hold`); a request for a
    stage that does not exist is refused and reported;
(d) a detected violation puts the intersection into latched fault flash
    (like a hardware MMU: ``../shared/reference/field-io.md`` §3.1, restored
    only by :meth:`SafetySupervisor.reset`), and a lost backend puts it into
    its configured fail-safe: an orderly clearance to flash, or a local
    fixed-time plan (§3.6), until the backend is healthy again;
(e) a run-time watchdog, as a cabinet monitor would, whatever the policy,
    the plan or an operator asks: a group green for its ``max_green_s``
    while a conflicting group has a call is forced off (the next stage in
    sequence without it is taken), and a group with a call red for
    ``max_red_s`` is forced on (the next stage in sequence with it). Calls
    are the caller's (``step(calls=...)``: detected demand); without them
    every group counts as called, the strictest reading. As in a NEMA
    controller, the maximum times only against a conflicting call, so a
    group resting in green with nothing waiting is left there.
    A forced stage stands until every group of it shows green; then the
    requests rule again (so the forced stage gets at least its minimum
    green). It is reported as ``Hold.WATCHDOG`` and in
    ``SupervisorReport.watchdog``. A group green in every stage has nothing
    to yield to and is exempt from the maximum green, a group no stage serves
    from the maximum red. Maximum green is the per-phase MaxGreen of a
    controller (``../shared/reference/atspm-and-operations.md``); the
    default maximum red is the longest cycle the plan checker accepts
    (:data:`intersections.plan.MAX_CYCLE_S`, 240 s): red longer than that
    means the group was skipped for a whole permitted cycle. The same maxima
    are refused in plans beforehand by :func:`intersections.plan.check_plan`.

Timing model: ``step(dt_s)`` says that ``dt_s`` seconds passed since the
previous step; the returned states are shown until the next step. A yellow of
3.5 s at 1-s ticks therefore shows for 4 s (rounded up, never down), and the
all-red part of every intergreen still follows it in full.

State is kept as arrays over ``N`` intersections padded to ``G`` groups
(:mod:`controller.arrays`); a step runs as one compiled kernel (numba) that
takes the intersections one row at a time, its MMU check a separate compiled
function written apart from the sequencing: as numpy, a step is ~45 array
calls a tick, each dearer than the handful of groups it touches, and dearer
again on the caches a SUMO step leaves cold (timings: README, benchmarks).
Checked against that numpy form step for step (900 hypothesis scenarios:
identical states, timers and reports) and, for the MMU, on 20,000 random
transitions; the property tests (tests/controller/test_safety.py) run against the kernel itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numba import njit

from controller.arrays import PackedNetwork
from intersections.model import SignalState
from intersections.plan import MAX_CYCLE_S

__all__ = [
    "FailSafe",
    "Mode",
    "Hold",
    "HOLD",
    "SupervisorReport",
    "SafetySupervisor",
    "mmu_faults",
]

EPS = 1e-9
HOLD = -1  # request: keep the current stage
RED, YELLOW, GREEN, FLASH = (
    int(s) for s in (SignalState.RED, SignalState.YELLOW, SignalState.GREEN, SignalState.FLASH)
)


class FailSafe(IntEnum):
    """What an intersection does when its backend is lost."""

    FLASH = 0
    LOCAL_PLAN = 1


class Mode(IntEnum):
    NORMAL = 0
    CLEARING = 1  # orderly yellow/all-red on the way to flash
    FLASH = 2  # fail-safe flash (backend lost); leaves when healthy
    LOCAL_PLAN = 3  # backend lost: running the local fixed-time plan
    FAULT = 4  # a violation was detected: latched flash until reset()


# Plain ints for array comparisons: comparing a numpy array with an IntEnum member
# takes numpy's slow path (about ten times an int's on a 100-row array), and
# the supervisor compares its mode array a dozen times per tick.
_NORMAL, _CLEARING, _FLASH_MODE, _LOCAL, _FAULT = (int(m) for m in Mode)
_FS_FLASH, _FS_LOCAL = int(FailSafe.FLASH), int(FailSafe.LOCAL_PLAN)
# What a request is, per (intersection, request): see SafetySupervisor._validate.
_REQ_REFUSED, _REQ_VALID, _REQ_HOLD = 0, 1, 2


class Hold(IntEnum):
    """Why the requested stage is not (yet) fully shown. Higher wins."""

    NONE = 0
    CLEARANCE = 1  # waiting for yellow / all-red / intergreen to run out
    MIN_GREEN = 2  # a group of the previous stage has not served its minimum green
    FAIL_SAFE = 3  # the intersection is in a fail-safe mode; request ignored
    REFUSED = 4  # unknown stage: request refused, previous target kept
    # The watchdog (e) overrode the request: a maximum green or red ran out. It ranks between
    # MIN_GREEN and FAIL_SAFE (a fail-safe or a refusal is still reported first); numbered last
    # so that the older codes keep their values.
    WATCHDOG = 5


_HOLD_NONE, _HOLD_CLEARANCE, _HOLD_MIN_GREEN, _HOLD_FAIL_SAFE, _HOLD_REFUSED, _HOLD_WATCHDOG = (int(h) for h in Hold)


@dataclass(frozen=True)
class SupervisorReport:
    """What happened in one step, per intersection (arrays of length N)."""

    hold: np.ndarray  # (N,) int8, Hold codes
    refused: np.ndarray  # (N,) bool: the request named no valid stage
    violation: np.ndarray  # (N,) bool: mmu_faults fired this step (now latched in FAULT)
    mode: np.ndarray  # (N,) int8, Mode codes after the step
    target: np.ndarray  # (N,) int, stage being served (-1: none)
    watchdog: np.ndarray | None = None  # (N,) bool: the watchdog forced the target (None: nothing supervised)


def mmu_faults(
    packed: PackedNetwork,
    prev_state: np.ndarray,
    prev_state_time_s: np.ndarray,
    since_green_end_s: np.ndarray,
    new_state: np.ndarray,
    dt_s: float,
) -> np.ndarray:
    """Independent check of one transition, per intersection (bool, (N,)).

    Written apart from the sequencing logic on purpose (a hardware MMU does
    not trust the controller): it flags conflicting groups both green or
    yellow, a green that ends without its yellow, a yellow cut short or turned
    back to green, a green that ends before its minimum, and a green that
    starts before the intergreen from a conflicting group has run out.
    ``since_green_end_s`` is the time since each group last left green,
    measured at the new step.
    """
    n, g = packed.n, packed.g
    given: dict[str, np.ndarray] = {
        "prev_state": np.ascontiguousarray(prev_state, dtype=np.int8),
        "prev_state_time_s": np.ascontiguousarray(prev_state_time_s, dtype=np.float64),
        "since_green_end_s": np.ascontiguousarray(since_green_end_s, dtype=np.float64),
        "new_state": np.ascontiguousarray(new_state, dtype=np.int8),
    }
    for name, a in given.items():
        if a.shape != (n, g):
            raise ValueError(f"{name} must have shape ({n}, {g}), got {a.shape}")
    out = np.zeros(n, bool)
    _mmu_all(
        given["prev_state"], given["prev_state_time_s"], given["since_green_end_s"], given["new_state"],
        float(dt_s), *_mmu_tables(packed), out,
    )  # fmt: skip
    return out


def _mmu_tables(packed: PackedNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The packed network's arrays the MMU reads, contiguous and in the kernel's dtypes.

    A fixed-length tuple, in the order of the kernels' parameters (needs_yellow, min_green_s,
    yellow_s, conflicts, start_after_s), so that the type checker counts the arguments it fills.
    """
    return (
        np.ascontiguousarray(packed.needs_yellow, dtype=np.bool_),
        np.ascontiguousarray(packed.min_green_s, dtype=np.float64),
        np.ascontiguousarray(packed.yellow_s, dtype=np.float64),
        np.ascontiguousarray(packed.conflicts, dtype=np.bool_),
        np.ascontiguousarray(packed.start_after_s, dtype=np.float64),
    )


# The kernels take numba's arguments untyped (numba types them from the arrays it is called with),
# hence their narrow `type: ignore[no-untyped-def]`; the supervisor's methods that call them are typed.
@njit(cache=True)
def _mmu_row(i, prev, prev_time, since, new, dt, needs_yellow, min_green, yellow, conflicts, start_after):  # type: ignore[no-untyped-def]
    """True if row ``i``'s transition ``prev -> new`` breaks a rule (see :func:`mmu_faults`)."""
    g = new.shape[1]
    for j in range(g):
        s_new = new[i, j]
        s_prev = prev[i, j]
        was_green = s_prev == GREEN
        was_yellow = s_prev == YELLOW
        green = s_new == GREEN
        red = s_new == RED
        elapsed = prev_time[i, j] + (dt + EPS)
        if was_green and needs_yellow[i, j] and red:  # green ended without its yellow
            return True
        if was_green and not green and s_new != FLASH and elapsed < min_green[i, j]:  # short green
            return True
        if was_yellow and red and elapsed < yellow[i, j]:  # short yellow
            return True
        if was_yellow and green:  # yellow turned back to green
            return True
        if green or s_new == YELLOW:  # shown beside a shown conflicting group
            for k in range(g):
                if conflicts[i, j, k] and (new[i, k] == GREEN or new[i, k] == YELLOW):
                    return True
        if green and not was_green:  # a green started before its intergreen (from k, or its own) ran out
            for k in range(g):
                if since[i, k] + EPS < start_after[i, j, k]:
                    return True
    return False


@njit(cache=True)
def _mmu_all(prev, prev_time, since, new, dt, needs_yellow, min_green, yellow, conflicts, start_after, out):  # type: ignore[no-untyped-def]
    for i in range(new.shape[0]):
        out[i] = _mmu_row(i, prev, prev_time, since, new, dt, needs_yellow, min_green, yellow, conflicts, start_after)


# fmt: off
@njit(cache=True)
def _sequence(  # type: ignore[no-untyped-def]
    state, state_time, since_end, target, mode, walked,  # the supervisor's: updated in place
    requests, dt, healthy, fallback,  # this step's inputs
    fail_safe, req_codes, req_base, s, stage_rows, stage_base,  # the network, built once: SafetySupervisor._tables
    yellow_m, yellow_s, min_green_m, start_after_m, own_clearance_m, group_valid, walk_ends,
    needs_yellow, min_green_s, yellow_mmu, conflicts, start_after_s,  # what the MMU reads: _mmu_tables
    new_time, new_since, hold, refused, violation,  # outputs
):
# fmt: on
    """One supervisor step, one intersection at a time (see :meth:`SafetySupervisor.step`).

    Compiled: the vectorised form is a few dozen numpy calls a tick, each
    costing more than the few groups it touches, the more so on the cold
    caches SUMO's step leaves behind; here a row's groups are a few dozen
    compares in registers. The order of the rules is the order of the
    numbered steps below, and every group of a row sees the row as it stood
    after the previous step (scratch arrays ``prev``, ``ended``, ``since_red``).
    One long function on purpose: the steps share a row's scratch values inside
    one compiled loop, and a call per step would cost what compiling saves.
    """
    n, g = state.shape
    prev = np.empty((n, g), np.int8)
    ended = np.empty(g, np.bool_)
    switched = np.empty(g, np.bool_)
    since_red = np.empty(g, np.float64)
    for i in range(n):
        # Timers: every state has been shown dt longer; a green ending now counts from 0.
        for j in range(g):
            prev[i, j] = state[i, j]
            new_time[i, j] = state_time[i, j] + dt
            new_since[i, j] = 0.0 if state[i, j] == GREEN else since_end[i, j] + dt
        # 0. Mode transitions. Backend lost: enter the configured fail-safe. Back: leave it
        #    (flash leaves through all-red, from no stage).
        m = mode[i]
        if not healthy[i] and m == _NORMAL:
            if fail_safe[i] == _FS_LOCAL:
                m = _LOCAL
            elif fail_safe[i] == _FS_FLASH:
                m = _CLEARING
        if healthy[i] and (m == _LOCAL or m == _CLEARING or m == _FLASH_MODE):
            if m == _FLASH_MODE:
                for j in range(g):
                    state[i, j] = RED
                    prev[i, j] = RED
                    new_time[i, j] = 0.0
                    new_since[i, j] = 0.0
                target[i] = -1
            m = _NORMAL
        # Requests -> target stage. ``refused`` always judges the caller's request; where the
        # local plan runs, its request picks the target (an invalid one keeps the previous).
        kept = target[i]
        code = req_codes[req_base[i] + min(max(requests[i], -2), s)]
        refused[i] = code == _REQ_REFUSED
        tgt = requests[i] if code == _REQ_VALID else kept
        if m == _LOCAL:
            code = req_codes[req_base[i] + min(max(fallback[i], -2), s)]
            tgt = fallback[i] if code == _REQ_VALID else kept
        if m == _CLEARING or m == _FLASH_MODE or m == _FAULT:
            tgt = -1
        target[i] = tgt
        row = stage_base[i] + tgt  # the empty row where tgt is -1: nothing desired
        if tgt != kept:
            # A new stage: its crossings may walk again, at once where their own clearance has
            # run out. One it keeps that is still clearing rests on: walking it again would hold
            # the new stage for that clearance, for nobody (one WALK per green, as NEMA times it).
            for j in range(g):
                walked[i, j] = walked[i, j] and stage_rows[row, j] and new_since[i, j] < own_clearance_m[i, j]
        sequenced = not (m == _FLASH_MODE or m == _FAULT)  # flash and fault rows are sequenced by nobody
        # 1. Yellow runs out -> red.  2. Greens not wanted end once their minimum is served.
        held_min = False
        any_ended = False
        for j in range(g):
            st = state[i, j]
            timer = new_time[i, j]
            end_yellow = sequenced and st == YELLOW and timer >= yellow_m[i, j]
            # A crossing of the stage that has shown its WALK rests in DON'T WALK: its
            # clearance runs while the stage's vehicles keep their green (NEMA ped timing).
            walk_done = (
                sequenced and st == GREEN and walk_ends[i, j] and stage_rows[row, j] and timer >= min_green_m[i, j]
            )
            want_off = sequenced and st == GREEN and (not stage_rows[row, j] or walk_done)
            can_off = want_off and timer >= min_green_m[i, j]
            if walk_done:
                walked[i, j] = True
            if want_off and not can_off:
                held_min = True  # a wanted-off green still short of its minimum
            if end_yellow or (can_off and not needs_yellow[i, j]):
                state[i, j] = RED
            elif can_off:
                state[i, j] = YELLOW
            # A yellow shown longer than yellow_s (rounded up to ticks) must not eat
            # into the all-red: count the rest of every intergreen from this red.
            if end_yellow:
                new_since[i, j] = yellow_s[i, j]
                any_ended = True
            elif can_off:
                new_since[i, j] = 0.0
            ended[j] = end_yellow
            switched[j] = end_yellow or can_off
        # 3. Wanted groups start once every conflicting group (and their own clearance)
        #    has cleared: red and past the intergreen. A k not red counts as "left green
        #    just now" (-inf). Judged on the row as step 2 left it.
        for k in range(g):
            since_red[k] = new_since[i, k] if state[i, k] == RED else -np.inf
        held_clear = False
        for j in range(g):
            start = False
            wanted = stage_rows[row, j] and not walked[i, j]
            if state[i, j] == RED and wanted and not ended[j]:  # never yellow -> green in one tick
                start = True
                for k in range(g):
                    if since_red[k] < start_after_m[i, j, k]:
                        start = False
                        break
                if start:
                    state[i, j] = GREEN
            if switched[j] or start:
                new_time[i, j] = 0.0
            if wanted and state[i, j] != GREEN:
                held_clear = True  # a wanted group waits for a clearance (its own yellow too)
        # 4. Clearing to flash: once nothing shows green or yellow and the clearances have
        #    run out (own clearance = the intergreen diagonal), flash; never from a yellow.
        if m == _CLEARING and not any_ended:
            quiet = True
            for j in range(g):
                if state[i, j] == GREEN or state[i, j] == YELLOW or new_since[i, j] < own_clearance_m[i, j]:
                    quiet = False
                    break
            if quiet:
                m = _FLASH_MODE
        for j in range(g):
            if not group_valid[i, j]:
                state[i, j] = RED  # padding groups stay red
            elif m == _FLASH_MODE or m == _FAULT:
                state[i, j] = FLASH
        # 5. Independent MMU check of what we are about to show.
        bad = _mmu_row(
            i, prev, state_time, new_since, state, dt, needs_yellow, min_green_s, yellow_mmu, conflicts, start_after_s
        )
        violation[i] = bad
        if bad:
            m = _FAULT
            target[i] = -1
            for j in range(g):
                state[i, j] = FLASH if group_valid[i, j] else RED
        code = _HOLD_NONE
        if held_clear:
            code = _HOLD_CLEARANCE
        if held_min:
            code = _HOLD_MIN_GREEN
        if m != _NORMAL:
            code = _HOLD_FAIL_SAFE  # LOCAL_PLAN too: the request is ignored
        if refused[i]:
            code = _HOLD_REFUSED
        hold[i] = code
        mode[i] = m


class SafetySupervisor:
    """Sequences requested stages into safe signal-group states.

    ``fail_safe`` is one :class:`FailSafe` for all or an array per
    intersection. ``startup_clearance`` starts every intersection as if all
    groups had just ended green, so the first green waits a full intergreen
    (a controller's start-up all-red).

    Pedestrian groups rest in DON'T WALK (NEMA TS 2 pedestrian timing, the
    controllers' default): a crossing of the served stage shows WALK for its
    walk time, then its clearance (flashing DON'T WALK) runs while the stage's
    vehicles keep their green, and it walks again only in a later stage. Its
    clearance then costs the cross street nothing where the vehicle green
    outlasts it, which is also how SUMO's own programs time it (crossings go
    red before their vehicles' green ends). Resting in WALK (the crossing green
    for the whole stage, its clearance after) cost the real fokr_bs junction,
    with 18-s crossing clearances, that clearance at every stage change.
    ``ped_rest_in_walk=True`` keeps that older behaviour. :attr:`walked` says
    which crossings have walked in the current stage; a policy reads it as
    ``PolicyContext.served``.
    """

    def __init__(
        self,
        packed: PackedNetwork,
        *,
        fail_safe: FailSafe | np.ndarray = FailSafe.FLASH,
        startup_clearance: bool = True,
        max_red_s: float = MAX_CYCLE_S,
        watchdog: bool = True,
        ped_rest_in_walk: bool = False,
    ) -> None:
        self.packed = packed
        n, g = packed.n, packed.g
        self.fail_safe = np.broadcast_to(np.asarray(fail_safe, dtype=np.int8), (n,)).copy()
        self.state = np.full((n, g), RED, dtype=np.int8)
        self.state_time_s = np.zeros((n, g))
        start = 0.0 if startup_clearance else np.inf
        self.since_green_end_s = np.full((n, g), start)
        self.target = np.full(n, -1, dtype=np.int64)
        self.mode = np.full(n, Mode.NORMAL, dtype=np.int8)
        self.walked = np.zeros((n, g), dtype=np.bool_)
        self.time_s = 0.0
        # (e) The watchdog's limits per group (inf: not watched) and the stage it forced per row.
        self.forced = np.full(n, -1, dtype=np.int64)
        valid_stages = packed.stage_mask & packed.stage_valid[:, :, None] & packed.group_valid[:, None, :]
        always = (valid_stages | ~packed.stage_valid[:, :, None]).all(axis=1)
        served = valid_stages.any(axis=1)
        self.max_green_s = np.where(packed.group_valid & ~always & watchdog, packed.max_green_s, np.inf)
        self.max_red_s = np.where(packed.group_valid & served & watchdog, float(max_red_s), np.inf)
        self._conflicts = np.ascontiguousarray(packed.conflicts, dtype=np.bool_)
        self._all_called = np.ones((n, g), np.bool_)
        # Requests are judged by one lookup: a code per (intersection, request clipped to
        # [-2, S]), -2 and S standing for every request out of range.
        s = packed.s
        codes = np.full((n, s + 3), _REQ_REFUSED, np.int8)
        codes[:, 1] = _REQ_HOLD
        codes[:, 2:-1] = np.where(packed.stage_valid, _REQ_VALID, _REQ_REFUSED)
        stage_rows, stage_base = packed.stage_rows
        f64 = np.float64
        # Everything the kernel reads of the network, contiguous and in its dtypes, built once.
        # Thresholds carry the rounding margin (EPS) folded in.
        self._tables = (
            self.fail_safe,
            codes.ravel(),
            np.arange(n) * (s + 3) + 2,
            int(s),
            np.ascontiguousarray(stage_rows),
            np.ascontiguousarray(stage_base, dtype=np.int64),
            np.ascontiguousarray(packed.yellow_s - EPS, dtype=f64),
            np.ascontiguousarray(packed.yellow_s, dtype=f64),
            np.ascontiguousarray(packed.min_green_s - EPS, dtype=f64),
            np.ascontiguousarray(packed.start_after_s - EPS, dtype=f64),  # -inf stays -inf: k never blocks j
            np.ascontiguousarray(np.einsum("njj->nj", packed.intergreen_s) - EPS, dtype=f64),
            np.ascontiguousarray(packed.group_valid, dtype=np.bool_),
            np.ascontiguousarray(packed.is_pedestrian & packed.group_valid & (not ped_rest_in_walk), dtype=np.bool_),
            *_mmu_tables(packed),
        )
        self._all_healthy = np.ones(n, np.bool_)
        self._no_fallback = np.full(n, HOLD, np.int64)
        # Load (or compile) the kernel now rather than in the first tick (~0.3 s once per
        # process): a dry step on copies, which leaves this supervisor untouched.
        _sequence(
            self.state.copy(), self.state_time_s, self.since_green_end_s, self.target.copy(), self.mode.copy(),
            self.walked.copy(), self._no_fallback, 0.0, self._all_healthy, self._no_fallback, *self._tables,
            np.empty((n, g)), np.empty((n, g)), np.empty(n, np.int8), np.empty(n, np.bool_), np.empty(n, np.bool_),
        )  # fmt: skip

    # ------------------------------------------------------------------
    def reset(self, rows: np.ndarray | list[int] | None = None) -> None:
        """Clear a latched fault (a technician's action): back to all-red."""
        idx = np.arange(self.packed.n) if rows is None else np.asarray(rows)
        self.mode[idx] = Mode.NORMAL
        self.state[idx] = RED
        self.state_time_s[idx] = 0.0
        self.since_green_end_s[idx] = 0.0
        self.target[idx] = -1
        self.forced[idx] = -1
        self.walked[idx] = False

    def step(
        self,
        requests: np.ndarray,
        dt_s: float,
        *,
        healthy: np.ndarray | None = None,
        fallback_requests: np.ndarray | None = None,
        calls: np.ndarray | None = None,
    ) -> tuple[np.ndarray, SupervisorReport]:
        """Advance ``dt_s`` seconds and return ``(states (N, G) int8, report)``.

        ``requests``: stage index per intersection, or ``HOLD`` (-1) to keep
        the current one. ``healthy``: False where the backend lost the
        intersection. ``fallback_requests``: the local plan's stage requests,
        used where the fail-safe is LOCAL_PLAN and the backend is unhealthy.
        ``calls``: (N, G) bool, groups with demand waiting or arriving, read by
        the watchdog (rule (e)); None counts every group as called.
        """
        n = self.packed.n
        if dt_s < 0:
            raise ValueError("dt_s must be >= 0")
        req = self._requests(requests, "requests")
        # Like the requests, one per intersection; a scalar stands for all.
        fallback = self._no_fallback
        if fallback_requests is not None:
            fallback = np.ascontiguousarray(np.broadcast_to(np.asarray(fallback_requests, dtype=np.int64), (n,)))
        ok = self._all_healthy
        if healthy is not None:
            ok = np.ascontiguousarray(np.broadcast_to(np.asarray(healthy, dtype=np.bool_), (n,)))
        # (e) The watchdog replaces the request (or the local plan's) where a maximum ran out.
        asked = req
        called = self._all_called
        if calls is not None:
            called = np.ascontiguousarray(np.broadcast_to(np.asarray(calls, dtype=np.bool_), self.state.shape))
        req, fallback, watched = self._watchdog(req, fallback, ok, float(dt_s), called)
        self.time_s += dt_s
        # Fresh timer arrays every step: a caller may keep the previous ones.
        timers = np.empty_like(self.state_time_s)
        since = np.empty_like(self.since_green_end_s)
        hold = np.empty(n, np.int8)
        refused = np.empty(n, np.bool_)
        violation = np.empty(n, np.bool_)
        _sequence(
            self.state, self.state_time_s, self.since_green_end_s, self.target, self.mode, self.walked,
            req, float(dt_s), ok, fallback, *self._tables,
            timers, since, hold, refused, violation,
        )  # fmt: skip
        self.state_time_s = timers
        self.since_green_end_s = since
        if any_watched := bool(watched.any()):
            # The caller's own request is judged as given, whatever the watchdog put in its place.
            codes, base, s = self._tables[1], self._tables[2], self._tables[3]
            refused = codes[base + np.clip(asked, -2, s)] == _REQ_REFUSED
            hold[watched & (self.mode == _NORMAL)] = _HOLD_WATCHDOG
            hold[refused] = _HOLD_REFUSED
        report = SupervisorReport(
            hold=hold,
            refused=refused,
            violation=violation,
            mode=self.mode.copy(),
            target=self.target.copy(),
            watchdog=watched if any_watched else np.zeros(n, np.bool_),
        )
        return self.state.copy(), report

    def _watchdog(
        self, req: np.ndarray, fallback: np.ndarray, healthy: np.ndarray, dt_s: float, calls: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Requests (own and local plan's) with the watchdog's forced stages put in, and where it forced one."""
        n = self.packed.n
        out_req, out_fb, watched = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.bool_)
        codes, base, s, stage_rows, stage_base = self._tables[1:6]
        _watchdog(
            self.state, self.state_time_s, self.target, self.mode, self.forced, self.fail_safe, self.walked,
            req, fallback, healthy, dt_s, codes, base, s, stage_rows, stage_base,
            np.ascontiguousarray(self.max_green_s), np.ascontiguousarray(self.max_red_s),  # EPS taken off inside
            calls, self._conflicts, out_req, out_fb, watched,
        )  # fmt: skip
        return out_req, out_fb, watched

    def _requests(self, requests: np.ndarray, name: str) -> np.ndarray:
        req = np.ascontiguousarray(requests, dtype=np.int64)
        if req.shape != (self.packed.n,):
            raise ValueError(f"{name} must have shape ({self.packed.n},), got {req.shape}")
        return req


# fmt: off
@njit(cache=True)
def _watchdog(  # type: ignore[no-untyped-def]
    state, state_time, target, mode, forced, fail_safe, walked,  # the supervisor's (forced updated in place)
    requests, fallback, healthy, dt, req_codes, req_base, s, stage_rows, stage_base, max_green, max_red,
    calls, conflicts, out_req, out_fb, watched,  # the last three: outputs
):
# fmt: on
    """Rule (e), one row at a time, before the step: which stage a maximum green or red forces.

    Written apart from the sequencing, like the MMU check: it only replaces a
    request with a valid stage, so everything the sequencing guarantees
    (clearances, minimum greens, no conflicts) still holds for the forced one.
    One function on purpose: a compiled loop over the rows (see :func:`_sequence`).
    """
    n, g = state.shape
    # Greens past their maximum (og) and reds past theirs (orr) at the end of this step, one row at
    # a time: allocated once, not per row (two allocations per intersection cost more than its row).
    og = np.zeros(g, np.bool_)
    orr = np.zeros(g, np.bool_)
    for i in range(n):
        out_req[i] = requests[i]
        out_fb[i] = fallback[i]
        watched[i] = False
        m = mode[i]
        # The mode this step will serve in (the sequencing's step 0): the caller's requests
        # while healthy, the local plan's while lost with that fail-safe; otherwise nothing.
        own = healthy[i] and (m == _NORMAL or m == _LOCAL)
        local = (not healthy[i]) and (m == _LOCAL or (m == _NORMAL and fail_safe[i] == _FS_LOCAL))
        if not (own or local):
            forced[i] = -1
            continue
        src = requests[i] if own else fallback[i]
        code = req_codes[req_base[i] + min(max(src, -2), s)]
        tgt = src if code == _REQ_VALID else target[i]
        f = forced[i]
        any_og = False
        oldest = -1  # the overdue red waiting longest: served first, so none waits for ever
        longest = -1  # the overdue green shown longest: ended first, likewise
        waiting = -1  # the called red waiting longest, overdue or not: started first where there is a choice
        for j in range(g):
            timer = state_time[i, j] + dt
            og[j] = state[i, j] == GREEN and timer >= max_green[i, j] - EPS
            if og[j]:  # the maximum times only against a conflicting call
                og[j] = False
                for k in range(g):
                    if conflicts[i, j, k] and calls[i, k]:
                        og[j] = True
                        break
            # A crossing that has walked in the stage being served rests in DON'T WALK until the
            # stage changes: it is not a red the current stage serves, nor one to force a stage for
            # (counted as served, it would hide a vehicle group's longer wait for ever).
            waits = state[i, j] == RED and calls[i, j] and not walked[i, j]
            orr[j] = waits and timer >= max_red[i, j] - EPS
            any_og = any_og or og[j]
            if orr[j] and (oldest < 0 or timer > state_time[i, oldest] + dt):
                oldest = j
            if og[j] and (longest < 0 or timer > state_time[i, longest] + dt):
                longest = j
            if waits and (waiting < 0 or timer > state_time[i, waiting] + dt):
                waiting = j
        if f >= 0:  # a forced stage stands until all of it is green (a crossing that has walked has been)
            done = True
            for j in range(g):
                if stage_rows[stage_base[i] + f, j] and state[i, j] != GREEN and not walked[i, j]:
                    done = False
                    break
            if done:
                f = -1
        cur = stage_base[i] + (f if f >= 0 else tgt)
        keeps_og = False
        for j in range(g):
            keeps_og = keeps_og or (og[j] and stage_rows[cur, j])
        serves_or = oldest >= 0 and stage_rows[cur, oldest]
        misses_or = oldest >= 0 and not stage_rows[cur, oldest]
        # So does the called red that has waited longest, overdue or not: a policy's own starvation
        # rule (a max red shorter than the watchdog's) asks for its stage, and where that stage
        # carries a group over from the last one, ending it at that group's maximum green before
        # the red has started would let the two limits chase each other until the watchdog's own
        # maximum red (found by the policy property test: max-pressure, a vehicle group red 139 s).
        serves_wait = waiting >= 0 and stage_rows[cur, waiting]
        if (keeps_og and not serves_or and not serves_wait) or (f < 0 and misses_or):
            # The next stage in sequence that starts the oldest overdue red, and ends every
            # overdue green (else the longest).
            start_k = f if f >= 0 else tgt
            best = -1
            best_score = 0
            for step in range(1, s + 1):
                k = (start_k + step) % s if start_k >= 0 else step - 1
                row = stage_base[i] + k
                nonempty = False
                ends_all = True
                ends_longest = longest >= 0
                starts_red = False
                starts_waiting = False
                for q in range(g):
                    if stage_rows[row, q]:
                        nonempty = True
                        if og[q]:
                            ends_all = False
                        if q == oldest:
                            starts_red = True
                        if q == longest:
                            ends_longest = False
                        if q == waiting:
                            starts_waiting = True
                if not nonempty:
                    continue
                score = (8 if starts_red else 0) + (4 if any_og and ends_all else 0) + (2 if ends_longest else 0)
                score += 1 if starts_waiting and (starts_red or ends_longest) else 0
                if score > best_score:
                    best, best_score = k, score
            if best >= 0:
                f = best
        forced[i] = f
        if f >= 0:
            watched[i] = True
            if own:
                out_req[i] = f
            else:
                out_fb[i] = f
