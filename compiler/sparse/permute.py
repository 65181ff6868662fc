"""Offline output-channel permutation of ``conv2d`` / ``fully_connected`` layers.

Sparse update trains a layer at channel ratio ``r`` by updating only its first
``k = max(1, floor(Co * r))`` output channels. To train the *most important* channels
rather than whichever happen to come first, the compiler reorders them offline:
:func:`channel_order` ranks channels by importance, and :func:`permute_output_channels`
moves them to the front -- without changing what the network computes (the int8
reference gives bit-identical outputs: per-tensor activation quantization does not care
about channel order, and integer sums do not care about summation order).

Which layers can be permuted (:func:`permutable`)
-------------------------------------------------
Permuting the output channels of node ``n`` permutes the channels of its output tensor,
so every reader of that tensor must absorb the permutation. Starting from ``n``'s output,
each consumer must be one of:

(a) a depthwise ``conv2d``: channel-wise, so its own per-channel arrays are permuted
    the same way and the walk continues from its output;
(b) a ``conv2d`` with ``groups == 1`` or a ``fully_connected``: its *input* channel axis
    is permuted (weight axis 3 of OHWI, axis 1 of ``[Co, Ci]``); the walk stops there;
(c) ``global_avgpool``, or a ``flatten`` of a ``1x1`` map or of an ``[N, C]`` vector:
    channel-wise, the walk continues from its output.

Anything else makes ``n`` not permutable: an ``add`` (a residual connection: both
operands would need the same permutation), a tensor that is a graph output (the
caller would see reordered channels), a grouped non-depthwise ``conv2d``, a ``flatten``
of a map with ``H*W > 1`` (channels interleave with positions), or any other op.
A depthwise node itself is never permutable on its own: its output channels are its
input channels, so they follow (are permuted together with) its producer.

Permuted graphs record ``metadata["channel_permutations"]``: node name -> list ``p``
with ``new channel j = original channel p[j]`` (composed over repeated permutations of
the same node). Depthwise followers carry their producer's permutation and are not
listed separately.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compiler.ir.errors import CompilerError
from compiler.ir.graph import Graph, Node

METADATA_KEY = "channel_permutations"


class PermuteError(CompilerError):
    """The output channels of a node cannot be permuted (or the node does not exist)."""


def _get_node(g: Graph, node_name: str) -> Node:
    for n in g.nodes:
        if n.name == node_name:
            return n
    raise PermuteError(f"{g.name}: no node named {node_name!r}")


def _plan(g: Graph, node: Node) -> tuple[list[Node], list[Node], str]:
    """Walk forward from ``node``'s output (see module doc).

    Returns ``(followers, readers, reason)``: the channel-wise nodes whose per-channel
    arrays move with the permutation (depthwise convs; pools and flattens need nothing),
    the conv/fc nodes whose input axis is permuted, and ``""`` if permutable, otherwise
    the reason why not."""
    if not node.traits.has_params:
        return [], [], (f"{node.name} is a {node.op}: only conv2d and fully_connected "
                        f"nodes have output channels to permute")
    if node.is_depthwise:
        prod = g.producer(node.inputs[0])
        src = f" {prod.name!r}" if prod is not None else " (graph input)"
        return [], [], f"{node.name}: depthwise channels follow their producer{src}"
    if node.conv_kind == "grouped":
        return [], [], (f"{node.name} is a grouped conv2d (groups={node.attrs['groups']}): "
                        f"output channels are tied to their group")
    followers: list[Node] = []
    readers: list[Node] = []
    todo, seen = [node.output], set()

    def where(t: str) -> str:
        return (f"the output of {node.name}" if t == node.output
                else f"tensor {t!r} (carrying the channels of {node.name})")

    while todo:
        t = todo.pop()
        if t in g.outputs:
            return [], [], f"{where(t)} is a graph output"
        for c in g.consumers(t):
            if c.name in seen:
                continue
            seen.add(c.name)
            if c.conv_kind == "depthwise":
                followers.append(c)
                todo.append(c.output)
            elif c.traits.has_params and c.conv_kind != "grouped":
                readers.append(c)
            elif c.channelwise and c.traits.passes_qparams:    # global average pool
                todo.append(c.output)
            elif c.op == "flatten" and all(d == 1 for d in g.tensors[t].shape[1:-1]):
                todo.append(c.output)
            elif c.op == "add":
                return [], [], (f"{where(t)} feeds add {c.name!r}, a residual connection: "
                                f"both operands would need the same permutation")
            elif c.op == "conv2d":
                return [], [], (f"{where(t)} feeds grouped conv2d {c.name!r} "
                                f"(groups={c.attrs['groups']}, not depthwise)")
            elif c.op == "flatten":
                hw = "x".join(map(str, g.tensors[t].shape[1:-1]))
                return [], [], (f"{where(t)} feeds flatten {c.name!r} of a {hw} map: "
                                f"channels interleave with positions")
            else:
                return [], [], (f"{where(t)} feeds {c.op} {c.name!r}, which cannot absorb "
                                f"a channel permutation")
    return followers, readers, ""


def permutable(g: Graph, node_name: str) -> tuple[bool, str]:
    """Whether the output channels of ``node_name`` can be permuted without changing
    the network function, and if not, why. Raises :class:`PermuteError` if there is no
    such node."""
    _, _, reason = _plan(g, _get_node(g, node_name))
    return (not reason, reason)


def _check_perm(perm, co: int, node_name: str) -> np.ndarray:
    p = np.asarray(perm)
    if p.ndim != 1 or p.shape[0] != co:
        raise ValueError(f"{node_name}: perm must be a 1-D permutation of range({co}), "
                         f"got shape {p.shape}")
    if co and not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"{node_name}: perm must hold integers, got dtype {p.dtype}")
    p = p.astype(np.int64)
    if not np.array_equal(np.sort(p), np.arange(co)):
        bad = sorted(set(range(co)) - set(p.tolist()))
        raise ValueError(f"{node_name}: perm is not a permutation of range({co}) "
                         f"(missing {bad[:8]}{'...' if len(bad) > 8 else ''}; duplicates or "
                         f"out-of-range entries)")
    return p


def _permute_rows(n: Node, p: np.ndarray) -> None:
    co = len(p)
    n.params = {k: (v[p].copy() if v.ndim >= 1 and v.shape[0] == co else v)
                for k, v in n.params.items()}


def permute_output_channels(g: Graph, node_name: str, perm: Sequence[int]) -> Graph:
    """A copy of ``g`` in which output channel ``j`` of ``node_name`` is the original
    channel ``perm[j]``, computing the same function (see module doc).

    Raises :class:`PermuteError` (with the reason) if the node is unknown or not
    permutable, ``ValueError`` if ``perm`` is not a permutation of ``range(Co)``."""
    node = _get_node(g, node_name)
    followers, readers, reason = _plan(g, node)
    if reason:
        raise PermuteError(f"{g.name}: cannot permute the output channels of {node_name}: {reason}")
    p = _check_perm(perm, int(node.params["weight"].shape[0]), node_name)
    out = g.copy()
    for n in [node, *followers]:
        _permute_rows(out.node(n.name), p)
    for r in readers:
        rn = out.node(r.name)
        axis = 3 if rn.op == "conv2d" else 1
        rn.params = dict(rn.params, weight=np.take(rn.params["weight"], p, axis=axis))
    perms = dict(out.metadata.get(METADATA_KEY, {}))
    prev = perms.get(node_name)
    perms[node_name] = (np.asarray(prev)[p] if prev is not None else p).tolist()
    out.metadata = dict(out.metadata, **{METADATA_KEY: perms})
    return out.validate()


def channel_order(importance) -> list[int]:
    """Channel indices by decreasing importance (stable: ties keep the lower index
    first). ``perm = channel_order(imp)`` puts the most important channels in front."""
    a = np.asarray(importance, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"importance must be 1-D, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError("importance must not contain NaN")
    return np.argsort(-a, kind="stable").tolist()
