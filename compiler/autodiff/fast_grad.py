"""Faster drop-ins for the integer gradient kernels of :mod:`compiler.ref.grad_ops` that
dominate a batch-1 training step in numpy: same inputs, same int32 results, bit for bit.

Why the results are identical: the reference accumulates ``int16 x int8`` (transposed
convolution) and ``int8 x (int8 - zero)`` (weight gradient) products in int64, with
numpy's integer matmul (no BLAS). Here the same products are summed in float64 through
BLAS: every product and every partial sum is an integer of magnitude below ``2**53``
(checked against the worst case of the operand types and the number of terms, else the
reference itself runs), so each float64 addition is exact whatever the summation order,
and the conversion back to int64 and then int32 (wrapping as the reference's ``astype``
does) gives the reference's values. A depthwise transposed convolution gathers its taps
as one correlation with the flipped kernel instead of scattering them, in float32 when the
gradient's own largest magnitude keeps every sum below ``2**24``.

The small per-step computations (the clamp mask, the prescale, the gradient's range and
requantization, the bias update, the depthwise transposed convolution and the 1x1 one where
it beats BLAS) run in C
(:mod:`compiler.autodiff.native_steps`: one pass instead of several numpy calls on small
tensors), numpy when the C library is unavailable.

The reference stays the oracle: ``tests/test_train_fastpaths.py`` and
``tests/test_native_steps.py`` compare every function here with its
:mod:`compiler.ref.grad_ops` twin, and whole training runs with either set of kernels
(:func:`compiler.autodiff.trainer.reference_kernels`).
"""
from __future__ import annotations

import numpy as np

from compiler.autodiff import native_steps as nat
from compiler.ir.qmath import hw
from compiler.ref import grad_ops as rgo

_EXACT = float(1 << 53)


def _max_abs(dtype) -> int:
    info = np.iinfo(dtype)
    return max(-int(info.min), int(info.max))


def _exact(a: np.ndarray, b_bound: int, terms: int) -> bool:
    """float64 sums of ``terms`` products of an ``a`` element and a value of magnitude at
    most ``b_bound`` are exact."""
    return _max_abs(a.dtype) * b_bound * max(terms, 1) < _EXACT


def _to_int32(acc: np.ndarray) -> np.ndarray:
    return acc.astype(np.int64).astype(np.int32)


def conv_grad_input(t, w, in_hw: tuple[int, int], stride, pad, groups: int) -> np.ndarray:
    """:func:`compiler.ref.grad_ops.conv_grad_input`, bit for bit."""
    t = np.asarray(t)
    w = np.asarray(w)
    n, ho, wo, co = t.shape
    _, kh, kw, cig = w.shape
    ci = cig * groups
    if t.dtype.kind not in "iu" or w.dtype.kind not in "iu" or not _exact(
            t, _max_abs(w.dtype), co * kh * kw):
        return rgo.conv_grad_input(t, w, in_hw, stride, pad, groups)
    depthwise = groups == ci and cig == 1 and co == ci
    if depthwise:
        gx = nat.dw_grad_input(t, w, in_hw, hw(stride), hw(pad))
        return gx if gx is not None else _depthwise_grad_input(t, w, in_hw, stride, pad)
    if groups != 1:
        return rgo.conv_grad_input(t, w, in_hw, stride, pad, groups)
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    h, wd = in_hw
    if kh == 1 and kw == 1 and ph == 0 and pw == 0 and (ci >= 64 or co <= 24):
        # the C loop (a vector over ci per nonzero gradient) beats a float64 GEMM there; for
        # fewer input and more output channels BLAS is faster (measured on mcunet-5fps's shapes)
        gx = nat.pw_grad_input(t, w, in_hw, (sh, sw))
        if gx is not None:
            return gx
    # one GEMM: every tap's contribution of every output pixel, then scattered (col2im)
    cols = (t.reshape(n * ho * wo, co).astype(np.float64)
            @ w.reshape(co, kh * kw * ci).astype(np.float64)).reshape(n, ho, wo, kh, kw, ci)
    if kh == 1 and kw == 1 and ph == 0 and pw == 0:
        gx = np.zeros((n, h, wd, ci))
        ys, xs = min(ho, -(-h // sh)), min(wo, -(-wd // sw))
        gx[:, ::sh, ::sw, :][:, :ys, :xs] = cols[:, :ys, :xs, 0, 0, :]
        return _to_int32(gx)
    hp = max(h + 2 * ph + sh, sh * (ho - 1) + kh)
    wp = max(wd + 2 * pw + sw, sw * (wo - 1) + kw)
    gx = np.zeros((n, hp, wp, ci))
    for ky in range(kh):
        for kx in range(kw):
            gx[:, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw, :] += cols[:, :, :, ky, kx, :]
    return _to_int32(gx[:, ph:ph + h, pw:pw + wd, :])


def _depthwise_grad_input(t, w, in_hw, stride, pad) -> np.ndarray:
    """gx[i, j] = sum over taps of the stride-dilated t at (ph + i - ky, pw + j - kx) times
    w[ky, kx]: a correlation of the zero-padded, dilated t with the flipped kernel, tap by
    tap. In float32 when the sum of kh * kw products of t's largest magnitude and 128
    stays below 2**24 (every product and partial sum is then an exact float32 integer),
    else in float64 (the bound of :func:`_exact`, checked by the caller)."""
    n, ho, wo, c = t.shape
    _, kh, kw, _ = w.shape
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    h, wd = in_hw
    tmax = int(np.abs(t).max()) if t.size else 0
    ft = np.float32 if tmax * _max_abs(w.dtype) * kh * kw < (1 << 24) else np.float64
    # tp[m] = dilated t[m - (kh - 1)]; gx[i] = sum_a tp[ph + i + a] * w[kh - 1 - a]
    tp = np.zeros((n, max(ph + h + kh - 1, kh - 1 + sh * (ho - 1) + 1),
                   max(pw + wd + kw - 1, kw - 1 + sw * (wo - 1) + 1), c), ft)
    tp[:, kh - 1:kh - 1 + sh * (ho - 1) + 1:sh, kw - 1:kw - 1 + sw * (wo - 1) + 1:sw, :] = t
    tp = tp[:, ph:ph + h + kh - 1, pw:pw + wd + kw - 1, :]
    wf = w[:, ::-1, ::-1, 0].transpose(1, 2, 0).astype(ft)   # [kh, kw, c]
    gx = np.zeros((n, h, wd, c), ft)
    tmp = np.empty_like(gx)
    for a in range(kh):
        for b in range(kw):
            np.multiply(tp[:, a:a + h, b:b + wd, :], wf[a, b], out=tmp)
            gx += tmp
    return _to_int32(gx)


def conv_grad_weight_acc(gy_q, x_q, x_zero: int, kernel: tuple[int, int], stride, pad,
                         groups: int, k: int | None = None) -> np.ndarray:
    """:func:`compiler.ref.grad_ops.conv_grad_weight_acc`, bit for bit (dense convolutions
    through one float64 GEMM per tap; the others run the reference)."""
    gy = np.asarray(gy_q)
    x = np.asarray(x_q)
    n, ho, wo, co = gy.shape
    k = co if k is None else k
    kh, kw = kernel
    if (groups != 1 or gy.dtype.kind not in "iu" or x.dtype.kind not in "iu"
            or not _exact(gy, _max_abs(x.dtype) + abs(int(x_zero)), n * ho * wo)):
        return rgo.conv_grad_weight_acc(gy_q, x_q, x_zero, kernel, stride, pad, groups, k)
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    h, wd = x.shape[1:3]
    ci = x.shape[-1]
    g2 = gy[..., :k].reshape(n * ho * wo, k).astype(np.float64).T
    if kh == 1 and kw == 1 and ph == 0 and pw == 0:
        tap = x[:, ::sh, ::sw, :][:, :ho, :wo, :].reshape(-1, ci).astype(np.float64) - x_zero
        return _to_int32((g2 @ tap).reshape(k, 1, 1, ci))
    xs = x.astype(np.float64) - x_zero
    xs = np.pad(xs, ((0, 0), (ph, max(ph + sh, sh * (ho - 1) + kh - h - ph)),
                     (pw, max(pw + sw, sw * (wo - 1) + kw - wd - pw)), (0, 0)))
    out = np.zeros((k, kh, kw, ci))
    for ky in range(kh):
        for kx in range(kw):
            tap = xs[:, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw, :]
            out[:, ky, kx, :] = g2 @ tap.reshape(-1, ci)
    return _to_int32(out)


def fc_grad_input(t, w) -> np.ndarray:
    """:func:`compiler.ref.grad_ops.fc_grad_input`, bit for bit."""
    t = np.asarray(t)
    w = np.asarray(w)
    if t.dtype.kind not in "iu" or w.dtype.kind not in "iu" or not _exact(
            t, _max_abs(w.dtype), t.shape[-1]):
        return rgo.fc_grad_input(t, w)
    return _to_int32(t.astype(np.float64) @ w.astype(np.float64))


def fc_grad_weight_acc(gy_q, x_q, x_zero: int, k: int | None = None) -> np.ndarray:
    """:func:`compiler.ref.grad_ops.fc_grad_weight_acc`, bit for bit."""
    gy = np.asarray(gy_q)
    x = np.asarray(x_q)
    if (gy.dtype.kind not in "iu" or x.dtype.kind not in "iu"
            or not _exact(gy, _max_abs(x.dtype) + abs(int(x_zero)), gy.shape[0])):
        return rgo.fc_grad_weight_acc(gy_q, x_q, x_zero, k)
    k = gy.shape[1] if k is None else k
    return _to_int32(gy[:, :k].astype(np.float64).T @ (x.astype(np.float64) - x_zero))


# ----------------------------------------------------------------------------- small steps

def mask_grad(q, y_q, act_min: int, act_max: int) -> np.ndarray:
    """:func:`compiler.ref.grad_ops.mask_grad`, bit for bit."""
    out = nat.mask(q, y_q, act_min, act_max)
    return out if out is not None else rgo.mask_grad(q, y_q, act_min, act_max)


def prescale(gy_q, pmult, pshift) -> np.ndarray:
    """:func:`compiler.ref.grad_ops.prescale`, bit for bit."""
    out = nat.prescale(gy_q, pmult, pshift)
    return out if out is not None else rgo.prescale(gy_q, pmult, pshift)


def range_requant_grad(acc, acc_scale: float, bits: int = 8, mode: str = "max"):
    """:func:`compiler.ref.grad_ops.range_requant_grad`, bit for bit."""
    kind, k = rgo._parse_mode(mode)
    out = nat.requant_grad(acc, acc_scale, kind, k, rgo.qmax_of(bits))
    return out if out is not None else rgo.range_requant_grad(acc, acc_scale, bits, mode)


def bias_grad_update(b, gy_q, k: int | None, factors) -> tuple[np.ndarray, np.ndarray]:
    """:func:`compiler.ref.grad_ops.bias_grad_update`, bit for bit."""
    gy = np.asarray(gy_q)
    kk = gy.shape[-1] if k is None and gy.ndim else k
    out = nat.bias_update(b, gy, kk, factors) if kk is not None else None
    return out if out is not None else rgo.bias_grad_update(b, gy_q, k, factors)
