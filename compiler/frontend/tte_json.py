"""Importer for the real int8 models (``<name>.json`` + ``<name>.npz``; format described
in ``models/README.md``): ``first_conv -> blocks -> feature_mix -> global average
pool -> classifier``, MobileNetV2-style blocks with an optional residual add.

The models are loaded as they are, without re-quantization:

- weights OIHW -> OHWI; per-channel multipliers from
  ``x_scale * w_scales[c] / y_scale`` (:func:`compiler.ir.qmath.quantize_multiplier`);
  padding ``(k - 1) // 2``; output clamp [-128, 127] (a zero point of -128 is the ReLU);
- residual add: :meth:`AddParams.from_scales` (block input with the residual's
  ``x_scale, x_zero``; pointwise2 output; the residual's ``y_scale, y_zero``);
- global average pool keeps scale and zero point; the classifier (a 1x1 conv on the
  pooled 1x1 map) becomes ``flatten`` + ``fully_connected``;
- the input is an RGB image entering as ``pixel - 128`` (NHWC int8).

One adjustment is made, and reported in ``graph.metadata["notes"]``: biases that the
original quantizer saturated at the int32 limits are pulled in just far enough that
``bias + sum`` cannot overflow an int32 accumulator (:func:`compiler.ir.graph.clamp_bias_for_int32`).
"""
from __future__ import annotations

import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from compiler.ir.errors import GraphError, ModelFormatError, UnsupportedOpError
from compiler.ir.graph import INT8, Graph, clamp_bias_for_int32
from compiler.ir.qmath import AddParams, quantize_multipliers

FORMAT_PREFIX = "tte-int8-mbv2-family/"
INPUT_PREPROCESS = "RGB uint8 pixel - 128 -> int8, NHWC"


def load_tte(path: str | Path) -> Graph:
    """Load ``<name>.json`` and its ``<name>.npz`` into an int8 IR graph."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelFormatError(f"{path}: cannot read model JSON: {e}") from e
    npz = path.with_suffix(".npz")
    if not npz.is_file():
        raise ModelFormatError(f"{npz}: model arrays not found (a model .json needs its .npz "
                               "beside it)")
    try:
        z = np.load(npz, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive (a single .npy array?)")
        with z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        # truncated or corrupt archive: BadZipFile (not a zip, bad CRC), EOFError (empty), ...
        raise ModelFormatError(f"{npz}: cannot read model arrays (truncated or corrupt .npz?): "
                               f"{type(e).__name__}: {e}") from e
    g = from_spec(spec, arrays, name=path.stem)
    g.metadata["file"] = path.name
    return g


class _Reader:
    """Typed access to the JSON spec; every problem becomes a ModelFormatError."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.arrays = arrays

    @staticmethod
    def obj(v: Any, path: str) -> dict:
        if not isinstance(v, dict):
            raise ModelFormatError(f"{path}: expected an object, got {type(v).__name__}")
        return v

    @staticmethod
    def get(d: Any, key: str, path: str, kind=None, optional: bool = False):
        if not isinstance(d, dict):
            raise ModelFormatError(f"{path}: expected an object, got {type(d).__name__}")
        if key not in d:
            if optional:
                return None
            raise ModelFormatError(f"{path}: missing key {key!r}")
        v = d[key]
        if v is None and optional:
            return None
        if kind is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ModelFormatError(f"{path}/{key}: expected an integer, got {v!r}")
        elif kind is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ModelFormatError(f"{path}/{key}: expected a finite number, got {v!r}")
            v = float(v)
        elif kind is not None and not isinstance(v, kind):
            raise ModelFormatError(f"{path}/{key}: expected {kind.__name__}, got {type(v).__name__}")
        return v

    def array(self, d: Any, key: str, path: str, dtype, ndim: int) -> np.ndarray:
        ref = self.get(d, key, path, dict)
        k = ref.get("array")
        if not isinstance(k, str) or k not in self.arrays:
            raise ModelFormatError(f"{path}/{key}: array {k!r} not found in the .npz")
        a = np.asarray(self.arrays[k])
        if a.dtype != np.dtype(dtype) or a.ndim != ndim:
            raise ModelFormatError(f"{path}/{key}: expected {np.dtype(dtype).name} with {ndim} "
                                   f"dims, got {a.dtype} {a.shape}")
        if "shape" in ref and list(ref["shape"]) != list(a.shape):
            raise ModelFormatError(f"{path}/{key}: shape {a.shape} differs from declared {ref['shape']}")
        return a


def _check_qparams(r: _Reader, params: dict, path: str, which: str) -> tuple[float, int]:
    s = r.get(params, f"{which}_scale", path, float)
    z = r.get(params, f"{which}_zero", path, int)
    if not s > 0:
        raise ModelFormatError(f"{path}/{which}_scale must be > 0, got {s}")
    if not -128 <= z <= 127:
        raise ModelFormatError(f"{path}/{which}_zero {z} is not an int8 value")
    return s, z


def _same_q(a: tuple[float, int], b: tuple[float, int]) -> bool:
    return a[1] == b[1] and math.isclose(a[0], b[0], rel_tol=1e-6)


class _Builder:
    def __init__(self, spec: dict, arrays: Mapping[str, np.ndarray], name: str):
        self.r = _Reader(arrays)
        self.spec = spec
        self.g = Graph(name)
        self.clamped = 0

    def qof(self, t: str) -> tuple[float, int]:
        ten = self.g.tensors[t]
        return ten.scale, ten.zero_point

    def conv(self, cur: str, entry: Any, path: str, name: str, as_fc: bool = False) -> str:
        r = self.r
        r.obj(entry, path)
        act = entry.get("act")
        if act is not None:
            raise UnsupportedOpError(f"act={act!r}", name, "explicit activations are not part of "
                                     "this format (the clamp implies them)", path)
        params = r.get(entry, "params", path, dict)
        w = r.array(params, "weight", path + "/params", np.int8, 4)
        bias = r.array(params, "bias", path + "/params", np.int32, 1)
        w_scales = r.array(params, "w_scales", path + "/params", np.float32, 1)
        xq = _check_qparams(r, params, path + "/params", "x")
        yq = _check_qparams(r, params, path + "/params", "y")
        co, cig, kh, kw = w.shape
        kernel = r.get(entry, "kernel_size", path, list)
        if kernel != [kh, kw]:
            raise ModelFormatError(f"{path}: kernel_size {kernel} does not match weight {w.shape}")
        stride = r.get(entry, "stride", path, int, optional=True) or 1
        groups = r.get(entry, "groups", path, int, optional=True) or 1
        xt = self.g.tensors[cur]
        in_ch = r.get(entry, "in_channel", path, int)
        out_ch = r.get(entry, "out_channel", path, int)
        if in_ch != xt.shape[-1] or out_ch != co or bias.shape != (co,) or w_scales.shape != (co,):
            raise ModelFormatError(f"{path}: channels do not chain (input has {xt.shape[-1]}, "
                                   f"in_channel {in_ch}, out_channel {out_ch}, weight {w.shape}, "
                                   f"bias {bias.shape}, w_scales {w_scales.shape})")
        if groups < 1 or in_ch != cig * groups or co % groups:
            raise ModelFormatError(f"{path}: groups={groups} inconsistent with weight {w.shape}")
        if stride < 1:
            raise ModelFormatError(f"{path}: stride must be >= 1, got {stride}")
        if not _same_q(xq, self.qof(cur)):
            raise ModelFormatError(f"{path}: x_scale/x_zero {xq} differ from the producer's "
                                   f"output {self.qof(cur)}")
        if not np.all(np.isfinite(w_scales)) or np.any(w_scales < 0):
            raise ModelFormatError(f"{path}: w_scales must be finite and >= 0")
        if w.size and w.min() < -127:
            raise ModelFormatError(f"{path}: weights must lie in [-127, 127] (symmetric int8)")
        try:
            mult, shift = quantize_multipliers(xq[0] * w_scales.astype(np.float64) / yq[0])
        except ValueError as e:
            raise ModelFormatError(f"{path}: {e}") from e
        bias, n = clamp_bias_for_int32(bias, w)
        self.clamped += n
        qp = dict(w_scales=w_scales.astype(np.float32), mult=mult, shift=shift)
        if as_fc:
            if (kh, kw) != (1, 1) or groups != 1:
                raise UnsupportedOpError("classifier", name, f"expected a 1x1 conv, got kernel "
                                         f"{(kh, kw)}, groups {groups}", path)
            for key in ("in_shape", "out_shape"):
                v = r.get(entry, key, path, int, optional=True)
                if v not in (None, 1):
                    raise ModelFormatError(f"{path}: {key} {v}, but the classifier runs on the "
                                           "pooled 1x1 map")
            flat = self.g.add_node("flatten", "flatten", [cur], source=path, dtype=INT8,
                                   scale=xq[0], zero_point=xq[1])
            return self.g.add_node("fully_connected", name, [flat],
                                   dict(act_min=-128, act_max=127),
                                   dict(weight=np.ascontiguousarray(w[:, :, 0, 0]), bias=bias, **qp),
                                   source=path, dtype=INT8, scale=yq[0], zero_point=yq[1])
        if kh != kw:
            raise UnsupportedOpError("conv2d", name, f"non-square kernel {kh}x{kw} would need "
                                     "different padding per axis", path)
        if len(xt.shape) != 4:
            raise ModelFormatError(f"{path}: convolution on a non-spatial tensor {xt.shape}")
        in_shape = r.get(entry, "in_shape", path, int, optional=True)
        if in_shape is not None and (in_shape != xt.shape[1] or in_shape != xt.shape[2]):
            raise ModelFormatError(f"{path}: in_shape {in_shape} but the input is {xt.shape[1:3]}")
        pad = (kh - 1) // 2
        if (xt.shape[1] + 2 * pad - kh) < 0:
            raise ModelFormatError(f"{path}: kernel {kh} larger than the padded input {xt.shape[1]}")
        out = self.g.add_node(
            "conv2d", name, [cur],
            dict(kernel=(kh, kw), stride=stride, pad=pad, groups=groups, act_min=-128, act_max=127),
            dict(weight=np.ascontiguousarray(w.transpose(0, 2, 3, 1)), bias=bias, **qp),
            source=path, dtype=INT8, scale=yq[0], zero_point=yq[1])
        out_shape = r.get(entry, "out_shape", path, int, optional=True)
        if out_shape is not None and out_shape != self.g.tensors[out].shape[1]:
            raise ModelFormatError(f"{path}: out_shape {out_shape} but stride {stride}, kernel "
                                   f"{kh} give {self.g.tensors[out].shape[1]}")
        return out

    def residual(self, block_in: str, x2: str, res: Any, path: str, name: str) -> str:
        r = self.r
        params = r.get(res, "params", path, dict)
        x1q = _check_qparams(r, params, path + "/params", "x")
        yq = _check_qparams(r, params, path + "/params", "y")
        if not _same_q(x1q, self.qof(block_in)):
            raise ModelFormatError(f"{path}: residual x_scale/x_zero {x1q} differ from the block "
                                   f"input {self.qof(block_in)}")
        if self.g.tensors[block_in].shape != self.g.tensors[x2].shape:
            raise ModelFormatError(f"{path}: residual on tensors of different shapes "
                                   f"{self.g.tensors[block_in].shape} and {self.g.tensors[x2].shape}")
        s2, z2 = self.qof(x2)
        try:
            p = AddParams.from_scales(x1q[0], x1q[1], s2, z2, yq[0], yq[1])
        except ValueError as e:
            raise ModelFormatError(f"{path}: {e}") from e
        attrs = dict(act_min=-128, act_max=127, **{k: getattr(p, k) for k in
                                                    ("z1", "z2", "zo", "m1", "s1", "m2", "s2", "mo", "so")})
        return self.g.add_node("add", name, [block_in, x2], attrs, source=path, dtype=INT8,
                               scale=yq[0], zero_point=yq[1])

    def build(self) -> Graph:
        r, spec, g = self.r, self.spec, self.g
        if not isinstance(spec, dict):
            raise ModelFormatError("model JSON must be an object")
        fmt = r.get(spec, "format", "", str)
        if not fmt.startswith(FORMAT_PREFIX):
            raise ModelFormatError(f"unknown format {fmt!r} (expected {FORMAT_PREFIX}*)")
        inp = r.get(spec, "input", "", dict)
        shape = r.get(inp, "shape", "input", list)
        layout = r.get(inp, "layout", "input", str)
        if layout != "NCHW" or len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ModelFormatError(f"input: expected an NCHW shape, got {shape} {layout}")
        first = r.get(spec, "first_conv", "", dict)
        xq = _check_qparams(r, r.get(first, "params", "first_conv", dict), "first_conv/params", "x")
        _, c, h, w = shape
        cur = g.add_input("input", (1, h, w, c), INT8, xq[0], xq[1])
        g.metadata.update(format=fmt, input_preprocess=INPUT_PREPROCESS)
        cur = self.conv(cur, first, "first_conv", "first_conv")
        blocks = r.get(spec, "blocks", "", list)
        for i, b in enumerate(blocks):
            path = f"blocks/{i}"
            r.obj(b, path)
            if r.get(b, "se", path, dict, optional=True) is not None:
                raise UnsupportedOpError("squeeze-excite", f"blocks.{i}.se", "SE blocks are not "
                                         "supported", path + "/se")
            block_in = cur
            for part in ("pointwise1", "depthwise", "pointwise2"):
                entry = r.get(b, part, path, dict, optional=part == "pointwise1")
                if entry is not None:
                    cur = self.conv(cur, entry, f"{path}/{part}", f"blocks.{i}.{part}")
            res = r.get(b, "residual", path, dict, optional=True)
            if res is not None:
                cur = self.residual(block_in, cur, res, f"{path}/residual", f"blocks.{i}.add")
        mix = r.get(spec, "feature_mix", "", dict, optional=True)
        if mix is not None:
            cur = self.conv(cur, mix, "feature_mix", "feature_mix")
        if len(g.tensors[cur].shape) != 4:
            raise ModelFormatError("the feature extractor must end in a feature map")
        s, z = self.qof(cur)
        cur = g.add_node("global_avgpool", "pool", [cur], source="(global average pool)",
                         dtype=INT8, scale=s, zero_point=z)
        cls = r.get(spec, "classifier", "", dict)
        cur = self.conv(cur, cls, "classifier", "classifier", as_fc=True)
        g.outputs.append(cur)
        if self.clamped:
            g.metadata.setdefault("notes", []).append(
                f"{self.clamped} saturated int32 bias(es) pulled in so bias + sum fits an int32 "
                "accumulator")
        return g.validate()


def from_spec(spec: dict, arrays: Mapping[str, np.ndarray], name: str = "model") -> Graph:
    """Build the int8 IR from a parsed JSON spec and its arrays (key -> ndarray)."""
    try:
        return _Builder(spec, arrays, name).build()
    except GraphError as e:  # shapes that do not chain, caught by the IR's shape inference
        raise ModelFormatError(str(e)) from e
