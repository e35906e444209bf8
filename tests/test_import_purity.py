"""The pure core imports no SUMO, Modbus, SNMP or web library (DESIGN.md, STYLE.md §1).

Each check runs in a fresh interpreter so other tests' imports cannot mask a leak.
sumolib is allowed only lazily inside the SUMO net loader's function body.
"""

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
