"""Configuration files read through pydantic models: one error line naming file, table and field."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from intersections.config import ConfigModel, validate, where_of
from intersections.errors import InputError


class _Inner(ConfigModel):
    rate_veh_h: float = Field(ge=0)


class _File(ConfigModel):
    name: str
    seeds: list[int] = Field(default_factory=list)
    approach: dict[str, _Inner] = Field(default_factory=dict)


def test_a_valid_document_becomes_a_frozen_model() -> None:
    f = validate(_File, {"name": "x", "seeds": [1, 2], "approach": {"n": {"rate_veh_h": 300}}}, path="a.toml")
    assert f.approach["n"].rate_veh_h == 300.0 and f.seeds == [1, 2]
    with pytest.raises(ValidationError):
        f.name = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("doc", "where", "says"),
    [
        ({}, "a.toml:name", "missing required field"),
        ({"name": "x", "colour": 1}, "a.toml:colour", r"unknown field .colour. \(known here: approach, name, seeds\)"),
        ({"name": "x", "sedes": [1]}, "a.toml:sedes", r"unknown field .sedes. \(did you mean .seeds.\?\)"),
        ({"name": "x", "approach": {"n": {"rate_veh_h": 1, "rate_veh": 1}}}, "a.toml:approach.n.rate_veh", "mean"),
        ({"name": "x", "seeds": [1, "2"]}, "a.toml:seeds[1]", "must be a whole number, got '2'"),
        ({"name": "x", "seeds": [True]}, "a.toml:seeds[0]", "whole number, got True"),
        ({"name": "x", "seeds": [1.5]}, "a.toml:seeds[0]", "must be a whole number, got 1.5"),
        ({"name": "x", "approach": {"n": {"rate_veh_h": -1}}}, "a.toml:approach.n.rate_veh_h", "must be >= 0, got -1"),
    ],
)
def test_the_first_mistake_is_one_line_naming_file_table_and_field(doc: dict, where: str, says: str) -> None:
    with pytest.raises(InputError, match=says) as e:
        validate(_File, doc, path="a.toml")
    assert e.value.where == where and "\n" not in str(e.value)


def test_a_table_inside_a_file_is_named_from_its_prefix() -> None:
    with pytest.raises(InputError) as e:
        validate(_Inner, {"rate_veh_h": "x"}, path="s.toml", prefix=("demand", "grid"))
    assert e.value.where == "s.toml:demand.grid.rate_veh_h"
    assert where_of("s.toml") == "s.toml" and where_of("s.toml", ("bus", 2, "id")) == "s.toml:bus[2].id"
