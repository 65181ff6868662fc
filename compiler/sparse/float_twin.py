"""Float (PyTorch) twin of an int8 graph: the same model with dequantized parameters.

Used as the fp32 baseline of the training experiments (float master weights trained by
``torch.optim.SGD``) and as the autograd oracle of the gradient-correctness checks. It is
not part of the numeric contract.

- conv2d / fully_connected: weight ``w_q * s_w[c]`` and bias ``b_q * s_x * s_w[c]`` as
  float32 ``nn.Parameter`` s (OHWI / [Co, Ci], like the IR), then the node's clamp in
  real units ``[s_y * (act_min - z_y), s_y * (act_max - z_y)]`` (folded ReLU / ReLU6 and
  int8 saturation); the logits are left unclamped unless ``clamp_logits`` (the training
  program passes the logits' clamp straight through by default, see
  :func:`compiler.autodiff.program.build_program`);
- add: ``a + b`` then its clamp; global_avgpool: mean over H, W; max_pool: torch's
  max_pool2d (the gradient goes to a window's maximum, like the int8 rule); avg_pool:
  torch's avg_pool2d; flatten: NHWC order; mul: ``a * b`` (broadcast gate) then its clamp;
  sigmoid / hardsigmoid / hardswish: torch's functions (the int8 tables round them).

Tensors are NHWC (batch first) real values; :meth:`FloatTwin.dequantize` turns int8
tensors of the graph into them. ``nodes`` restricts the twin to a suffix of the graph
whose inputs (``boundary``) are given to :meth:`forward`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from compiler.ir.graph import Graph
from compiler.ir.qmath import hw, pad_end_hw


def _pad_asym(x, attrs, value: float):
    """(NCHW input, torch padding) of a conv2d / max_pool node: a node whose trailing pads
    differ (``pad_end``) gets its four borders explicitly, then padding 0."""
    if "pad_end" not in attrs:
        return x, attrs["pad"]
    (ph, pw), (pb, pr) = hw(attrs["pad"]), pad_end_hw(attrs)
    return F.pad(x, (pw, pr, ph, pb), value=value), 0


def _key(name: str) -> str:
    return name.replace(".", "__")


class FloatTwin(nn.Module):
    def __init__(self, g: Graph, nodes: list[str] | None = None, clamp: bool = True,
                 clamp_logits: bool = False):
        super().__init__()
        self.g = g
        self.node_list = [g.node(n) for n in nodes] if nodes is not None else list(g.nodes)
        self.clamp = clamp
        self.clamp_logits = clamp_logits
        self.weights = nn.ParameterDict()
        self.biases = nn.ParameterDict()
        for n in self.node_list:
            if n.traits.has_params:
                p = n.params
                sw = p["w_scales"].astype(np.float64)
                sx = float(g.tensors[n.inputs[0]].scale)
                shape = (-1,) + (1,) * (p["weight"].ndim - 1)
                w = p["weight"].astype(np.float64) * sw.reshape(shape)
                b = p["bias"].astype(np.float64) * sx * sw
                self.weights[_key(n.name)] = nn.Parameter(torch.tensor(w, dtype=torch.float32))
                self.biases[_key(n.name)] = nn.Parameter(torch.tensor(b, dtype=torch.float32))

    def weight(self, node: str) -> nn.Parameter:
        return self.weights[_key(node)]

    def bias(self, node: str) -> nn.Parameter:
        return self.biases[_key(node)]

    def dequantize(self, name: str, q) -> torch.Tensor:
        t = self.g.tensors[name]
        return torch.tensor((np.asarray(q, np.float64) - t.zero_point) * t.scale, dtype=torch.float32)

    def _clamp(self, n, y):
        if not self.clamp or (n.output in self.g.outputs and not self.clamp_logits):
            return y
        t = self.g.tensors[n.output]
        lo = t.scale * (n.attrs["act_min"] - t.zero_point)
        hi = t.scale * (n.attrs["act_max"] - t.zero_point)
        m = getattr(self, "_masks", {}).get(n.name)
        if m is not None:
            return torch.where(torch.as_tensor(np.asarray(m, bool)), y, torch.clamp(y, lo, hi).detach())
        return torch.clamp(y, lo, hi)

    def forward(self, env: dict, edges: dict | None = None, masks: dict | None = None) -> dict:
        """``env``: real boundary tensors (NHWC). Returns every tensor. With ``edges`` (a
        dict), each node input is passed through its own clone with ``retain_grad`` and
        stored under (node name, input index): its ``.grad`` is that node's contribution to
        the input's gradient. ``masks`` ({node name: bool array}) replaces the clamp's
        derivative of those nodes by the given mask (e.g. the int8 forward's), keeping the
        clamped forward values."""
        env = dict(env)
        self._masks = masks or {}
        for n in self.node_list:
            xs = []
            for i, t in enumerate(n.inputs):
                v = env[t]
                if edges is not None and v.requires_grad:
                    v = v.clone()
                    v.retain_grad()
                    edges[(n.name, i)] = v
                xs.append(v)
            if n.op == "conv2d":
                a = n.attrs
                w = self.weight(n.name).permute(0, 3, 1, 2)
                x, pad = _pad_asym(xs[0].permute(0, 3, 1, 2), a, 0.0)
                y = F.conv2d(x, w, self.bias(n.name), stride=a["stride"],
                             padding=pad, groups=a["groups"]).permute(0, 2, 3, 1)
                y = self._clamp(n, y)
            elif n.op == "fully_connected":
                y = self._clamp(n, F.linear(xs[0], self.weight(n.name), self.bias(n.name)))
            elif n.op == "add":
                y = self._clamp(n, xs[0] + xs[1])
            elif n.op == "concat":
                y = torch.cat(xs, dim=-1)
            elif n.op == "global_avgpool":
                y = xs[0].mean(dim=(1, 2), keepdim=True)
            elif n.op == "max_pool":
                a = n.attrs
                x, pad = _pad_asym(xs[0].permute(0, 3, 1, 2), a, -float("inf"))
                y = F.max_pool2d(x, tuple(a["kernel"]), a["stride"], pad).permute(0, 2, 3, 1)
            elif n.op == "avg_pool":
                a = n.attrs
                y = F.avg_pool2d(xs[0].permute(0, 3, 1, 2), tuple(a["kernel"]), a["stride"], a["pad"],
                                 count_include_pad=bool(a["count_include_pad"])).permute(0, 2, 3, 1)
            elif n.op == "flatten":
                y = xs[0].reshape(xs[0].shape[0], -1)
            elif n.op == "mul":
                y = self._clamp(n, xs[0] * xs[1])
            elif n.op == "sigmoid":
                y = torch.sigmoid(xs[0])
            elif n.op == "hardsigmoid":
                y = torch.clamp(xs[0] * n.attrs["alpha"] + n.attrs["beta"], 0.0, 1.0)
            elif n.op == "hardswish":
                y = F.hardswish(xs[0])
            else:
                raise NotImplementedError(f"float twin: op {n.op!r} ({n.name})")
            env[n.output] = y
        return env


# ----------------------------------------------------------------------------- gradient check

def layer_type(node) -> str:
    """Layer type used in gradient reports: conv kxk, depthwise, pointwise, fc, add,
    avgpool, flatten."""
    if node.op == "conv2d":
        return {"kxk": "conv kxk", "grouped": "conv kxk"}.get(node.conv_kind, node.conv_kind)
    return {"fully_connected": "fc", "global_avgpool": "avgpool"}.get(node.op, node.op)


def cosine(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def compare_gradients(g: Graph, x, label: int, config=None, int8_masks: bool = False) -> list[dict]:
    """int8 reference gradients of one sample vs torch autograd on the float twin.

    Trains every layer of a copy of ``g`` with ``lr = 0`` (so nothing changes) and
    compares, per node: the real weight gradient ``s_gy * s_x * A`` with ``w.grad``; the
    node's contribution to its input's gradient (dequantized int8) with the same edge in
    torch. ``int8_masks`` makes torch use the int8 forward's clamp masks, isolating the
    backward arithmetic from forward rounding differences. Returns dicts with keys
    type, what (weight | input), node, cos."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.ref import grad_ops as rgo

    g = g.copy()
    cfg = tr.TrainConfig(lr=0.0) if config is None else config
    if cfg.lr != 0:
        raise ValueError("compare_gradients needs lr = 0")
    prog = ad.build_program(g, ad.whole_model(g))
    state = tr.TrainState(cfg)
    x = np.asarray(x).reshape((1,) + tuple(g.tensors[g.inputs[0]].shape[1:]))
    fwd = tr.forward(g, prog, x=x)
    tr.train_step(g, prog, state, x, label, trace=True)
    twin = FloatTwin(g)
    masks = None
    if int8_masks:
        masks = {n.name: rgo.clamp_mask(fwd[n.output], n.attrs["act_min"], n.attrs["act_max"])
                 for n in g.nodes if n.traits.clamps and n.output != prog.logits}
    edges: dict = {}
    env = twin.forward({g.inputs[0]: twin.dequantize(g.inputs[0], x)}, edges, masks)
    loss = F.cross_entropy(env[prog.logits], torch.tensor([int(label)]))
    loss.backward()
    out = []
    for n in g.nodes:
        kind = layer_type(n)
        if n.traits.has_params:
            a, s = state.trace[f"A:{n.name}"]
            out.append(dict(type=kind, what="weight", node=n.name,
                            cos=cosine(a.astype(np.float64) * float(s), twin.weight(n.name).grad.numpy())))
        for i, gx in enumerate(prog.input_grads.get(n.name, [])):
            if gx is None:
                continue
            q, s = state.trace[gx]
            out.append(dict(type=kind, what="input", node=n.name,
                            cos=cosine(q.astype(np.float64) * float(s), edges[(n.name, i)].grad.numpy())))
    return out
