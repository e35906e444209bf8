"""The field side of NTCIP 1202: an SNMP agent per emulated controller.

:class:`RowMib` is one controller's MIB view over the emulator's local
controller: phase status groups from the outputs it shows, the volume /
occupancy report from its detectors, unit and coordination status from its
mode, phase timings and concurrency from the inventory (read-only: the
emulator has no database download), and the control objects central SETs
(phase control hold / force-off / omit / vehicle call, ``systemPatternControl``,
pattern and split rows).

NTCIP semantics kept (``../shared/reference/field-io.md`` §1.4, §1.8, §1.12):
control objects keep their values until SET again, so a standard central may
SET ``systemPatternControl`` alone (a plan call, and re-SET within
``unitBackupTime`` the heartbeat) or one phase-control group at a time (hold,
force-off, omit, call); greenwave's own block (all of them in one PDU) is an
optimisation, not a requirement. A PDU is applied all-or-nothing (RFC 1157
§4.1.5); every SET of a system-control parameter resets the backup timer; when
it expires the controller reverts to backup mode and its control objects read
0. Stricter than the standard, for safety: flash and free (254/255) are refused
from central, and an inconsistent pattern is refused rather than run "Free";
after backup mode, control returns only after ``resume_heartbeats`` SETs and a
new command. The whole ASC MIB of the reference table is answered (see
docs/field.md, "What the emulator's agent answers").

Transports: SNMPv1/v2c through the lean codec of :mod:`field_io.ntcip.ber`
(one asyncio UDP endpoint per controller); SNMPv3 USM authPriv through a
pysnmp engine with a custom MIB instrumentation that calls the same
:class:`RowMib`.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import socket
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np

from field_io.commands import CommandBlock, CommandKind, ControllerMode, RejectReason, StatusBits
from field_io.emulator.core import LocalController
from field_io.mapping import FieldMap, queue_to_wire
from field_io.ntcip import ber
from field_io.ntcip.ber import ErrorStatus
from field_io.ntcip.codec import (
    masks_to_phases,
    occupancy_to_ntcip,
    pattern_to_plan,
    phase_control_block,
    phase_groups,
    plan_to_pattern,
    volume_to_ntcip,
)
from field_io.ntcip.oids import ASC, OBJECTS, SYSTEM_CONTROL
from field_io.ntcip.profiles import VendorProfile, vendor_profile
from field_io.security import SnmpCredentials
from intersections.errors import ProtocolError
from intersections.model import SignalState
from intersections.plan import TimingPlan

__all__ = ["RowMib", "SnmpAgent", "start_agents", "SnmpError"]

log = logging.getLogger("greenwave.field.ntcip")

GREEN, YELLOW, RED, FLASH = (
    int(s) for s in (SignalState.GREEN, SignalState.YELLOW, SignalState.RED, SignalState.FLASH)
)
# NTCIP 1202 unitControlStatus / unitFlashStatus enumerations (field-io.md §1.8).
SYSTEM_CONTROL_STATUS, BACKUP_MODE, MANUAL, TIMEBASE = 2, 4, 5, 6
NOT_FLASH, FLASH_AUTOMATIC, FLASH_LOCAL_MANUAL, FLASH_MMU = 2, 3, 4, 6
FREE, FLASH_PATTERN = 254, 255

_CONTROL = ("phaseControlGroupHold", "phaseControlGroupForceOff", "phaseControlGroupVehCall")
_WRITABLE = {
    "phaseControlGroupHold",
    "phaseControlGroupForceOff",
    "phaseControlGroupVehCall",
    "phaseControlGroupPedCall",
    "phaseControlGroupPhaseOmit",
    "phaseControlGroupPedOmit",
    "systemPatternControl",
    "patternCycleTime",
    "patternOffsetTime",
    "patternSplitNumber",
    "patternSequenceNumber",
    "splitTime",
    "splitMode",
    "splitCoordPhase",
    "gwLockstepStep",
}
MAX_PATTERNS = 16
_PHASE_OBJECTS = (
    "phaseWalk",
    "phasePedestrianClear",
    "phaseMinimumGreen",
    "phaseMaximum1",
    "phaseYellowChange",
    "phaseRedClear",
    "phaseRing",
    "phaseConcurrency",
    "phaseOptions",
)
_STATUS_KEYS = {
    "Reds": "reds",
    "Yellows": "yellows",
    "Greens": "greens",
    "Walks": "walks",
    "PedClears": "pedclears",
    "DontWalks": "dontwalks",
    "PhaseOns": "ons",
    "VehCalls": "vehcalls",
    "PedCalls": "pedcalls",
    "PhaseNexts": "nexts",
}


#: Table index columns: which part of the instance they read back.
_INDEX_COLUMNS = {
    **{n: 0 for n in ("phaseNumber", "phaseStatusGroupNumber", "phaseControlGroupNumber", "vehicleDetectorNumber",
                      "vehicleDetectorStatusGroupNumber", "pedestrianDetectorNumber", "alarmGroupNumber",
                      "specialFunctionOutputNumber", "patternNumber", "splitNumber", "timebaseAscActionNumber",
                      "preemptNumber", "preemptControlNumber", "sequenceNumber", "ringControlGroupNumber",
                      "channelNumber", "channelStatusGroupNumber", "overlapNumber", "overlapStatusGroupNumber",
                      "port1Number")},
    "splitPhase": 1,
    "sequenceRingNumber": 1,
}  # fmt: skip
#: Fixed answers (NTCIP 1202 v02 enumerations, field-io.md §1.6, §1.8); anything not here and not live reads 0.
_CONSTANTS = {
    "unitAutoPedestrianClear": 1,  # disable
    "maxAlarmGroups": 1,
    "maxSpecialFunctionOutputs": 1,
    "coordCorrectionMode": 1,  # other: the fixed-time policy jumps to the new offset at the next cycle
    "coordMaximumMode": 2,  # maximum1
    "coordForceMode": 3,  # fixed
    "patternTableType": 2,  # patterns
    "maxTimebaseAscActions": 1,
    "timebaseAscActionStatus": 1,  # action 1 (the local plan) in effect
    "maxSequences": 1,
    "maxRingControlGroups": 1,
    "maxOverlaps": 1,
    "maxOverlapStatusGroups": 1,
    "overlapType": 2,  # normal, with no included phase: never on
    "maxPort1Addresses": 0,
}


class SnmpError(ProtocolError):
    """A SET refused: ``status`` (RFC 3416 error-status) at varbind ``index`` (0-based)."""

    def __init__(self, status: ErrorStatus, index: int) -> None:
        super().__init__(ber.ERROR_NAMES.get(status, str(status)))
        self.status = int(status)
        self.index = index


# v2c error-status -> v1 (RFC 2576 §4.3)
_V1 = {6: 2, 7: 3, 8: 3, 9: 3, 10: 3, 11: 2, 12: 3, 13: 5, 14: 5, 15: 5, 16: 2, 17: 2, 18: 2}


#: vehicleDetectorAlarms bits by emulated fault kind: stuck -> max presence, silent -> no activity, chatter -> erratic.
_ALARM_BITS = {1: 1 << 1, 2: 1 << 0, 3: 1 << 2}
#: Per emulator core: (tick key, snapshot, the farm's encodings of that tick) - see RowMib._farm_values.
_FARM_CACHE: weakref.WeakKeyDictionary[LocalController, tuple[Any, Any, Any]] = weakref.WeakKeyDictionary()


class RowMib:
    """One emulated controller's MIB (see the module docstring)."""

    def __init__(self, core: LocalController, row: int, profile: VendorProfile) -> None:
        self.core = core
        self.row = row
        self.profile = profile
        self.fmap: FieldMap = core.maps[row]
        fm = self.fmap
        self.groups = phase_groups(fm.max_phase)
        others = ("phaseControlGroupPedCall", "phaseControlGroupPhaseOmit", "phaseControlGroupPedOmit")
        self.control = {name: [0] * self.groups for name in (*_CONTROL, *others)}
        self.pattern_control = 0
        self.patterns: dict[int, list[int]] = {p: [0, 0, p, 1] for p in range(1, MAX_PATTERNS + 1)}
        self.splits: dict[tuple[int, int], list[int]] = {}
        self.set_counter = 0
        self.seq = 0
        self.last_content: tuple | None = None
        self._cache_tick = -2
        self._cache: dict[str, Any] = {}
        self._static_cache: tuple[Any, Any, np.ndarray] | None = None
        self._requests = 0
        self.mutations = 0  # bumped by every SET: invalidates cached GET answers
        self._compiled: dict[tuple[int, ...], Callable[[], ber.Value]] = {}
        self._mode_key: tuple[int, int] | None = None
        self._mode_cache = (0, 0, 0)
        self._word_key: tuple[int, int] | None = None
        self._word = 0
        self._simple = self._make_simple()
        self._object_oids: set[tuple[int, ...]] = set()
        self._build_table()

    # ---- the object table ------------------------------------------------------------------------
    def _build_table(self) -> None:
        fm, prof = self.fmap, self.profile
        rows: dict[tuple[int, ...], tuple[str, tuple[int, ...]]] = {}

        def add(name: str, *idx: int) -> None:
            o = OBJECTS[name]
            oid = prof.scalar(o.oid) if o.scalar else (*o.oid, *idx)
            rows[oid] = (name, idx)

        for name in ("sysDescr", "sysObjectID", "sysUpTime", "sysName", "controllerBaseStandards", "globalTime"):
            add(name)
        for name in ("moduleMake", "moduleModel", "moduleVersion"):
            add(name, 1)
        for name in ("maxPhases", "maxPhaseGroups", "maxVehicleDetectors", "maxPatterns", "maxSplits"):
            add(name)
        for p in range(1, fm.max_phase + 1):
            for name in _PHASE_OBJECTS:
                add(name, p)
        for g in range(1, self.groups + 1):
            for o in OBJECTS.values():
                if o.name.startswith(("phaseStatusGroup", "phaseControlGroup")):
                    add(o.name, g)
        for name in ("volumeOccupancySequence", "volumeOccupancyPeriod", "activeVolumeOccupancyDetectors"):
            add(name)
        for c in range(1, fm.max_channel + 1):
            add("detectorVolume", c)
            add("detectorOccupancy", c)
            add("vehicleDetectorCallPhase", c)
        for name in ("unitBackupTime", "unitControlStatus", "unitFlashStatus", "unitAlarmStatus1", "shortAlarmStatus"):
            add(name)
        for name in ("coordPatternStatus", "localFreeStatus", "coordCycleStatus", "systemPatternControl"):
            add(name)
        for pat in range(1, MAX_PATTERNS + 1):
            for name in ("patternCycleTime", "patternOffsetTime", "patternSplitNumber", "patternSequenceNumber"):
                add(name, pat)
            for p in range(1, fm.max_phase + 1):
                for name in ("splitTime", "splitMode", "splitCoordPhase"):
                    add(name, pat, p)
        # Every other object of the ASC MIB (field-io.md §1.2-§1.10), each table with its rows.
        done = {name for name, _idx in rows.values()}
        for o in OBJECTS.values():
            if o.name in done or o.oid[: len(ASC)] != ASC:
                continue
            if o.scalar:
                add(o.name)
            else:
                for idx in self._rows_of(o.oid[len(ASC) : -1]):
                    add(o.name, *idx)
        if prof.greenwave_extension:
            for o in OBJECTS.values():
                if o.name.startswith("gw") and o.scalar:
                    add(o.name)
            for g in range(1, fm.n_groups + 1):
                add("gwGroupQueue", g)
        self.table = rows
        self.sorted_oids = sorted(rows)

    @property
    def n_rings(self) -> int:
        """Rings of the phasing: a stage's k-th phase (in number order) runs in ring k (see ``phaseRing``)."""
        return max((len(ph) for ph in self.fmap.stage_phases), default=1) or 1

    @property
    def ped_groups(self) -> list[int]:
        """Inventory indices of the pedestrian groups (one pedestrian detector / push button each)."""
        return [k for k, g in enumerate(self.fmap.intersection.groups) if g.is_pedestrian]

    def _rows_of(self, entry: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The instances of the table whose entry is ``ASC.<entry>`` (one emulated controller's sizes)."""
        fm = self.fmap
        one: list[tuple[int, ...]] = [(1,)]
        sizes: dict[tuple[int, ...], list[tuple[int, ...]]] = {
            (1, 2, 1): [(p,) for p in range(1, fm.max_phase + 1)],
            (1, 4, 1): [(g,) for g in range(1, self.groups + 1)],
            (1, 5, 1): [(g,) for g in range(1, self.groups + 1)],
            (2, 2, 1): [(c,) for c in range(1, fm.max_channel + 1)],
            (2, 4, 1): [(g,) for g in range(1, phase_groups(fm.max_channel) + 1)],
            (2, 5, 4, 1): [(c,) for c in range(1, fm.max_channel + 1)],
            (2, 7, 1): [(k,) for k in range(1, len(self.ped_groups) + 1)],
            (4, 7, 1): [(p,) for p in range(1, MAX_PATTERNS + 1)],
            (4, 9, 1): [(s, p) for s in range(1, MAX_PATTERNS + 1) for p in range(1, fm.max_phase + 1)],
            (7, 3, 1): [(1, ring) for ring in range(1, self.n_rings + 1)],
            (8, 2, 1): [(c,) for c in range(1, fm.n_groups + 1)],
            (8, 4, 1): [(g,) for g in range(1, phase_groups(fm.n_groups) + 1)],
            (6, 2, 1): [(k,) for k in range(1, len(self.core.preempts) + 1)],
            (6, 3, 1): [(k,) for k in range(1, len(self.core.preempts) + 1)],
            (10, 2, 1): [],  # no TS2 port 1 devices: maxPort1Addresses is 0
        }
        return sizes.get(entry, one)

    # ---- per-tick values --------------------------------------------------------------------------------
    def _static(self) -> tuple[list[tuple[int, int, int, int, int, bool]], list[tuple[int, int, int, int]], np.ndarray]:
        """What the per-tick status needs of the inventory, computed once per controller.

        Groups: (index, phase, phase group, bit, channel group, pedestrian); detectors: (channel,
        channel group, bit, phase of the detector's signal group); and this row's detector indices.
        """
        if self._static_cache is None:
            fm = self.fmap
            inter = fm.intersection
            groups = []
            for k, grp in enumerate(inter.groups):
                p = int(fm.phase[k])
                g, bit = divmod(p - 1, 8)
                groups.append((k, p, g, bit, k, grp.is_pedestrian))
            dets = []
            for d, c in zip(inter.detectors, fm.channel.tolist(), strict=True):
                g, bit = divmod(int(c) - 1, 8)
                dets.append((int(c), g, bit, int(fm.phase[inter.group_index(d.group)])))
            self._static_cache = (groups, dets, np.flatnonzero(self.core.layout.row == self.row))
        return self._static_cache

    def _farm_values(self) -> tuple[list[int], list[int], list[int], list[float], list[list[int]]]:
        """This tick's detector and queue encodings for every controller of the core at once.

        (volume, occupancy, fault kind per detector; queue per group, flattened; the group count per
        row): one numpy pass per tick for the whole farm instead of a handful per controller.
        """
        core = self.core
        snap = core.snapshot
        key = (snap.tick, snap.done, self.profile.occupancy_full_scale)
        hit = _FARM_CACHE.get(core)
        if hit is not None and hit[0] == key and hit[1] is snap:
            return hit[2]
        vals = (
            volume_to_ntcip(snap.period_count).tolist(),
            occupancy_to_ntcip(snap.occupancy, self.profile.occupancy_full_scale).tolist(),
            core._fault_kind.tolist(),
            snap.occupancy.tolist(),
            queue_to_wire(snap.queue_veh).tolist(),
        )
        _FARM_CACHE[core] = (key, snap, vals)
        return vals

    def _tick_values(self) -> dict[str, Any]:
        snap = self.core.snapshot
        if snap.tick == self._cache_tick and not snap.done:
            return self._cache
        fm, r = self.fmap, self.row
        groups, dets, rows = self._static()
        vol_all, occw_all, fk_all, occ_all, queue_all = self._farm_values()
        states = snap.group_state[r, : fm.n_groups].tolist()
        ped_call = self.core.ped_call[r].tolist()
        n = self.groups
        reds, yellows, greens, walks, pedclears, dontwalks, ons, vehcalls, pedcalls, nexts = (
            [0] * n for _ in range(10)
        )
        nch = phase_groups(fm.n_groups)
        chan = {"reds": [0] * nch, "yellows": [0] * nch, "greens": [0] * nch}
        called = {ph for (_c, _g, _b, ph), k in zip(dets, rows.tolist(), strict=True) if occ_all[k] > 0}
        tgt = int(snap.target[r])
        upcoming = fm.stage_phases[tgt] if int(snap.stage[r]) < 0 and 0 <= tgt < fm.n_stages else frozenset()
        for k, p, g, bit, ch, is_ped in groups:
            s = states[k]
            m = 1 << bit
            cg, cbit = divmod(ch, 8)  # channel k + 1 drives group k's load switch
            chan["greens" if s == GREEN else "yellows" if s == YELLOW else "reds"][cg] |= 1 << cbit
            if is_ped:
                (walks if s == GREEN else pedclears if s == YELLOW else dontwalks)[g] |= m
                if ped_call[k]:
                    pedcalls[g] |= m
                continue
            (greens if s == GREEN else yellows if s == YELLOW else reds)[g] |= m
            if s == GREEN or s == YELLOW:
                ons[g] |= m
            if s != GREEN:
                if p in called:
                    vehcalls[g] |= m
                if p in upcoming:
                    nexts[g] |= m
        nd = phase_groups(fm.max_channel)
        active, alarm_groups = [0] * nd, [0] * nd
        alarms = {}
        vol_by_ch, occ_by_ch = {}, {}
        for (c, g, bit, _ph), k in zip(dets, rows.tolist(), strict=True):
            if occ_all[k] > 0:
                active[g] |= 1 << bit
            f = fk_all[k]
            if f:
                alarm_groups[g] |= 1 << bit
                alarms[c] = _ALARM_BITS[f]
            vol_by_ch[c] = vol_all[k]
            occ_by_ch[c] = occw_all[k]
        qw = queue_all[r][: fm.n_groups]
        self._cache = {
            "queue": qw,
            "masks": {
                "reds": reds,
                "yellows": yellows,
                "greens": greens,
                "walks": walks,
                "pedclears": pedclears,
                "dontwalks": dontwalks,
                "ons": ons,
                "vehcalls": vehcalls,
                "pedcalls": pedcalls,
                "nexts": nexts,
            },
            "channels": chan,
            "detectors": {"active": active, "alarms": alarm_groups},
            "alarms": alarms,
            "volume": vol_by_ch,
            "occupancy": occ_by_ch,
            "seq": snap.detector_sequence % 256,
            "stage": int(snap.stage[r]),
            "timer": float(snap.stage_timer_s[r]),
            "tick": snap.tick,
            "clock": snap.plan_clock_s,
        }
        self._cache_tick = snap.tick
        return self._cache

    def _phase_group(self, p: int, kind: str) -> Any:
        """The inventory group of phase ``p`` (vehicle first), for timing objects."""
        fm = self.fmap
        found = None
        for k, grp in enumerate(fm.intersection.groups):
            if int(fm.phase[k]) != p:
                continue
            if grp.is_pedestrian == (kind == "ped"):
                return grp
            found = found or grp
        return found

    def _mode_values(self) -> tuple[int, int, int]:
        """(unitControlStatus, unitFlashStatus, coordPatternStatus)."""
        core, r = self.core, self.row
        mode = int(core.mode[r])
        if mode == ControllerMode.FAULT:
            return TIMEBASE, FLASH_MMU, FLASH_PATTERN
        if core.local_flash[r]:
            return MANUAL, FLASH_LOCAL_MANUAL, FLASH_PATTERN
        if mode == ControllerMode.FLASH:
            return TIMEBASE, FLASH_AUTOMATIC, FLASH_PATTERN
        if core.in_control[r]:
            pat = self.profile.central_pattern if mode == ControllerMode.CENTRAL_PLAN else FREE
            return SYSTEM_CONTROL_STATUS, NOT_FLASH, pat
        if core.fallback[r]:
            return BACKUP_MODE, NOT_FLASH, self.profile.fallback_pattern
        return TIMEBASE, NOT_FLASH, self.profile.fallback_pattern

    def _pattern_row(self, pat: int) -> tuple[list[int], dict[int, int]]:
        """(cycle, offset, split number, sequence) and splits of a pattern; the fallback row from the stored plan."""
        if pat == self.profile.fallback_pattern:
            plan = self.core.fallback_plans[self.fmap.id]
            try:
                cycle, offset, splits = plan_to_pattern(plan, self.fmap)
            except Exception:
                cycle, offset = round(plan.cycle_s), round(plan.offset_s)
                splits = {}
            return [cycle, offset, pat, 1], splits
        row = self.patterns[pat]
        return row, {p: self.splits.get((row[2], p), [0, 0, 0])[0] for p in self.fmap.phases}

    def value(self, name: str, idx: tuple[int, ...]) -> ber.Value:
        core, r, fm, prof = self.core, self.row, self.fmap, self.profile
        INT = ber.INTEGER
        if name in _INDEX_COLUMNS:
            return (INT, idx[_INDEX_COLUMNS[name]])
        if name.startswith("phaseStatusGroup"):
            tv = self._tick_values()
            key = _STATUS_KEYS.get(name[len("phaseStatusGroup") :])
            return (INT, tv["masks"][key][idx[0] - 1] if key else 0)
        if name in self.control:
            return (INT, self.control[name][idx[0] - 1] if not core.fallback[r] or core.in_control[r] else 0)
        if name in ("detectorVolume", "detectorOccupancy"):
            tv = self._tick_values()
            d = tv["volume" if name == "detectorVolume" else "occupancy"]
            return (INT, d.get(idx[0], 0))
        if name == "volumeOccupancySequence":
            return (INT, self._tick_values()["seq"])
        if name == "gwGroupQueue":
            return (INT, self._tick_values()["queue"][idx[0] - 1])
        if name in ("volumeOccupancyPeriod",):
            return (INT, max(1, round(core.config.dt_s)))
        if name == "activeVolumeOccupancyDetectors":
            return (INT, fm.n_detectors)
        if name == "vehicleDetectorCallPhase":
            for k, c in enumerate(fm.channel):
                if int(c) == idx[0]:
                    grp = fm.intersection.detectors[k].group
                    return (INT, int(fm.phase[fm.intersection.group_index(grp)]))
            return (INT, 0)
        if name in _PHASE_OBJECTS:
            return self._phase_value(name, idx[0])
        if name in ("patternCycleTime", "patternOffsetTime", "patternSplitNumber", "patternSequenceNumber"):
            row, _ = self._pattern_row(idx[0])
            i = ("patternCycleTime", "patternOffsetTime", "patternSplitNumber", "patternSequenceNumber").index(name)
            return (INT, int(row[i]))
        if name in ("splitTime", "splitMode", "splitCoordPhase"):
            split_no, p = idx
            if split_no == prof.fallback_pattern:
                _, splits = self._pattern_row(prof.fallback_pattern)
                return (INT, int(splits.get(p, 0)) if name == "splitTime" else (2 if name == "splitMode" else 0))
            v = self.splits.get((split_no, p), [0, 0, 0])
            return (INT, int(v[("splitTime", "splitMode", "splitCoordPhase").index(name)]))
        if name in self._simple:
            return self._simple[name]()
        return self._more_value(name, idx)

    def _more_value(self, name: str, idx: tuple[int, ...]) -> ber.Value:
        """The rest of the ASC MIB: index columns, live status, and the configuration the emulator runs.

        Configuration the emulator does not model reads as the value that
        means "not used" in the MIB (0 for times and counts, ``other`` or the
        fixed-time choice for enumerations), so that a central's database
        upload sees a consistent, honest controller.
        """
        fm, prof = self.fmap, self.profile
        INT, OCT = ber.INTEGER, ber.OCTET_STRING
        if name in _INDEX_COLUMNS:
            return (INT, idx[_INDEX_COLUMNS[name]])
        tv = self._tick_values
        if name.startswith("channelStatusGroup"):
            return (INT, tv()["channels"][name[len("channelStatusGroup") :].lower()][idx[0] - 1])
        if name == "vehicleDetectorStatusGroupActive":
            return (INT, tv()["detectors"]["active"][idx[0] - 1])
        if name == "vehicleDetectorStatusGroupAlarms":
            return (INT, tv()["detectors"]["alarms"][idx[0] - 1])
        if name == "vehicleDetectorAlarms":
            return (INT, tv()["alarms"].get(idx[0], 0))
        if name == "vehicleDetectorOptions":
            return (INT, 0b1000_0011 if idx[0] in set(int(c) for c in fm.channel) else 0)  # volume, occupancy, call
        if name == "pedestrianDetectorCallPhase":
            return (INT, int(fm.phase[self.ped_groups[idx[0] - 1]]))
        if name == "phaseMaximum2":
            return self._phase_value("phaseMaximum1", idx[0])
        if name == "phaseStartup":
            return (INT, 2 if self._phase_group(idx[0], "veh") or self._phase_group(idx[0], "ped") else 0)  # phaseNotOn
        if name == "sequenceData":
            ring = idx[1]
            order = [p for ph in fm.stage_phases for p in sorted(ph)[ring - 1 : ring]]
            return (OCT, bytes(dict.fromkeys(order)))
        if name == "channelControlSource":
            return (INT, int(fm.phase[idx[0] - 1]))
        if name == "channelControlType":
            return (INT, 3 if fm.intersection.groups[idx[0] - 1].is_pedestrian else 2)  # phasePedestrian / Vehicle
        if name in ("overlapIncludedPhases", "overlapModifierPhases"):
            return (OCT, b"")
        if name == "timebaseAscPattern":
            return (INT, prof.fallback_pattern)
        if name.startswith("preempt") and name not in ("preemptControl", "preemptControlState"):
            return self._preempt_value(name, idx[0] - 1)
        if name == "phaseControlGroupPhaseOmit" or name.startswith("phaseControlGroup"):
            return (INT, 0)
        return (INT, _CONSTANTS.get(name, 0))

    def _preempt_value(self, name: str, p: int) -> ber.Value:
        """A column of ``preemptTable`` for preempt ``p`` (0-based): the emulator's preempt table, live state.

        Times in whole seconds, rounded up (NTCIP 1202 ``preemptDelay`` 0-600 s,
        ``preemptMinimumDuration`` 0-65535 s, ``preemptTrackGreen`` / ``preemptDwellGreen``
        0-255 s); ``preemptLink`` 0 for none (field-io.md §1.9).
        """
        core, INT = self.core, ber.INTEGER
        cfg = core.preempts[p]
        if name == "preemptState":
            return (INT, int(core.preempt_state[self.row, p]))
        seconds = {
            "preemptDelay": cfg.delay_s,
            "preemptMinimumDuration": cfg.min_duration_s,
            "preemptTrackGreen": cfg.track_green_s,
            "preemptDwellGreen": cfg.min_dwell_s,
        }
        if name in seconds:
            return (INT, math.ceil(seconds[name] - 1e-9))
        if name == "preemptLink":
            return (INT, cfg.link)
        if name in ("preemptTrackPhase", "preemptDwellPhase"):
            stage = (core.preempt_track_stage if name == "preemptTrackPhase" else core.preempt_dwell_stage)[self.row, p]
            phases = sorted(self.fmap.stage_phases[int(stage)]) if self.fmap.n_stages else []
            return (INT, phases[0] if phases else 0)
        return (INT, _CONSTANTS.get(name, 0))

    def _make_simple(self) -> dict[str, Callable[[], ber.Value]]:
        """Scalar objects: name -> value function (built once)."""
        core, r, fm, prof = self.core, self.row, self.fmap, self.profile
        INT, OCT = ber.INTEGER, ber.OCTET_STRING
        return {
            "sysDescr": lambda: (OCT, f"greenwave emulated NTCIP 1202 controller ({prof.name})".encode()),
            "sysObjectID": lambda: (ber.OID, (1, 3, 6, 1, 4, 1, 32473, 1206, 100)),
            "sysUpTime": lambda: (ber.TIMETICKS, int((core.clock() - core._started) * 100) & 0xFFFFFFFF),
            "sysName": lambda: (OCT, fm.id.encode()),
            "controllerBaseStandards": lambda: (OCT, f"NTCIP 1201 v03; {prof.base_standard}".encode()),
            "globalTime": lambda: (ber.COUNTER32, int(core.wall_clock() + core.config.clock_offset_s) & 0xFFFFFFFF),
            "moduleMake": lambda: (OCT, b"greenwave"),
            "moduleModel": lambda: (OCT, b"field emulator"),
            "moduleVersion": lambda: (OCT, b"1.0"),
            "maxPhases": lambda: (INT, fm.max_phase),
            "maxPhaseGroups": lambda: (INT, self.groups),
            "maxVehicleDetectors": lambda: (INT, fm.max_channel),
            "maxPatterns": lambda: (INT, MAX_PATTERNS),
            "maxPreempts": lambda: (INT, len(core.preempts)),
            "maxSplits": lambda: (INT, MAX_PATTERNS),
            "unitBackupTime": lambda: (INT, math.ceil(core.config.backup_time_s)),
            "unitControlStatus": lambda: (INT, self._modes()[0]),
            "unitFlashStatus": lambda: (INT, self._modes()[1]),
            "unitAlarmStatus1": lambda: (INT, (1 << 5) if self._modes()[1] != NOT_FLASH else 0),
            "shortAlarmStatus": lambda: (INT, self._short_alarms()),
            "coordPatternStatus": lambda: (INT, self._modes()[2]),
            "localFreeStatus": lambda: (INT, 2),
            "coordCycleStatus": lambda: (INT, self._cycle_position()[0]),
            "coordSyncStatus": lambda: (INT, self._cycle_position()[1]),
            "systemSyncControl": lambda: (INT, 255),  # use the local time base
            "maxRings": lambda: (INT, self.n_rings),
            "maxChannels": lambda: (INT, fm.n_groups),
            "maxChannelStatusGroups": lambda: (INT, phase_groups(fm.n_groups)),
            "maxVehicleDetectorStatusGroups": lambda: (INT, phase_groups(fm.max_channel)),
            "maxPedestrianDetectors": lambda: (INT, len(self.ped_groups)),
            "systemPatternControl": lambda: (INT, self.pattern_control if core.in_control[r] else 0),
            "gwProfileVersion": lambda: (OCT, b"1.0"),
            "gwIntersectionId": lambda: (OCT, fm.id.encode()),
            "gwMode": lambda: (INT, int(core.mode[r])),
            "gwAcceptedSeq": lambda: (INT, int(core.accepted_seq[r])),
            "gwRejectedSeq": lambda: (INT, int(core.rejected_seq[r])),
            "gwRejectReason": lambda: (INT, int(core.reject_reason[r])),
            "gwCurrentStage": lambda: (INT, self._tick_values()["stage"] + 1),
            "gwStageTimer": lambda: (INT, round(self._tick_values()["timer"] * 10)),
            "gwTick": lambda: (INT, max(self._tick_values()["tick"], 0)),
            "gwLockstepStep": lambda: (INT, max(int(core.requested_step[r]), 0)),
            "gwStatusBits": lambda: (INT, self._status_word()),
            "gwPlanClock": lambda: (INT, round(self._tick_values()["clock"] * 10)),
            "gwHeartbeatAge": lambda: (INT, int(min(core.heartbeat_age_s()[r], 6553.5) * 10)),
            "gwCommissioning": lambda: (INT, int(bool(core.commissioning[r]))),
        }

    def _short_alarms(self) -> int:
        """NTCIP 1202 ``shortAlarmStatus``: bit 5 detector fault, bit 0 preempt (field-io.md §1.8)."""
        bits = self._status_word()
        return (32 if bits & StatusBits.DETECTOR_FAULT else 0) | (1 if bits & StatusBits.PREEMPT else 0)

    def _status_word(self) -> int:
        """The controller's status word, read once per request: ``shortAlarmStatus`` and ``gwStatusBits``
        of one answer come from the same reading (each read cost ~3 us, twice per status poll)."""
        key = (self.core.snapshot.tick, self._requests)
        if self._word_key != key:
            self._word = self.core.status_word(self.row)
            self._word_key = key
        return self._word

    def _cycle_position(self) -> tuple[int, int]:
        """(coordCycleStatus, coordSyncStatus) in whole seconds, 0 when no plan is timing (flash, stage control).

        NTCIP 1202 ``coordCycleStatus``: the position in the running
        pattern's cycle, counting down to 0; ``coordSyncStatus``: the time
        since the last system reference point, counting up (field-io.md §1.6).
        The plan clock is the controller's own; the offset is the running plan's.
        """
        core, r = self.core, self.row
        snap = core.snapshot
        cycle = float(snap.active_cycle_s[r]) if len(snap.active_cycle_s) > r else 0.0
        if cycle <= 0 or not hasattr(core, "plan_policy"):
            return 0, 0
        policy = core.plan_policy if int(core.mode[r]) == ControllerMode.CENTRAL_PLAN else core.fallback_policy
        since = (snap.plan_clock_s - float(policy.offset_s[r])) % cycle
        return math.ceil(cycle - since - 1e-9) % max(1, round(cycle)), int(since)

    def _modes(self) -> tuple[int, int, int]:
        key = (self.core.snapshot.tick, self._requests)
        if self._mode_key != key:
            self._mode_cache = self._mode_values()
            self._mode_key = key
        return self._mode_cache

    def _phase_value(self, name: str, p: int) -> ber.Value:
        fm = self.fmap
        veh = self._phase_group(p, "veh")
        ped = self._phase_group(p, "ped")
        if veh is None and ped is None:
            return (ber.OCTET_STRING, b"") if name == "phaseConcurrency" else (ber.INTEGER, 0)
        g = veh or ped
        if name == "phaseOptions":
            return (ber.INTEGER, 1)  # bit 0: enabled
        if name == "phaseMinimumGreen":
            return (ber.INTEGER, math.ceil(g.min_green_s - 1e-9))
        if name == "phaseMaximum1":
            return (ber.INTEGER, math.ceil(g.max_green_s - 1e-9))
        if name == "phaseYellowChange":
            return (ber.INTEGER, math.ceil(g.yellow_s * 10 - 1e-9))
        if name == "phaseRedClear":
            return (ber.INTEGER, math.ceil(g.all_red_s * 10 - 1e-9))
        if name == "phaseWalk":
            return (ber.INTEGER, math.ceil(ped.walk_s - 1e-9) if ped is not None else 0)
        if name == "phasePedestrianClear":
            return (ber.INTEGER, math.ceil(ped.ped_clearance_s - 1e-9) if ped is not None else 0)
        if name == "phaseRing":
            for ph in fm.stage_phases:
                if p in ph:
                    return (ber.INTEGER, sorted(ph).index(p) + 1)
            return (ber.INTEGER, 1)
        # phaseConcurrency: every phase whose vehicle group does not conflict with this one's.
        inter = fm.intersection
        k = inter.group_index(g.id)
        conc = []
        for q in fm.phases:
            if q == p:
                continue
            other = self._phase_group(q, "veh") or self._phase_group(q, "ped")
            if other is not None and not inter.conflicts[k, inter.group_index(other.id)]:
                conc.append(q)
        return (ber.OCTET_STRING, bytes(conc))

    # ---- GET / GETNEXT -------------------------------------------------------------------------------------
    def begin_request(self) -> None:
        self._requests += 1

    def compile(self, oid: tuple[int, ...]) -> Callable[[], ber.Value] | None:
        """A function that answers ``oid`` (hot status objects read the tick's precomputed values directly)."""
        hit = self._compiled.get(oid)
        if hit is not None:
            return hit
        entry = self.table.get(oid)
        if entry is None:
            return None
        name, idx = entry
        tv = self._tick_values
        INT = ber.INTEGER
        fn: Callable[[], ber.Value]
        if name.startswith("phaseStatusGroup") and _STATUS_KEYS.get(name[len("phaseStatusGroup") :]):
            key, g = _STATUS_KEYS[name[len("phaseStatusGroup") :]], idx[0] - 1
            fn = lambda: (INT, tv()["masks"][key][g])  # noqa: E731
        elif name == "detectorVolume":
            c = idx[0]
            fn = lambda: (INT, tv()["volume"].get(c, 0))  # noqa: E731
        elif name == "detectorOccupancy":
            c = idx[0]
            fn = lambda: (INT, tv()["occupancy"].get(c, 0))  # noqa: E731
        elif name == "volumeOccupancySequence":
            fn = lambda: (INT, tv()["seq"])  # noqa: E731
        elif name == "gwGroupQueue":
            g = idx[0] - 1
            fn = lambda: (INT, tv()["queue"][g])  # noqa: E731
        elif name in self._simple:
            fn = self._simple[name]
        else:
            fn = lambda: self.value(name, idx)  # noqa: E731
        self._compiled[oid] = fn
        return fn

    def compile_tick(self, oid: tuple[int, ...]) -> Callable[[dict[str, Any]], ber.Value] | None:
        """Like :meth:`compile`, as a function of this tick's values (:meth:`_tick_values`, fetched once
        per request by the caller instead of once per object)."""
        entry = self.table.get(oid)
        if entry is None:
            return None
        name, idx = entry
        INT = ber.INTEGER
        suffix = name[len("phaseStatusGroup") :] if name.startswith("phaseStatusGroup") else ""
        if _STATUS_KEYS.get(suffix):
            key, g = _STATUS_KEYS[suffix], idx[0] - 1
            return lambda tv: (INT, tv["masks"][key][g])
        if name in ("detectorVolume", "detectorOccupancy"):
            c, col = idx[0], "volume" if name == "detectorVolume" else "occupancy"
            return lambda tv: (INT, tv[col].get(c, 0))
        if name == "volumeOccupancySequence":
            return lambda tv: (INT, tv["seq"])
        if name == "gwGroupQueue":
            g = idx[0] - 1
            return lambda tv: (INT, tv["queue"][g])
        if name == "vehicleDetectorStatusGroupAlarms":
            g = idx[0] - 1
            return lambda tv: (INT, tv["detectors"]["alarms"][g])
        fn = self.compile(oid)
        assert fn is not None
        return lambda _tv: fn()

    def get_many(self, oids: Sequence[tuple[int, ...]]) -> list[ber.Value] | None:
        """Every value, or None if some object does not exist."""
        fns = [self.compile(o) for o in oids]
        ready = [f for f in fns if f is not None]
        return [f() for f in ready] if len(ready) == len(fns) else None

    def get(self, oid: tuple[int, ...]) -> ber.Value | None:
        hit = self.table.get(oid)
        if hit is None:
            return None
        return self.value(*hit)

    def known_object(self, oid: Sequence[int]) -> bool:
        """True when ``oid`` names an instance of an object this agent implements (RFC 3416 §4.2.1:
        an unknown instance of a known object is ``noSuchInstance``, anything else ``noSuchObject``)."""
        t = tuple(oid)
        if not self._object_oids:
            self._object_oids = {
                (self.profile.scalar(OBJECTS[n].oid)[:-1] if OBJECTS[n].scalar else OBJECTS[n].oid)
                for n, _idx in self.table.values()
            }
        return any(t[:k] in self._object_oids for k in range(len(t) - 1, 6, -1))

    def missing(self, oid: Sequence[int]) -> ber.Value:
        """The RFC 3416 exception value for a GET of an ``oid`` this agent does not answer."""
        return (ber.NO_SUCH_INSTANCE if self.known_object(oid) else ber.NO_SUCH_OBJECT, None)

    def label(self, oid: Sequence[int]) -> str:
        """``name.instance`` for log lines (the numeric OID when the object is unknown)."""
        hit = self.table.get(tuple(oid))
        if hit is None:
            return ".".join(str(x) for x in oid)
        name, idx = hit
        return f"{name}.{'.'.join(map(str, idx)) if idx else self.profile.scalar_instance}"

    def next_oid(self, oid: tuple[int, ...]) -> tuple[int, ...] | None:
        i = bisect.bisect_right(self.sorted_oids, oid)
        return self.sorted_oids[i] if i < len(self.sorted_oids) else None

    def successor(self, oid: tuple[int, ...]) -> tuple[tuple[int, ...], ber.Value] | None:
        """The next OID of this agent's view and its value (GET-NEXT, GET-BULK); None past the end."""
        nxt = self.next_oid(oid)
        return None if nxt is None else (nxt, self.value(*self.table[nxt]))

    # ---- SET ----------------------------------------------------------------------------------------------------
    def set(self, varbinds: Sequence[tuple[tuple[int, ...], ber.Value]]) -> int | None:
        """Apply a SET PDU all-or-nothing; returns the lockstep step asked for (or None). Raises :class:`SnmpError`.

        NTCIP 1202 semantics (field-io.md §1.4, §1.6, §1.8): every control
        object keeps its value until it is SET again, so a PDU may carry any
        subset - ``systemPatternControl`` alone (a standard central's plan call
        and heartbeat), one phase-control group (hold, force-off, omit, call),
        or greenwave's whole block in one PDU. The command the controller runs
        is derived from *all* current values; each successful SET of a
        system-control parameter resets the backup timer; in backup mode the
        control objects read, and restart from, 0.
        """
        self.mutations += 1
        parsed = self._parse_set(varbinds)
        step = next((v for _i, n, _x, v in parsed if n == "gwLockstepStep"), None)
        commanding = bool({n for _i, n, _x, _v in parsed} & set(SYSTEM_CONTROL))
        pattern_writes = [(i, n, x, v) for i, n, x, v in parsed if n.startswith(("pattern", "split"))]
        touched_fallback = self._check_fallback_touch(pattern_writes)
        # Validate everything before applying anything.
        staged_patterns, staged_splits = self._stage_patterns(pattern_writes)
        control, pat = self._staged_control(parsed)
        command = self._derive_command(parsed, control, pat, staged_patterns, staged_splits) if commanding else None
        fallback_plan = None
        if touched_fallback:
            fallback_plan = self._staged_fallback_plan(staged_patterns, staged_splits, pattern_writes[0][0])
        if command is not None:
            self._submit(*command)
        return self._apply_set(step, commanding, control, pat, staged_patterns, staged_splits, fallback_plan)

    def _parse_set(self, varbinds: Sequence[tuple[tuple[int, ...], ber.Value]]) -> list[tuple[int, str, tuple, int]]:
        """(varbind index, object, instance, value) of every varbind; :class:`SnmpError` at the first one that
        is not a writable object of this agent, not an INTEGER, or outside 0..255 (RFC 3416 §4.2.5)."""
        parsed = []
        for i, (oid, val) in enumerate(varbinds):
            hit = self.table.get(oid)
            if hit is None:
                raise SnmpError(ErrorStatus.NOT_WRITABLE if self.known_object(oid) else ErrorStatus.NO_CREATION, i)
            name, idx = hit
            if name not in _WRITABLE:
                raise SnmpError(ErrorStatus.NOT_WRITABLE, i)
            if val[0] != ber.INTEGER or not isinstance(val[1], int):
                raise SnmpError(ErrorStatus.WRONG_TYPE, i)
            v = int(val[1])
            if not 0 <= v <= 255 and name != "gwLockstepStep":
                raise SnmpError(ErrorStatus.WRONG_VALUE, i)
            parsed.append((i, name, idx, v))
        return parsed

    def _check_fallback_touch(self, pattern_writes: Sequence[tuple[int, str, tuple, int]]) -> bool:
        """Whether the SET writes the fallback pattern's row, which only a commissioning controller accepts."""
        core, r = self.core, self.row
        touched = any(x[0] == self.profile.fallback_pattern for _i, _n, x, _v in pattern_writes)
        if touched and not core.commissioning[r]:
            core.submit_fallback_plan(r, 0, None, RejectReason.NOT_COMMISSIONING)
            raise SnmpError(ErrorStatus.NOT_WRITABLE, pattern_writes[0][0])
        return touched

    def _stage_patterns(
        self, pattern_writes: Sequence[tuple[int, str, tuple, int]]
    ) -> tuple[dict[int, list[int]], dict[tuple[int, int], list[int]]]:
        """The pattern and split tables as they would be after the SET (copies: nothing applied yet)."""
        staged_patterns = {p: list(v) for p, v in self.patterns.items()}
        staged_splits = dict(self.splits)
        for _i, n, x, v in pattern_writes:
            if n.startswith("pattern"):
                col = ("patternCycleTime", "patternOffsetTime", "patternSplitNumber", "patternSequenceNumber").index(n)
                staged_patterns[x[0]][col] = v
            else:
                col = ("splitTime", "splitMode", "splitCoordPhase").index(n)
                cur = list(staged_splits.get((x[0], x[1]), [0, 0, 0]))
                cur[col] = v
                staged_splits[(x[0], x[1])] = cur
        return staged_patterns, staged_splits

    def _staged_control(self, parsed: Sequence[tuple[int, str, tuple, int]]) -> tuple[dict[str, list[int]], int]:
        """The phase-control groups and ``systemPatternControl`` after the SET (in backup mode they restart from 0)."""
        core, r = self.core, self.row
        backup = bool(core.fallback[r] and not core.in_control[r])
        control = {n: ([0] * self.groups if backup else list(v)) for n, v in self.control.items()}
        pat = 0 if backup else self.pattern_control
        for _i, n, x, v in parsed:
            if n in control:
                control[n][x[0] - 1] = v
            elif n == "systemPatternControl":
                pat = v
        return control, pat

    def _derive_command(
        self,
        parsed: Sequence[tuple[int, str, tuple, int]],
        control: dict[str, list[int]],
        pat: int,
        staged_patterns: dict[int, list[int]],
        staged_splits: dict[tuple[int, int], list[int]],
    ) -> tuple[CommandBlock, bool, int]:
        """The command all current control values make (block, whether by phase control, the varbind to blame
        if the controller refuses it); :class:`SnmpError` for Free, Flash or an inconsistent pattern."""
        ctl = [i for i, n, _x, _v in parsed if n in control]
        idx_of = {(n, x): i for i, n, x, _v in parsed}
        pidx = idx_of.get(("systemPatternControl", ()), ctl[0] if ctl else parsed[0][0])
        if pat in (FREE, FLASH_PATTERN):
            self._reject(RejectReason.FORBIDDEN)
            raise SnmpError(ErrorStatus.WRONG_VALUE, pidx)
        hold = masks_to_phases(control["phaseControlGroupHold"])
        force = masks_to_phases(control["phaseControlGroupForceOff"])
        call = masks_to_phases(control["phaseControlGroupVehCall"])
        omit = masks_to_phases(control["phaseControlGroupPhaseOmit"])
        if hold or call or force or omit:
            block, phase_control = self._phase_control(hold, force, call, omit)
            return block, phase_control, ctl[0] if ctl else pidx
        if pat == 0:
            return CommandBlock(seq=0, kind=CommandKind.RELEASE), False, pidx
        plan = self._pattern_plan(pat, staged_patterns, staged_splits)
        if plan is None:
            self._reject(RejectReason.PLAN_INVALID)
            raise SnmpError(ErrorStatus.WRONG_VALUE, pidx)
        return CommandBlock(seq=0, kind=CommandKind.PLAN, plan=plan), False, pidx

    def _staged_fallback_plan(
        self, staged_patterns: dict[int, list[int]], staged_splits: dict[tuple[int, int], list[int]], index: int
    ) -> TimingPlan:
        """The fallback plan the staged fallback pattern row describes; refused (at ``index``) if inconsistent."""
        prow = staged_patterns[self.profile.fallback_pattern]
        splits = {p: staged_splits.get((prow[2], p), [0, 0, 0])[0] for p in self.fmap.phases}
        plan = pattern_to_plan(prow[0], prow[1], splits, self.fmap)
        if plan is None:
            self.core.submit_fallback_plan(self.row, 0, None, RejectReason.PLAN_INVALID)
            raise SnmpError(ErrorStatus.WRONG_VALUE, index)
        return plan

    def _submit(self, block: CommandBlock, phase_control: bool, pidx: int) -> None:
        """Hand the command to the controller: a new sequence number when its content changed (or the controller
        is not running central's commands); a refusal is the SET's error at ``pidx``."""
        core, r = self.core, self.row
        content = block.content()
        with core.lock:
            new = content != self.last_content or not (core.in_control[r] or core.pending[r])
        seq = self.seq % 0xFFFF + 1 if new else self.seq
        reason = core.submit_command(r, replace(block, seq=seq), phase_control=phase_control)
        if reason != RejectReason.NONE:
            local = reason == RejectReason.LOCAL_OVERRIDE
            raise SnmpError(ErrorStatus.RESOURCE_UNAVAILABLE if local else ErrorStatus.WRONG_VALUE, pidx)
        self.seq, self.last_content = seq, content

    def _apply_set(
        self,
        step: int | None,
        commanding: bool,
        control: dict[str, list[int]],
        pat: int,
        staged_patterns: dict[int, list[int]],
        staged_splits: dict[tuple[int, int], list[int]],
        fallback_plan: TimingPlan | None,
    ) -> int | None:
        """Everything validated: keep the staged values, count the heartbeat, pass a lockstep step on."""
        core, r = self.core, self.row
        if fallback_plan is not None:
            self.set_counter += 1
            core.submit_fallback_plan(r, self.set_counter, fallback_plan, RejectReason.NONE)
        self.patterns = staged_patterns
        self.splits = staged_splits
        if commanding:
            self._ped_calls(control["phaseControlGroupPedCall"])
            self.control = control
            self.pattern_control = pat
            self.set_counter += 1
            core.submit_heartbeat(r, self.set_counter)  # every SET of a system-control parameter
        if step is not None and step > 0:
            core.submit_step(r, step)
            return step if core.config.lockstep else None
        return None

    def _ped_calls(self, masks: Sequence[int]) -> None:
        """``phaseControlGroupPedCall``: a call on a phase's crossings, as if their push buttons were pressed."""
        phases = masks_to_phases(masks)
        if not phases:
            return
        fm = self.fmap
        for k, grp in enumerate(fm.intersection.groups):
            if grp.is_pedestrian and int(fm.phase[k]) in phases:
                self.core.press_ped_button(self.row, k)

    def _pattern_plan(
        self, pat: int, patterns: dict[int, list[int]], splits: dict[tuple[int, int], list[int]]
    ) -> TimingPlan | None:
        """The plan ``systemPatternControl = pat`` runs, or None (an inconsistent pattern: refused).

        The fallback row is the controller's own local plan. A pattern central
        never downloaded (cycle 0) is, as in a controller fresh from the
        factory, a copy of the local plan: NTCIP 1202 runs "Free" for an
        unsupported pattern; greenwave's controller runs its checked local plan
        instead, which keeps coordination and never skips a clearance.
        Patterns above ``maxPatterns`` are refused.
        """
        if not 1 <= pat <= MAX_PATTERNS:
            return None
        row = patterns[pat]
        if pat == self.profile.fallback_pattern or row[0] == 0:
            return self.core.fallback_plans[self.fmap.id]
        return pattern_to_plan(
            row[0], row[1], {p: splits.get((row[2], p), [0, 0, 0])[0] for p in self.fmap.phases}, self.fmap
        )

    def _phase_control(
        self, hold: frozenset[int], force: frozenset[int], call: frozenset[int], omit: frozenset[int]
    ) -> tuple[CommandBlock, bool]:
        """Phase control masks -> the stage request they make, and whether it is the standard (loose) form.

        greenwave's own block (hold = call = one stage's phases, force-off on
        every other phase, no omit) maps to that stage exactly. Any other
        combination is a standard central's phase control (field-io.md §1.4):
        no vehicle-call group set means every phase is called (recall, the
        controller keeps cycling); an omitted phase is never called and its
        stages are forced off; a stage is held while any of its phases is
        held, forced off when any is forced off or omitted; the controller's
        own supervisor still times every minimum green and clearance.
        """
        fm = self.fmap
        if not omit and hold and hold == call and force == set(fm.phases) - hold and hold in fm.stage_phases:
            return phase_control_block(fm, 0, hold, force, call), False
        wanted = (call or frozenset(fm.phases)) - omit
        call_m = hold_m = force_m = 0
        for k, ph in enumerate(fm.stage_phases):
            if not ph:
                continue
            if ph & wanted and not ph & omit:
                call_m |= 1 << k
            if ph & hold and not ph & omit:
                hold_m |= 1 << k
            if ph & (force | omit):
                force_m |= 1 << k
        ok = [k for k in range(fm.n_stages) if call_m >> k & 1 and hold_m >> k & 1 and not force_m >> k & 1]
        ok = ok or [k for k in range(fm.n_stages) if call_m >> k & 1 and not force_m >> k & 1]
        target = ok[0] if ok else -1
        return CommandBlock(
            seq=0, kind=CommandKind.STAGE, target_stage=target, call=call_m, hold=hold_m, force_off=force_m
        ), True

    def _reject(self, reason: RejectReason) -> None:
        core = self.core
        with core.lock:
            core.rejected_seq[self.row] = self.seq + 1
            core.reject_reason[self.row] = int(reason)


# ---- transports ---------------------------------------------------------------------------------------------


class _V1Protocol(asyncio.DatagramProtocol):
    def __init__(self, agent: SnmpAgent) -> None:
        self.agent = agent
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport (asyncio's or uvloop's: the latter does not subclass the ABC).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.agent.requests += 1
        try:
            fast = self.agent.cached_get(data)
            if fast is not None:
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.sendto(fast, addr)
                return
            msg = ber.decode_message(data)
        except ber.BerError:
            self.agent.malformed += 1
            return  # an agent drops what it cannot parse
        try:
            reply = self.agent.handle(msg, lambda m: self._send(m, addr), source=f"{addr[0]}:{addr[1]}")
        except Exception:  # never let one request stop the agent
            log.exception("SNMP agent %s: request failed", self.agent.mib.fmap.id)
            return
        if reply is not None:
            self._send(reply, addr)

    def _send(self, m: ber.Message, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.sendto(ber.encode_message(m), addr)
            except ber.BerError:
                log.exception("SNMP agent: cannot encode the response")

    def error_received(self, exc: Exception) -> None:  # pragma: no cover - ICMP noise
        pass


class SnmpAgent:
    """One controller's SNMP agent on one UDP port."""

    def __init__(
        self, mib: RowMib, *, host: str, port: int, snmp: SnmpCredentials, insecure_demo: bool = False
    ) -> None:
        self.mib = mib
        # Writes with a default community only in an explicit demo (field-io.md §4.2); the emulator
        # already refuses to start so configured, this keeps the agent safe when built on its own.
        self.writes_open = snmp.default_write is None or insecure_demo
        self.host = host
        self.port = port
        self.snmp = snmp
        self.requests = 0
        self.malformed = 0
        self.wrong_community = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._engine: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._get_cache: dict[bytes, tuple[tuple[int, int], bytes, int, int]] = {}
        self._get_oids: dict[bytes, list[tuple[int, ...]]] = {}
        self._get_plans: dict[bytes, tuple[list[Callable[[dict[str, Any]], ber.Value]], ber.VarbindEncoder]] = {}
        self._readers = {snmp.community.encode(), snmp.set_community.encode()}

    async def start(self) -> int:
        self.loop = asyncio.get_running_loop()
        if self.snmp.version == 3:
            return await self._start_v3()
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _V1Protocol(self), local_addr=(self.host, self.port)
        )
        self.port = int(self._transport.get_extra_info("sockname")[1])
        return self.port

    @property
    def open_connections(self) -> int:
        """Always 0: SNMP runs over UDP datagrams, and no connection is held open."""
        return 0

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    # ---- v1 / v2c ------------------------------------------------------------------------------------------
    def cached_get(self, data: bytes) -> bytes | None:
        """The answer to a GET asked before in this tick (same varbind list), without decoding it again."""
        version, community, pdu_type, rid, _s, _i, vbl = ber.split_request(data)
        if pdu_type != ber.GET:
            return None
        if community not in self._readers or version != (0 if self.snmp.version == 1 else 1):
            return None
        epoch = self._epoch()
        hit = self._get_cache.get(vbl)
        if hit is not None and hit[0] == epoch:
            return ber.encode_response(version, community, rid, hit[2], hit[3], hit[1])
        plan = self._get_plans.get(vbl)
        if plan is None:
            oids = self._get_oids.get(vbl)
            if oids is None:
                return None  # first time this list is asked: the full path learns it
            compiled = [self.mib.compile_tick(o) for o in oids]
            fns = [f for f in compiled if f is not None]
            if len(fns) < len(compiled):
                return None
            # Compiled once per varbind list: the value functions and the OIDs' bytes (a farm of
            # hundreds of agents answers each list once per tick; decoding and encoding it anew was
            # most of the emulator's CPU).
            plan = self._get_plans[vbl] = (fns, ber.VarbindEncoder(oids))
        self.mib.begin_request()
        fns, enc = plan
        tv = self.mib._tick_values()
        body = enc.encode([f(tv) for f in fns])
        self._get_cache[vbl] = (epoch, body, 0, 0)
        return ber.encode_response(version, community, rid, 0, 0, body)

    def _epoch(self) -> tuple[int, int]:
        return (self.mib.core.snapshot.tick, self.mib.mutations)

    def handle(
        self, msg: ber.Message, send: Callable[[ber.Message], None], *, source: str = "unknown"
    ) -> ber.Message | None:
        """Answer one v1/v2c request; refused writes are logged with ``source`` and leave the state unchanged."""
        refused, reply = self._admit(msg, source)
        if refused:
            return reply
        self.mib.begin_request()
        if msg.pdu_type == ber.GET:
            return self._get(msg)
        if msg.pdu_type == ber.GET_NEXT:
            return self._get_next(msg)
        if msg.pdu_type == ber.GET_BULK:
            return ber.Message(msg.version, msg.community, ber.RESPONSE, msg.request_id, 0, 0, tuple(self._bulk(msg)))
        if msg.pdu_type == ber.SET:
            return self._set(msg, send, source)
        return None

    def _admit(self, msg: ber.Message, source: str) -> tuple[bool, ber.Message | None]:
        """(refused, the reply if any): a wrong version or community is dropped unanswered (RFC 3584 §4.1), a
        SET while writes with a default community are off answers noAccess; each is logged with ``source``."""
        expected = 0 if self.snmp.version == 1 else 1
        where = self.mib.fmap.id
        if msg.version != expected:
            self.wrong_community += 1
            log.warning(
                "SNMP agent %s: SNMP version %d from %s dropped (agent speaks %s)",
                where,
                msg.version + 1,
                source,
                "v1" if expected == 0 else "v2c",
            )
            return True, None
        is_set = msg.pdu_type == ber.SET
        community = self.snmp.set_community if is_set else self.snmp.community
        if msg.community != community.encode() and not (
            not is_set and msg.community == self.snmp.set_community.encode()
        ):
            self.wrong_community += 1  # RFC 3584 §4.1: an unknown community is dropped, not answered
            log.warning(
                "SNMP agent %s: wrong community in a %s from %s dropped", where, "SET" if is_set else "read", source
            )
            return True, None
        if is_set and not self.writes_open:
            log.warning("SNMP agent %s: SET from %s refused: writes with a default community are off", where, source)
            return True, self._response(msg, ErrorStatus.NO_ACCESS, 1)
        return False, None

    @staticmethod
    def _response(
        msg: ber.Message, status: int = 0, index: int = 0, vbs: Sequence[Any] | None = None
    ) -> ber.Message:
        """The RESPONSE to ``msg`` (v2c error statuses mapped to v1's where the request was v1)."""
        if msg.version == 0 and status:
            status = _V1.get(status, status)
        varbinds = msg.varbinds if vbs is None else vbs
        return ber.Message(msg.version, msg.community, ber.RESPONSE, msg.request_id, status, index, tuple(varbinds))

    def _get(self, msg: ber.Message) -> ber.Message:
        """GET: every object's value, or v2c's noSuchObject/noSuchInstance (v1: noSuchName at the first
        missing one); the answer is cached for the batch path until the tick or the MIB changes."""
        mib, v1 = self.mib, msg.version == 0
        epoch = self._epoch()
        out = []
        for i, (oid, _v) in enumerate(msg.varbinds):
            val = mib.get(oid)
            if val is None:
                if v1:
                    return self._response(msg, ErrorStatus.NO_SUCH_NAME, i + 1)
                val = mib.missing(oid)
            out.append((oid, val))
        if len(self._get_cache) > 64:
            self._get_cache.clear()
            self._get_oids.clear()
            self._get_plans.clear()
        key = ber.encode_varbinds([(o, (ber.NULL, None)) for o, _ in msg.varbinds])
        self._get_cache[key] = (epoch, ber.encode_varbinds(out), 0, 0)
        self._get_oids[key] = [o for o, _ in msg.varbinds]
        return self._response(msg, vbs=out)

    def _get_next(self, msg: ber.Message) -> ber.Message:
        """GET-NEXT: each object's successor; past the end, v2c's endOfMibView (v1: noSuchName)."""
        out = []
        for i, (oid, _v) in enumerate(msg.varbinds):
            hit = self.mib.successor(oid)
            if hit is None:
                if msg.version == 0:
                    return self._response(msg, ErrorStatus.NO_SUCH_NAME, i + 1)  # the end of the MIB view in v1
                out.append((oid, (ber.END_OF_MIB_VIEW, None)))
            else:
                out.append(hit)
        return self._response(msg, vbs=out)

    def _set(self, msg: ber.Message, send: Callable[[ber.Message], None], source: str) -> ber.Message | None:
        """SET: all or nothing; a refusal is logged with ``source``; a lockstep step's answer waits for the tick."""
        mib = self.mib
        try:
            step = mib.set(msg.varbinds)
        except SnmpError as e:
            bad = msg.varbinds[e.index][0] if e.index < len(msg.varbinds) else ()
            log.warning(
                "SNMP agent %s: SET from %s refused: %s at varbind %d (%s)",
                mib.fmap.id,
                source,
                e,
                e.index + 1,
                mib.label(bad),
            )
            return self._response(msg, e.status, e.index + 1)
        if step is not None:
            reply = self._response(msg)
            mib.core.add_step_waiter(step, lambda: send(reply), self.loop)
            return None
        return self._response(msg)

    #: Most varbinds one GETBULK answer carries (a 1,472-byte UDP datagram holds about 60 of ours).
    MAX_BULK_VARBINDS = 60

    def _bulk(self, msg: ber.Message) -> list[tuple[tuple[int, ...], ber.Value]]:
        """RFC 3416 §4.2.3: N non-repeaters get one successor each, then the R repeaters get up to M
        successors each, row by row (repetition 1 of every repeater, then repetition 2, ...)."""
        mib = self.mib
        vbs = [oid for oid, _v in msg.varbinds]
        n = max(0, min(msg.error_status, len(vbs)))  # non-repeaters
        m = max(0, msg.error_index)  # max-repetitions

        def succ(oid: tuple[int, ...]) -> tuple[tuple[int, ...], ber.Value]:
            hit = mib.successor(oid)
            return (oid, (ber.END_OF_MIB_VIEW, None)) if hit is None else hit

        out = [succ(oid) for oid in vbs[:n]]
        cur = vbs[n:]
        for _rep in range(m):
            if not cur or len(out) + len(cur) > self.MAX_BULK_VARBINDS:
                break
            row = [succ(oid) for oid in cur]
            out.extend(row)
            if all(v[0] == ber.END_OF_MIB_VIEW for _o, v in row):
                break
            cur = [o for o, _v in row]
        return out

    # ---- v3 (pysnmp engine) -----------------------------------------------------------------------------
    async def _start_v3(self) -> int:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdrsp, context

        s = self.snmp
        eng = engine.SnmpEngine()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, self.port))
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        transport = udp.UdpTransport().open_server_mode(sock=sock)
        config.add_transport(eng, udp.DOMAIN_NAME, transport)
        config.add_v3_user(
            eng, s.user, _auth_protocol(s.auth_protocol), s.auth_key, _priv_protocol(s.priv_protocol), s.priv_key
        )
        config.add_vacm_user(eng, 3, s.user, "authPriv", (1, 3, 6), (1, 3, 6))
        ctx = context.SnmpContext(eng)
        ctx.unregister_context_name(b"")
        ctx.register_context_name(b"", _Instrumentation(self))
        cmdrsp.GetCommandResponder(eng, ctx)
        cmdrsp.SetCommandResponder(eng, ctx)
        cmdrsp.NextCommandResponder(eng, ctx)
        self._engine = eng
        await asyncio.sleep(0)  # let pysnmp's transport attach to the socket
        return self.port


def _auth_protocol(name: str) -> Any:
    from pysnmp.entity import config

    return {
        "SHA": config.USM_AUTH_HMAC96_SHA,
        "SHA-256": config.USM_AUTH_HMAC192_SHA256,
        "SHA-384": config.USM_AUTH_HMAC256_SHA384,
        "SHA-512": config.USM_AUTH_HMAC384_SHA512,
    }[name]


def _priv_protocol(name: str) -> Any:
    from pysnmp.entity import config

    return {
        "AES-128": config.USM_PRIV_CFB128_AES,
        "AES-192": config.USM_PRIV_CFB192_AES,
        "AES-256": config.USM_PRIV_CFB256_AES,
    }[name]


def _to_pysnmp(val: ber.Value) -> Any:
    from pysnmp.proto import rfc1902
    from pysnmp.proto.api import v2c

    tag, x = val
    if tag == ber.INTEGER:
        return rfc1902.Integer32(x)
    if tag == ber.OCTET_STRING:
        return rfc1902.OctetString(x)
    if tag == ber.OID:
        return rfc1902.ObjectIdentifier(x)
    if tag == ber.TIMETICKS:
        return rfc1902.TimeTicks(x)
    if tag == ber.COUNTER32:
        return rfc1902.Counter32(x)
    if tag == ber.NO_SUCH_OBJECT:
        return v2c.NoSuchObject()
    return v2c.NoSuchInstance()


class _Instrumentation:
    """pysnmp MIB instrumentation that serves a :class:`RowMib` (SNMPv3 path)."""

    def __init__(self, agent: SnmpAgent) -> None:
        self.agent = agent

    def read_variables(self, *varBinds: Any, **context: Any) -> list[Any]:
        mib = self.agent.mib
        self.agent.requests += 1
        mib.begin_request()  # values read once per request (modes, status word) are read afresh
        out = []
        for oid, _v in varBinds:
            val = mib.get(tuple(oid))
            out.append((oid, _to_pysnmp(val if val is not None else mib.missing(tuple(oid)))))
        return out

    def read_next_variables(self, *varBinds: Any, **context: Any) -> list[Any]:
        from pysnmp.proto import rfc1902
        from pysnmp.proto.api import v2c

        mib = self.agent.mib
        out = []
        for oid, _v in varBinds:
            hit = mib.successor(tuple(oid))
            if hit is None:
                out.append((oid, v2c.EndOfMibView()))
            else:
                out.append((rfc1902.ObjectName(hit[0]), _to_pysnmp(hit[1])))
        return out

    def write_variables(self, *varBinds: Any, **context: Any) -> list[Any]:
        from pysnmp.smi import error as smi_error

        self.agent.requests += 1
        vbs = []
        for oid, v in varBinds:
            try:
                val: ber.Value = (
                    (ber.INTEGER, int(v))
                    if v.__class__.__name__ in ("Integer32", "Integer")
                    else (ber.OCTET_STRING, bytes(v))
                )
            except Exception:
                val = (ber.OCTET_STRING, b"")
            vbs.append((tuple(oid), val))
        try:
            self.agent.mib.set(vbs)
        except SnmpError as e:
            bad = vbs[e.index][0] if e.index < len(vbs) else ()
            log.warning(
                "SNMP agent %s: SET from SNMPv3 user %s refused: %s at varbind %d (%s)",
                self.agent.mib.fmap.id,
                self.agent.snmp.user,
                e,
                e.index + 1,
                self.agent.mib.label(bad),
            )
            cls = {
                ErrorStatus.WRONG_TYPE: smi_error.WrongTypeError,
                ErrorStatus.WRONG_VALUE: smi_error.WrongValueError,
                ErrorStatus.NO_CREATION: smi_error.NoCreationError,
                ErrorStatus.INCONSISTENT_VALUE: smi_error.InconsistentValueError,
                ErrorStatus.RESOURCE_UNAVAILABLE: smi_error.ResourceUnavailableError,
                ErrorStatus.NOT_WRITABLE: smi_error.NotWritableError,
            }.get(ErrorStatus(e.status), smi_error.GenError)
            raise cls(idx=e.index) from None
        return list(varBinds)


async def start_agents(
    core: LocalController,
    *,
    host: str,
    port: int,
    snmp: SnmpCredentials,
    vendor: str = "greenwave",
    insecure_demo: bool = False,
) -> list[SnmpAgent]:
    """One agent per intersection of ``core``: ports ``port + k`` (or free ports when ``port`` is 0)."""
    profile = vendor_profile(vendor)
    agents = []
    for r in range(len(core.ids)):
        a = SnmpAgent(
            RowMib(core, r, profile),
            host=host,
            port=(port + r) if port else 0,
            snmp=snmp,
            insecure_demo=insecure_demo,
        )
        await a.start()
        agents.append(a)
    return agents
