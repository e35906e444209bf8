"""NTCIP 1202 / 1201 objects used by greenwave, as data.

Every OID below is copied from the project's reference table
(``../shared/reference/ntcip1202-oids.tsv``, compiled from the NTCIP 1202 v02
ASC MIB; a test checks each one against it) or, for the few NTCIP 1201 global
objects and MIB-II system objects, from the sources named in their rows
(``../shared/reference/field-io.md`` §1.11 and RFC 1213). Scalars carry the
instance ``.0``; table columns take ``.<index>`` (phase, detector, phase
group, pattern, ...). Units follow the MIB text: note that phase timing units
differ per column (seconds for minimum green and maximum, tenths for yellow,
red clearance and passage) - field-io.md §1.3.

The greenwave extension (``GW``) lives under the IANA "documentation" private
enterprise number 32473 (RFC 5612) as a placeholder: an agency deploying the
greenwave profile on real controllers registers its own number. Only
greenwave's emulator and controllers that adopt the profile answer it; the
vendor profiles say whether a controller does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Syntax", "Obj", "ASC", "OBJECTS", "obj", "oid_str", "SYSTEM_CONTROL", "GW_BASE", "extension_table"]

ASC = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)
GLOBAL = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 6)
MIB2_SYSTEM = (1, 3, 6, 1, 2, 1, 1)
GW_BASE = (1, 3, 6, 1, 4, 1, 32473, 1206)


class Syntax(Enum):
    INTEGER = "INTEGER"
    OCTETS = "OCTET STRING"
    OID = "OBJECT IDENTIFIER"
    TIMETICKS = "TimeTicks"
    COUNTER = "Counter32"


@dataclass(frozen=True)
class Obj:
    """One MIB object. ``oid`` is the object (column) OID without instance; ``scalar`` adds ``.0``."""

    name: str
    oid: tuple[int, ...]
    access: str  # read-only | read-write
    syntax: Syntax = Syntax.INTEGER
    scalar: bool = False
    unit: str = ""
    scale: float = 1.0
    source: str = "ntcip1202-oids.tsv"

    def instance(self, *index: int) -> tuple[int, ...]:
        if self.scalar:
            return (*self.oid, 0)
        return (*self.oid, *index)


def _asc(*tail: int) -> tuple[int, ...]:
    return (*ASC, *tail)


_TABLE: tuple[Obj, ...] = (
    # ---- phase (ASC.1) ----
    Obj("maxPhases", _asc(1, 1), "read-only", scalar=True),
    Obj("phaseWalk", _asc(1, 2, 1, 2), "read-write", unit="s"),
    Obj("phasePedestrianClear", _asc(1, 2, 1, 3), "read-write", unit="s"),
    Obj("phaseMinimumGreen", _asc(1, 2, 1, 4), "read-write", unit="s"),
    Obj("phasePassage", _asc(1, 2, 1, 5), "read-write", unit="s", scale=0.1),
    Obj("phaseMaximum1", _asc(1, 2, 1, 6), "read-write", unit="s"),
    Obj("phaseMaximum2", _asc(1, 2, 1, 7), "read-write", unit="s"),
    Obj("phaseYellowChange", _asc(1, 2, 1, 8), "read-write", unit="s", scale=0.1),
    Obj("phaseRedClear", _asc(1, 2, 1, 9), "read-write", unit="s", scale=0.1),
    Obj("phaseRedRevert", _asc(1, 2, 1, 10), "read-write", unit="s", scale=0.1),
    Obj("phaseStartup", _asc(1, 2, 1, 20), "read-write"),
    Obj("phaseOptions", _asc(1, 2, 1, 21), "read-write"),
    Obj("phaseRing", _asc(1, 2, 1, 22), "read-write"),
    Obj("phaseConcurrency", _asc(1, 2, 1, 23), "read-write", Syntax.OCTETS),
    Obj("maxPhaseGroups", _asc(1, 3), "read-only", scalar=True),
    Obj("phaseStatusGroupReds", _asc(1, 4, 1, 2), "read-only"),
    Obj("phaseStatusGroupYellows", _asc(1, 4, 1, 3), "read-only"),
    Obj("phaseStatusGroupGreens", _asc(1, 4, 1, 4), "read-only"),
    Obj("phaseStatusGroupDontWalks", _asc(1, 4, 1, 5), "read-only"),
    Obj("phaseStatusGroupPedClears", _asc(1, 4, 1, 6), "read-only"),
    Obj("phaseStatusGroupWalks", _asc(1, 4, 1, 7), "read-only"),
    Obj("phaseStatusGroupVehCalls", _asc(1, 4, 1, 8), "read-only"),
    Obj("phaseStatusGroupPedCalls", _asc(1, 4, 1, 9), "read-only"),
    Obj("phaseStatusGroupPhaseOns", _asc(1, 4, 1, 10), "read-only"),
    Obj("phaseStatusGroupPhaseNexts", _asc(1, 4, 1, 11), "read-only"),
    Obj("phaseControlGroupPhaseOmit", _asc(1, 5, 1, 2), "read-write"),
    Obj("phaseControlGroupPedOmit", _asc(1, 5, 1, 3), "read-write"),
    Obj("phaseControlGroupHold", _asc(1, 5, 1, 4), "read-write"),
    Obj("phaseControlGroupForceOff", _asc(1, 5, 1, 5), "read-write"),
    Obj("phaseControlGroupVehCall", _asc(1, 5, 1, 6), "read-write"),
    Obj("phaseControlGroupPedCall", _asc(1, 5, 1, 7), "read-write"),
    # ---- detector (ASC.2) ----
    Obj("maxVehicleDetectors", _asc(2, 1), "read-only", scalar=True),
    Obj("vehicleDetectorOptions", _asc(2, 2, 1, 2), "read-write"),
    Obj("vehicleDetectorCallPhase", _asc(2, 2, 1, 4), "read-write"),
    Obj("vehicleDetectorAlarms", _asc(2, 2, 1, 13), "read-only"),
    Obj("vehicleDetectorStatusGroupActive", _asc(2, 4, 1, 2), "read-only"),
    Obj("volumeOccupancySequence", _asc(2, 5, 1), "read-only", scalar=True),
    Obj("volumeOccupancyPeriod", _asc(2, 5, 2), "read-write", scalar=True, unit="s"),
    Obj("activeVolumeOccupancyDetectors", _asc(2, 5, 3), "read-only", scalar=True),
    Obj("detectorVolume", _asc(2, 5, 4, 1, 1), "read-only", unit="veh"),
    Obj("detectorOccupancy", _asc(2, 5, 4, 1, 2), "read-only", unit="%", scale=0.5),
    Obj("maxPedestrianDetectors", _asc(2, 6), "read-only", scalar=True),
    Obj("pedestrianDetectorCallPhase", _asc(2, 7, 1, 2), "read-write"),
    # ---- unit (ASC.3) ----
    Obj("unitStartUpFlash", _asc(3, 1), "read-write", scalar=True, unit="s"),
    Obj("unitBackupTime", _asc(3, 3), "read-write", scalar=True, unit="s"),
    Obj("unitRedRevert", _asc(3, 4), "read-write", scalar=True, unit="s", scale=0.1),
    Obj("unitControlStatus", _asc(3, 5), "read-only", scalar=True),
    Obj("unitFlashStatus", _asc(3, 6), "read-only", scalar=True),
    Obj("unitAlarmStatus2", _asc(3, 7), "read-only", scalar=True),
    Obj("unitAlarmStatus1", _asc(3, 8), "read-only", scalar=True),
    Obj("shortAlarmStatus", _asc(3, 9), "read-only", scalar=True),
    Obj("unitControl", _asc(3, 10), "read-write", scalar=True),
    Obj("specialFunctionOutputState", _asc(3, 14, 1, 2), "read-write"),
    # ---- coord (ASC.4) ----
    Obj("coordOperationalMode", _asc(4, 1), "read-write", scalar=True),
    Obj("maxPatterns", _asc(4, 5), "read-only", scalar=True),
    Obj("patternCycleTime", _asc(4, 7, 1, 2), "read-write", unit="s"),
    Obj("patternOffsetTime", _asc(4, 7, 1, 3), "read-write", unit="s"),
    Obj("patternSplitNumber", _asc(4, 7, 1, 4), "read-write"),
    Obj("patternSequenceNumber", _asc(4, 7, 1, 5), "read-write"),
    Obj("maxSplits", _asc(4, 8), "read-only", scalar=True),
    Obj("splitTime", _asc(4, 9, 1, 3), "read-write", unit="s"),
    Obj("splitMode", _asc(4, 9, 1, 4), "read-write"),
    Obj("splitCoordPhase", _asc(4, 9, 1, 5), "read-write"),
    Obj("coordPatternStatus", _asc(4, 10), "read-only", scalar=True),
    Obj("localFreeStatus", _asc(4, 11), "read-only", scalar=True),
    Obj("coordCycleStatus", _asc(4, 12), "read-only", scalar=True, unit="s"),
    Obj("coordSyncStatus", _asc(4, 13), "read-only", scalar=True, unit="s"),
    Obj("systemPatternControl", _asc(4, 14), "read-write", scalar=True),
    Obj("systemSyncControl", _asc(4, 15), "read-write", scalar=True),
    # ---- timebase, preempt, ring, channel, overlap (never written by central) ----
    Obj("timebaseAscPattern", _asc(5, 3, 1, 2), "read-write"),
    Obj("preemptControl", _asc(6, 2, 1, 2), "read-write"),
    Obj("preemptState", _asc(6, 2, 1, 16), "read-only"),
    Obj("preemptControlState", _asc(6, 3, 1, 2), "read-write"),
    Obj("sequenceData", _asc(7, 3, 1, 3), "read-write", Syntax.OCTETS),
    Obj("ringControlGroupStopTime", _asc(7, 5, 1, 2), "read-write"),
    Obj("ringControlGroupForceOff", _asc(7, 5, 1, 3), "read-write"),
    Obj("ringControlGroupMax2", _asc(7, 5, 1, 4), "read-write"),
    Obj("ringControlGroupMaxInhibit", _asc(7, 5, 1, 5), "read-write"),
    Obj("ringControlGroupPedRecycle", _asc(7, 5, 1, 6), "read-write"),
    Obj("ringControlGroupRedRest", _asc(7, 5, 1, 7), "read-write"),
    Obj("ringControlGroupOmitRedClear", _asc(7, 5, 1, 8), "read-write"),
    Obj("channelControlSource", _asc(8, 2, 1, 2), "read-write"),
    Obj("channelControlType", _asc(8, 2, 1, 3), "read-write"),
    Obj("channelFlash", _asc(8, 2, 1, 4), "read-write"),
    Obj("channelDim", _asc(8, 2, 1, 5), "read-write"),
    Obj("channelStatusGroupReds", _asc(8, 4, 1, 2), "read-only"),
    Obj("channelStatusGroupYellows", _asc(8, 4, 1, 3), "read-only"),
    Obj("channelStatusGroupGreens", _asc(8, 4, 1, 4), "read-only"),
    Obj("overlapIncludedPhases", _asc(9, 2, 1, 3), "read-write", Syntax.OCTETS),
    # ---- the rest of the NTCIP 1202 v02 ASC MIB: index columns, configuration and status central seldom
    # reads; the emulator answers every one (docs/field.md, "NTCIP 1202 coverage") ----
    Obj("phaseNumber", _asc(1, 2, 1, 1), "read-only"),
    Obj("phaseAddedInitial", _asc(1, 2, 1, 11), "read-write"),
    Obj("phaseMaximumInitial", _asc(1, 2, 1, 12), "read-write"),
    Obj("phaseTimeBeforeReduction", _asc(1, 2, 1, 13), "read-write"),
    Obj("phaseCarsBeforeReduction", _asc(1, 2, 1, 14), "read-write"),
    Obj("phaseTimeToReduce", _asc(1, 2, 1, 15), "read-write"),
    Obj("phaseReduceBy", _asc(1, 2, 1, 16), "read-write"),
    Obj("phaseMinimumGap", _asc(1, 2, 1, 17), "read-write"),
    Obj("phaseDynamicMaxLimit", _asc(1, 2, 1, 18), "read-write"),
    Obj("phaseDynamicMaxStep", _asc(1, 2, 1, 19), "read-write"),
    Obj("phaseStatusGroupNumber", _asc(1, 4, 1, 1), "read-only"),
    Obj("phaseControlGroupNumber", _asc(1, 5, 1, 1), "read-only"),
    Obj("vehicleDetectorNumber", _asc(2, 2, 1, 1), "read-only"),
    Obj("vehicleDetectorSwitchPhase", _asc(2, 2, 1, 5), "read-write"),
    Obj("vehicleDetectorDelay", _asc(2, 2, 1, 6), "read-write"),
    Obj("vehicleDetectorExtend", _asc(2, 2, 1, 7), "read-write"),
    Obj("vehicleDetectorQueueLimit", _asc(2, 2, 1, 8), "read-write"),
    Obj("vehicleDetectorNoActivity", _asc(2, 2, 1, 9), "read-write"),
    Obj("vehicleDetectorMaxPresence", _asc(2, 2, 1, 10), "read-write"),
    Obj("vehicleDetectorErraticCounts", _asc(2, 2, 1, 11), "read-write"),
    Obj("vehicleDetectorFailTime", _asc(2, 2, 1, 12), "read-write"),
    Obj("vehicleDetectorReportedAlarms", _asc(2, 2, 1, 14), "read-only"),
    Obj("vehicleDetectorReset", _asc(2, 2, 1, 15), "read-write"),
    Obj("maxVehicleDetectorStatusGroups", _asc(2, 3), "read-only", scalar=True),
    Obj("vehicleDetectorStatusGroupNumber", _asc(2, 4, 1, 1), "read-only"),
    Obj("vehicleDetectorStatusGroupAlarms", _asc(2, 4, 1, 3), "read-only"),
    Obj("pedestrianDetectorNumber", _asc(2, 7, 1, 1), "read-only"),
    Obj("pedestrianDetectorNoActivity", _asc(2, 7, 1, 3), "read-write"),
    Obj("pedestrianDetectorMaxPresence", _asc(2, 7, 1, 4), "read-write"),
    Obj("pedestrianDetectorErraticCounts", _asc(2, 7, 1, 5), "read-write"),
    Obj("pedestrianDetectorAlarms", _asc(2, 7, 1, 6), "read-only"),
    Obj("unitAutoPedestrianClear", _asc(3, 2), "read-write", scalar=True),
    Obj("maxAlarmGroups", _asc(3, 11), "read-only", scalar=True),
    Obj("alarmGroupNumber", _asc(3, 12, 1, 1), "read-only"),
    Obj("alarmGroupState", _asc(3, 12, 1, 2), "read-only"),
    Obj("maxSpecialFunctionOutputs", _asc(3, 13), "read-only", scalar=True),
    Obj("specialFunctionOutputNumber", _asc(3, 14, 1, 1), "read-only"),
    Obj("coordCorrectionMode", _asc(4, 2), "read-write", scalar=True),
    Obj("coordMaximumMode", _asc(4, 3), "read-write", scalar=True),
    Obj("coordForceMode", _asc(4, 4), "read-write", scalar=True),
    Obj("patternTableType", _asc(4, 6), "read-only", scalar=True),
    Obj("patternNumber", _asc(4, 7, 1, 1), "read-only"),
    Obj("splitNumber", _asc(4, 9, 1, 1), "read-only"),
    Obj("splitPhase", _asc(4, 9, 1, 2), "read-only"),
    Obj("timebaseAscPatternSync", _asc(5, 1), "read-write", scalar=True),
    Obj("maxTimebaseAscActions", _asc(5, 2), "read-only", scalar=True),
    Obj("timebaseAscActionNumber", _asc(5, 3, 1, 1), "read-only"),
    Obj("timebaseAscAuxillaryFunction", _asc(5, 3, 1, 3), "read-write"),
    Obj("timebaseAscSpecialFunction", _asc(5, 3, 1, 4), "read-write"),
    Obj("timebaseAscActionStatus", _asc(5, 4), "read-only", scalar=True),
    Obj("maxPreempts", _asc(6, 1), "read-only", scalar=True),
    Obj("preemptNumber", _asc(6, 2, 1, 1), "read-only"),
    Obj("preemptLink", _asc(6, 2, 1, 3), "read-write"),
    Obj("preemptDelay", _asc(6, 2, 1, 4), "read-write"),
    Obj("preemptMinimumDuration", _asc(6, 2, 1, 5), "read-write"),
    Obj("preemptMinimumGreen", _asc(6, 2, 1, 6), "read-write"),
    Obj("preemptMinimumWalk", _asc(6, 2, 1, 7), "read-write"),
    Obj("preemptEnterPedClear", _asc(6, 2, 1, 8), "read-write"),
    Obj("preemptTrackGreen", _asc(6, 2, 1, 9), "read-write"),
    Obj("preemptDwellGreen", _asc(6, 2, 1, 10), "read-write"),
    Obj("preemptMaximumPresence", _asc(6, 2, 1, 11), "read-write"),
    Obj("preemptTrackPhase", _asc(6, 2, 1, 12), "read-write"),
    Obj("preemptDwellPhase", _asc(6, 2, 1, 13), "read-write"),
    Obj("preemptDwellPed", _asc(6, 2, 1, 14), "read-write"),
    Obj("preemptExitPhase", _asc(6, 2, 1, 15), "read-write"),
    Obj("preemptControlNumber", _asc(6, 3, 1, 1), "read-only"),
    Obj("maxRings", _asc(7, 1), "read-only", scalar=True),
    Obj("maxSequences", _asc(7, 2), "read-only", scalar=True),
    Obj("sequenceNumber", _asc(7, 3, 1, 1), "read-only"),
    Obj("sequenceRingNumber", _asc(7, 3, 1, 2), "read-only"),
    Obj("maxRingControlGroups", _asc(7, 4), "read-only", scalar=True),
    Obj("ringControlGroupNumber", _asc(7, 5, 1, 1), "read-only"),
    Obj("maxChannels", _asc(8, 1), "read-only", scalar=True),
    Obj("channelNumber", _asc(8, 2, 1, 1), "read-only"),
    Obj("maxChannelStatusGroups", _asc(8, 3), "read-only", scalar=True),
    Obj("channelStatusGroupNumber", _asc(8, 4, 1, 1), "read-only"),
    Obj("maxOverlaps", _asc(9, 1), "read-only", scalar=True),
    Obj("overlapNumber", _asc(9, 2, 1, 1), "read-only"),
    Obj("overlapType", _asc(9, 2, 1, 2), "read-write"),
    Obj("overlapModifierPhases", _asc(9, 2, 1, 4), "read-write", Syntax.OCTETS),
    Obj("overlapTrailGreen", _asc(9, 2, 1, 5), "read-write"),
    Obj("overlapTrailYellow", _asc(9, 2, 1, 6), "read-write"),
    Obj("overlapTrailRed", _asc(9, 2, 1, 7), "read-write"),
    Obj("maxOverlapStatusGroups", _asc(9, 3), "read-only", scalar=True),
    Obj("overlapStatusGroupNumber", _asc(9, 4, 1, 1), "read-only"),
    Obj("overlapStatusGroupReds", _asc(9, 4, 1, 2), "read-only"),
    Obj("overlapStatusGroupYellows", _asc(9, 4, 1, 3), "read-only"),
    Obj("overlapStatusGroupGreens", _asc(9, 4, 1, 4), "read-only"),
    Obj("maxPort1Addresses", _asc(10, 1), "read-only", scalar=True),
    Obj("port1Number", _asc(10, 2, 1, 1), "read-only"),
    Obj("port1DevicePresent", _asc(10, 2, 1, 2), "read-write"),
    Obj("port1Frame40Enable", _asc(10, 2, 1, 3), "read-write"),
    Obj("port1Status", _asc(10, 2, 1, 4), "read-only"),
    Obj("port1FaultFrame", _asc(10, 2, 1, 5), "read-only"),
    # ---- NTCIP 1201 global objects (field-io.md §1.11; globalModuleTable per the HNS/IRIS MIB1201 tables) ----
    Obj("moduleMake", (*GLOBAL, 1, 3, 1, 3), "read-only", Syntax.OCTETS, source="NTCIP 1201 globalModuleTable"),
    Obj("moduleModel", (*GLOBAL, 1, 3, 1, 4), "read-only", Syntax.OCTETS, source="NTCIP 1201 globalModuleTable"),
    Obj("moduleVersion", (*GLOBAL, 1, 3, 1, 5), "read-only", Syntax.OCTETS, source="NTCIP 1201 globalModuleTable"),
    Obj(
        "controllerBaseStandards",
        (*GLOBAL, 1, 4),
        "read-only",
        Syntax.OCTETS,
        scalar=True,
        source="NTCIP 1201 globalConfiguration",
    ),
    Obj("globalTime", (*GLOBAL, 3, 1), "read-write", scalar=True, unit="s", source="field-io.md §1.11"),
    # ---- MIB-II system group (RFC 1213) ----
    Obj("sysDescr", (*MIB2_SYSTEM, 1), "read-only", Syntax.OCTETS, scalar=True, source="RFC 1213"),
    Obj("sysObjectID", (*MIB2_SYSTEM, 2), "read-only", Syntax.OID, scalar=True, source="RFC 1213"),
    Obj("sysUpTime", (*MIB2_SYSTEM, 3), "read-only", Syntax.TIMETICKS, scalar=True, source="RFC 1213"),
    Obj("sysName", (*MIB2_SYSTEM, 5), "read-only", Syntax.OCTETS, scalar=True, source="RFC 1213"),
    # ---- greenwave profile extension (placeholder PEN 32473, see module docstring) ----
    Obj("gwProfileVersion", (*GW_BASE, 1), "read-only", Syntax.OCTETS, scalar=True, source="greenwave"),
    Obj("gwIntersectionId", (*GW_BASE, 2), "read-only", Syntax.OCTETS, scalar=True, source="greenwave"),
    Obj("gwMode", (*GW_BASE, 3), "read-only", scalar=True, source="greenwave"),
    Obj("gwAcceptedSeq", (*GW_BASE, 4), "read-only", scalar=True, source="greenwave"),
    Obj("gwRejectedSeq", (*GW_BASE, 5), "read-only", scalar=True, source="greenwave"),
    Obj("gwRejectReason", (*GW_BASE, 6), "read-only", scalar=True, source="greenwave"),
    Obj("gwCurrentStage", (*GW_BASE, 7), "read-only", scalar=True, source="greenwave"),
    Obj("gwStageTimer", (*GW_BASE, 8), "read-only", scalar=True, unit="s", scale=0.1, source="greenwave"),
    Obj("gwTick", (*GW_BASE, 9), "read-only", scalar=True, source="greenwave"),
    Obj("gwLockstepStep", (*GW_BASE, 10), "read-write", scalar=True, source="greenwave"),
    Obj("gwStatusBits", (*GW_BASE, 11), "read-only", scalar=True, source="greenwave"),
    Obj("gwPlanClock", (*GW_BASE, 12), "read-only", scalar=True, unit="s", scale=0.1, source="greenwave"),
    Obj("gwHeartbeatAge", (*GW_BASE, 13), "read-only", scalar=True, unit="s", scale=0.1, source="greenwave"),
    Obj("gwCommissioning", (*GW_BASE, 14), "read-only", scalar=True, source="greenwave"),
    # Queue per signal group (index: 1-based group), from video/radar zone detectors; 65535 = not
    # measured. NTCIP 1202 has no queue object (only vehicleDetectorQueueLimit, a setting).
    Obj("gwGroupQueue", (*GW_BASE, 20), "read-only", unit="veh", source="greenwave"),
)

OBJECTS: dict[str, Obj] = {o.name: o for o in _TABLE}
assert len(OBJECTS) == len(_TABLE), "duplicate object names"

#: NTCIP 1202 "system control parameters": a SET of any resets the backup timer (field-io.md §1.8).
SYSTEM_CONTROL = (
    "phaseControlGroupPhaseOmit",
    "phaseControlGroupPedOmit",
    "phaseControlGroupHold",
    "phaseControlGroupForceOff",
    "phaseControlGroupVehCall",
    "phaseControlGroupPedCall",
    "systemPatternControl",
    "systemSyncControl",
    "preemptControlState",
    "ringControlGroupStopTime",
    "ringControlGroupForceOff",
    "ringControlGroupMax2",
    "ringControlGroupMaxInhibit",
    "ringControlGroupPedRecycle",
    "ringControlGroupRedRest",
    "ringControlGroupOmitRedClear",
    "unitControl",
    "specialFunctionOutputState",
)


def obj(name: str) -> Obj:
    return OBJECTS[name]


def oid_str(oid: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in oid)


#: What each greenwave extension object means (the docs table is generated from these and the rows above).
EXTENSION_DOCS: dict[str, str] = {
    "gwProfileVersion": "greenwave NTCIP profile version, `major.minor` (central speaks 1.x)",
    "gwIntersectionId": "the inventory id of the intersection this controller runs",
    "gwMode": "controller mode: 0 local plan, 1 central stage, 2 central plan, 3 flash, 4 fault "
    "(`field_io.commands.ControllerMode`)",
    "gwAcceptedSeq": "sequence number of the last command the controller accepted",
    "gwRejectedSeq": "sequence number of the last command it refused",
    "gwRejectReason": "why (`field_io.commands.RejectReason`: 3 stage out of range, 5 plan invalid, "
    "7 local override, 10 forbidden value, ...)",
    "gwCurrentStage": "stage fully green, 1-based; 0 in a transition",
    "gwStageTimer": "time the current stage has been green",
    "gwTick": "controller ticks since start (one per detector period)",
    "gwLockstepStep": "software in the loop: central writes the step it asks for; the reply waits for it",
    "gwStatusBits": "status word (`field_io.commands.StatusBits`, the same bits as the Modbus status register)",
    "gwPlanClock": "the controller's plan clock",
    "gwHeartbeatAge": "time since the last system-control SET (the NTCIP heartbeat)",
    "gwCommissioning": "1 while the technician's commissioning switch is on (fallback plan upload allowed)",
    "gwGroupQueue": "vehicles queued per signal group (index: group, 1-based) from zone detectors; "
    "65535 = not measured",
}


def extension_table() -> str:
    """The greenwave extension objects as a Markdown table (docs/field.md embeds it; a test keeps it in step)."""
    rows = [
        "| object | OID | access | syntax | unit | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in _TABLE:
        if o.source != "greenwave":
            continue
        inst = oid_str(o.oid) + (".0" if o.scalar else ".<group>")
        unit = f"{o.unit} x {o.scale:g}" if o.scale != 1 else o.unit
        rows.append(
            f"| `{o.name}` | {inst} | {o.access} | {o.syntax.value} | {unit} | {EXTENSION_DOCS.get(o.name, '')} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m field_io.ntcip.oids > table (paste into docs/field.md)
    print(extension_table(), end="")
