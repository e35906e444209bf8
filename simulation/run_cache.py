"""What a run derives from its SUMO net, kept on disk and keyed on the files' content.

Every run of a scenario derives the same things from the same files before SUMO starts: the
intersection model with the programs SUMO runs (:func:`simulation.runner.load_run_network`,
one ``sumolib`` parse with internal lanes), then the detectors and, in meso, the loops
(:func:`simulation.detectors.generate_detectors`, :func:`simulation.meso.meso_reader`,
another parse with sumolib's default options). On a city's net that is seconds of pure
Python a run (hanoi_city: ~4 s quiet, against ~18 s for the simulated hour in meso), and a
``compare`` or ``sweep`` repeats it for every run of the same net.

An entry is found by a SHA-256 key over

* what it is (``network`` or ``detectors``) and the options that change it (begin time,
  exit zones, model),
* the resolved path and the SHA-256 of the content of the net and of every additional file
  (the model records its source path, and additional files may carry programs and WAUTs),
* the source of the code that derives it (every module of ``intersections/`` and
  ``simulation/``, ``controller/arrays.py`` and ``controller/backend.py``) and the versions
  of Python, sumolib, numpy and networkx,

so a changed file or a changed loader is a miss, never a stale answer. A file that cannot
be read, an entry that cannot be unpickled (a half-written file, a class that moved) and a
cache directory that cannot be written are misses too: the run derives everything as it
would without the cache. Entries are written to a temporary file and renamed into place
(runs of a sweep may finish the same entry side by side); the least recently used beyond
:data:`MAX_ENTRIES` entries or :data:`MAX_BYTES` are removed.

The directory is ``$GREENWAVE_RUN_CACHE``, else ``$XDG_CACHE_HOME/greenwave/runs`` (else
``~/.cache/greenwave/runs``); ``GREENWAVE_RUN_CACHE=0`` switches the cache off. Entries are
pickles: like Python's own bytecode cache, the directory must be one only its user writes.
"""

from __future__ import annotations

import copyreg
import gc
import hashlib
import io
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["CACHE_ENV", "MAX_BYTES", "MAX_ENTRIES", "cache_dir", "content_key", "load", "store"]

CACHE_ENV = "GREENWAVE_RUN_CACHE"
#: Entries kept, and their total size at most (hanoi_city's entries are ~8 MB; a corpus net's ~0.1 MB).
MAX_ENTRIES = 64
MAX_BYTES = 256 * 2**20
_OFF = {"0", "off", "false", "no"}
_ROOT = Path(__file__).resolve().parents[1]
#: The code whose output is cached: a change to any of these files changes every key.
_CODE = ("intersections", "simulation", "controller/arrays.py", "controller/backend.py")
_LOCK = threading.Lock()
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime ns) -> content SHA-256, this process
_CODE_DIGEST: list[str] = []


def cache_dir() -> Path | None:
    """The cache directory, or None when ``GREENWAVE_RUN_CACHE`` switches the cache off."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in _OFF:
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "greenwave" / "runs"


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's content (remembered in this process while its size and mtime hold)."""
    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        hit = _DIGESTS.get(memo)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _LOCK:
        _DIGESTS[memo] = digest
    return digest


def _code_digest() -> str:
    """SHA-256 over the deriving code's source files and the versions of what it builds on."""
    with _LOCK:
        if _CODE_DIGEST:
            return _CODE_DIGEST[0]
    import networkx
    import numpy
    import sumolib

    h = hashlib.sha256()
    for part in (sys.version, getattr(sumolib, "__version__", "?"), numpy.__version__, networkx.__version__):
        h.update(str(part).encode() + b"\0")
    for name in _CODE:
        top = _ROOT / name
        files = sorted(top.rglob("*.py")) if top.is_dir() else [top]
        for f in files:
            h.update(str(f.relative_to(_ROOT)).encode() + b"\0")
            h.update(f.read_bytes())
    digest = h.hexdigest()
    with _LOCK:
        _CODE_DIGEST[:] = [digest]
    return digest


def content_key(kind: str, files: Sequence[str | Path], options: Iterable[Any] = ()) -> str | None:
    """The key of an entry: its kind, the files' paths and content, ``options`` and the code.

    None when the cache is off or a file cannot be read (then nothing is cached).
    """
    if cache_dir() is None:
        return None
    h = hashlib.sha256()
    try:
        h.update(f"{kind}\0{_code_digest()}\0".encode())
        for f in files:
            p = Path(f).resolve()
            h.update(f"{p}\0{_file_digest(p)}\0".encode())
    except OSError:
        return None
    h.update(repr(tuple(options)).encode())
    return h.hexdigest()


def _proxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    """Rebuild a read-only mapping (the model keeps its indices in them; pickle cannot by itself)."""
    return MappingProxyType(items)


class _Pickler(pickle.Pickler):
    """Pickles read-only mappings, and writes the objects of ``shared`` as references to them."""

    def __init__(self, f: io.BytesIO, shared: Sequence[Any]) -> None:
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: lambda m: (_proxy, (dict(m),))}
        self._shared = {id(o): k for k, o in enumerate(shared)}

    def persistent_id(self, obj: Any) -> int | None:
        return self._shared.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, f: io.BytesIO, shared: Sequence[Any]) -> None:
        super().__init__(f)
        self._shared = shared

    def persistent_load(self, pid: Any) -> Any:
        return self._shared[pid]


def load(key: str | None, shared: Sequence[Any] = ()) -> Any | None:
    """The entry under ``key``, or None (no key, no entry, or one that cannot be read).

    ``shared``: the objects :func:`store` was given as ``shared``, in the same order; the entry
    refers to them instead of holding copies (a run's detectors share the model's road graph).
    """
    folder = cache_dir()
    if key is None or folder is None:
        return None
    path = folder / f"{key}.pkl"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    # The cyclic collector, run over and over while unpickling a city's ~10^6 objects, takes
    # several times as long as the unpickling itself; nothing it could free is made here.
    enabled = gc.isenabled()
    gc.disable()
    try:
        value = _Unpickler(io.BytesIO(data), shared).load()
    except Exception:  # any unreadable entry is a miss: rebuilt and replaced
        path.unlink(missing_ok=True)
        return None
    finally:
        if enabled:
            gc.enable()
    try:
        os.utime(path)  # recently used: kept longest
    except OSError:
        pass
    return value


def store(key: str | None, value: Any, shared: Sequence[Any] = ()) -> None:
    """Keep ``value`` under ``key`` (nothing when the key is None or the directory is not writable)."""
    folder = cache_dir()
    if key is None or folder is None:
        return
    buf = io.BytesIO()
    try:
        _Pickler(buf, shared).dump(value)
    except (pickle.PicklingError, TypeError, AttributeError):
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, folder / f"{key}.pkl")
        _prune(folder)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    """Remove the least recently used entries beyond :data:`MAX_ENTRIES` or :data:`MAX_BYTES` (the newest stays)."""
    entries = []
    for p in folder.glob("*.pkl"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime_ns, st.st_size, p))
    entries.sort(reverse=True)
    total = 0
    for k, (_t, size, p) in enumerate(entries):
        total += size
        if k and (k >= MAX_ENTRIES or total > MAX_BYTES):
            p.unlink(missing_ok=True)
