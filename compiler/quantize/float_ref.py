"""Float executor of (float) IR graphs, numpy float32, batched NHWC.

Used to calibrate post-training quantization (``compiler.quantize.ptq``) and to check an
importer against the framework it imports from. The integer oracle is
``compiler.ref.executor``; this module is not part of the numeric contract.
"""
from __future__ import annotations

import numpy as np

from compiler.ir.errors import GraphError
from compiler.ir.graph import Graph, Node
from compiler.ir.ops import LUT_FUNCTIONS, window_count, window_max, window_sum
from compiler.ir.qmath import hw


def conv2d_f(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, pad,
             groups: int, pad_end=None) -> np.ndarray:
    """Float conv, x [N,H,W,Ci], w OHWI [Co,kh,kw,Ci/groups] -> [N,Ho,Wo,Co]; ``stride``,
    ``pad``: int or per axis (h, w); ``pad_end``: the trailing (bottom, right) pads when
    they differ from ``pad`` (None: symmetric)."""
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    pb, pr = hw(pad if pad_end is None else pad_end)
    dt = np.result_type(x.dtype, w.dtype, np.float32)
    x = x.astype(dt, copy=False)
    w = w.astype(dt, copy=False)
    n, h, wd, ci = x.shape
    co, kh, kw, cig = w.shape
    if ph or pw or pb or pr:
        x = np.pad(x, ((0, 0), (ph, pb), (pw, pr), (0, 0)))
    ho = (h + ph + pb - kh) // sh + 1
    wo = (wd + pw + pr - kw) // sw + 1
    if groups == ci and cig == 1 and co == ci:  # depthwise
        y = np.zeros((n, ho, wo, co), dtype=dt)
        for i in range(kh):
            for j in range(kw):
                y += x[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :] * w[:, i, j, 0]
        return y + b.astype(dt)
    s = x.strides
    cols = np.lib.stride_tricks.as_strided(
        x, shape=(n, ho, wo, kh, kw, ci),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1], s[2], s[3]), writeable=False)
    if groups == 1:
        y = cols.reshape(n * ho * wo, -1) @ w.reshape(co, -1).T
    else:
        cog = co // groups
        y = np.concatenate(
            [cols[..., g * cig:(g + 1) * cig].reshape(n * ho * wo, -1)
             @ w[g * cog:(g + 1) * cog].reshape(cog, -1).T for g in range(groups)], axis=1)
    return y.reshape(n, ho, wo, co) + b.astype(dt)


def _act(node: Node, y: np.ndarray) -> np.ndarray:
    lo, hi = node.attrs.get("act_min", -np.inf), node.attrs.get("act_max", np.inf)
    if lo == -np.inf and hi == np.inf:
        return y
    return np.clip(y, lo, hi)


def _conv(node, x):
    a, p = node.attrs, node.params
    return _act(node, conv2d_f(x, p["weight"], p["bias"], a["stride"], a["pad"], a["groups"],
                                   a.get("pad_end")))


def _fc(node, x):
    p = node.params
    return _act(node, x @ p["weight"].astype(x.dtype).T + p["bias"].astype(x.dtype))


def _add(node, a, b):
    return _act(node, a + b)


def _concat(node, *xs):
    return np.concatenate(xs, axis=-1)


def _mul(node, a, b):
    return _act(node, a * b)


def _pool(node, x):
    return x.mean(axis=(1, 2), keepdims=True, dtype=x.dtype)


def _max_pool(node, x):
    kh, kw = node.attrs["kernel"]
    return window_max(x, kh, kw, node.attrs["stride"], node.attrs["pad"], -np.inf,
                      node.attrs.get("pad_end"))


def _avg_pool(node, x):
    a = node.attrs
    kh, kw = a["kernel"]
    count = window_count(x.shape[1], x.shape[2], kh, kw, a["stride"], a["pad"], a["count_include_pad"])
    return (window_sum(x, kh, kw, a["stride"], a["pad"], 0) / count[None, :, :, None]).astype(x.dtype)


def _flatten(node, x):
    return x.reshape(x.shape[0], -1)


def _bn(node, x):
    p = node.params
    scale = p["gamma"] / np.sqrt(p["var"] + node.attrs["eps"])
    return (x - p["mean"]) * scale + p["beta"]


def _clip(node, x):
    return np.clip(x, node.attrs["min"], node.attrs["max"])


FLOAT_KERNELS = {"conv2d": _conv, "fully_connected": _fc, "add": _add, "concat": _concat,
                 "mul": _mul, **{op: (lambda f: lambda node, x: f(node, x).astype(x.dtype))(f)
                                 for op, f in LUT_FUNCTIONS.items()},
                 "global_avgpool": _pool, "max_pool": _max_pool, "flatten": _flatten, "batch_norm": _bn, "clip": _clip,
                 "avg_pool": _avg_pool}


def run_float(g: Graph, x, *, return_all: bool = False, batch_size: int = 256):
    """Run a float graph on float inputs ``x`` (one array, NHWC/NC with batch axis, or a
    list for multi-input graphs). Returns the output array (list if several outputs) or,
    with ``return_all``, a dict of every tensor."""
    if g.is_int8:
        raise GraphError("run_float executes float graphs; use compiler.ref.executor.run for int8")
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    n = xs[0].shape[0]
    chunks = []
    for s in range(0, n, batch_size):
        env = {name: np.asarray(v[s:s + batch_size], dtype=np.float32) for name, v in zip(g.inputs, xs)}
        for node in g.nodes:
            env[node.output] = FLOAT_KERNELS[node.op](node, *[env[t] for t in node.inputs])
        chunks.append(env if return_all else {t: env[t] for t in g.outputs})
    merged = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    if return_all:
        return merged
    outs = [merged[t] for t in g.outputs]
    return outs[0] if len(outs) == 1 else outs
