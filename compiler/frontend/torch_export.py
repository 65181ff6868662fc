"""torch.export programs (``.pt2`` from ``torch.export.save``) -> IR graph.

``torch.export.load(path).module()`` is an fx GraphModule of ATen operators
(``aten.conv2d``, ``aten.linear``, ``aten.batch_norm``, ...) whose parameters are
``get_attr`` nodes. Each operator is mapped onto the same IR builders as the torch.fx
importer (:mod:`compiler.frontend.torch_fx`): a layer is rebuilt as its ``nn`` module
from the operator's tensors and arguments and imported exactly as that module would be,
so the graph equals the ``FILE.py:FACTORY`` import of the same module (same nodes, named
after the same module paths). The input shape is the program's example input.

Unsupported operators raise :class:`compiler.ir.errors.UnsupportedOpError` naming the
operator, the module path and the source line (from the program's recorded stack).
"""
from __future__ import annotations

import operator
import os
import re
from pathlib import Path

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from compiler.frontend.torch_fx import _Importer, _Val
from compiler.ir.errors import ModelFormatError, UnsupportedOpError
from compiler.ir.graph import Graph

aten = torch.ops.aten

_CONV = {aten.conv2d.default, aten.conv1d.default, aten.conv2d.padding, aten.conv1d.padding}
_BN = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default}
_RELU = {aten.relu.default, aten.relu_.default}
_HARDTANH = {aten.hardtanh.default, aten.hardtanh_.default, aten.relu6.default}
_CLAMP = {aten.clamp.default, aten.clamp_.default, aten.clip.default}
_MAXPOOL = {aten.max_pool2d.default, aten.max_pool2d_with_indices.default, aten.max_pool1d.default}
_GAP = {aten.adaptive_avg_pool2d.default, aten.adaptive_avg_pool1d.default}
_AVGPOOL = {aten.avg_pool2d.default, aten.avg_pool1d.default}
_ADD = {aten.add.Tensor, aten.add_.Tensor}
_MUL = {aten.mul.Tensor, aten.mul_.Tensor}
_RESHAPE = {aten.flatten.using_ints, aten.view.default, aten.reshape.default,
            aten._unsafe_view.default}
_PASS = {aten.dropout.default, aten.dropout_.default, aten.clone.default, aten.detach.default,
         aten.alias.default, aten.contiguous.default, aten.feature_dropout.default}
_ACT = {aten.sigmoid.default: "sigmoid", aten.sigmoid_.default: "sigmoid",
        aten.hardsigmoid.default: "hardsigmoid", aten.hardsigmoid_.default: "hardsigmoid",
        aten.hardswish.default: "hardswish", aten.hardswish_.default: "hardswish"}
SUPPORTED = (_CONV | _BN | _RELU | _HARDTANH | _CLAMP | _MAXPOOL | _GAP | _AVGPOOL | _ADD | _MUL
             | _RESHAPE | _PASS | set(_ACT) | {aten.linear.default, aten.mean.dim, aten.cat.default,
                                               operator.getitem})


def _op_name(target) -> str:
    """``aten.conv2d.default`` -> ``aten.conv2d``."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target).removesuffix(".default")
    return str(getattr(target, "__name__", target))


def _stack_path(node: fx.Node) -> tuple[str, str]:
    """(module path, layer class name) of the innermost module the op ran in."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, typ = list(stack.values())[-1]
    return str(path), str(typ).rsplit(".", 1)[-1]


class _AtenImporter(_Importer):
    def __init__(self, gm: fx.GraphModule, name: str):
        super().__init__(gm, name)
        self.g.metadata.update(source_format="torch.export")
        self.layer_calls: dict[str, int] = {}

    def source(self, n: fx.Node) -> str:
        path, typ = _stack_path(n)
        where = f"module {path!r}" if path else "module <top>"
        frames = re.findall(r'File "([^"]+)", line (\d+)', n.meta.get("stack_trace") or "")
        frames = [f for f in frames if f"{os.sep}torch{os.sep}" not in f[0]]
        if frames:
            where += f" at {frames[-1][0].rsplit('/', 1)[-1]}:{frames[-1][1]}"
        return where

    def fail(self, op: str, reason: str):
        raise UnsupportedOpError(op, self.node.name, reason, self.source(self.node))

    def emit(self, op, inputs, attrs=None, params=None, base=None) -> str:
        from compiler.frontend.common import unique_name
        n = self.node
        path, typ = _stack_path(n)
        # the op of a leaf layer (Conv2d, ReLU, ...) is named after the module, as the fx
        # importer names a call_module node; functional ops keep their node name
        leaf = path and typ in _LEAF_TYPES and base is None
        name = unique_name(self.g, path if leaf else (base or n.name))
        return self.g.add_node(op, name, inputs, attrs, params, source=self.source(n))

    def const(self, a, op: str) -> torch.Tensor | None:
        if a is None:
            return None
        v = self.env.get(a) if isinstance(a, fx.Node) else None
        if not isinstance(v, torch.Tensor):
            self.fail(op, f"expected a parameter tensor, got {a!r}")
        return v

    # -- layers rebuilt as modules ------------------------------------------------------
    def aten_conv(self, n, args):
        op = _op_name(n.target)
        x = self.tensor_arg(args[0], op)
        w, b = self.const(args[1], op), self.const(args[2] if len(args) > 2 else None, op)
        names = ("stride", "padding", "dilation", "groups")
        given = dict(zip(names, args[3:]))
        given.update({k: v for k, v in n.kwargs.items() if k in names})
        one_d = w.ndim == 3
        cls = nn.Conv1d if one_d else nn.Conv2d
        groups = int(given.get("groups", 1))
        pad = given.get("padding", 0)
        m = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]),
                stride=tuple(given.get("stride", 1)) if not isinstance(given.get("stride", 1), int)
                else given.get("stride", 1),
                padding=pad if isinstance(pad, (str, int)) else tuple(pad),
                dilation=tuple(given.get("dilation", 1)) if not isinstance(given.get("dilation", 1), int)
                else given.get("dilation", 1), groups=groups, bias=b is not None)
        with torch.no_grad():
            m.weight.copy_(w)
            if b is not None:
                m.bias.copy_(b)
        return self.conv(m, x)

    def aten_linear(self, n, args):
        x = self.tensor_arg(args[0], "linear")
        w, b = self.const(args[1], "linear"), self.const(args[2] if len(args) > 2 else None, "linear")
        m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            m.weight.copy_(w)
            if b is not None:
                m.bias.copy_(b)
        return self.linear(m, x)

    def aten_batch_norm(self, n, args):
        op = _op_name(n.target)
        x = self.tensor_arg(args[0], op)
        gamma, beta, mean, var = (self.const(a, op) for a in args[1:5])
        if n.target is aten.batch_norm.default:
            if args[5]:
                self.fail(op, "batch norm in training mode (export the module in eval mode)")
            eps = float(args[7])
        else:
            eps = float(args[6])
        if mean is None or var is None:
            self.fail(op, "track_running_stats=False: no statistics to fold")
        if self.rank(x) == 2 and x.chw is not None:
            self.fail(op, "BatchNorm1d on a flattened feature map is not supported")
        m = (nn.BatchNorm2d if self.rank(x) == 4 else nn.BatchNorm1d)(mean.numel(), eps=eps,
                                                                     affine=gamma is not None)
        with torch.no_grad():
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            if gamma is not None:
                m.weight.copy_(gamma)
                m.bias.copy_(beta if beta is not None else torch.zeros_like(gamma))
        out = self.batchnorm(m, x)
        return (out, None, None) if n.target is not aten.batch_norm.default else out

    # -- dispatch --------------------------------------------------------------------------
    def aten(self, n: fx.Node):
        t, args, kw = n.target, tuple(n.args), dict(n.kwargs)
        op = _op_name(t)
        if t is operator.getitem:
            v = self.env.get(args[0])
            if not isinstance(v, tuple):
                self.fail(op, "indexing or slicing tensors is not supported")
            return v[args[1]]
        if t in _CONV:
            return self.aten_conv(n, args)
        if t is aten.linear.default:
            return self.aten_linear(n, args)
        if t in _BN:
            return self.aten_batch_norm(n, args)
        if t is aten.cat.default:
            return self.cat(list(args[0]), args[1] if len(args) > 1 else kw.get("dim", 0), op)
        if t in _ADD:
            if kw.get("alpha", 1) != 1:
                self.fail(op, "add with alpha != 1")
            return self.add(args[0], args[1], op)
        if t in _MUL:
            return self.mul(args[0], args[1], op)
        x = self.tensor_arg(args[0], op)
        rest = args[1:]
        if t in _ACT:
            return self.elementwise(_ACT[t], x)
        if t in _RELU:
            return self.clip(x, 0.0, float("inf"), op)
        if t in _HARDTANH:
            if t is aten.relu6.default:
                return self.clip(x, 0.0, 6.0, op)
            return self.clip(x, rest[0] if rest else -1.0, rest[1] if len(rest) > 1 else 1.0, op)
        if t in _CLAMP:
            lo = rest[0] if rest else kw.get("min")
            hi = rest[1] if len(rest) > 1 else kw.get("max")
            if any(isinstance(v, fx.Node) for v in (lo, hi)):
                self.fail(op, "clamp bounds must be constants")
            return self.clip(x, -float("inf") if lo is None else lo,
                             float("inf") if hi is None else hi, op)
        if t in _MAXPOOL:
            names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
            g = dict(zip(names, rest))
            g.update({k: v for k, v in kw.items() if k in names})
            k, st, pad, dil = (g.get("kernel_size"), g.get("stride"), g.get("padding", 0),
                               g.get("dilation", 1))
            if t is aten.max_pool1d.default:   # 1 x K windows on a 1 x L map
                def one(v):
                    return (1, v[0] if isinstance(v, (list, tuple)) else v)
                k, st = one(k), (one(st) if st not in (None, (), []) else None)
                pad = (0, pad[0] if isinstance(pad, (list, tuple)) else pad)
                dil = dil[0] if isinstance(dil, (list, tuple)) else dil
            y = self.maxpool(x, op, k, st, pad, dil, g.get("ceil_mode", False))
            return (y, None) if t is aten.max_pool2d_with_indices.default else y
        if t in _GAP:
            size = rest[0] if rest else kw.get("output_size")
            if list(size) not in ([1], [1, 1]):
                self.fail(op, f"output_size={size} (only global pooling, 1, is supported)")
            return self.pool(x, op)
        if t in _AVGPOOL:
            xs = self.g.tensors[x.name].shape
            k = list(rest[0]) if rest else []
            k = [1] + k if t is aten.avg_pool1d.default else k
            k = k * 2 if len(k) == 1 else k
            pad = list(rest[2]) if len(rest) > 2 else [0]
            if self.rank(x) != 4 or tuple(k) != (xs[1], xs[2]) or any(pad) or \
                    (len(rest) > 3 and rest[3]):
                self.fail(op, "only an average pool covering the whole feature map (global "
                              "pooling) is supported")
            return self.pool(x, op)
        if t is aten.mean.dim:
            dims = rest[0] if rest else kw.get("dim")
            keep = rest[1] if len(rest) > 1 else kw.get("keepdim", False)
            if self.rank(x) != 4 or {d % 4 for d in dims} != {2, 3}:
                self.fail(op, "mean is only supported over the spatial dims (2, 3)")
            return self.pool(x, op, keepdim=bool(keep))
        if t in _RESHAPE:
            if t is aten.flatten.using_ints:
                start = rest[0] if rest else kw.get("start_dim", 0)
                end = rest[1] if len(rest) > 1 else kw.get("end_dim", -1)
                if start != 1 or end != -1:
                    self.fail(op, f"flatten(start_dim={start}, end_dim={end}); only (1, -1)")
            return self.flatten(x, op)
        if t in _PASS:
            return x
        self.fail(op, "operator not supported")

    def precheck_aten(self, gm: fx.GraphModule) -> None:
        for n in gm.graph.nodes:
            self.node = n
            if n.op == "call_function" and n.target not in SUPPORTED:
                names = sorted({_op_name(t) for t in SUPPORTED if t is not operator.getitem})
                self.fail(_op_name(n.target), "operator not supported; supported operators: "
                          + ", ".join(names))

    def run_aten(self, gm: fx.GraphModule) -> Graph:
        from compiler.ir.graph import FLOAT32
        for n in gm.graph.nodes:
            self.node = n
            if n.op == "placeholder":
                shape = self.shape(n)
                ir = {4: lambda s: (1, s[2], s[3], s[1]), 3: lambda s: (1, 1, s[2], s[1]),
                      2: lambda s: (1, s[1])}.get(len(shape))
                if ir is None:
                    self.fail("input", f"input of shape {shape}: expected (N, C, H, W), (N, C, L) "
                                       "or (N, F)")
                self.env[n] = _Val(self.g.add_input(n.name, ir(shape), FLOAT32))
            elif n.op == "get_attr":
                self.env[n] = _attr(gm, n.target)
            elif n.op == "call_module":
                self.env[n] = None   # the program's input guards
            elif n.op == "call_function":
                self.env[n] = self.aten(n)
            elif n.op == "output":
                self.add_outputs(n)
            else:
                self.fail(n.op, "node kind not supported")
        return self.g.validate()


#: layer classes whose op takes the module's name (as the fx importer names them)
_LEAF_TYPES = {"Conv2d", "Conv1d", "Linear", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6",
               "Hardtanh", "AdaptiveAvgPool2d", "AdaptiveAvgPool1d", "AvgPool2d", "AvgPool1d",
               "MaxPool2d", "MaxPool1d", "Flatten", "Sigmoid", "Hardsigmoid", "Hardswish"}


def _attr(gm: nn.Module, target: str) -> torch.Tensor:
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj.detach() if isinstance(obj, torch.Tensor) else obj


def load_program(path) -> tuple[fx.GraphModule, tuple[int, ...]]:
    """``.pt2`` -> (its ATen GraphModule, the example input's shape (N, ...))."""
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"model file not found: {p}")
    import logging
    quiet = logging.getLogger("torch.export")   # its own warning repeats the error below
    level, quiet.level = quiet.level, logging.ERROR
    try:
        ep = torch.export.load(str(p))
    except Exception as e:
        raise ModelFormatError(f"{p}: not a torch.export program ({type(e).__name__}: {e}); "
                               "save one with torch.export.save(torch.export.export(model, "
                               "(example,)), PATH)") from None
    finally:
        quiet.setLevel(level)
    args = ep.example_inputs[0] if ep.example_inputs else ()
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if len(tensors) != 1 or len(args) != 1:
        raise ModelFormatError(f"{p}: the program takes {len(args)} input(s); expected one input "
                               "tensor")
    return ep.module(), tuple(tensors[0].shape)


def import_program(path, *, input_shape=None, name: str | None = None, calibration=None) -> Graph:
    """Import a ``.pt2`` program as a float IR graph, or int8 with ``calibration``
    samples in the module's own layout ((N, C, H, W), (N, C, L) or (N, F))."""
    gm, shape = load_program(path)
    if input_shape is not None and tuple(input_shape) != shape[1:]:
        raise ModelFormatError(f"{path}: the program was exported for input {shape}, not "
                               f"--input-shape {','.join(map(str, input_shape))} (export it again "
                               "with that example input, or leave --input-shape out)")
    importer = _AtenImporter(gm, name or Path(path).stem)
    importer.precheck_aten(gm)
    from torch.fx.passes.shape_prop import ShapeProp
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(shape))
    except Exception as e:
        raise ModelFormatError(f"{path}: running the program on a zero input of shape {shape} "
                               f"failed: {type(e).__name__}: {e}") from None
    g = importer.run_aten(gm)
    if calibration is None:
        return g
    from compiler.frontend.common import nchw_to_nhwc
    from compiler.quantize.ptq import quantize
    return quantize(g, nchw_to_nhwc(np.asarray(calibration, np.float32)))
