"""Commissioning a field controller: the checklist a technician runs on site and signs.

``greenwave commission`` connects to one controller (Modbus profile or NTCIP
1202) and checks, in order:

1. **identity** - it answers, says who it is, speaks a supported profile
   version, and is the intersection of the inventory;
2. **heartbeat and clock** - it sees central's heartbeat; its clock is within
   the tolerance of central's;
3. **configuration** - its configured phases and timings equal the
   inventory's (every difference listed: phase numbers, minimum / maximum
   greens, yellow, all-red, walk, pedestrian clearance, conflicts or
   concurrency, stages, detector assignments);
4. **detectors** - over an observation window, each detector is neither
   silent, stuck on (occupied through a green without a count) nor chattering
   (more counts than a lane can carry);
5. **fallback plan** - the local plan is checked against the inventory,
   uploaded, read back and compared (needs the cabinet's commissioning switch);
6. **watchdog** - central takes control, stops its heartbeats (the
   controller must fall back to its local plan within its backup time),
   resumes heartbeats with the old command (control must *not* return), sends
   a new command block (control must return), and releases.

Every check is ``pass``, ``fail`` or ``skip`` with its details; the command
prints a checklist to sign and exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from field_io.aio import PrivateLoop
from field_io.commands import CommandBlock, CommandKind, ControllerMode, RejectReason, StatusBits, quantize_plan
from field_io.emulator.plans import default_fallback_plan
from field_io.endpoints import Endpoint, FieldProtocol
from field_io.errors import FieldIOError
from field_io.mapping import FieldMap, field_map
from field_io.protocols import load, protocol_spec
from intersections.model import DetectorKind, Intersection
from intersections.plan import TimingPlan, plan_problems

__all__ = ["Check", "CheckStatus", "CommissioningReport", "commission", "CommissionOptions"]


class CheckStatus(StrEnum):
    """A commissioning check's outcome; a check not run (an earlier one failed) stays SKIP."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass
class Check:
    name: str
    status: CheckStatus = CheckStatus.SKIP
    summary: str = ""
    details: list[str] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)

    def ok(self, summary: str, **measured: Any) -> Check:
        self.status, self.summary = CheckStatus.PASS, summary
        self.measured.update(measured)
        return self

    def fail(self, summary: str, **measured: Any) -> Check:
        self.status, self.summary = CheckStatus.FAIL, summary
        self.measured.update(measured)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "summary": self.summary,
            "details": list(self.details),
            "measured": self.measured,
        }


@dataclass
class CommissioningReport:
    endpoint: Endpoint
    intersection: str
    started: str
    checks: list[Check]
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.status is CheckStatus.PASS for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "intersection": self.intersection,
            "controller": self.endpoint.to_json(),
            "started": self.started,
            "identity": self.identity,
            "checks": [c.to_json() for c in self.checks],
            "passed": self.passed,
        }

    def render(self) -> str:
        e = self.endpoint
        lines = [
            f"greenwave commissioning - intersection {self.intersection}",
            f"controller: {e.protocol.value} {e.host}:{e.port}"
            + protocol_spec(e.protocol).endpoint_detail(e.device_id, e.vendor),
            f"started: {self.started}",
        ]
        if self.identity:
            lines.append("identity: " + ", ".join(f"{k} {v}" for k, v in self.identity.items()))
        lines.append("")
        for k, c in enumerate(self.checks, 1):
            lines.append(f"[{c.status.name}] {k}. {c.name}: {c.summary}")
            lines += [f"         - {d}" for d in c.details]
        n_fail = sum(c.status is CheckStatus.FAIL for c in self.checks)
        n_skip = sum(c.status is CheckStatus.SKIP for c in self.checks)
        lines += [
            "",
            "RESULT: "
            + ("PASS - all checks passed" if self.passed else f"FAIL - {n_fail} check(s) failed, {n_skip} skipped"),
            "",
            "Technician: ______________________   Date: ____________   Signature: ______________________",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class CommissionOptions:
    window_s: float = 60.0  # detector observation window
    # A loop that has counted nothing by the end of the window is watched on, up to this long (default
    # 3 x the window), before it is called silent: a lightly used approach can go a minute without a
    # vehicle, and NTCIP reports only the last period, so a poll that misses one loses its count.
    max_window_s: float | None = None
    poll_s: float = 0.5  # status poll / heartbeat interval
    clock_tolerance_s: float = 2.0
    chatter_veh_s: float = 1.5  # more than a lane can discharge
    # Green (controller time) a loop must stay occupied through without a count to be called stuck: a
    # standing queue discharges at about 0.5 veh/s, so 10 s of green moves 4-5 vehicles over the loop.
    stuck_green_s: float = 10.0
    watchdog: bool = True
    plan: TimingPlan | None = None


# ---- protocol drivers ------------------------------------------------------------------------------------


@dataclass
class _Status:
    mode: int
    central: bool
    fallback: bool
    pending: bool
    heartbeat_echo: int | None
    accepted_seq: int
    rejected_seq: int
    reject_reason: int
    states: np.ndarray
    volume: np.ndarray  # cumulative (Modbus) or last period (NTCIP)
    sequence: int
    occupancy: np.ndarray
    commissioning: bool | None


class _PatternBlock(NamedTuple):
    """An NTCIP command block: the central pattern's cycle, offset and split per phase, in whole seconds."""

    cycle_s: int
    offset_s: int
    splits: tuple[tuple[int, int], ...]  # (phase, split s), by phase


BlockT = TypeVar("BlockT")


class _Driver(Protocol, Generic[BlockT]):
    """What the checklist asks of a protocol's commissioning driver (the protocol table's entry).

    ``BlockT`` is the protocol's command block, opaque to the checklist: it only hands a
    block made by :meth:`block` or :meth:`release` back to :meth:`heartbeat`.
    """

    free_running_counters: bool  # volume counters count on (Modbus) or report the last period (NTCIP)
    resume_needs_new_block: bool  # heartbeats alone never hand control back after a fallback
    backup_time_s: float
    resume: int  # heartbeats the controller needs before it hands control back
    period_s: float  # detector reporting period, read at connect

    async def connect(self) -> dict[str, Any]: ...
    async def status(self) -> _Status: ...
    async def clock(self) -> float: ...
    async def heartbeat(self, block: BlockT | None = None) -> None: ...
    def block(self, plan: TimingPlan, *, new: bool) -> BlockT: ...
    def release(self) -> BlockT | None: ...
    async def configuration(self) -> dict[str, Any]: ...
    def differences(self, cfg: dict[str, Any]) -> list[str]: ...
    async def upload_fallback(self, plan: TimingPlan) -> tuple[TimingPlan | None, str]: ...
    async def heartbeat_check(self) -> tuple[bool, str]: ...
    def close(self) -> None: ...


def _exception(code: int) -> str:
    """``02 (illegal data address)``: the number a vendor manual lists and the name a technician reads."""
    from field_io.modbus.server import EXCEPTION_NAMES

    name = EXCEPTION_NAMES.get(int(code))
    return f"{int(code):02d} ({name})" if name else f"{int(code):02d}"


class _ModbusDriver:
    """Commissioning over the greenwave Modbus profile (the protocol table's Modbus driver)."""

    free_running_counters = True  # volume registers count on (mod 65536): every period is counted
    resume_needs_new_block = True  # heartbeats alone never hand control back after a fallback

    def __init__(self, ep: Endpoint, fmap: FieldMap) -> None:
        self.ep, self.fmap = ep, fmap
        self.client: Any = None
        self.hb = 0
        self.seq = 0
        self.backup_time_s = 5.0
        self.resume = 3
        self.period_s = 1.0  # detector reporting period, read at connect

    async def connect(self) -> dict[str, Any]:
        from field_io.modbus.backend import modbus_client
        from field_io.modbus.codec import CAP_QUEUES, decode_identity
        from field_io.modbus.profile import IDENTITY, MAGIC, PROFILE_MAJOR

        self.client = modbus_client(self.ep)
        quiet = logging.getLogger("pymodbus")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # its own "Failed to connect" line would duplicate our one-line verdict
        try:
            connected = await self.client.connect()
        finally:
            quiet.setLevel(level)
        if not connected:
            raise FieldIOError("unreachable: connection refused or timed out", where=self.ep.label)
        ident = decode_identity(await self._read(IDENTITY.base, IDENTITY.length))
        self.backup_time_s, self.resume = ident.backup_time_s, ident.resume_heartbeats
        self.period_s = ident.tick_s if ident.tick_s > 0 else 1.0
        # Number our blocks after the ones the controller has seen: a block that reuses the number of the
        # block in force before a fallback is "not new" and would never take control back (a second
        # commissioning session after a first one's watchdog exercise).
        st = await self.status()
        self.seq = max(st.accepted_seq, st.rejected_seq) % 0xFFFF
        info = {
            "profile": f"greenwave Modbus {ident.profile}",
            "vendor": ident.vendor,
            "model": ident.model,
            "firmware": f"{ident.firmware >> 8}.{ident.firmware & 0xFF}",
            "serial": ident.serial,
            "intersection": ident.intersection_id,
            "backup_time_s": ident.backup_time_s,
            # Queue-based control (max-pressure, adaptive) needs zone detectors' queues; loops give counts only.
            "queues": "measured" if ident.capabilities & CAP_QUEUES else "not measured (counts only)",
        }
        problems = []
        if ident.magic != MAGIC:
            problems.append(f"not a greenwave Modbus profile device (magic 0x{ident.magic:04X})")
        elif ident.profile_major != PROFILE_MAJOR:
            problems.append(f"profile version {ident.profile} is not supported (this central speaks {PROFILE_MAJOR}.x)")
        if ident.device_id != self.ep.device_id:
            problems.append(f"answers as device id {ident.device_id}, configured {self.ep.device_id}")
        if ident.intersection_id != self.fmap.id:
            problems.append(f"reports intersection {ident.intersection_id!r}, the inventory has {self.fmap.id!r}")
        info["_problems"] = problems
        return info

    async def _read(self, addr: int, count: int) -> list[int]:
        rr = await self.client.read_holding_registers(addr, count=count, device_id=self.ep.device_id)
        if rr.isError():
            raise FieldIOError(
                f"answers Modbus exception {_exception(rr.exception_code)} to a read of {addr}-{addr + count - 1}",
                where=self.ep.label,
            )
        return list(rr.registers)

    async def _write(self, addr: int, values: list[int], *, commissioning: bool = False) -> None:
        from field_io.security import check_modbus_write

        check_modbus_write(addr, len(values), commissioning=commissioning)
        rr = await self.client.write_registers(addr, values, device_id=self.ep.device_id)
        if rr.isError():
            raise FieldIOError(
                f"answers Modbus exception {_exception(rr.exception_code)} to a write at {addr}", where=self.ep.label
            )

    async def status(self) -> _Status:
        from field_io.modbus.codec import OCC_SCALE, STATUS_BASE, decode_status, status_read_count

        st = decode_status(await self._read(STATUS_BASE, status_read_count(self.fmap)), self.fmap)
        sw = st.status_word
        return _Status(
            mode=st.mode,
            central=bool(sw & StatusBits.CENTRAL_CONTROL),
            fallback=bool(sw & StatusBits.FALLBACK),
            pending=bool(sw & StatusBits.PENDING_HANDBACK),
            heartbeat_echo=st.heartbeat_echo,
            accepted_seq=st.accepted_seq,
            rejected_seq=st.rejected_seq,
            reject_reason=st.reject_reason,
            states=st.group_state,
            volume=st.volume.astype(float),
            sequence=st.detector_sequence,
            occupancy=np.where(st.occupancy_raw <= OCC_SCALE, st.occupancy_raw / OCC_SCALE, np.nan),
            commissioning=bool(sw & StatusBits.COMMISSIONING),
        )

    async def clock(self) -> float:
        from field_io.modbus.codec import STATUS_BASE, decode_status, status_read_count

        st = decode_status(await self._read(STATUS_BASE, status_read_count(self.fmap)), self.fmap)
        return st.controller_time_s

    async def heartbeat(self, block: CommandBlock | None = None) -> None:
        from field_io.modbus.codec import encode_command_block, heartbeat_words
        from field_io.modbus.profile import COMMAND

        self.hb = (self.hb + 1) & 0xFFFF
        words = heartbeat_words(self.hb, time.time())
        if block is not None:
            words += encode_command_block(block, self.fmap.intersection)
        await self._write(COMMAND.base, words)

    def block(self, plan: TimingPlan, *, new: bool) -> CommandBlock:
        if new:
            self.seq = self.seq % 0xFFFF + 1
        return CommandBlock(seq=self.seq, kind=CommandKind.PLAN, plan=quantize_plan(plan, 0.1))

    def release(self) -> CommandBlock:
        self.seq = self.seq % 0xFFFF + 1
        return CommandBlock(seq=self.seq, kind=CommandKind.RELEASE)

    async def configuration(self) -> dict[str, Any]:
        from field_io.modbus.codec import decode_config
        from field_io.modbus.profile import CONFIG, INTERGREEN

        n = self.fmap.n_groups
        cfg: list[int] = []
        for a in range(CONFIG.base, CONFIG.end, 120):
            cfg += await self._read(a, min(120, CONFIG.end - a))
        ig = await self._read(INTERGREEN.base, min(120, 32 * n))
        while len(ig) < 32 * n:
            ig += await self._read(INTERGREEN.base + len(ig), min(120, 32 * n - len(ig)))
        return decode_config(cfg, ig + [0] * (INTERGREEN.length - len(ig)), n)

    async def upload_fallback(self, plan: TimingPlan) -> tuple[TimingPlan | None, str]:
        from field_io.modbus.codec import decode_plan_table, encode_plan_table
        from field_io.modbus.profile import FALLBACK_STORED, FALLBACK_UPLOAD

        q = quantize_plan(plan, 0.1)
        seq = int(time.time()) % 0xFFFE + 1
        await self._write(FALLBACK_UPLOAD.base, encode_plan_table(FALLBACK_UPLOAD, seq, q, self.fmap.intersection),
                          commissioning=True)  # fmt: skip
        await asyncio.sleep(0.05)
        words = await self._read(FALLBACK_STORED.base, FALLBACK_STORED.length)
        stored_seq, stored, _why = decode_plan_table(FALLBACK_STORED, words, self.fmap.intersection)
        if stored_seq != seq:
            st = await self.status()
            try:
                why = RejectReason(st.reject_reason).name
            except ValueError:
                why = str(st.reject_reason)
            return None, f"the controller did not store the upload (reject reason {why})"
        return stored, ""

    async def heartbeat_check(self) -> tuple[bool, str]:
        """Write a heartbeat and read the controller's echo of it."""
        await self.heartbeat()
        st = await self.status()
        return st.heartbeat_echo == self.hb, f"heartbeat {self.hb} written, controller echoes {st.heartbeat_echo}"

    def differences(self, cfg: dict[str, Any]) -> list[str]:
        return _modbus_differences(cfg, self.fmap)

    def close(self) -> None:
        from field_io.modbus.backend import close_client

        if self.client is not None:
            close_client(self.client)


class _NtcipDriver:
    """Commissioning over NTCIP 1202 (the protocol table's NTCIP driver)."""

    free_running_counters = False  # detectorVolume is the last period's count
    resume_needs_new_block = False  # any SET of a system-control object is the heartbeat

    def __init__(self, ep: Endpoint, fmap: FieldMap) -> None:
        from field_io.ntcip.profiles import vendor_profile
        from field_io.ntcip.transport import snmp_client

        self.ep, self.fmap = ep, fmap
        self.profile = vendor_profile(ep.vendor)
        self.client = snmp_client("pysnmp" if ep.snmp.version == 3 else "fast")
        self.backup_time_s = 5.0
        self.resume = 3
        self.period_s = 1.0  # detector reporting period, read at connect

    def _oid(self, name: str, *idx: int) -> tuple[int, ...]:
        from field_io.ntcip.oids import OBJECTS

        o = OBJECTS[name]
        return self.profile.scalar(o.oid) if o.scalar else (*o.oid, *idx)

    async def _get(self, names: Sequence[tuple[str, tuple[int, ...]]]) -> dict[str, Any]:
        vals = await self.client.get(self.ep, [self._oid(n, *i) for n, i in names])
        return {n + "".join(f".{x}" for x in i): v[1] for (n, i), v in zip(names, vals, strict=True)}

    async def connect(self) -> dict[str, Any]:
        await self.client.open()
        names: list[tuple[str, tuple[int, ...]]] = [
            (n, ())
            for n in (
                "sysDescr",
                "sysName",
                "controllerBaseStandards",
                "unitBackupTime",
                "maxPhases",
                "volumeOccupancyPeriod",
            )
        ]
        names += [(n, (1,)) for n in ("moduleMake", "moduleModel", "moduleVersion")]
        if self.profile.greenwave_extension:
            names += [("gwProfileVersion", ()), ("gwIntersectionId", ())]
        v = await self._get(names)
        dec = {k: (x.decode(errors="replace") if isinstance(x, bytes) else x) for k, x in v.items()}
        self.backup_time_s = float(dec["unitBackupTime"])
        self.period_s = float(dec["volumeOccupancyPeriod"]) or 1.0
        info: dict[str, Any] = {
            "profile": f"{dec['controllerBaseStandards']} ({self.profile.name})",
            "make": dec["moduleMake.1"],
            "model": dec["moduleModel.1"],
            "version": dec["moduleVersion.1"],
            "name": dec["sysName"],
            "backup_time_s": self.backup_time_s,
        }
        problems = []
        if "1202" not in str(dec["controllerBaseStandards"]):
            problems.append(f"does not declare NTCIP 1202 ({dec['controllerBaseStandards']!r})")
        if self.backup_time_s <= 0:
            problems.append("unitBackupTime is 0: the watchdog is disabled")
        if self.profile.greenwave_extension:
            ver = str(dec["gwProfileVersion"])
            info["profile"] += f", greenwave {ver}"
            if not ver.startswith("1."):
                problems.append(f"greenwave profile version {ver} is not supported (this central speaks 1.x)")
            if dec["gwIntersectionId"] != self.fmap.id:
                problems.append(f"reports intersection {dec['gwIntersectionId']!r}, the inventory has {self.fmap.id!r}")
        info["_problems"] = problems
        return info

    async def status(self) -> _Status:
        from field_io.ntcip.backend import decode_ntcip_status, status_oids

        pairs = status_oids(self.fmap, self.profile)
        extra = [("gwCommissioning", self._oid("gwCommissioning"))] if self.profile.greenwave_extension else []
        vals = await self.client.get(self.ep, [o for _k, o in pairs + extra])
        st = decode_ntcip_status(vals[: len(pairs)], [k for k, _ in pairs], self.fmap, self.profile)
        sw = st.status_word
        return _Status(
            mode=st.mode,
            central=bool(sw & StatusBits.CENTRAL_CONTROL),
            fallback=bool(sw & StatusBits.FALLBACK),
            pending=bool(sw & StatusBits.PENDING_HANDBACK),
            heartbeat_echo=None,
            accepted_seq=st.accepted_seq,
            rejected_seq=st.rejected_seq,
            reject_reason=st.reject_reason,
            states=st.group_state,
            volume=np.nan_to_num(st.volume),
            sequence=st.sequence,
            occupancy=st.occupancy,
            commissioning=bool(vals[-1][1]) if extra else None,
        )

    async def clock(self) -> float:
        v = await self._get([("globalTime", ())])
        return float(v["globalTime"]) + 0.5  # globalTime counts whole seconds: the middle of that second

    def block(self, plan: TimingPlan, *, new: bool) -> _PatternBlock:
        from field_io.ntcip.codec import plan_to_pattern

        q = quantize_plan(plan, 1.0)
        cycle, offset, splits = plan_to_pattern(q, self.fmap)
        return _PatternBlock(cycle, offset, tuple(sorted(splits.items())))

    def release(self) -> _PatternBlock | None:
        return None

    async def heartbeat(self, block: _PatternBlock | None = None) -> None:
        """A complete command-block SET (the NTCIP heartbeat); ``None`` releases (pattern 0, no phase control)."""
        from field_io.ntcip import ber
        from field_io.ntcip.codec import phase_groups

        groups = phase_groups(self.fmap.max_phase)
        vbs: list[tuple[tuple[int, ...], ber.Value]] = []
        pattern = 0
        if block is not None:
            cycle, offset, splits = block
            pattern = self.profile.central_pattern
            vbs += [
                (self._oid("patternCycleTime", pattern), (ber.INTEGER, cycle)),
                (self._oid("patternOffsetTime", pattern), (ber.INTEGER, offset)),
                (self._oid("patternSplitNumber", pattern), (ber.INTEGER, pattern)),
            ]
            vbs += [(self._oid("splitTime", pattern, p), (ber.INTEGER, s)) for p, s in splits]
        vbs.append((self._oid("systemPatternControl"), (ber.INTEGER, pattern)))
        for name in ("phaseControlGroupHold", "phaseControlGroupForceOff", "phaseControlGroupVehCall"):
            vbs += [(self._oid(name, g), (ber.INTEGER, 0)) for g in range(1, groups + 1)]
        await self.client.set(self.ep, vbs)

    async def configuration(self) -> dict[str, Any]:
        phases = list(range(1, self.fmap.max_phase + 1))
        names = []
        for p in phases:
            for n in ("phaseMinimumGreen", "phaseMaximum1", "phaseYellowChange", "phaseRedClear", "phaseWalk",
                      "phasePedestrianClear", "phaseConcurrency"):  # fmt: skip
                names.append((n, (p,)))
        for c in sorted({int(c) for c in self.fmap.channel}):
            names.append(("vehicleDetectorCallPhase", (c,)))
        out: dict[str, Any] = {}
        for k in range(0, len(names), 40):
            out.update(await self._get(names[k : k + 40]))
        return out

    async def upload_fallback(self, plan: TimingPlan) -> tuple[TimingPlan | None, str]:
        from field_io.errors import DeviceException
        from field_io.ntcip import ber
        from field_io.ntcip.codec import pattern_to_plan, plan_to_pattern

        q = quantize_plan(plan, 1.0)
        cycle, offset, splits = plan_to_pattern(q, self.fmap)
        fb = self.profile.fallback_pattern
        vbs: list[tuple[tuple[int, ...], ber.Value]] = [
            (self._oid("patternCycleTime", fb), (ber.INTEGER, cycle)),
            (self._oid("patternOffsetTime", fb), (ber.INTEGER, offset)),
            (self._oid("patternSplitNumber", fb), (ber.INTEGER, fb)),
        ]
        vbs += [(self._oid("splitTime", fb, p), (ber.INTEGER, s)) for p, s in sorted(splits.items())]
        try:
            await self.client.set(self.ep, vbs, commissioning=True)
        except DeviceException as e:
            return None, f"the controller refused the upload ({e.message}): is its commissioning switch on?"
        names = [("patternCycleTime", (fb,)), ("patternOffsetTime", (fb,))] + [
            ("splitTime", (fb, p)) for p in sorted(splits)
        ]
        v = await self._get(names)
        back = {p: int(v[f"splitTime.{fb}.{p}"]) for p in splits}
        stored = pattern_to_plan(int(v[f"patternCycleTime.{fb}"]), int(v[f"patternOffsetTime.{fb}"]), back, self.fmap)
        return stored, "" if stored is not None else "the read-back pattern is not a valid plan"

    async def heartbeat_check(self) -> tuple[bool, str]:
        """NTCIP has no heartbeat object (field-io.md §1.8): what stands for it is the backup timer."""
        return True, f"unitBackupTime {self.backup_time_s:g} s (heartbeat = any SET of a system-control object)"

    def differences(self, cfg: dict[str, Any]) -> list[str]:
        return _ntcip_differences(cfg, self.fmap)

    def close(self) -> None:
        self.client.close()


if TYPE_CHECKING:

    def _drivers_meet_the_contract(
        m: _ModbusDriver, n: _NtcipDriver
    ) -> tuple[_Driver[CommandBlock], _Driver[_PatternBlock]]:
        """Never called: mypy checks here that both table drivers satisfy :class:`_Driver`."""
        return m, n


# ---- the checks -------------------------------------------------------------------------------------------


def _modbus_differences(cfg: dict[str, Any], fmap: FieldMap) -> list[str]:
    """Controller configuration (the profile's config and intergreen tables) vs the inventory."""
    inter = fmap.intersection
    diffs: list[str] = []
    n = fmap.n_groups
    ids = inter.group_ids
    for k, g in enumerate(inter.groups):
        if cfg["phase"][k] != int(fmap.phase[k]):
            diffs.append(f"group {g.id}: controller phase {cfg['phase'][k]}, inventory {int(fmap.phase[k])}")
        if cfg["kind"][k] is not g.kind:
            diffs.append(f"group {g.id}: controller kind {cfg['kind'][k].value}, inventory {g.kind.value}")
        for attr in ("min_green_s", "max_green_s", "yellow_s", "all_red_s", "walk_s", "ped_clearance_s"):
            a, b = cfg[attr][k], math.ceil(getattr(g, attr) * 10 - 1e-6) / 10  # the profile rounds up
            if abs(a - b) > 0.05:
                diffs.append(f"group {g.id}: {attr} controller {a:g} s, inventory {b:g} s")
    conf = cfg["conflicts"]
    for i in range(n):
        for j in range(i + 1, n):
            if bool(conf[i, j]) != bool(inter.conflicts[i, j]):
                what = "conflict" if inter.conflicts[i, j] else "no conflict"
                diffs.append(f"groups {ids[i]}/{ids[j]}: inventory has {what}, the controller does not")
    ig = cfg["intergreen_s"]
    for i in range(n):
        for j in range(n):
            if inter.conflicts[i, j] or i == j:
                a, b = ig[i, j], math.ceil(inter.intergreen_s[i, j] * 10 - 1e-6) / 10
                if abs(a - b) > 0.05:
                    diffs.append(f"intergreen {ids[i]}->{ids[j]}: controller {a:g} s, inventory {b:g} s")
    stages = [frozenset(int(j) for j in np.flatnonzero(m)) for m in inter.stage_mask()]
    if cfg["stages"] != stages:
        diffs.append(
            f"stages: controller {[sorted(ids[j] for j in s) for s in cfg['stages']]}, "
            f"inventory {[sorted(ids[j] for j in s) for s in stages]}"
        )
    for d, ch in zip(inter.detectors, fmap.channel, strict=True):
        got = cfg["detector_group"].get(int(ch))
        want = inter.group_index(d.group)
        if got != want:
            gname = ids[got] if got is not None and 0 <= got < n else "nothing"
            diffs.append(f"detector {d.id} (channel {int(ch)}): controller feeds {gname}, inventory {d.group}")
    return diffs


def _ntcip_differences(cfg: dict[str, Any], fmap: FieldMap) -> list[str]:
    """Controller configuration (the NTCIP 1202 phase and detector tables) vs the inventory."""
    inter = fmap.intersection
    diffs: list[str] = []
    # NTCIP: per phase, in the MIB's units (whole seconds; tenths for yellow and red clearance).
    for p in fmap.phases:
        veh = [g for k, g in enumerate(inter.groups) if int(fmap.phase[k]) == p and not g.is_pedestrian]
        ped = [g for k, g in enumerate(inter.groups) if int(fmap.phase[k]) == p and g.is_pedestrian]
        g = (veh or ped)[0]
        want = {
            "phaseMinimumGreen": math.ceil(g.min_green_s - 1e-9),
            "phaseMaximum1": math.ceil(g.max_green_s - 1e-9),
            "phaseYellowChange": math.ceil(g.yellow_s * 10 - 1e-9),
            "phaseRedClear": math.ceil(g.all_red_s * 10 - 1e-9),
        }
        if ped:
            want["phaseWalk"] = math.ceil(ped[0].walk_s - 1e-9)
            want["phasePedestrianClear"] = math.ceil(ped[0].ped_clearance_s - 1e-9)
        for name, w in want.items():
            got = cfg.get(f"{name}.{p}")
            if got != w:
                if name in ("phaseYellowChange", "phaseRedClear") and isinstance(got, int):  # MIB unit 0.1 s
                    diffs.append(f"phase {p} ({g.id}): {name} controller {got / 10:g} s, inventory {w / 10:g} s")
                else:
                    diffs.append(f"phase {p} ({g.id}): {name} controller {got} s, inventory {w} s")
        conc = cfg.get(f"phaseConcurrency.{p}")
        got_conc = set(conc) if isinstance(conc, bytes) else set()
        k = inter.group_index(g.id)
        exp = set()
        for q in fmap.phases:
            if q == p:
                continue
            other = next(o for kk, o in enumerate(inter.groups) if int(fmap.phase[kk]) == q)
            if not inter.conflicts[k, inter.group_index(other.id)]:
                exp.add(q)
        if got_conc != exp:
            diffs.append(f"phase {p}: concurrent phases controller {sorted(got_conc)}, inventory {sorted(exp)}")
    for d, ch in zip(inter.detectors, fmap.channel, strict=True):
        got_phase = cfg.get(f"vehicleDetectorCallPhase.{int(ch)}")
        phase = int(fmap.phase[inter.group_index(d.group)])
        if got_phase != phase:
            diffs.append(
                f"detector {d.id} (channel {int(ch)}): controller calls phase {got_phase}, inventory phase {phase}"
            )
    return diffs


def _plans_equal(a: TimingPlan, b: TimingPlan, step: float) -> list[str]:
    out = []
    if abs(a.cycle_s - b.cycle_s) > step / 2:
        out.append(f"cycle {b.cycle_s:g} s read back, {a.cycle_s:g} s sent")
    if abs(a.offset_s - b.offset_s) > step / 2:
        out.append(f"offset {b.offset_s:g} s read back, {a.offset_s:g} s sent")
    sa = [(s.stage, s.green_s + s.intergreen_s) for s in a.stages]
    sb = [(s.stage, s.green_s + s.intergreen_s) for s in b.stages]
    if [x for x, _ in sa] != [x for x, _ in sb] or any(
        abs(x - y) > step / 2 for (_, x), (_, y) in zip(sa, sb, strict=False)
    ):
        out.append(f"stages/splits read back {sb}, sent {sa}")
    return out


async def _commission(
    proto: FieldProtocol, ep: Endpoint, inter: Intersection, opt: CommissionOptions, report: CommissioningReport
) -> None:
    """The checklist in order: a check that leaves nothing to test after it (identity) ends it."""
    fmap = field_map(inter)
    # The table's driver for the protocol; its command block type is opaque here (see _Driver).
    drv: _Driver[object] = load(protocol_spec(proto).commissioning_driver)(ep, fmap)
    checks = {c.name: c for c in report.checks}
    try:
        if not await _identity(drv, inter, report, checks["identity"]):
            return
        await _heartbeat_and_clock(drv, opt, checks["heartbeat and clock"])
        await _configuration(drv, fmap, checks["configuration"])
        await _detectors(drv, fmap, opt, checks["detectors"])
        plan = await _fallback_plan(drv, proto, inter, opt, checks["fallback plan"])
        c = checks["watchdog"]
        if not opt.watchdog:
            c.summary = "not exercised (--no-watchdog)"
            return
        await _watchdog(drv, plan, opt, c)
    finally:
        drv.close()


async def _identity(drv: _Driver[BlockT], inter: Intersection, report: CommissioningReport, c: Check) -> bool:
    """Check 1: it answers and is the controller the inventory describes; False ends the checklist."""
    try:
        info = await drv.connect()
    except FieldIOError as e:
        c.fail(e.message)
        return False
    problems = info.pop("_problems")
    report.identity = info
    if problems:
        c.details += problems
        c.fail("the controller is not the one the inventory describes")
        return False
    c.ok(f"{info.get('profile')}, intersection {inter.id}", **info)
    return True


async def _heartbeat_and_clock(drv: _Driver[BlockT], opt: CommissionOptions, c: Check) -> None:
    """Check 2: its clock within the tolerance of central's (skew against the middle of the read), heartbeat seen."""
    t_local = time.time()
    t_ctl = await drv.clock()
    skew = t_ctl - (t_local + time.time()) / 2
    c.measured["clock_skew_s"] = round(skew, 3)
    c.details.append(f"controller clock {datetime.fromtimestamp(t_ctl, UTC).isoformat(timespec='seconds')}, "
                     f"skew {skew:+.2f} s (tolerance {opt.clock_tolerance_s:g} s)")  # fmt: skip
    seen, detail = await drv.heartbeat_check()
    c.details.append(detail)
    if abs(skew) > opt.clock_tolerance_s:
        c.fail(f"clock skew {skew:+.2f} s exceeds {opt.clock_tolerance_s:g} s")
    elif not seen:
        c.fail("the controller does not echo central's heartbeat")
    else:
        c.ok(f"heartbeat seen, clock skew {skew:+.2f} s")


async def _configuration(drv: _Driver[BlockT], fmap: FieldMap, c: Check) -> None:
    """Check 3: every difference between the controller's configuration and the inventory."""
    diffs = drv.differences(await drv.configuration())
    c.details += diffs
    if diffs:
        c.fail(f"{len(diffs)} difference(s) between the controller and the inventory")
    else:
        n = f"{fmap.n_groups} signal groups, {fmap.n_stages} stages, {fmap.n_detectors} detectors"
        c.ok(f"{n} as in the inventory")


async def _fallback_plan(
    drv: _Driver[BlockT], proto: FieldProtocol, inter: Intersection, opt: CommissionOptions, c: Check
) -> TimingPlan:
    """Check 5: the local plan checked, uploaded and read back; returns it (the watchdog commands it)."""
    plan = opt.plan or default_fallback_plan(inter)
    problems = plan_problems(plan, inter)
    if problems:
        c.details += problems
        c.fail("the fallback plan fails the plan check against the inventory")
        return plan
    step = protocol_spec(proto).plan_step_s
    sent = quantize_plan(plan, step)
    stored, why = await drv.upload_fallback(plan)
    c.details.append(
        f"sent: cycle {sent.cycle_s:g} s, offset {sent.offset_s:g} s, "
        + ", ".join(f"{s.stage} {s.green_s:g}+{s.intergreen_s:g} s" for s in sent.stages)
    )
    if stored is None:
        c.fail(why)
    else:
        diff = _plans_equal(sent, stored, step)
        c.details += diff
        c.fail("read-back differs") if diff else c.ok(f"uploaded and read back: cycle {stored.cycle_s:g} s")
    return plan


async def _detectors(drv: _Driver[BlockT], fmap: FieldMap, opt: CommissionOptions, c: Check) -> None:
    """Check 4: over the observation window, no detector silent, stuck on or chattering."""
    inter = fmap.intersection
    d = fmap.n_detectors
    counts = np.zeros(d)
    occ_high = np.zeros(d)
    green_s = np.zeros(fmap.n_groups)  # green the counts cover, in controller time
    samples = 0
    periods = 0  # detector reporting periods the counts cover: rates are per second of controller time
    prev = await drv.status()
    t0 = time.monotonic()
    longest = max(opt.window_s, opt.max_window_s if opt.max_window_s is not None else 3.0 * opt.window_s)
    vehicle = np.array([det.kind is not DetectorKind.PEDESTRIAN for det in inter.detectors], bool)

    def silent() -> np.ndarray:
        """Vehicle detectors with no count and never occupied so far (a crossing's button may rest)."""
        return vehicle & (counts == 0) & (occ_high == 0)

    extended = False
    while (elapsed := time.monotonic() - t0) < opt.window_s or (elapsed < longest and silent().any()):
        extended = elapsed >= opt.window_s
        await asyncio.sleep(opt.poll_s)
        st = await drv.status()
        seen = 0
        if drv.free_running_counters:
            counts += (st.volume - prev.volume) % 65536  # free-running counters: every period counted
            seen = (st.sequence - prev.sequence) % 65536
        elif st.sequence != prev.sequence:
            counts += st.volume  # NTCIP reports the last period only: rates over the periods seen
            seen = 1
        periods += seen
        occ = np.nan_to_num(st.occupancy, nan=1.0)
        occ_high += occ >= 0.95
        green_s += (st.states == 2) * seen * drv.period_s
        samples += 1
        prev = st
    window = max(time.monotonic() - t0, 1e-9)
    # The controller's own time, not the wall clock: a rehearsal emulator may run faster than real time.
    observed_s = periods * drv.period_s if periods else window
    bad = []
    quiet = silent()
    for k, det in enumerate(inter.detectors):
        g = inter.group_index(det.group)
        rate = counts[k] / observed_s
        label = f"detector {det.id} (channel {int(fmap.channel[k])}, group {det.group})"
        if rate > opt.chatter_veh_s:
            bad.append(f"{label}: chattering, {counts[k]:.0f} counts in {observed_s:.0f} s ({rate:.1f}/s)")
        elif samples and occ_high[k] >= 0.95 * samples and counts[k] == 0 and green_s[g] >= opt.stuck_green_s:
            bad.append(f"{label}: stuck on, occupied through {green_s[g]:.0f} s of green without a count")
        elif quiet[k]:
            bad.append(f"{label}: silent, no vehicle in {observed_s:.0f} s (check the loop, or observe longer)")
    c.measured["window_s"] = round(window, 1)
    if extended:
        c.details.append(f"observed {window:.0f} s: the window of {opt.window_s:g} s was extended to wait for traffic")
    c.measured["counts"] = {det.id: int(counts[k]) for k, det in enumerate(inter.detectors)}
    c.details += bad
    if bad:
        c.fail(f"{len(bad)} of {d} detectors faulty over {window:.0f} s")
    else:
        c.ok(f"{d} detectors active over {window:.0f} s, none silent, stuck or chattering")


async def _wait_for(
    drv: _Driver[BlockT], cond: Callable[[_Status], bool], timeout: float, poll: float, beat: BlockT | None = None
) -> float | None:
    """Seconds until ``cond(status)``, polling (and heartbeating with the block ``beat`` if given); None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if beat is not None:
            await drv.heartbeat(beat)
        st = await drv.status()
        if cond(st):
            return time.monotonic() - t0
        await asyncio.sleep(poll)
    return None


async def _watchdog(drv: _Driver[BlockT], plan: TimingPlan, opt: CommissionOptions, c: Check) -> None:
    """Check 6: fallback within the backup time without heartbeats; control back only with a new block."""
    poll = opt.poll_s
    backup = drv.backup_time_s
    resume = drv.resume
    c.details.append(f"backup time {backup:g} s")
    block = drv.block(plan, new=True)
    t = await _wait_for(drv, lambda s: s.central, timeout=resume * poll + 10.0, poll=poll, beat=block)
    if t is None:
        st = await drv.status()
        c.fail(f"central never got control (mode {ControllerMode(st.mode).name}, reject reason {st.reject_reason})")
        return
    c.details.append(f"central in control after {t:.1f} s of heartbeats with a command block")
    # Stop heartbeats: the controller must fall back within its backup time.
    t_fb = await _wait_for(
        drv, lambda s: not s.central and s.mode == ControllerMode.LOCAL_PLAN, timeout=backup + 5.0, poll=poll / 2
    )
    if t_fb is None:
        c.fail(f"no fallback within {backup + 5.0:g} s of silence")
        return
    c.measured["fallback_after_s"] = round(t_fb, 2)
    c.details.append(f"heartbeats stopped: local plan after {t_fb:.1f} s (backup time {backup:g} s)")
    if t_fb > backup + 1.5 + poll:
        c.fail(f"fell back after {t_fb:.1f} s, later than the backup time {backup:g} s")
        return
    if t_fb < backup - 1.0 - poll:
        c.fail(f"fell back after {t_fb:.1f} s, earlier than the backup time {backup:g} s")
        return
    # Resume heartbeats with the old block (Modbus): control must not come back without a new block.
    if drv.resume_needs_new_block:
        t_bad = await _wait_for(drv, lambda s: s.central, timeout=(resume + 2) * poll, poll=poll, beat=block)
        if t_bad is not None:
            c.fail("control came back on heartbeats with the old command block (a new block is required)")
            return
        c.details.append(f"{resume + 2} fresh heartbeats with the old block: still on the local plan (correct)")
    block2 = drv.block(plan, new=True)
    t_back = await _wait_for(drv, lambda s: s.central, timeout=resume * poll + 10.0, poll=poll, beat=block2)
    if t_back is None:
        c.fail("control did not come back after fresh heartbeats and a new command block")
        return
    c.measured["handback_after_s"] = round(t_back, 2)
    c.details.append(f"fresh heartbeats and a new command block: central in control after {t_back:.1f} s")
    await drv.heartbeat(drv.release())
    t_rel = await _wait_for(drv, lambda s: not s.central, timeout=5.0, poll=poll)
    c.details.append("released: controller back on its local plan" if t_rel is not None else "release not confirmed")
    c.ok(f"falls back after {t_fb:.1f} s without heartbeats, hands control back only with a new block")


def commission(
    endpoint: Endpoint,
    intersection: Intersection,
    options: CommissionOptions | None = None,
) -> CommissioningReport:
    """Run the checklist (see the module docstring); never raises for controller problems."""
    opt = options or CommissionOptions()
    names = ("identity", "heartbeat and clock", "configuration", "detectors", "fallback plan", "watchdog")
    report = CommissioningReport(
        endpoint=endpoint,
        intersection=intersection.id,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        checks=[Check(n) for n in names],
    )
    loop = PrivateLoop()
    try:
        loop.run(_commission(endpoint.protocol, endpoint, intersection, opt, report))
    except FieldIOError as e:
        pending = next((c for c in report.checks if c.status is CheckStatus.SKIP and not c.summary), None)
        if pending is not None:
            pending.fail(e.message)
    finally:
        loop.close()
    for c in report.checks:
        if c.status is CheckStatus.SKIP and not c.summary:
            c.summary = "not run (an earlier check failed)"
    return report
