"""Your own model into the toolchain: a PyTorch module (``file.py:factory``) or an ONNX
file (float or QDQ int8), quantized with your calibration data and saved with the input
preprocessing it was trained with, so that every later command and the device apply it.

    g = import_model("mymodel.py:make_model", input_shape=(1, 28, 28),
                     calibrate="mnist", mean=[0.1307], std=[0.3081])
    compiler.ir.graph_io.save(g, "mymodel.json")      # or: python -m compiler import ...

The input rule recorded in the graph (``metadata["input_preprocess"]``): the model's
float input is ``(pixel / 255 - mean[c]) / std[c]`` for a uint8 pixel of channel ``c``
(mean 0, std 1 when not given: ``pixel / 255``). The device maps each pixel through one
int8 table per channel that quantizes exactly that (compiler.ref.inputs.pixel_lut).
"""
from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path

import numpy as np

from compiler.frontend import datasets as D
from compiler.ir.errors import CompilerError, ModelFormatError
from compiler.ir.graph import Graph

#: calibration samples taken from the data when not told otherwise
DEFAULT_SAMPLES = 256


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``"3,32,32"`` / ``"1x49x10"`` -> (C, H, W) (channels first, as PyTorch)."""
    parts = [p for p in re.split(r"[,x ]+", str(text).strip()) if p]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 3 or not all(1 <= v <= 4096 for v in vals):
        raise CompilerError(f"--input-shape {text!r}: expected C,H,W (e.g. 3,32,32 or 1x49x10), "
                            "each 1..4096")
    return vals


def parse_floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(p) for p in re.split(r"[, ]+", str(text).strip()) if p]
    except ValueError:
        vals = []
    if not vals or not all(math.isfinite(v) for v in vals):
        raise CompilerError(f"{what} {text!r}: expected one number per input channel, e.g. "
                            "0.485,0.456,0.406")
    return vals


def load_factory(spec: str):
    """``path/to/file.py:factory`` -> the nn.Module that ``factory()`` returns."""
    import torch.nn as nn
    path, sep, fn = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not fn.isidentifier():
        raise ModelFormatError(f"{spec}: expected FILE.py:FACTORY (a Python file and the name of "
                               "a function in it that returns the nn.Module)")
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"{path}: file not found (from {spec})")
    name = f"tinytrain_user_{re.sub(r'[^0-9a-zA-Z_]', '_', p.stem)}"
    mod_spec = importlib.util.spec_from_file_location(name, p)
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module
    try:
        mod_spec.loader.exec_module(module)
    except Exception as e:
        raise ModelFormatError(f"{path}: importing it failed: {type(e).__name__}: {e}") from None
    factory = getattr(module, fn, None)
    if not callable(factory):
        found = [k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                 and getattr(v, "__module__", None) == name]
        raise ModelFormatError(f"{spec}: {path} has no function {fn!r}"
                               + (f" (it has: {', '.join(sorted(found))})" if found else ""))
    try:
        m = factory()
    except Exception as e:
        raise ModelFormatError(f"{spec}: calling {fn}() failed: {type(e).__name__}: {e}") from None
    if not isinstance(m, nn.Module):
        raise ModelFormatError(f"{spec}: {fn}() returned a {type(m).__name__}, expected a "
                               "torch.nn.Module")
    return m


def calibration_inputs(spec: str, shape: tuple[int, int, int], mean, std,
                       samples: int = DEFAULT_SAMPLES, seed: int = 0) -> np.ndarray:
    """Float model inputs (N, C, H, W) from a data set spec (``mnist``, ``digits``,
    ``npz:PATH``, ``folder:PATH``): images resized to H x W, C channels, normalized with
    the model's rule: ``(pixel / 255 - mean) / std``."""
    c, h, w = shape
    try:
        ds = D.load(spec)
    except D.DatasetError as e:
        raise CompilerError(f"--calibrate {spec}: {e}") from None
    idx = np.random.default_rng(seed).permutation(len(ds))[:samples]
    imgs = np.stack([D.resize(D.to_channels(ds.x[i], c), (h, w)) for i in idx])
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    x = normalize(imgs, mean, std, c)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def normalize(images_uint8: np.ndarray, mean, std, channels: int) -> np.ndarray:
    """uint8 (..., C) -> float32 model input with the recorded rule."""
    mean = _per_channel(mean, channels, 0.0, "--mean")
    std = _per_channel(std, channels, 1.0, "--std")
    return ((images_uint8.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def _per_channel(v, channels: int, default: float, what: str) -> np.ndarray:
    if v is None:
        return np.full(channels, default, np.float32)
    v = np.asarray(v, np.float32).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, channels)
    if v.size != channels:
        raise CompilerError(f"{what}: {v.size} values for a model input of {channels} channels")
    if what == "--std" and not np.all(v > 0):
        raise CompilerError(f"{what}: expected values > 0")
    return v


def import_model(source: str, *, input_shape=None, calibrate: str | None = None,
                 samples: int = DEFAULT_SAMPLES, mean=None, std=None,
                 name: str | None = None) -> Graph:
    """``source`` (``file.py:factory``, ``model.onnx``) -> int8 IR graph with its input
    rule recorded. Float models need ``calibrate`` (a data set spec); ``input_shape``
    (C, H, W) is needed for a PyTorch module."""
    src = str(source)
    if src.lower().endswith(".pt2"):
        raise ModelFormatError(f"{src}: torch.export programs are not supported yet; give the "
                               "module as FILE.py:FACTORY (or export it to ONNX)")
    if ".py:" in src:
        if input_shape is None:
            raise CompilerError(f"{src}: a PyTorch module needs --input-shape C,H,W")
        shape = tuple(input_shape)
        module = load_factory(src)
        import torch

        from compiler.frontend.torch_fx import import_module
        example = torch.zeros((1,) + shape)
        cal = None
        if calibrate:
            cal = calibration_inputs(calibrate, shape, mean, std, samples)
        g = import_module(module, example, name=name or type(module).__name__, calibration=cal)
    elif src.lower().endswith(".onnx"):
        from compiler.frontend import models
        from compiler.frontend.onnx_common import read_model
        from compiler.frontend.onnx_model import is_qdq
        p = models.resolve(src)
        m = read_model(p)
        shape = _onnx_input_shape(m, p) if input_shape is None else tuple(input_shape)
        cal = None
        if not is_qdq(m):
            if not calibrate:
                raise CompilerError(f"{src}: a float ONNX model: give --calibrate DATA (e.g. "
                                    "mnist, digits, npz:FILE, folder:DIR) to quantize it to int8")
            cal = calibration_inputs(calibrate, shape, mean, std, samples)
        g = models.load(p, calibration=cal)
        if name:
            g.name = name
    else:
        raise ModelFormatError(f"{src}: expected FILE.py:FACTORY (a PyTorch module) or an .onnx "
                               "file (float or QDQ int8)")
    if not g.is_int8:
        raise CompilerError(f"{src}: the model stayed float: give --calibrate DATA")
    c = g.tensors[g.inputs[0]].shape[-1] if len(g.tensors[g.inputs[0]].shape) == 4 else 1
    pre = {"mean": [float(v) for v in _per_channel(mean, c, 0.0, "--mean")],
           "std": [float(v) for v in _per_channel(std, c, 1.0, "--std")], "pixel_scale": 1 / 255}
    g.metadata = dict(g.metadata, input_preprocess=pre,
                      imported_from=src + (f", calibrated on {samples} samples of {calibrate}"
                                           if calibrate else ""))
    return g


def _onnx_input_shape(m, path) -> tuple[int, int, int]:
    dims = m.graph.input[0].type.tensor_type.shape.dim
    vals = [d.dim_value for d in dims]
    if len(vals) != 4 or not all(v > 0 for v in vals[1:]):
        raise CompilerError(f"{path}: its input shape is {vals or 'unknown'}; give --input-shape C,H,W")
    return tuple(vals[1:])
