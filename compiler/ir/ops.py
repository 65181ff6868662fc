"""Op definitions: for every op of the IR its inputs, attributes, parameters, output
shape and MAC count, and its traits (see :class:`OpDef`).

This is where an op is declared once; the other stages ask :attr:`Node.traits`
(``node.traits.has_params``, ``node.traits.clamps``, ...) and :func:`conv_kind` instead
of keeping their own lists of op names. Semantics of each op: :mod:`compiler.ir.graph`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from compiler.ir.errors import GraphError
from compiler.ir.qmath import hw, out_size, pad_end_hw


def _conv_shape(node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    x = ins[0]
    if len(x) != 4:
        raise GraphError(f"{node.name}: conv2d input must be NHWC, got shape {x}")
    w = node.params["weight"]
    co, kh, kw, cig = w.shape
    g = node.attrs["groups"]
    if x[3] != cig * g or co % g:
        raise GraphError(f"{node.name}: input channels {x[3]} do not match weight {w.shape} "
                         f"with groups={g}")
    s, p = node.attrs["stride"], node.attrs["pad"]
    (sh, sw), (ph, pw), (pb, pr) = hw(s), hw(p), pad_end_hw(node.attrs)
    if min(sh, sw) < 1 or min(ph, pw, pb, pr) < 0:
        raise GraphError(f"{node.name}: conv2d stride {s} must be >= 1 and pad {p} >= 0"
                         + _pad_end_text(node))
    ho, wo = out_size(x[1], kh, sh, ph, pb), out_size(x[2], kw, sw, pw, pr)
    if ho < 1 or wo < 1:
        raise GraphError(f"{node.name}: empty output for input {x}, kernel {(kh, kw)}, "
                         f"stride {s}, pad {p}")
    return (x[0], ho, wo, co)


def _fc_shape(node, ins):
    x = ins[0]
    w = node.params["weight"]
    if len(x) != 2 or x[1] != w.shape[1]:
        raise GraphError(f"{node.name}: fully_connected input {x} does not match weight {w.shape}")
    return (x[0], w.shape[0])


def _add_shape(node, ins):
    if ins[0] != ins[1]:
        raise GraphError(f"{node.name}: add operands have different shapes {ins[0]} {ins[1]}")
    return ins[0]


def _pool_shape(node, ins):
    if len(ins[0]) != 4:
        raise GraphError(f"{node.name}: global_avgpool input must be NHWC, got {ins[0]}")
    return (ins[0][0], 1, 1, ins[0][3])


def _maxpool_shape(node, ins):
    x = ins[0]
    if len(x) != 4:
        raise GraphError(f"{node.name}: max_pool input must be NHWC, got shape {x}")
    kh, kw = node.attrs["kernel"]
    s, p = node.attrs["stride"], node.attrs["pad"]
    (sh, sw), (ph, pw), (pb, pr) = hw(s), hw(p), pad_end_hw(node.attrs)
    if "pad_end" in node.attrs:  # asymmetric: each side less than the kernel
        pads_ok = 0 <= min(ph, pb) and max(ph, pb) < kh and 0 <= min(pw, pr) and max(pw, pr) < kw
    else:
        pads_ok = 0 <= 2 * ph <= kh and 0 <= 2 * pw <= kw
    if not (kh >= 1 and kw >= 1 and min(sh, sw) >= 1 and pads_ok):
        raise GraphError(f"{node.name}: max_pool kernel {(kh, kw)}, stride {s}, pad {p}"
                         f"{_pad_end_text(node)}: pad must be at most half the kernel, or "
                         "when the two sides differ each less than the kernel (every window "
                         "holds a real value)")
    ho, wo = out_size(x[1], kh, sh, ph, pb), out_size(x[2], kw, sw, pw, pr)
    if ho < 1 or wo < 1:
        raise GraphError(f"{node.name}: empty output for input {x}, kernel {(kh, kw)}, "
                         f"stride {s}, pad {p}")
    return (x[0], ho, wo, x[3])


def _avg_pool_shape(node, ins):
    x = ins[0]
    if len(x) != 4:
        raise GraphError(f"{node.name}: avg_pool input must be NHWC, got shape {x}")
    kh, kw = node.attrs["kernel"]
    s, p = node.attrs["stride"], node.attrs["pad"]
    (sh, sw), (ph, pw) = hw(s), hw(p)
    if not (kh >= 1 and kw >= 1 and min(sh, sw) >= 1 and 0 <= 2 * ph <= kh and 0 <= 2 * pw <= kw):
        raise GraphError(f"{node.name}: avg_pool kernel {(kh, kw)}, stride {s}, pad {p}: pad "
                         "must be at most half the kernel (every window holds a real value)")
    ho, wo = out_size(x[1], kh, sh, ph), out_size(x[2], kw, sw, pw)
    if ho < 1 or wo < 1:
        raise GraphError(f"{node.name}: empty output for input {x}, kernel {(kh, kw)}, "
                         f"stride {s}, pad {p}")
    return (x[0], ho, wo, x[3])


def _pad_end_text(node) -> str:
    return f", pad_end {node.attrs['pad_end']}" if "pad_end" in node.attrs else ""


def _concat_shape(node, ins):
    """Concatenation along the last axis (channels of NHWC, features of NC)."""
    if not ins:
        raise GraphError(f"{node.name}: concat needs at least one input")
    rest = {tuple(x[:-1]) for x in ins}
    if len(rest) != 1:
        raise GraphError(f"{node.name}: concat inputs differ outside the channel axis: "
                         f"{', '.join(map(str, ins))}")
    return tuple(ins[0][:-1]) + (sum(x[-1] for x in ins),)


def _flatten_shape(node, ins):
    return (ins[0][0], int(np.prod(ins[0][1:])))


def _same_shape(node, ins):
    return ins[0]


def _mul_shape(node, ins):
    """Elementwise product; the second operand may be one value per channel
    ([N, 1, 1, C], e.g. a squeeze-excite gate) broadcast over the first's H x W."""
    a, b = ins
    if not (a == b or (len(a) == 4 and b == (a[0], 1, 1, a[3]))):
        raise GraphError(f"{node.name}: mul operands {a} {b}: same shapes, or the second "
                         "[N, 1, 1, C] broadcast over the first's H x W")
    return a


def _conv_macs(node, ins, out) -> int:
    _, kh, kw, cig = node.params["weight"].shape
    return int(np.prod(out[1:])) * kh * kw * cig


def _fc_macs(node, ins, out) -> int:
    return int(node.params["weight"].size)


def _no_macs(node, ins, out) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """An op: its inputs, attributes, parameters, shape and MAC rules, and its traits.

    Traits (every stage asks these instead of keeping its own list of op names):
    ``has_params`` weights + bias (trainable, per-output-channel requantization);
    ``clamps`` ends in an output clamp (ReLU/ReLU6 fold into it; its backward needs a
    clamp mask); ``passes_qparams`` the int8 output keeps the input's scale and zero
    point; ``channelwise`` each output channel reads only the same input channel (a
    channel permutation passes through; depthwise convolutions are channel-wise by
    their :func:`conv_kind`); ``commutes_with_clamp`` applying the op after a clamp
    equals clamping after it (max pooling, flatten: a ReLU after them folds into the
    layer before them); ``int8`` allowed in int8 graphs (else float-only, folded away by
    quantization)."""
    n_inputs: int                  # 0: any number >= 1 (concat)
    attrs: tuple[str, ...]
    float_params: tuple[str, ...]
    int8_params: tuple[str, ...]
    shape: Callable
    macs: Callable
    has_params: bool = False
    clamps: bool = False
    passes_qparams: bool = False
    channelwise: bool = False
    commutes_with_clamp: bool = False
    int8: bool = True


_ACT = ("act_min", "act_max")
_INT8_PARAMS = ("weight", "bias", "w_scales", "mult", "shift")
OPS: dict[str, OpDef] = {
    "conv2d": OpDef(1, ("kernel", "stride", "pad", "groups") + _ACT, ("weight", "bias"),
                    _INT8_PARAMS, _conv_shape, _conv_macs, has_params=True, clamps=True),
    "fully_connected": OpDef(1, _ACT, ("weight", "bias"), _INT8_PARAMS, _fc_shape, _fc_macs,
                             has_params=True, clamps=True),
    "add": OpDef(2, _ACT, (), (), _add_shape, _no_macs, clamps=True, channelwise=True),
    "global_avgpool": OpDef(1, (), (), (), _pool_shape, _no_macs, passes_qparams=True,
                            channelwise=True),
    "max_pool": OpDef(1, ("kernel", "stride", "pad"), (), (), _maxpool_shape, _no_macs,
                      passes_qparams=True, channelwise=True, commutes_with_clamp=True),
    # average of each window (compiler.ref.ops.avg_pool); count_include_pad: padded taps
    # count as zeros in the divisor (PyTorch's default) or are left out of it. int8: the
    # output keeps the input's parameters, or (a QDQ model) has its own with int8
    # attributes mult, shift (lists, see avg_pool_divisors); global_avgpool likewise
    "avg_pool": OpDef(1, ("kernel", "stride", "pad", "count_include_pad"), (), (), _avg_pool_shape,
                      _no_macs, passes_qparams=True, channelwise=True),
    # int8 attributes (per input i, compiler.ref.ops.concat): in_mult[i], in_shift[i]
    "concat": OpDef(0, (), (), (), _concat_shape, _no_macs),
    # int8 attributes: mult, shift (Q31 multiplier of s1 * s2 / s_out, compiler.ref.ops.mul)
    "mul": OpDef(2, _ACT, (), (), _mul_shape, _no_macs, clamps=True),
    # elementwise functions; int8: a 256-entry table (param "table") built at compile
    # time from the input and output parameters (compiler.ref.ops.lut, LUT_FUNCTIONS)
    "sigmoid": OpDef(1, (), (), ("table",), _same_shape, _no_macs, channelwise=True),
    "hardsigmoid": OpDef(1, ("alpha", "beta"), (), ("table",), _same_shape, _no_macs,
                         channelwise=True),
    "hardswish": OpDef(1, (), (), ("table",), _same_shape, _no_macs, channelwise=True),
    "flatten": OpDef(1, (), (), (), _flatten_shape, _no_macs, passes_qparams=True,
                     commutes_with_clamp=True),
    "batch_norm": OpDef(1, ("eps",), ("mean", "var", "gamma", "beta"), (), _same_shape, _no_macs,
                        channelwise=True, int8=False),
    "clip": OpDef(1, ("min", "max"), (), (), _same_shape, _no_macs, channelwise=True, int8=False),
}
def _sigmoid(node, x):
    return 1.0 / (1.0 + np.exp(-x))


def _hardsigmoid(node, x):
    return np.clip(x * node.attrs["alpha"] + node.attrs["beta"], 0.0, 1.0)


def _hardswish(node, x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


#: op -> float semantics f(node, x) of the elementwise functions run by a lookup table
LUT_FUNCTIONS: dict[str, Callable] = {"sigmoid": _sigmoid, "hardsigmoid": _hardsigmoid,
                                      "hardswish": _hardswish}


def lut_table(node, in_scale: float, in_zero: int, out_scale: float, out_zero: int) -> np.ndarray:
    """The int8 table of an elementwise function node: entry q + 128 is the int8 output
    for the int8 input q (f in float64 on the dequantized input, rounded half away from
    zero, saturated)."""
    q = np.arange(-128, 128, dtype=np.float64)
    y = LUT_FUNCTIONS[node.op](node, (q - in_zero) * in_scale) / out_scale
    r = np.sign(y) * np.floor(np.abs(y) + 0.5)
    return np.clip(r + out_zero, -128, 127).astype(np.int8)


INT8_OPS = tuple(k for k, d in OPS.items() if d.int8)
FLOAT_ONLY_OPS = tuple(k for k, d in OPS.items() if not d.int8)


def conv_kind(node) -> str | None:
    """The kind of a conv2d node: "depthwise" (groups = channels, one filter each),
    "pointwise" (1x1, no padding, groups 1), "grouped" (other groups > 1) or "kxk";
    None for any other op. The one place this test is written."""
    if node.op != "conv2d":
        return None
    w, groups = node.params["weight"], node.attrs["groups"]
    if groups > 1 and w.shape[3] == 1 and groups == w.shape[0]:
        return "depthwise"
    if groups != 1:
        return "grouped"
    if (tuple(node.attrs["kernel"]) == (1, 1) and hw(node.attrs["pad"]) == (0, 0)
            and pad_end_hw(node.attrs) == (0, 0)):
        return "pointwise"
    return "kxk"


def window_max(x: np.ndarray, kh: int, kw: int, stride, pad, fill, pad_end=None) -> np.ndarray:
    """The semantics of ``max_pool`` on NHWC ``x`` of any dtype: the maximum of each
    ``kh`` x ``kw`` window at ``stride``, with a ``pad`` border of ``fill`` (the dtype's
    lowest value, so a padded tap never wins: every window holds a real value). ``stride``
    and ``pad``: an int or per axis ``(h, w)``; ``pad_end``: the trailing (bottom, right)
    border when it differs from ``pad`` (None: symmetric)."""
    n, h, w, c = x.shape
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    pb, pr = hw(pad if pad_end is None else pad_end)
    ho, wo = out_size(h, kh, sh, ph, pb), out_size(w, kw, sw, pw, pr)
    xp = np.pad(x, ((0, 0), (ph, pb), (pw, pr), (0, 0)), constant_values=fill)
    y = np.full((n, ho, wo, c), fill, x.dtype)
    for i in range(kh):
        for j in range(kw):
            y = np.maximum(y, xp[:, i:i + sh * (ho - 1) + 1:sh,
                                 j:j + sw * (wo - 1) + 1:sw, :])
    return y


def window_sum(x: np.ndarray, kh: int, kw: int, stride, pad, fill) -> np.ndarray:
    """Sum of each ``kh`` x ``kw`` window of NHWC ``x`` at ``stride`` (the ``pad`` border
    holds ``fill``), in ``x``'s dtype; ``stride`` and ``pad``: an int or per axis."""
    n, h, w, c = x.shape
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=fill)
    y = np.zeros((n, ho, wo, c), x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
    return y


def window_count(h: int, w: int, kh: int, kw: int, stride, pad, count_include_pad: bool) -> np.ndarray:
    """The divisor of each ``avg_pool`` window [Ho, Wo] (int64): ``kh * kw``, or with
    ``count_include_pad`` False the number of its taps inside the map."""
    ones = np.ones((1, h, w, 1), np.int64)
    if count_include_pad:
        return np.full(window_sum(ones, kh, kw, stride, pad, 0).shape[1:3], kh * kw, np.int64)
    return window_sum(ones, kh, kw, stride, pad, 0)[0, :, :, 0]


def pool_counts_vary(node) -> bool:
    """True when the divisors of an ``avg_pool`` node's windows differ (padding left out
    of the count); a global pool's never do."""
    return node.op == "avg_pool" and not node.attrs["count_include_pad"] and hw(node.attrs["pad"]) != (0, 0)


def avg_pool_divisors(node, in_shape) -> list[int]:
    """The divisors the int8 multipliers of an average pool are indexed by: one (every
    window the same size: ``kh * kw``, or ``H * W`` for ``global_avgpool``) or, when the
    counts vary, ``1 .. kh * kw`` (entry ``count - 1``)."""
    if node.op == "global_avgpool":
        return [int(in_shape[1] * in_shape[2])]
    kh, kw = node.attrs["kernel"]
    return list(range(1, kh * kw + 1)) if pool_counts_vary(node) else [kh * kw]


def requantizes(node) -> bool:
    """An average pool whose int8 output has its own scale / zero point (int8 attributes
    ``mult``, ``shift``; else it keeps its input's)."""
    return node.op in ("global_avgpool", "avg_pool") and "mult" in node.attrs
