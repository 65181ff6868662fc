"""Helpers shared by the PyTorch and ONNX float importers."""
from __future__ import annotations

import math

import numpy as np

from compiler.ir.errors import UnsupportedOpError
from compiler.ir.graph import Graph
from compiler.ir.qmath import hw_attr

NO_ACT = dict(act_min=-math.inf, act_max=math.inf)


def pad_attrs(op: str, node: str, source: str | None, pads) -> dict:
    """(top, left, bottom, right) padding -> the IR attributes of a conv2d / max_pool:
    ``pad`` the leading (top, left) pads, per axis (an int when both axes agree, else
    (rows, columns)), plus ``pad_end`` the trailing (bottom, right) ones only when they
    differ (e.g. TensorFlow's 'same' padding at stride 2: one more row / column after);
    negative padding (cropping) is refused."""
    top, left, bottom, right = (int(p) for p in pads)
    if min(top, left, bottom, right) < 0:
        raise UnsupportedOpError(op, node, f"negative padding {tuple(pads)} (top, left, "
                                 "bottom, right): cropping is not supported", source)
    out = dict(pad=hw_attr(top, left))
    if (bottom, right) != (top, left):
        out["pad_end"] = hw_attr(bottom, right)
    return out


def same_pads(n: int, k: int, stride: int, lower: bool) -> tuple[int, int]:
    """(before, after) padding of one axis of length ``n`` for ONNX ``auto_pad`` SAME_UPPER
    (``lower`` False: the odd extra one after, TensorFlow's 'same') or SAME_LOWER:
    the output has ceil(n / stride) positions."""
    total = max((-(-n // stride) - 1) * stride + k - n, 0)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def chw_to_hwc_columns(w: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Columns of a Linear weight that reads a flattened NCHW map, reordered for the
    IR's NHWC flatten."""
    c, h, wd = chw
    return np.ascontiguousarray(w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1)
                                .reshape(w.shape[0], -1))


def chw_to_hwc_vector(v: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Per-feature values of a flattened NCHW map, reordered for the IR's NHWC flatten."""
    c, h, wd = chw
    return np.ascontiguousarray(v.reshape(c, h, wd).transpose(1, 2, 0).reshape(-1))


def nchw_to_nhwc(x) -> np.ndarray:
    """Samples in the framework layout (N, C, H, W) -> IR layout (N, H, W, C); 2-D
    arrays pass through."""
    x = np.asarray(x)
    if x.ndim == 3:  # (N, C, L) sequences: a 1 x L map
        x = x[:, :, None, :]
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def unique_name(g: Graph, base: str) -> str:
    taken = {n.name for n in g.nodes} | set(g.tensors)
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"
