"""Requantization records of the DSP conv and fc kernels, precomputed for frozen layers.

The Arm DSP conv2d, conv2d_1x1, depthwise and fc kernels requantize an int32
accumulator with a fast plan per output channel: ``SSAT8(SMMLA(acc << lsh, mult, off)
>> t)`` (runtime_c/src/kernels/tt_simd.h). The plan depends on the channel's bias (it
must keep ``|bias| + k * xmax * 128`` and the rounding offset inside int32), so the
kernels compute it on every call: 40-130 instructions per output channel and call, and
a fused block calls its layers once per row (group). A layer that does not train has a
constant bias: the compiler computes the plans once here and the kernels read them from
flash (``tt_conv_params.rq``, ``tt_fc_params.rq``; 2 bytes per channel, see
:func:`record`).

:func:`channel_record` mirrors the kernels' choice (tt_chrec_make / dw_plan:
tt_rq_plan32, else tt_rq_plan_w, including constant channels) step by step;
:func:`layer_records` gives a layer's records only when every channel has a plan a
record can hold (outside the depthwise kernels: no pre-scaled weights); otherwise the
kernels keep computing theirs. Every plan here is exact for every reachable
accumulator, so the outputs are the same with or without records:
tests/test_rq_records.py checks the plans against the C ones and runs the kernels both
ways against the reference.
"""
from __future__ import annotations

import numpy as np

from compiler.ir.graph import Graph, Node
from compiler.kernels.forward import is_packed

_I32_MAX = 0x7FFFFFFF


def xmax(in_zero: int) -> int:
    """max |x - in_zero| over int8 x (tt_xmax)."""
    return 128 + in_zero if in_zero >= 0 else 127 - in_zero


def plan(mult: int, shift: int, zero: int, bound: int, max_lsh: int):
    """(mult, off, t, lsh) of tt_rq_plan for accumulators |acc| <= bound, or None."""
    if mult < 0:
        return None
    lsh, t = (0, -1 - shift) if shift <= -2 else (shift + 2, 1)
    if t > 29 or lsh > max_lsh:
        return None
    acc_max = bound << lsh
    if acc_max > _I32_MAX:
        return None
    hi = ((acc_max * mult) >> 32) + 1
    while t > 1 and hi < (1 << (t - 2)):
        t -= 1
    off = (1 << (t - 1)) + zero * (1 << t)
    if hi + abs(off) > _I32_MAX:
        return None
    return mult, off, t, lsh


def plan32(bias: int, mult: int, shift: int, zero: int, k: int, x_max: int):
    """(mult, off, t) of tt_rq_plan32: :func:`plan` for the worst-case bound, for the usual
    case only (mult >= 0, -24 <= shift <= -2, an int8 zero point, k <= 16384), or None."""
    if int(mult) < 0 or not -24 <= int(shift) <= -2 or int(k) > 16384 or not -128 <= int(zero) <= 127:
        return None
    r = plan(int(mult), int(shift), int(zero), abs(int(bias)) + int(k) * x_max * 128, 0)
    return None if r is None else r[:3]


def _requantize64(acc: int, mult: int, shift: int) -> int:
    total = 31 - shift
    return (acc * mult + (1 << (total - 1))) >> total


def plan_w(bias: int, mult: int, shift: int, zero: int, w_row, x_max: int, max_lsh: int = 8):
    """(mult, off, t, lsh) of tt_rq_plan_w for a channel with int8 weights ``w_row``, or
    None: the worst-case bound, then the exact sum(|w|) one, then a constant channel
    (its whole reachable range saturates to one int8 value: mult 0, off = 2 * value)."""
    bias, mult, shift, zero = int(bias), int(mult), int(shift), int(zero)
    k = int(np.size(w_row))
    b = abs(bias)
    r = plan(mult, shift, zero, b + k * x_max * 128, max_lsh)
    if r is not None:
        return r
    wabs = int(np.abs(np.asarray(w_row, dtype=np.int64)).sum())
    r = plan(mult, shift, zero, b + wabs * x_max, max_lsh)
    if r is not None:
        return r
    lo = max(bias - wabs * x_max, -_I32_MAX - 1)
    hi = min(bias + wabs * x_max, _I32_MAX)
    vlo = min(max(_requantize64(lo, mult, shift) + zero, -128), 127)
    vhi = min(max(_requantize64(hi, mult, shift) + zero, -128), 127)
    if vlo != vhi or mult < 0:
        return None
    return 0, 2 * vlo, 1, 0


def channel_record(bias: int, mult: int, shift: int, zero: int, w_row, x_max: int,
                   depthwise: bool = False):
    """The 2-byte record (see :func:`record`) of a channel's plan as the kernels choose
    it (conv2d / conv2d_1x1 / fc: tt_chrec_make, i.e. tt_rq_plan32, else tt_rq_plan_w;
    depthwise: dw_plan, the same two), or None: a plan with pre-scaled weights (lsh > 0)
    outside the depthwise kernels, or no plan (the exact 64-bit path)."""
    # tt_rq_plan32, where it applies, is plan_w's first attempt in 32-bit arithmetic
    r = plan_w(bias, mult, shift, zero, w_row, x_max)
    if r is None or (r[3] != 0 and not depthwise):
        return None
    return record(r, int(mult), int(shift), int(zero))


def record(plan_: tuple, mult: int, shift: int, zero: int) -> int | None:
    """The 2-byte record of a channel's plan (mult, off, t, lsh) (tt_kernels.h): t when
    the plan is (mult, (1 + 2 * zero) << (t - 1), t, shift + 2 if shift >= -1 else 0),
    value * 256 for a constant channel (0, 2 * value, 1, 0), else None. The kernel
    rebuilds the plan from the record, the channel's own mult and shift and the output
    zero point."""
    m, off, t, lsh = plan_
    if (m == mult and 1 <= t <= 29 and off == (1 + 2 * zero) << (t - 1)
            and lsh == (shift + 2 if shift >= -1 else 0)):
        return t
    if m == 0 and t == 1 and lsh == 0 and off % 2 == 0 and -128 <= off // 2 <= 127:
        return (off // 2) * 256
    return None


def layer_records(weight, bias, mult, shift, out_zero: int, in_zero: int,
                  depthwise: bool = False) -> np.ndarray | None:
    """int16 [out_c]: each channel's record, or None unless every channel has one.
    ``weight``: [out_c, ...] int8 (a depthwise layer's [C, kh, kw(, 1)])."""
    xm = xmax(int(in_zero))
    w = np.asarray(weight).reshape(len(np.asarray(bias).ravel()), -1)
    out = []
    for row, b, m, s in zip(w, np.asarray(bias).ravel(), np.asarray(mult).ravel(),
                            np.asarray(shift).ravel()):
        r = channel_record(b, m, s, out_zero, row, xm, depthwise)
        if r is None:
            return None
        out.append(r)
    return np.asarray(out, dtype=np.int16)


def node_records(g: Graph, n: Node) -> np.ndarray | None:
    """The records of a conv2d (groups 1 or depthwise) or fully_connected node with int8
    weights, or None (another op, 4-bit weights, or a channel without a plan the records
    can hold). The caller only asks for layers whose bias does not change on the device."""
    if n.op not in ("conv2d", "fully_connected") or "weight" not in n.params or is_packed(n):
        return None
    if n.op == "conv2d" and not n.is_depthwise and n.attrs.get("groups", 1) != 1:
        return None
    x = g.tensors[n.inputs[0]]
    y = g.tensors[n.output]
    return layer_records(n.params["weight"], n.params["bias"], n.params["mult"],
                         n.params["shift"], int(y.zero_point), int(x.zero_point),
                         depthwise=n.op == "conv2d" and n.is_depthwise)
