"""The greenwave Modbus TCP profile, as data.

One table (:data:`PROFILE`) defines every register a greenwave field device
serves: identity and profile version, the central heartbeat, mode and fault
status, the current stage and its timer, signal-group states as the
controller's outputs show them, detector counters and occupancy, the command
block (commanded plan and stage requests, with a sequence number and a
CRC-16), the configured timings a technician compares with the inventory, and
the fallback plan uploaded during commissioning. The codec
(:mod:`field_io.modbus.codec`) takes every address from this table and
``docs/modbus-profile.md`` is generated from it
(``python -m field_io.modbus.profile > docs/modbus-profile.md``; a test keeps
the file in step).

Design rules (``../shared/reference/field-io.md`` §2.2, adapted):

* all tables are **holding registers** (function codes 3, 16 and 23), 0-based
  protocol addresses, one Modbus unit/device id per intersection; a device
  also answers function code 4 (input registers) on the same addresses;
* each table is contiguous, so one request reads or writes it; the status and
  detector tables are adjacent, so one function-23 transaction writes the
  heartbeat and reads both per tick;
* 32-bit values are two big-endian words, high word first; times in 0.1 s;
* the command block is applied only when its CRC-16/MODBUS (over the block's
  registers as big-endian bytes, from the sequence number to the last plan
  entry) matches: a half-written block is never applied;
* **no register drives lamps, forces flash or dark, or changes clearances**:
  central writes only the heartbeat and requests; timings are read-only, and
  the fallback plan is accepted only while the technician's commissioning
  switch is on (and is checked against the controller's own clearances).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag

from field_io.commands import CommandKind, ControllerMode, FaultBits, RejectReason, StatusBits
from field_io.mapping import MAX_DETECTORS, MAX_GROUPS, MAX_STAGES, QUEUE_NOT_MEASURED

__all__ = [
    "Access",
    "Field",
    "Table",
    "PROFILE",
    "TABLES",
    "PROFILE_MAJOR",
    "PROFILE_MINOR",
    "QUEUE_NOT_MEASURED",
    "QUEUES",
    "MAGIC",
    "GroupStateCode",
    "render_markdown",
    "writable_ranges",
]

PROFILE_MAJOR = 1
PROFILE_MINOR = 1
MAGIC = 0x4757  # "GW"
PLAN_SLOTS = 16


class Access(Enum):
    READ = "read-only (field)"
    CENTRAL = "read/write (central)"
    COMMISSIONING = "write in commissioning only"


class GroupStateCode(IntEnum):
    """Signal-group output state, 4 bits per group."""

    DARK = 0
    RED = 1
    YELLOW = 2
    GREEN = 3  # WALK for pedestrian groups
    FLASH = 4  # flashing yellow / red: no right of way


@dataclass(frozen=True)
class Field:
    """One named quantity at ``offset`` words into its table.

    ``dtype``: ``u16``, ``s16``, ``u32`` (two words, high first), ``ascii``
    (two characters per word), ``nibbles`` (4-bit codes, element 0 in the low
    bits of the first word). ``count`` > 1 makes an array whose elements are
    ``stride`` words apart. ``scale``: value = raw x scale.
    """

    name: str
    offset: int
    dtype: str = "u16"
    count: int = 1
    stride: int = 1
    scale: float = 1.0
    unit: str = ""
    doc: str = ""
    enum: type | None = None

    @property
    def words(self) -> int:
        if self.dtype == "u32":
            return 2
        if self.dtype == "nibbles":
            return (self.count + 3) // 4
        if self.dtype == "ascii":
            return (self.count + 1) // 2
        return 1

    @property
    def span(self) -> int:
        """Words from the first to past the last element."""
        if self.dtype in ("nibbles", "ascii"):
            return self.words
        return (self.count - 1) * self.stride + self.words


@dataclass(frozen=True)
class Table:
    name: str
    base: int
    length: int
    access: Access
    doc: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"table {self.name} has no field {name!r}")

    def address(self, name: str, index: int = 0) -> int:
        f = self.field(name)
        return self.base + f.offset + index * f.stride

    def offset(self, name: str) -> int:
        return self.field(name).offset

    @property
    def end(self) -> int:
        return self.base + self.length


def _plan_fields(first: int) -> tuple[Field, ...]:
    return (
        Field("plan_cycle", first, scale=0.1, unit="s", doc="Cycle length."),
        Field("plan_offset", first + 1, scale=0.1, unit="s", doc="Offset of the first stage's green start."),
        Field("plan_stage_count", first + 2, doc=f"Plan positions in use, 1-{PLAN_SLOTS}."),
        Field(
            "plan_stage",
            first + 3,
            count=PLAN_SLOTS,
            stride=3,
            doc="Stage number (1-based) of plan position k; 0 = unused.",
        ),
        Field("plan_green", first + 4, count=PLAN_SLOTS, stride=3, scale=0.1, unit="s", doc="Green of position k."),
        Field(
            "plan_intergreen",
            first + 5,
            count=PLAN_SLOTS,
            stride=3,
            scale=0.1,
            unit="s",
            doc="Intergreen (yellow + all-red) after position k; at least the controller's clearance.",
        ),
    )


IDENTITY = Table(
    "identity",
    0,
    32,
    Access.READ,
    "Read once at connection and by commissioning: who the device is and which profile it speaks.",
    (
        Field("magic", 0, doc=f"0x{MAGIC:04X} ('GW'): this is a greenwave-profile device."),
        Field("profile_major", 1, doc=f"Profile major version ({PROFILE_MAJOR}); central refuses another major."),
        Field("profile_minor", 2, doc=f"Profile minor version ({PROFILE_MINOR}); additions only."),
        Field("vendor", 3, doc="Vendor code (1 = greenwave emulator)."),
        Field("model", 4, doc="Model code."),
        Field("firmware", 5, doc="Firmware version, major x 256 + minor."),
        Field("serial", 6, dtype="u32", doc="Serial number."),
        Field("device_id", 8, doc="Modbus unit/device id this table was read from (echo)."),
        Field("group_count", 9, doc=f"Signal groups configured (<= {MAX_GROUPS})."),
        Field("detector_channels", 10, doc=f"Highest detector channel configured (<= {MAX_DETECTORS})."),
        Field("stage_count", 11, doc=f"Stages configured (<= {MAX_STAGES})."),
        Field("backup_time", 12, scale=0.1, unit="s", doc="Watchdog: no heartbeat for this long -> local plan."),
        Field("resume_heartbeats", 13, doc="Fresh heartbeats needed (with a new command block) to hand control back."),
        Field("tick", 14, scale=0.1, unit="s", doc="Controller tick (detector reporting period)."),
        Field(
            "capabilities",
            15,
            doc="Bit 0 lockstep (software-in-the-loop), bit 1 plan commands, bit 2 TLS, "
            "bit 3 queue measurement (the queues table, profile 1.1).",
        ),
        Field("intersection_id", 16, dtype="ascii", count=32, doc="Intersection id, ASCII, NUL-padded."),
    ),
)

COMMAND = Table(
    "command",
    100,
    64,
    Access.CENTRAL,
    "Written by central. The heartbeat (and clock) every tick; the command block (sequence number to CRC) "
    "whenever the command changes, in one write. The block is applied only if its CRC matches.",
    (
        Field("heartbeat", 0, doc="Central increments it every tick; the field side watches it change."),
        Field("central_time", 1, dtype="u32", unit="s", doc="Central UTC clock, seconds since 1970 (clock skew)."),
        Field("central_time_ms", 3, unit="ms", doc="Milliseconds of central_time."),
        Field("step", 4, doc="Lockstep only (software-in-the-loop): advance the controller to this tick."),
        Field("seq", 5, doc="Command sequence number (1-65535, wraps to 1); a new number = a new block."),
        Field("kind", 6, enum=CommandKind, doc="0 release (local plan), 1 stage request, 2 plan. Nothing else."),
        Field("target_stage", 7, doc="Stage request: the stage to serve (1-based)."),
        Field("call_mask", 8, doc="Stage request: stages called (bit k = stage k+1)."),
        Field("hold_mask", 9, doc="Stage request: stages that may keep green."),
        Field("force_off_mask", 10, doc="Stage request: stages to end as soon as their minimum green is served."),
        Field("reserved", 11, doc="0."),
        *_plan_fields(12),
        Field("crc", 63, doc="CRC-16/MODBUS over registers 105-162 (seq .. last plan entry), big-endian bytes."),
    ),
)

QUEUES = Table(
    "queues",
    168,
    MAX_GROUPS,
    Access.READ,
    "Profile 1.1, capability bit 3. Read every tick in the same transaction as the status (one read from 168 "
    "while it stays within Modbus's 125 registers, i.e. up to detector channel 32; otherwise a second read). "
    "Group g (1-based) at 168 + (g-1): the vehicles standing in the group's stop-line detection zones, as "
    "video and radar zone detectors report them (a loop cannot). Queue-based policies (max-pressure, adaptive) "
    "need it; without it they see no standing queue and decide from the detector counts alone.",
    (
        Field(
            "queue",
            0,
            count=MAX_GROUPS,
            unit="veh",
            doc=f"Vehicles queued, 0-65534; {QUEUE_NOT_MEASURED} = not measured (no zone detector, or faulty).",
        ),
    ),
)

STATUS = Table(
    "status",
    200,
    24,
    Access.READ,
    "Read every tick (with the detector table, in the same transaction).",
    (
        Field("status_word", 0, enum=StatusBits, doc="Bit flags, see StatusBits below."),
        Field("mode", 1, enum=ControllerMode, doc="What the controller runs (flash is status only, never a command)."),
        Field("heartbeat_echo", 2, doc="Last heartbeat value seen."),
        Field("accepted_seq", 3, doc="Sequence number of the last accepted command block."),
        Field("rejected_seq", 4, doc="Sequence number of the last rejected command block."),
        Field("reject_reason", 5, enum=RejectReason, doc="Why it was rejected."),
        Field("fault_bits", 6, enum=FaultBits, doc="Fault flags, see FaultBits below."),
        Field("current_stage", 7, doc="Stage being served (1-based); 0 = none."),
        Field("stage_timer", 8, scale=0.1, unit="s", doc="Time since the current stage's green started."),
        Field("controller_time", 9, dtype="u32", unit="s", doc="Controller UTC clock, seconds since 1970."),
        Field("controller_time_ms", 11, unit="ms", doc="Milliseconds of controller_time."),
        Field("tick_counter", 12, doc="Ticks since start (mod 65536); lockstep: the tick this status belongs to."),
        Field("detector_sequence", 13, doc="+1 per detector reporting period (mod 65536)."),
        Field("plan_clock", 14, dtype="u32", scale=0.1, unit="s", doc="The controller's time base for plans."),
        Field("heartbeat_age", 16, scale=0.1, unit="s", doc="Time since the heartbeat last changed (saturates)."),
        Field("target_stage", 17, doc="Stage requested (1-based) by the running source; 0 = none."),
        Field("active_cycle", 18, scale=0.1, unit="s", doc="Cycle of the plan running (0 under stage requests)."),
        Field("reserved_status", 19, doc="0."),
        Field(
            "group_state",
            20,
            dtype="nibbles",
            count=16,
            enum=GroupStateCode,
            doc="Groups 1-16, 4 bits each (group 1 in bits 0-3 of the first word).",
        ),
    ),
)

DETECTORS = Table(
    "detectors",
    224,
    4 + 2 * MAX_DETECTORS,
    Access.READ,
    "Read every tick. Detector channel c (1-based) at 228 + 2(c-1) (after the states of groups 17-32 at "
    "224-227): a free-running volume counter (central takes differences modulo 65536) and the occupancy over "
    "the last reporting period.",
    (
        Field(
            "group_state_hi",
            0,
            dtype="nibbles",
            count=16,
            enum=GroupStateCode,
            doc="Groups 17-32, 4 bits each.",
        ),
        Field("volume", 4, count=MAX_DETECTORS, stride=2, unit="veh", doc="Vehicles counted since start, mod 65536."),
        Field(
            "occupancy",
            5,
            count=MAX_DETECTORS,
            stride=2,
            scale=0.1,
            unit="%",
            doc="0-1000 = 0-100 %; 1010 stuck on (max presence), 1011 no activity, 1012 open loop, "
            "1013 shorted loop, 1017 erratic (cf. NTCIP 1202 detectorOccupancy 210-217).",
        ),
    ),
)

CONFIG = Table(
    "config",
    400,
    8 * MAX_GROUPS + 2 * MAX_GROUPS + 2 * MAX_STAGES + MAX_DETECTORS,
    Access.READ,
    "The controller's configured phasing and timings (commissioning compares them with the inventory). "
    "Group g (1-based) at 400 + 8(g-1). Read-only: no register changes a clearance.",
    (
        Field("group_phase", 0, count=MAX_GROUPS, stride=8, doc="NTCIP phase number of the group."),
        Field("group_kind", 1, count=MAX_GROUPS, stride=8, doc="0 vehicle, 1 pedestrian, 2 bus, 3 bicycle."),
        Field("group_min_green", 2, count=MAX_GROUPS, stride=8, scale=0.1, unit="s", doc="Minimum green."),
        Field("group_max_green", 3, count=MAX_GROUPS, stride=8, scale=0.1, unit="s", doc="Maximum green."),
        Field("group_yellow", 4, count=MAX_GROUPS, stride=8, scale=0.1, unit="s", doc="Yellow change."),
        Field("group_all_red", 5, count=MAX_GROUPS, stride=8, scale=0.1, unit="s", doc="All-red (red clearance)."),
        Field("group_walk", 6, count=MAX_GROUPS, stride=8, scale=0.1, unit="s", doc="WALK (pedestrian groups)."),
        Field("group_ped_clearance", 7, count=MAX_GROUPS, stride=8, scale=0.1, unit="s", doc="Flashing DON'T WALK."),
        Field(
            "conflicts",
            8 * MAX_GROUPS,
            dtype="u32",
            count=MAX_GROUPS,
            stride=2,
            doc="Per group, 32-bit mask of the groups it conflicts with (bit j = group j+1).",
        ),
        Field(
            "stage_groups",
            10 * MAX_GROUPS,
            dtype="u32",
            count=MAX_STAGES,
            stride=2,
            doc="Per stage, 32-bit mask of its groups; 0 = no such stage.",
        ),
        Field(
            "detector_group",
            10 * MAX_GROUPS + 2 * MAX_STAGES,
            count=MAX_DETECTORS,
            doc="Per detector channel, the group it feeds (1-based); 0 = no detector.",
        ),
    ),
)

INTERGREEN = Table(
    "intergreen",
    800,
    MAX_GROUPS * MAX_GROUPS,
    Access.READ,
    "Intergreen matrix, 0.1 s: from group i (end of green) to group j (start of green) at "
    "800 + 32(i-1) + (j-1); the diagonal is each group's own clearance.",
    (Field("intergreen", 0, count=MAX_GROUPS * MAX_GROUPS, scale=0.1, unit="s", doc="Row-major, 32 x 32."),),
)

FALLBACK_UPLOAD = Table(
    "fallback_upload",
    1900,
    53,
    Access.COMMISSIONING,
    "The local fixed-time plan the controller falls back to. Accepted only while the commissioning switch "
    "is on, only if the CRC matches and only if the plan passes the controller's own plan check.",
    (
        Field("upload_seq", 0, doc="Upload sequence number (1-65535)."),
        *_plan_fields(1),
        Field("upload_crc", 52, doc="CRC-16/MODBUS over registers 1900-1951."),
    ),
)

FALLBACK_STORED = Table(
    "fallback_stored",
    2000,
    53,
    Access.READ,
    "The fallback plan the controller holds (read back after an upload).",
    (
        Field("stored_seq", 0, doc="Upload sequence number of the stored plan (0 = built-in default)."),
        *_plan_fields(1),
        Field("stored_crc", 52, doc="CRC-16/MODBUS over registers 2000-2051."),
    ),
)

TABLES: tuple[Table, ...] = (
    IDENTITY,
    COMMAND,
    QUEUES,
    STATUS,
    DETECTORS,
    CONFIG,
    INTERGREEN,
    FALLBACK_UPLOAD,
    FALLBACK_STORED,
)
PROFILE = {t.name: t for t in TABLES}


def writable_ranges(*, commissioning: bool = False) -> list[tuple[int, int]]:
    """``[start, end)`` address ranges a client may write (the command table; plus the upload in commissioning)."""
    return list(_WRITABLE[commissioning])


def _writable(commissioning: bool) -> tuple[tuple[int, int], ...]:
    out = [(t.base, t.end) for t in TABLES if t.access is Access.CENTRAL]
    if commissioning:
        out += [(t.base, t.end) for t in TABLES if t.access is Access.COMMISSIONING]
    return tuple(out)


def _check_tables() -> None:
    spans = sorted((t.base, t.end, t.name) for t in TABLES if t.length)
    for (_a0, a1, an), (b0, _b1, bn) in itertools.pairwise(spans):
        if b0 < a1:
            raise AssertionError(f"tables {an} and {bn} overlap")
    for t in TABLES:
        for f in t.fields:
            if f.offset + f.span > t.length:
                raise AssertionError(f"{t.name}.{f.name} runs past the end of its table")


_check_tables()
_WRITABLE = {False: _writable(False), True: _writable(True)}


# ---- documentation -----------------------------------------------------------------------------


def _type(f: Field) -> str:
    if f.dtype == "nibbles":
        return f"{f.count} x 4 bit"
    if f.dtype == "ascii":
        return f"ASCII[{f.count}]"
    base = f.dtype
    return f"{base}[{f.count}]" if f.count > 1 else base


def _addr(t: Table, f: Field) -> str:
    a = t.base + f.offset
    if f.span == 1:
        return str(a)
    return f"{a}-{a + f.span - 1}"


def _unit(f: Field) -> str:
    if f.scale != 1.0:
        return f"{f.scale:g} {f.unit}".strip()
    return f.unit


def _enum_section(e: type[IntEnum] | type[IntFlag]) -> list[str]:
    lines = [f"### {e.__name__}", "", "| value | name |", "| --- | --- |"]
    for m in e:
        lines.append(f"| {int(m)} | `{m.name}` |")
    return [*lines, ""]


def render_markdown() -> str:
    """``docs/modbus-profile.md``: the register map, generated from :data:`TABLES`."""
    out = [
        "# greenwave Modbus TCP profile",
        "",
        "<!-- Generated by `python -m field_io.modbus.profile > docs/modbus-profile.md` from",
        "     field_io/modbus/profile.py. Do not edit by hand: a test checks it is up to date. -->",
        "",
        f"Profile version **{PROFILE_MAJOR}.{PROFILE_MINOR}**. One Modbus unit/device id per intersection "
        "(a device may serve several intersections on one TCP port, device ids 1..N).",
        "",
        "* **Holding registers** (function codes 3 read, 16 write, 23 read/write in one transaction); the same "
        "addresses also answer function code 4, and function code 6 writes one register (a technician's tool "
        "such as `mbpoll` bumping the heartbeat; a command block written register by register is only applied "
        "when the last one makes its CRC match, like any other write). Addresses are 0-based protocol addresses "
        "(register number 40001 = address 0).",
        "* 32-bit values: two words, high word first. Times in 0.1 s unless stated.",
        "* Per tick, central sends **one function-23 transaction** per controller: it writes the heartbeat "
        "(and its clock) at 100-103 and reads the status and detector tables at 200-323 (only up to the "
        "highest channel in use). When the command changes it writes the whole command block (105-163) in one "
        "function-16 request.",
        "* **Command block.** Applied only if `crc` matches the CRC-16/MODBUS (polynomial 0xA001 reflected, "
        "initial value 0xFFFF) of registers 105-162 as big-endian bytes. A block with a new `seq` and a good "
        "CRC is validated (stage in range, masks consistent, plan passes the controller's own plan check "
        "against its clearances) and then accepted (`accepted_seq`) or rejected (`rejected_seq`, "
        "`reject_reason`); a rejected or half-written block never changes what runs.",
        "* **Watchdog.** If `heartbeat` does not change for `backup_time`, the controller falls back to its local "
        "fixed-time plan (status bit `FALLBACK`, fault bit `COMM_LOSS`) and forgets the central command. It hands "
        "control back only after `resume_heartbeats` fresh heartbeats **and** a complete new command block "
        "(a new `seq`).",
        "* **Never commanded.** No register drives lamps or load switches, forces flash or dark, or changes "
        "clearances, minimum greens or the phasing: `kind` has no such value, timings are read-only, and the "
        "fallback plan can be written only while the technician's commissioning switch is on. Writes outside "
        "the writable tables are answered with exception 02 (illegal data address).",
        "* Exceptions: 01 unknown function, 02 address outside a table or not writable, 03 count out of "
        "range (a read of more than 125 registers, a write of more than 123), 0B unknown device id. A refused "
        "request changes nothing and is logged with its source address.",
        "",
        "| table | addresses | access | |",
        "| --- | --- | --- | --- |",
    ]
    for t in TABLES:
        if not t.length:
            continue
        out.append(f"| `{t.name}` | {t.base}-{t.end - 1} | {t.access.value} | {t.doc} |")
    out.append("")
    for t in TABLES:
        if not t.length:
            continue
        out += [f"## `{t.name}` ({t.base}-{t.end - 1}, {t.access.value})", "", t.doc, ""]
        out += ["| address | name | type | unit | meaning |", "| --- | --- | --- | --- | --- |"]
        for f in t.fields:
            doc = f.doc + (f" (`{f.enum.__name__}`)" if f.enum is not None else "")
            out.append(f"| {_addr(t, f)} | `{f.name}` | {_type(f)} | {_unit(f)} | {doc} |")
        out.append("")
    out += ["## Codes", ""]
    for e in (CommandKind, ControllerMode, RejectReason, StatusBits, FaultBits, GroupStateCode):
        out += _enum_section(e)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render_markdown())
