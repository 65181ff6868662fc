"""Importer for int8 QDQ ONNX models, as produced by ``onnxruntime.quantization.
quantize_static(..., quant_format=QuantFormat.QDQ)`` (per-tensor or per-channel weights).

A QDQ model is a float graph in which every quantized tensor passes through
``QuantizeLinear -> DequantizeLinear`` and every weight/bias is a ``DequantizeLinear``
of an int8/int32 initializer. The importer reads it back as integer arithmetic:

- ``DequantizeLinear(int8 initializer)``      -> int8 weights + per-channel scales;
- ``DequantizeLinear(int32 initializer)``     -> int32 bias (re-expressed in the scale
  ``x_scale * w_scale[c]`` if the file used another one);
- ``Conv``/``Gemm``/``MatMul``/``Add`` on dequantized tensors, optionally followed by
  ``Relu``/``Clip``, then ``QuantizeLinear`` -> one int8 IR node whose output takes the
  ``QuantizeLinear``'s scale and zero point (the activation becomes the clamp);
- ``Concat`` (channels) of dequantized tensors, then ``QuantizeLinear`` -> ``concat``,
  each input requantized to the QuantizeLinear's parameters;
- ``Sigmoid``/``HardSigmoid``/``HardSwish`` -> a 256-entry table from the input's and
  the QuantizeLinear's parameters; ``Mul`` of two dequantized tensors (same shapes or a
  per-channel gate) -> ``mul`` (TFLite MUL);
- ``MaxPool`` of a dequantized tensor -> ``max_pool`` keeping its scale and zero point;
- ``Flatten``/``Reshape``/``Squeeze`` of a dequantized tensor -> ``flatten`` keeping its
  scale and zero point; a ``QuantizeLinear`` of such a tensor with other parameters is
  absorbed by its consumers (their multipliers and biases use the actual scale; noted in
  ``graph.metadata["notes"]``);
- ``GlobalAveragePool``/``ReduceMean`` over H, W/``AveragePool`` covering the map ->
  ``global_avgpool``, other ``AveragePool`` -> ``avg_pool``; the output keeps the input's
  parameters or, as onnxruntime usually calibrates the pool output on its own, takes
  the QuantizeLinear's with one re-quantization of the integer sum (int8 attributes
  ``mult``, ``shift``; see :meth:`_QDQImporter.finish_pool`);
- ``MatMul`` followed by ``Add`` of a constant (a bias) -> one fully-connected layer.
  onnxruntime quantizes the MatMul result before adding the bias; the IR adds the bias
  in the int32 accumulator instead (one rounding and one saturation fewer, so outputs can
  differ from onnxruntime's by a few LSB on this pattern; ``Gemm`` is unaffected);
- uint8 activations are mapped exactly to int8 (``q - 128``, ``zero_point - 128``).

Weights must be symmetric (zero point 0). Everything else raises
:class:`compiler.ir.errors.UnsupportedOpError` (a ``BatchNormalization`` left in the model:
run ``onnxruntime.quantization.shape_inference.quant_pre_process`` first, which folds it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx

from compiler.frontend.common import chw_to_hwc_columns, unique_name
from compiler.frontend.onnx_common import (
    attributes,
    avg_pool_attrs,
    constants,
    conv_pads,
    input_shape,
    max_pool_attrs,
    node_name,
    node_source,
)
from compiler.ir.errors import ModelFormatError, UnsupportedOpError
from compiler.ir.graph import ADD_ATTRS, INT8, Graph, clamp_bias_for_int32
from compiler.ir.ops import LUT_FUNCTIONS, avg_pool_divisors, lut_table
from compiler.ir.qmath import AddParams, quantize_multipliers

_INT8_TYPES = {np.dtype(np.int8): 0, np.dtype(np.uint8): -128}  # dtype -> offset to int8


@dataclass
class _QConst:
    """A dequantized initializer: real = scale * (q - zero_point) along ``axis``."""
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int


@dataclass
class _Exact:
    """A float tensor that is exactly an int8 IR tensor dequantized."""
    tensor: str


@dataclass
class _Pending:
    """The float output of an integer op waiting for its QuantizeLinear."""
    op: str
    name: str
    source: str
    inputs: list[str]
    attrs: dict = field(default_factory=dict)
    weight: np.ndarray | None = None      # int8, IR layout
    w_scales: np.ndarray | None = None    # float32 [Co]
    bias_q: np.ndarray | None = None      # int32 as stored
    bias_scale: np.ndarray | None = None  # its scale per channel (None: bias_real is used)
    bias_real: np.ndarray | None = None   # float bias in real units
    lo: float = -math.inf
    hi: float = math.inf
    chw: tuple | None = None
    flatten: bool = False                 # global_avgpool: flattened before its QuantizeLinear


@dataclass
class _Node:
    """What :func:`compiler.ir.ops.lut_table` and :func:`~compiler.ir.ops.avg_pool_divisors`
    read of a node."""
    op: str
    attrs: dict


@dataclass
class _FloatInput:
    name: str
    shape: tuple


class _QDQImporter:
    def __init__(self, m: onnx.ModelProto, name: str):
        self.m = m
        self.g = Graph(name)
        self.g.metadata.update(source_format="onnx-qdq", source_layout="NCHW")
        self.consts = constants(m.graph)
        self.vals: dict[str, object] = {}     # onnx tensor -> _QConst/_Exact/_Pending/_FloatInput
        self.quant: dict[str, tuple[str, float, int]] = {}  # Q output -> (IR tensor, scale, zp)
        self.raw_inputs: dict[str, tuple] = {}  # int8/uint8 graph inputs (model takes int8)
        self.chw: dict[str, tuple] = {}
        self.notes: list[str] = []
        self.uint8 = False
        self.users: dict[str, int] = {}
        for n in m.graph.node:
            for t in n.input:
                self.users[t] = self.users.get(t, 0) + 1
        for o in m.graph.output:
            self.users[o.name] = self.users.get(o.name, 0) + 1

    def fail(self, reason: str):
        raise UnsupportedOpError(self.node.op_type, self.name, reason, self.src)

    # -- value helpers --------------------------------------------------------------------
    def val(self, onnx_name: str):
        if onnx_name in self.vals:
            return self.vals[onnx_name]
        if onnx_name in self.consts:
            return None
        raise ModelFormatError(f"{self.name}: input {onnx_name!r} is not defined")

    def exact(self, onnx_name: str, what: str = "input") -> str:
        v = self.val(onnx_name)
        if not isinstance(v, _Exact):
            kind = {type(None): "a float constant", _Pending: "an unquantized result",
                    _FloatInput: "an unquantized graph input", _QConst: "a constant"}.get(type(v), "?")
            self.fail(f"{what} {onnx_name!r} must be a dequantized int8 tensor, got {kind} "
                      "(mixed float/int8 graphs are not supported)")
        return v.tensor

    def qconst(self, onnx_name: str, what: str) -> _QConst:
        v = self.val(onnx_name)
        if not isinstance(v, _QConst):
            self.fail(f"{what} {onnx_name!r} must be a dequantized integer initializer")
        return v

    def qparams(self, n: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray]:
        if n.input[1] not in self.consts:
            self.fail("scale must be a constant")
        scale = np.asarray(self.consts[n.input[1]], dtype=np.float64)
        if len(n.input) > 2 and n.input[2]:
            if n.input[2] not in self.consts:
                self.fail("zero point must be a constant")
            zp = self.consts[n.input[2]]
        else:
            zp = np.zeros(scale.shape, np.uint8)
        return scale, zp

    def act_qparams(self, n: onnx.NodeProto) -> tuple[float, int]:
        a = attributes(n)
        if a.get("block_size", 0):
            self.fail("blocked quantization")
        scale, zp = self.qparams(n)
        if scale.size != 1 or zp.size != 1:
            self.fail("per-axis quantization of an activation tensor")
        if zp.dtype not in _INT8_TYPES:
            self.fail(f"activation type {zp.dtype} (only int8/uint8)")
        if zp.dtype == np.uint8:
            self.uint8 = True
        s = float(scale.reshape(()))
        if not (s > 0 and math.isfinite(s)):
            raise ModelFormatError(f"{self.name}: scale {s} must be positive and finite")
        return s, int(zp.reshape(())) + _INT8_TYPES[zp.dtype]

    # -- Q / DQ -------------------------------------------------------------------------
    def DequantizeLinear(self, n, a):
        src = n.input[0]
        if src in self.consts:
            q = np.asarray(self.consts[src])
            scale, zp = self.qparams(n)
            if a.get("block_size", 0):
                self.fail("blocked quantization")
            self.vals[n.output[0]] = _QConst(q, scale, np.asarray(zp), int(a.get("axis", 1)))
            return
        s, z = self.act_qparams(n)
        if src in self.quant:
            t, qs, qz = self.quant[src]
            if not (math.isclose(s, qs, rel_tol=1e-6) and z == qz):
                self.fail("DequantizeLinear parameters differ from its QuantizeLinear's")
            self.vals[n.output[0]] = _Exact(t)
        elif src in self.raw_inputs:
            shape = self.raw_inputs.pop(src)
            t = self.g.add_input(src, shape, INT8, s, z)
            self.quant[src] = (t, s, z)
            self.vals[n.output[0]] = _Exact(t)
        else:
            self.fail(f"dequantizes {src!r}, which is neither an initializer nor quantized")

    def QuantizeLinear(self, n, a):
        s, z = self.act_qparams(n)
        v = self.val(n.input[0])
        out = n.output[0]
        if isinstance(v, _FloatInput):
            t = self.g.add_input(v.name, v.shape, INT8, s, z)
        elif isinstance(v, _Pending):
            t = self.finish(v, n.input[0], s, z)
            self.vals[n.input[0]] = _Exact(t)  # a second Q of the same tensor aliases it
        elif isinstance(v, _Exact):
            t = v.tensor
            ts = self.g.tensors[t]
            if not (math.isclose(ts.scale, s, rel_tol=1e-6) and ts.zero_point == z):
                self.notes.append(f"{self.name}: re-quantization of {t!r} (s={ts.scale:.6g} "
                                  f"z={ts.zero_point} -> s={s:.6g} z={z}) absorbed by its consumers")
        else:
            self.fail(f"quantizes {n.input[0]!r}, which is not a computed tensor")
        self.quant[out] = (t, s, z)

    # -- integer ops --------------------------------------------------------------------
    def weights(self, qc: _QConst, co_axis: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        if qc.q.dtype != np.int8:
            self.fail(f"{what} of type {qc.q.dtype} (only int8 weights)")
        if np.any(np.asarray(qc.zero_point) != 0):
            self.fail(f"asymmetric {what} (zero point != 0)")
        co = qc.q.shape[co_axis]
        sc = np.asarray(qc.scale, np.float64).reshape(-1)
        if sc.size == 1:
            sc = np.full(co, sc[0])
        elif sc.size != co or (qc.axis % qc.q.ndim) != co_axis:
            self.fail(f"{what} quantized along axis {qc.axis}, expected the output-channel axis")
        if np.any(qc.q == -128):
            self.fail(f"{what} contain -128 (symmetric int8 weights lie in [-127, 127])")
        return qc.q, sc.astype(np.float32)

    def bias(self, p: _Pending, name: str | None) -> None:
        co = p.weight.shape[0]
        if not name:
            p.bias_real = np.zeros(co)
            return
        v = self.val(name)
        if isinstance(v, _QConst):
            if v.q.dtype != np.int32 or np.any(np.asarray(v.zero_point) != 0):
                self.fail("bias must be int32 with zero point 0")
            sc = np.asarray(v.scale, np.float64).reshape(-1)
            p.bias_q = v.q.reshape(-1).astype(np.int64)
            p.bias_scale = np.full(co, sc[0]) if sc.size == 1 else sc
        elif v is None:
            p.bias_real = np.asarray(self.consts[name], np.float64).reshape(-1)
        else:
            self.fail("bias must be a constant")
        size = (p.bias_q if p.bias_q is not None else p.bias_real).size
        if size != co:
            self.fail(f"bias has {size} values for {co} output channels")

    def Conv(self, n, a):
        x = self.exact(n.input[0])
        if len(self.g.tensors[x].shape) != 4:
            self.fail("input is not a 4-D feature map")
        w, ws = self.weights(self.qconst(n.input[1], "weights"), 0, "weights")
        stride, pads = conv_pads("Conv", self.name, self.src, a, w.shape,
                                 self.g.tensors[x].shape[1:3])
        p = _Pending("conv2d", self.name, self.src, [x],
                     dict(kernel=(int(w.shape[2]), int(w.shape[3])), stride=stride, **pads,
                          groups=int(a.get("group", 1))),
                     np.ascontiguousarray(w.transpose(0, 2, 3, 1)), ws)
        self.bias(p, n.input[2] if len(n.input) > 2 else None)
        self.vals[n.output[0]] = p

    def _fc(self, x: str, w: np.ndarray, ws: np.ndarray, bias_name: str | None):
        if len(self.g.tensors[x].shape) != 2:
            self.fail("input must be flattened to (N, features)")
        if x in self.chw:
            w = chw_to_hwc_columns(w, self.chw[x])
        p = _Pending("fully_connected", self.name, self.src, [x], {}, np.ascontiguousarray(w), ws)
        self.bias(p, bias_name)
        self.vals[self.node.output[0]] = p

    def Gemm(self, n, a):
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            self.fail("Gemm with alpha/beta != 1 or transA")
        x = self.exact(n.input[0])
        qc = self.qconst(n.input[1], "weights")
        if a.get("transB", 0):
            w, ws = self.weights(qc, 0, "weights")
        else:
            w, ws = self.weights(qc, 1, "weights")
            w = w.T
        self._fc(x, w, ws, n.input[2] if len(n.input) > 2 else None)

    def MatMul(self, n, a):
        x = self.exact(n.input[0])
        qc = self.qconst(n.input[1], "weights")
        if qc.q.ndim != 2:
            self.fail("MatMul with a non-matrix weight")
        w, ws = self.weights(qc, 1, "weights")
        self._fc(x, w.T, ws, None)

    def _const_real(self, name: str) -> np.ndarray | None:
        """Real value of a float or dequantized constant (None if ``name`` is a tensor)."""
        v = self.val(name)
        if v is None:
            return np.asarray(self.consts[name], np.float64)
        if isinstance(v, _QConst):
            return (v.q.astype(np.float64) - np.asarray(v.zero_point, np.float64)) * v.scale
        return None

    def Add(self, n, a):
        for t, c in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
            cv = self._const_real(c)
            if cv is not None:
                return self.add_bias(t, cv.reshape(-1))
        x, y = self.exact(n.input[0]), self.exact(n.input[1])
        if self.g.tensors[x].shape != self.g.tensors[y].shape:
            self.fail("broadcasting Add (operands must have the same shape)")
        self.vals[n.output[0]] = _Pending("add", self.name, self.src, [x, y], chw=self.chw.get(x))

    def _lut(self, op: str, attrs=None):
        x = self.exact(self.node.input[0])
        self.vals[self.node.output[0]] = _Pending(op, self.name, self.src, [x], dict(attrs or {}),
                                                  chw=self.chw.get(x))

    def Sigmoid(self, n, a):
        self._lut("sigmoid")

    def HardSigmoid(self, n, a):
        self._lut("hardsigmoid", dict(alpha=float(a.get("alpha", 0.2)), beta=float(a.get("beta", 0.5))))

    def HardSwish(self, n, a):
        self._lut("hardswish")

    def Mul(self, n, a):
        """Dequantized tensor * dequantized tensor (same shapes or a per-channel gate)."""
        x, y = self.exact(n.input[0]), self.exact(n.input[1])
        sx, sy = self.g.tensors[x].shape, self.g.tensors[y].shape
        if len(sx) == 4 and sx[1:3] == (1, 1) and sy[1:3] != (1, 1):
            x, y, sx, sy = y, x, sy, sx
        if not (sx == sy or (len(sx) == 4 and sy == (sx[0], 1, 1, sx[3]))):
            self.fail(f"broadcasting Mul of {sx} and {sy} (NHWC): only same shapes or a "
                      "per-channel gate (N, C, 1, 1)")
        self.vals[n.output[0]] = _Pending("mul", self.name, self.src, [x, y], chw=self.chw.get(x))

    def Concat(self, n, a):
        """Concat along the channels of dequantized tensors -> concat, each input
        requantized to the parameters of the QuantizeLinear that follows."""
        xs = [self.exact(i) for i in n.input]
        ranks = {len(self.g.tensors[x].shape) for x in xs}
        axis = int(a.get("axis", 1))
        if len(ranks) != 1 or axis % next(iter(ranks)) != 1:
            self.fail(f"axis={axis}: only concatenation along the channels (axis 1) is supported")
        if any(x in self.chw for x in xs):
            self.fail("Concat of flattened feature maps (NCHW order)")
        self.vals[n.output[0]] = _Pending("concat", self.name, self.src, xs)

    def add_bias(self, t: str, c: np.ndarray) -> None:
        """``MatMul (+ QDQ) + Add(constant)``: the constant becomes the fully-connected
        layer's bias. A QuantizeLinear between MatMul and Add is dropped (one rounding
        fewer than onnxruntime), noted in the metadata."""
        v = self.val(t)
        if isinstance(v, _Exact) and self.users.get(t, 0) == 1:
            prod = self.g.producer(v.tensor)
            if (prod is not None and prod.op == "fully_connected" and not self.g.consumers(v.tensor)
                    and v.tensor not in self.g.outputs and prod.attrs["act_min"] == -128
                    and prod.attrs["act_max"] == 127):
                self.g.nodes.remove(prod)
                del self.g.tensors[prod.output]
                x = self.g.tensors[prod.inputs[0]]
                ws = prod.params["w_scales"]
                v = _Pending("fully_connected", prod.name, prod.source, prod.inputs, {},
                             prod.params["weight"], ws,
                             bias_real=prod.params["bias"] * x.scale * ws.astype(np.float64))
                self.notes.append(f"{prod.name}: re-quantization before the bias Add {self.name!r} dropped")
        if not (isinstance(v, _Pending) and v.op == "fully_connected" and c.size == v.weight.shape[0]):
            self.fail("Add of a constant (only as the bias of a preceding MatMul/Gemm)")
        base = v.bias_real if v.bias_real is not None else v.bias_q * v.bias_scale
        v.bias_real, v.bias_q, v.bias_scale = base + c, None, None
        self.vals[self.node.output[0]] = v

    def _act(self, lo: float, hi: float):
        v = self.val(self.node.input[0])
        if isinstance(v, _Pending) and v.op in ("conv2d", "fully_connected", "add"):
            v.lo, v.hi = max(v.lo, lo), min(v.hi, hi)
            self.vals[self.node.output[0]] = v
            return
        if isinstance(v, _Exact):
            prod = self.g.producer(v.tensor)
            t = self.g.tensors[v.tensor]
            if prod is not None and prod.op in ("conv2d", "fully_connected", "add") and not self.g.consumers(v.tensor):
                if math.isfinite(lo):
                    prod.attrs["act_min"] = max(prod.attrs["act_min"], min(127, t.zero_point + math.ceil(lo / t.scale - 1e-9)))
                if math.isfinite(hi):
                    prod.attrs["act_max"] = min(prod.attrs["act_max"], max(-128, t.zero_point + math.floor(hi / t.scale + 1e-9)))
                prod.attrs["act_max"] = max(prod.attrs["act_min"], prod.attrs["act_max"])
                self.vals[self.node.output[0]] = v
                return
        self.fail("activation must follow a conv, linear or add layer")

    def Relu(self, n, a):
        self._act(0.0, math.inf)

    def Clip(self, n, a):
        lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
        for i, which in ((1, "min"), (2, "max")):
            if len(n.input) > i and n.input[i]:
                c = self.consts.get(n.input[i])
                if c is None:
                    v = self.val(n.input[i])
                    if not isinstance(v, _QConst):
                        self.fail(f"Clip {which} must be a constant")
                    c = (v.q.astype(np.float64) - v.zero_point) * v.scale
                if which == "min":
                    lo = float(np.asarray(c).reshape(()))
                else:
                    hi = float(np.asarray(c).reshape(()))
        self._act(lo, hi)

    # -- pooling and shape ops --------------------------------------------------------------
    def _same_q(self, op: str, x: str, chw=None, attrs=None) -> None:
        t = self.g.tensors[x]
        out = self.g.add_node(op, unique_name(self.g, self.name), [x], attrs, source=self.src,
                              output=unique_name(self.g, self.node.output[0]),
                              dtype=INT8, scale=t.scale, zero_point=t.zero_point)
        if chw is not None:
            self.chw[out] = chw
        self.vals[self.node.output[0]] = _Exact(out)

    def _pool(self, x: str, flatten: bool):
        if len(self.g.tensors[x].shape) != 4:
            self.fail("input is not a 4-D feature map")
        self.vals[self.node.output[0]] = _Pending("global_avgpool", self.name, self.src, [x],
                                                  flatten=flatten)

    def MaxPool(self, n, a):
        x = self.exact(n.input[0])
        attrs = max_pool_attrs(n, a, self.name, self.src, len(self.g.tensors[x].shape),
                               self.g.tensors[x].shape[1:3])
        self._same_q("max_pool", x, attrs=attrs)

    def GlobalAveragePool(self, n, a):
        self._pool(self.exact(n.input[0]), False)

    def AveragePool(self, n, a):
        x = self.exact(n.input[0])
        attrs = avg_pool_attrs(n, a, self.name, self.src, self.g.tensors[x].shape)
        if attrs is None:
            self._pool(x, False)
        else:
            self.vals[n.output[0]] = _Pending("avg_pool", self.name, self.src, [x], attrs)

    def ReduceMean(self, n, a):
        x = self.exact(n.input[0])
        axes = a.get("axes")
        if len(n.input) > 1 and n.input[1]:
            axes = np.asarray(self.consts.get(n.input[1])).tolist()
        if axes is None or {int(d) % 4 for d in axes} != {2, 3}:
            self.fail(f"ReduceMean over axes {axes} (only the spatial axes 2, 3)")
        self._pool(x, not a.get("keepdims", 1))

    def _flatten(self, name: str):
        v = self.val(name)
        if isinstance(v, _Pending) and v.op == "global_avgpool":
            v.flatten = True  # (N, C, 1, 1) -> (N, C): nothing to reorder
            self.vals[self.node.output[0]] = v
            return
        x = self.exact(name)
        xs = self.g.tensors[x].shape
        if len(xs) == 2:
            self.vals[self.node.output[0]] = _Exact(x)
            return
        chw = None if xs[1] * xs[2] == 1 else (xs[3], xs[1], xs[2])
        self._same_q("flatten", x, chw)

    def _shape_of(self, name: str) -> tuple:
        v = self.val(name)
        if isinstance(v, _Pending) and v.op == "global_avgpool":
            c = self.g.tensors[v.inputs[0]].shape[3]
            return (1, c) if v.flatten else (1, 1, 1, c)
        return self.g.tensors[self.exact(name)].shape

    def Flatten(self, n, a):
        if a.get("axis", 1) != 1:
            self.fail(f"Flatten axis={a.get('axis')} (only 1)")
        self._flatten(n.input[0])

    def Reshape(self, n, a):
        xs = self._shape_of(n.input[0])
        if n.input[1] not in self.consts:
            self.fail("shape must be a constant")
        shape = [int(d) for d in np.asarray(self.consts[n.input[1]]).tolist()]
        feat = int(np.prod(xs[1:]))
        if len(shape) != 2 or shape[0] not in (-1, 0, 1) or shape[1] not in (-1, feat):
            self.fail(f"Reshape to {shape}: only flattening to (N, features) is supported")
        self._flatten(n.input[0])

    def Squeeze(self, n, a):
        xs = self._shape_of(n.input[0])
        if len(xs) != 4 or xs[1:3] != (1, 1):
            self.fail("Squeeze is only supported on the 1x1 spatial axes")
        self._flatten(n.input[0])

    def Identity(self, n, a):
        self.vals[n.output[0]] = self.val(n.input[0])

    # -- finishing an integer op when its QuantizeLinear arrives ---------------------------
    def finish(self, p: _Pending, onnx_out: str, s: float, z: int) -> str:
        def q(v, default, rnd):
            return default if not math.isfinite(v) else int(np.clip(z + rnd(v / s), -128, 127))
        act_min = q(p.lo, -128, lambda r: math.ceil(r - 1e-9))
        act_max = max(act_min, q(p.hi, 127, lambda r: math.floor(r + 1e-9)))
        if p.op in ("global_avgpool", "avg_pool"):
            return self.finish_pool(p, onnx_out, s, z)
        attrs = dict(p.attrs, act_min=act_min, act_max=act_max)
        params = {}
        if p.op == "concat":
            try:
                m, sh = quantize_multipliers([self.g.tensors[t].scale / s for t in p.inputs])
            except ValueError as e:
                raise ModelFormatError(f"{p.name}: {e}") from e
            attrs = dict(in_mult=[int(v) for v in m], in_shift=[int(v) for v in sh])
        elif p.op in LUT_FUNCTIONS:
            x = self.g.tensors[p.inputs[0]]
            attrs = dict(p.attrs)
            params = dict(table=lut_table(_Node(p.op, attrs), x.scale, x.zero_point, s, z))
        elif p.op == "mul":
            a, b = (self.g.tensors[t] for t in p.inputs)
            try:
                (m,), (sh,) = quantize_multipliers([a.scale * b.scale / s])
            except ValueError as e:
                raise ModelFormatError(f"{p.name}: {e}") from e
            attrs.update(mult=int(m), shift=int(sh))
        elif p.op == "add":
            a, b = (self.g.tensors[t] for t in p.inputs)
            ap = AddParams.from_scales(a.scale, a.zero_point, b.scale, b.zero_point, s, z)
            attrs.update({k: getattr(ap, k) for k in ADD_ATTRS})
        else:
            x = self.g.tensors[p.inputs[0]]
            want = x.scale * p.w_scales.astype(np.float64)
            if p.bias_q is not None and np.allclose(p.bias_scale, want, rtol=1e-6, atol=0):
                bias = p.bias_q
            else:
                real = p.bias_real if p.bias_real is not None else p.bias_q * p.bias_scale
                bias = np.rint(real / want)
            bias = np.clip(bias, -(2 ** 31 - 1), 2 ** 31 - 1).astype(np.int32)
            bias, n = clamp_bias_for_int32(bias, p.weight)
            if n:
                self.notes.append(f"{p.name}: {n} bias value(s) clamped to fit int32 accumulators")
            try:
                mult, shift = quantize_multipliers(want / s)
            except ValueError as e:
                raise ModelFormatError(f"{p.name}: {e}") from e
            params = dict(weight=p.weight, bias=bias, w_scales=p.w_scales, mult=mult, shift=shift)
        out = unique_name(self.g, onnx_out)
        name = unique_name(self.g, p.name)
        self.g.add_node(p.op, name, p.inputs, attrs, params, source=p.source, output=out,
                        dtype=INT8, scale=s, zero_point=z)
        if p.chw is not None:
            self.chw[out] = p.chw
        return out

    def finish_pool(self, p: _Pending, onnx_out: str, s: float, z: int) -> str:
        """Average pool (global or windowed) whose output is quantized. With the input's
        parameters the output keeps them; with others (onnxruntime calibrates the pool
        output on its own) the integer sum is re-quantized once: int8 attributes ``mult``,
        ``shift``, one Q31 multiplier of ``x_scale / (count * s)`` per divisor
        (:func:`compiler.ir.ops.avg_pool_divisors`)."""
        x = self.g.tensors[p.inputs[0]]
        out = unique_name(self.g, onnx_out + ("_pool" if p.flatten else ""))
        name = unique_name(self.g, p.name)
        attrs = dict(p.attrs)
        if math.isclose(x.scale, s, rel_tol=1e-6) and x.zero_point == z:
            s, z = x.scale, x.zero_point
        else:
            divs = avg_pool_divisors(_Node(p.op, attrs), x.shape)
            try:
                m, sh = quantize_multipliers([x.scale / (d * s) for d in divs])
            except ValueError as e:
                raise ModelFormatError(f"{p.name}: {e}") from e
            attrs.update(mult=[int(v) for v in m], shift=[int(v) for v in sh])
        t = self.g.add_node(p.op, name, p.inputs, attrs, source=p.source, output=out,
                            dtype=INT8, scale=s, zero_point=z)
        if p.flatten:
            pt = self.g.tensors[t]
            t = self.g.add_node("flatten", unique_name(self.g, name + "_flatten"), [t],
                                source=p.source, output=unique_name(self.g, onnx_out),
                                dtype=INT8, scale=pt.scale, zero_point=pt.zero_point)
        return t

    # -- driver -----------------------------------------------------------------------------
    def run(self) -> Graph:
        gr = self.m.graph
        for vi in gr.input:
            if vi.name in self.consts:
                continue
            s = input_shape(vi)
            if len(s) == 4:
                ir = (1, s[2], s[3], s[1])
            elif len(s) == 2:
                ir = (1, s[1])
            else:
                raise ModelFormatError(f"input {vi.name!r} of shape {s}: expected (N,C,H,W) or (N,F)")
            et = vi.type.tensor_type.elem_type
            if et == onnx.TensorProto.FLOAT:
                self.vals[vi.name] = _FloatInput(vi.name, ir)
            elif et in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
                self.raw_inputs[vi.name] = ir
            else:
                raise ModelFormatError(f"input {vi.name!r}: unsupported element type {et}")
        for i, n in enumerate(gr.node):
            if n.op_type == "Constant":
                continue
            self.node, self.name, self.src = n, node_name(n, i), node_source(n)
            if n.domain not in ("", "ai.onnx"):
                self.fail(f"operator domain {n.domain!r}")
            handler = getattr(self, n.op_type, None)
            if handler is None or not n.op_type[0].isupper():
                if n.op_type == "BatchNormalization":
                    self.fail("BatchNormalization in a QDQ model (fold it before quantizing, e.g. "
                              "with onnxruntime.quantization.shape_inference.quant_pre_process)")
                ops = sorted(k for k in dir(type(self)) if k[:1].isupper() and callable(getattr(self, k)))
                self.fail("operator not supported in QDQ models; supported operators: " + ", ".join(ops))
            handler(n, attributes(n))
        for o in gr.output:
            v = self.vals.get(o.name)
            if isinstance(v, _Exact):
                self.g.outputs.append(v.tensor)
            elif o.name in self.quant:
                self.g.outputs.append(self.quant[o.name][0])
            else:
                raise UnsupportedOpError("output", o.name, "graph output is not a quantized tensor")
            if self.g.outputs[-1] in self.chw:
                raise UnsupportedOpError("output", o.name, "a flattened feature map (NCHW order) "
                                         "as graph output")
        if self.raw_inputs:
            raise ModelFormatError(f"integer inputs {sorted(self.raw_inputs)} are never dequantized")
        if self.uint8:
            self.notes.append("uint8 activations mapped to int8 (q - 128): feed inputs as int8")
        if self.notes:
            self.g.metadata["notes"] = self.notes
        return self.g.validate()


def import_qdq(m: onnx.ModelProto, name: str) -> Graph:
    """QDQ ONNX model -> int8 IR graph (see module doc)."""
    return _QDQImporter(m, name).run()
