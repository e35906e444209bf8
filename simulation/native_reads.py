"""Many SUMO objects read by id in one compiled loop over libsumo's C++ API, for a city's tick.

libsumo answers one object per Python call, and its subscriptions return one Python dict per
object: on a city (hanoi_city's 5,176 meso loops, its 4,140 lane-area zones in micro) the
Python side of those calls was the largest part of greenwave's own work in a tick. This module
calls the C++ function each SWIG getter wraps, ``int`` or ``double libsumo::<Domain>::<getter>
(const std::string& id)``, from a compiled loop over an array of prepared ``std::string``
values: a tick pays SUMO's own lookups and nothing per object in Python, and gets the same
numbers (measured in docs/results/city.md).

It relies on what libsumo's Linux wheels are: the C++ API exported from ``_libsumo.so`` with
GCC's name mangling, and libstdc++'s C++11 ``std::string`` (a pointer to the characters, a
size, then a 16-byte buffer that holds short strings in place or the capacity of longer ones).
:func:`native_getter` returns None whenever that cannot be confirmed (another platform or
standard library, a build without the symbol) and the caller keeps the SWIG getter; the ids are
the ones SUMO has loaded, read only while the simulation runs (the C++ function throws for an
unknown id, which a compiled loop cannot catch). :class:`CheckedReads` compares the compiled
reads with the SWIG getter's until one with a value other than zero agrees, and keeps to the
getter for good on any difference.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]  # llvmlite ships no type information
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["CheckedReads", "NativeGetter", "native_getter"]

log = logging.getLogger("greenwave.simulation")

#: libstdc++'s C++11 std::string: char* data, size_t size, then a 16-byte buffer (or the capacity).
_STRING_BYTES = 32
_BUFFER_AT = 16
_SHORT_MAX = 15  # longest string held in the buffer (plus its terminating NUL)
_STRING_T = "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
_COMPARE = "_ZNKSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE7compareERKS4_"
_CLASSES = {"inductionloop": "InductionLoop", "lanearea": "LaneArea"}
#: Fewest ids a :class:`CheckedReads` reads compiled. Below it the getter's Python overhead is well
#: under a millisecond a tick (about 1 us an id), so nothing is gained for the one risk the compiled
#: path carries and the getter does not: a C++ exception inside it ends the process instead of
#: raising. Cities (thousands of loops and zones) take the compiled path; a junction or a district
#: keeps the getter.
NATIVE_MIN_IDS = 1000
#: ``GREENWAVE_NATIVE_READS=0`` keeps every read on libsumo's getter (a field switch, should a
#: libsumo build ever disagree in a way the start-up checks cannot see).
NATIVE_ENV = "GREENWAVE_NATIVE_READS"


def _mangled(domain: str, getter: str) -> str:
    """GCC's name for ``libsumo::<Domain>::<getter>(const std::string&)`` (the return type is not in it)."""
    cls = _CLASSES[domain]
    return f"_ZN7libsumo{len(cls)}{cls}{len(getter)}{getter}ERK{_STRING_T}"


def _caller(result: Any, llvm_result: Callable[[], Any]) -> Any:
    """An intrinsic ``((result (*)(void*)) fn_addr)(arg_addr)``: a call through a function's address."""

    @intrinsic
    def call(typingctx: Any, fn_addr: Any, arg_addr: Any) -> Any:
        sig = result(types.intp, types.intp)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            ptr = ir.IntType(8).as_pointer()
            fn = builder.inttoptr(args[0], ir.FunctionType(llvm_result(), [ptr]).as_pointer())
            return builder.call(fn, [builder.inttoptr(args[1], ptr)])

        return sig, codegen

    return call


_call_int = _caller(types.int32, lambda: ir.IntType(32))
_call_double = _caller(types.float64, ir.DoubleType)


@njit(cache=True)
def _read_ints(fn_addr, base, stride, out):
    for k in range(out.size):
        out[k] = _call_int(fn_addr, base + stride * k)


@njit(cache=True)
def _read_doubles(fn_addr, base, stride, out):
    for k in range(out.size):
        out[k] = _call_double(fn_addr, base + stride * k)


def _strings(ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``std::string`` values of ``ids`` side by side (32 bytes each), and the characters of those too
    long for the in-place buffer (the values point into both arrays: keep them alive together)."""
    n = len(ids)
    encoded = [sid.encode("utf-8") for sid in ids]
    buf = np.zeros((max(n, 1), _STRING_BYTES // 8), np.uint64)
    chars = np.zeros(max(1, sum(len(b) + 1 for b in encoded if len(b) > _SHORT_MAX)), np.uint8)
    raw = buf.view(np.uint8)
    base, at = buf.ctypes.data, 0
    for k, b in enumerate(encoded):
        buf[k, 1] = len(b)
        if len(b) <= _SHORT_MAX:
            buf[k, 0] = base + _STRING_BYTES * k + _BUFFER_AT
            raw[k, _BUFFER_AT : _BUFFER_AT + len(b)] = np.frombuffer(b, np.uint8)
        else:
            buf[k, 0] = chars.ctypes.data + at
            buf[k, 2] = len(b)  # the capacity, where a long string keeps it
            chars[at : at + len(b)] = np.frombuffer(b, np.uint8)
            at += len(b) + 1
    return buf, chars


@functools.cache
def _layout_agrees() -> bool:
    """libstdc++'s own ``std::string::compare`` reads our values, short and long, as the strings they hold."""
    name = ctypes.util.find_library("stdc++")
    try:
        compare = ctypes.CDLL(name or "libstdc++.so.6")[_COMPARE]
    except (OSError, AttributeError):
        return False
    compare.restype, compare.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
    words = ["gw_a", "gw_b", "gw_a", "gw_a_long_enough_0", "gw_a_long_enough_1", "gw_a_long_enough_0"]
    probe, _chars = _strings(words)
    at = [probe.ctypes.data + _STRING_BYTES * k for k in range(len(words))]
    return (
        all(
            compare(at[i], at[i + 2]) == 0 and compare(at[i], at[i + 1]) < 0 < compare(at[i + 1], at[i]) for i in (0, 3)
        )
        and compare(at[0], at[3]) < 0
    )


class NativeGetter:
    """One libsumo getter (an int or a double) over a fixed list of ids: :meth:`read` fills a float array."""

    def __init__(self, address: int, ids: Sequence[str], returns: type) -> None:
        self._address = address
        self._strings, self._chars = _strings(ids)  # kept alive: the values point into them
        self._kernel = _read_doubles if returns is float else _read_ints
        self.n = len(ids)

    def read(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every id's value now (float64, one compiled pass); only while the simulation runs."""
        out = np.empty(self.n) if out is None else out
        if self.n:
            self._kernel(self._address, self._strings.ctypes.data, _STRING_BYTES, out)
        return out


def native_getter(
    module: Any, domain: str, getter: str, ids: Sequence[str], returns: type = int
) -> NativeGetter | None:
    """A compiled reader of ``<domain>.<getter>`` (returning ``int`` or ``float``) over ``ids`` in this
    process's libsumo, or None where it cannot be confirmed to be safe (see the module docstring)."""
    raw = getattr(module, "_libsumo", None)
    path = getattr(raw, "__file__", None)
    if path is None or domain not in _CLASSES or returns not in (int, float) or not _layout_agrees():
        return None
    try:
        fn = ctypes.CDLL(path)[_mangled(domain, getter)]
    except (OSError, AttributeError):
        return None
    address = ctypes.cast(fn, ctypes.c_void_p).value
    return None if address is None else NativeGetter(int(address), ids, returns)


class CheckedReads:
    """Every id's value each tick: compiled where :func:`native_getter` allows, else libsumo's getter.

    The compiled reads are compared with the getter's on up to ``checks`` reads, until one
    with a value other than zero agrees (the first ticks of a run count nothing); on any
    difference the getter takes over for good, with one warning line, and its values are
    the ones returned. Fewer than ``min_ids`` ids (:data:`NATIVE_MIN_IDS`), or
    ``GREENWAVE_NATIVE_READS=0`` in the environment, keep the getter from the start.
    """

    def __init__(self, module: Any, domain: str, getter: str, ids: Sequence[str], swig: Callable[[str], Any],
                 *, returns: type = int, checks: int = 600, min_ids: int = NATIVE_MIN_IDS) -> None:  # fmt: skip
        self.ids = tuple(ids)
        self._swig = swig
        wanted = bool(self.ids) and len(self.ids) >= min_ids and os.environ.get(NATIVE_ENV, "1") != "0"
        self.native = native_getter(module, domain, getter, self.ids, returns) if wanted else None
        self._checks = checks if self.native is not None else 0
        self._what = f"{domain}.{getter}"

    def _by_getter(self) -> np.ndarray:
        return np.fromiter(map(self._swig, self.ids), float, len(self.ids))

    def read(self) -> np.ndarray:
        if self.native is None:
            return self._by_getter()
        out = self.native.read()
        if self._checks:
            ref = self._by_getter()
            if not np.array_equal(ref, out):
                log.warning("compiled reads of %s differ from libsumo's getter; reading through the getter", self._what)
                self.native, self._checks = None, 0
                return ref
            self._checks = 0 if ref.any() else self._checks - 1
        return out
