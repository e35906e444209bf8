"""Cycles, plans and detector on-intervals from an event table (vectorised).

Cycle construction follows UDOT ATSPM ``CycleService.cs``
(``../shared/reference/atspm-and-operations.md`` §1.2):

* **red-to-red** (PCD, arrivals, approach delay): ``9 end yellow -> 1 begin
  green -> 8 begin yellow -> 9``; a cycle starts when the phase *changes to
  red* (end of yellow, code 9), not at the end of red clearance;
* **green-to-green** (split failure): ``1 -> 8 -> 9 -> 1``;
* **yellow-red** (yellow and red actuations): ``8 begin yellow -> 9 end
  yellow (red clearance begins) -> 11 end red clearance (red begins) -> 1
  next green``;
* **split** (split monitor, phase termination): ``1 -> 8 -> 9 [-> 11]``, the
  split being green + yellow + red clearance, with the termination event
  (4 gap-out, 5 max-out, 6 force-off) logged between green and yellow.

Only complete sequences count: a sequence broken by a missing event (a log
that starts mid-cycle, a preemption) is skipped, as ATSPM does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.events import EventCode
from scenarios.atspm.events import EventTable

__all__ = [
    "PhaseCycles",
    "red_to_red_cycles",
    "green_to_green_cycles",
    "yellow_red_cycles",
    "split_cycles",
    "PlanIntervals",
    "plan_intervals",
    "detector_intervals",
    "merge_intervals",
    "occupied_time",
    "detector_on_times",
]

E = EventCode


@dataclass(frozen=True)
class PhaseCycles:
    """Cycles of one phase as arrays; the meaning of the columns depends on the construction.

    ``t`` is (C, 4): red-to-red ``start(red), green, yellow, end(red)``;
    green-to-green ``green, yellow, red, end(next green)``; yellow-red
    ``yellow, red_clearance, red, end(next green)``; split ``green, yellow,
    red_clearance, end(of red clearance)``. ``termination`` holds 4/5/6 or 0.
    """

    phase: int
    t: np.ndarray
    termination: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    @property
    def start_s(self) -> np.ndarray:
        return self.t[:, 0]

    @property
    def end_s(self) -> np.ndarray:
        return self.t[:, 3]


def _phase_seq(ev: EventTable, phase: int, codes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    m = (ev.param == phase) & ev.is_code(*codes)
    return ev.time_s[m], ev.code[m].astype(np.int64)


def _match(c: np.ndarray, pattern: tuple[int, ...]) -> np.ndarray:
    """Start indices k where c[k:k+len(pattern)] == pattern."""
    n = len(c) - len(pattern) + 1
    if n <= 0:
        return np.zeros(0, np.int64)
    ok = np.ones(n, bool)
    for j, code in enumerate(pattern):
        ok &= c[j : j + n] == code
    return np.flatnonzero(ok)


def _terminations(ev: EventTable, phase: int, green: np.ndarray, yellow: np.ndarray) -> np.ndarray:
    """The termination code (4/5/6) logged in [green, yellow] for each cycle, else 0."""
    tt, tc = _phase_seq(ev, phase, (E.GAP_OUT, E.MAX_OUT, E.FORCE_OFF))
    out = np.zeros(len(green), np.int16)
    if not len(tt) or not len(green):
        return out
    k = np.searchsorted(tt, yellow, side="right") - 1  # last termination at or before yellow
    ok = (k >= 0) & (tt[np.maximum(k, 0)] >= green)
    out[ok] = tc[k[ok]]
    return out


def red_to_red_cycles(ev: EventTable, phase: int) -> PhaseCycles:
    t, c = _phase_seq(ev, phase, (E.BEGIN_GREEN, E.BEGIN_YELLOW, E.END_YELLOW))
    k = _match(c, (E.END_YELLOW, E.BEGIN_GREEN, E.BEGIN_YELLOW, E.END_YELLOW))
    cyc = np.stack([t[k], t[k + 1], t[k + 2], t[k + 3]], axis=1) if len(k) else np.zeros((0, 4))
    return PhaseCycles(phase, cyc, _terminations(ev, phase, cyc[:, 1], cyc[:, 2]))


def green_to_green_cycles(ev: EventTable, phase: int) -> PhaseCycles:
    t, c = _phase_seq(ev, phase, (E.BEGIN_GREEN, E.BEGIN_YELLOW, E.END_YELLOW))
    k = _match(c, (E.BEGIN_GREEN, E.BEGIN_YELLOW, E.END_YELLOW, E.BEGIN_GREEN))
    cyc = np.stack([t[k], t[k + 1], t[k + 2], t[k + 3]], axis=1) if len(k) else np.zeros((0, 4))
    return PhaseCycles(phase, cyc, _terminations(ev, phase, cyc[:, 0], cyc[:, 1]))


def yellow_red_cycles(ev: EventTable, phase: int) -> PhaseCycles:
    t, c = _phase_seq(ev, phase, (E.BEGIN_GREEN, E.BEGIN_YELLOW, E.END_YELLOW, E.END_RED_CLEARANCE))
    k = _match(c, (E.BEGIN_YELLOW, E.END_YELLOW, E.END_RED_CLEARANCE, E.BEGIN_GREEN))
    cyc = np.stack([t[k], t[k + 1], t[k + 2], t[k + 3]], axis=1) if len(k) else np.zeros((0, 4))
    return PhaseCycles(phase, cyc, np.zeros(len(cyc), np.int16))


def split_cycles(ev: EventTable, phase: int) -> PhaseCycles:
    """Green, yellow, red-clearance start and end of red clearance (end of yellow when 11 is not logged)."""
    t, c = _phase_seq(ev, phase, (E.BEGIN_GREEN, E.BEGIN_YELLOW, E.END_YELLOW, E.END_RED_CLEARANCE))
    k = _match(c, (E.BEGIN_GREEN, E.BEGIN_YELLOW, E.END_YELLOW))
    if not len(k):
        return PhaseCycles(phase, np.zeros((0, 4)), np.zeros(0, np.int16))
    nxt = np.minimum(k + 3, len(c) - 1)
    has_rc = (k + 3 < len(c)) & (c[nxt] == E.END_RED_CLEARANCE)
    end = np.where(has_rc, t[nxt], t[k + 2])
    cyc = np.stack([t[k], t[k + 1], t[k + 2], end], axis=1)
    return PhaseCycles(phase, cyc, _terminations(ev, phase, cyc[:, 0], cyc[:, 1]))


@dataclass(frozen=True)
class PlanIntervals:
    """Coordination plans in force (code 131): ``start_s``, ``end_s``, ``plan``; plan 0 = unknown/free."""

    start_s: np.ndarray
    end_s: np.ndarray
    plan: np.ndarray

    def __len__(self) -> int:
        return len(self.plan)

    def plan_at(self, t_s: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.start_s, np.asarray(t_s, float), side="right") - 1
        return self.plan[np.clip(k, 0, len(self.plan) - 1)]


def plan_intervals(ev: EventTable, start_s: float, end_s: float) -> PlanIntervals:
    m = ev.code == E.PATTERN_CHANGE
    t, p = ev.time_s[m], ev.param[m].astype(np.int64)
    keep = (t > start_s) & (t < end_s)
    before = p[t <= start_s]
    first = int(before[-1]) if len(before) else 0
    starts = np.concatenate([[start_s], t[keep]])
    plans = np.concatenate([[first], p[keep]])
    # Collapse repeats of the same pattern.
    new = np.concatenate([[True], plans[1:] != plans[:-1]])
    starts, plans = starts[new], plans[new]
    ends = np.concatenate([starts[1:], [end_s]])
    return PlanIntervals(starts, ends, plans)


def detector_on_times(ev: EventTable, channels: tuple[int, ...] | list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Times and channels of every detector-on (82) event of ``channels``."""
    m = (ev.code == E.DETECTOR_ON) & np.isin(ev.param, np.asarray(channels, np.int16))
    return ev.time_s[m], ev.param[m].astype(np.int64)


def detector_intervals(
    ev: EventTable, channels: tuple[int, ...] | list[int], start_s: float, end_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """On-intervals ``(on_s, off_s, channel)`` of the given channels.

    Each 82 (on) pairs with the next 81 (off) of the same channel; repeated
    ons or offs are ignored. An off with no on before it opens at
    ``start_s`` (the detector was on when the log began); an on with no off
    after it closes at ``end_s``.
    """
    ons, offs, chans = [], [], []
    m = ev.is_code(E.DETECTOR_ON, E.DETECTOR_OFF)
    t_all, c_all, p_all = ev.time_s[m], ev.code[m], ev.param[m]
    for ch in sorted(set(int(c) for c in channels)):
        sel = p_all == ch
        t, on = t_all[sel], c_all[sel] == E.DETECTOR_ON
        if not len(t):
            continue
        change = np.concatenate([[True], on[1:] != on[:-1]])
        t, on = t[change], on[change]
        if not on[0]:
            t, on = np.concatenate([[start_s], t]), np.concatenate([[True], on])
        if on[-1]:
            t, on = np.concatenate([t, [end_s]]), np.concatenate([on, [False]])
        ons.append(t[on])
        offs.append(t[~on])
        chans.append(np.full(int(on.sum()), ch))
    if not ons:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(ons), np.concatenate(offs), np.concatenate(chans)


def merge_intervals(on_s: np.ndarray, off_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals (lane-group presence: any detector of the group on)."""
    if not len(on_s):
        return np.zeros(0), np.zeros(0)
    o = np.argsort(on_s, kind="stable")
    a, b = on_s[o], off_s[o]
    reach = np.maximum.accumulate(b)
    new = np.concatenate([[True], a[1:] > reach[:-1]])
    gid = np.cumsum(new) - 1
    starts = a[new]
    ends = np.zeros(len(starts))
    np.maximum.at(ends, gid, b)
    return starts, ends


def occupied_time(on_s: np.ndarray, off_s: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Seconds of ``[a, b)`` covered by disjoint sorted intervals ``[on, off)``, for many windows at once.

    With F(x) the occupied time before x, the answer is F(b) - F(a): one
    ``searchsorted`` per window edge, O((I + W) log I).
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if not len(on_s):
        return np.zeros(np.broadcast(a, b).shape)
    length = off_s - on_s
    before = np.concatenate([[0.0], np.cumsum(length)])

    def f(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(on_s, x, side="right") - 1
        kk = np.maximum(k, 0)
        part = np.clip(x - on_s[kk], 0.0, length[kk])
        return np.where(k >= 0, before[kk] + part, 0.0)

    return f(b) - f(a)
