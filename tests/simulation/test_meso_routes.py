"""A tracked vehicle's route is fetched again when SUMO replaces it (a new route id), and forgotten
when the vehicle goes (simulation/meso.py: MesoReader.next_signal, issue #18)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from simulation.meso import MesoReader


class _Vehicle:
    def __init__(self) -> None:
        self.routes = {"bus": ("r0", ("a", "b", "c"))}
        self.fetched = 0

    def getRouteID(self, vid: str) -> str:  # libsumo's names
        return self.routes[vid][0]

    def getRoute(self, vid: str) -> tuple[str, ...]:
        self.fetched += 1
        return self.routes[vid][1]

    def getRouteIndex(self, vid: str) -> int:
        return 0

    def getLanePosition(self, vid: str) -> float:
        return 10.0


def _reader() -> Any:
    loops = SimpleNamespace(
        edge_length_m={"a": 100.0, "b": 50.0, "x": 70.0},
        movement={("b", "c"): (3, 1), ("a", "x"): (5, 0)},
    )
    reader: Any = SimpleNamespace(loops=loops, _routes={})
    reader.next_signal = MesoReader.next_signal.__get__(reader)
    reader.forget = MesoReader.forget.__get__(reader)
    return reader


def test_the_route_is_kept_until_sumo_replaces_it() -> None:
    veh = _Vehicle()
    conn = SimpleNamespace(vehicle=veh)
    reader = _reader()
    assert reader.next_signal(conn, "bus") == (3, 1, 140.0)  # 100 - 10 on a, 50 on b, then b -> c
    assert reader.next_signal(conn, "bus") == (3, 1, 140.0)
    assert veh.fetched == 1
    veh.routes["bus"] = ("!bus!var#1", ("a", "x"))  # rerouted: SUMO names the new route afresh
    assert reader.next_signal(conn, "bus") == (5, 0, 90.0)
    assert veh.fetched == 2
    reader.forget("bus")
    assert "bus" not in reader._routes
