"""Helpers shared by the ONNX importers (float: :mod:`.onnx_model`, QDQ int8:
:mod:`.onnx_qdq`): reading a model, node names and source locations, attributes,
constant initializers, input shapes and convolution geometry."""
from __future__ import annotations

import ast

import numpy as np
import onnx
from onnx import numpy_helper

from compiler.frontend.common import pad_attrs, same_pads
from compiler.ir.errors import ModelFormatError, UnsupportedOpError
from compiler.ir.qmath import hw, hw_attr


def read_model(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        return onnx.load(str(model))
    except Exception as e:  # protobuf DecodeError, OSError, ...
        raise ModelFormatError(f"{model}: cannot read ONNX model: {e}") from e


def node_source(node: onnx.NodeProto) -> str:
    """Where a node came from: its name plus, for PyTorch exports, the module scope."""
    meta = {p.key: p.value for p in node.metadata_props}
    scopes = meta.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            parts = [s for s in ast.literal_eval(scopes) if s]
            mods = parts[:-1] if len(parts) > 1 else parts
            if mods:
                return f"onnx node {node.name!r}, module {mods[-1]!r}"
        except (ValueError, SyntaxError):
            pass
    return f"onnx node {node.name!r}"


def module_path(node: onnx.NodeProto) -> str | None:
    """The PyTorch module an exported node came from (``features.0``), when the exporter
    recorded it: the torch.export-based exporter in the node's ``name_scopes`` metadata
    (``['', 'features', 'features.0', 'conv2d']``), the TorchScript one in the node name
    (``/features/features.0/Conv``). None otherwise."""
    meta = {p.key: p.value for p in node.metadata_props}
    scopes = meta.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            parts = [s for s in ast.literal_eval(scopes) if s]
            if len(parts) >= 2:
                return parts[-2]
        except (ValueError, SyntaxError):
            pass
    segs = [s for s in node.name.split("/") if s] if node.name.startswith("/") else []
    return segs[-2] if len(segs) >= 2 else None


def node_name(node: onnx.NodeProto, index: int) -> str:
    """An IR node name that traces back to the user's model: the PyTorch module path when
    the exporter recorded one, else the ONNX node's name."""
    return module_path(node) or node.name or f"{node.op_type}_{index}"


def attributes(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and the outputs of Constant nodes."""
    c = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and len(n.output) == 1:
            a = attributes(n)
            if "value" in a:
                c[n.output[0]] = numpy_helper.to_array(a["value"])
            elif "value_float" in a:
                c[n.output[0]] = np.array(a["value_float"], np.float32)
            elif "value_int" in a:
                c[n.output[0]] = np.array(a["value_int"], np.int64)
            elif "value_floats" in a:
                c[n.output[0]] = np.array(a["value_floats"], np.float32)
            elif "value_ints" in a:
                c[n.output[0]] = np.array(a["value_ints"], np.int64)
    return c


def input_shape(vi: onnx.ValueInfoProto) -> tuple[int, ...]:
    t = vi.type.tensor_type
    dims = []
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif i == 0:
            dims.append(1)  # symbolic batch
        else:
            raise ModelFormatError(f"input {vi.name!r}: dimension {i} is not static")
    return tuple(dims)


def conv_pads(op: str, name: str, src: str, a: dict, w_shape, in_hw=None):
    """(stride, pads) of a Conv / MaxPool node: ``stride`` the IR attribute (int, or per
    axis (h, w)), ``pads`` the IR padding attributes (:func:`pad_attrs`: ``pad`` and, when
    the two sides of an axis differ, ``pad_end``), from ``pads`` or ``auto_pad``
    (SAME_UPPER / SAME_LOWER need the input's (H, W) ``in_hw``); or UnsupportedOpError."""
    if len(w_shape) != 4:
        raise UnsupportedOpError(op, name, f"{len(w_shape) - 2}-D convolution (only 2-D)", src)
    kh, kw = int(w_shape[2]), int(w_shape[3])
    if list(a.get("kernel_shape", [kh, kw])) != [kh, kw]:
        raise UnsupportedOpError(op, name, "kernel_shape does not match the weights", src)
    dil = list(a.get("dilations", [1, 1]))
    if any(d != 1 for d in dil):
        raise UnsupportedOpError(op, name, f"dilations={dil} (only 1 is supported)", src)
    strides = [int(s) for s in a.get("strides", [1, 1])]
    if len(strides) != 2 or min(strides) < 1:
        raise UnsupportedOpError(op, name, f"strides={strides}", src)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        if len(pads) != 4:
            raise UnsupportedOpError(op, name, f"pads={pads} (4 values for a 2-D window)", src)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        if in_hw is not None:
            (t, b), (l_, r) = (same_pads(int(n), k, s, auto == "SAME_LOWER")
                               for n, k, s in zip(in_hw, (kh, kw), strides))
            pads = [t, l_, b, r]
        elif strides == [1, 1] and kh % 2 and kw % 2:  # symmetric whatever the input size
            pads = [(kh - 1) // 2, (kw - 1) // 2, (kh - 1) // 2, (kw - 1) // 2]
        else:
            raise UnsupportedOpError(op, name, f"auto_pad={auto} with kernel {(kh, kw)}, strides "
                                     f"{strides} needs the input size", src)
    else:
        raise UnsupportedOpError(op, name, f"auto_pad={auto!r}", src)
    return hw_attr(*strides), pad_attrs(op, name, src, pads)


def conv_geometry(op: str, name: str, src: str, a: dict, w_shape):
    """(stride, pad) IR attributes of a node whose padding must be the same on both
    sides of each axis (int, or per axis (h, w)), or UnsupportedOpError."""
    stride, pads = conv_pads(op, name, src, a, w_shape)
    if "pad_end" in pads:
        raise UnsupportedOpError(op, name, f"asymmetric padding (leading {pads['pad']}, "
                                 f"trailing {pads['pad_end']}); each axis must be padded "
                                 "equally on both sides", src)
    return stride, pads["pad"]


def max_pool_attrs(node: onnx.NodeProto, a: dict, name: str, src: str, rank: int,
                   in_hw=None) -> dict:
    """IR attributes (kernel, stride, pad [, pad_end]) of a MaxPool node (``in_hw``: the
    input's (H, W), for auto_pad SAME_*), or UnsupportedOpError."""
    def fail(reason):
        raise UnsupportedOpError("MaxPool", name, reason, src)
    k = [int(v) for v in a.get("kernel_shape", [])]
    if rank != 4 or len(k) != 2:
        fail("only 2-D max pooling of a 4-D feature map")
    if len([o for o in node.output if o]) > 1:
        fail("the Indices output is not supported")
    if a.get("ceil_mode", 0) or a.get("storage_order", 0):
        fail("ceil_mode / storage_order (only floor mode, row-major)")
    stride, pads = conv_pads("MaxPool", name, src, a, (1, 1, k[0], k[1]), in_hw)
    return dict(kernel=(k[0], k[1]), stride=stride, **pads)


def avg_pool_attrs(node: onnx.NodeProto, a: dict, name: str, src: str, shape) -> dict | None:
    """IR attributes (kernel, stride, pad, count_include_pad) of an AveragePool node on an
    NHWC map of ``shape``, None when one unpadded window covers the map (global pooling),
    or UnsupportedOpError."""
    def fail(reason):
        raise UnsupportedOpError("AveragePool", name, reason, src)
    k = [int(v) for v in a.get("kernel_shape", [])]
    if len(shape) != 4 or len(k) != 2:
        fail("only 2-D average pooling of a 4-D feature map")
    if a.get("ceil_mode", 0):
        fail("ceil_mode=1 (only floor mode)")
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        fail(f"dilations={list(a.get('dilations'))} (only 1)")
    stride, pad = conv_geometry("AveragePool", name, src, a, (1, 1, k[0], k[1]))
    ph, pw = hw(pad)
    if 2 * ph > k[0] or 2 * pw > k[1]:
        fail(f"pads {(ph, pw)} larger than half the kernel {tuple(k)}")
    if k == [shape[1], shape[2]] and (ph, pw) == (0, 0):
        return None
    return dict(kernel=(k[0], k[1]), stride=stride, pad=pad,
                count_include_pad=bool(a.get("count_include_pad", 0)))
