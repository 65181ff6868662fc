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


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` / ``"1x49x10"`` -> (C, H, W) (channels first, as PyTorch); two numbers
    ``C,L`` are a 1-D (N, C, L) input (Conv1d), one number ``F`` a flat (N, F) input
    (fully connected)."""
    parts = [p for p in re.split(r"[,x ]+", str(text).strip()) if p]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if not 1 <= len(vals) <= 3 or not all(1 <= v <= 65536 for v in vals):
        raise CompilerError(f"--input-shape {text!r}: expected C,H,W (e.g. 3,32,32 or 1x49x10), "
                            "C,L for a 1-D (Conv1d) input or F for a flat one, each 1..65536")
    return vals


CHANNEL_ORDERS = ("rgb", "bgr")


def check_channel_order(order: str, channels: int | None = None) -> str:
    order = str(order or "rgb").lower()
    if order not in CHANNEL_ORDERS:
        raise CompilerError(f"--channel-order {order!r}: expected rgb or bgr")
    if order == "bgr" and channels is not None and channels != 3:
        raise CompilerError(f"--channel-order bgr: the model input has {channels} channel(s), "
                            "expected 3")
    return order


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


def calibration_inputs(spec: str, shape: tuple[int, ...], mean, std,
                       samples: int = DEFAULT_SAMPLES, seed: int = 0,
                       channel_order: str = "rgb") -> np.ndarray:
    """Float model inputs (N, C, H, W) from a data set spec (``mnist``, ``digits``,
    ``npz:PATH``, ``folder:PATH``): images resized to H x W, C channels (reversed to BGR for
    ``channel_order="bgr"``), normalized with the model's rule: ``(pixel / 255 - mean) /
    std``. A 1-D input ((C, L) or (F,)) takes ``npz:PATH`` whose ``x`` is already the
    model's float input, (N, C, L) or (N, F), used as is."""
    if len(shape) != 3:
        return sequence_inputs(spec, shape, samples, seed)
    c, h, w = shape
    try:
        ds = D.load(spec)
    except D.DatasetError as e:
        raise CompilerError(f"--calibrate {spec}: {e}") from None
    idx = np.random.default_rng(seed).permutation(len(ds))[:samples]
    imgs = np.stack([D.resize(D.to_channels(ds.x[i], c), (h, w)) for i in idx])
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    if check_channel_order(channel_order, c) == "bgr":
        imgs = imgs[..., ::-1]     # the host sends RGB; a BGR model sees channel 2 - c
    x = normalize(imgs, mean, std, c)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def sequence_inputs(spec: str, shape: tuple[int, ...], samples: int = DEFAULT_SAMPLES,
                    seed: int = 0) -> np.ndarray:
    """Calibration inputs of a 1-D model (input (C, L) or (F,)): ``npz:PATH`` with an
    array ``x`` of shape (N, C, L) / (N, F), float or uint8, taken as the model's float
    input as is (no normalization)."""
    kind, sep, path = str(spec).partition(":")
    what = "(N, " + ", ".join(map(str, shape)) + ")"
    if kind.strip().lower() != "npz" or not sep or not path:
        raise CompilerError(f"--calibrate {spec}: a model with a 1-D input {shape} is calibrated "
                            f"on npz:FILE whose array x is {what} (the model's float input); "
                            "image data sets do not apply")
    try:
        with np.load(path) as z:
            if "x" not in z.files:
                raise CompilerError(f"--calibrate {spec}: {path} has no array 'x' (it has: "
                                    f"{', '.join(z.files) or 'none'})")
            x = z["x"]
    except (OSError, ValueError) as e:
        raise CompilerError(f"--calibrate {spec}: cannot read {path}: {e}") from None
    if x.dtype.kind not in "fu" or tuple(x.shape[1:]) != tuple(shape) or len(x) == 0:
        raise CompilerError(f"--calibrate {spec}: x is {x.dtype} {tuple(x.shape)}, expected "
                            f"float32 or uint8 {what}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise CompilerError(f"--calibrate {spec}: x has NaN or infinite values")
    idx = np.random.default_rng(seed).permutation(len(x))[:samples]
    return np.ascontiguousarray(x[idx])


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


def source_kind(source) -> str | None:
    """``"pytorch"`` (FILE.py:FACTORY), ``"pt2"`` (torch.export program), ``"onnx"`` or
    None (not an importable source: a real-model name or a model .json)."""
    src = str(source)
    if ".py:" in src:
        return "pytorch"
    if src.lower().endswith(".pt2"):
        return "pt2"
    if src.lower().endswith(".onnx"):
        return "onnx"
    return None


def import_model(source: str, *, input_shape=None, calibrate: str | None = None,
                 samples: int = DEFAULT_SAMPLES, mean=None, std=None,
                 name: str | None = None, channel_order: str = "rgb",
                 allow_float: bool = False) -> Graph:
    """``source`` (``file.py:factory``, ``model.pt2``, ``model.onnx``) -> int8 IR graph with
    its input rule recorded. Float models need ``calibrate`` (a data set spec);
    ``input_shape`` ((C, H, W), (C, L) or (F,)) is needed for a PyTorch module (a ``.pt2``
    program and an ONNX file give their own). ``channel_order="bgr"``: the model was trained
    on BGR images (it sees channel c of its input from image channel 2 - c).
    ``allow_float``: without ``calibrate``, return the float graph (``inspect``) instead of
    refusing."""
    src = str(source)
    order = check_channel_order(channel_order)
    kind = source_kind(src)
    if kind == "pt2":
        from compiler.frontend.torch_export import import_program, load_program
        shape = load_program(src)[1][1:] if input_shape is None else tuple(input_shape)
        if not calibrate and allow_float:
            return import_program(src, input_shape=input_shape, name=name)
        if not calibrate:
            raise CompilerError(f"{src}: a float model: give --calibrate DATA (e.g. mnist, "
                                "digits, npz:FILE, folder:DIR) to quantize it to int8")
        cal = calibration_inputs(calibrate, shape, mean, std, samples, channel_order=order)
        g = import_program(src, input_shape=input_shape, name=name, calibration=cal)
    elif kind == "pytorch":
        if input_shape is None:
            raise CompilerError(f"{src}: a PyTorch module needs --input-shape C,H,W (C,L or F "
                                "for a 1-D or flat input)")
        shape = tuple(input_shape)
        module = load_factory(src)
        import torch

        from compiler.frontend.torch_fx import import_module
        example = torch.zeros((1,) + shape)
        cal = None
        if calibrate:
            cal = calibration_inputs(calibrate, shape, mean, std, samples, channel_order=order)
        g = import_module(module, example, name=name or type(module).__name__, calibration=cal)
    elif src.lower().endswith(".onnx"):
        from compiler.frontend import models
        from compiler.frontend.onnx_common import read_model
        from compiler.frontend.onnx_model import is_qdq
        p = models.resolve(src)
        m = read_model(p)
        cal = None
        if not is_qdq(m):
            if not calibrate and allow_float:
                return models.load(p)
            if not calibrate:
                raise CompilerError(f"{src}: a float ONNX model: give --calibrate DATA (e.g. "
                                    "mnist, digits, npz:FILE, folder:DIR) to quantize it to int8")
            shape = _onnx_input_shape(m, p) if input_shape is None else tuple(input_shape)
            cal = calibration_inputs(calibrate, shape, mean, std, samples, channel_order=order)
        g = models.load(p, calibration=cal)
        if name:
            g.name = name
    else:
        raise ModelFormatError(f"{src}: expected FILE.py:FACTORY (a PyTorch module), a .pt2 "
                               "torch.export program or an .onnx file (float or QDQ int8)")
    if not g.is_int8:
        if allow_float and not calibrate:
            return g
        raise CompilerError(f"{src}: the model stayed float: give --calibrate DATA")
    c = g.tensors[g.inputs[0]].shape[-1] if len(g.tensors[g.inputs[0]].shape) == 4 else 1
    pre = {"mean": [float(v) for v in _per_channel(mean, c, 0.0, "--mean")],
           "std": [float(v) for v in _per_channel(std, c, 1.0, "--std")], "pixel_scale": 1 / 255,
           "channel_order": check_channel_order(order, c)}
    g.metadata = dict(g.metadata, input_preprocess=pre,
                      imported_from=src + (f", calibrated on {samples} samples of {calibrate}"
                                           if calibrate else ""))
    return g


def _onnx_input_shape(m, path) -> tuple[int, int, int]:
    if not m.graph.input:
        raise CompilerError(f"{path}: the ONNX graph has no input")
    dims = m.graph.input[0].type.tensor_type.shape.dim
    vals = [d.dim_value for d in dims]
    if not 2 <= len(vals) <= 4 or not all(v > 0 for v in vals[1:]):
        raise CompilerError(f"{path}: its input shape is {vals or 'unknown'}; give --input-shape C,H,W")
    return tuple(vals[1:])
