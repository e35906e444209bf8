"""Control policies, by name.

A policy sees arrays for all intersections at once and returns one stage
request per intersection (or ``HOLD``); the safety supervisor turns requests
into states. Policies register here under a unique name (duplicates are
refused), so the command line, the scenarios and the control centre pick them
with ``make_policy("fixed", ...)`` and new ones (``adaptive``) slot in by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from controller.policies.base import Policy, PolicyContext
from intersections.errors import InputError

__all__ = ["Policy", "PolicyContext", "register_policy", "make_policy", "policy_factory", "policy_names"]

_REGISTRY: dict[str, Callable[..., Policy]] = {}

P = TypeVar("P", bound=Callable[..., Policy])


def register_policy(name: str) -> Callable[[P], P]:
    def deco(factory: P) -> P:
        if name in _REGISTRY:
            raise ValueError(f"a policy named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def policy_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def policy_factory(name: str) -> Callable[..., Policy]:
    """The registered factory (usually the policy class), to read its declarations before building one."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown controller {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def make_policy(name: str, **params: Any) -> Policy:
    return policy_factory(name)(**params)


def _load_builtin() -> None:
    # Imported here, not at module top, so that a policy module may import this one.
    from controller.policies import actuated, adaptive, fixed_time, max_pressure, native, webster  # noqa: F401
