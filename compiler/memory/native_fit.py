"""The arena placer's inner loop (:func:`compiler.memory.schedule._first_fit`) in C.

A memory-model evaluation of a training plan tries about a thousand first-fit
placements of a few hundred buffers; in Python that was nine tenths of the time of a
plan search or a contribution analysis's candidate listing. ``first_fit.c`` (beside
this file) computes the same offsets; it is compiled for the host once per source
content and loaded with ctypes (:class:`compiler.native.Library`). Without a working
compiler the Python placement runs (same offsets, slower) and a one-line note says so. ``TT_NATIVE_FIT=0`` forces the
Python placement.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from compiler import native

SOURCE = Path(__file__).with_name("first_fit.c")
LIB = native.Library(SOURCE, "tt_first_fit", "TT_NATIVE_FIT", "the native arena placer",
                     "placing in Python (the same offsets, slower)")


def _function():
    lib = LIB.load()
    if lib is None:
        return None
    fn = lib.tt_first_fit
    fn.restype = ctypes.c_int64
    vp = ctypes.c_void_p
    fn.argtypes = [ctypes.c_int32] + [vp] * 10 + [ctypes.c_int64, vp]
    return fn


def available() -> bool:
    return _function() is not None


class Units:
    """Placement units (each a list of (name, rel, size, first, last)) flattened once for
    the native placer, to be placed in many orders and with several sets of loose pairs."""

    def __init__(self, units: list):
        self.names, rows, start = [], [], [0]
        for unit in units:
            for name, rel, size, first, last in unit:
                self.names.append(name)
                rows.append((rel, size, first, last))
            start.append(len(self.names))
        n = len(self.names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.cols = (np.array(rows, np.int64).reshape(n, 4).T.copy() if n
                     else np.zeros((4, 0), np.int64))
        self.start = np.array(start, np.int32)
        self.n_units = len(units)
        self._loose: dict = {}
        # the data addresses of the arrays every placement passes (they live as long as self)
        self._fixed = (self.start.ctypes.data,) + tuple(row.ctypes.data for row in self.cols)

    def _pairs(self, loose: dict):
        key = id(loose), len(loose)
        hit = self._loose.get(key)
        if hit is not None and hit[0] is loose:
            return hit[1]
        n = len(self.names)
        src = np.full(n, -1, np.int32)
        dst = np.full(n, -1, np.int32)
        src_lag = np.zeros(n, np.int64)
        dst_lag = np.zeros(n, np.int64)
        for (a, b), lag in loose.items():
            i, j = self.index.get(a), self.index.get(b)
            if i is None or j is None:
                continue
            if dst[i] != -1 or src[j] != -1:   # a buffer in two pairs: the Python code
                raise ValueError("a buffer in two loose pairs")
            dst[i], dst_lag[i] = j, lag
            src[j], src_lag[j] = i, lag
        arrays = (src, src_lag, dst, dst_lag)
        self._loose[key] = (loose, (arrays, tuple(a.ctypes.data for a in arrays)))
        return self._loose[key][1]

    def place(self, perm, loose: dict, align: int) -> tuple[int, np.ndarray] | None:
        """(arena, offsets in flattened order) of the units placed in the order ``perm``
        (unit indices); None when the native placer is unavailable or does not apply."""
        fn = _function()
        if fn is None:
            return None
        try:
            _, pairs = self._pairs(loose)
        except ValueError:
            return None
        order = np.ascontiguousarray(perm, np.int32)
        off = np.zeros(len(self.names), np.int64)
        arena = fn(self.n_units, order.ctypes.data, *self._fixed, *pairs, align, off.ctypes.data)
        if arena < 0:
            return None
        return int(arena), off

    def offsets(self, off: np.ndarray) -> dict[str, int]:
        return dict(zip(self.names, off.tolist()))

