"""High-resolution controller events in the Indiana enumeration.

Every backend (SUMO runs, field emulators, real controllers' logs once
decoded) produces the same event stream, so signal performance measures are
computed once, identically for simulation and field data
(``../shared/reference/atspm-and-operations.md`` §1.1: Sturdevant et al.,
"Indiana Traffic Signal Hi Resolution Data Logger Enumerations", Purdue
JTRP 2012; the codes as used by UDOT ATSPM ``IndianaEnumerations.cs``).

Record shape, as the ATSPM tools and the Python ``atspm`` package read it:
``TimeStamp, DeviceId, EventId, Parameter`` — here with the timestamp as
ISO 8601 with milliseconds. The parameter is the NTCIP phase number of the
signal group (its ``phase``, or its position + 1 when unmapped) or the
detector channel (its ``channel``, or position + 1 within the intersection).

:class:`EventRecorder` derives the events from what the signals showed each
tick (vectorised diff of the state arrays, no per-group Python loop) and
keeps them in numpy chunks, not one object per event; :meth:`write_csv`
writes gzip-compressed CSV that pandas and DuckDB read directly.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import IntEnum
from pathlib import Path

import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import DetectorLayout
from intersections.model import Intersection, SignalState
from intersections.network import Network

__all__ = ["EventCode", "EventRecorder", "read_events_csv", "EPOCH", "phase_numbers", "detector_channels"]

EPOCH = datetime(2026, 1, 1)  # simulated time 0 maps here unless told otherwise
RED, YELLOW, GREEN, FLASH = (
    int(s) for s in (SignalState.RED, SignalState.YELLOW, SignalState.GREEN, SignalState.FLASH)
)


class EventCode(IntEnum):
    PHASE_ON = 0
    BEGIN_GREEN = 1
    MIN_COMPLETE = 3
    GAP_OUT = 4
    MAX_OUT = 5
    FORCE_OFF = 6
    GREEN_TERMINATION = 7
    BEGIN_YELLOW = 8
    END_YELLOW = 9
    BEGIN_RED_CLEARANCE = 10
    END_RED_CLEARANCE = 11
    PHASE_INACTIVE = 12
    BEGIN_WALK = 21
    BEGIN_PED_CLEARANCE = 22
    BEGIN_SOLID_DONT_WALK = 23
    PHASE_HOLD_ACTIVE = 41
    PHASE_HOLD_RELEASED = 42
    PHASE_CALL_REGISTERED = 43
    PHASE_CALL_DROPPED = 44
    DETECTOR_OFF = 81
    DETECTOR_ON = 82
    DETECTOR_RESTORED = 83
    DETECTOR_FAULT_OTHER = 84
    PED_DETECTOR_OFF = 89
    PED_DETECTOR_ON = 90
    PREEMPT_CALL_ON = 102
    PREEMPT_CALL_OFF = 104
    PREEMPT_ENTRY_STARTED = 105
    PREEMPT_BEGIN_DWELL = 107
    PREEMPT_BEGIN_EXIT = 111
    TSP_CHECK_IN = 112
    TSP_EARLY_GREEN = 113
    TSP_EXTEND_GREEN = 114
    TSP_CHECK_OUT = 115
    PATTERN_CHANGE = 131
    CYCLE_LENGTH_CHANGE = 132
    OFFSET_CHANGE = 133
    UNIT_FLASH_STATUS_CHANGE = 173
    UNIT_ALARM_STATUS_1_CHANGE = 174
    ALARM_ON = 200
    ALARM_OFF = 201


def phase_numbers(inter: Intersection) -> list[int]:
    """The event parameter of each signal group: its NTCIP phase, or its position + 1 when unmapped."""
    return [grp.phase or (k + 1) for k, grp in enumerate(inter.groups)]


def detector_channels(inter: Intersection) -> list[int]:
    """The event parameter of each detector: its channel, or its position + 1 within the intersection."""
    return [d.channel or (k + 1) for k, d in enumerate(inter.detectors)]


def _phase_numbers(network: Network, packed: PackedNetwork) -> np.ndarray:
    out = np.zeros((packed.n, packed.g), np.int16)
    for r, inter in enumerate(network.intersections):
        ph = phase_numbers(inter)
        out[r, : len(ph)] = ph
    return out


def _channels(network: Network) -> np.ndarray:
    return np.asarray([c for inter in network.intersections for c in detector_channels(inter)], np.int16)


class EventRecorder:
    """Turns per-tick signal states and detector presence into Indiana events."""

    def __init__(self, network: Network, packed: PackedNetwork, layout: DetectorLayout, *, epoch: datetime = EPOCH):
        self.ids = packed.ids
        self.packed = packed
        self.layout = layout
        self.epoch = epoch
        self.phase = _phase_numbers(network, packed)
        self.channel = _channels(network)
        self.is_ped = packed.is_pedestrian
        self.all_red_s = packed.all_red_s
        self.ped_clear_s = np.zeros((packed.n, packed.g))
        for r, inter in enumerate(network.intersections):
            for k, grp in enumerate(inter.groups):
                self.ped_clear_s[r, k] = grp.ped_clearance_s
        self._prev: np.ndarray | None = None
        self._red_s = np.full((packed.n, packed.g), np.inf)  # time since the group went red
        self._det_on = np.zeros(len(layout.ids), bool)
        self._chunks: list[np.ndarray] = []  # rows: time_s, row, code, param

    # ------------------------------------------------------------------
    def _emit(self, t: np.ndarray | float, rows: np.ndarray, codes: np.ndarray | int, params: np.ndarray) -> None:
        if rows.size == 0:
            return
        chunk = np.empty((rows.size, 4))
        chunk[:, 0] = t
        chunk[:, 1] = rows
        chunk[:, 2] = codes
        chunk[:, 3] = params
        self._chunks.append(chunk)

    def emit(self, time_s: float, row: int, code: EventCode | int, param: int) -> None:
        """One event from outside the state diff (preemption, pattern change, alarm)."""
        self._emit(time_s, np.array([row]), int(code), np.array([param]))

    def record(
        self,
        time_s: float,
        states: np.ndarray,
        presence: np.ndarray | None = None,
        dt_s: float = 1.0,
        termination: np.ndarray | None = None,
        ended_groups: np.ndarray | None = None,
    ) -> None:
        """Diff this tick's states against the previous tick's and log the changes.

        ``termination`` (N,) is a policy's reason code for ending the current
        stage this tick (GAP_OUT / MAX_OUT / FORCE_OFF, 0 for none); it is
        logged for the groups that leave green.
        """
        prev = self._prev if self._prev is not None else np.full_like(states, RED)
        valid = self.packed.group_valid
        veh = valid & ~self.is_ped
        ped = valid & self.is_ped
        ph = self.phase
        began_green = (states == GREEN) & (prev != GREEN) & valid
        r, g = np.nonzero(began_green & veh)
        self._emit(time_s, r, EventCode.BEGIN_GREEN, ph[r, g])
        r, g = np.nonzero(began_green & ped)
        self._emit(time_s, r, EventCode.BEGIN_WALK, ph[r, g])
        ended = (prev == GREEN) & (states != GREEN) & valid
        if termination is not None:
            term = np.broadcast_to(np.asarray(termination)[:, None], states.shape)
            r, g = np.nonzero(ended & veh & (term > 0))
            self._emit(time_s, r, term[r, g], ph[r, g])
        r, g = np.nonzero(ended & veh & (states == YELLOW))
        self._emit(time_s, r, EventCode.BEGIN_YELLOW, ph[r, g])
        r, g = np.nonzero(ended & ped)
        self._emit(time_s, r, EventCode.BEGIN_PED_CLEARANCE, ph[r, g])
        end_y = (prev == YELLOW) & (states != YELLOW) & veh
        r, g = np.nonzero(end_y)
        self._emit(time_s, r, EventCode.END_YELLOW, ph[r, g])
        r, g = np.nonzero(end_y & (states == RED))
        self._emit(time_s, r, EventCode.BEGIN_RED_CLEARANCE, ph[r, g])
        # Red clearance ends all_red_s after the yellow (pedestrians: clearance after WALK).
        went_red = (states == RED) & (prev != RED) & valid
        before = self._red_s.copy()
        self._red_s = np.where(states == RED, np.where(went_red, 0.0, self._red_s + dt_s), np.inf)
        limit = np.where(self.is_ped, self.ped_clear_s, self.all_red_s)
        crossed = (states == RED) & (before < limit) & (self._red_s >= limit) & ~went_red
        crossed |= went_red & (limit <= 0)
        r, g = np.nonzero(crossed & veh)
        self._emit(time_s, r, EventCode.END_RED_CLEARANCE, ph[r, g])
        r, g = np.nonzero(crossed & ped)
        self._emit(time_s, r, EventCode.BEGIN_SOLID_DONT_WALK, ph[r, g])
        flash_change = ((states == FLASH) != (prev == FLASH)).any(axis=1) & valid.any(axis=1)
        rows = np.flatnonzero(flash_change)
        self._emit(time_s, rows, EventCode.UNIT_FLASH_STATUS_CHANGE, (states[rows] == FLASH).any(axis=1).astype(int))
        self._prev = states.copy()
        if presence is not None and presence.size:
            on = np.asarray(presence, bool)
            lay = self.layout
            k = np.flatnonzero(on & ~self._det_on)
            self._emit(time_s, lay.row[k], EventCode.DETECTOR_ON, self.channel[k])
            k = np.flatnonzero(~on & self._det_on)
            self._emit(time_s, lay.row[k], EventCode.DETECTOR_OFF, self.channel[k])
            self._det_on = on

    # ------------------------------------------------------------------
    def table(self) -> np.ndarray:
        """All events as an (E, 4) float array: time_s, row, code, param (time-ordered)."""
        if not self._chunks:
            return np.zeros((0, 4))
        allev = np.concatenate(self._chunks)
        return allev[np.lexsort((allev[:, 2], allev[:, 0]))]

    def __len__(self) -> int:
        return int(sum(c.shape[0] for c in self._chunks))

    def write_csv(self, path: str | Path, *, device_ids: Sequence[str] | None = None) -> Path:
        """gzip CSV with the ATSPM columns ``TimeStamp,DeviceId,EventId,Parameter``."""
        ids = list(device_ids or self.ids)
        ev = self.table()
        p = Path(path)
        with gzip.open(p, "wt", encoding="utf-8", newline="") as f:
            f.write("TimeStamp,DeviceId,EventId,Parameter\n")
            for t, row, code, param in ev:
                ts = self.epoch + timedelta(seconds=float(t))
                f.write(f"{ts.isoformat(timespec='milliseconds')},{ids[int(row)]},{int(code)},{int(param)}\n")
        return p


def read_events_csv(path: str | Path) -> Iterable[tuple[datetime, str, int, int]]:
    """Read back what :meth:`EventRecorder.write_csv` wrote (no pandas needed)."""
    with gzip.open(Path(path), "rt", encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if header != ["TimeStamp", "DeviceId", "EventId", "Parameter"]:
            raise ValueError(f"{path}: not a greenwave/ATSPM event file (header {header})")
        for line in f:
            ts, dev, code, param = line.rstrip("\n").split(",")
            yield datetime.fromisoformat(ts), dev, int(code), int(param)
