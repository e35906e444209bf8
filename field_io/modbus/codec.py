"""Encode and decode greenwave Modbus profile registers (every address from :mod:`.profile`).

Golden vectors for the CRC and the command block are in
``tests/field_io/test_modbus_profile.py``. The hot paths are vectorised:
the field side encodes the status rows of all its intersections as one
``(N, 124)`` array per tick; central decodes one controller's registers with
numpy slicing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from field_io.commands import (
    MAX_PLAN_STAGES,
    CommandBlock,
    CommandKind,
    RejectReason,
    plan_entries,
    plan_from_entries,
)
from field_io.mapping import QUEUE_NOT_MEASURED, FieldMap, queue_from_wire, queue_to_wire
from field_io.modbus.profile import (
    COMMAND,
    CONFIG,
    DETECTORS,
    FALLBACK_STORED,
    FALLBACK_UPLOAD,
    IDENTITY,
    INTERGREEN,
    MAGIC,
    PROFILE_MAJOR,
    PROFILE_MINOR,
    QUEUES,
    STATUS,
    GroupStateCode,
    Table,
)
from intersections.model import GroupKind, Intersection, SignalState
from intersections.plan import TimingPlan

__all__ = [
    "decode_status_rows",
    "decode_status_arrays",
    "STATUS_RW_FRAME",
    "STATUS_READ_FRAME",
    "crc16_modbus",
    "Identity",
    "encode_identity",
    "decode_identity",
    "heartbeat_words",
    "encode_command_block",
    "decode_command_block",
    "encode_plan_table",
    "decode_plan_table",
    "FieldStatus",
    "status_read_count",
    "decode_status",
    "STATE_TO_CODE",
    "CODE_TO_STATE",
    "encode_config",
    "decode_config",
    "BLOCK_START",
    "BLOCK_LEN",
    "STATUS_BASE",
    "STATUS_LEN",
    "OCC_SCALE",
    "CAP_QUEUES",
    "StatusRead",
    "status_read",
    "encode_queues",
    "MAX_READ",
]

BLOCK_START = COMMAND.address("seq")  # 105
BLOCK_LEN = COMMAND.end - BLOCK_START  # 59 words: seq .. crc
STATUS_BASE = STATUS.base  # 200
STATUS_LEN = DETECTORS.end - STATUS.base  # 124
OCC_SCALE = 1000  # occupancy register units per 100 %
CAP_QUEUES = 0b1000  # identity capability bit 3: the queues table is served (profile 1.1)
MAX_READ = 125  # Modbus: registers per read request (FC 3/4/23)
OCC_FAULT_MIN = 1001

STATE_TO_CODE = np.zeros(8, np.uint16)
STATE_TO_CODE[int(SignalState.RED)] = GroupStateCode.RED
STATE_TO_CODE[int(SignalState.YELLOW)] = GroupStateCode.YELLOW
STATE_TO_CODE[int(SignalState.GREEN)] = GroupStateCode.GREEN
STATE_TO_CODE[int(SignalState.FLASH)] = GroupStateCode.FLASH
CODE_TO_STATE = np.full(16, int(SignalState.RED), np.int8)  # dark / unknown -> red (no right of way)
CODE_TO_STATE[GroupStateCode.YELLOW] = int(SignalState.YELLOW)
CODE_TO_STATE[GroupStateCode.GREEN] = int(SignalState.GREEN)
CODE_TO_STATE[GroupStateCode.FLASH] = int(SignalState.FLASH)

_KIND_CODE = {GroupKind.VEHICLE: 0, GroupKind.PEDESTRIAN: 1, GroupKind.BUS: 2, GroupKind.BICYCLE: 3}
KIND_FROM_CODE = {v: k for k, v in _KIND_CODE.items()}

# CRC-16/MODBUS table (poly 0xA001 reflected, init 0xFFFF).
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0xA001 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc16_bytes(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def crc16_modbus(words: Sequence[int]) -> int:
    """CRC-16/MODBUS of 16-bit words serialised big-endian (check value of b"123456789": 0x4B37)."""
    return crc16_bytes(np.asarray(words, dtype=">u2").tobytes())


def _u32(words: Sequence[int], i: int) -> int:
    return (int(words[i]) << 16) | int(words[i + 1])


def _put_u32(out: list[int], i: int, value: int) -> None:
    value = int(value) & 0xFFFFFFFF
    out[i] = value >> 16
    out[i + 1] = value & 0xFFFF


def _ds(seconds: float) -> int:
    """Seconds -> 0.1 s register units (rounded, clamped to u16)."""
    return int(min(max(round(float(seconds) * 10), 0), 0xFFFF))


def _ds_up(seconds: float) -> int:
    """Seconds -> 0.1 s units rounded *up* (configured timings are never shown shorter than they are)."""
    return int(min(max(math.ceil(float(seconds) * 10 - 1e-6), 0), 0xFFFF))


# ---- identity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    magic: int
    profile_major: int
    profile_minor: int
    vendor: int
    model: int
    firmware: int
    serial: int
    device_id: int
    group_count: int
    detector_channels: int
    stage_count: int
    backup_time_s: float
    resume_heartbeats: int
    tick_s: float
    capabilities: int
    intersection_id: str

    @property
    def profile(self) -> str:
        return f"{self.profile_major}.{self.profile_minor}"


def encode_identity(
    fmap: FieldMap,
    *,
    device_id: int,
    backup_time_s: float,
    resume_heartbeats: int,
    tick_s: float,
    serial: int = 0,
    vendor: int = 1,
    model: int = 1,
    firmware: int = 0x0100,
    capabilities: int = 0b011 | CAP_QUEUES,
    profile: tuple[int, int] = (PROFILE_MAJOR, PROFILE_MINOR),
) -> list[int]:
    t = IDENTITY
    w = [0] * t.length
    w[t.offset("magic")] = MAGIC
    w[t.offset("profile_major")], w[t.offset("profile_minor")] = profile
    w[t.offset("vendor")] = vendor
    w[t.offset("model")] = model
    w[t.offset("firmware")] = firmware
    _put_u32(w, t.offset("serial"), serial)
    w[t.offset("device_id")] = device_id
    w[t.offset("group_count")] = fmap.n_groups
    w[t.offset("detector_channels")] = fmap.max_channel
    w[t.offset("stage_count")] = fmap.n_stages
    w[t.offset("backup_time")] = _ds(backup_time_s)
    w[t.offset("resume_heartbeats")] = int(resume_heartbeats)
    w[t.offset("tick")] = _ds(tick_s)
    w[t.offset("capabilities")] = capabilities
    f = t.field("intersection_id")
    raw = fmap.id.encode("ascii", "replace")[: f.count].ljust(f.count + f.count % 2, b"\0")
    for k in range(f.words):
        w[f.offset + k] = (raw[2 * k] << 8) | raw[2 * k + 1]
    return w


def decode_identity(words: Sequence[int]) -> Identity:
    t = IDENTITY
    f = t.field("intersection_id")
    raw = b"".join(int(x).to_bytes(2, "big") for x in words[f.offset : f.offset + f.words])
    return Identity(
        magic=int(words[t.offset("magic")]),
        profile_major=int(words[t.offset("profile_major")]),
        profile_minor=int(words[t.offset("profile_minor")]),
        vendor=int(words[t.offset("vendor")]),
        model=int(words[t.offset("model")]),
        firmware=int(words[t.offset("firmware")]),
        serial=_u32(words, t.offset("serial")),
        device_id=int(words[t.offset("device_id")]),
        group_count=int(words[t.offset("group_count")]),
        detector_channels=int(words[t.offset("detector_channels")]),
        stage_count=int(words[t.offset("stage_count")]),
        backup_time_s=int(words[t.offset("backup_time")]) / 10.0,
        resume_heartbeats=int(words[t.offset("resume_heartbeats")]),
        tick_s=int(words[t.offset("tick")]) / 10.0,
        capabilities=int(words[t.offset("capabilities")]),
        intersection_id=raw.split(b"\0", 1)[0].decode("ascii", "replace"),
    )


# ---- command table ---------------------------------------------------------------------------------


def heartbeat_words(heartbeat: int, wall_time_s: float, step: int = 0) -> list[int]:
    """Registers 100-104: heartbeat, central clock, lockstep step (central writes them to every controller
    every tick, so the offsets are looked up once, not per call)."""
    w = [int(heartbeat) & 0xFFFF, 0, 0, 0, int(step) & 0xFFFF]
    secs = int(wall_time_s)
    _put_u32(w, _CENTRAL_TIME, secs)
    w[_CENTRAL_TIME_MS] = int((wall_time_s - secs) * 1000) % 1000
    return w


_CENTRAL_TIME, _CENTRAL_TIME_MS = COMMAND.offset("central_time"), COMMAND.offset("central_time_ms")


def _plan_words(t: Table, plan: TimingPlan | None, inter: Intersection) -> dict[int, int]:
    """Offsets -> values of the plan fields of table ``t`` (shared by command and fallback tables)."""
    out: dict[int, int] = {}
    if plan is None:
        return out
    entries = plan_entries(plan, inter)
    if len(entries) > MAX_PLAN_STAGES:
        raise ValueError(f"a plan of {len(entries)} stages does not fit the profile's {MAX_PLAN_STAGES} positions")
    out[t.offset("plan_cycle")] = _ds(plan.cycle_s)
    out[t.offset("plan_offset")] = _ds(plan.offset_s)
    out[t.offset("plan_stage_count")] = len(entries)
    fs, fg, fi = t.field("plan_stage"), t.field("plan_green"), t.field("plan_intergreen")
    for k, (stage, green, ig) in enumerate(entries):
        out[fs.offset + k * fs.stride] = stage + 1
        out[fg.offset + k * fg.stride] = _ds(green)
        out[fi.offset + k * fi.stride] = _ds(ig)
    return out


def _plan_from_words(t: Table, w: Sequence[int], base: int, inter: Intersection) -> TimingPlan | None:
    """The plan fields of table ``t`` read from ``w`` (``w[0]`` is address ``base``); None if out of range."""

    def at(name: str, k: int = 0) -> int:
        f = t.field(name)
        return int(w[t.base + f.offset + k * f.stride - base])

    n = at("plan_stage_count")
    if not 1 <= n <= MAX_PLAN_STAGES or at("plan_cycle") == 0:
        return None
    entries = []
    for k in range(n):
        s = at("plan_stage", k)
        if not 1 <= s <= len(inter.stages):
            return None
        entries.append((s - 1, at("plan_green", k) / 10.0, at("plan_intergreen", k) / 10.0))
    return plan_from_entries(inter, at("plan_cycle") / 10.0, at("plan_offset") / 10.0, entries)


def encode_command_block(block: CommandBlock, inter: Intersection) -> list[int]:
    """Registers 105-163 (seq .. crc) of ``block``; stage numbers become 1-based."""
    t = COMMAND
    w = [0] * BLOCK_LEN

    def put(name: str, value: int) -> None:
        w[t.address(name) - BLOCK_START] = int(value) & 0xFFFF

    put("seq", block.seq)
    put("kind", block.kind)
    if block.kind == CommandKind.STAGE:
        put("target_stage", block.target_stage + 1)
        put("call_mask", block.call)
        put("hold_mask", block.hold)
        put("force_off_mask", block.force_off)
    elif block.kind == CommandKind.PLAN:
        for off, v in _plan_words(t, block.plan, inter).items():
            w[t.base + off - BLOCK_START] = v
    w[-1] = crc16_modbus(w[:-1])
    return w


def decode_command_block(words: Sequence[int], inter: Intersection) -> tuple[CommandBlock | None, RejectReason]:
    """Registers 105-163 -> a block, or None and why it cannot be applied."""
    if len(words) != BLOCK_LEN:
        return None, RejectReason.CHECKSUM
    if crc16_modbus(words[:-1]) != int(words[-1]):
        return None, RejectReason.CHECKSUM
    t = COMMAND

    def get(name: str) -> int:
        return int(words[t.address(name) - BLOCK_START])

    seq, kind = get("seq"), get("kind")
    if kind not in tuple(CommandKind):
        return CommandBlock(seq=seq, kind=kind), RejectReason.UNKNOWN_KIND
    if kind == CommandKind.STAGE:
        return (
            CommandBlock(
                seq=seq,
                kind=kind,
                target_stage=get("target_stage") - 1,
                call=get("call_mask"),
                hold=get("hold_mask"),
                force_off=get("force_off_mask"),
            ),
            RejectReason.NONE,
        )
    if kind == CommandKind.PLAN:
        plan = _plan_from_words(t, words, BLOCK_START, inter)
        if plan is None:
            return CommandBlock(seq=seq, kind=kind), RejectReason.PLAN_OUT_OF_RANGE
        return CommandBlock(seq=seq, kind=kind, plan=plan), RejectReason.NONE
    return CommandBlock(seq=seq, kind=kind), RejectReason.NONE


def encode_plan_table(table: Table, seq: int, plan: TimingPlan | None, inter: Intersection) -> list[int]:
    """A fallback plan table (upload or stored): seq, plan, CRC over the rest."""
    w = [0] * table.length
    w[0] = int(seq) & 0xFFFF
    for off, v in _plan_words(table, plan, inter).items():
        w[off] = v
    w[-1] = crc16_modbus(w[:-1])
    return w


def decode_plan_table(
    table: Table, words: Sequence[int], inter: Intersection
) -> tuple[int, TimingPlan | None, RejectReason]:
    if len(words) != table.length or crc16_modbus(words[:-1]) != int(words[-1]):
        return 0, None, RejectReason.CHECKSUM
    plan = _plan_from_words(table, words, table.base, inter)
    if plan is None:
        return int(words[0]), None, RejectReason.PLAN_OUT_OF_RANGE
    return int(words[0]), plan, RejectReason.NONE


assert FALLBACK_UPLOAD.length == FALLBACK_STORED.length


# ---- status (central side) ---------------------------------------------------------------------


@dataclass(frozen=True)
class FieldStatus:
    """One controller's status and detector tables, decoded (stages 0-based, -1 none)."""

    status_word: int
    mode: int
    heartbeat_echo: int
    accepted_seq: int
    rejected_seq: int
    reject_reason: int
    fault_bits: int
    current_stage: int
    stage_timer_s: float
    controller_time_s: float
    tick_counter: int
    detector_sequence: int
    plan_clock_s: float
    heartbeat_age_s: float
    target_stage: int
    active_cycle_s: float
    group_state: np.ndarray  # (G,) SignalState codes
    volume: np.ndarray  # (D,) counters, uint16 wrap
    occupancy_raw: np.ndarray  # (D,) register values
    queue_veh: np.ndarray | None = None  # (G,) vehicles queued per group, NaN not measured; None: not read


def status_read_count(fmap: FieldMap) -> int:
    """Registers to read from 200 to cover the status table and the channels in use."""
    vol = DETECTORS.field("volume")
    return (DETECTORS.base - STATUS.base) + vol.offset + 2 * max(fmap.max_channel, 0)


@dataclass(frozen=True)
class StatusRead:
    """Where one tick's status read starts and how long it is; ``queue_apart``: the queues need a read of their own."""

    base: int
    count: int
    queue_apart: bool

    @property
    def queues(self) -> bool:
        """The queues table is read (with the status or apart)."""
        return self.queue_apart or self.skip > 0

    @property
    def skip(self) -> int:
        """Words before the status table in the answer (the queues read with it)."""
        return STATUS_BASE - self.base


def status_read(fmap: FieldMap, capabilities: int) -> StatusRead:
    """The status read for a controller: with the queues table in front when it serves one and all fits.

    Modbus caps a read at 125 registers (:data:`MAX_READ`); the queues table
    (168-199) sits right before the status (200) so that, for a controller
    using detector channels up to 32, one transaction carries both.
    """
    count = status_read_count(fmap)
    if not capabilities & CAP_QUEUES:
        return StatusRead(STATUS_BASE, count, queue_apart=False)
    if QUEUES.length + count <= MAX_READ:
        return StatusRead(QUEUES.base, QUEUES.length + count, queue_apart=False)
    return StatusRead(STATUS_BASE, count, queue_apart=True)


def decode_queues(words: Sequence[int] | np.ndarray, n_groups: int) -> np.ndarray:
    """Queue registers -> vehicles per group (NaN where not measured)."""
    return queue_from_wire(np.asarray(words[:n_groups]))


def encode_queues(queue_veh: np.ndarray, n_rows: int) -> np.ndarray:
    """``(N, G)`` vehicles (NaN unknown) -> ``(N, 32)`` queue-table rows."""
    out = np.full((n_rows, QUEUES.length), QUEUE_NOT_MEASURED, np.int64)
    q = np.asarray(queue_veh, float)
    if q.size:
        g = min(q.shape[1], QUEUES.length)
        out[:, :g] = queue_to_wire(q[:, :g])
    return out.astype(np.uint16)


#: A whole steady-state status request as one record (MBAP header, then the PDU), for building or parsing a
#: connection's requests as one array: function 23 writing the five heartbeat registers (heartbeat, central
#: clock, step) and reading the status; function 3 reading it (a controller not commanded).
STATUS_RW_FRAME = np.dtype(
    [
        ("tid", ">u2"),
        ("pid", ">u2"),
        ("len", ">u2"),
        ("unit", "u1"),
        ("fc", "u1"),
        ("raddr", ">u2"),
        ("rcount", ">u2"),
        ("waddr", ">u2"),
        ("wcount", ">u2"),
        ("nbytes", "u1"),
        ("hb", ">u2"),
        ("clock", ">u2", (3,)),
        ("step", ">u2"),
    ]
)
STATUS_READ_FRAME = np.dtype(
    [("tid", ">u2"), ("pid", ">u2"), ("len", ">u2"), ("unit", "u1"), ("fc", "u1"), ("raddr", ">u2"), ("rcount", ">u2")]
)

_S = {f.name: f.offset for f in STATUS.fields}
_D0 = DETECTORS.base - STATUS.base
_VOL0 = _D0 + DETECTORS.field("volume").offset
_NIB_SHIFT = (4 * np.arange(4))[None, :]


_CT, _PC = _S["controller_time"], _S["plan_clock"]


#: FieldStatus's scalar fields, status_word .. active_cycle_s, in order.
_StatusScalars = tuple[int, int, int, int, int, int, int, int, float, float, int, int, float, float, int, float]


def _status_scalars(w: Any) -> _StatusScalars:
    """The status table's scalar words as :class:`FieldStatus`'s first fields, in their order.

    Positional, as one tuple: both decoders build thousands of these per poll. ``w`` is one
    status table's words, or (the batch decoder) a 2-D int64 array whose row ``k`` is word ``k``
    of every controller: the same formulas then give one column per field.
    """
    return (
        w[_S["status_word"]],
        w[_S["mode"]],
        w[_S["heartbeat_echo"]],
        w[_S["accepted_seq"]],
        w[_S["rejected_seq"]],
        w[_S["reject_reason"]],
        w[_S["fault_bits"]],
        w[_S["current_stage"]] - 1,
        w[_S["stage_timer"]] / 10.0,
        ((w[_CT] << 16) | w[_CT + 1]) + w[_S["controller_time_ms"]] / 1000.0,
        w[_S["tick_counter"]],
        w[_S["detector_sequence"]],
        ((w[_PC] << 16) | w[_PC + 1]) / 10.0,
        w[_S["heartbeat_age"]] / 10.0,
        w[_S["target_stage"]] - 1,
        w[_S["active_cycle"]] / 10.0,
    )


def decode_status(
    words: Sequence[int], fmap: FieldMap, queue_words: Sequence[int] | None = None, *, skip: int = 0
) -> FieldStatus:
    """Decode a status read; the status table starts ``skip`` words in (after the queues table, when
    the read covered it) and ``queue_words`` is the queues table read on its own."""
    w = words if isinstance(words, list) else list(words)
    arr = np.asarray(w, dtype=np.int64)
    queue: np.ndarray | None
    if skip:
        queue = decode_queues(arr, fmap.n_groups)
        w, arr = w[skip:], arr[skip:]
    else:
        queue = None if queue_words is None else decode_queues(queue_words, fmap.n_groups)
    g0 = _S["group_state"]
    nib = np.concatenate((arr[g0 : g0 + 4], arr[_D0 : _D0 + 4]))
    codes = ((nib[:, None] >> _NIB_SHIFT) & 0xF).ravel()[: fmap.n_groups]
    ch = fmap.channel
    if ch.size:
        volume = arr[_VOL0 + 2 * (ch - 1)]
        occ = arr[_VOL0 + 1 + 2 * (ch - 1)]
    else:
        volume = occ = np.zeros(0, np.int64)
    return FieldStatus(
        *_status_scalars(w),
        group_state=CODE_TO_STATE[codes],
        volume=volume,
        occupancy_raw=occ,
        queue_veh=queue,
    )


def decode_status_arrays(words: np.ndarray, fmap: FieldMap, *, skip: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """The status columns of many controllers of one layout, as arrays over the rows (no object per row).

    ``words`` is ``(B, count)``, one status read per row. Returns the status words as int64 (the
    status table first: ``skip`` words of queues table dropped) and the columns ``group_state``,
    ``volume``, ``occupancy_raw``, ``queue_veh`` (None unless the read covered the queues table),
    ``status_word``, ``mode``, ``accepted_seq``, ``rejected_seq`` and ``reject_reason``: what a
    central filling its observation a block at a time needs, row ``i`` decoding as
    ``decode_status(words[i], fmap, skip=skip)``.
    """
    arr = np.asarray(words, dtype=np.int64)
    n = arr.shape[0]
    queues = None
    if skip:
        queues = queue_from_wire(arr[:, : fmap.n_groups])
        arr = arr[:, skip:]
    g0 = _S["group_state"]
    nib = np.concatenate((arr[:, g0 : g0 + 4], arr[:, _D0 : _D0 + 4]), axis=1)
    codes = ((nib[:, :, None] >> _NIB_SHIFT[None]) & 0xF).reshape(n, -1)[:, : fmap.n_groups]
    ch = fmap.channel
    if ch.size:
        volume = arr[:, _VOL0 + 2 * (ch - 1)]
        occ = arr[:, _VOL0 + 1 + 2 * (ch - 1)]
    else:
        volume = occ = np.zeros((n, 0), np.int64)
    arrays: dict[str, Any] = {
        "group_state": CODE_TO_STATE[codes],
        "volume": volume,
        "occupancy_raw": occ,
        "queue_veh": queues,
        **{k: arr[:, _S[k]] for k in ("status_word", "mode", "accepted_seq", "rejected_seq", "reject_reason")},
    }
    return arr, arrays


def decode_status_rows(
    words: np.ndarray, fmap: FieldMap, *, skip: int = 0, arrays: dict[str, Any] | None = None
) -> list[FieldStatus]:
    """:func:`decode_status` for many controllers of one layout at once: ``words`` is ``(B, count)``.

    Row ``i`` decodes exactly as ``decode_status(words[i], fmap, skip=skip)`` (a test holds the two
    together). ``arrays``, when given, also receives :func:`decode_status_arrays`' columns.
    """
    arr, cols = decode_status_arrays(words, fmap, skip=skip)
    if arrays is not None:
        arrays.update(cols)
    n = arr.shape[0]
    states, volume, occ, queues = cols["group_state"], cols["volume"], cols["occupancy_raw"], cols["queue_veh"]
    out = []
    new, names = object.__new__, _FIELD_STATUS_NAMES
    # The scalar fields column by column (the same formulas, over arrays), then one tuple per row.
    columns: tuple[np.ndarray, ...] = _status_scalars(arr.T)  # type: ignore[assignment]  # arrays in, arrays out
    scalars = zip(*(col.tolist() for col in columns), strict=True)
    per_row = zip(scalars, states, volume, occ, queues if queues is not None else [None] * n, strict=True)
    for scal, gs, vol, oc, q in per_row:
        # The frozen dataclass's generated __init__ sets each field through object.__setattr__
        # (~8 us a status); filling the instance dict directly builds the same value in ~1 us.
        st = new(FieldStatus)
        st.__dict__.update(zip(names, (*scal, gs, vol, oc, q), strict=True))
        out.append(st)
    return out


_FIELD_STATUS_NAMES = tuple(f.name for f in fields(FieldStatus))


# ---- configuration (commissioning) ---------------------------------------------------------------


def encode_config(fmap: FieldMap) -> tuple[list[int], list[int]]:
    """(config table, intergreen table) words for an intersection's configured timings."""
    inter = fmap.intersection
    c = CONFIG
    w = [0] * c.length
    per = {
        "group_phase": lambda k, grp: int(fmap.phase[k]),
        "group_kind": lambda k, grp: _KIND_CODE[grp.kind],
        "group_min_green": lambda k, grp: _ds_up(grp.min_green_s),
        "group_max_green": lambda k, grp: _ds_up(grp.max_green_s),
        "group_yellow": lambda k, grp: _ds_up(grp.yellow_s),
        "group_all_red": lambda k, grp: _ds_up(grp.all_red_s),
        "group_walk": lambda k, grp: _ds_up(grp.walk_s),
        "group_ped_clearance": lambda k, grp: _ds_up(grp.ped_clearance_s),
    }
    for name, fn in per.items():
        f = c.field(name)
        for k, grp in enumerate(inter.groups):
            w[f.offset + k * f.stride] = fn(k, grp)
    fc = c.field("conflicts")
    for k in range(len(inter.groups)):
        mask = sum(1 << int(j) for j in np.flatnonzero(inter.conflicts[k]))
        _put_u32(w, fc.offset + k * fc.stride, mask)
    fs = c.field("stage_groups")
    sm = inter.stage_mask()
    for k in range(len(inter.stages)):
        _put_u32(w, fs.offset + k * fs.stride, sum(1 << int(j) for j in np.flatnonzero(sm[k])))
    fd = c.field("detector_group")
    for d, ch in zip(inter.detectors, fmap.channel, strict=True):
        w[fd.offset + int(ch) - 1] = inter.group_index(d.group) + 1
    n = len(inter.groups)
    ig = [0] * INTERGREEN.length
    for i in range(n):
        for j in range(n):
            ig[i * 32 + j] = _ds_up(inter.intergreen_s[i, j])
    return w, ig


def decode_config(config: Sequence[int], intergreen: Sequence[int], n_groups: int) -> dict[str, object]:
    """The configured phasing and timings as plain values (seconds, 0-based indices)."""
    c = CONFIG
    w = list(config)

    def col(name: str, scale: float = 1.0) -> list[float]:
        f = c.field(name)
        return [w[f.offset + k * f.stride] * scale for k in range(n_groups)]

    fc, fs, fd = c.field("conflicts"), c.field("stage_groups"), c.field("detector_group")
    conflicts = [_u32(w, fc.offset + k * fc.stride) for k in range(n_groups)]
    stages = []
    for k in range(fs.count):
        m = _u32(w, fs.offset + k * fs.stride)
        if m:
            stages.append(frozenset(j for j in range(32) if m >> j & 1))
    det = {ch + 1: w[fd.offset + ch] - 1 for ch in range(fd.count) if w[fd.offset + ch]}
    ig = np.array([[intergreen[i * 32 + j] / 10.0 for j in range(n_groups)] for i in range(n_groups)])
    return {
        "phase": [int(x) for x in col("group_phase")],
        "kind": [KIND_FROM_CODE.get(int(x), GroupKind.VEHICLE) for x in col("group_kind")],
        "min_green_s": col("group_min_green", 0.1),
        "max_green_s": col("group_max_green", 0.1),
        "yellow_s": col("group_yellow", 0.1),
        "all_red_s": col("group_all_red", 0.1),
        "walk_s": col("group_walk", 0.1),
        "ped_clearance_s": col("group_ped_clearance", 0.1),
        "conflicts": np.array([[bool(conflicts[i] >> j & 1) for j in range(n_groups)] for i in range(n_groups)]),
        "stages": stages,
        "detector_group": det,
        "intergreen_s": ig,
    }


# ---- status (field side, vectorised over the intersections of an emulator) ----------------------


@dataclass(frozen=True)
class StatusLayout:
    """Index arrays to scatter a snapshot into ``(N, STATUS_LEN)`` status rows."""

    det_row: np.ndarray
    det_col: np.ndarray  # column of each detector's volume register (occupancy is +1)
    n_rows: int


def status_layout(maps: Sequence[FieldMap]) -> StatusLayout:
    rows, cols = [], []
    vol = DETECTORS.base - STATUS.base + DETECTORS.field("volume").offset
    for r, m in enumerate(maps):
        for c in m.channel:
            rows.append(r)
            cols.append(vol + 2 * (int(c) - 1))
    return StatusLayout(np.asarray(rows, np.int64), np.asarray(cols, np.int64), len(maps))


def occupancy_code(occupancy: np.ndarray) -> np.ndarray:
    """0..1 -> 0..1000 (0.1 %), rounded *up* so that any presence stays visible; NaN -> 1017 (erratic)."""
    occ = np.asarray(occupancy, float)
    code = np.ceil(np.clip(np.nan_to_num(occ, nan=0.0), 0.0, 1.0) * OCC_SCALE - 1e-9)
    return np.where(np.isnan(occ), 1017, np.maximum(code, 0)).astype(np.int64)


def encode_status(
    layout: StatusLayout,
    *,
    group_state: np.ndarray,
    stage: np.ndarray,
    stage_timer_s: np.ndarray,
    target: np.ndarray,
    tick: int,
    detector_sequence: int,
    plan_clock_s: float,
    active_cycle_s: np.ndarray,
    volume: np.ndarray,
    occupancy: np.ndarray,
) -> np.ndarray:
    """The tick's part of every status row (live fields are patched per request by :func:`patch_live`)."""
    n = layout.n_rows
    out = np.zeros((n, STATUS_LEN), np.int64)
    s = STATUS
    codes = STATE_TO_CODE[np.clip(np.asarray(group_state, np.int64), 0, 7)].astype(np.int64)
    padded = np.zeros((n, 32), np.int64)
    padded[:, : codes.shape[1]] = codes
    words = (padded.reshape(n, 8, 4) << (4 * np.arange(4))[None, None, :]).sum(axis=2)
    g0 = s.offset("group_state")
    d0 = DETECTORS.base - STATUS.base
    out[:, g0 : g0 + 4] = words[:, :4]
    out[:, d0 : d0 + 4] = words[:, 4:]
    out[:, s.offset("current_stage")] = np.asarray(stage) + 1
    out[:, s.offset("stage_timer")] = np.clip(np.rint(np.asarray(stage_timer_s) * 10), 0, 0xFFFF)
    out[:, s.offset("target_stage")] = np.maximum(np.asarray(target), -1) + 1
    out[:, s.offset("tick_counter")] = tick & 0xFFFF
    out[:, s.offset("detector_sequence")] = detector_sequence & 0xFFFF
    clock = round(float(plan_clock_s) * 10) & 0xFFFFFFFF
    out[:, s.offset("plan_clock")] = clock >> 16
    out[:, s.offset("plan_clock") + 1] = clock & 0xFFFF
    out[:, s.offset("active_cycle")] = np.clip(np.rint(np.asarray(active_cycle_s) * 10), 0, 0xFFFF)
    if layout.det_row.size:
        out[layout.det_row, layout.det_col] = np.asarray(volume, np.int64) & 0xFFFF
        out[layout.det_row, layout.det_col + 1] = occupancy_code(occupancy)
    return out.astype(np.uint16)


_LIVE = {
    name: STATUS.offset(name)
    for name in (
        "status_word",
        "mode",
        "heartbeat_echo",
        "accepted_seq",
        "rejected_seq",
        "reject_reason",
        "fault_bits",
        "heartbeat_age",
        "controller_time_ms",
    )
}
_CTIME = STATUS.offset("controller_time")


def patch_live_rows(rows: np.ndarray, *, wall_time_s: float, heartbeat_age_s: np.ndarray, **values: np.ndarray) -> None:
    """:func:`patch_live` for many status rows at once (``rows`` is ``(B, STATUS_LEN)``, each value one per row)."""
    secs = int(wall_time_s)
    age = np.asarray(heartbeat_age_s, float)
    age = np.where((age == age) & (age < 6553.5), age, 6553.5)
    for name, v in values.items():
        rows[:, _LIVE[name]] = np.asarray(v, np.int64) & 0xFFFF
    rows[:, _CTIME] = (secs >> 16) & 0xFFFF
    rows[:, _CTIME + 1] = secs & 0xFFFF
    rows[:, _LIVE["controller_time_ms"]] = int((wall_time_s - secs) * 1000) % 1000
    rows[:, _LIVE["heartbeat_age"]] = (np.maximum(age, 0.0) * 10).astype(np.int64)


def patch_live(row: np.ndarray, *, wall_time_s: float, heartbeat_age_s: float, **values: int) -> None:
    """Write the request-time fields (status word, seqs, heartbeat echo, clock) into one status row.

    One indexed assignment for all of them: the emulator patches a row per status read, thousands
    per second, and a numpy item assignment per field cost more than the rest of the read.
    """
    secs = int(wall_time_s)
    age = heartbeat_age_s if heartbeat_age_s == heartbeat_age_s and heartbeat_age_s < 6553.5 else 6553.5
    idx = [_LIVE[name] for name in values]
    vals = [int(v) & 0xFFFF for v in values.values()]
    idx += [_CTIME, _CTIME + 1, _LIVE["controller_time_ms"], _LIVE["heartbeat_age"]]
    vals += [(secs >> 16) & 0xFFFF, secs & 0xFFFF, int((wall_time_s - secs) * 1000) % 1000, int(max(age, 0.0) * 10)]
    row[idx] = vals
