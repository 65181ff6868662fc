"""Model surgery for transfer learning: a new N-class classifier head, another input size.

:func:`replace_head` swaps the 1000-class ``fully_connected`` classifier of a real model
for an N-class one that can train with :mod:`compiler.autodiff.trainer`:

- weights int8 OHWI ``[N, Ci]``: zeros (``init="zero"``) or a seeded draw from
  U(-1/sqrt(Ci), 1/sqrt(Ci)) in real units (PyTorch's ``nn.Linear`` default,
  ``init="seeded"``), quantized with the chosen scale;
- per-channel weight scale: one value for all classes, ``w_range / 127``, where the
  real weight range defaults to ``W_RANGE_PER_SQRT_FAN / sqrt(Ci)`` (room for trained
  weights several times the initial draw; saturation at +-127 is the failure mode of a
  too small scale, coarse updates the one of a too large one -- stochastic rounding
  makes the latter cheap);
- bias int32 zeros (scale ``x_scale * w_scale[c]``);
- output: zero point 0 and scale ``2 * logit_range / 255`` so logits in about
  [-logit_range, logit_range] are representable (softmax saturates well inside +-16);
  the clamp is the full int8 range.

:func:`with_input_size` gives a fully convolutional model another input resolution
(the real models are pretrained at 128x128; smaller inputs make quick experiments).
"""
from __future__ import annotations

import math

import numpy as np

from compiler.ir.errors import GraphError
from compiler.ir.graph import Graph, infer_shape
from compiler.ir.qmath import quantize_multipliers

W_RANGE_PER_SQRT_FAN = 4.0
DEFAULT_LOGIT_RANGE = 16.0


def classifier_node(g: Graph):
    """The ``fully_connected`` node producing the graph's (single) output."""
    heads = g.classifier_nodes()
    if len(g.outputs) != 1 or not heads:
        raise GraphError(f"{g.name}: expected one output produced by a fully_connected classifier")
    return heads[0]


def replace_head(g: Graph, n_classes: int, init: str = "zero", seed: int = 0, *,
                 logit_range: float = DEFAULT_LOGIT_RANGE, w_range: float | None = None) -> Graph:
    """Copy of ``g`` with an ``n_classes``-way classifier (see module doc)."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    if init not in ("zero", "seeded"):
        raise ValueError(f"init must be 'zero' or 'seeded', got {init!r}")
    g = g.copy()
    fc = classifier_node(g)
    ci = int(fc.params["weight"].shape[1])
    x = g.tensors[fc.inputs[0]]
    if w_range is None:
        w_range = W_RANGE_PER_SQRT_FAN / math.sqrt(ci)
    s_w = np.float32(w_range / 127.0)
    w_scales = np.full(n_classes, s_w, dtype=np.float32)
    if init == "zero":
        w = np.zeros((n_classes, ci), np.int8)
    else:
        bound = 1.0 / math.sqrt(ci)
        real = np.random.default_rng(seed).uniform(-bound, bound, (n_classes, ci))
        q = real / float(s_w)
        w = np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5), -127, 127).astype(np.int8)
    y_scale = 2.0 * float(logit_range) / 255.0
    mult, shift = quantize_multipliers(float(x.scale) * w_scales.astype(np.float64) / y_scale)
    fc.params = dict(weight=w, bias=np.zeros(n_classes, np.int32), w_scales=w_scales,
                     mult=mult, shift=shift)
    fc.attrs = dict(fc.attrs, act_min=-128, act_max=127)
    out = g.tensors[fc.output]
    out.shape = (out.shape[0], n_classes)
    out.scale = y_scale
    out.zero_point = 0
    g.metadata = dict(g.metadata, head=dict(classes=n_classes, init=init, seed=seed,
                                           logit_range=float(logit_range), w_range=float(w_range)))
    return g.validate()


def with_input_size(g: Graph, h: int, w: int | None = None) -> Graph:
    """Copy of a fully convolutional ``g`` whose input is ``h`` x ``w`` (default square);
    every tensor shape is re-inferred (raises GraphError if a layer cannot take it)."""
    w = h if w is None else w
    g = g.copy()
    if len(g.inputs) != 1 or len(g.tensors[g.inputs[0]].shape) != 4:
        raise GraphError(f"{g.name}: with_input_size needs one NHWC input")
    t = g.tensors[g.inputs[0]]
    t.shape = (t.shape[0], int(h), int(w), t.shape[3])
    for n in g.nodes:
        g.tensors[n.output].shape = infer_shape(n, [g.tensors[i].shape for i in n.inputs])
    g.metadata = dict(g.metadata, input_size=[int(h), int(w)])
    return g.validate()
