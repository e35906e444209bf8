"""The ``greenwave`` command line.

Each subcommand lives in its own module under :mod:`api.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int``. Errors that greenwave raises on purpose
(:class:`~intersections.errors.GreenwaveError`) print one line naming what and
where, and exit with code 2: no traceback for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from intersections.errors import GreenwaveError, PlanError

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

# One table: subcommand modules in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "api.commands.optimize",
    "api.commands.check",
    "api.commands.scenario",
    "api.commands.simulate",
    "api.commands.compare",
    "api.commands.plot",
    "api.commands.emulate",
    "api.commands.commission",
    "api.commands.report",
    "api.commands.regress",
    "api.commands.sweep",
    "api.commands.corpus",
    "api.commands.serve",
    "api.commands.users",
)


def _version() -> str:
    try:
        return version("greenwave")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenwave",
        description="Adaptive traffic-signal control and simulation (SUMO, Modbus, NTCIP).",
    )
    parser.add_argument("--version", action="version", version=f"greenwave {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class _CliHandler(logging.StreamHandler):
    """The command line's own handler, installed once per process."""


def _one_line_warnings(command: str) -> None:
    """Warnings of the ``greenwave`` logger (a junction left on its own program, ...) as one line each."""
    log = logging.getLogger("greenwave")
    if any(isinstance(h, _CliHandler) for h in log.handlers):
        return
    handler = _CliHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"greenwave {command}: %(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _one_line_warnings(args.command)
    try:
        return int(args.func(args) or 0)
    except PlanError as e:
        print(f"greenwave {args.command}: {e.where}: plan refused:", file=sys.stderr)
        for p in e.problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    except GreenwaveError as e:
        print(f"greenwave {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"greenwave {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
