"""Post-training int8 quantization of float IR graphs (TFLite rules).

``quantize(graph, calibration)`` runs three passes:

1. :func:`fold_batchnorm`: ``batch_norm`` after a conv/fully-connected layer is folded
   into its weights and bias (float32, ``s = gamma / sqrt(var + eps)``,
   ``w' = w * s``, ``b' = (b - mean) * s + beta``, the same arithmetic as the ONNX
   exporter's fusion, so torch and ONNX imports of one model agree bit for bit); a
   ``batch_norm`` on a feature map with no such producer becomes a 1x1 depthwise conv,
   one on a vector feeding a fully-connected layer is folded into that layer.
2. :func:`fuse_activations`: ``clip`` (ReLU, ReLU6, hardtanh) is folded into the clamp of
   the producing conv / fully-connected / add.
3. calibration + quantization:

   - activations: per-tensor asymmetric int8 from the min/max seen on the calibration
     set (range widened to include 0; ``scale = (max - min) / 255``,
     ``zero_point = round(-128 - min / scale)``); pool and flatten outputs keep their
     input's parameters;
   - weights: per-output-channel symmetric, ``w_scale = max|w| / 127``, values in
     [-127, 127] (round half away from zero); a layer whose float weights are all 0 or
     +-2^e (power-of-two weights, e.g. from INQ, :mod:`compiler.quantize.inq`), each
     channel's exponents spanning at most 7 values, is quantized exactly instead
     (:func:`quantize_pow2_weights`): ``w_scale[c] = 2^(max e - 6)``, int8 weights
     0 and +-2^0 .. +-2^6 that equal the float weights times ``1 / w_scale`` exactly
     (the graph's ``metadata["pow2_layers"]`` lists those layers);
   - concat: the output's parameters from its calibrated range (the union of its
     inputs'); each input is requantized to them (Q31 multiplier of x_scale / y_scale);
   - bias: int32 with scale ``x_scale * w_scale[c]``;
   - requantization: ``x_scale * w_scale[c] / y_scale`` -> Q31 multiplier + shift;
   - fused activations: ``act_min/max = clamp(zero_point + round(bound / y_scale))``.
"""
from __future__ import annotations

import math

import numpy as np

from compiler.ir.errors import QuantizationError, UnsupportedOpError
from compiler.ir.graph import ADD_ATTRS, INT8, Graph, Node, clamp_bias_for_int32
from compiler.ir.ops import LUT_FUNCTIONS, lut_table
from compiler.ir.qmath import SHIFT_MAX, AddParams, quantize_multipliers
from compiler.quantize.float_ref import FLOAT_KERNELS

MIN_RANGE = 1e-6  # smallest calibrated activation range (avoids zero scales)
_MAX_MULT = math.ldexp(1.0, SHIFT_MAX) * 0.999  # largest multiplier quantize_multiplier accepts


def _round_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _bypass(g: Graph, removed: Node, keep: str) -> None:
    """Remove ``removed`` (an element-wise node folded into the producer of ``keep``) and
    let its consumers and the graph outputs read tensor ``keep`` instead."""
    gone = removed.output
    g.nodes.remove(removed)
    for n in g.nodes:
        n.inputs = [keep if t == gone else t for t in n.inputs]
    g.outputs = [keep if t == gone else t for t in g.outputs]
    del g.tensors[gone]


def _single_consumer(g: Graph, t: str) -> bool:
    return len(g.consumers(t)) == 1 and t not in g.outputs


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold every ``batch_norm`` into the preceding conv/fully_connected (see module doc)."""
    g = graph.copy()
    for bn in [n for n in g.nodes if n.op == "batch_norm"]:
        p = bn.params
        scale = p["gamma"] / np.sqrt(p["var"] + np.float32(bn.attrs["eps"]))
        prod = g.producer(bn.inputs[0])
        if (prod is not None and prod.traits.has_params
                and _single_consumer(g, prod.output) and _act_is_none(prod)):
            w, b = prod.params["weight"], prod.params["bias"]
            shape = (-1,) + (1,) * (w.ndim - 1)
            prod.params["weight"] = (w * scale.reshape(shape)).astype(np.float32)
            prod.params["bias"] = ((b - p["mean"]) * scale + p["beta"]).astype(np.float32)
            _bypass(g, bn, prod.output)
        elif len(g.tensors[bn.inputs[0]].shape) == 4:
            c = scale.shape[0]
            i = g.nodes.index(bn)
            g.nodes[i] = Node("conv2d", bn.name, bn.inputs, bn.outputs,
                              dict(kernel=(1, 1), stride=1, pad=0, groups=c,
                                   act_min=-math.inf, act_max=math.inf),
                              dict(weight=scale.reshape(c, 1, 1, 1).astype(np.float32),
                                   bias=(p["beta"] - p["mean"] * scale).astype(np.float32)),
                              bn.source)
        elif (len(g.consumers(bn.output)) == 1 and g.consumers(bn.output)[0].op == "fully_connected"
              and bn.output not in g.outputs):
            # BatchNorm1d right before a Linear: fold it forward into the Linear's weights
            fc = g.consumers(bn.output)[0]
            shift = (p["beta"] - p["mean"] * scale).astype(np.float32)
            w = fc.params["weight"]
            fc.params["bias"] = (fc.params["bias"] + w @ shift).astype(np.float32)
            fc.params["weight"] = (w * scale[None, :]).astype(np.float32)
            _bypass(g, bn, bn.inputs[0])
        else:
            raise UnsupportedOpError("batch_norm", bn.name, "a BatchNorm on a vector must follow "
                                     "or precede a Linear layer", bn.source)
    return g


def _act_is_none(node: Node) -> bool:
    return node.attrs.get("act_min", -math.inf) == -math.inf and node.attrs.get("act_max", math.inf) == math.inf


def fuse_activations(graph: Graph) -> Graph:
    """Fold each ``clip`` into the clamp of its producer (conv, fully_connected, add),
    looking through ops that commute with a clamp (``flatten``, max pooling: a ReLU after
    them is the same as one before them)."""
    g = graph.copy()
    for c in [n for n in g.nodes if n.op == "clip"]:
        prod = g.producer(c.inputs[0])
        while (prod is not None and prod.traits.commutes_with_clamp
               and _single_consumer(g, prod.inputs[0])):
            prod = g.producer(prod.inputs[0])
        if prod is None or not prod.traits.clamps:
            what = "a graph input" if prod is None else f"{prod.op} {prod.name!r}"
            raise UnsupportedOpError("clip", c.name, f"an activation must follow a conv, linear "
                                     f"or add layer to be fused; it follows {what}", c.source)
        if not _single_consumer(g, prod.output):
            raise UnsupportedOpError("clip", c.name, f"cannot fuse into {prod.name!r}: its "
                                     "pre-activation output is also used elsewhere", c.source)
        lo, hi = float(c.attrs["min"]), float(c.attrs["max"])
        prod.attrs["act_min"] = max(prod.attrs.get("act_min", -math.inf), lo)
        prod.attrs["act_max"] = min(prod.attrs.get("act_max", math.inf), hi)
        if prod.attrs["act_min"] > prod.attrs["act_max"]:
            raise UnsupportedOpError("clip", c.name, "empty clamp range", c.source)
        _bypass(g, c, c.inputs[0])
    return g


def calibrate(g: Graph, data, batch_size: int = 256) -> dict[str, tuple[float, float]]:
    """(min, max) of every tensor over the calibration samples (float graph, IR layout)."""
    xs = [np.asarray(d, dtype=np.float32) for d in (data if isinstance(data, (list, tuple)) else [data])]
    if len(xs) != len(g.inputs):
        raise QuantizationError(f"calibration: expected {len(g.inputs)} input array(s), got {len(xs)}")
    for name, x in zip(g.inputs, xs):
        want = g.tensors[name].shape[1:]
        if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want or x.shape[0] == 0:
            raise QuantizationError(f"calibration data for {name!r} must have shape (N>0, "
                                    f"{', '.join(map(str, want))}) in the IR layout, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise QuantizationError("calibration data contains NaN or infinity")
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}

    def see(t, v):
        a, b = float(v.min()), float(v.max())
        lo[t] = min(lo.get(t, a), a)
        hi[t] = max(hi.get(t, b), b)

    for s in range(0, xs[0].shape[0], batch_size):
        env = {name: x[s:s + batch_size] for name, x in zip(g.inputs, xs)}
        for t, v in env.items():
            see(t, v)
        for node in g.nodes:
            v = FLOAT_KERNELS[node.op](node, *[env[t] for t in node.inputs])
            env[node.output] = v
            see(node.output, v)
    return {t: (lo[t], hi[t]) for t in lo}


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """TFLite asymmetric int8 parameters for the real range [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < MIN_RANGE:
        hi = lo + MIN_RANGE
    scale = (hi - lo) / 255.0
    zp = int(np.clip(_round_away(np.float64(-128 - lo / scale)), -128, 127))
    return float(scale), zp


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights in [-127, 127] and their float32 scales."""
    w = np.asarray(w, dtype=np.float64)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scales = np.where(amax > 0, amax / 127.0, 1.0 / 127.0).astype(np.float32)
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.clip(_round_away(w / scales.astype(np.float64).reshape(shape)), -127, 127)
    return q.astype(np.int8), scales


#: int8 power-of-two weights: 0 and +-2^0 .. +-2^POW2_MAX_EXP (2^7 = 128 does not fit)
POW2_MAX_EXP = 6


def quantize_pow2_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact int8 weights of a power-of-two layer, or None when it is not one.

    Every float weight must be 0 or +-2^e, and within each output channel the exponents
    may span at most POW2_MAX_EXP + 1 values. Channel ``c`` then gets the scale
    ``2^(max e - POW2_MAX_EXP)`` (its largest weight becomes +-64, the most int8
    resolution that keeps every weight a power of two) and int8 weights
    ``+-2^(e - max e + POW2_MAX_EXP)``; an all-zero channel gets 1/127 as
    :func:`quantize_weights` gives it. A layer of zeros only is not one (None)."""
    w = np.asarray(w, dtype=np.float32)
    if w.size == 0 or not np.all(np.isfinite(w)):
        return None
    mant, exp = np.frexp(w)
    nz = w != 0
    if not nz.any() or not np.all(np.abs(mant[nz]) == 0.5):
        return None
    e = (exp.astype(np.int64) - 1).reshape(w.shape[0], -1)
    nzc = nz.reshape(w.shape[0], -1)
    big = np.iinfo(np.int64).max
    e_max = np.where(nzc, e, -big).max(axis=1)
    e_min = np.where(nzc, e, big).min(axis=1)
    used = nzc.any(axis=1)
    if np.any(used & (e_max - e_min > POW2_MAX_EXP)):
        return None
    lo = np.where(used, e_max - POW2_MAX_EXP, 0)
    q = np.where(nzc, np.sign(w.reshape(w.shape[0], -1)) * np.ldexp(1.0, np.where(nzc, e - lo[:, None], 0)), 0)
    scales = np.where(used, np.ldexp(1.0, lo), 1.0 / 127.0).astype(np.float32)
    return q.reshape(w.shape).astype(np.int8), scales


def _multipliers(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # a multiplier beyond 2**30 only arises for degenerate (near-constant) tensors, where
    # every output saturates anyway; cap it instead of failing
    return quantize_multipliers(np.minimum(real, _MAX_MULT))


def _act_range(node: Node, scale: float, zp: int) -> tuple[int, int]:
    def q(v, default):
        if not math.isfinite(v):
            return default
        return int(np.clip(zp + _round_away(np.float64(v / scale)), -128, 127))

    lo = q(node.attrs.get("act_min", -math.inf), -128)
    hi = q(node.attrs.get("act_max", math.inf), 127)
    return lo, max(lo, hi)


def quantize(graph: Graph, calibration, *, batch_size: int = 256) -> Graph:
    """Float graph + calibration samples (IR layout: NHWC images) -> int8 graph."""
    if graph.is_int8:
        raise QuantizationError(f"{graph.name}: graph is already int8")
    g = fuse_activations(fold_batchnorm(graph))
    ranges = calibrate(g, calibration, batch_size)
    q = Graph(g.name, metadata=dict(g.metadata))
    q.metadata["quantization"] = "post-training int8 (per-channel weights, TFLite rules)"
    for t in g.inputs:
        s, z = choose_qparams(*ranges[t])
        q.add_input(t, g.tensors[t].shape, INT8, s, z)
    for n in g.nodes:
        xq = q.tensors[n.inputs[0]]
        if n.traits.passes_qparams:
            s, z = xq.scale, xq.zero_point
            attrs, params = dict(n.attrs), {}
        elif n.op == "concat":   # each input requantized to the output's parameters
            s, z = choose_qparams(*ranges[n.output])
            ins = [q.tensors[t] for t in n.inputs]
            m, sh = _multipliers(np.array([t.scale / s for t in ins]))
            attrs, params = dict(n.attrs, in_mult=[int(v) for v in m], in_shift=[int(v) for v in sh]), {}
        else:
            s, z = choose_qparams(*ranges[n.output])
            act_min, act_max = _act_range(n, s, z)
            attrs = dict(n.attrs, act_min=act_min, act_max=act_max)
            params = {}
            if n.op in LUT_FUNCTIONS:   # a table from the input's and output's parameters
                attrs, params = dict(n.attrs), dict(table=lut_table(n, xq.scale, xq.zero_point, s, z))
            elif n.op == "mul":
                bq = q.tensors[n.inputs[1]]
                m, sh = _multipliers(np.array([xq.scale * bq.scale / s]))
                attrs.update(mult=int(m[0]), shift=int(sh[0]))
            elif n.op == "add":
                bq = q.tensors[n.inputs[1]]
                p = AddParams.from_scales(xq.scale, xq.zero_point, bq.scale, bq.zero_point, s, z)
                attrs.update({k: getattr(p, k) for k in ADD_ATTRS})
            else:
                pow2 = quantize_pow2_weights(n.params["weight"])
                if pow2 is not None:
                    q.metadata.setdefault("pow2_layers", []).append(n.name)
                w, w_scales = pow2 if pow2 is not None else quantize_weights(n.params["weight"])
                bias_scale = xq.scale * w_scales.astype(np.float64)
                bias = np.clip(_round_away(n.params["bias"].astype(np.float64) / bias_scale),
                               -(2 ** 31 - 1), 2 ** 31 - 1).astype(np.int32)
                bias, _ = clamp_bias_for_int32(bias, w)
                mult, shift = _multipliers(bias_scale / s)
                params = dict(weight=w, bias=bias, w_scales=w_scales, mult=mult, shift=shift)
        q.add_node(n.op, n.name, n.inputs, attrs, params, source=n.source, output=n.output,
                   dtype=INT8, scale=s, zero_point=z)
    q.outputs = list(g.outputs)
    return q.validate()
