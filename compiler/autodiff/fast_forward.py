"""The trainer's forward operators: the reference executor's (:data:`compiler.ref.ops.KERNELS`)
with a faster ``conv2d``, bit for bit the same.

A depthwise conv runs whole in C (:func:`compiler.autodiff.native_steps.dw_conv`: int32
sums, requantization and clamp in one pass, where numpy makes two passes per tap); any
other conv keeps the reference's float GEMM (:func:`compiler.ref.ops.conv_sums`: BLAS
beats plain C loops there) and finishes in C (bias, requantization and clamp in one pass
instead of six numpy calls). A residual ``add`` runs in C too. Without
the C library, or for a case it does not take, the reference's own function runs.
:func:`compiler.autodiff.trainer.reference_kernels` switches back to the reference.
"""
from __future__ import annotations

import numpy as np

from compiler.autodiff import native_steps as nat
from compiler.ir.graph import Graph, Node
from compiler.ir.qmath import ADD_LEFT_SHIFT, hw, out_size
from compiler.ref import ops


def conv2d(g: Graph, node: Node, x) -> np.ndarray:
    a, p = node.attrs, node.params
    w = p["weight"]
    x_zero = g.tensors[node.inputs[0]].zero_point
    y_zero = g.tensors[node.output].zero_point
    groups, pad_end = a["groups"], a.get("pad_end")
    co, kh, kw, cig = np.shape(w)
    out = None
    if groups == co and cig == 1 and np.shape(x)[-1] == co:   # depthwise
        (sh, sw), (ph, pw) = hw(a["stride"]), hw(a["pad"])
        pb, pr = hw(a["pad"] if pad_end is None else pad_end)
        _, h, wd, _ = np.shape(x)
        ho, wo = out_size(h, kh, sh, ph, pb), out_size(wd, kw, sw, pw, pr)
        if ho > 0 and wo > 0:
            out = nat.dw_conv(x, w, p["bias"], x_zero, (sh, sw), (ph, pw), (ho, wo), p["mult"],
                              p["shift"], y_zero, a["act_min"], a["act_max"])
    else:
        acc = ops.conv_sums(x, w, x_zero, a["stride"], a["pad"], groups, pad_end)
        out = nat.rq_tail(acc, p["bias"], p["mult"], p["shift"], y_zero, a["act_min"], a["act_max"])
    return out if out is not None else ops.KERNELS["conv2d"](g, node, x)


def add(g: Graph, node: Node, x1, x2) -> np.ndarray:
    a = node.attrs
    out = nat.add(x1, x2, node.add_params(), a["act_min"], a["act_max"], ADD_LEFT_SHIFT)
    return out if out is not None else ops.KERNELS["add"](g, node, x1, x2)


#: op -> forward operator of the trainer
KERNELS = dict(ops.KERNELS, conv2d=conv2d, add=add)
