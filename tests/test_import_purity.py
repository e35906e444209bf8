"""The layers of DESIGN.md hold: the pure core imports no SUMO, Modbus, SNMP or web library
(STYLE.md §1), and no package imports one above it or beside it.

The purity check runs in a fresh interpreter so other tests' imports cannot mask a leak;
the layer check reads every import in the source, lazy ones inside functions included.
sumolib is allowed only lazily inside the SUMO net loader's function body.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = (
    "traci",
    "libsumo",
    "sumolib",
    "sumo",
    "pymodbus",
    "pysnmp",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
)


def _modules(package: str) -> list[str]:
    pkg_path = ROOT / package
    names = [package]
    for info in pkgutil.walk_packages([str(pkg_path)], prefix=f"{package}."):
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", ["intersections", "controller"])
def test_pure_core_imports_nothing_forbidden(package: str) -> None:
    mods = _modules(package)
    assert len(mods) > 3
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"{package} imported {out.stdout.strip()}"


# ----------------------------------------------------------------------------- layers, read from the source

# DESIGN.md "The shape in one paragraph": dependencies point downwards only. Each package may
# import itself and the packages listed here, nothing else of ours. scenarios/ and api/ sit on
# top and may use anything below; software in the loop, which couples field_io/ and
# simulation/, lives in api/ (api/sil.py), where the layers meet.
OURS = ("intersections", "controller", "simulation", "field_io", "scenarios", "api")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "intersections": frozenset(),
    "controller": frozenset({"intersections"}),
    "simulation": frozenset({"intersections", "controller"}),
    "field_io": frozenset({"intersections", "controller"}),
    "scenarios": frozenset({"intersections", "controller", "simulation", "field_io"}),
    "api": frozenset({"intersections", "controller", "simulation", "field_io", "scenarios"}),
}
# The only I/O library the core may touch, and only inside a function body (never at import).
LAZY_IN_CORE = {("intersections/loaders/sumo_net.py", "sumolib")}


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(module, line, at_module_level)`` of every absolute import in ``path``, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(n) for n in tree.body}
    for n in tree.body:  # imports under `if TYPE_CHECKING:` / try blocks at module level run at import too
        if isinstance(n, (ast.If, ast.Try)):
            top_level.update(id(c) for c in ast.walk(n))
    out: list[tuple[str, int, bool]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(a.name, n.lineno, id(n) in top_level) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.append((n.module, n.lineno, id(n) in top_level))
    return out


def _layer_violations(root: Path) -> list[str]:
    bad = []
    for package in OURS:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for module, line, at_top in _imports(path):
                top = module.split(".")[0]
                if top in OURS and top != package and top not in MAY_IMPORT[package]:
                    bad.append(f"{rel}:{line}: {package}/ may not import {top}/ ({module})")
                if package in ("intersections", "controller") and top in FORBIDDEN:
                    if at_top or (rel, top) not in LAZY_IN_CORE:
                        bad.append(f"{rel}:{line}: the pure core may not import {module}")
    return bad


def test_every_import_respects_the_layers() -> None:
    assert all((ROOT / p).is_dir() for p in OURS)
    assert _layer_violations(ROOT) == []


def test_the_layer_check_catches_an_import_against_the_layers(tmp_path: Path) -> None:
    """The checker itself, on a tree with one wrong import per rule (so the test above can fail)."""
    for package in OURS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "simulation" / "runner.py").write_text("def f():\n    from scenarios.library import x\n")
    (tmp_path / "field_io" / "sil.py").write_text("import simulation.runner\n")
    (tmp_path / "controller" / "engine.py").write_text("from api.cli import main\nimport pymodbus\n")
    (tmp_path / "intersections" / "loaders.py").write_text("def f():\n    import sumolib\n")
    (tmp_path / "api" / "cli.py").write_text("import scenarios, simulation, field_io, controller\n")
    bad = _layer_violations(tmp_path)
    assert sorted(bad) == [
        "controller/engine.py:1: controller/ may not import api/ (api.cli)",
        "controller/engine.py:2: the pure core may not import pymodbus",
        "field_io/sil.py:1: field_io/ may not import simulation/ (simulation.runner)",
        "intersections/loaders.py:2: the pure core may not import sumolib",
        "simulation/runner.py:2: simulation/ may not import scenarios/ (scenarios.library)",
    ]
