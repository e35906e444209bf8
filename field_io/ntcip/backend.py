"""Central side of NTCIP 1202: :class:`NtcipBackend`, the engine's backend for SNMP controllers.

Per tick and per controller:

* ``read``: **one GET** with every status object (``../shared/reference/field-io.md``
  §1.12): phase status groups (reds, yellows, greens, walks), unit control and
  flash status, coordination pattern status, the volume / occupancy report
  with its sequence number, and - for controllers of the greenwave profile -
  mode, accepted / rejected command and reject reason.
* ``apply`` (active controllers only): **one SET** of the complete command
  block - ``systemPatternControl`` plus phase-control hold, force-off and
  vehicle call for every phase group in use (and, when a plan changed, the
  spare pattern's cycle, offset and splits), in one PDU. Every such SET
  resets the controller's backup timer: it *is* the NTCIP heartbeat (§1.8:
  there is no separate heartbeat object).
* ``advance``: real time; or lockstep (SIL): the SET carries the greenwave
  ``gwLockstepStep`` and the emulator answers once it has stepped.

``unitBackupTime`` is read when a controller is first reached; a controller
whose backup time is 0 (watchdog disabled) or shorter than twice the tick is
not commanded (§3.6 sizing rule). Counts: ``detectorVolume`` of the last
period, taken only when ``volumeOccupancySequence`` advanced (a repeated
sequence contributes 0); occupancy fault codes (> full scale) become NaN.
``queue_veh`` comes from the greenwave extension's ``gwGroupQueue`` (zone
detectors' queue per signal group; NTCIP 1202 itself has no queue object) and
is NaN for other profiles. Vendor quirks come from the endpoint's
:class:`~field_io.ntcip.profiles.VendorProfile`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Unpack

import numpy as np

from controller.backend import Commands
from field_io.commands import ControllerMode, RejectReason, StatusBits, quantize_plan
from field_io.endpoints import Endpoint
from field_io.errors import DeviceException, FieldIOError, ProtocolError
from field_io.mapping import FieldMap, field_map, queue_from_wire
from field_io.ntcip import ber
from field_io.ntcip.codec import (
    occupancy_from_ntcip,
    phase_groups,
    plan_to_pattern,
    stage_phase_control,
)
from field_io.ntcip.oids import OBJECTS
from field_io.ntcip.profiles import VendorProfile, vendor_profile
from field_io.ntcip.transport import BatchGet, PreparedGet, SnmpClient, SnmpErrorStatus, snmp_client
from field_io.polled import PolledFieldBackend, PolledLink, PollOptions
from intersections.errors import InputError
from intersections.model import SignalState
from intersections.network import Network

__all__ = ["NtcipBackend", "NtcipLink", "NtcipStatus", "status_oids", "decode_ntcip_status"]

log = logging.getLogger("greenwave.field.ntcip")
GREEN, YELLOW, RED, FLASH = (
    int(s) for s in (SignalState.GREEN, SignalState.YELLOW, SignalState.RED, SignalState.FLASH)
)
NOT_FLASH, SYSTEM_CONTROL, MANUAL, BACKUP = 2, 2, 5, 4
_CENTRAL, _DONE = int(StatusBits.CENTRAL_CONTROL), int(StatusBits.PLANT_DONE)
_PREEMPT_IDLE, _PREEMPT_CALL = 2, 3  # preemptState notActive, notActiveWithCall (field-io.md §1.9)
_LINK_ACTIVE = 7  # preemptState linkActive
_BAD_PLAN = 7  # localFreeStatus badPlan (field-io.md §1.6)
_PREEMPT_NAMES = {
    2: "notActive",
    3: "notActiveWithCall",
    4: "entryStarted",
    5: "trackService",
    6: "dwell",
    7: "linkActive",
    8: "exitStarted",
    9: "maxPresence",
}
_FREE_NAMES = {7: "badPlan", 8: "badCycleTime", 9: "splitOverrun", 10: "invalidOffset", 11: "failed"}


def _oid(profile: VendorProfile, name: str, *idx: int) -> tuple[int, ...]:
    o = OBJECTS[name]
    return profile.scalar(o.oid) if o.scalar else (*o.oid, *idx)


def status_oids(fmap: FieldMap, profile: VendorProfile, preempts: int = 1) -> list[tuple[str, tuple[int, ...]]]:
    """(key, OID) of everything read every tick, in request order (``preempts``: rows of preemptState)."""
    out = []
    for g in range(1, phase_groups(fmap.max_phase) + 1):
        for name in (
            "phaseStatusGroupReds",
            "phaseStatusGroupYellows",
            "phaseStatusGroupGreens",
            "phaseStatusGroupWalks",
            "phaseStatusGroupPedCalls",
        ):
            out.append((f"{name}.{g}", _oid(profile, name, g)))
    for name in (
        "unitControlStatus",
        "unitFlashStatus",
        "coordPatternStatus",
        "volumeOccupancySequence",
        "localFreeStatus",
        "coordCycleStatus",
        "shortAlarmStatus",
    ):
        out.append((name, _oid(profile, name)))
    for k in range(1, preempts + 1):
        out.append((f"preemptState.{k}", _oid(profile, "preemptState", k)))
    for g in range(1, phase_groups(fmap.max_channel) + 1):
        out.append((f"vehicleDetectorStatusGroupAlarms.{g}", _oid(profile, "vehicleDetectorStatusGroupAlarms", g)))
    for c in sorted({int(c) for c in fmap.channel}):
        out.append((f"detectorVolume.{c}", _oid(profile, "detectorVolume", c)))
        out.append((f"detectorOccupancy.{c}", _oid(profile, "detectorOccupancy", c)))
    if profile.greenwave_extension:
        for name in (
            "gwMode",
            "gwAcceptedSeq",
            "gwRejectedSeq",
            "gwRejectReason",
            "gwStatusBits",
            "gwPlanClock",
            "gwTick",
        ):
            out.append((name, _oid(profile, name)))
        for g in range(1, fmap.n_groups + 1):
            out.append((f"gwGroupQueue.{g}", _oid(profile, "gwGroupQueue", g)))
    return out


#: Most preempts whose state the status poll reads (NTCIP 1202 allows 255; cabinets have a handful).
MAX_PREEMPTS_READ = 16

IDENTITY_OBJECTS = (
    "sysDescr",
    "sysName",
    "controllerBaseStandards",
    "maxPhases",
    "maxVehicleDetectors",
    "unitBackupTime",
)


@dataclass(frozen=True)
class NtcipStatus:
    group_state: np.ndarray  # (G,) SignalState
    volume: np.ndarray  # (D,) last period (detector order)
    occupancy: np.ndarray  # (D,) 0..1, NaN fault
    sequence: int
    control_status: int
    flash_status: int
    pattern_status: int
    mode: int  # ControllerMode, -1 unknown
    status_word: int  # greenwave status bits (derived for plain NTCIP)
    accepted_seq: int = 0
    rejected_seq: int = 0
    reject_reason: int = 0
    plan_clock_s: float = math.nan
    tick: int = -1
    queue_veh: np.ndarray | None = None  # (G,) vehicles queued (NaN not measured); None: not read
    local_free: int = 0  # localFreeStatus: notFree(2), commandFree(3) ... badPlan(7) ... failed(11); 0 not read
    cycle_position_s: int = 0  # coordCycleStatus: counts down through the running pattern's cycle
    short_alarms: int = 0  # shortAlarmStatus bits (bit 0 preempt, bit 5 detector fault)
    #: preemptState of the highest-priority preempt not notActive (else preempt 1's): notActive(2),
    #: notActiveWithCall(3, timing its delay), entryStarted(4), trackService(5), dwell(6), linkActive(7), exit(8)
    preempt_state: int = 0
    preempt_number: int = 0  # which preempt preempt_state is (1 = highest priority); 0 none past notActive
    preempt_states: np.ndarray | None = None  # (P,) preemptState of every preempt read
    detector_alarm: np.ndarray | None = None  # (D,) True: the detector's channel reports an alarm
    ped_call: np.ndarray | None = None  # (G,) True: a crossing has a pedestrian call waiting


_INT_TAGS = frozenset((ber.INTEGER, ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS))


@dataclass(frozen=True)
class _Layout:
    """Where each quantity sits in the answer to :func:`status_oids` (computed once per controller)."""

    greens: np.ndarray  # (G,) where the phase-status word of each group's phase sits
    yellows: np.ndarray
    walks: np.ndarray
    volume: np.ndarray  # (D,)
    occupancy: np.ndarray
    queue: np.ndarray
    index: dict[str, int]
    pedcalls: np.ndarray  # (G,) the PedCalls word of each group's phase
    alarms: np.ndarray  # (D,) the detector-alarm status-group word of each detector's channel
    alarm_bit: np.ndarray  # (D,) the channel's bit in that word
    veh_bit: np.ndarray  # (G,) (group position of the phase, bit) for decoding
    group_of: np.ndarray
    is_ped: np.ndarray
    preempts: np.ndarray  # (P,) where preemptState.1..P sit
    top: np.ndarray  # (K,) the MIB's upper bound of each object (NTCIP 1202 v02: 255; greenwave extension 65535)
    keys: Sequence[str]  # the key list this layout was made for (identity: the link's own list)


_LAYOUTS: dict[tuple[int, str], _Layout] = {}
#: MIB upper bounds other than 255 (NTCIP 1202 v02: coordCycleStatus is 0..510).
_TOP = {"coordCycleStatus": 510}


def _layout(keys: Sequence[str], fmap: FieldMap, profile: VendorProfile) -> _Layout:
    key = (id(fmap), profile.name)
    hit = _LAYOUTS.get(key)
    if hit is not None and (hit.keys is keys or hit.index.keys() == set(keys)):
        return hit
    idx = {k: i for i, k in enumerate(keys)}
    groups = phase_groups(fmap.max_phase)
    ph = fmap.phase - 1
    group_of = ph // 8

    def words(name: str) -> np.ndarray:  # the word of each signal group's phase (index arrays built once)
        return np.array([idx[f"{name}.{g}"] for g in range(1, groups + 1)], np.intp)[group_of]

    lay = _Layout(
        greens=words("phaseStatusGroupGreens"),
        yellows=words("phaseStatusGroupYellows"),
        walks=words("phaseStatusGroupWalks"),
        pedcalls=words("phaseStatusGroupPedCalls"),
        alarms=np.array(
            [idx[f"vehicleDetectorStatusGroupAlarms.{(int(c) - 1) // 8 + 1}"] for c in fmap.channel], np.intp
        ),
        alarm_bit=np.array([(int(c) - 1) % 8 for c in fmap.channel], np.int64),
        volume=np.array([idx[f"detectorVolume.{int(c)}"] for c in fmap.channel], np.intp),
        occupancy=np.array([idx[f"detectorOccupancy.{int(c)}"] for c in fmap.channel], np.intp),
        queue=np.array(
            [idx[k] for k in (f"gwGroupQueue.{g}" for g in range(1, fmap.n_groups + 1)) if k in idx], np.intp
        ),
        index=idx,
        veh_bit=ph % 8,
        group_of=ph // 8,
        is_ped=np.array([g.is_pedestrian for g in fmap.intersection.groups], bool),
        preempts=np.array([i for k, i in idx.items() if k.startswith("preemptState.")], np.intp),
        top=np.array([65535 if k.startswith("gw") else _TOP.get(k, 255) for k in keys], np.int64),
        keys=keys,
    )
    if len(_LAYOUTS) > 10_000:
        _LAYOUTS.clear()
    _LAYOUTS[key] = lay
    return lay


def decode_ntcip_status(
    values: Sequence[ber.Value], keys: Sequence[str], fmap: FieldMap, profile: VendorProfile
) -> NtcipStatus:
    """Decode one GET answer; raises :class:`ProtocolError` for wrong types and out-of-range values.

    The lone-controller decoder (commissioning, stragglers of the batch): written
    independently of :func:`decode_ntcip_rows`, which the batch tests hold to it.
    """
    x = _integer_values(values, keys)
    lay = _layout(keys, fmap, profile)
    v = lay.index
    arr = np.asarray(x, dtype=np.int64)
    _check_ranges(arr, x, keys, lay)
    flash_status = x[v["unitFlashStatus"]]
    flash = flash_status != NOT_FLASH
    state = _row_signal_state(arr, lay, flash)
    vol = arr[lay.volume].astype(float)
    vol = np.where(vol >= 255, np.nan, vol)  # 255 = overflow: unknown
    ucs = x[v["unitControlStatus"]]
    pattern = x[v["coordPatternStatus"]]
    pstates = arr[lay.preempts]
    pnum = int(_preempt_pick(pstates[None, :])[0])
    if profile.greenwave_extension:
        mode, bits = x[v["gwMode"]], x[v["gwStatusBits"]]
        acc, rej, why = x[v["gwAcceptedSeq"]], x[v["gwRejectedSeq"]], x[v["gwRejectReason"]]
        clock, tick = x[v["gwPlanClock"]] / 10.0, x[v["gwTick"]]
        queue = queue_from_wire(arr[lay.queue]) if len(lay.queue) == fmap.n_groups else None
    else:
        mode, bits = _standard_mode_bits(ucs, flash_status, pattern)
        acc = rej = why = 0
        clock, tick = math.nan, -1
        queue = None
    return NtcipStatus(
        group_state=state,
        volume=vol,
        occupancy=occupancy_from_ntcip(arr[lay.occupancy], profile.occupancy_full_scale),
        sequence=x[v["volumeOccupancySequence"]],
        control_status=ucs,
        flash_status=flash_status,
        pattern_status=pattern,
        mode=int(mode),
        status_word=int(bits),
        accepted_seq=acc,
        rejected_seq=rej,
        reject_reason=why,
        plan_clock_s=clock,
        tick=tick,
        queue_veh=queue,
        local_free=x[v["localFreeStatus"]],
        cycle_position_s=x[v["coordCycleStatus"]],
        short_alarms=x[v["shortAlarmStatus"]],
        preempt_state=int(pstates[pnum - 1]) if pnum else int(pstates[0]),
        preempt_number=pnum,
        preempt_states=pstates,
        detector_alarm=(arr[lay.alarms] >> lay.alarm_bit & 1) == 1,
        ped_call=((arr[lay.pedcalls] >> lay.veh_bit & 1) == 1) & lay.is_ped,
    )


def _integer_values(values: Sequence[ber.Value], keys: Sequence[str]) -> list[int]:
    """The answer's INTEGER values, one per key; :class:`ProtocolError` naming the first object that is not one."""
    if values and type(values[0]) is int:
        x = list(values)  # already plain INTEGER values (the fast path)
    else:
        x = []
        for k, (tag, val) in zip(keys, values, strict=True):
            if tag not in _INT_TAGS or type(val) is not int:
                what = {ber.NO_SUCH_INSTANCE: "noSuchInstance", ber.NO_SUCH_OBJECT: "noSuchObject"}.get(
                    tag, f"type 0x{tag:02x}"
                )
                raise ProtocolError(f"answers {what} for {k} (an INTEGER was expected)")
            x.append(val)
    if len(x) != len(keys):
        raise ProtocolError(f"answered {len(x)} values for {len(keys)} objects")
    return x


def _check_ranges(arr: np.ndarray, x: Sequence[int], keys: Sequence[str], lay: _Layout) -> None:
    """MIB ranges (NTCIP 1202 v02): a value out of range is not data; the error names the first one."""
    out_of_range = (arr < 0) | (arr > lay.top)
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        raise ProtocolError(f"answers {x[i]} for {keys[i]}, outside its range 0..{int(lay.top[i])}")


def _row_signal_state(arr: np.ndarray, lay: _Layout, flash: bool) -> np.ndarray:
    """Each signal group's state from the phase status groups (a crossing from its walk bit); FLASH in flash."""
    greens = arr[lay.greens] >> lay.veh_bit & 1
    yellows = arr[lay.yellows] >> lay.veh_bit & 1
    walks = arr[lay.walks] >> lay.veh_bit & 1
    state = np.where(
        lay.is_ped,
        np.where(walks == 1, GREEN, RED),
        np.where(greens == 1, GREEN, np.where(yellows == 1, YELLOW, RED)),
    ).astype(np.int8)
    if flash:
        state[:] = FLASH
    return state


def _standard_mode_bits(ucs: int, flash_status: int, pattern: int) -> tuple[int, int]:
    """Mode and status bits of a controller without the greenwave extension, from standard objects only
    (unitControlStatus, unitFlashStatus, coordPatternStatus: NTCIP 1202 v02 §2.4, §2.5)."""
    flash = flash_status != NOT_FLASH
    bits = 0
    if ucs == SYSTEM_CONTROL:
        bits |= StatusBits.CENTRAL_CONTROL
    if ucs == BACKUP:
        bits |= StatusBits.FALLBACK
    if ucs == MANUAL:
        bits |= StatusBits.LOCAL_OVERRIDE
    if flash:
        bits |= StatusBits.FLASH
    if flash_status in (5, 6):
        bits |= StatusBits.MMU_FAULT
    if flash:
        mode = ControllerMode.FAULT if bits & StatusBits.MMU_FAULT else ControllerMode.FLASH
    elif ucs == SYSTEM_CONTROL:
        mode = ControllerMode.CENTRAL_STAGE if pattern == 254 else ControllerMode.CENTRAL_PLAN
    else:
        mode = ControllerMode.LOCAL_PLAN
    return int(mode), int(bits)


def _preempt_pick(states: np.ndarray) -> np.ndarray:
    """Which preempt (1-based, 0 none) a row reports: the highest-priority one running a sequence
    (entry to exit, linkActive included), else the highest-priority call timing its delay."""
    run = states > _PREEMPT_CALL
    call = states == _PREEMPT_CALL
    return np.where(run.any(axis=1), run.argmax(axis=1) + 1, np.where(call.any(axis=1), call.argmax(axis=1) + 1, 0))


def decode_ntcip_rows(
    x: np.ndarray, keys: Sequence[str], fmap: FieldMap, profile: VendorProfile
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Decode the answers of many controllers of one shape at once (one row of ``x`` per controller).

    ``x`` holds the INTEGER values of the answers to :func:`status_oids`, in
    that order; every controller of the batch has the same keys, phases and
    channels as ``fmap``. Returns the status columns (one row per controller,
    as :class:`NtcipStatus` names them) and which rows are within the MIB's
    ranges; a row outside them is not data (:func:`decode_ntcip_status` words
    the error). One numpy operation per column for the whole batch is what
    makes a poll of a thousand controllers cheap: per controller, the same
    decoding costs some twenty small-array operations.
    """
    lay = _layout(keys, fmap, profile)
    v = lay.index
    ok: np.ndarray = np.asarray(~((x < 0) | (x > lay.top)).any(axis=1))
    flash_status = x[:, v["unitFlashStatus"]]
    flash = flash_status != NOT_FLASH
    vol = x[:, lay.volume].astype(float)
    vol[vol >= 255] = np.nan  # 255 = overflow: unknown
    pstates = x[:, lay.preempts]
    pnum = _preempt_pick(pstates)
    cols: dict[str, np.ndarray] = {
        "group_state": _rows_signal_state(x, lay, flash),
        "volume": vol,
        "occupancy": occupancy_from_ntcip(x[:, lay.occupancy], profile.occupancy_full_scale),
        "sequence": x[:, v["volumeOccupancySequence"]],
        "control_status": x[:, v["unitControlStatus"]],
        "flash_status": flash_status,
        "pattern_status": x[:, v["coordPatternStatus"]],
        "local_free": x[:, v["localFreeStatus"]],
        "cycle_position_s": x[:, v["coordCycleStatus"]],
        "short_alarms": x[:, v["shortAlarmStatus"]],
        "preempt_state": pstates[np.arange(len(x)), np.maximum(pnum - 1, 0)],
        "preempt_number": pnum,
        "preempt_states": pstates,
        "detector_alarm": (x[:, lay.alarms] >> lay.alarm_bit & 1) == 1,
        "ped_call": ((x[:, lay.pedcalls] >> lay.veh_bit & 1) == 1) & lay.is_ped,
    }
    if profile.greenwave_extension:
        cols.update(_extension_columns(x, lay, fmap))
    else:
        cols.update(_standard_columns(cols["control_status"], flash_status, cols["pattern_status"]))
    return cols, ok


def _rows_signal_state(x: np.ndarray, lay: _Layout, flash: np.ndarray) -> np.ndarray:
    """:func:`_row_signal_state` for a batch: each row's signal group states, FLASH on the rows in flash."""
    bit = lay.veh_bit
    greens = x[:, lay.greens] >> bit & 1
    yellows = x[:, lay.yellows] >> bit & 1
    walks = x[:, lay.walks] >> bit & 1
    state = np.where(
        lay.is_ped,
        np.where(walks == 1, GREEN, RED),
        np.where(greens == 1, GREEN, np.where(yellows == 1, YELLOW, RED)),
    ).astype(np.int8)
    state[flash] = FLASH
    return state


def _extension_columns(x: np.ndarray, lay: _Layout, fmap: FieldMap) -> dict[str, np.ndarray]:
    """The columns the greenwave extension OIDs carry (mode, status bits, command sequence numbers, clock,
    queues when every group reports one)."""
    v = lay.index
    cols = {
        "mode": x[:, v["gwMode"]],
        "status_word": x[:, v["gwStatusBits"]],
        "accepted_seq": x[:, v["gwAcceptedSeq"]],
        "rejected_seq": x[:, v["gwRejectedSeq"]],
        "reject_reason": x[:, v["gwRejectReason"]],
        "plan_clock_s": x[:, v["gwPlanClock"]] / 10.0,
        "tick": x[:, v["gwTick"]],
    }
    if len(lay.queue) == fmap.n_groups:
        cols["queue_veh"] = queue_from_wire(x[:, lay.queue])
    return cols


def _standard_columns(ucs: np.ndarray, flash_status: np.ndarray, pattern: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`_standard_mode_bits` column-wise: mode and status bits from standard objects only."""
    m = len(ucs)
    flash = flash_status != NOT_FLASH
    bits = np.zeros(m, np.int64)
    bits[ucs == SYSTEM_CONTROL] |= int(StatusBits.CENTRAL_CONTROL)
    bits[ucs == BACKUP] |= int(StatusBits.FALLBACK)
    bits[ucs == MANUAL] |= int(StatusBits.LOCAL_OVERRIDE)
    bits[flash] |= int(StatusBits.FLASH)
    mmu = (flash_status == 5) | (flash_status == 6)
    bits[mmu] |= int(StatusBits.MMU_FAULT)
    mode = np.full(m, int(ControllerMode.LOCAL_PLAN), np.int64)
    central = ~flash & (ucs == SYSTEM_CONTROL)
    stage, plan = int(ControllerMode.CENTRAL_STAGE), int(ControllerMode.CENTRAL_PLAN)
    mode[central] = np.where(pattern[central] == 254, stage, plan)
    mode[flash] = np.where(mmu[flash], int(ControllerMode.FAULT), int(ControllerMode.FLASH))
    return {"mode": mode, "status_word": bits}


_SCALARS = (
    "sequence",
    "control_status",
    "flash_status",
    "pattern_status",
    "mode",
    "status_word",
    "accepted_seq",
    "rejected_seq",
    "reject_reason",
    "plan_clock_s",
    "tick",
    "local_free",
    "cycle_position_s",
    "short_alarms",
    "preempt_state",
    "preempt_number",
)
_ABSENT = {"accepted_seq": 0, "rejected_seq": 0, "reject_reason": 0, "plan_clock_s": math.nan, "tick": -1}


def status_rows(cols: dict[str, np.ndarray]) -> list[NtcipStatus]:
    """The rows of :func:`decode_ntcip_rows` as the status objects the rest of the backend reads."""
    m = len(cols["group_state"])
    lists = {k: (cols[k].tolist() if k in cols else [_ABSENT[k]] * m) for k in _SCALARS}
    q = cols.get("queue_veh")
    arrays = [
        cols["group_state"],
        cols["volume"],
        cols["occupancy"],
        cols["detector_alarm"],
        cols["ped_call"],
        cols["preempt_states"],
    ]
    queues: Sequence[np.ndarray | None] = list(q) if q is not None else [None] * m
    return [
        NtcipStatus(
            group_state=gs,
            volume=vol,
            occupancy=occ,
            sequence=scal[0],
            control_status=scal[1],
            flash_status=scal[2],
            pattern_status=scal[3],
            mode=scal[4],
            status_word=scal[5],
            accepted_seq=scal[6],
            rejected_seq=scal[7],
            reject_reason=scal[8],
            plan_clock_s=scal[9],
            tick=scal[10],
            queue_veh=qv,
            local_free=scal[11],
            cycle_position_s=scal[12],
            short_alarms=scal[13],
            preempt_state=scal[14],
            preempt_number=scal[15],
            preempt_states=pre,
            detector_alarm=alarm,
            ped_call=ped,
        )
        for gs, vol, occ, alarm, ped, pre, qv, *scal in zip(*arrays, queues, *(lists[k] for k in _SCALARS), strict=True)
    ]


@dataclass(kw_only=True)
class NtcipLink(PolledLink):
    """What central knows about one NTCIP controller beyond :class:`~field_io.polled.PolledLink`."""

    profile: VendorProfile
    keys: list[str]
    oids: tuple[tuple[int, ...], ...]
    identity: dict[str, Any] | None = None
    status: NtcipStatus | None = None
    prev_sequence: int | None = None
    content: tuple | None = None
    safe_content: tuple | None = None  # last content the controller accepted
    refused_content: tuple | None = None
    pattern_sent: tuple | None = None
    sent_content: tuple | None = None
    sent_t: float = -math.inf  # when the last block was taken (-inf: never; see _accepted)
    refresh_s: float = 1.0  # re-SET the unchanged block this often (<= unitBackupTime / 3)
    reported: dict[str, Any] = field(default_factory=dict)  # alarm -> the value last reported (see _report)
    prepared: PreparedGet | None = None  # the status GET, encoded once (batched polls)
    set_prepared: tuple[tuple, PreparedGet] | None = None  # (block, pattern already sent) -> its SET, encoded
    shape: tuple = ()  # controllers of one shape are decoded together (keys, phases, channels, groups)
    #: preempt number -> its preemptLink, preemptDelay and preemptMinimumDuration, read when first reached
    preempt_table: dict[int, dict[str, int]] = field(default_factory=dict)


class NtcipBackend(PolledFieldBackend):
    """Backend for NTCIP 1202 controllers over SNMP (see the module docstring).

    The NTCIP codec and SNMP transport on the shared :class:`~field_io.polled.PolledFieldBackend`.
    ``client``: ``"fast"`` (SNMPv1/v2c, lean codec) or ``"pysnmp"``; SNMPv3
    endpoints always use pysnmp.
    """

    protocol_name = "NTCIP"
    #: What a standard controller reports beyond signal states and detectors (field-io.md §1.6, §1.8, §1.9):
    #: ``preempt_state`` (NTCIP ``preemptState`` of the preempt ``preempt_number`` reports: the
    #: highest-priority one running, else one timing its delay; 0 not read), ``preempt_number`` (1-based,
    #: 0 none), ``preempt_active`` (0/1: a preempt sequence runs, entry to exit; a call timing its
    #: ``preemptDelay`` is not one yet),
    #: ``local_free_status`` (``localFreeStatus``), ``coord_cycle_s`` (``coordCycleStatus``),
    #: ``detector_alarms`` (this controller's detectors whose channel reports an alarm) and ``ped_calls``
    #: (bit k: the k-th signal group, a crossing, has a pedestrian call waiting).
    extra_columns = (
        "preempt_state",
        "preempt_number",
        "preempt_active",
        "local_free_status",
        "coord_cycle_s",
        "detector_alarms",
        "ped_calls",
    )

    def __init__(
        self,
        network: Network,
        endpoints: Sequence[Endpoint] | Mapping[str, Endpoint],
        *,
        client: str = "fast",
        max_in_flight: int = 256,
        **poll: Unpack[PollOptions],
    ) -> None:
        self.max_in_flight = max_in_flight  # requests outstanding at once (bounds the answers' burst)
        self._window: asyncio.Semaphore | None = None
        self.client_kind = client
        self._clients: dict[str, SnmpClient] = {}
        self._batch = BatchGet(window=max_in_flight)
        self._shapes: dict[tuple, tuple] = {}
        super().__init__(network, endpoints, max_concurrent_connects=max_in_flight, **poll)
        self._det_start = np.array([sl.start for sl in self._det_slices], np.intp)

    def _make_link(self, row: int, endpoint: Endpoint, intersection: Any) -> NtcipLink:
        fm, prof = field_map(intersection), vendor_profile(endpoint.vendor)
        link = NtcipLink(row=row, endpoint=endpoint, fmap=fm, profile=prof, keys=[], oids=())
        self._set_status_plan(link, 1)
        return link

    # ---- lifecycle --------------------------------------------------------------------------------
    def _client(self, ep: Endpoint) -> SnmpClient:
        kind = "pysnmp" if ep.snmp.version == 3 else self.client_kind
        c = self._clients.get(kind)
        if c is None:
            c = self._clients[kind] = snmp_client(kind)
        return c

    def _ep(self, link: NtcipLink) -> Endpoint:
        """The endpoint with the lockstep timeout when stepping (the emulator answers once it has stepped)."""
        ep = link.endpoint
        if self.lockstep:
            from dataclasses import replace

            return replace(ep, timeout_s=max(ep.timeout_s, self.lockstep_timeout_s), retries=0)
        return ep

    async def _open_transport(self) -> None:
        self._window = asyncio.Semaphore(self.max_in_flight)

    def _close_transport(self) -> None:
        self._batch.close()
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    async def _release(self, link: NtcipLink) -> None:
        """Clean shutdown: systemPatternControl = 0 (standby) and clear the phase control (§1.12 step 5)."""
        try:
            await self._client(link.endpoint).set(link.endpoint, self._block_varbinds(link, None))
        except FieldIOError as e:
            log.info("%s: release not confirmed (%s); its backup timer will fall back", link.label, e)

    async def _connect(self, link: NtcipLink) -> None:
        if link.identity is not None or self.clock() < link.next_try_t:
            return
        ep, prof, fm = link.endpoint, link.profile, link.fmap
        names = list(IDENTITY_OBJECTS) + (["gwProfileVersion", "gwIntersectionId"] if prof.greenwave_extension else [])
        try:
            vals = await self._client(ep).get(ep, [_oid(prof, n) for n in names])
        except SnmpErrorStatus as e:
            bad = names[e.index] if 0 <= e.index < len(names) else "an identity object"
            self._backoff(link)
            self._set_problem(
                link,
                f"{e.message} for {bad}: not an NTCIP 1202 controller, or vendor profile {prof.name!r} does not match "
                "it; not commanding it",
            )
            return
        except FieldIOError as e:
            self._backoff(link)
            self._set_problem(link, f"unreachable ({e.message}); retrying in {link.backoff_s:g} s")
            return
        ident = {n: x for n, (_t, x) in zip(names, vals, strict=True)}
        problem = None
        std = ident.get("controllerBaseStandards")
        if not isinstance(std, bytes) or b"1202" not in std:
            problem = f"does not declare NTCIP 1202 in controllerBaseStandards ({std!r})"
        elif not isinstance(ident["maxPhases"], int) or ident["maxPhases"] < fm.max_phase:
            problem = f"has {ident['maxPhases']} phases, the inventory uses phases up to {fm.max_phase}"
        elif not isinstance(ident["maxVehicleDetectors"], int) or ident["maxVehicleDetectors"] < fm.max_channel:
            problem = (
                f"has {ident['maxVehicleDetectors']} detectors, the inventory uses channels up to {fm.max_channel}"
            )
        elif not isinstance(ident["unitBackupTime"], int) or ident["unitBackupTime"] <= 0:
            problem = "unitBackupTime is 0: the controller's watchdog is disabled"
        elif ident["unitBackupTime"] < 2 * self.dt_s:
            problem = f"unitBackupTime {ident['unitBackupTime']} s is shorter than two ticks ({2 * self.dt_s:g} s)"
        elif prof.greenwave_extension:
            ver = ident.get("gwProfileVersion")
            iid = ident.get("gwIntersectionId")
            if not isinstance(ver, bytes) or not ver.startswith(b"1."):
                problem = f"greenwave profile version {ver!r} is not supported (this central speaks 1.x)"
            elif iid != fm.id.encode():
                problem = f"reports intersection {iid!r}, the inventory expects {fm.id!r}"
        link.identity = ident
        if problem is not None:
            link.refused = True
            self._set_problem(link, problem + "; not commanding it")
            return
        link.refused = False
        link.backoff_s = 0.0
        link.prev_sequence = None
        # field-io.md §1.12 step 4: keep re-SETting within unitBackupTime / 3, at least once per tick.
        link.refresh_s = max(self.dt_s, ident["unitBackupTime"] / 3.0)
        await self._read_preempts(link)
        self._set_problem(link, None)

    async def _read_preempts(self, link: NtcipLink) -> None:
        """``maxPreempts`` and each preempt's ``preemptLink`` / ``preemptDelay`` / ``preemptMinimumDuration``.

        Read once per connect (configuration, field-io.md §1.9: central reads it and never
        writes it); the status poll then reads ``preemptState`` of every preempt. A
        controller that does not answer them keeps the poll of ``preemptState.1`` alone.
        """
        ep, prof = link.endpoint, link.profile
        client = self._client(ep)
        count = 1
        try:
            ((_tag, n),) = await client.get(ep, [_oid(prof, "maxPreempts")])
            if type(n) is int and n >= 1:
                count = min(n, MAX_PREEMPTS_READ)
        except FieldIOError:
            pass
        names = ("preemptLink", "preemptDelay", "preemptMinimumDuration")
        table: dict[int, dict[str, int]] = {}
        try:
            vals = await client.get(ep, [_oid(prof, nm, k) for k in range(1, count + 1) for nm in names])
            for k in range(count):
                row = vals[k * len(names) : (k + 1) * len(names)]
                if all(type(v) is int for _t, v in row):
                    table[k + 1] = {nm: int(v) for nm, (_t, v) in zip(names, row, strict=True)}
        except FieldIOError:
            pass
        link.preempt_table = table
        if count != sum(1 for k in link.keys if k.startswith("preemptState.")):
            self._set_status_plan(link, count)

    def _set_status_plan(self, link: NtcipLink, preempts: int) -> None:
        """What the status poll reads of this controller (keys, OIDs, its shape for the batch decode)."""
        fm, prof = link.fmap, link.profile
        pairs = status_oids(fm, prof, preempts)
        keys = [k for k, _ in pairs]
        shape = (tuple(keys), prof.name, fm.phase.tobytes(), fm.channel.tobytes(), fm.n_groups)
        link.shape = self._shapes.setdefault(shape, shape)  # one tuple per shape: grouping compares identities
        link.keys, link.oids = keys, tuple(o for _, o in pairs)
        link.prepared = None

    # ---- reads ----------------------------------------------------------------------------------------------
    async def _poll(self, link: NtcipLink) -> None:
        await self._connect(link)
        if not link.readable:
            return
        t0 = time.perf_counter()
        ep = link.endpoint
        try:
            client = self._client(ep)
            getter = getattr(client, "get_ints", None) or client.get
            assert self._window is not None
            async with self._window:
                vals = await getter(ep, link.oids)
            st = decode_ntcip_status(vals, link.keys, link.fmap, link.profile)
        except SnmpErrorStatus as e:
            link.errors += 1
            obj = link.keys[e.index] if 0 <= e.index < len(link.keys) else "the status"
            link.identity = None
            self._backoff(link)
            self._set_problem(link, f"{e.message} for {obj}; will check its identity again")
            return
        except ProtocolError as e:
            link.errors += 1
            self._set_problem(link, f"{e.message}; not using this answer")
            return
        except FieldIOError as e:
            link.errors += 1
            log.debug("%s: %s", link.label, e)
            return
        self._polled(link, st, t0)
        if link.problem is not None and link.problem.endswith("not using this answer"):
            self._set_problem(link, None)

    async def _poll_all(self, links: Sequence[NtcipLink]) -> None:
        """Every controller's status in one batch: pre-encoded GETs on one socket, one decode per shape.

        The steady state - identified, SNMPv1/v2c, the fast client - costs a datagram each way and
        a row of a batch decode per controller, with no task or future of its own. Everything else
        (connecting, SNMPv3, lockstep) goes through :meth:`_poll`, and so does every controller
        whose answer is not the plain all-INTEGER answer expected (an error status, another type, a
        value out of range), so that the failure is worded exactly as a lone read words it. A
        controller that did not answer in time is retried through :meth:`_poll` when its endpoint
        allows retries, and otherwise counts an error, as a lone read's timeout does.
        """
        if self.lockstep or self.client_kind != "fast":
            await super()._poll_all(links)
            return
        batch: list[NtcipLink] = []
        slow: list[NtcipLink] = []
        for link in links:
            if link.readable and link.endpoint.snmp.version in (1, 2):
                batch.append(link)
            else:
                slow.append(link)
        others = asyncio.gather(*(self._poll(link) for link in slow)) if slow else None
        if batch:
            items = []
            for link in batch:
                if link.prepared is None:
                    link.prepared = self._batch.prepare(link.endpoint, link.oids)
                items.append(link.prepared)
            parsed: list[tuple[int, int, int, list[int] | None] | None] = [None] * len(batch)

            def on_answer(k: int, data: bytes) -> None:  # matched against the template as it arrives
                tpl = batch[k].prepared.template  # type: ignore[union-attr]  # prepared just above
                assert tpl is not None
                try:
                    parsed[k] = tpl.ints(data)
                except ber.BerError:
                    parsed[k] = (0, -1, 0, None)

            t0 = time.perf_counter()
            answers = await self._batch.poll(items, max(link.endpoint.timeout_s for link in batch), on_answer)
            dt = time.perf_counter() - t0
            retry = self._decode_batch(batch, answers, parsed, dt)
            if retry:
                await asyncio.gather(*(self._poll(link) for link in retry))
        if others is not None:
            await others

    def _decode_batch(
        self,
        batch: Sequence[NtcipLink],
        answers: Sequence[bytes | None],
        parsed: Sequence[tuple[int, int, int, list[int] | None] | None],
        dt: float,
    ) -> list[NtcipLink]:
        """Decode the batch's plain answers a controller shape at a time (for ``_fill_bulk``); returns the
        links to read again one by one (an answer that is not the plain all-INTEGER one expected, a value out
        of range, or no answer where the endpoint allows retries)."""
        retry: list[NtcipLink] = []
        shapes: dict[tuple, tuple[list[NtcipLink], list[list[int]]]] = {}
        for link, answer, p in zip(batch, answers, parsed, strict=True):
            if answer is None:
                if link.endpoint.retries > 0:
                    retry.append(link)
                else:
                    link.errors += 1
                    log.debug("%s: no SNMP answer within %g s", link.label, link.endpoint.timeout_s)
                continue
            _rid, status, _index, ints = p if p is not None else (0, -1, 0, None)
            if status or ints is None:
                retry.append(link)  # not the plain answer: the lone read words what is wrong
                continue
            group = shapes.get(link.shape)
            if group is None:
                group = shapes[link.shape] = ([], [])
            group[0].append(link)
            group[1].append(ints)
        for rows, values in shapes.values():
            fm0, prof0 = rows[0].fmap, rows[0].profile
            cols, ok = decode_ntcip_rows(np.array(values, np.int64), rows[0].keys, fm0, prof0)
            if not ok.all():
                retry += [link for link, good in zip(rows, ok.tolist(), strict=True) if not good]
                keep = np.flatnonzero(ok)
                cols = {k: a[keep] for k, a in cols.items()}
                rows = [rows[i] for i in keep.tolist()]
                if not rows:
                    continue
            for link, st in zip(rows, status_rows(cols), strict=True):
                self._polled(link, st)
                if self.record_latency:
                    link.latency_s.append(dt)
                if link.problem is not None and link.problem.endswith("not using this answer"):
                    self._set_problem(link, None)
            idx = np.fromiter((link.row for link in rows), np.intp, len(rows))
            self._bulk.append((idx, cols, rows))
        return retry

    _QUIET: ClassVar[dict[str, Any]] = {"preempt": False, "free": 0, "detectors": (), "preempts": ()}

    def _fill_batch(
        self, cols: dict[str, Any], extra: dict[str, np.ndarray], idx: np.ndarray, c: dict[str, Any], more: Any
    ) -> None:
        """Counts (when volumeOccupancySequence moved on), occupancy, the NTCIP columns, and the alarms of the
        rows with something to report, for one shape's batch (see the base class)."""
        rows: list[NtcipLink] = more
        n_det = c["volume"].shape[1]
        det = self._det_start[idx][:, None] + np.arange(n_det)[None, :]
        seq = c["sequence"].tolist()
        advanced = np.zeros(len(rows), bool)  # counts only when volumeOccupancySequence moved on
        for i, link in enumerate(rows):
            prev, link.prev_sequence = link.prev_sequence, seq[i]
            advanced[i] = prev is not None and prev != seq[i]
        cols["counts"][det] = np.where(advanced[:, None], c["volume"], 0.0)
        cols["occupancy"][det] = c["occupancy"]
        extra["preempt_state"][idx] = c["preempt_state"]
        extra["preempt_number"][idx] = c["preempt_number"]
        extra["preempt_active"][idx] = (c["preempt_states"] > _PREEMPT_CALL).any(axis=1)
        extra["local_free_status"][idx] = c["local_free"]
        extra["coord_cycle_s"][idx] = c["cycle_position_s"]
        extra["detector_alarms"][idx] = c["detector_alarm"].sum(axis=1)
        ped = c["ped_call"]
        extra["ped_calls"][idx] = ped.astype(np.int64) @ (1 << np.arange(ped.shape[1], dtype=np.int64))
        # Alarms are worded per controller, but only where something is (or was) to report.
        noisy = (
            (c["preempt_states"] > _PREEMPT_IDLE).any(axis=1)
            | (c["local_free"] >= _BAD_PLAN)
            | c["detector_alarm"].any(axis=1)
        )
        quiet = self._QUIET
        for i in range(len(rows)):
            link = rows[i]
            if link.status is not None and (noisy[i] or (link.reported and link.reported != quiet)):
                self._report(link, link.status)
            elif not link.reported:
                link.reported = dict(quiet)

    # ---- observation columns ------------------------------------------------------------------------------
    def _row_counts(self, link: NtcipLink, st: NtcipStatus) -> np.ndarray:
        """``detectorVolume`` of the last period, only when ``volumeOccupancySequence`` advanced."""
        prev, link.prev_sequence = link.prev_sequence, st.sequence
        if prev is None or st.sequence == prev:
            return np.zeros(len(st.volume))  # first report, or the same period again
        return st.volume  # the last period (a gap > 1 loses the periods before it)

    def _row_occupancy(self, link: NtcipLink, st: NtcipStatus) -> np.ndarray:
        return st.occupancy

    def _row_extra(self, link: NtcipLink, st: NtcipStatus) -> tuple[int, ...]:
        ped = st.ped_call
        ped_mask = int(np.dot(ped, 1 << np.arange(len(ped), dtype=np.int64))) if ped is not None and ped.any() else 0
        alarms = int(st.detector_alarm.sum()) if st.detector_alarm is not None else 0
        active = int(st.preempt_states is not None and bool((st.preempt_states > _PREEMPT_CALL).any()))
        return (st.preempt_state, st.preempt_number, active, st.local_free, st.cycle_position_s, alarms, ped_mask)

    def _report(self, link: NtcipLink, st: NtcipStatus) -> None:
        """Alarms from what the controller reports, once when each starts and once when it ends.

        Preemption (``preemptState`` other than notActive: the controller serves the preempt, not
        central, field-io.md §1.9), a free mode central did not ask for (``localFreeStatus`` badPlan
        and after: the pattern was refused or cannot run, §1.6), and detector alarms by channel.
        """
        fm = link.fmap
        pst = st.preempt_states if st.preempt_states is not None else np.zeros(0, np.int64)
        preempt = bool((pst > _PREEMPT_CALL).any())
        # Calls timing their delay and links standing, by preempt number (what a sequence's start waits for).
        waits = tuple((k + 1, s) for k, s in enumerate(pst.tolist()) if s in (_PREEMPT_CALL, _LINK_ACTIVE))
        free = st.local_free if st.local_free >= _BAD_PLAN else 0
        chans = (
            tuple(int(c) for c in fm.channel[st.detector_alarm]) if st.detector_alarm is not None else ()
        )
        now = {"preempt": preempt, "free": free, "detectors": chans, "preempts": waits}
        if now == link.reported:
            return
        before, link.reported = link.reported, now
        msgs = []
        if preempt != before.get("preempt", False):
            name = _PREEMPT_NAMES.get(st.preempt_state, str(st.preempt_state))
            msgs.append(
                f"preempt active (preempt {st.preempt_number}, preemptState {name}): the controller serves the "
                "preempt, not central's commands"
                if preempt
                else "preempt ended (preemptState notActive)"
            )
        for k, s in sorted(set(waits) - set(before.get("preempts", ()))):
            cfg = link.preempt_table.get(k, {})
            if s == _PREEMPT_CALL:
                delay = cfg.get("preemptDelay")
                msgs.append(
                    f"preempt {k} called, timing its preemptDelay"
                    + (f" of {delay} s" if delay is not None else "")
                    + " (notActiveWithCall): central keeps control until it starts"
                )
            else:
                to = cfg.get("preemptLink")
                msgs.append(
                    f"preempt {k} linked to preempt {to if to else '?'} (preemptState linkActive): "
                    "the linked preempt runs while this one's call stands"
                )
        if free != before.get("free", 0):
            msgs.append(
                f"localFreeStatus {_FREE_NAMES.get(free, str(free))}: running free, not the commanded pattern"
                if free
                else "localFreeStatus back to notFree"
            )
        if chans != before.get("detectors", ()):
            msgs.append(f"detector alarm on channels {list(chans)}" if chans else "detector alarms cleared")
        for msg in msgs:
            self.alarms.append((self.time_s, fm.id, msg))
            log.warning("%s: %s", link.label, msg)

    # ---- commands -------------------------------------------------------------------------------------------
    def _content(self, link: NtcipLink, commands: Commands) -> tuple | None:
        inter = link.fmap.intersection
        plan = (commands.plans or {}).get(inter.id)
        if plan is not None:
            q = quantize_plan(plan, 1.0)
            cycle, offset, splits = plan_to_pattern(q, link.fmap)
            return ("plan", cycle, offset, tuple(sorted(splits.items())))
        t = int(commands.target_stage[link.row])
        return None if t < 0 else ("stage", t)

    def _block_varbinds(self, link: NtcipLink, content: tuple | None) -> list[tuple[tuple[int, ...], ber.Value]]:
        """The complete command block: systemPatternControl + hold / force-off / vehicle call of every group."""
        prof, fm = link.profile, link.fmap
        groups = phase_groups(fm.max_phase)
        hold = force = call = [0] * groups
        pattern = 0
        vbs: list[tuple[tuple[int, ...], ber.Value]] = []
        if content is not None and content[0] == "stage":
            hold, force, call = stage_phase_control(fm, content[1])
        elif content is not None and content[0] == "plan":
            _kind, cycle, offset, splits = content
            pattern = prof.central_pattern
            if link.pattern_sent != content:
                vbs += [
                    (_oid(prof, "patternCycleTime", pattern), (ber.INTEGER, cycle)),
                    (_oid(prof, "patternOffsetTime", pattern), (ber.INTEGER, offset)),
                    (_oid(prof, "patternSplitNumber", pattern), (ber.INTEGER, pattern)),
                ]
                vbs += [(_oid(prof, "splitTime", pattern, ph), (ber.INTEGER, s)) for ph, s in splits]
        vbs.append((_oid(prof, "systemPatternControl"), (ber.INTEGER, pattern)))
        for name, masks in (
            ("phaseControlGroupHold", hold),
            ("phaseControlGroupForceOff", force),
            ("phaseControlGroupVehCall", call),
        ):
            vbs += [(_oid(prof, name, g + 1), (ber.INTEGER, m)) for g, m in enumerate(masks)]
        return vbs

    async def _send(self, link: NtcipLink, content: tuple | None, *, step: int | None = None) -> None:
        vbs = self._block_varbinds(link, content) if content is not None else []
        if step is not None:
            vbs.append((_oid(link.profile, "gwLockstepStep"), (ber.INTEGER, step)))
        if not vbs:
            return
        ep = self._ep(link) if step is not None else link.endpoint
        try:
            if self._window is not None and step is None:
                async with self._window:
                    await self._client(ep).set(ep, vbs)
            else:
                await self._client(ep).set(ep, vbs)
        except SnmpErrorStatus as e:
            link.refused_content = content
            names = self._names(vbs)
            obj = names[e.index] if 0 <= e.index < len(names) else "the block"
            why = ""
            if link.profile.greenwave_extension and link.status is not None:
                try:
                    why = f" ({RejectReason(link.status.reject_reason).name})"
                except ValueError:
                    why = ""
            msg = f"command refused: {e.message} on {obj}{why}; keeping the last accepted command"
            self.events.append((self.time_s, link.fmap.id, msg))
            log.warning("%s: %s", link.label, msg)
            return
        except DeviceException as e:
            log.warning("%s: %s", link.label, e)
            return
        except FieldIOError as e:
            log.debug("%s: SET failed: %s", link.label, e)
            return
        if content is not None:
            self._accepted(link, content)
        if step is not None and link.profile.greenwave_extension:
            await self._poll(link)

    def _accepted(self, link: NtcipLink, content: tuple) -> None:
        """The controller took the block: it is the safe one to fall back on, and the heartbeat's clock restarts."""
        link.safe_content = content
        link.sent_content = content
        now = self.clock()
        if link.sent_t == -math.inf:
            # The first block of every controller goes out in the same tick; left alone, their
            # refreshes would come in the same tick too, every unitBackupTime / 3, a burst of SETs
            # for central and the controllers. The first refresh comes early by a per-controller
            # fraction of the period (golden-ratio spread), the later ones a period apart.
            now -= (link.row * 0.618034) % 1.0 * link.refresh_s
        link.sent_t = now
        if content[0] == "plan":
            link.pattern_sent = content

    def _commands(self, links: Sequence[NtcipLink], commands: Commands) -> list[Coroutine[Any, Any, None]]:
        """The SETs due of SNMPv1/v2c controllers as one batch (:meth:`_set_all`); SNMPv3 ones alone."""
        if self.lockstep or self.client_kind != "fast":
            return super()._commands(links, commands)
        batch: list[tuple[NtcipLink, tuple]] = []
        lone = []
        for link in links:
            content = self._due(link, commands)
            if content is None:
                continue
            prepared = self._prepared_set(link, content) if link.endpoint.snmp.version in (1, 2) else None
            if prepared is None:
                lone.append(self._send(link, content))
            else:
                batch.append((link, content))
        return [self._set_all(batch, lone)] if batch or lone else []

    def _prepared_set(self, link: NtcipLink, content: tuple) -> PreparedGet | None:
        """The command block SET of ``content``, encoded once per block (None: send it alone)."""
        key = (content, link.pattern_sent == content)
        hit = link.set_prepared
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            prepared = self._batch.prepare_set(link.endpoint, self._block_varbinds(link, content))
        except FieldIOError:
            return None  # refused before sending: the lone path words it as it always has
        link.set_prepared = (key, prepared)
        return prepared

    async def _set_all(self, batch: list[tuple[NtcipLink, tuple]], lone: list) -> None:
        """The batch's SETs at once; an answer that is not a plain success goes through :meth:`_send` again."""
        others = asyncio.gather(*lone) if lone else None
        if batch:
            items = []
            for link, _content in batch:
                hit = link.set_prepared
                assert hit is not None
                items.append(hit[1])
            answers = await self._batch.poll(items, max(link.endpoint.timeout_s for link, _c in batch))
            retry = []
            for (link, content), answer in zip(batch, answers, strict=True):
                if answer is None and link.endpoint.retries == 0:
                    log.debug("%s: SET failed: no SNMP answer within %g s", link.label, link.endpoint.timeout_s)
                    continue
                ok = False
                if answer is not None:
                    try:
                        _v, _c, pdu, _rid, status, _i, _vbl = ber.split_request(answer)
                        ok = pdu == ber.RESPONSE and status == 0
                    except ber.BerError:
                        ok = False
                if ok:
                    self._accepted(link, content)
                else:  # refused, unparseable, or no answer with retries left: the lone SET words the outcome
                    retry.append(self._send(link, content))
            if retry:
                await asyncio.gather(*retry)
        if others is not None:
            await others

    @staticmethod
    def _names(vbs: Sequence[tuple[tuple[int, ...], ber.Value]]) -> list[str]:
        out = []
        for oid, _v in vbs:
            name = "?"
            for o in OBJECTS.values():
                if oid[: len(o.oid)] == o.oid and len(oid) > len(o.oid):
                    name = o.name
            out.append(name)
        return out

    def _choose(self, link: NtcipLink, commands: Commands) -> tuple | None:
        want = self._content(link, commands)
        if want is not None and want == link.refused_content:
            return link.safe_content  # the controller refused it: keep the last safe command (and heartbeat)
        if want != link.refused_content:
            link.refused_content = None
        return want

    def _idle(self, link: NtcipLink) -> None:
        link.content = None

    def _command(self, link: NtcipLink, commands: Commands) -> Coroutine[Any, Any, None] | None:
        content = self._due(link, commands)
        return None if content is None else self._send(link, content)

    def _due(self, link: NtcipLink, commands: Commands) -> tuple | None:
        """The block to SET this tick (None: nothing due): changed, not in control, or the heartbeat's refresh."""
        try:
            link.content = self._choose(link, commands)
        except InputError as e:
            self.events.append((self.time_s, link.fmap.id, f"plan not sent: {e}"))
            link.content = link.safe_content
        if self.lockstep or link.content is None:
            return None  # lockstep: the block goes out with the step
        st = link.status
        in_control = st is not None and bool(st.status_word & StatusBits.CENTRAL_CONTROL)
        due = self.clock() - link.sent_t >= link.refresh_s - 0.5 * self.dt_s
        if link.content != link.sent_content or not in_control or due:
            return link.content
        return None

    def _step(self, link: NtcipLink) -> Coroutine[Any, Any, None] | None:
        if not link.readable:
            return None
        return self._step_one(link, link.content if link.was_active else None)

    async def _step_one(self, link: NtcipLink, content: tuple | None) -> None:
        if not link.profile.greenwave_extension:
            raise InputError("lockstep needs controllers of the greenwave NTCIP profile", where=link.label)
        if link.was_active and content is not None:
            await self._send(link, content, step=self.step)
        else:
            await self._send(link, None, step=self.step)
