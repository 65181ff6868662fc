"""A float IR graph as a trainable PyTorch module, and back.

:class:`GraphModule` runs a float IR graph (BatchNorm already folded and activations
fused, :func:`compiler.quantize.ptq.fold_batchnorm` / ``fuse_activations``) in PyTorch's
own layout (NCHW, OIHW weights), with every conv and fully-connected layer an
``nn.Conv2d`` / ``nn.Linear`` named after its IR node, so that it can be retrained
(:mod:`compiler.quantize.inq`), its weights written back into the graph
(:meth:`GraphModule.to_graph`), and saved as a ``torch.export`` program
(:func:`export_program`) that the ``.pt2`` importer reads back as the same graph.

Layout: the IR is NHWC; a fully-connected layer after a flattened H x W x C map has
its weight columns in (H, W, C) order, PyTorch's ``flatten`` gives (C, H, W): the module
holds the columns in PyTorch's order and :meth:`to_graph` puts them back.

Supported ops: conv2d (same padding on both sides of an axis), fully_connected, add,
mul, concat, global_avgpool, max_pool (same padding on both sides), flatten, sigmoid,
hardsigmoid (PyTorch's: x / 6 + 1 / 2), hardswish. Any other op (or an input that is
not an image (C, H, W) or a flat vector) raises :class:`UnsupportedOpError` naming it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from compiler.ir.errors import UnsupportedOpError
from compiler.ir.graph import Graph
from compiler.ir.qmath import hw

_WHY = "retraining in PyTorch (INQ)"


def _unsupported(node, why: str):
    raise UnsupportedOpError(node.op, node.name, f"{why} ({_WHY})", node.source)


def _symmetric(node) -> tuple[int, int]:
    pad = hw(node.attrs.get("pad", 0))
    end = node.attrs.get("pad_end")
    if end is not None and tuple(hw(end)) != tuple(pad):
        _unsupported(node, "padding that differs between the two sides of an axis")
    return tuple(int(p) for p in pad)


def _act(y: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """The fused activation clamp, as the operator the ``.pt2`` importer reads back."""
    lo, hi = float(lo), float(hi)
    if lo == -math.inf and hi == math.inf:
        return y
    if lo == 0.0 and hi == math.inf:
        return F.relu(y)
    if math.isfinite(lo) and math.isfinite(hi):
        return F.hardtanh(y, lo, hi)
    return torch.clamp(y, min=lo if math.isfinite(lo) else None,
                       max=hi if math.isfinite(hi) else None)


class _Box(nn.Module):
    """A container for the dotted layer names (``features.0``)."""


class GraphModule(nn.Module):
    """``g`` (a float graph, folded and fused) as an ``nn.Module`` taking NCHW / (N, F)
    inputs; ``layers`` maps each conv / fully-connected node name to its module."""

    def __init__(self, g: Graph):
        super().__init__()
        if g.is_int8:
            raise UnsupportedOpError("graph", g.name, "an int8 graph; expected a float one")
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise UnsupportedOpError("graph", g.name, f"{len(g.inputs)} inputs and "
                                     f"{len(g.outputs)} outputs; expected one of each")
        self.graph_name = g.name
        self.input_name = g.inputs[0]
        self.output_name = g.outputs[0]
        self.plan: list[tuple] = []          # (op, name, inputs, output, attrs)
        self.layers: dict[str, nn.Module] = {}
        self.chw: dict[str, tuple[int, int, int]] = {}   # FC name -> the flattened (C, H, W)
        flat_maps: dict[str, tuple[int, int, int]] = {}
        for n in g.nodes:
            for t in n.inputs:
                if t in flat_maps and n.op != "fully_connected":
                    _unsupported(n, "a flattened feature map feeding anything but a Linear")
            if n.op == "conv2d":
                w = n.params["weight"]
                co, kh, kw, cig = w.shape
                m = nn.Conv2d(cig * n.attrs["groups"], co, (kh, kw), stride=hw(n.attrs["stride"]),
                              padding=_symmetric(n), groups=n.attrs["groups"], bias=True)
                with torch.no_grad():
                    m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(0, 3, 1, 2))))
                    m.bias.copy_(torch.from_numpy(np.asarray(n.params["bias"], np.float32)))
                self._add_layer(n.name, m)
            elif n.op == "fully_connected":
                w = np.asarray(n.params["weight"], np.float32)
                if n.inputs[0] in flat_maps:
                    c, h, wd = flat_maps[n.inputs[0]]
                    self.chw[n.name] = (c, h, wd)
                    w = w.reshape(w.shape[0], h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
                m = nn.Linear(w.shape[1], w.shape[0], bias=True)
                with torch.no_grad():
                    m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                    m.bias.copy_(torch.from_numpy(np.asarray(n.params["bias"], np.float32)))
                self._add_layer(n.name, m)
            elif n.op == "flatten":
                s = g.tensors[n.inputs[0]].shape
                if len(s) == 4 and s[1] * s[2] > 1:
                    flat_maps[n.output] = (s[3], s[1], s[2])
            elif n.op == "max_pool":
                _symmetric(n)
            elif n.op == "hardsigmoid":
                if not (np.isclose(n.attrs["alpha"], 1 / 6) and np.isclose(n.attrs["beta"], 0.5)):
                    _unsupported(n, f"hardsigmoid with alpha {n.attrs['alpha']}, beta "
                                    f"{n.attrs['beta']} (PyTorch's is 1/6, 1/2)")
            elif n.op not in ("add", "mul", "concat", "global_avgpool", "sigmoid", "hardswish"):
                _unsupported(n, "this op is not supported")
            self.plan.append((n.op, n.name, tuple(n.inputs), n.output, dict(n.attrs)))
        if self.output_name in flat_maps:
            raise UnsupportedOpError("flatten", self.output_name, "a flattened feature map as "
                                     f"the model output ({_WHY})")

    def _add_layer(self, name: str, m: nn.Module) -> None:
        parts = name.split(".")
        if not all(p.isidentifier() or p.isdigit() for p in parts):
            parts = ["_".join(p for p in parts if p) or "layer"]
        box = self
        for p in parts[:-1]:
            if p not in box._modules:
                box.add_module(p, _Box())
            box = box._modules[p]
            if not isinstance(box, _Box):        # a layer's name is a prefix of another's
                box, parts = self, [name.replace(".", "_")]
                break
        box.add_module(parts[-1], m)
        self.layers[name] = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input_name: x}
        for op, name, ins, out, a in self.plan:
            v = [env[t] for t in ins]
            lo, hi = a.get("act_min", -math.inf), a.get("act_max", math.inf)
            if op in ("conv2d", "fully_connected"):
                y = _act(self.layers[name](v[0]), lo, hi)
            elif op == "add":
                y = _act(v[0] + v[1], lo, hi)
            elif op == "mul":
                y = _act(v[0] * v[1], lo, hi)
            elif op == "concat":
                y = torch.cat(v, dim=1)
            elif op == "global_avgpool":
                y = v[0].mean(dim=(2, 3), keepdim=True)
            elif op == "max_pool":
                y = F.max_pool2d(v[0], tuple(a["kernel"]), hw(a["stride"]), hw(a["pad"]))
            elif op == "flatten":
                y = torch.flatten(v[0], 1)
            elif op == "sigmoid":
                y = torch.sigmoid(v[0])
            elif op == "hardsigmoid":
                y = F.hardsigmoid(v[0])
            else:   # hardswish
                y = F.hardswish(v[0])
            env[out] = y
        return env[self.output_name]

    def ir_weight(self, name: str) -> np.ndarray:
        """Layer ``name``'s weight in the IR layout (OHWI; FC columns in (H, W, C) order)."""
        w = self.layers[name].weight.detach().cpu().numpy().astype(np.float32)
        if w.ndim == 4:
            return np.ascontiguousarray(w.transpose(0, 2, 3, 1))
        if name in self.chw:
            c, h, wd = self.chw[name]
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        return np.ascontiguousarray(w)

    def to_graph(self, g: Graph) -> Graph:
        """A copy of ``g`` with this module's weights and biases."""
        out = g.copy()
        for n in out.nodes:
            if n.name in self.layers:
                n.params["weight"] = self.ir_weight(n.name)
                n.params["bias"] = self.layers[n.name].bias.detach().cpu().numpy().astype(np.float32)
        return out


def torch_input_shape(g: Graph) -> tuple[int, ...]:
    """The module's input shape without the batch axis: (C, H, W) or (F,)."""
    s = g.tensors[g.inputs[0]].shape
    return (s[3], s[1], s[2]) if len(s) == 4 else tuple(s[1:])


def export_program(module: GraphModule, input_shape, path) -> None:
    """Save ``module`` as a ``torch.export`` program (``.pt2``) for an input of
    ``input_shape`` (without the batch axis)."""
    module = module.eval()
    with torch.no_grad():
        ep = torch.export.export(module, (torch.zeros((1,) + tuple(input_shape)),))
    torch.export.save(ep, str(path))
