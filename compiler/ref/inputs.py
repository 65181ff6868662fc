"""The device's input rule: uint8 pixels -> int8 model input, as the firmware applies it.

The device receives uint8 images, resizes them to the model's input size and maps each
pixel through a 256-entry table (``pixel_lut``, emitted into the generated C); the
reference does the same so that what Python measures is what the board computes.
"""
from __future__ import annotations

import numpy as np

from compiler.frontend import datasets as D
from compiler.ir.graph import Graph
from compiler.ref import executor as reference


def pixel_lut(g: Graph) -> tuple[np.ndarray, str]:
    """uint8 pixel -> int8 model input: ``pixel - 128`` for the real models, otherwise
    the input tensor's quantization of ``pixel / 255``."""
    if "pixel - 128" in str(g.metadata.get("input_preprocess", "")):
        return (np.arange(256) - 128).astype(np.int8), "pixel - 128"
    x = g.tensors[g.inputs[0]]
    lut = reference.quantize_input(g, (np.arange(256, dtype=np.float64) / 255.0))
    return lut.astype(np.int8), f"quantize(pixel / 255, scale {x.scale:.6g}, zero {x.zero_point})"



def model_inputs(g: Graph, images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W[, C]) -> int8 model inputs (N, S, S, C) at ``g``'s input size,
    with the model's own input rule (:func:`pixel_lut`, as on the device)."""
    _, h, w, c = g.tensors[g.inputs[0]].shape
    out = np.stack([D.resize(D.to_channels(im, c), (h, w)) for im in images])
    if c == 1 and out.ndim == 3:
        out = out[..., None]
    lut, _ = pixel_lut(g)    # the device's own pixel -> int8 rule
    return lut[out]
