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


def preprocess(g: Graph) -> dict | None:
    """The model's recorded input normalization: ``{"mean": [...], "std": [...]}`` (per
    channel; model input = (pixel / 255 - mean[c]) / std[c]), or None (pixel / 255)."""
    pre = g.metadata.get("input_preprocess")
    return pre if isinstance(pre, dict) and "mean" in pre and "std" in pre else None


def pixel_lut(g: Graph) -> tuple[np.ndarray, str]:
    """uint8 pixel -> int8 model input, as tables of shape (L, 256): L = 1 (one rule for
    every channel) or the input's channel count (per-channel mean/std). ``pixel - 128``
    for the real models; with a recorded normalization, the input tensor's quantization
    of ``(pixel / 255 - mean[c]) / std[c]``; otherwise of ``pixel / 255``."""
    if "pixel - 128" in str(g.metadata.get("input_preprocess", "")):
        return (np.arange(256) - 128).astype(np.int8)[None], "pixel - 128"
    x = g.tensors[g.inputs[0]]
    p = np.arange(256, dtype=np.float64) / 255.0
    pre = preprocess(g)
    q = f"scale {x.scale:.6g}, zero {x.zero_point}"
    if pre is None:
        return reference.quantize_input(g, p).astype(np.int8)[None], f"quantize(pixel / 255, {q})"
    mean = np.asarray(pre["mean"], np.float64)
    std = np.asarray(pre["std"], np.float64)
    rows = (p[None, :] - mean[:, None]) / std[:, None]
    lut = reference.quantize_input(g, rows).astype(np.int8)
    rule = (f"quantize((pixel / 255 - mean[c]) / std[c], mean {', '.join(f'{v:g}' for v in mean)}, "
            f"std {', '.join(f'{v:g}' for v in std)}, {q})")
    return lut, rule


def channel_order(g: Graph) -> str:
    """``"bgr"`` for a model trained on BGR images (recorded by ``import --channel-order
    bgr``), else ``"rgb"``. The host always sends RGB images."""
    pre = g.metadata.get("input_preprocess")
    return "bgr" if isinstance(pre, dict) and pre.get("channel_order") == "bgr" else "rgb"


def in_model_order(g: Graph, images) -> np.ndarray:
    """uint8 RGB images (..., C) in the channel order the model was trained on: a BGR model
    sees channel c of its input from image channel 2 - c (as the device reads them)."""
    images = np.asarray(images)
    return images[..., ::-1] if channel_order(g) == "bgr" else images


def apply_lut(lut: np.ndarray, images) -> np.ndarray:
    """uint8 images (..., C) through :func:`pixel_lut`'s tables -> int8 model inputs."""
    images = np.asarray(images, np.uint8)
    if lut.shape[0] == 1:
        return lut[0][images]
    if images.shape[-1] != lut.shape[0]:
        raise ValueError(f"images have {images.shape[-1]} channels, the input rule {lut.shape[0]}")
    return lut[np.arange(lut.shape[0]), images]


def model_inputs(g: Graph, images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W[, C]) -> int8 model inputs (N, S, S, C) at ``g``'s input size,
    with the model's own input rule (:func:`pixel_lut`, as on the device)."""
    _, h, w, c = g.tensors[g.inputs[0]].shape
    out = np.stack([D.resize(D.to_channels(im, c), (h, w)) for im in images])
    if c == 1 and out.ndim == 3:
        out = out[..., None]
    lut, _ = pixel_lut(g)    # the device's own pixel -> int8 rule
    return apply_lut(lut, in_model_order(g, out))


def flat_samples(g: Graph, x) -> np.ndarray:
    """Float feature vectors (N, F) in the model's float input units (a flat or 1-D input:
    no pixel rule) -> int8 model inputs (N, *input shape), quantized with the input
    tensor's scale and zero point (:func:`compiler.ref.executor.quantize_input`). This is
    the raw int8 sample the device app receives (SAMPLE_RAW, ``host.protocol``) and the
    replay (:mod:`compiler.autodiff.device_replay`) takes for float features."""
    shape = tuple(g.tensors[g.inputs[0]].shape[1:])
    x = np.asarray(x)
    size = int(np.prod(shape))
    if x.ndim < 1 or x.size != len(x) * size:
        raise ValueError(f"{g.name}: feature vectors of {size} values expected (input "
                         f"{shape}), got an array of shape {x.shape}")
    return reference.quantize_input(g, x.reshape((len(x),) + shape))
