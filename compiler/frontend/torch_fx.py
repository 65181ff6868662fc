"""PyTorch importer: ``nn.Module`` -> float IR graph (torch.fx symbolic tracing), and
optionally int8 via post-training quantization.

Supported (eval-mode semantics): ``nn.Conv2d`` (incl. depthwise / grouped; zero padding;
kernel, stride and padding may differ per axis; no dilation), ``nn.Conv1d`` on an
``(N, C, L)`` sequence (a 1 x K conv on a 1 x L map; also ``MaxPool1d``,
``AvgPool1d`` / ``AdaptiveAvgPool1d(1)`` as global pooling), ``nn.Linear``, ``nn.BatchNorm1d/2d``
(folded later), ``nn.ReLU``/``ReLU6``/``Hardtanh`` and their functional forms and
``clamp``, residual ``+``, global average pooling (``AdaptiveAvgPool2d(1)``,
``adaptive_avg_pool2d``, ``mean`` over H and W, an ``AvgPool2d`` covering the whole map),
``MaxPool2d`` / ``max_pool2d`` (per-axis kernel, stride, padding; no dilation, floor mode),
``AvgPool2d`` / ``avg_pool2d`` (the same, count_include_pad either way, no divisor_override),
``flatten``/``view``/``reshape`` to (N, features), ``Identity``/``Dropout``.
Explicit padding (``nn.ZeroPad2d``, ``nn.ConstantPad2d``, ``F.pad`` constant) is folded
into the conv or max pool it feeds, where the two sides of an axis may then differ:
zeros before a conv (in int8: the input's zero point), -inf before a max pool.

Anything else raises :class:`compiler.ir.errors.UnsupportedOpError` naming the op, the fx
node and the module path (plus the source line of the ``forward`` call).

The IR is NHWC: input ``(N, C, H, W)`` becomes ``(1, H, W, C)``, weights OIHW -> OHWI,
and a Linear reading a flattened ``C x H x W`` map gets its columns reordered.
"""
from __future__ import annotations

import math
import operator
import os
import re

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

from compiler.frontend.common import NO_ACT, chw_to_hwc_columns, chw_to_hwc_vector, nchw_to_nhwc, pad_attrs, unique_name
from compiler.ir.errors import ModelFormatError, UnsupportedOpError
from compiler.ir.graph import FLOAT32, Graph
from compiler.ir.qmath import hw_attr


class _Tracer(fx.Tracer):
    def __init__(self):
        super().__init__()
        self.record_stack_traces = True


class _Val:
    """An IR tensor seen from torch: ``chw`` is set for a vector that flattened a C x H x W
    map with H*W > 1 (its element order differs between NCHW and the IR's NHWC)."""

    def __init__(self, name: str, chw: tuple[int, int, int] | None = None):
        self.name = name
        self.chw = chw


class _Pad:
    """A constant padding (``ZeroPad2d``, ``ConstantPad2d``, ``F.pad``) not yet applied:
    the map ``x`` padded by ``pads`` (top, left, bottom, right) with ``value``; folded into
    the conv / max pool that reads it, refused anywhere else (``op``, ``node`` and
    ``source`` name the padding)."""

    def __init__(self, x: _Val, pads: tuple[int, int, int, int], value: float, op: str,
                 node: str, source: str):
        self.x, self.pads, self.value = x, pads, value
        self.op, self.node, self.source = op, node, source


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _pair(v) -> tuple:
    """A torch size argument (int or pair) as a pair."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _neg_inf(v: float) -> bool:
    """A padding value that never wins a max: -inf, or the float32 lowest or below."""
    return v <= float(np.finfo(np.float32).min)


def _module_path(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack)) if stack else ""


def _source(node: fx.Node, root: nn.Module) -> str:
    path = _module_path(node)
    where = f"module {path!r}" if path else f"module <top> ({type(root).__name__})"
    frames = re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace") or "")
    frames = [f for f in frames if f"{os.sep}torch{os.sep}" not in f[0]]  # user code only
    if frames:
        f, line = frames[-1]
        where += f" at {f.rsplit('/', 1)[-1]}:{line}"
    return where


_ADD = {operator.add, operator.iadd, torch.add}
_RELU = {F.relu, torch.relu, torch.relu_, F.relu_}
_FLATTEN_FN = {torch.flatten, torch.reshape}
_PASS_FN = {F.dropout}
_META_FN = {operator.getitem, len}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_MUL = {operator.mul, operator.imul, torch.mul}
# elementwise functions run by a table in int8 (compiler.ir.ops.LUT_FUNCTIONS)
_ACT_FN = {torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.hardsigmoid: "hardsigmoid",
           F.hardswish: "hardswish", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}
_ACT_MODULES = {nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "hardsigmoid", nn.Hardswish: "hardswish"}
_FUNCTIONS = (_ADD | _RELU | _FLATTEN_FN | _PASS_FN | _META_FN | _CAT | _MUL | set(_ACT_FN)
              | {getattr, F.relu6, F.hardtanh, torch.clamp, torch.clip, F.adaptive_avg_pool2d, torch.mean,
                 F.max_pool2d, F.avg_pool2d, F.pad})
_METHODS = {"add", "add_", "mul", "mul_", "sigmoid", "sigmoid_", "relu", "relu_", "clamp", "clip",
            "clamp_", "clip_", "mean", "flatten", "view", "reshape", "contiguous", "clone", "detach", "size", "dim"}
_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.Hardtanh,
            nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout,
            nn.Dropout2d, nn.Conv1d, nn.AdaptiveAvgPool1d, nn.AvgPool1d, nn.MaxPool1d,
            nn.ZeroPad2d, nn.ConstantPad2d)


class _Importer:
    def __init__(self, module: nn.Module, name: str):
        self.root = module
        self.g = Graph(name)
        self.g.metadata.update(source_format="pytorch", source_layout="NCHW")
        self.env: dict[fx.Node, object] = {}
        self.node: fx.Node | None = None
        self.mods = dict(module.named_modules())

    # -- helpers ----------------------------------------------------------------------
    def fail(self, op: str, reason: str):
        raise UnsupportedOpError(op, self.node.name, reason, _source(self.node, self.root))

    def shape(self, n: fx.Node) -> tuple[int, ...]:
        tm = n.meta.get("tensor_meta")
        if tm is None or not hasattr(tm, "shape"):
            self.fail(str(n.target), "output is not a single tensor")
        return tuple(tm.shape)

    def tensor_arg(self, a, op: str) -> _Val:
        v = self.env.get(a) if isinstance(a, fx.Node) else None
        if isinstance(v, _Pad):
            self.pad_misused(v, op)
        if not isinstance(v, _Val):
            self.fail(op, f"expected a tensor operand, got {a!r}")
        return v

    def emit(self, op: str, inputs: list[str], attrs=None, params=None, base: str | None = None) -> str:
        n = self.node
        name = unique_name(self.g, base or (str(n.target) if n.op == "call_module" else n.name))
        return self.g.add_node(op, name, inputs, attrs, params, source=_source(n, self.root))

    def rank(self, v: _Val) -> int:
        return len(self.g.tensors[v.name].shape)

    def pad_misused(self, p: _Pad, op: str):
        raise UnsupportedOpError(p.op, p.node, f"padding {p.pads} (top, left, bottom, right) "
                                 f"read by {op} ({_source(self.node, self.root)}): explicit "
                                 "padding is only supported directly before a conv (zeros) or "
                                 "a max pool (-inf)", p.source)

    def padded(self, a, op: str, value_ok, what: str):
        """(input _Val, extra (top, left, bottom, right) pads) of a conv / max pool input
        ``a``: a pending :class:`_Pad` whose value passes ``value_ok`` folds in; any
        other value is refused (``what``: the values allowed)."""
        v = self.env.get(a) if isinstance(a, fx.Node) else None
        if not isinstance(v, _Pad):
            return self.tensor_arg(a, op), (0, 0, 0, 0)
        if not value_ok(v.value):
            raise UnsupportedOpError(v.op, v.node, f"padding with value {v.value} before {op} "
                                     f"({_source(self.node, self.root)}): only {what} padding "
                                     "folds into it", v.source)
        return v.x, v.pads

    def pad(self, x_arg, pads, value, op: str) -> _Pad:
        """A constant pad of the last two axes (torch order (left, right[, top, bottom])),
        kept pending until its consumer folds it (:meth:`padded`)."""
        v = self.env.get(x_arg) if isinstance(x_arg, fx.Node) else None
        prev = v if isinstance(v, _Pad) else None
        x = prev.x if prev else self.tensor_arg(x_arg, op)
        if (not isinstance(pads, (tuple, list)) or len(pads) not in (2, 4)
                or not all(isinstance(p, (int, np.integer)) for p in pads)):
            self.fail(op, f"padding {pads}: only constant padding of the last two axes "
                          "(left, right[, top, bottom])")
        left, right, top, bottom = (list(pads) + [0, 0])[:4]
        if self.rank(x) != 4:
            self.fail(op, "padding of a feature map only (N, C, H, W) or (N, C, L)")
        if isinstance(x_arg, fx.Node) and len(self.shape(x_arg)) == 3 and (top or bottom):
            self.fail(op, f"padding {tuple(pads)} of an (N, C, L) sequence pads its channels")
        if min(left, right, top, bottom) < 0:
            self.fail(op, f"negative padding {tuple(pads)} (cropping) is not supported")
        value = float(value)
        t = (top, left, bottom, right)
        if prev:  # pad of a pad with the same value: one pad
            if prev.value != value:
                self.fail(op, f"padding with {value} of a padding with {prev.value}")
            t = tuple(a + b for a, b in zip(prev.pads, t))
        n = self.node
        name = str(n.target) if n.op == "call_module" else n.name
        return _Pad(x, t, value, op, name, _source(n, self.root))

    # -- layers -----------------------------------------------------------------------
    def conv_geometry(self, m: nn.Conv2d | nn.Conv1d):
        """(kernel, stride, pads) of a Conv2d, or of a Conv1d as a 1 x K conv on a 1 x L map:
        kernel and stride per axis (h, w), pads (top, left, bottom, right); or
        UnsupportedOpError (needs no shapes)."""
        op = type(m).__name__
        if type(m) not in (nn.Conv2d, nn.Conv1d):
            self.fail(op, "layer type not supported")
        one_d = type(m) is nn.Conv1d
        lift = (lambda v: (1, *v)) if one_d else tuple  # Conv1d: (k,) -> (1, k)
        if any(d != 1 for d in m.dilation):
            self.fail(op, f"dilation={tuple(m.dilation)} (only 1 is supported)")
        if m.padding_mode != "zeros":
            self.fail(op, f"padding_mode={m.padding_mode!r} (only zero padding is supported)")
        (kh, kw), (sh, sw) = lift(m.kernel_size), lift(m.stride)
        if isinstance(m.padding, str):
            if m.padding == "valid":
                return (kh, kw), (sh, sw), (0, 0, 0, 0)
            # "same" (stride 1): k - 1 in all, the odd one after (torch's rule)
            return (kh, kw), (sh, sw), ((kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2)
        ph, pw = (0, *m.padding) if one_d else m.padding
        return (kh, kw), (sh, sw), (ph, pw, ph, pw)

    def conv(self, m: nn.Conv2d | nn.Conv1d, x: _Val, extra=(0, 0, 0, 0)) -> _Val:
        """``extra``: (top, left, bottom, right) zero padding folded in from before."""
        if self.rank(x) != 4:
            self.fail(type(m).__name__, "input is not a 4-D feature map (or a 3-D sequence)")
        (kh, kw), (sh, sw), own = self.conv_geometry(m)
        wt = _np(m.weight)
        w = (wt[:, :, None, :] if wt.ndim == 3 else wt).transpose(0, 2, 3, 1)
        b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], np.float32)
        pads = pad_attrs(type(m).__name__, self.node.name, _source(self.node, self.root),
                         tuple(a + b for a, b in zip(own, extra)))
        attrs = dict(kernel=(kh, kw), stride=hw_attr(sh, sw), **pads, groups=m.groups,
                     **NO_ACT)
        return _Val(self.emit("conv2d", [x.name], attrs, dict(weight=np.ascontiguousarray(w), bias=b)))

    def linear(self, m: nn.Linear, x: _Val) -> _Val:
        if self.rank(x) != 2:
            self.fail("Linear", "input must be flattened to (N, features)")
        w = _np(m.weight)
        if x.chw is not None:
            w = chw_to_hwc_columns(w, x.chw)
        b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], np.float32)
        return _Val(self.emit("fully_connected", [x.name], dict(NO_ACT), dict(weight=w, bias=b)))

    def batchnorm(self, m, x: _Val) -> _Val:
        op = type(m).__name__
        if m.running_mean is None or m.running_var is None:
            self.fail(op, "track_running_stats=False: no statistics to fold")
        c = m.num_features
        gamma = _np(m.weight) if m.weight is not None else np.ones(c, np.float32)
        beta = _np(m.bias) if m.bias is not None else np.zeros(c, np.float32)
        params = dict(mean=_np(m.running_mean), var=_np(m.running_var), gamma=gamma, beta=beta)
        if x.chw is not None:  # per-feature statistics of a flattened NCHW map
            params = {k: chw_to_hwc_vector(v, x.chw) for k, v in params.items()}
        return _Val(self.emit("batch_norm", [x.name], dict(eps=float(m.eps)), params), x.chw)

    def clip(self, x: _Val, lo: float, hi: float, op: str) -> _Val:
        if not lo <= hi:
            self.fail(op, f"empty clamp range [{lo}, {hi}]")
        return _Val(self.emit("clip", [x.name], dict(min=float(lo), max=float(hi))), x.chw)

    def pool(self, x: _Val, op: str, keepdim: bool = True) -> _Val:
        if self.rank(x) != 4:
            self.fail(op, "global pooling needs a 4-D feature map")
        y = _Val(self.emit("global_avgpool", [x.name]))
        if not keepdim:
            y = _Val(self.emit("flatten", [y.name], base=self.node.name + "_flatten"))
        return y

    def flatten(self, x: _Val, op: str) -> _Val:
        out_shape = self.shape(self.node)
        xs = self.g.tensors[x.name].shape
        if len(out_shape) != 2 or out_shape[1] != int(np.prod(xs[1:])):
            self.fail(op, f"reshape to {tuple(out_shape)}: only flattening to (N, features) "
                          "is supported")
        if len(xs) == 2:
            return x
        chw = None if xs[1] * xs[2] == 1 else (xs[3], xs[1], xs[2])
        return _Val(self.emit("flatten", [x.name]), chw)

    def add(self, a, b, op: str) -> _Val:
        if not (isinstance(self.env.get(a), _Val) and isinstance(self.env.get(b), _Val)):
            self.fail(op, "addition of a constant or scalar (only tensor + tensor is supported)")
        va, vb = self.env[a], self.env[b]
        if self.g.tensors[va.name].shape != self.g.tensors[vb.name].shape:
            self.fail(op, "broadcasting add (operands must have the same shape)")
        if va.chw != vb.chw:
            self.fail(op, "add of a flattened map and a vector")
        return _Val(self.emit("add", [va.name, vb.name], dict(NO_ACT)), va.chw)

    def elementwise(self, op: str, x: _Val) -> _Val:
        """sigmoid / hardsigmoid (torch: relu6(x + 3) / 6) / hardswish."""
        attrs = dict(alpha=1.0 / 6.0, beta=0.5) if op == "hardsigmoid" else {}
        return _Val(self.emit(op, [x.name], attrs), x.chw)

    def mul(self, a, b, op: str) -> _Val:
        """tensor * tensor, same shapes or a per-channel gate [N, C, 1, 1] over a map."""
        if not (isinstance(self.env.get(a), _Val) and isinstance(self.env.get(b), _Val)):
            self.fail(op, "multiplication by a constant or scalar (only tensor * tensor is supported)")
        va, vb = self.env[a], self.env[b]
        sa, sb = self.g.tensors[va.name].shape, self.g.tensors[vb.name].shape
        if len(sa) == 4 and sa[1:3] == (1, 1) and sb[1:3] != (1, 1):
            va, vb, sa, sb = vb, va, sb, sa   # the gate second
        if not (sa == sb or (len(sa) == 4 and sb == (sa[0], 1, 1, sa[3]))):
            self.fail(op, f"broadcasting mul of {sa} and {sb} (NHWC): only same shapes or a "
                          "per-channel gate (N, C, 1, 1)")
        if va.chw != vb.chw:
            self.fail(op, "mul of a flattened map and a vector")
        return _Val(self.emit("mul", [va.name, vb.name], dict(NO_ACT)), va.chw)

    def cat(self, tensors, dim, op: str) -> _Val:
        """torch.cat along the channels (dim 1 of NCHW / of (N, F)): the IR's last axis."""
        if not isinstance(tensors, (list, tuple)) or not tensors:
            self.fail(op, "expected a list of tensors")
        vals = [self.tensor_arg(t, op) for t in tensors]
        ranks = {self.rank(v) for v in vals}
        if len(ranks) != 1 or not isinstance(dim, int) or dim % next(iter(ranks)) != 1:
            self.fail(op, f"dim={dim}: only concatenation along the channels (dim=1) is supported")
        if any(v.chw is not None for v in vals):
            self.fail(op, "concatenation of flattened feature maps (NCHW order)")
        if len(vals) == 1:
            return vals[0]
        shapes = [self.g.tensors[v.name].shape for v in vals]
        if len({s[:-1] for s in shapes}) != 1:
            self.fail(op, f"operands differ outside the channel axis: {shapes}")
        return _Val(self.emit("concat", [v.name for v in vals]))

    # -- dispatch ---------------------------------------------------------------------
    def call_module(self, n: fx.Node):
        m = self.mods[n.target]
        op = type(m).__name__
        if n.kwargs or len(n.args) != 1:
            self.fail(op, "only single-input module calls are supported")
        if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)):
            return self.pad(n.args[0], m.padding, m.value, op)
        if isinstance(m, (nn.Conv2d, nn.Conv1d)):
            return self.conv(m, *self.padded(n.args[0], op, lambda v: v == 0, "zero"))
        if isinstance(m, nn.MaxPool2d):
            x, extra = self.padded(n.args[0], op, _neg_inf, "-inf")
            return self.maxpool(x, op, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                m.return_indices, extra)
        x = self.tensor_arg(n.args[0], op)
        if isinstance(m, nn.Linear):
            return self.linear(m, x)
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if isinstance(m, nn.BatchNorm1d) and self.rank(x) == 4 and x.chw is not None:
                self.fail(op, "BatchNorm1d on a flattened feature map is not supported")
            return self.batchnorm(m, x)
        if type(m) in _ACT_MODULES:
            return self.elementwise(_ACT_MODULES[type(m)], x)
        if isinstance(m, nn.ReLU):
            return self.clip(x, 0.0, math.inf, op)
        if isinstance(m, nn.Hardtanh):  # includes ReLU6
            return self.clip(x, m.min_val, m.max_val, op)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            if m.output_size not in (1, (1, 1)):
                self.fail(op, f"output_size={m.output_size} (only global pooling, 1, is supported)")
            return self.pool(x, op)
        if isinstance(m, nn.AdaptiveAvgPool1d):  # a sequence is a 1 x L map
            if m.output_size not in (1, (1,)):
                self.fail(op, f"output_size={m.output_size} (only global pooling, 1, is supported)")
            return self.pool(x, op)
        if isinstance(m, (nn.AvgPool2d, nn.AvgPool1d)):
            return self.avgpool_module(m, x)
        if isinstance(m, nn.MaxPool1d):  # 1 x K windows on a 1 x L map
            one = (lambda v: (1, v[0]) if isinstance(v, (tuple, list)) else (1, v))
            st = None if m.stride in (None, (), []) else one(m.stride)
            return self.maxpool(x, op, one(m.kernel_size), st, (0, _pair(m.padding)[0]),
                                _pair(m.dilation)[0], m.ceil_mode, m.return_indices)
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                self.fail(op, f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}); only (1, -1)")
            return self.flatten(x, op)
        if isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout2d)):
            return x
        self.fail(op, "layer type not supported")

    def maxpool(self, x: _Val, op: str, kernel, stride=None, padding=0, dilation=1,
                ceil_mode=False, return_indices=False, extra=(0, 0, 0, 0)) -> _Val:
        """``extra``: (top, left, bottom, right) -inf padding folded in from before."""
        pair = _pair
        if self.rank(x) != 4:
            self.fail(op, "max pooling needs a 4-D feature map")
        k, pad, dil = pair(kernel), pair(padding), pair(dilation)
        st = pair(stride) if stride not in (None, (), []) else k
        if dil != (1, 1):
            self.fail(op, f"dilation={dilation} (only 1 is supported)")
        if ceil_mode or return_indices:
            self.fail(op, "ceil_mode / return_indices (only floor mode, values only)")
        if 2 * pad[0] > k[0] or 2 * pad[1] > k[1]:
            self.fail(op, f"padding {pad} larger than half the kernel {k}")
        t, left, b, r = extra
        full = (pad[0] + t, pad[1] + left, pad[0] + b, pad[1] + r)
        if any(extra) and (max(full[0], full[2]) >= k[0] or max(full[1], full[3]) >= k[1]):
            self.fail(op, f"padding {full} (top, left, bottom, right) with the padding before it: "
                          f"a window of {k} would hold no real value")
        pads = pad_attrs(op, self.node.name, _source(self.node, self.root), full)
        return _Val(self.emit("max_pool", [x.name], dict(kernel=(int(k[0]), int(k[1])),
                                                         stride=hw_attr(st[0], st[1]),
                                                         **pads)))

    def avgpool_module(self, m: nn.AvgPool2d | nn.AvgPool1d, x: _Val) -> _Val:
        op = type(m).__name__
        k, pad, st = m.kernel_size, m.padding, m.stride
        if isinstance(m, nn.AvgPool1d):  # a sequence is a 1 x L map
            one = (lambda v: (1, v[0]) if isinstance(v, (tuple, list)) else (1, v))
            k, pad = one(k), (0, _pair(pad)[0])
            st = None if st in (None, (), []) else one(st)
        return self.avgpool(x, op, k, st, pad, m.ceil_mode, m.count_include_pad,
                            getattr(m, "divisor_override", None))

    def avgpool(self, x: _Val, op: str, kernel, stride=None, padding=0, ceil_mode=False,
                count_include_pad=True, divisor_override=None) -> _Val:
        """``avg_pool``, or ``global_avgpool`` when one unpadded window covers the map."""
        if self.rank(x) != 4:
            self.fail(op, "average pooling needs a 4-D feature map")
        xs = self.g.tensors[x.name].shape
        k, pad = _pair(kernel), _pair(padding)
        st = _pair(stride) if stride not in (None, (), []) else k
        if ceil_mode:
            self.fail(op, "ceil_mode=True (only floor mode)")
        if divisor_override is not None:
            self.fail(op, f"divisor_override={divisor_override} (only the window's own count)")
        if 2 * pad[0] > k[0] or 2 * pad[1] > k[1]:
            self.fail(op, f"padding {pad} larger than half the kernel {k}")
        if k == (xs[1], xs[2]) and pad == (0, 0):
            return self.pool(x, op)
        return _Val(self.emit("avg_pool", [x.name], dict(
            kernel=(int(k[0]), int(k[1])), stride=hw_attr(st[0], st[1]), pad=hw_attr(pad[0], pad[1]),
            count_include_pad=bool(count_include_pad))))

    def call_function(self, n: fx.Node, fn, args, kwargs):
        name = getattr(fn, "__name__", str(fn))
        for a in list(args) + list(kwargs.values()):  # a pending pad read by anything else
            for v in (a if isinstance(a, (list, tuple)) else [a]):
                pv = self.env.get(v) if isinstance(v, fx.Node) else None
                if isinstance(pv, _Pad) and not (fn in (F.max_pool2d, F.pad, getattr)
                                                 and v is args[0]):
                    self.pad_misused(pv, name)
        if fn is getattr:  # x.shape / x.dtype feed shape arithmetic, which the IR does not need
            if args[1] not in ("shape", "dtype", "device", "ndim"):
                self.fail(f"getattr {args[1]!r}", "tensor attribute not supported")
            return None
        if fn in _META_FN:
            if isinstance(args[0], fx.Node) and isinstance(self.env.get(args[0]), _Val):
                self.fail(name, "indexing or slicing tensors is not supported")
            return None
        if fn in _ADD or fn == "add" or fn == "add_":
            if kwargs.get("alpha", 1) != 1:
                self.fail(name, "add with alpha != 1")
            if len(args) != 2:
                self.fail(name, "add needs two tensor operands")
            return self.add(args[0], args[1], name)
        if fn in _MUL or fn in ("mul", "mul_"):
            if len(args) != 2:
                self.fail(name, "mul needs two tensor operands")
            return self.mul(args[0], args[1], name)
        if fn in _CAT:
            return self.cat(args[0] if args else kwargs.get("tensors"),
                            args[1] if len(args) > 1 else kwargs.get("dim", 0), name)
        if fn is F.pad:
            rest_ = dict(zip(("pad", "mode", "value"), args[1:]), **kwargs)
            if rest_.get("mode", "constant") != "constant":
                self.fail(name, f"mode={rest_['mode']!r} (only constant padding)")
            v = rest_.get("value")
            return self.pad(args[0], rest_.get("pad"), 0.0 if v is None else v, name)
        if fn is F.max_pool2d:
            x, extra = self.padded(args[0], name, _neg_inf, "-inf")
        else:
            x = self.tensor_arg(args[0], name) if args else self.fail(name, "no tensor argument")
        rest, kw = args[1:], dict(kwargs)
        kw.pop("inplace", None)
        if fn in _ACT_FN:
            return self.elementwise(_ACT_FN[fn], x)
        if fn in _RELU or fn in ("relu", "relu_"):
            return self.clip(x, 0.0, math.inf, name)
        if fn is F.relu6:
            return self.clip(x, 0.0, 6.0, name)
        if fn is F.hardtanh:
            lo = rest[0] if rest else kw.get("min_val", -1.0)
            hi = rest[1] if len(rest) > 1 else kw.get("max_val", 1.0)
            return self.clip(x, lo, hi, name)
        if fn in (torch.clamp, torch.clip) or fn in ("clamp", "clip", "clamp_", "clip_"):
            lo = rest[0] if rest else kw.get("min")
            hi = rest[1] if len(rest) > 1 else kw.get("max")
            if any(isinstance(v, fx.Node) for v in (lo, hi)):
                self.fail(name, "clamp bounds must be constants")
            return self.clip(x, -math.inf if lo is None else lo, math.inf if hi is None else hi, name)
        if fn is F.max_pool2d:
            names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
            given = dict(zip(names, rest))
            given.update({k: v for k, v in kw.items() if k in names})
            if "kernel_size" not in given:
                self.fail(name, "max_pool2d without kernel_size")
            return self.maxpool(x, name, given["kernel_size"], given.get("stride"),
                                given.get("padding", 0), given.get("dilation", 1),
                                given.get("ceil_mode", False), given.get("return_indices", False),
                                extra)
        if fn is F.avg_pool2d:
            names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                     "divisor_override")
            given = dict(zip(names, rest))
            given.update({k: v for k, v in kw.items() if k in names})
            if "kernel_size" not in given:
                self.fail(name, "avg_pool2d without kernel_size")
            return self.avgpool(x, name, given["kernel_size"], given.get("stride"),
                                given.get("padding", 0), given.get("ceil_mode", False),
                                given.get("count_include_pad", True), given.get("divisor_override"))
        if fn is F.adaptive_avg_pool2d:
            size = rest[0] if rest else kw.get("output_size")
            if size not in (1, (1, 1), [1, 1]):
                self.fail(name, f"output_size={size} (only global pooling is supported)")
            return self.pool(x, name)
        if fn in (torch.mean,) or fn == "mean":
            dims = rest[0] if rest else kw.get("dim")
            keep = rest[1] if len(rest) > 1 else kw.get("keepdim", False)
            dims = {d % 4 for d in (dims if isinstance(dims, (list, tuple)) else [dims])} \
                if dims is not None else None
            if self.rank(x) != 4 or dims != {2, 3}:
                self.fail(name, "mean is only supported over the spatial dims (2, 3)")
            return self.pool(x, name, keepdim=bool(keep))
        if fn in _FLATTEN_FN or fn in ("flatten", "view", "reshape"):
            if fn in (torch.flatten, "flatten"):
                start = rest[0] if rest else kw.get("start_dim", 0)
                end = rest[1] if len(rest) > 1 else kw.get("end_dim", -1)
                if start != 1 or end != -1:
                    self.fail(name, f"flatten(start_dim={start}, end_dim={end}); only (1, -1)")
            return self.flatten(x, name)
        if fn in _PASS_FN or fn in ("contiguous", "clone", "detach"):
            return x
        if fn in ("size", "dim"):
            return None
        self.fail(name, "function not supported")

    def precheck(self, gm: fx.GraphModule) -> None:
        """Reject unsupported layers and functions before running anything, so that the
        error names the unsupported op even when the model cannot run on the input."""
        for n in gm.graph.nodes:
            self.node = n
            if n.op == "call_module":
                m = self.mods[n.target]
                if isinstance(m, (nn.Conv2d, nn.Conv1d)):
                    self.conv_geometry(m)
                elif not isinstance(m, _MODULES + tuple(_ACT_MODULES)):
                    names = sorted({t.__name__ for t in _MODULES + tuple(_ACT_MODULES)})
                    self.fail(type(m).__name__, "layer type not supported; supported layers: "
                              + ", ".join(names))
            elif n.op in ("call_function", "call_method"):
                fn = n.target
                if not (fn in _FUNCTIONS or (isinstance(fn, str) and fn in _METHODS)):
                    self.fail(getattr(fn, "__name__", str(fn)), "function not supported")

    def run(self, gm: fx.GraphModule, example_inputs: tuple[torch.Tensor, ...]) -> Graph:
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != len(example_inputs):
            raise ModelFormatError(f"forward takes {len(placeholders)} input(s) but "
                                   f"{len(example_inputs)} example input(s) were given")
        for n in gm.graph.nodes:
            self.node = n
            if n.op == "placeholder":
                shape = self.shape(n)
                if len(shape) == 4:
                    ir_shape = (1, shape[2], shape[3], shape[1])
                elif len(shape) == 3:  # (N, C, L) sequence: a 1 x L map
                    ir_shape = (1, 1, shape[2], shape[1])
                elif len(shape) == 2:
                    ir_shape = (1, shape[1])
                else:
                    self.fail("input", f"input of shape {shape}: expected (N, C, H, W), (N, C, L) "
                                       "or (N, F)")
                self.env[n] = _Val(self.g.add_input(n.name, ir_shape, FLOAT32))
            elif n.op == "get_attr":
                self.env[n] = None  # only usable as a non-tensor argument
            elif n.op == "call_module":
                self.env[n] = self.call_module(n)
            elif n.op in ("call_function", "call_method"):
                args = tuple(n.args)
                self.env[n] = self.call_function(n, n.target, args, dict(n.kwargs))
            elif n.op == "output":
                self.add_outputs(n)
        return self.g.validate()

    def add_outputs(self, n: fx.Node) -> None:
        """The graph outputs of an ``output`` node (fx or torch.export)."""
        outs = n.args[0]
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        for o in outs:
            v = self.tensor_arg(o, "output")
            if v.chw is not None:
                self.fail("output", "a flattened feature map (NCHW order) as graph output")
            if v.name in self.g.inputs:
                self.fail("output", "graph output is an unmodified input")
            self.g.outputs.append(v.name)


def trace(module: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``module`` (UnsupportedOpError if fx cannot trace it)."""
    try:
        tracer = _Tracer()
        graph = tracer.trace(module)
    except Exception as e:  # fx raises plain TraceError/TypeError/... on dynamic code
        raise UnsupportedOpError("symbolic trace", type(module).__name__,
                                 f"torch.fx cannot trace this module ({type(e).__name__}: {e}); "
                                 "data-dependent control flow is not supported",
                                 f"module <top> ({type(module).__name__})") from e
    return fx.GraphModule(tracer.root, graph, type(module).__name__)


def import_module(module: nn.Module, example_input, *, name: str | None = None,
                  calibration=None) -> Graph:
    """Import ``module`` as a float IR graph; with ``calibration`` (samples in the module's
    own layout, (N, C, H, W)), return the post-training-quantized int8 graph instead.

    ``example_input`` fixes the input shape (a tensor or a tuple of tensors)."""
    if not isinstance(module, nn.Module):
        raise ModelFormatError(f"expected an nn.Module, got {type(module).__name__}")
    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    inputs = tuple(torch.as_tensor(t, dtype=torch.float32) for t in inputs)
    gm = trace(module)
    importer = _Importer(module, name or type(module).__name__)
    importer.precheck(gm)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
    except UnsupportedOpError:
        raise
    except Exception as e:
        raise ModelFormatError(f"running the module on the example input failed: "
                               f"{type(e).__name__}: {e}") from e
    finally:
        module.train(was_training)
    g = importer.run(gm, inputs)
    if calibration is None:
        return g
    from compiler.quantize.ptq import quantize
    if isinstance(calibration, torch.Tensor):
        calibration = calibration.detach().cpu().numpy()
    return quantize(g, nchw_to_nhwc(calibration))
