"""Frozen layers' weights at 4 bits: a 16-entry codebook per layer, two codes per byte.

A packed layer keeps its int8 ``weight`` array in the graph (what the reference executor
and every analysis compute with) plus ``params["weight_codebook"]``: 16 int8 values such
that every weight is one of them. The firmware stores each weight as its 4-bit code
(the index of its value in the codebook; two per byte, low nibble first, OHWI order,
each output channel's row padded to a whole byte) and the kernels compute with
``codebook[code]``, which is the int8 weight the reference uses: reference == C by
construction.

Two ways a layer gets its codebook (:func:`pack_graph` reports which, per layer):
  - ``exact``: its int8 weights take at most 16 distinct values (e.g. power-of-two
    weights {0, +-1, +-2, ..., +-64}): the codebook is those values, nothing changes;
  - ``int4``: per-channel symmetric requantization to [-7, 7] with a new per-channel scale
    s4[c] = s[c] * max|w_c| / 7 (bias rescaled to the new scale, multipliers and shifts
    recomputed from it); the codebook is :data:`IDENTITY` (a code is the value's
    two's-complement nibble).

Only layers that stay frozen are packed: trained weights live in RAM as int8.
"""
from __future__ import annotations

import copy
import fnmatch

import numpy as np

from compiler.ir.errors import CompilerError
from compiler.ir.graph import Graph, Node, clamp_bias_for_int32

#: codebook of plain int4 weights: code i means the sign-extended nibble i
IDENTITY = np.array([0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1], np.int8)
#: the weight widths ``--weight-bits`` takes
WEIGHT_BITS = (4, 8)


def layer_codebook(weight: np.ndarray) -> np.ndarray | None:
    """The exact codebook of an int8 weight array (its distinct values, ascending, then
    zeros up to 16 entries), or None when it takes more than 16 distinct values."""
    vals = np.unique(np.asarray(weight, np.int8))
    if len(vals) > 16:
        return None
    cb = np.zeros(16, np.int8)
    cb[:len(vals)] = vals
    return cb


def encode(weight: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """The 4-bit codes (uint8, same shape) of ``weight``: for each value the first index
    of the codebook holding it. Raises ValueError when a value is not in the codebook."""
    cb = np.asarray(codebook, np.int16)
    lut = np.full(256, 255, np.uint8)
    for i in range(15, -1, -1):       # the first index wins
        lut[int(cb[i]) + 128] = i
    codes = lut[np.asarray(weight, np.int16) + 128]
    if codes.size and codes.max() > 15:
        bad = int(np.asarray(weight).ravel()[np.argmax(codes.ravel() > 15)])
        raise ValueError(f"weight value {bad} is not in the codebook")
    return codes


def row_bytes(k: int) -> int:
    """Bytes of one output channel's row of ``k`` codes (two per byte)."""
    return (k + 1) // 2


def pack_rows(weight: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """uint8 [rows * row_bytes(K)]: each output channel's K codes (OHWI order; depthwise
    [C][kh][kw]) two per byte, low nibble first, the row padded with code 0."""
    codes = encode(weight, codebook).reshape(weight.shape[0], -1)
    k = codes.shape[1]
    if k % 2:
        codes = np.concatenate([codes, np.zeros((codes.shape[0], 1), np.uint8)], axis=1)
    return (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8).ravel()


def unpack_rows(packed: np.ndarray, codebook: np.ndarray, shape) -> np.ndarray:
    """Inverse of :func:`pack_rows`: the int8 weights of ``shape``."""
    rows = shape[0]
    k = int(np.prod(shape[1:]))
    p = np.asarray(packed, np.uint8).reshape(rows, row_bytes(k))
    codes = np.stack([p & 15, p >> 4], axis=2).reshape(rows, -1)[:, :k]
    return np.asarray(codebook, np.int8)[codes].reshape(shape)


def packable(n: Node) -> bool:
    """Layers whose weights can be stored at 4 bits: convolutions with a C kernel
    (pointwise, depthwise, kxk; not grouped) and fully connected layers."""
    if n.op == "fully_connected":
        return True
    return n.op == "conv2d" and n.conv_kind != "grouped"


def is_packed(n: Node) -> bool:
    return "weight_codebook" in n.params


def requantize_int4(g: Graph, n: Node) -> None:
    """Per-channel symmetric requantization of ``n``'s int8 weights to [-7, 7] (in place):
    new scale s[c] * max|w_c| / 7, bias in the new scale, multipliers from it."""
    from compiler.quantize.ptq import _multipliers
    p = n.params
    w = p["weight"].astype(np.int32)
    co = w.shape[0]
    m = np.abs(w.reshape(co, -1)).max(axis=1) if w.size else np.zeros(co, np.int32)
    m = np.where(m == 0, 7, m).astype(np.float64)          # an all-zero channel stays zero
    ratio = 7.0 / m                                       # new weight = old * ratio
    shape = (co,) + (1,) * (w.ndim - 1)
    w4 = np.clip(np.floor(np.abs(w) * ratio.reshape(shape) + 0.5) * np.sign(w), -7, 7)
    scales = (p["w_scales"].astype(np.float64) / ratio).astype(np.float32)
    bias = np.round(p["bias"].astype(np.float64) * ratio)
    bias = np.clip(bias, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    w4 = w4.astype(np.int8)
    bias, _ = clamp_bias_for_int32(bias, w4)
    xs, ys = g.tensors[n.inputs[0]].scale, g.tensors[n.output].scale
    mult, shift = _multipliers(xs * scales.astype(np.float64) / ys)
    p.update(weight=w4, bias=bias.astype(np.int32), w_scales=scales,
             mult=mult.astype(np.int32), shift=shift.astype(np.int32))


def parse_weight_bits(text: str) -> tuple[int, tuple[str, ...] | None]:
    """``--weight-bits`` value: ``8``, ``4`` (every frozen layer) or ``4:GLOB[,GLOB...]``
    (the frozen layers whose names match one of the shell-style patterns, e.g.
    ``4:blocks.*``) -> (bits, patterns or None). ValueError on anything else."""
    s = str(text).strip()
    bits, _, pats = s.partition(":")
    try:
        b = int(bits)
    except ValueError:
        b = None
    if b not in WEIGHT_BITS:
        raise ValueError(f"weight bits must be 4 or 8 (optionally 4:LAYER_GLOB,...), got {text!r}")
    if not _:
        return b, None
    globs = tuple(x.strip() for x in pats.split(",") if x.strip())
    if b != 4 or not globs:
        raise ValueError(f"a layer list goes with 4 bits: 4:LAYER_GLOB[,LAYER_GLOB...], got {text!r}")
    return b, globs


def pack_graph(g: Graph, bits: int = 4, layers=None, keep=frozenset()) -> tuple[Graph, list[dict]]:
    """A copy of int8 graph ``g`` whose packable layers (matching ``layers``, shell-style
    name patterns, None: all; never those in ``keep``, e.g. trained ones) carry a 4-bit
    codebook, and one row per packed layer: layer, kind (``exact`` or ``int4``), weights,
    int8 bytes, packed bytes. ``bits`` 8 returns ``g`` itself and no rows."""
    if bits not in WEIGHT_BITS:
        raise CompilerError(f"weight bits must be 4 or 8, got {bits!r}")
    if bits == 8:
        return g, []
    if layers is not None:
        names = [n.name for n in g.nodes]
        for pat in layers:
            if not any(fnmatch.fnmatchcase(nm, pat) for nm in names):
                raise CompilerError(f"--weight-bits: no layer of {g.name} matches {pat!r}")
    g2 = copy.deepcopy(g)
    rows = []
    for n in g2.nodes:
        if not packable(n) or n.name in keep or not n.params:
            continue
        if layers is not None and not any(fnmatch.fnmatchcase(n.name, p) for p in layers):
            continue
        cb = layer_codebook(n.params["weight"])
        kind = "exact"
        if cb is None:
            requantize_int4(g2, n)
            cb, kind = IDENTITY.copy(), "int4"
        n.params["weight_codebook"] = cb
        w = n.params["weight"]
        k = int(w.size // max(1, w.shape[0]))
        rows.append({"layer": n.name, "kind": kind, "weights": int(w.size),
                     "int8_bytes": int(w.size), "packed_bytes": w.shape[0] * row_bytes(k) + 16})
    g2.validate()
    return g2, rows


def summary(rows: list[dict]) -> str:
    """One line: how many layers are packed, exact / int4, and the weight bytes saved."""
    if not rows:
        return "weights: int8 (no layer packed)"
    ex = sum(r["kind"] == "exact" for r in rows)
    i4 = sum(r["kind"] == "int4" for r in rows)
    kept = len(rows) - ex - i4
    a = sum(r["int8_bytes"] for r in rows)
    b = sum(r["packed_bytes"] for r in rows)
    more = f"; {kept} kept int8 for the arena peak" if kept else ""
    return (f"weights: {ex + i4} frozen layers at 4 bits ({ex} exact codebook, "
            f"{i4} requantized int4{more}): {a / 1024:.1f} KB -> {b / 1024:.1f} KB")
