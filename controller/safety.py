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
    fixed-time plan (§3.6), until the backend is healthy again.

Timing model: ``step(dt_s)`` says that ``dt_s`` seconds passed since the
previous step; the returned states are shown until the next step. A yellow of
3.5 s at 1-s ticks therefore shows for 4 s (rounded up, never down), and the
all-red part of every intergreen still follows it in full.

Everything is vectorised over ``N`` intersections padded to ``G`` groups
(:mod:`controller.arrays`), so a 1,000-intersection tick is a handful of numpy
operations on ``(N, G, G)`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from controller.arrays import PackedNetwork, any_rows, any_set
from intersections.model import SignalState

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
# takes numpy's slow path (~10 µs against ~1 µs on a 100-row array, measured), and
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


_HOLD_CLEARANCE, _HOLD_MIN_GREEN = int(Hold.CLEARANCE), int(Hold.MIN_GREEN)


@dataclass(frozen=True)
class SupervisorReport:
    """What happened in one step, per intersection (arrays of length N)."""

    hold: np.ndarray  # (N,) int8, Hold codes
    refused: np.ndarray  # (N,) bool: the request named no valid stage
    violation: np.ndarray  # (N,) bool: mmu_faults fired this step (now latched in FAULT)
    mode: np.ndarray  # (N,) int8, Mode codes after the step
    target: np.ndarray  # (N,) int, stage being served (-1: none)


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
    # Every test is per group, (N, G), so the row verdict is one any_rows at the end
    # (at 4 groups per intersection each numpy call costs more than the data it touches).
    elapsed = prev_state_time_s + (dt_s + EPS)
    was_green = prev_state == GREEN
    was_yellow = prev_state == YELLOW
    green = new_state == GREEN
    red = new_state == RED
    shown = green | (new_state == YELLOW)
    # early[n, j, k]: k (a conflicting group, or j itself) left green less than IG[k, j] ago.
    early = (since_green_end_s + EPS)[:, None, :] < packed.start_after_s
    bad = (
        (was_green & packed.needs_yellow & red)  # green ended without its yellow
        | (was_green & ~green & (new_state != FLASH) & (elapsed < packed.min_green_s))  # short green
        | (was_yellow & red & (elapsed < packed.yellow_s))  # short yellow
        | (was_yellow & green)  # yellow turned back to green
        | (shown & any_rows(packed.conflicts & shown[:, None, :]))  # shown beside a shown conflicting group
        | (green & ~was_green & any_rows(early))  # a green started before its intergreen ran out
    )
    return any_rows(bad)


class SafetySupervisor:
    """Sequences requested stages into safe signal-group states.

    ``fail_safe`` is one :class:`FailSafe` for all or an array per
    intersection. ``startup_clearance`` starts every intersection as if all
    groups had just ended green, so the first green waits a full intergreen
    (a controller's start-up all-red).
    """

    def __init__(
        self,
        packed: PackedNetwork,
        *,
        fail_safe: FailSafe | np.ndarray = FailSafe.FLASH,
        startup_clearance: bool = True,
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
        self.time_s = 0.0
        self._invalid = ~packed.group_valid
        self._any_invalid = bool(self._invalid.any())
        # Thresholds with the rounding margin folded in: fewer numpy calls per tick
        # (measured on a 100-intersection grid, where each call costs more than its data).
        self._yellow_m = packed.yellow_s - EPS
        self._min_green_m = packed.min_green_s - EPS
        self._no_yellow = ~packed.needs_yellow
        self._start_after_m = packed.start_after_s - EPS  # -inf stays -inf: k never blocks j there
        self._own_clearance_m = np.einsum("njj->nj", packed.intergreen_s) - EPS
        # Requests are judged by one lookup: a code per (intersection, request clipped to
        # [-2, S]), -2 and S standing for every request out of range.
        s = packed.s
        codes = np.full((n, s + 3), _REQ_REFUSED, np.int8)
        codes[:, 1] = _REQ_HOLD
        codes[:, 2:-1] = np.where(packed.stage_valid, _REQ_VALID, _REQ_REFUSED)
        self._req_codes = codes.ravel()
        self._req_base = np.arange(n) * (s + 3) + 2

    # ------------------------------------------------------------------
    def reset(self, rows: np.ndarray | list[int] | None = None) -> None:
        """Clear a latched fault (a technician's action): back to all-red."""
        idx = np.arange(self.packed.n) if rows is None else np.asarray(rows)
        self.mode[idx] = Mode.NORMAL
        self.state[idx] = RED
        self.state_time_s[idx] = 0.0
        self.since_green_end_s[idx] = 0.0
        self.target[idx] = -1

    def _validate(self, requests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split requests into (new target, refused)."""
        p = self.packed
        req = np.asarray(requests, dtype=np.int64)
        if req.shape != (p.n,):
            raise ValueError(f"requests must have shape ({p.n},), got {req.shape}")
        code = self._req_codes.take(np.minimum(np.maximum(req, -2), p.s) + self._req_base)
        target = np.where(code == _REQ_VALID, req, self.target)
        return target, code == _REQ_REFUSED

    def step(
        self,
        requests: np.ndarray,
        dt_s: float,
        *,
        healthy: np.ndarray | None = None,
        fallback_requests: np.ndarray | None = None,
    ) -> tuple[np.ndarray, SupervisorReport]:
        """Advance ``dt_s`` seconds and return ``(states (N, G) int8, report)``.

        ``requests``: stage index per intersection, or ``HOLD`` (-1) to keep
        the current one. ``healthy``: False where the backend lost the
        intersection. ``fallback_requests``: the local plan's stage requests,
        used where the fail-safe is LOCAL_PLAN and the backend is unhealthy.
        """
        p = self.packed
        n = p.n
        if dt_s < 0:
            raise ValueError("dt_s must be >= 0")
        self.time_s += dt_s
        prev_state = self.state.copy()
        prev_time = self.state_time_s
        self.state_time_s = prev_time + dt_s
        self.since_green_end_s = np.where(prev_state == GREEN, 0.0, self.since_green_end_s + dt_s)

        mode = self.mode
        all_healthy = healthy is None or np.count_nonzero(healthy) == n
        any_abnormal = any_set(mode)
        if not all_healthy or any_abnormal:
            # Some intersection is lost, in a fail-safe or in fault: the mode transitions.
            healthy = np.ones(n, bool) if healthy is None else np.asarray(healthy, bool)
            # Backend lost: enter the configured fail-safe.
            lost_normal = ~healthy & (mode == _NORMAL)
            mode[lost_normal & (self.fail_safe == _FS_LOCAL)] = _LOCAL
            mode[lost_normal & (self.fail_safe == _FS_FLASH)] = _CLEARING
            # Backend back: leave fail-safe (flash leaves through all-red).
            back = healthy & ((mode == _LOCAL) | (mode == _CLEARING) | (mode == _FLASH_MODE))
            leaving_flash = back & (mode == _FLASH_MODE)
            if leaving_flash.any():
                self.state[leaving_flash] = RED
                self.state_time_s[leaving_flash] = 0.0
                self.since_green_end_s[leaving_flash] = 0.0
                self.target[leaving_flash] = -1
                prev_state[leaving_flash] = RED
            mode[back] = _NORMAL
            any_abnormal = bool(mode.any())

        # Requests -> target stage. ``refused`` always judges the caller's
        # requests; where the local plan runs, its requests pick the target
        # (an invalid one keeps the previous target).
        target, refused = self._validate(requests)
        if any_abnormal:
            local = mode == _LOCAL
            if local.any():
                fallback = HOLD if fallback_requests is None else np.asarray(fallback_requests, dtype=np.int64)
                local_target, _ = self._validate(np.where(local, fallback, HOLD))
                target = np.where(local, local_target, target)
            ignoring = (mode == _CLEARING) | (mode == _FLASH_MODE) | (mode == _FAULT)
            target = np.where(ignoring, -1, target)
            normal_like = ~((mode == _FLASH_MODE) | (mode == _FAULT))[:, None]
        else:
            normal_like = None  # every row under normal control: no mask to apply
        self.target = target

        state = self.state
        desired = p.stage_groups(target)
        timer = self.state_time_s
        # 1. Yellow runs out -> red.
        end_yellow = (state == YELLOW) & (timer >= self._yellow_m)
        # 2. Greens not wanted end once their minimum is served.
        want_off = (state == GREEN) & ~desired
        if normal_like is not None:  # flash and fault rows are sequenced by nobody
            end_yellow &= normal_like
            want_off &= normal_like
        can_off = want_off & (timer >= self._min_green_m)
        held_min = any_rows(want_off > can_off)  # a wanted-off green still short of its minimum
        to_yellow = can_off & p.needs_yellow
        state[end_yellow | (can_off & self._no_yellow)] = RED
        state[to_yellow] = YELLOW
        # A yellow shown longer than yellow_s (rounded up to ticks) must not eat
        # into the all-red: count the rest of every intergreen from this red.
        since = np.where(end_yellow, p.yellow_s, np.where(can_off, 0.0, self.since_green_end_s))
        self.since_green_end_s = since
        # 3. Wanted groups start once every conflicting group (and their own
        #    clearance) has cleared: red and past the intergreen.
        red = state == RED
        want_on = red & desired & ~end_yellow  # never yellow -> green in one tick
        # blocked[n, j]: some conflicting k is not red, or k (or j itself) left green less
        # than IG[k, j] ago. A k not red counts as "left green just now" (-inf).
        since_red = np.where(red, since, -np.inf)
        blocked = any_rows(since_red[:, None, :] < self._start_after_m)
        start = want_on > blocked
        state[start] = GREEN
        self.state_time_s = np.where(end_yellow | can_off | start, 0.0, timer)
        # Any wanted group not green now waits for a clearance (its own yellow too).
        # (Flash and fault rows have no target, so nothing is desired there: no mask needed.)
        held_clear = any_rows(desired > (state == GREEN))

        # 4. Clearing to flash: once nothing shows green or yellow and the
        #    clearances have run out, flash.
        clearing = mode == _CLEARING if any_abnormal else None
        if clearing is not None and clearing.any():
            quiet = ~((state == GREEN) | (state == YELLOW)).any(axis=1)
            # Own clearance = the intergreen diagonal: yellow + all-red, or the
            # pedestrian clearance + all-red (yellow_s is 0 for pedestrians).
            cleared_all = (self.since_green_end_s >= self._own_clearance_m).all(axis=1)
            # Flash starts from an all-red shown for at least a tick, never from a yellow.
            go_flash = clearing & quiet & cleared_all & ~end_yellow.any(axis=1)
            mode[go_flash] = _FLASH_MODE
        if any_abnormal:
            flashing = (mode == _FLASH_MODE) | (mode == _FAULT)
            state[flashing] = np.where(p.group_valid[flashing], FLASH, RED)
        if self._any_invalid:
            state[self._invalid] = RED

        # 5. Independent MMU check of what we are about to show.
        violation = mmu_faults(p, prev_state, prev_time, self.since_green_end_s, state, dt_s)
        any_violation = any_set(violation)
        if any_violation:
            mode[violation] = _FAULT
            state[violation] = np.where(p.group_valid[violation], FLASH, RED)
            self.target[violation] = -1

        # Boolean-mask writes into int8, the kind of call this step already made (cheaper on cold caches).
        hold = np.zeros(n, np.int8)
        hold[held_clear] = _HOLD_CLEARANCE
        hold[held_min] = _HOLD_MIN_GREEN
        if any_abnormal or any_violation:
            hold[mode != _NORMAL] = Hold.FAIL_SAFE  # LOCAL_PLAN too: the request is ignored
        if any_set(refused):
            hold[refused] = Hold.REFUSED
        report = SupervisorReport(
            hold=hold,
            refused=refused,
            violation=violation,
            mode=mode.copy(),
            target=self.target.copy(),
        )
        return state.copy(), report
