"""One check for "a definition with one edit is refused in one line naming file and field", shared by tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from intersections.errors import InputError
from scenarios.library import load_scenario_def


def assert_edit_refused(tmp_path: Path, good: str, old: str, new: str, field: str, words: str) -> InputError:
    """``good`` with ``old`` replaced by ``new`` is refused at ``file:field`` with ``words`` in the one line."""
    assert old in good, f"the edit's anchor {old!r} is no longer in the definition"
    bad = tmp_path / "bad.toml"
    bad.write_text(good.replace(old, new, 1))
    with pytest.raises(InputError) as e:
        load_scenario_def(bad)
    assert e.value.where == f"{bad}:{field}"
    assert words in str(e.value) and "\n" not in str(e.value)
    return e.value
