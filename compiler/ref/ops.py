"""Reference int8 operators (numpy), the oracle for every C forward kernel.

Layouts: activations NHWC int8 (a leading batch axis N is always present), weights OHWI
int8 (depthwise: O = channels, I = 1), bias int32, per-output-channel requantization
(``mult``, ``shift`` from :func:`compiler.ir.qmath.quantize_multiplier`).

Semantics (the C kernels in ``runtime_c/src`` follow them exactly):

conv2d / depthwise / fully connected, per output channel c::

    acc = bias[c] + sum((x - x_zero) * w)          # padded taps contribute 0
    y   = clamp(requant(acc, mult[c], shift[c]) + y_zero, act_min, act_max)

add (TFLite scheme, left shift 20, single-rounding requant)::

    a = requant((x1 - z1) << 20, m1, s1);  b = requant((x2 - z2) << 20, m2, s2)
    y = clamp(requant(a + b, mo, so) + zo, act_min, act_max)

concat (along the last axis; TFLite semantics: each input is requantized to the output's
scale and zero point, ``m_i, s_i`` the Q31 multiplier of ``x_scale_i / y_scale``; equal
parameters give ``m = 2**30, s = 1``, an exact copy)::

    y[..., c_i:c_i + C_i] = clamp(requant(x_i - z_i, m_i, s_i) + y_zero, -128, 127)

mul (TFLite MUL; b may be one value per channel, broadcast over H x W)::

    y = clamp(requant((a - za) * (b - zb), m, s) + y_zero, act_min, act_max)

sigmoid / hardsigmoid / hardswish: ``y = table[x + 128]``, the table built at compile
time (:func:`compiler.ir.ops.lut_table`), so the C kernel is the same lookup.

global average pool: ``y = div_round_away(sum(x over H, W), H*W)`` (raw int8 values;
input and output share scale and zero point). With parameters of its own (a QDQ model;
``mult``, ``shift`` the Q31 multiplier of ``x_scale / (H*W * y_scale)``) one
requantization of the integer sum::

    y = clamp(requant(sum(x - x_zero), mult, shift) + y_zero, -128, 127)

average pool (``avg_pool``, windows as max pool): the same two forms per window, with
``count`` its divisor (``kh*kw``, or with ``count_include_pad`` False its taps inside the
map): ``y = div_round_away(sum(x), count)`` where a padded tap is ``x_zero`` (a real
zero), or ``clamp(requant(sum(x - x_zero), mult[i], shift[i]) + y_zero)`` with ``i`` the
index of ``count`` in :func:`compiler.ir.ops.avg_pool_divisors` (padded taps add 0).

max pool: the largest raw int8 value of each window (input and output share scale and
zero point, so it is the real maximum); padded taps never win.

:data:`KERNELS` maps each op to its node adapter (graph, node, input arrays -> output):
the executor and the reference trainer run nodes through it.

Integer sums are computed with float BLAS where that is faster: float32 when every
partial sum provably stays below 2**24 in magnitude, float64 (exact below 2**53)
otherwise, so the result is always exact.
"""
from __future__ import annotations

import numpy as np

from compiler.ir.graph import Graph, Node
from compiler.ir.ops import window_count, window_max, window_sum
from compiler.ir.qmath import (  # noqa: F401  (AddParams, out_size: re-exported)
    ADD_LEFT_SHIFT,
    AddParams,
    clamp_s8,
    div_round_away,
    hw,
    out_size,
    requantize,
)


def _pad(x: np.ndarray, pad, value: int, pad_end=None) -> np.ndarray:
    ph, pw = hw(pad)
    pb, pr = hw(pad if pad_end is None else pad_end)
    if ph == 0 and pw == 0 and pb == 0 and pr == 0:
        return x
    return np.pad(x, ((0, 0), (ph, pb), (pw, pr), (0, 0)), constant_values=value)


# float32 holds every integer of magnitude <= 2**24 exactly: a dot product of K terms
# (x - x_zero) * w, |x - x_zero| <= 255 and |w| <= 128, never leaves that range when
# K * 255 * 128 <= 2**24, whatever the summation order (BLAS blocking, FMA). Larger K
# falls back to float64 (exact below 2**53).
_F32_MAX_TERMS = (1 << 24) // (255 * 128)


def _acc_float(terms: int):
    return np.float32 if terms <= _F32_MAX_TERMS else np.float64


def conv_acc(x, w, bias, x_zero: int, stride, pad, groups: int, pad_end=None) -> np.ndarray:
    """int32-valued accumulators [N, Ho, Wo, Co] (returned as int64); ``stride``, ``pad``:
    an int or per axis ``(h, w)``; ``pad_end``: the trailing (bottom, right) pads when
    they differ from ``pad`` (None: symmetric)."""
    acc = conv_sums(x, w, x_zero, stride, pad, groups, pad_end)
    # the float sums are exact integers: the cast is exact (np.rint kept as a guard)
    acc = np.rint(acc).astype(np.int64)
    acc += np.asarray(bias, dtype=np.int64)
    return acc


def conv_sums(x, w, x_zero: int, stride, pad, groups: int, pad_end=None) -> np.ndarray:
    """:func:`conv_acc` without the bias, as float32 or float64 (exact integers, see
    ``_F32_MAX_TERMS``)."""
    x = np.asarray(x)
    w = np.asarray(w)
    n, h, wd, ci = x.shape
    co, kh, kw, cig = w.shape
    if ci != cig * groups or co % groups:
        raise ValueError(f"conv shapes: x {x.shape}, w {w.shape}, groups {groups}")
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    pb, pr = hw(pad if pad_end is None else pad_end)
    ho, wo = out_size(h, kh, sh, ph, pb), out_size(wd, kw, sw, pw, pr)
    ft = _acc_float(kh * kw * cig)
    xs = x.astype(ft)
    xs -= x_zero
    xs = _pad(xs, pad, 0, pad_end)
    wf = w.astype(ft)
    if groups == ci and co == ci and cig == 1:  # depthwise
        acc = np.zeros((n, ho, wo, co), dtype=ft)
        tmp = np.empty_like(acc)
        for i in range(kh):
            for j in range(kw):
                tap = xs[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
                np.multiply(tap, wf[:, i, j, 0], out=tmp)
                acc += tmp
    elif kh == 1 and kw == 1 and groups == 1:  # pointwise: no im2col needed
        acc = xs[:, ::sh, ::sw, :][:, :ho, :wo, :].reshape(n * ho * wo, ci) @ wf.reshape(co, ci).T
        acc = acc.reshape(n, ho, wo, co)
    else:
        # im2col: [N, Ho, Wo, kh, kw, Ci]
        s = xs.strides
        cols = np.lib.stride_tricks.as_strided(
            xs, shape=(n, ho, wo, kh, kw, ci),
            strides=(s[0], s[1] * sh, s[2] * sw, s[1], s[2], s[3]), writeable=False)
        if groups == 1:
            acc = cols.reshape(n * ho * wo, kh * kw * ci) @ wf.reshape(co, -1).T
            acc = acc.reshape(n, ho, wo, co)
        else:
            cog = co // groups
            parts = []
            for g in range(groups):
                cg = cols[..., g * cig:(g + 1) * cig].reshape(n * ho * wo, kh * kw * cig)
                parts.append(cg @ wf[g * cog:(g + 1) * cog].reshape(cog, -1).T)
            acc = np.concatenate(parts, axis=1).reshape(n, ho, wo, co)
    return acc


def conv2d(x, w, bias, x_zero: int, y_zero: int, mult, shift, stride=1,
           pad=0, groups: int = 1, act_min: int = -128, act_max: int = 127,
           pad_end=None) -> np.ndarray:
    acc = conv_acc(x, w, bias, x_zero, stride, pad, groups, pad_end)
    return clamp_s8(requantize(acc, mult, shift) + y_zero, act_min, act_max)


def fully_connected(x, w, bias, x_zero: int, y_zero: int, mult, shift,
                    act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """x [N, Ci], w [Co, Ci] -> [N, Co]."""
    x = np.asarray(x)
    y = conv2d(x.reshape(x.shape[0], 1, 1, -1), np.asarray(w)[:, None, None, :], bias,
               x_zero, y_zero, mult, shift, act_min=act_min, act_max=act_max)
    return y.reshape(x.shape[0], -1)


def add(x1, x2, p: AddParams, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    a = requantize((np.asarray(x1, np.int64) - p.z1) << ADD_LEFT_SHIFT, p.m1, p.s1)
    b = requantize((np.asarray(x2, np.int64) - p.z2) << ADD_LEFT_SHIFT, p.m2, p.s2)
    return clamp_s8(requantize(a + b, p.mo, p.so) + p.zo, act_min, act_max)


def concat(xs, zeros, mults, shifts, y_zero: int) -> np.ndarray:
    """Concatenate int8 arrays along the last axis, each requantized to the output's
    scale and zero point (see the module doc)."""
    parts = [clamp_s8(requantize(np.asarray(x, np.int64) - int(z), int(m), int(s)) + y_zero)
             for x, z, m, s in zip(xs, zeros, mults, shifts)]
    return np.concatenate(parts, axis=-1)


def mul(x1, x2, z1: int, z2: int, zo: int, mult: int, shift: int, act_min: int = -128,
        act_max: int = 127) -> np.ndarray:
    """TFLite MUL: ``clamp(requant((x1 - z1) * (x2 - z2), mult, shift) + zo)``; x2 may be
    [N, 1, 1, C] (broadcast over x1's H x W)."""
    p = (np.asarray(x1, np.int64) - z1) * (np.asarray(x2, np.int64) - z2)
    return clamp_s8(requantize(p, mult, shift) + zo, act_min, act_max)


def lut(x, table) -> np.ndarray:
    """Elementwise function by table: ``y = table[x + 128]``."""
    return np.asarray(table, np.int8)[np.asarray(x, np.int64) + 128]


def global_avgpool(x) -> np.ndarray:
    """[N, H, W, C] -> [N, 1, 1, C]."""
    x = np.asarray(x)
    n, h, w, c = x.shape
    s = x.astype(np.int64).sum(axis=(1, 2), keepdims=True)
    return div_round_away(s, h * w).astype(np.int8)


def global_avgpool_requant(x, x_zero: int, y_zero: int, mult: int, shift: int) -> np.ndarray:
    """[N, H, W, C] -> [N, 1, 1, C] with the output's own parameters (module doc)."""
    s = (np.asarray(x, np.int64) - x_zero).sum(axis=(1, 2), keepdims=True)
    return clamp_s8(requantize(s, mult, shift) + y_zero)


def avg_pool(x, kh: int, kw: int, stride, pad, count_include_pad: bool, x_zero: int,
             y_zero: int = 0, mult=None, shift=None) -> np.ndarray:
    """Mean of each ``kh`` x ``kw`` window of NHWC int8 ``x`` (module doc): with ``mult``
    None the output keeps the input's parameters, else ``mult`` / ``shift`` hold one
    multiplier per divisor (one, or ``kh*kw`` indexed by ``count - 1``)."""
    x = np.asarray(x, np.int64)
    count = window_count(x.shape[1], x.shape[2], kh, kw, stride, pad, count_include_pad)[None, :, :, None]
    if mult is None:   # a padded tap is x_zero (counted) or left out (not counted)
        return _div_per_count(window_sum(x, kh, kw, stride, pad, x_zero if count_include_pad else 0),
                              count)
    acc = window_sum(x - x_zero, kh, kw, stride, pad, 0)
    m, s = np.asarray(mult, np.int64), np.asarray(shift, np.int64)
    i = count - 1 if m.size > 1 else np.zeros_like(count)
    return clamp_s8(requantize(acc, m[i], s[i]) + y_zero)


def _div_per_count(acc, count) -> np.ndarray:
    """div_round_away with a divisor per window (count broadcast over N and C)."""
    half = count // 2
    adj = np.where(acc >= 0, acc + half, acc - half)
    return (np.sign(adj) * (np.abs(adj) // count)).astype(np.int8)


def max_pool(x, kh: int, kw: int, stride, pad, pad_end=None) -> np.ndarray:
    """Max over each ``kh`` x ``kw`` window of NHWC int8 ``x`` at ``stride``; the ``pad``
    border (``stride``, ``pad``: an int or per axis ``(h, w)``; ``pad_end``: the trailing
    one when it differs) is -128, which never changes a maximum (every window holds a
    real value)."""
    return window_max(np.asarray(x, np.int8), kh, kw, stride, pad, -128, pad_end)


# ----------------------------------------------------------------------------- node adapters

def _conv2d(g: Graph, node: Node, x):
    a, p = node.attrs, node.params
    return conv2d(x, p["weight"], p["bias"], g.tensors[node.inputs[0]].zero_point,
                          g.tensors[node.output].zero_point, p["mult"], p["shift"],
                          stride=a["stride"], pad=a["pad"], groups=a["groups"],
                          act_min=a["act_min"], act_max=a["act_max"], pad_end=a.get("pad_end"))


def _fully_connected(g: Graph, node: Node, x):
    a, p = node.attrs, node.params
    return fully_connected(x, p["weight"], p["bias"], g.tensors[node.inputs[0]].zero_point,
                                   g.tensors[node.output].zero_point, p["mult"], p["shift"],
                                   act_min=a["act_min"], act_max=a["act_max"])


def _add(g: Graph, node: Node, x1, x2):
    return add(x1, x2, node.add_params(), node.attrs["act_min"], node.attrs["act_max"])


def _concat(g: Graph, node: Node, *xs):
    return concat(xs, [g.tensors[t].zero_point for t in node.inputs], node.attrs["in_mult"],
                  node.attrs["in_shift"], g.tensors[node.output].zero_point)


def _mul(g: Graph, node: Node, x1, x2):
    t = g.tensors
    return mul(x1, x2, t[node.inputs[0]].zero_point, t[node.inputs[1]].zero_point,
               t[node.output].zero_point, node.attrs["mult"], node.attrs["shift"],
               node.attrs["act_min"], node.attrs["act_max"])


def _lut(g: Graph, node: Node, x):
    return lut(x, node.params["table"])


def _global_avgpool(g: Graph, node: Node, x):
    if "mult" in node.attrs:
        (m,), (s,) = node.attrs["mult"], node.attrs["shift"]
        return global_avgpool_requant(x, g.tensors[node.inputs[0]].zero_point,
                                      g.tensors[node.output].zero_point, m, s)
    return global_avgpool(x)


def _avg_pool(g: Graph, node: Node, x):
    a = node.attrs
    kh, kw = a["kernel"]
    return avg_pool(x, kh, kw, a["stride"], a["pad"], a["count_include_pad"],
                    g.tensors[node.inputs[0]].zero_point, g.tensors[node.output].zero_point,
                    a.get("mult"), a.get("shift"))


def _max_pool(g: Graph, node: Node, x):
    kh, kw = node.attrs["kernel"]
    return max_pool(x, kh, kw, node.attrs["stride"], node.attrs["pad"], node.attrs.get("pad_end"))


def _flatten(g: Graph, node: Node, x):
    return x.reshape(x.shape[0], -1)


#: op -> function(graph, node, *input arrays) -> output array (int8)
KERNELS = {
    "conv2d": _conv2d,
    "fully_connected": _fully_connected,
    "add": _add,
    "concat": _concat,
    "mul": _mul,
    "sigmoid": _lut,
    "hardsigmoid": _lut,
    "hardswish": _lut,
    "global_avgpool": _global_avgpool,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "flatten": _flatten,
}
