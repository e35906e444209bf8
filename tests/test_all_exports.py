"""Each package's front door (its ``__init__`` ``__all__``) is locked, as httpx locks its own.

A name added to or dropped from a front door is a change of the public interface: it should
be a decision made in review, not a side effect of an import. Changing a front door means
changing the list below in the same commit.
"""

from __future__ import annotations

import importlib

import pytest

FRONT_DOORS: dict[str, set[str]] = {
    "intersections": {
        "DemandError", "Detector", "DetectorKind", "GreenwaveError", "GroupKind", "InputError",
        "Intersection", "InventoryError", "Movement", "Network", "NetworkFileError", "PlanError",
        "PlanStage", "SafetyViolation", "SignalGroup", "SignalState", "Stage", "TimingPlan",
        "check_plan", "load_plans", "plan_problems", "save_plans",
    },
    "intersections.loaders": {"load_inventory", "load_network", "load_sumo_net"},
    "controller.policies": {
        "Policy", "PolicyContext", "make_policy", "policy_factory", "policy_names", "register_policy",
    },
    "controller.timing": {
        "Demand", "IntersectionTiming", "LaneGroup", "METHODS", "PCU_SETS", "PcuSet", "TimingMethod",
        "compute_plans", "compute_timings", "load_demand", "register_method",
    },
    "api.server": {"Settings", "create_app", "load_settings"},
    "scenarios.atspm": {
        "DetectionType", "DetectorConfig", "EventTable", "IntersectionDetectors", "PurdueCoordination",
        "approach_volume", "config_from_network", "green_to_green_cycles", "intersection_measures",
        "load_detector_config", "network_measures", "phase_terminations", "purdue_coordination",
        "read_events", "red_to_red_cycles", "save_detector_config", "split_cycles", "split_failures",
        "split_monitor", "turning_movement_counts", "write_report", "yellow_red_actuations",
        "yellow_red_cycles",
    },
    "scenarios.corpus": {"CorpusEntry", "DEMAND_LEVELS"},
    "scenarios.library": {
        "BuiltScenario", "DEFS_DIR", "ScenarioDef", "VEHICLE_MIX", "build_scenario", "detector_faults",
        "iter_flows", "load_scenario_def", "scenario_names", "write_vtypes",
    },
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(FRONT_DOORS))
def test_front_door_all_is_locked(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{package}.__all__ names something twice"
    assert set(exported) == FRONT_DOORS[package], (
        f"{package}.__all__ changed: added {sorted(set(exported) - FRONT_DOORS[package])}, "
        f"dropped {sorted(FRONT_DOORS[package] - set(exported))}; update tests/test_all_exports.py "
        "if the change of the public interface is meant"
    )


@pytest.mark.parametrize("package", sorted(FRONT_DOORS))
def test_front_door_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what the package does not define: {missing}"


def test_every_front_door_with_an_all_is_locked() -> None:
    """A package that starts exporting a front door is added to the lock, not left out of it."""
    import pkgutil

    roots = ("intersections", "controller", "simulation", "field_io", "scenarios", "api")
    with_all = set()
    for root in roots:
        pkg = importlib.import_module(root)
        names = [root] + [
            info.name for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{root}.") if info.ispkg
        ]
        for name in names:
            if hasattr(importlib.import_module(name), "__all__"):
                with_all.add(name)
    assert with_all == set(FRONT_DOORS), (
        f"front doors with an __all__ not in the lock: {sorted(with_all - set(FRONT_DOORS))}; "
        f"in the lock but without one: {sorted(set(FRONT_DOORS) - with_all)} (edit FRONT_DOORS above)"
    )
