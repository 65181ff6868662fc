"""Integer-exact forward pass of int8 IR graphs: the oracle the C runtime must match.

Every node is executed by the corresponding operator of :mod:`compiler.ref.ops` (the
numeric contract shared with the C kernels), on a batch of N samples at once:
``run(graph, x)`` with ``x`` int8 of shape ``(N, *input_shape[1:])`` (NHWC images).
Large batches are processed in chunks of ``batch_size`` samples to bound memory; the
result does not depend on the chunking.
"""
from __future__ import annotations

import numpy as np

from compiler.ir.errors import GraphError
from compiler.ir.graph import Graph
from compiler.ref.ops import KERNELS  # op -> int8 reference of a node


def _check_inputs(g: Graph, xs: list[np.ndarray]) -> None:
    if len(xs) != len(g.inputs):
        raise GraphError(f"{g.name}: expected {len(g.inputs)} input(s), got {len(xs)}")
    for name, x in zip(g.inputs, xs):
        want = g.tensors[name].shape[1:]
        if x.dtype != np.int8 or x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
            raise GraphError(f"{g.name}: input {name!r} must be int8 of shape (N, "
                             f"{', '.join(map(str, want))}), got {x.dtype} {x.shape}")


def _run_chunk(g: Graph, xs: list[np.ndarray], keep: set[str] | None, last_use: dict[str, int]):
    env = dict(zip(g.inputs, xs))
    for i, node in enumerate(g.nodes):
        kernel = KERNELS.get(node.op)
        if kernel is None:
            raise GraphError(f"{node.name}: op {node.op!r} has no int8 reference kernel")
        env[node.output] = kernel(g, node, *[env[t] for t in node.inputs])
        if keep is None:  # free dead intermediates
            for t in node.inputs:
                if last_use.get(t) == i and t not in g.outputs:
                    env.pop(t, None)
    if keep is None:
        return {t: env[t] for t in g.outputs}
    return {t: env[t] for t in keep}


def run(g: Graph, x, *, batch_size: int = 32, return_all: bool = False):
    """Integer forward pass.

    ``x``: int8 array (N, ...) for single-input graphs, or a list of arrays.
    Returns the int8 output (a list for several outputs) or, with ``return_all``, a dict
    of every tensor (inputs, intermediates, outputs)."""
    if not g.is_int8:
        raise GraphError(f"{g.name}: reference.run executes int8 graphs (quantize first)")
    xs = [np.asarray(v) for v in (x if isinstance(x, (list, tuple)) else [x])]
    _check_inputs(g, xs)
    last_use = {}
    for i, node in enumerate(g.nodes):
        for t in node.inputs:
            last_use[t] = i
    keep = set(g.tensors) if return_all else None
    n = xs[0].shape[0]
    parts = [_run_chunk(g, [v[s:s + batch_size] for v in xs], keep, last_use)
             for s in range(0, n, batch_size)]
    if not parts:
        parts = [_run_chunk(g, xs, keep, last_use)]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if return_all:
        return merged
    outs = [merged[t] for t in g.outputs]
    return outs[0] if len(outs) == 1 else outs


def predict(g: Graph, x, *, batch_size: int = 32) -> np.ndarray:
    """Top-1 class index of each sample (argmax of the single int8 output)."""
    y = run(g, x, batch_size=batch_size)
    return y.reshape(y.shape[0], -1).argmax(axis=1)


def quantize_input(g: Graph, x: np.ndarray, index: int = 0) -> np.ndarray:
    """Float input (in the IR layout, NHWC) -> int8 with the graph input's scale and zero
    point: ``clamp(round_half_even(x / scale) + zero_point)`` (ONNX QuantizeLinear)."""
    t = g.tensors[g.inputs[index]]
    q = np.rint(np.asarray(x, dtype=np.float64) / t.scale) + t.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(g: Graph, name: str, q: np.ndarray) -> np.ndarray:
    """int8 values of tensor ``name`` -> real values (float64)."""
    t = g.tensors[name]
    return (np.asarray(q, dtype=np.float64) - t.zero_point) * t.scale
