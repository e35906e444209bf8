"""Intersection and road-network model, loaders and the plan checker.

Pure: imports no SUMO, Modbus, SNMP or web library (a test enforces it).
"""

from intersections.errors import (
    DemandError,
    GreenwaveError,
    InputError,
    InventoryError,
    NetworkFileError,
    PlanError,
    SafetyViolation,
)
from intersections.model import (
    Detector,
    DetectorKind,
    GroupKind,
    Intersection,
    Movement,
    SignalGroup,
    SignalState,
    Stage,
)
from intersections.network import Network
from intersections.plan import PlanStage, TimingPlan, check_plan, load_plans, plan_problems, save_plans

__all__ = [
    "DemandError",
    "Detector",
    "DetectorKind",
    "GreenwaveError",
    "GroupKind",
    "InputError",
    "Intersection",
    "InventoryError",
    "Movement",
    "Network",
    "NetworkFileError",
    "PlanError",
    "PlanStage",
    "SafetyViolation",
    "SignalGroup",
    "SignalState",
    "Stage",
    "TimingPlan",
    "check_plan",
    "load_plans",
    "plan_problems",
    "save_plans",
]
