"""The compiler's intermediate representation: a graph of nodes over typed tensors.

A :class:`Graph` is a list of :class:`Node` in topological order, over named
:class:`Tensor` s. Importers (``compiler.frontend``) build graphs; ``compiler.quantize.ptq``
turns a float graph into an int8 graph; ``compiler.ref.executor`` executes int8 graphs;
later stages (autodiff, memory planning, code generation) consume int8 graphs.

Conventions
-----------
- Activation tensors are NHWC (feature maps) or NC (vectors). ``Tensor.shape`` holds the
  shape of **one sample** with a leading batch dimension of 1, e.g. ``(1, 64, 64, 16)``;
  executors accept any batch size N in that first position.
- Weights are OHWI (``conv2d``; depthwise: ``(C, kh, kw, 1)``) or ``(Co, Ci)``
  (``fully_connected``).
- A *float* graph has float32 tensors and float32 weights; it may contain the float-only
  ops ``batch_norm`` and ``clip``. An *int8* graph has only int8 tensors, each with a
  per-tensor ``scale`` and ``zero_point`` (real = scale * (q - zero_point)), and only the
  int8 ops below.

Operators (``Node.op``), their attributes and parameters
--------------------------------------------------------
``conv2d``          x[1,H,W,Ci] -> y[1,Ho,Wo,Co]; also depthwise and grouped convolution.
    attrs:  kernel (kh, kw), stride (int: both axes, or per axis [sh, sw]), pad (int:
            all four sides, or per axis [ph, pw]: ph rows above and below, pw columns
            left and right; see :func:`compiler.ir.qmath.hw`), optional pad_end (int
            or [pb, pr]: pb rows below, pr columns right, present only when a side
            differs from pad, e.g. TensorFlow's 'same' at stride 2; the output size
            uses both sides, the kernels only the leading pad and the output size; see
            :func:`compiler.ir.qmath.pad_end_hw`; max_pool takes it too),
            groups, act_min, act_max (float clamp in float graphs, -inf/inf = none;
            int8 output clamp in int8 graphs, ReLU/ReLU6 folded in)
    params: float: weight f32 [Co,kh,kw,Ci/groups], bias f32 [Co]
            int8:  weight i8 (values in [-127,127]), bias i32 (scale x_scale*w_scales[c]),
                   w_scales f32 [Co], mult i32 [Co], shift i32 [Co] (Q31 multiplier of
                   x_scale*w_scales[c]/y_scale, see :mod:`compiler.ir.qmath`)
            optional weight_codebook i8 [16]: the layer is stored at 4 bits, every
                   weight is one of these values (:mod:`compiler.quantize.codebook`)
``fully_connected`` x[1,Ci] -> y[1,Co]; attrs act_min, act_max; params as conv2d with
                    weight [Co, Ci].
``add``             (a, b) -> y, same shapes; attrs act_min, act_max; int8 graphs also
                    carry the fixed-point parameters of :class:`compiler.ir.qmath.AddParams`
                    as attrs z1, z2, zo, m1, s1, m2, s2, mo, so.
``global_avgpool``  x[1,H,W,C] -> y[1,1,1,C]; int8: y keeps x's scale and zero point,
                    or (attrs mult, shift: one Q31 multiplier of s_x / (H*W*s_y)) has its own.
``avg_pool``        x[1,H,W,C] -> y[1,Ho,Wo,C], the mean of each window; attrs kernel,
                    stride, pad (as max_pool), count_include_pad; int8 as global_avgpool
                    (mult, shift: one per divisor, :func:`compiler.ir.ops.avg_pool_divisors`).
``concat``          (x_0, ..., x_k) -> y along the last axis (channels: torch.cat(dim=1)
                    of NCHW); int8: each input is requantized to y's scale and zero point,
                    attrs in_mult, in_shift (one Q31 multiplier of x_scale/y_scale per
                    input, see :func:`compiler.ref.ops.concat`).
``mul``             (a, b) -> a * b, b of a's shape or [1,1,1,C] (broadcast over H, W);
                    attrs act_min, act_max; int8 also mult, shift (TFLite MUL:
                    requant((a - za) * (b - zb)) with the multiplier of sa * sb / s_y).
``sigmoid``, ``hardsigmoid`` (attrs alpha, beta: clip(alpha * x + beta, 0, 1)),
``hardswish``       elementwise; int8: param table (int8 [256], built from the input's
                    and output's parameters, see :func:`compiler.ir.ops.lut_table`).
``flatten``         x[1,H,W,C] -> y[1,H*W*C] in NHWC order (free: no data movement);
                    int8: same scale and zero point.
``batch_norm``      (float only) x -> y per channel (last axis); attrs eps; params mean,
                    var, gamma, beta (f32 [C]). Folded away by ``compiler.quantize.ptq``.
``clip``            (float only) x -> clamp(x, min, max); attrs min, max (ReLU: 0, inf;
                    ReLU6: 0, 6). Fused into the producer by ``compiler.quantize.ptq``.

Every node also has a human-readable ``name`` (unique in the graph) and a ``source``
(module path for PyTorch, node name and scope for ONNX, JSON path for int8 model files).

:meth:`Graph.sha256` is a stable digest of structure, tensor types, quantization
parameters and weights (not of names, sources or metadata), used for firmware
provenance: two graphs that compute the same thing with the same parameters have the
same hash, however they were imported.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.ir.errors import GraphError
from compiler.ir.ops import LUT_FUNCTIONS, OPS, OpDef, avg_pool_divisors, conv_kind, requantizes
from compiler.ir.qmath import AddParams

FLOAT32 = "float32"
INT8 = "int8"
HASH_VERSION = "tt-ir/1"

ADD_ATTRS = ("z1", "z2", "zo", "m1", "s1", "m2", "s2", "mo", "so")
CONCAT_ATTRS = ("in_mult", "in_shift")   # int8 concat: per-input requantization


@dataclass
class Tensor:
    """A named activation tensor: per-sample shape (leading batch dim 1), dtype, and for
    int8 tensors the per-tensor quantization parameters."""

    name: str
    shape: tuple[int, ...]
    dtype: str = FLOAT32
    scale: float | None = None
    zero_point: int | None = None

    @property
    def is_int8(self) -> bool:
        return self.dtype == INT8

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    def qparams(self) -> str:
        if self.scale is None:
            return ""
        return f"s={self.scale:.6g} z={self.zero_point}"


@dataclass
class Node:
    """One operator application. See the module docstring for each op's attrs/params."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    source: str | None = None

    @property
    def output(self) -> str:
        return self.outputs[0]

    @property
    def is_depthwise(self) -> bool:
        return self.conv_kind == "depthwise"

    @property
    def traits(self) -> OpDef:
        """The op's definition and traits (:mod:`compiler.ir.ops`)."""
        try:
            return OPS[self.op]
        except KeyError:
            raise GraphError(f"{self.name}: unknown op {self.op!r}") from None

    @property
    def conv_kind(self) -> str | None:
        """"pointwise", "depthwise", "grouped", "kxk", or None for a non-conv op."""
        return conv_kind(self)

    @property
    def channelwise(self) -> bool:
        """Each output channel reads only the same input channel (a permutation of the
        channels passes through): the op's trait, or a depthwise convolution."""
        return self.traits.channelwise or self.conv_kind == "depthwise"

    def add_params(self) -> AddParams:
        """The fixed-point parameters of an int8 ``add`` node."""
        return AddParams(**{k: int(self.attrs[k]) for k in ADD_ATTRS})


def infer_shape(node: Node, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Output shape of ``node`` given its input shapes (raises GraphError if inconsistent)."""
    if node.op not in OPS:
        raise GraphError(f"{node.name}: unknown op {node.op!r}")
    return tuple(int(d) for d in OPS[node.op].shape(node, in_shapes))


# ----------------------------------------------------------------------------- the graph

@dataclass
class Graph:
    """A model: tensors by name, nodes in topological order, graph inputs and outputs.

    ``metadata`` holds free-form provenance (source format, input preprocessing such as
    ``"pixel - 128"``, notes from the importer); it is not part of :meth:`sha256`.
    """

    name: str
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------
    def add_input(self, name: str, shape: tuple[int, ...], dtype: str = FLOAT32,
                  scale: float | None = None, zero_point: int | None = None) -> str:
        if name in self.tensors:
            raise GraphError(f"duplicate tensor name {name!r}")
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype, scale, zero_point)
        self.inputs.append(name)
        return name

    def add_node(self, op: str, name: str, inputs: list[str], attrs: dict | None = None,
                 params: dict | None = None, source: str | None = None, output: str | None = None,
                 dtype: str | None = None, scale: float | None = None,
                 zero_point: int | None = None) -> str:
        """Append a node, infer its output shape and register its output tensor (named
        ``output`` or the node name). Returns the output tensor name."""
        out = output or name
        if out in self.tensors:
            raise GraphError(f"duplicate tensor name {out!r}")
        if any(n.name == name for n in self.nodes):
            raise GraphError(f"duplicate node name {name!r}")
        for t in inputs:
            if t not in self.tensors:
                raise GraphError(f"{name}: input tensor {t!r} is not defined")
        node = Node(op, name, list(inputs), [out], dict(attrs or {}), dict(params or {}), source)
        shape = infer_shape(node, [self.tensors[t].shape for t in inputs])
        if dtype is None:
            dtype = self.tensors[inputs[0]].dtype
        self.tensors[out] = Tensor(out, shape, dtype, scale, zero_point)
        self.nodes.append(node)
        return out

    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    # -- queries ------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def is_int8(self) -> bool:
        return all(t.is_int8 for t in self.tensors.values())

    def node_macs(self, node: Node) -> int:
        ins = [self.tensors[t].shape for t in node.inputs]
        return OPS[node.op].macs(node, ins, self.tensors[node.output].shape)

    def macs(self) -> int:
        """Multiply-accumulates of one forward pass (conv and fully-connected layers)."""
        return sum(self.node_macs(n) for n in self.nodes)

    def classifier_nodes(self) -> list[Node]:
        """The trailing ``fully_connected`` layers that produce graph outputs (the
        classifier head), following flatten/FC chains back from the outputs."""
        found: list[Node] = []
        for out in self.outputs:
            n = self.producer(out)
            while n is not None and n.op == "fully_connected":
                found.append(n)
                n = self.producer(n.inputs[0])
        return found

    def param_count(self, node: Node | None = None) -> int:
        """Number of weights and biases (of one node, or of the whole graph)."""
        nodes = [node] if node is not None else self.nodes
        return sum(int(n.params[k].size) for n in nodes for k in ("weight", "bias") if k in n.params)

    # -- checks -------------------------------------------------------------------
    def validate(self) -> "Graph":
        """Check the IR invariants; raise :class:`GraphError` on the first violation.
        Returns the graph, so importers can end with ``return g.validate()``."""
        defined = set(self.inputs)
        names = set()
        int8 = self.is_int8
        for t in self.inputs:
            if t not in self.tensors:
                raise GraphError(f"graph input {t!r} has no tensor")
        for n in self.nodes:
            if n.name in names:
                raise GraphError(f"duplicate node name {n.name!r}")
            names.add(n.name)
            if n.op not in OPS:
                raise GraphError(f"{n.name}: unknown op {n.op!r}")
            spec = OPS[n.op]
            if (len(n.inputs) != spec.n_inputs if spec.n_inputs else not n.inputs) or len(n.outputs) != 1:
                raise GraphError(f"{n.name}: {n.op} takes {spec.n_inputs or 'one or more'} "
                                 "input(s) and 1 output")
            for t in n.inputs:
                if t not in defined:
                    raise GraphError(f"{n.name}: input {t!r} used before it is defined")
            for a in spec.attrs:
                if a not in n.attrs:
                    raise GraphError(f"{n.name}: missing attribute {a!r}")
            for p in (spec.int8_params if int8 else spec.float_params):
                if p not in n.params:
                    raise GraphError(f"{n.name}: missing parameter {p!r}")
            shape = infer_shape(n, [self.tensors[t].shape for t in n.inputs])
            out = self.tensors.get(n.output)
            if out is None or out.shape != shape:
                raise GraphError(f"{n.name}: output shape {out and out.shape} != inferred {shape}")
            if n.output in defined:
                raise GraphError(f"{n.name}: tensor {n.output!r} defined twice")
            defined.add(n.output)
            if int8:
                self._validate_int8_node(n)
        for t in self.outputs:
            if t not in defined:
                raise GraphError(f"graph output {t!r} is not produced")
        if int8:
            for t in self.tensors.values():
                if t.scale is None or not (t.scale > 0 and math.isfinite(t.scale)):
                    raise GraphError(f"tensor {t.name!r}: int8 tensor needs a scale > 0")
                if t.zero_point is None or not -128 <= t.zero_point <= 127:
                    raise GraphError(f"tensor {t.name!r}: zero point {t.zero_point} not in int8")
        return self

    def _validate_int8_node(self, n: Node) -> None:
        if not n.traits.int8:
            raise GraphError(f"{n.name}: {n.op} cannot appear in an int8 graph")
        if n.traits.clamps:
            lo, hi = n.attrs["act_min"], n.attrs["act_max"]
            if not (isinstance(lo, int) and isinstance(hi, int) and -128 <= lo <= hi <= 127):
                raise GraphError(f"{n.name}: int8 clamp [{lo}, {hi}] invalid")
        if n.traits.has_params:
            p = n.params
            co = p["weight"].shape[0]
            want = {"weight": np.int8, "bias": np.int32, "w_scales": np.float32,
                    "mult": np.int32, "shift": np.int32}
            for k, dt in want.items():
                if p[k].dtype != dt:
                    raise GraphError(f"{n.name}: {k} must be {np.dtype(dt).name}, got {p[k].dtype}")
                if k != "weight" and p[k].shape != (co,):
                    raise GraphError(f"{n.name}: {k} shape {p[k].shape} != ({co},)")
            if p["weight"].size and p["weight"].min() < -127:
                raise GraphError(f"{n.name}: int8 weights must lie in [-127, 127]")
            if "weight_codebook" in p:     # 4-bit weights (compiler.quantize.codebook)
                cb = p["weight_codebook"]
                if cb.dtype != np.int8 or cb.shape != (16,):
                    raise GraphError(f"{n.name}: weight_codebook must be int8 [16], got "
                                     f"{cb.dtype} {cb.shape}")
                missing = np.setdiff1d(np.unique(p["weight"]), cb)
                if missing.size:
                    raise GraphError(f"{n.name}: weight value {int(missing[0])} is not in its "
                                     "weight_codebook")
            if np.any(p["mult"] < 0) or np.any(p["shift"] < -31) or np.any(p["shift"] > 30):
                raise GraphError(f"{n.name}: multiplier/shift out of range")
            bound = accumulator_bound(p["weight"])
            big = np.abs(p["bias"].astype(np.int64)) + bound
            if np.any(big > np.iinfo(np.int32).max):
                raise GraphError(f"{n.name}: bias + worst-case sum can overflow an int32 "
                                 f"accumulator (see compiler.ir.graph.clamp_bias_for_int32)")
        if requantizes(n):
            k = len(avg_pool_divisors(n, self.tensors[n.inputs[0]].shape))
            m, s = n.attrs["mult"], n.attrs.get("shift")
            if not (isinstance(m, (list, tuple)) and isinstance(s, (list, tuple)) and len(m) == len(s) == k
                    and all(0 <= int(v) < 2**31 for v in m) and all(-31 <= int(v) <= 30 for v in s)):
                raise GraphError(f"{n.name}: re-quantizing {n.op} needs int lists 'mult' and "
                                 f"'shift' of {k} value(s) in range")
        elif n.traits.passes_qparams:
            a, b = self.tensors[n.inputs[0]], self.tensors[n.output]
            if (a.scale, a.zero_point) != (b.scale, b.zero_point):
                raise GraphError(f"{n.name}: {n.op} output must keep the input's scale/zero point")
        if n.op == "mul" and not all(isinstance(n.attrs.get(k), int) for k in ("mult", "shift")):
            raise GraphError(f"{n.name}: int8 mul needs int attributes 'mult' and 'shift'")
        if n.op in LUT_FUNCTIONS:
            t = n.params["table"]
            if t.dtype != np.int8 or t.shape != (256,):
                raise GraphError(f"{n.name}: {n.op} table must be int8 [256], got {t.dtype} {t.shape}")
        if n.op == "concat":
            for k in CONCAT_ATTRS:
                v = n.attrs.get(k)
                if not (isinstance(v, (list, tuple)) and len(v) == len(n.inputs)):
                    raise GraphError(f"{n.name}: int8 concat needs attribute {k!r}, one int per input")
            if not all(0 <= int(m) < 2**31 and -31 <= int(s) <= 30
                       for m, s in zip(n.attrs["in_mult"], n.attrs["in_shift"])):
                raise GraphError(f"{n.name}: concat multiplier/shift out of range")
        if n.op == "add":
            for k in ADD_ATTRS:
                if k not in n.attrs:
                    raise GraphError(f"{n.name}: int8 add needs attribute {k!r}")

    # -- provenance ---------------------------------------------------------------
    def sha256(self) -> str:
        """Stable digest of structure + tensor types + qparams + weights (see module doc).

        Tensors are identified by their order of definition, so renaming tensors or
        nodes, or changing ``source``/``metadata``, does not change the hash."""
        ids: dict[str, int] = {}
        for t in self.inputs:
            ids[t] = len(ids)
        for n in self.nodes:
            for t in n.outputs:
                ids.setdefault(t, len(ids))
        h = hashlib.sha256(HASH_VERSION.encode())

        def tdesc(name):
            t = self.tensors[name]
            return [ids[name], list(t.shape), t.dtype, _canon(t.scale), t.zero_point]

        head = {"inputs": [tdesc(t) for t in self.inputs],
                "outputs": [ids[t] for t in self.outputs]}
        h.update(json.dumps(head, sort_keys=True).encode())
        for n in self.nodes:
            desc = {"op": n.op, "in": [ids[t] for t in n.inputs], "out": [tdesc(t) for t in n.outputs],
                    "attrs": {k: _canon(v) for k, v in sorted(n.attrs.items())},
                    "params": {k: [str(v.dtype), list(v.shape)] for k, v in sorted(n.params.items())}}
            h.update(json.dumps(desc, sort_keys=True).encode())
            for k in sorted(n.params):
                h.update(np.ascontiguousarray(n.params[k]).tobytes())
        return h.hexdigest()


def _canon(v):
    """JSON-stable form of an attribute value (floats exact via hex)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v).hex()
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    raise TypeError(f"attribute value {v!r} of type {type(v).__name__} is not hashable IR data")


# ----------------------------------------------------------------------------- int32 accumulators

def accumulator_bound(weight: np.ndarray) -> np.ndarray:
    """Per output channel, the largest |sum((x - x_zero) * w)| any int8 input can produce
    (|x - x_zero| <= 255)."""
    w = np.abs(weight.astype(np.int64)).reshape(weight.shape[0], -1)
    return w.sum(axis=1) * 255


def clamp_bias_for_int32(bias: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, int]:
    """Clamp int32 biases so that ``bias + sum`` can never leave the int32 range on the
    device (the C kernels accumulate in int32). Returns (bias, number of channels changed).

    Only channels whose bias already sits at (or near) the int32 limits change: a
    post-training quantizer saturates the bias of near-dead channels whose weight scale
    is tiny, and there the change moves the output by far less than one LSB."""
    lim = np.iinfo(np.int32).max - accumulator_bound(weight)
    b = bias.astype(np.int64)
    out = np.clip(b, -lim, lim)
    return out.astype(np.int32), int(np.count_nonzero(out != b))
