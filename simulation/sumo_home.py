"""Locate SUMO's binaries: the pip ``eclipse-sumo`` wheel first, then PATH.

SUMO_HOME is honoured when set (a system SUMO build); otherwise the wheel's
own ``sumo.SUMO_HOME`` is used, so nothing outside the README's install is
needed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from intersections.errors import SimulationError

__all__ = ["sumo_home", "sumo_binary"]


def sumo_home() -> Path | None:
    env = os.environ.get("SUMO_HOME")
    if env and Path(env, "bin").is_dir():
        return Path(env)
    try:
        import sumo  # the eclipse-sumo wheel

        return Path(sumo.SUMO_HOME)
    except ImportError:
        return None


def sumo_binary(name: str) -> str:
    """Absolute path of a SUMO executable (``sumo``, ``netgenerate``, ...)."""
    home = sumo_home()
    if home is not None:
        cand = home / "bin" / name
        if cand.exists():
            return str(cand)
    found = shutil.which(name)
    if found:
        return found
    raise SimulationError(f"SUMO executable {name!r} not found (install eclipse-sumo or set SUMO_HOME)")
