"""One way to read a configuration file: a pydantic model per file, one error line per mistake.

Every configuration file greenwave reads by hand-edited TOML (regression suites today; the
scenario library, the inventory and endpoint files are to follow, issue #19) is described
by a pydantic model that forbids unknown keys, and read with :func:`validate`. A model
rejects the first bad value as one :class:`~intersections.errors.InputError` line whose
``where`` names the file, the table and the field (``suite.toml:tolerances.mean_delay_s``),
the error shape DESIGN.md asks of every loader. Models are strict: a TOML string is not
a number and ``true`` is not 1 (a TOML integer is still a float).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from intersections.errors import InputError

__all__ = ["ConfigModel", "validate", "where_of"]

M = TypeVar("M", bound=BaseModel)


class ConfigModel(BaseModel):
    """Base of configuration-file models: unknown keys and type coercion are refused, values frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def where_of(path: str | Path, loc: tuple[int | str, ...] | list[int | str] = ()) -> str:
    """``file:table.field[index]`` for a location inside a file (the file alone at the top)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return f"{path}:{out}" if out else str(path)


def _message(err: Mapping[str, Any]) -> str:
    kind, msg = err.get("type", ""), str(err.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing required field"
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    got = err.get("input")
    if kind != "value_error" and not isinstance(got, dict | list):
        msg = f"{msg}, got {got!r}"
    return msg[:1].lower() + msg[1:]


def validate(model: type[M], data: Any, *, path: str | Path, prefix: tuple[str, ...] = ()) -> M:
    """``data`` (a parsed TOML document or table at ``prefix``) as ``model``, or one InputError line."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = (*prefix, *err.get("loc", ()))
        raise InputError(_message(err), where=where_of(path, loc)) from None
