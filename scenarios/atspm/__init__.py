"""Automated traffic signal performance measures (ATSPM) from Indiana hi-res event logs.

One implementation for simulation and field data: the measures read an
:class:`~scenarios.atspm.events.EventTable` (whatever wrote the log) and a
detector configuration (:mod:`scenarios.atspm.detectors`), and are pure numpy.

=================================  =============================================  ============================
measure                            function                                       module
=================================  =============================================  ============================
Purdue coordination diagram,       :func:`purdue_coordination`                    :mod:`.coordination`
arrivals on green/red, platoon
ratio, approach delay
split monitor, phase termination   :func:`split_monitor`, :func:`phase_terminations`  :mod:`.splits`
split failure (GOR / ROR5)         :func:`split_failures`                         :mod:`.splits`
approach volume, TMC               :func:`approach_volume`,                       :mod:`.volumes`
                                   :func:`turning_movement_counts`
yellow and red actuations          :func:`yellow_red_actuations`                  :mod:`.yellow_red`
=================================  =============================================  ============================

:func:`intersection_measures` runs all of them for one intersection and
:func:`write_report` writes the JSON and PNGs (``greenwave report``);
``docs/measures.md`` has the definitions and sources.
"""

from scenarios.atspm.coordination import PurdueCoordination, purdue_coordination
from scenarios.atspm.cycles import green_to_green_cycles, red_to_red_cycles, split_cycles, yellow_red_cycles
from scenarios.atspm.detectors import (
    DetectionType,
    DetectorConfig,
    IntersectionDetectors,
    config_from_network,
    load_detector_config,
    save_detector_config,
)
from scenarios.atspm.events import EventTable, read_events
from scenarios.atspm.report import intersection_measures, network_measures, write_report
from scenarios.atspm.splits import phase_terminations, split_failures, split_monitor
from scenarios.atspm.volumes import approach_volume, turning_movement_counts
from scenarios.atspm.yellow_red import yellow_red_actuations

__all__ = [
    "EventTable",
    "read_events",
    "DetectionType",
    "DetectorConfig",
    "IntersectionDetectors",
    "config_from_network",
    "load_detector_config",
    "save_detector_config",
    "red_to_red_cycles",
    "green_to_green_cycles",
    "yellow_red_cycles",
    "split_cycles",
    "PurdueCoordination",
    "purdue_coordination",
    "split_monitor",
    "phase_terminations",
    "split_failures",
    "approach_volume",
    "turning_movement_counts",
    "yellow_red_actuations",
    "intersection_measures",
    "network_measures",
    "write_report",
]
