"""Every exception greenwave defines joins the one tree under ``GreenwaveError`` (intersections/errors.py).

The command line turns a GreenwaveError into one line that says what and where; an exception class
outside the tree escapes that and reaches the user as a traceback. The test imports every module
of the packages and checks each exception class they define.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from intersections.errors import GreenwaveError

ROOTS = ("intersections", "controller", "simulation", "field_io", "scenarios", "api")
# Alembic's environment runs migrations when imported; it defines no exception.
SKIP = ("api.server.migrations",)


def _our_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for root in ROOTS:
        pkg = importlib.import_module(root)
        names = [root] + [i.name for i in pkgutil.walk_packages(pkg.__path__, prefix=f"{root}.")]
        for name in names:
            if name.startswith(SKIP):
                continue
            module = importlib.import_module(name)
            for _attr, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == name:
                    found[f"{name}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_is_a_greenwave_error() -> None:
    found = _our_exceptions()
    assert "field_io.ntcip.agent.SnmpError" in found  # the walk reaches the protocol modules
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, GreenwaveError))
    assert not outside, f"exceptions outside the GreenwaveError tree: {outside}"
