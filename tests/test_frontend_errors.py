"""Error reporting of the front ends on hand-picked unsupported models: the message must
name the op, the node and (PyTorch) the module path, and come before any code exists."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from compiler.frontend import models
from compiler.frontend.onnx_model import load_onnx
from compiler.frontend.torch_fx import import_module
from compiler.frontend.tte_json import load_tte
from compiler.ir.errors import CompilerError, ModelFormatError, QuantizationError, UnsupportedOpError
from compiler.quantize.ptq import quantize


class Backbone(nn.Module):
    def __init__(self, bad: nn.Module):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), bad)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("bad, op, reason", [
    (nn.Conv2d(8, 8, 3, padding=2, dilation=2), "Conv2d", "dilation=(2, 2)"),
    (nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), "Conv2d", "padding_mode='circular'"),
    (nn.MaxPool2d(3, 1, 1, ceil_mode=True), "MaxPool2d", "ceil_mode"),
    (nn.GELU(), "GELU", "layer type not supported"),
])
def test_torch_error_names_op_node_and_module_path(bad, op, reason):
    with pytest.raises(UnsupportedOpError) as e:
        import_module(Backbone(bad), torch.zeros(1, 3, 8, 8))
    msg = str(e.value)
    assert e.value.op == op and e.value.node == "features_2"
    assert "module 'features.2'" in e.value.source
    assert op in msg and "features_2" in msg and "features.2" in msg and reason in msg


def test_torch_untraceable_model_raises_unsupported():
    class Dynamic(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return x
            return -x

    with pytest.raises(UnsupportedOpError, match="symbolic trace"):
        import_module(Dynamic(), torch.zeros(1, 3, 4, 4))


def test_relu_on_shared_tensor_cannot_fuse():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            y = self.conv(x)
            z = torch.relu(y) + y  # ReLU of a tensor that is also used un-activated
            return self.fc(z.mean(dim=(2, 3)))

    g = import_module(Shared(), torch.zeros(1, 3, 4, 4))
    with pytest.raises(UnsupportedOpError, match="also used elsewhere") as e:
        quantize(g, np.random.rand(4, 4, 4, 3))
    assert e.value.op == "clip" and e.value.node == "relu"


def test_quantize_rejects_bad_calibration():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean(dim=(2, 3)))

    g = import_module(Tiny(), torch.zeros(1, 3, 4, 4))
    with pytest.raises(QuantizationError):
        quantize(g, np.zeros((4, 3, 4, 4)))  # NCHW instead of the IR's NHWC
    with pytest.raises(QuantizationError):
        quantize(g, np.full((2, 4, 4, 3), np.nan))


def _onnx_with(node_kwargs, pads=(1, 1, 1, 1)):
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="stem_conv", kernel_shape=[3, 3],
                            pads=list(pads), **node_kwargs)
    g = helper.make_graph([conv], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_onnx_negative_padding_and_dilation():
    with pytest.raises(UnsupportedOpError, match="negative padding") as e:
        load_onnx(_onnx_with({}, pads=(0, 0, -1, -1)))
    assert e.value.op == "Conv" and e.value.node == "stem_conv"
    g = load_onnx(_onnx_with({}, pads=(0, 0, 1, 1)))   # asymmetric: the trailing pads kept
    assert (g.nodes[0].attrs["pad"], g.nodes[0].attrs["pad_end"]) == (0, 1)
    with pytest.raises(UnsupportedOpError, match="dilations"):
        load_onnx(_onnx_with(dict(dilations=[2, 2])))


def test_qdq_batchnorm_hint():
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    inits += [numpy_helper.from_array(np.ones(1, np.float32), n) for n in ("g", "b", "m", "v")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
             helper.make_node("BatchNormalization", ["xd", "g", "b", "m", "v"], ["y"], name="bn")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    with pytest.raises(UnsupportedOpError, match="quant_pre_process") as e:
        load_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))
    assert e.value.node == "bn"


@pytest.mark.skipif(not (models.models_dir() / "mcunet-5fps.json").is_file(), reason="real models not found")
def test_tte_act_and_format_errors(tmp_path):
    src = models.resolve("mcunet-5fps")
    spec = json.loads(src.read_text())
    spec["blocks"][2]["depthwise"]["act"] = "relu6"
    (tmp_path / "m.json").write_text(json.dumps(spec))
    (tmp_path / "m.npz").write_bytes(src.with_suffix(".npz").read_bytes())
    with pytest.raises(UnsupportedOpError) as e:
        load_tte(tmp_path / "m.json")
    assert e.value.node == "blocks.2.depthwise" and e.value.source == "blocks/2/depthwise"
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ModelFormatError):
        load_tte(tmp_path / "m.json")


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ModelFormatError, match="mcunet-5fps, mbv2-w0.35, proxyless-w0.3"):
        models.resolve("resnet50")
    assert issubclass(UnsupportedOpError, CompilerError) and issubclass(ModelFormatError, CompilerError)
