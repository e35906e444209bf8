"""The development corpus: real and generated SUMO networks that greenwave must run untouched.

Issue #15. Two families, each its own module, both producing :class:`CorpusEntry`:

* :mod:`scenarios.corpus.real`: real-city scenarios with their own signal programs and demand,
  rebuilt from public sources (licences and sizes in ``scenarios/corpus/real/SOURCES.md``);
* :mod:`scenarios.corpus.generated`: irregular networks made with netgenerate (random, spider,
  grid with varied lanes, turn pockets, joined junctions, one-way pairs), each at three demand
  levels, car-only and motorcycle-dominated, some with pedestrian crossings.

Reserved for independent evaluation and never used here: the RESCO / sumo-rl benchmark
networks, TAPAS Cologne, InTAS Ingolstadt and the ``bologna/`` folder of DLR-TS/sumo-scenarios.

Every entry is a ready ``.sumocfg`` (net, routes, the scenario's own additional files, begin and
end) that ``greenwave simulate --sumocfg`` runs as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CorpusEntry", "DEMAND_LEVELS"]

#: Demand levels of the generated networks, as a fraction of the network's estimated capacity.
DEMAND_LEVELS = ("light", "near", "over")


@dataclass(frozen=True)
class CorpusEntry:
    """One runnable corpus scenario.

    ``name`` is unique over the corpus (``real/<source>`` or ``gen/<net>/<demand>/<mix>``);
    ``family`` is ``"real"`` or ``"generated"``; ``demand`` one of :data:`DEMAND_LEVELS` (real
    scenarios: ``"own"``); ``mix`` ``"car"``, ``"moto"`` (motorcycle-dominated) or ``"own"``;
    ``features`` names the failure classes the network exercises (``short_lanes``,
    ``additional_programs``, ``waut``, ``joined``, ``permissive``, ``pedestrians``,
    ``never_green``, ``actuated_phases``, ``one_way``, ``turn_pockets``) so a CI slice can pick
    one network per class.
    """

    name: str
    family: str
    sumocfg: Path
    demand: str = "own"
    mix: str = "own"
    n_signals: int = 0
    features: tuple[str, ...] = field(default=())
    source: str = ""
