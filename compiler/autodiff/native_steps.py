"""ctypes bindings of ``native_steps.c``: the trainer's small per-step computations in C.

Each function takes numpy arrays, checks that the C twin applies (dtypes, sizes; the C
code assumes what is checked here) and returns its result, or None when the library is
unavailable or the case is not one it handles; the caller then runs numpy. Results are
those of :mod:`compiler.ref` bit for bit (``tests/test_native_steps.py``).
``TT_NATIVE_STEPS=0`` turns the library off.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from compiler import native

LIB = native.Library(Path(__file__).with_name("native_steps.c"), "tt_native_steps",
                     "TT_NATIVE_STEPS", "the trainer's native step library",
                     "training runs numpy alone (the same results, slower)",
                     flags=("-O3", "-fno-math-errno", "-ffp-contract=off"), this_cpu=True)

_I64 = ctypes.c_int64
_INT = ctypes.c_int
_SIGS = {
    "tt_h_rq_tail_f32": (_INT, ["p", "i", "i", "p", "p", "p", "i", "i", "i", "p"]),
    "tt_h_rq_tail_f64": (_INT, ["p", "i", "i", "p", "p", "p", "i", "i", "i", "p"]),
    "tt_h_dw_fwd": (_INT, ["p", "i", "i", "i", "i", "p", "i", "i", "p", "i", "i", "i", "i", "i",
                           "i", "i", "p", "p", "i", "i", "i", "p"]),
    "tt_h_dw_grad_in": (_INT, ["p", "i", "i", "i", "i", "p", "i", "i", "i", "i", "i", "i", "i",
                               "i", "p"]),
    "tt_h_pw_grad_in": (_INT, ["p", "i", "i", "i", "i", "p", "i", "i", "i", "i", "i", "p"]),
    "tt_h_mask_s8": (None, ["p", "p", "i", "i", "i", "p"]),
    "tt_h_prescale_s16": (_INT, ["p", "i", "i", "p", "p", "p"]),
    "tt_h_add_s8": (_INT, ["p", "p"] + ["i"] * 13 + ["p"]),
    "tt_h_requant_grad_s32": (_I64, ["p", "i", "i", "i", "i", "f", "p", "p"]),
    "tt_h_bias_update": (_INT, ["p", "i", "i", "i", "p", "p", "p"]),
}
_FNS: dict = {}


def _fns() -> dict | None:
    if not _FNS:
        lib = LIB.load()
        if lib is None:
            return None
        for name, (res, args) in _SIGS.items():
            f = getattr(lib, name)
            f.restype = res
            f.argtypes = [{"p": ctypes.c_void_p, "i": _I64, "f": ctypes.c_float}[a] for a in args]
            _FNS[name] = f
    return _FNS


def available() -> bool:
    return _fns() is not None


def _c(a: np.ndarray, dtype) -> np.ndarray | None:
    """``a`` as a C-contiguous array of ``dtype`` without changing a value, or None."""
    a = np.asarray(a)
    if a.dtype != dtype:
        return None
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _per_channel(v, c: int) -> np.ndarray | None:
    """A per-channel parameter (one value, or one per channel) as ``c`` contiguous int32s,
    or None (another size, or a value int32 does not hold)."""
    a = np.asarray(v)
    if a.dtype == np.int32 and a.size == c and a.flags.c_contiguous:
        return a
    if a.size not in (1, c) or a.dtype.kind not in "iu":
        return None
    a64 = a.astype(np.int64).reshape(-1)
    if a64.size and (a64.min() < -(1 << 31) or a64.max() >= 1 << 31):
        return None
    return np.ascontiguousarray(np.broadcast_to(a64.astype(np.int32), (c,)))


def _params(c: int, *vs) -> list | None:
    out = [_per_channel(v, c) for v in vs]
    return None if any(a is None for a in out) else out


def rq_tail(acc: np.ndarray, bias, mult, shift, y_zero: int, lo: int, hi: int):
    """``clamp(requantize(rint(acc) + bias, mult, shift) + y_zero, lo, hi)`` as int8, per
    channel along the last axis of the float accumulators ``acc`` (exact integers)."""
    f = _fns()
    if f is None or acc.dtype not in (np.float32, np.float64) or not acc.flags.c_contiguous:
        return None
    c = acc.shape[-1]
    ps = _params(c, bias, mult, shift)
    if ps is None:
        return None
    out = np.empty(acc.shape, np.int8)
    fn = f["tt_h_rq_tail_f32" if acc.dtype == np.float32 else "tt_h_rq_tail_f64"]
    if fn(acc.ctypes.data, acc.size // max(c, 1), c, *[a.ctypes.data for a in ps], int(y_zero),
          int(lo), int(hi), out.ctypes.data):
        return None
    return out


def dw_conv(x, w, bias, x_zero: int, stride: tuple, pad: tuple, out_hw: tuple, mult, shift,
            y_zero: int, lo: int, hi: int):
    """A depthwise conv2d (w [C, kh, kw, 1]) of int8 ``x`` [N, H, W, C] -> int8."""
    f = _fns()
    x, w = _c(x, np.int8), _c(w, np.int8)
    if f is None or x is None or w is None or x.ndim != 4:
        return None
    n, h, wd, c = x.shape
    _, kh, kw, _ = w.shape
    ps = _params(c, bias, mult, shift)
    if ps is None or kh * kw * 255 * 128 >= 1 << 31:
        return None
    b, m, s = ps
    ho, wo = out_hw
    out = np.empty((n, ho, wo, c), np.int8)
    if f["tt_h_dw_fwd"](x.ctypes.data, n, h, wd, c, w.ctypes.data, kh, kw, b.ctypes.data,
                        int(x_zero), stride[0], stride[1], pad[0], pad[1], ho, wo, m.ctypes.data,
                        s.ctypes.data, int(y_zero), int(lo), int(hi), out.ctypes.data):
        return None
    return out


def dw_grad_input(t, w, in_hw: tuple, stride: tuple, pad: tuple):
    """Depthwise transposed convolution: int16 ``t`` [N, Ho, Wo, C], int8 ``w`` [C, kh,
    kw, 1] -> int32 [N, H, W, C]."""
    f = _fns()
    t, w = _c(t, np.int16), _c(w, np.int8)
    if f is None or t is None or w is None:
        return None
    n, ho, wo, c = t.shape
    _, kh, kw, _ = w.shape
    h, wd = in_hw
    gx = np.empty((n, h, wd, c), np.int32)
    if f["tt_h_dw_grad_in"](t.ctypes.data, n, ho, wo, c, w.ctypes.data, kh, kw, stride[0],
                            stride[1], pad[0], pad[1], h, wd, gx.ctypes.data):
        return None
    return gx


def pw_grad_input(t, w, in_hw: tuple, stride: tuple):
    """Transposed 1x1 convolution without padding: int16 ``t`` [N, Ho, Wo, Co], int8 ``w``
    [Co, 1, 1, Ci] -> int32 [N, H, W, Ci]."""
    f = _fns()
    t, w = _c(t, np.int16), _c(w, np.int8)
    if f is None or t is None or w is None or t.ndim != 4:
        return None
    n, ho, wo, co = t.shape
    ci = w.shape[-1]
    h, wd = in_hw
    gx = np.empty((n, h, wd, ci), np.int32)
    if f["tt_h_pw_grad_in"](t.ctypes.data, n, ho, wo, co, w.ctypes.data, ci, stride[0], stride[1],
                            h, wd, gx.ctypes.data):
        return None
    return gx


def mask(q, y, lo: int, hi: int):
    """``q`` where ``lo < y < hi``, else 0 (int8, ``q``'s shape)."""
    f = _fns()
    q, y = _c(q, np.int8), _c(y, np.int8)
    if f is None or q is None or y is None or q.size != y.size:
        return None
    out = np.empty(q.shape, np.int8)
    f["tt_h_mask_s8"](q.ctypes.data, y.ctypes.data, q.size, int(lo), int(hi), out.ctypes.data)
    return out


def prescale(q, mult, shift):
    """``int16(requantize(q, mult, shift))`` per channel along the last axis of int8 ``q``."""
    f = _fns()
    q = _c(q, np.int8)
    if f is None or q is None or q.ndim == 0:
        return None
    c = q.shape[-1]
    ps = _params(c, mult, shift)
    if ps is None:
        return None
    out = np.empty(q.shape, np.int16)
    if f["tt_h_prescale_s16"](q.ctypes.data, q.size // max(c, 1), c, ps[0].ctypes.data,
                              ps[1].ctypes.data, out.ctypes.data):
        return None
    return out


def add(x1, x2, p, lo: int, hi: int, left_shift: int):
    """:func:`compiler.ref.ops.add` of two int8 tensors of one shape (``p``: AddParams)."""
    f = _fns()
    x1, x2 = _c(x1, np.int8), _c(x2, np.int8)
    if f is None or x1 is None or x2 is None or x1.shape != x2.shape:
        return None
    vals = [int(v) for v in (p.z1, p.z2, left_shift, p.m1, p.s1, p.m2, p.s2, p.mo, p.so, p.zo)]
    if any(not -(1 << 31) <= v < 1 << 31 for v in vals):
        return None
    out = np.empty(x1.shape, np.int8)
    if f["tt_h_add_s8"](x1.ctypes.data, x2.ctypes.data, x1.size, *vals, int(lo), int(hi), out.ctypes.data):
        return None
    return out


_KINDS = {"shift": 0, "shift3": 1, "mean": 2}


def requant_grad(a, acc_scale, kind: str, k: int, qmax: int):
    """(q, scale, r): the range ``r`` of int32 ``a`` by :func:`compiler.ref.grad_ops.grad_range_int`'s
    rule (``kind``, ``k`` from its mode) and :func:`compiler.ref.grad_ops.requant_grad` with it."""
    f = _fns()
    a = _c(a, np.int32)
    if f is None or a is None or not 0 <= qmax <= 127 or not 0 <= k <= 64:
        return None
    out = np.empty(a.shape, np.int8)
    sc = ctypes.c_float()
    r = f["tt_h_requant_grad_s32"](a.ctypes.data, a.size, _KINDS[kind], k, qmax,
                                   float(np.float32(acc_scale)), out.ctypes.data, ctypes.byref(sc))
    if r < 0:
        return None
    return out, np.float32(sc.value), int(r)


def bias_update(b, gy, k: int, factors):
    """(new bias, gb): ``gb = int32(sum of gy[..., :k] over all but the last axis)`` and
    ``b[:k] = sat_int32(b[:k] - round_nearest(gb * f))``; None also when a factor is one
    the reference refuses (it then raises its own error)."""
    f = _fns()
    gy = _c(gy, np.int8)
    fac = np.ascontiguousarray(np.asarray(factors, np.float32).reshape(-1))
    b = np.array(b, dtype=np.int32, copy=True)
    if f is None or gy is None or gy.ndim == 0 or fac.size != k or not 0 <= k <= min(b.size, gy.shape[-1]):
        return None
    c = gy.shape[-1]
    gb = np.empty(k, np.int32)
    if f["tt_h_bias_update"](gy.ctypes.data, gy.size // max(c, 1), c, k, fac.ctypes.data,
                             b.ctypes.data, gb.ctypes.data):
        return None
    return b, gb
