"""The road network: intersections plus the networkx road graph that links them.

The road graph is a :class:`networkx.DiGraph`. Nodes are junction ids with
attributes ``x_m``, ``y_m`` and ``signalised`` (true when an
:class:`~intersections.model.Intersection` of the same id exists). Edges are
road links with attributes ``id`` (the SUMO edge id or inventory link id),
``length_m``, ``free_speed_m_s``, ``lanes`` and ``saturation_flow_pcu_h``
(the whole link, all lanes). Offsets and green waves (coordination) work on
this graph; the engine works on the intersections.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import networkx as nx

from intersections.errors import InputError
from intersections.model import Intersection

__all__ = ["Network", "add_link"]


def add_link(
    graph: nx.DiGraph[str],
    from_node: str,
    to_node: str,
    *,
    id: str,
    length_m: float,
    free_speed_m_s: float,
    lanes: int,
    saturation_flow_pcu_h: float,
) -> None:
    """Add one road link with validated, unit-named attributes."""
    if length_m < 0 or free_speed_m_s <= 0 or lanes < 1 or saturation_flow_pcu_h < 0:
        raise InputError(
            f"link needs length_m >= 0, free_speed_m_s > 0, lanes >= 1, saturation_flow_pcu_h >= 0 "
            f"(got {length_m}, {free_speed_m_s}, {lanes}, {saturation_flow_pcu_h})",
            where=f"link {id}",
        )
    graph.add_edge(
        from_node,
        to_node,
        id=id,
        length_m=float(length_m),
        free_speed_m_s=float(free_speed_m_s),
        lanes=int(lanes),
        saturation_flow_pcu_h=float(saturation_flow_pcu_h),
    )


@dataclass(frozen=True, eq=False)
class Network:
    """Intersections (in a fixed order: the row order of every engine array)."""

    intersections: tuple[Intersection, ...]
    graph: nx.DiGraph[str]
    source: str = ""
    #: Traffic lights of the source left on their own programs, with the reason (one line each).
    unmodelled: tuple[tuple[str, str], ...] = ()
    _by_id: Mapping[str, Intersection] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "intersections", tuple(self.intersections))
        ids = [i.id for i in self.intersections]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise InputError(f"duplicate intersection ids {dup}", where=self.source or "network")
        object.__setattr__(self, "_by_id", {i.id: i for i in self.intersections})

    def __len__(self) -> int:
        return len(self.intersections)

    def __iter__(self) -> Iterator[Intersection]:
        return iter(self.intersections)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.intersections)

    @property
    def by_id(self) -> Mapping[str, Intersection]:
        return self._by_id

    def get(self, intersection_id: str) -> Intersection:
        try:
            return self.by_id[intersection_id]
        except KeyError:
            known = ", ".join(sorted(self.by_id)[:10])
            raise InputError(
                f"unknown intersection {intersection_id!r} (known: {known}{', ...' if len(self) > 10 else ''})",
                where=self.source or "network",
            ) from None

    def subset(self, ids: Iterable[str]) -> Network:
        ids = list(ids)
        return Network(tuple(self.get(i) for i in ids), self.graph, self.source)
