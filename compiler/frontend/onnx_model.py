"""ONNX importer: float models (-> float IR, optionally int8 via post-training
quantization) and QDQ int8 models (-> int8 IR, see :mod:`.onnx_qdq`).

Float operators: ``Conv`` (2-D, groups, kernel, strides and pads per axis, the two sides
of an axis may differ, no dilation; ``auto_pad`` VALID, SAME_UPPER, SAME_LOWER),
``Pad`` (constant, of H and W only: folded into the Conv (zeros) or MaxPool (-inf) it
feeds, refused before anything else), ``BatchNormalization``
(inference), ``Relu``, ``Clip`` (constant bounds), ``Add`` (tensor + tensor),
``GlobalAveragePool``, ``ReduceMean`` over H and W, ``AveragePool`` (covering the whole
map: global pooling; else per-axis kernel, strides and pads, count_include_pad either
way, floor mode), ``MaxPool`` (2-D, per-axis strides and pads, no dilation, floor mode, no Indices),
``Flatten``/``Reshape``/``Squeeze`` to (N, features), ``Gemm`` (alpha = beta = 1,
constant B), ``MatMul`` with a constant matrix (+ a following ``Add`` of a constant bias),
``Identity``, ``Dropout``. Anything else raises
:class:`compiler.ir.errors.UnsupportedOpError` with the op type, the node name and, for
models exported from PyTorch, the module scope recorded by the exporter.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx

from compiler.frontend.common import (
    NO_ACT,
    chw_to_hwc_columns,
    chw_to_hwc_vector,
    nchw_to_nhwc,
    pad_attrs,
    unique_name,
)
from compiler.frontend.onnx_common import (
    attributes,
    avg_pool_attrs,
    constants,
    conv_pads,
    input_shape,
    max_pool_attrs,
    node_name,
    node_source,
    read_model,
)
from compiler.ir.errors import GraphError, ModelFormatError, UnsupportedOpError
from compiler.ir.graph import FLOAT32, Graph
from compiler.ir.qmath import hw, pad_end_hw


class _FloatImporter:
    def __init__(self, m: onnx.ModelProto, name: str):
        self.m = m
        self.g = Graph(name)
        self.g.metadata.update(source_format="onnx", source_layout="NCHW")
        self.consts = constants(m.graph)
        self.alias: dict[str, str] = {}       # onnx tensor -> IR tensor
        self.chw: dict[str, tuple] = {}        # IR vector tensors holding a flattened C x H x W map
        self.pending_pads: dict[str, tuple] = {}   # Pad output -> (x, pads, value, name, src)
        self.users: dict[str, int] = {}
        for n in m.graph.node:
            for t in n.input:
                self.users[t] = self.users.get(t, 0) + 1
        for o in m.graph.output:
            self.users[o.name] = self.users.get(o.name, 0) + 1

    def fail(self, reason: str):
        raise UnsupportedOpError(self.node.op_type, self.name, reason, self.src)

    def t(self, onnx_name: str) -> str:
        if onnx_name in self.pending_pads:
            _, pads, value, name, src = self.pending_pads[onnx_name]
            raise UnsupportedOpError("Pad", name, f"padding {pads} (top, left, bottom, right) "
                                     f"with {value} read by {self.node.op_type} {self.name!r}: "
                                     "only a Conv (zeros) or MaxPool (-inf) directly after it "
                                     "can fold it", src)
        if onnx_name in self.consts:
            self.fail(f"constant operand {onnx_name!r} where a tensor is expected")
        if onnx_name not in self.alias:
            raise ModelFormatError(f"{self.name}: input {onnx_name!r} is not defined")
        return self.alias[onnx_name]

    def const(self, onnx_name: str, what: str) -> np.ndarray:
        if onnx_name not in self.consts:
            self.fail(f"{what} must be a constant initializer")
        return self.consts[onnx_name]

    def emit(self, op, inputs, attrs=None, params=None, chw=None) -> None:
        out = self.node.output[0]
        name = unique_name(self.g, self.name)
        tname = out if out not in self.g.tensors else unique_name(self.g, out)
        self.alias[out] = self.g.add_node(op, name, inputs, attrs, params, source=self.src,
                                          output=tname)
        if chw is not None:
            self.chw[self.alias[out]] = chw

    def rank(self, t: str) -> int:
        return len(self.g.tensors[t].shape)

    def padded(self, onnx_name: str, value_ok, what: str):
        """(IR tensor, (top, left, bottom, right) pads of a Pad before it, (H, W) after
        that Pad) of a Conv / MaxPool input; a Pad whose value fails ``value_ok`` is
        refused."""
        if onnx_name not in self.pending_pads:
            x = self.t(onnx_name)
            return x, (0, 0, 0, 0), self.g.tensors[x].shape[1:3]
        x, pads, value, name, src = self.pending_pads[onnx_name]
        if not value_ok(value):
            raise UnsupportedOpError("Pad", name, f"padding with {value} before "
                                     f"{self.node.op_type} {self.name!r}: only {what} padding "
                                     "folds into it", src)
        h, w = self.g.tensors[x].shape[1:3]
        return x, pads, (h + pads[0] + pads[2], w + pads[1] + pads[3])

    def fold_pads(self, pads: dict, extra) -> dict:
        """IR padding attributes ``pads`` plus (top, left, bottom, right) ``extra``."""
        (t, left), (b, r) = hw(pads["pad"]), pad_end_hw(pads)
        return pad_attrs(self.node.op_type, self.name, self.src,
                         (t + extra[0], left + extra[1], b + extra[2], r + extra[3]))

    # -- ops ------------------------------------------------------------------------------
    def Pad(self, n, a):
        """Kept pending: the Conv / MaxPool that reads it folds it into its padding."""
        x = self.t(n.input[0])
        if a.get("mode", "constant") != "constant":
            self.fail(f"mode={a['mode']!r} (only constant padding)")
        if len(n.input) > 3 and n.input[3]:
            self.fail("the axes input (pads of all axes only)")
        pads = a["pads"] if "pads" in a else self.const(n.input[1], "pads")
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        value = (float(np.asarray(self.const(n.input[2], "constant_value")).reshape(-1)[0])
                 if len(n.input) > 2 and n.input[2] else float(a.get("value", 0.0)))
        if self.rank(x) != 4 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            self.fail(f"pads={pads}: only H and W of a 4-D feature map")
        if min(pads) < 0:
            self.fail(f"negative pads {pads} (cropping)")
        self.pending_pads[n.output[0]] = (x, (pads[2], pads[3], pads[6], pads[7]), value,
                                          self.name, self.src)

    def Conv(self, n, a):
        x, extra, in_hw = self.padded(n.input[0], lambda v: v == 0, "zero")
        if self.rank(x) != 4:
            self.fail("input is not a 4-D feature map")
        w = np.asarray(self.const(n.input[1], "weight"), dtype=np.float32)
        stride, pads = conv_pads("Conv", self.name, self.src, a, w.shape, in_hw)
        pads = self.fold_pads(pads, extra) if any(extra) else pads
        b = (np.asarray(self.const(n.input[2], "bias"), np.float32)
             if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0], np.float32))
        attrs = dict(kernel=(int(w.shape[2]), int(w.shape[3])), stride=stride, **pads,
                     groups=int(a.get("group", 1)), **NO_ACT)
        self.emit("conv2d", [x], attrs, dict(weight=np.ascontiguousarray(w.transpose(0, 2, 3, 1)), bias=b))

    def BatchNormalization(self, n, a):
        if a.get("training_mode", 0):
            self.fail("training_mode=1")
        x = self.t(n.input[0])
        gamma, beta, mean, var = (np.asarray(self.const(i, "BatchNormalization parameter"), np.float32)
                                  for i in n.input[1:5])
        if x in self.chw:  # per-feature statistics of a flattened NCHW map
            gamma, beta, mean, var = (chw_to_hwc_vector(v, self.chw[x]) for v in (gamma, beta, mean, var))
        self.emit("batch_norm", [x], dict(eps=float(a.get("epsilon", 1e-5))),
                  dict(mean=mean, var=var, gamma=gamma, beta=beta), chw=self.chw.get(x))

    def Relu(self, n, a):
        x = self.t(n.input[0])
        self.emit("clip", [x], dict(min=0.0, max=math.inf), chw=self.chw.get(x))

    def Clip(self, n, a):
        x = self.t(n.input[0])
        lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
        if len(n.input) > 1 and n.input[1]:
            lo = float(self.const(n.input[1], "Clip min"))
        if len(n.input) > 2 and n.input[2]:
            hi = float(self.const(n.input[2], "Clip max"))
        if not lo <= hi:
            self.fail(f"empty clip range [{lo}, {hi}]")
        self.emit("clip", [x], dict(min=float(lo), max=float(hi)), chw=self.chw.get(x))

    def Add(self, n, a):
        ins = list(n.input)
        const = [i for i in ins if i in self.consts]
        if len(const) == 1:
            return self.add_bias(ins, const[0])
        if const:
            self.fail("Add of two constants")
        x, y = self.t(ins[0]), self.t(ins[1])
        if self.g.tensors[x].shape != self.g.tensors[y].shape:
            self.fail("broadcasting Add (operands must have the same shape)")
        if self.chw.get(x) != self.chw.get(y):
            self.fail("Add of a flattened map and a vector")
        self.emit("add", [x, y], dict(NO_ACT), chw=self.chw.get(x))

    def Sigmoid(self, n, a):
        x = self.t(n.input[0])
        self.emit("sigmoid", [x], chw=self.chw.get(x))

    def HardSigmoid(self, n, a):
        x = self.t(n.input[0])
        self.emit("hardsigmoid", [x], dict(alpha=float(a.get("alpha", 0.2)), beta=float(a.get("beta", 0.5))),
                  chw=self.chw.get(x))

    def HardSwish(self, n, a):
        x = self.t(n.input[0])
        self.emit("hardswish", [x], chw=self.chw.get(x))

    def Mul(self, n, a):
        """tensor * tensor: same shapes, or a per-channel gate (N, C, 1, 1) over a map."""
        if any(i in self.consts for i in n.input):
            self.fail("Mul by a constant (only tensor * tensor is supported)")
        x, y = self.t(n.input[0]), self.t(n.input[1])
        sx, sy = self.g.tensors[x].shape, self.g.tensors[y].shape
        if len(sx) == 4 and sx[1:3] == (1, 1) and sy[1:3] != (1, 1):
            x, y, sx, sy = y, x, sy, sx   # the gate second
        if not (sx == sy or (len(sx) == 4 and sy == (sx[0], 1, 1, sx[3]))):
            self.fail(f"broadcasting Mul of {sx} and {sy} (NHWC): only same shapes or a "
                      "per-channel gate (N, C, 1, 1)")
        if self.chw.get(x) != self.chw.get(y):
            self.fail("Mul of a flattened map and a vector")
        self.emit("mul", [x, y], dict(NO_ACT), chw=self.chw.get(x))

    def Concat(self, n, a):
        """Concat along the channels (axis 1 of NCHW / of (N, F)): the IR's last axis."""
        xs = [self.t(i) for i in n.input]
        ranks = {self.rank(x) for x in xs}
        axis = int(a.get("axis", 1))
        if len(ranks) != 1 or axis % next(iter(ranks)) != 1:
            self.fail(f"axis={axis}: only concatenation along the channels (axis 1) is supported")
        if any(x in self.chw for x in xs):
            self.fail("Concat of flattened feature maps (NCHW order)")
        if len(xs) == 1:
            self.alias[n.output[0]] = xs[0]
            return
        self.emit("concat", xs)

    def add_bias(self, ins, cname):
        """MatMul + Add(constant) -> bias of the fully_connected node."""
        xin = ins[0] if ins[1] == cname else ins[1]
        x = self.t(xin)
        prod = self.g.producer(x)
        c = np.asarray(self.consts[cname], np.float32).reshape(-1)
        if (prod is None or prod.op != "fully_connected" or self.users.get(xin, 0) != 1
                or c.size != prod.params["bias"].size):
            self.fail("Add of a constant (only as the bias of a preceding MatMul)")
        prod.params["bias"] = (prod.params["bias"] + c).astype(np.float32)
        self.alias[self.node.output[0]] = x

    def GlobalAveragePool(self, n, a):
        x = self.t(n.input[0])
        if self.rank(x) != 4:
            self.fail("input is not a 4-D feature map")
        self.emit("global_avgpool", [x])

    def ReduceMean(self, n, a):
        x = self.t(n.input[0])
        axes = a.get("axes")
        if len(n.input) > 1 and n.input[1]:
            axes = self.const(n.input[1], "axes").tolist()
        if self.rank(x) != 4 or axes is None or {int(d) % 4 for d in axes} != {2, 3}:
            self.fail(f"ReduceMean over axes {axes} (only the spatial axes 2, 3)")
        keep = a.get("keepdims", 1)
        self.emit("global_avgpool", [x])
        if not keep:
            out = self.node.output[0]
            self.alias[out] = self.g.add_node("flatten", unique_name(self.g, self.name + "_flatten"),
                                              [self.alias[out]], source=self.src,
                                              output=unique_name(self.g, out + "_flat"))

    def MaxPool(self, n, a):
        x, extra, in_hw = self.padded(n.input[0], lambda v: v <= float(np.finfo(np.float32).min),
                                      "-inf")
        attrs = max_pool_attrs(n, a, self.name, self.src, self.rank(x), in_hw)
        if any(extra):
            attrs.update({"pad_end": None} | self.fold_pads(attrs, extra))
            attrs = {k: v for k, v in attrs.items() if v is not None}
        self.emit("max_pool", [x], attrs)

    def AveragePool(self, n, a):
        x = self.t(n.input[0])
        attrs = avg_pool_attrs(n, a, self.name, self.src, self.g.tensors[x].shape)
        if attrs is None:
            self.emit("global_avgpool", [x])
        else:
            self.emit("avg_pool", [x], attrs)

    def _flatten_to(self, x: str, out_shape) -> None:
        xs = self.g.tensors[x].shape
        if len(xs) == 2:
            self.alias[self.node.output[0]] = x
            return
        chw = None if xs[1] * xs[2] == 1 else (xs[3], xs[1], xs[2])
        self.emit("flatten", [x], chw=chw)

    def Flatten(self, n, a):
        x = self.t(n.input[0])
        if a.get("axis", 1) != 1:
            self.fail(f"Flatten axis={a.get('axis')} (only 1)")
        self._flatten_to(x, None)

    def Reshape(self, n, a):
        x = self.t(n.input[0])
        shape = [int(d) for d in self.const(n.input[1], "shape").tolist()]
        xs = self.g.tensors[x].shape
        feat = int(np.prod(xs[1:]))
        if len(shape) != 2 or shape[0] not in (-1, 0, 1) or shape[1] not in (-1, feat):
            self.fail(f"Reshape to {shape}: only flattening to (N, features) is supported")
        self._flatten_to(x, shape)

    def Squeeze(self, n, a):
        x = self.t(n.input[0])
        axes = a.get("axes")
        if len(n.input) > 1 and n.input[1]:
            axes = self.const(n.input[1], "axes").tolist()
        xs = self.g.tensors[x].shape
        if self.rank(x) != 4 or xs[1:3] != (1, 1) or axes is None or {int(d) % 4 for d in axes} != {2, 3}:
            self.fail("Squeeze is only supported on the 1x1 spatial axes")
        self._flatten_to(x, None)

    def Gemm(self, n, a):
        x = self.t(n.input[0])
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            self.fail("Gemm with alpha/beta != 1 or transA")
        w = np.asarray(self.const(n.input[1], "Gemm B"), np.float32)
        if not a.get("transB", 0):
            w = w.T
        b = (np.asarray(self.const(n.input[2], "Gemm C"), np.float32).reshape(-1)
             if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0], np.float32))
        self.fc(x, w, b)

    def MatMul(self, n, a):
        x = self.t(n.input[0])
        w = np.asarray(self.const(n.input[1], "MatMul B"), np.float32)
        if w.ndim != 2:
            self.fail("MatMul with a non-matrix constant")
        self.fc(x, w.T, np.zeros(w.shape[1], np.float32))

    def fc(self, x, w, b):
        if self.rank(x) != 2:
            self.fail("input must be flattened to (N, features)")
        if b.shape != (w.shape[0],):
            self.fail(f"bias of shape {b.shape} for {w.shape[0]} outputs")
        if x in self.chw:
            w = chw_to_hwc_columns(w, self.chw[x])
        self.emit("fully_connected", [x], dict(NO_ACT), dict(weight=np.ascontiguousarray(w), bias=b))

    def Identity(self, n, a):
        self.alias[n.output[0]] = self.t(n.input[0])

    def Dropout(self, n, a):
        self.alias[n.output[0]] = self.t(n.input[0])

    # -- driver -----------------------------------------------------------------------------
    def run(self) -> Graph:
        gr = self.m.graph
        for vi in gr.input:
            if vi.name in self.consts:
                continue
            if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                raise ModelFormatError(f"input {vi.name!r}: expected float32")
            s = input_shape(vi)
            if len(s) == 4:
                ir = (1, s[2], s[3], s[1])
            elif len(s) == 2:
                ir = (1, s[1])
            else:
                raise ModelFormatError(f"input {vi.name!r} of shape {s}: expected (N,C,H,W) or (N,F)")
            self.alias[vi.name] = self.g.add_input(vi.name, ir, FLOAT32)
        for i, n in enumerate(gr.node):
            if n.op_type == "Constant":
                continue
            self.node, self.name, self.src = n, node_name(n, i), node_source(n)
            if n.domain not in ("", "ai.onnx"):
                self.fail(f"operator domain {n.domain!r}")
            handler = getattr(self, n.op_type, None)
            if handler is None or not n.op_type[0].isupper():
                self.fail("operator not supported; supported operators: " + ", ".join(supported_ops(self)))
            handler(n, attributes(n))
        for o in gr.output:
            if o.name not in self.alias:
                raise ModelFormatError(f"graph output {o.name!r} is not produced")
            t = self.alias[o.name]
            if t in self.chw:
                raise UnsupportedOpError("output", o.name, "a flattened feature map (NCHW order) as "
                                         "graph output")
            self.g.outputs.append(t)
        return self.g.validate()


def supported_ops(importer) -> list[str]:
    """The ONNX operators an importer handles (its methods named like op types)."""
    return sorted(k for k in dir(type(importer)) if k[:1].isupper() and callable(getattr(importer, k)))


def is_qdq(m: onnx.ModelProto) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in m.graph.node)


def load_onnx(model, *, calibration=None, name: str | None = None):
    """Import an ONNX model (path or ModelProto).

    QDQ models give an int8 graph directly. Float models give a float graph, or, with
    ``calibration`` samples in the ONNX input layout ((N, C, H, W)), the int8 graph
    produced by :func:`compiler.quantize.ptq.quantize`."""
    m = read_model(model)
    if name is None:
        name = Path(str(model)).stem if not isinstance(model, onnx.ModelProto) else (m.graph.name or "model")
    try:
        if is_qdq(m):
            from compiler.frontend.onnx_qdq import import_qdq
            return import_qdq(m, name)
        g = _FloatImporter(m, name).run()
    except GraphError as e:  # shapes that do not chain (e.g. a Conv group count that does not fit)
        raise ModelFormatError(f"{name}: {e}") from e
    if calibration is None:
        return g
    from compiler.quantize.ptq import quantize
    return quantize(g, nchw_to_nhwc(calibration))
