"""Many SUMO objects read by id in one compiled loop over libsumo's C++ API, for a city's tick.

libsumo answers one object per Python call: reading the interval count of hanoi_city's
5,176 meso loops through its SWIG getters costs ~1-1.8 ms a tick (one call, one string
conversion and one detector lookup per loop), the largest part of greenwave's own work in a
meso tick. libsumo has no getter for many objects at once, and its subscriptions return one
Python dict per object (slower still). This module calls the C++ function the SWIG getter
wraps, ``int libsumo::<Domain>::<getter>(const std::string& id)``, from a compiled loop over
an array of prepared ``std::string`` values, so a tick pays SUMO's own lookups and nothing per
object in Python (~0.45 ms for those loops, the same integers).

It relies on what libsumo's Linux wheels are: the C++ API exported from ``_libsumo.so`` with
GCC's name mangling, and libstdc++'s C++11 ``std::string`` (a pointer, a size and a 16-byte
buffer that holds short strings in place). :func:`native_int_getter` returns None whenever that
cannot be confirmed (another platform or standard library, a build without the symbol, an id
of 16 bytes or more) and the caller keeps the SWIG getter; the ids are the ones SUMO has
loaded, read only while the simulation runs (the C++ function throws for an unknown id, which
a compiled loop cannot catch). The first read of each reader is checked against the SWIG
getter by the caller (:meth:`simulation.meso.MesoReader.bind`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence
from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]  # llvmlite ships no type information
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["NativeIntGetter", "native_int_getter"]

#: libstdc++'s C++11 std::string: char* data, size_t size, then a 16-byte buffer (or the capacity).
_STRING_BYTES = 32
_BUFFER_AT = 16
_SHORT_MAX = 15  # longest string held in the buffer (plus its terminating NUL)
_STRING_T = "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
_COMPARE = "_ZNKSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE7compareERKS4_"


def _mangled(domain: str, getter: str) -> str:
    """GCC's name for ``int libsumo::<Domain>::<getter>(const std::string&)``."""
    cls = {"inductionloop": "InductionLoop", "lanearea": "LaneArea"}[domain]
    return f"_ZN7libsumo{len(cls)}{cls}{len(getter)}{getter}ERK{_STRING_T}"


@intrinsic
def _call_int(typingctx: Any, fn_addr: Any, arg_addr: Any) -> Any:
    """``((int (*)(void*)) fn_addr)(arg_addr)``: a call through a function's address, compiled."""
    sig = types.int32(types.intp, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [ptr])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(fn, [builder.inttoptr(args[1], ptr)])

    return sig, codegen


@njit(cache=True)
def _read_all(fn_addr, base, stride, out):
    for k in range(out.size):
        out[k] = _call_int(fn_addr, base + stride * k)


def _strings(ids: Sequence[str]) -> np.ndarray | None:
    """``std::string`` values of ``ids``, side by side (32 bytes each, each pointing into itself);
    None when an id does not fit the in-place buffer."""
    n = len(ids)
    buf = np.zeros((max(n, 1), _STRING_BYTES // 8), np.uint64)
    raw = buf.view(np.uint8)
    base = buf.ctypes.data
    for k, sid in enumerate(ids):
        b = sid.encode("utf-8")
        if len(b) > _SHORT_MAX:
            return None
        buf[k, 0] = base + _STRING_BYTES * k + _BUFFER_AT
        buf[k, 1] = len(b)
        raw[k, _BUFFER_AT : _BUFFER_AT + len(b)] = np.frombuffer(b, np.uint8)
    return buf


def _layout_agrees() -> bool:
    """libstdc++'s own ``std::string::compare`` reads our values as the strings they hold."""
    name = ctypes.util.find_library("stdc++")
    try:
        lib = ctypes.CDLL(name or "libstdc++.so.6")
        compare = lib[_COMPARE]
    except (OSError, AttributeError):
        return False
    compare.restype, compare.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
    probe = _strings(["gw_a", "gw_b", "gw_a"])
    if probe is None:
        return False
    at = [probe.ctypes.data + _STRING_BYTES * k for k in range(3)]
    return compare(at[0], at[2]) == 0 and compare(at[0], at[1]) < 0 < compare(at[1], at[0])


class NativeIntGetter:
    """One libsumo integer getter over a fixed list of ids: :meth:`read` fills a float array."""

    def __init__(self, address: int, ids: Sequence[str], strings: np.ndarray) -> None:
        self._address = address
        self._strings = strings  # kept alive: the values point into this array
        self.n = len(ids)

    def read(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every id's value now (float64, one compiled pass); only while the simulation runs."""
        out = np.empty(self.n) if out is None else out
        _read_all(self._address, self._strings.ctypes.data, _STRING_BYTES, out)
        return out


def native_int_getter(module: Any, domain: str, getter: str, ids: Sequence[str]) -> NativeIntGetter | None:
    """A compiled reader of ``<domain>.<getter>`` over ``ids`` in this process's libsumo, or None
    where it cannot be confirmed to be safe (see the module docstring)."""
    raw = getattr(module, "_libsumo", None)
    path = getattr(raw, "__file__", None)
    if path is None or not _layout_agrees():
        return None
    try:
        fn = ctypes.CDLL(path)[_mangled(domain, getter)]
    except (OSError, AttributeError, KeyError):
        return None
    strings = _strings(ids)
    if strings is None:
        return None
    address = ctypes.cast(fn, ctypes.c_void_p).value
    return None if address is None else NativeIntGetter(int(address), ids, strings)
