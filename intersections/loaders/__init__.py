"""Loaders: a SUMO ``.net.xml`` or a field inventory (TOML/YAML) -> :class:`~intersections.network.Network`.

:func:`load_network` is the front door and picks the loader from the file name;
:func:`load_sumo_net` and :func:`load_inventory` are the two methods. Neither
module imports SUMO at import time (sumolib is imported inside
:func:`load_sumo_net`), so the pure core stays pure.
"""

from __future__ import annotations

from pathlib import Path

from intersections.errors import InputError
from intersections.loaders.inventory import load_inventory
from intersections.loaders.sumo_net import load_sumo_net
from intersections.network import Network

__all__ = ["load_network", "load_sumo_net", "load_inventory"]

_SUMO_SUFFIXES = (".net.xml", ".net.xml.gz", ".xml", ".xml.gz")
_INVENTORY_SUFFIXES = (".toml", ".yaml", ".yml")


def load_network(path: str | Path) -> Network:
    """Load a network, choosing the loader by file name.

    ``.net.xml``/``.xml`` (optionally gzipped) -> :func:`load_sumo_net`;
    ``.toml``/``.yaml``/``.yml`` -> :func:`load_inventory`.
    """
    name = Path(path).name.lower()
    if name.endswith(_SUMO_SUFFIXES):
        return load_sumo_net(path)
    if name.endswith(_INVENTORY_SUFFIXES):
        return load_inventory(path)
    raise InputError(
        "unknown network file type: expected a SUMO network (.net.xml, .xml) "
        "or an intersection inventory (.toml, .yaml, .yml)",
        where=str(path),
    )
