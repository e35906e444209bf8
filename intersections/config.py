"""One way to read a configuration file: a pydantic model per file, one error line per mistake.

Every configuration file greenwave reads from hand-edited TOML or YAML (regression suites,
scenario definitions, field endpoint files and the intersection inventory) is described by
pydantic models that forbid unknown keys, and read with :func:`validate`. A model rejects the
first bad value as one :class:`~intersections.errors.InputError` line whose ``where`` names the
file, the table and the field (``suite.toml:tolerances.mean_delay_s``), the error shape
DESIGN.md asks of every loader; an unknown key comes back with the nearest known name. Models
are strict: a TOML string is not a number and ``true`` is not 1 (a TOML integer is still a float).
Checks between fields (a stage's groups exist, an intergreen covers a conflict) follow on the
typed tables, in the loader, with the same error shape (:func:`where_of`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from intersections.errors import InputError

__all__ = ["ConfigModel", "SettingsModel", "SettingsError", "validate", "where_of"]

M = TypeVar("M", bound=BaseModel)


class ConfigModel(BaseModel):
    """Base of configuration-file models: unknown keys and type coercion are refused, values frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class SettingsModel(ConfigModel):
    """A configuration model that code also builds by hand (command-line flags, tests, benchmarks).

    One model serves both the file's table and the code's constructor, so a rule is written once;
    read from a file it reports ``file:table.field`` through :func:`validate`, built in code a bad
    value is the same one :class:`InputError` line at :attr:`where` (``snmp``, ``tls``) instead of
    pydantic's multi-line report.
    """

    where: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise SettingsError(e, type(self)) from None


class SettingsError(InputError, ValueError):
    """A :class:`SettingsModel` refused its values: one line at the model's ``where``.

    Also a ``ValueError`` because pydantic calls the model's own ``__init__`` when the model is a
    table of a file: it then reports this error at the table, and :func:`validate` adds the field
    this error keeps in :attr:`loc`, so the file's line still names file, table and field.
    """

    def __init__(self, e: ValidationError, model: type[BaseModel]) -> None:
        inner = _input_error(e, model, path="", prefix=())
        self.loc: tuple[int | str, ...] = tuple(e.errors(include_url=False)[0].get("loc", ()))
        where = getattr(model, "where", "") or model.__name__
        super().__init__(inner.message, where=where_of(where, self.loc))


def where_of(path: str | Path, loc: tuple[int | str, ...] | list[int | str] = ()) -> str:
    """``file:table.field[index]`` for a location inside a file (the file alone at the top)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return f"{path}:{out}" if out else str(path)


def _message(err: Mapping[str, Any]) -> str:
    """pydantic's error in the house wording (``must be >= 1, got -2``), one line."""
    kind, ctx, got = err.get("type", ""), err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing required field"
    if kind == "value_error":
        return str(err.get("msg", "")).removeprefix("Value error, ")
    if kind == "literal_error":
        choices = sorted(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return f"must be one of {', '.join(choices)}; got {got!r}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit:g}, got {got!r}"
    if kind == "int_type" and isinstance(got, float):
        return f"must be a whole number, got {got!r}"
    words = {
        "int_type": "a whole number",
        "float_type": "a number",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a table",
        "model_type": "a table",
        "finite_number": "finite",
        "string_too_short": "a non-empty string",
        "too_short": "non-empty",
        "string_pattern_mismatch": "letters, digits, '_', '-' or '.'",
    }
    if kind in words:
        return f"must be {words[kind]}, got {got!r}" if not isinstance(got, dict | list) else f"must be {words[kind]}"
    msg = str(err.get("msg", "invalid value"))
    return msg[:1].lower() + msg[1:]


def validate(
    model: type[M],
    data: Any,
    *,
    path: str | Path,
    prefix: tuple[str | int, ...] = (),
    error: type[InputError] = InputError,
) -> M:
    """``data`` (a parsed TOML document or table at ``prefix``) as ``model``, or one ``error`` line.

    ``error`` is the loader's own kind of :class:`InputError` (``InventoryError`` for inventories).
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise _input_error(e, model, path=path, prefix=prefix, error=error) from None


def _input_error(
    e: ValidationError,
    model: type[BaseModel],
    *,
    path: str | Path,
    prefix: tuple[str | int, ...],
    error: type[InputError] = InputError,
) -> InputError:
    """pydantic's first error as the house's one line, placed at ``path:prefix.loc``."""
    err = e.errors(include_url=False)[0]
    loc = (*prefix, *err.get("loc", ()))
    message = _message(err)
    nested = (err.get("ctx") or {}).get("error")
    if isinstance(nested, SettingsError):  # a hand-built settings model used as a table: its own field
        loc, message = (*loc, *nested.loc), nested.message
    if err.get("type") == "extra_forbidden":
        message = _unknown_field(model, tuple(err.get("loc", ())))
    return error(message, where=where_of(path, loc))


def _unknown_field(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """``unknown field 'x'`` with the nearest known name, or the known names, of the table it sits in.

    Configuration files are typed by hand: a typo should come back with its correction.
    """
    table = _model_at(model, loc[:-1])
    if table is None:
        return "unknown field"
    known = sorted(f.alias or name for name, f in table.model_fields.items())
    hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
    said = f"did you mean {hint[0]!r}?" if hint else f"known here: {', '.join(known) or '(none)'}"
    return f"unknown field {loc[-1]!r} ({said})"


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model of the table at ``loc`` inside ``model`` (list positions and table keys skipped), or None."""
    current: type[BaseModel] = model
    for part in loc:
        if isinstance(part, int):
            continue
        by_name = {f.alias or name: f for name, f in current.model_fields.items()}
        if part in by_name:  # else a key of a {name: table} mapping, whose model ``current`` already is
            found = _models_in(by_name[part].annotation)
            if not found:
                return None
            current = found[0]
    return current


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``list[M]``, ``M | None``, ``dict[str, M]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]
