"""Your own model: ``python -m compiler import`` of a PyTorch module (FILE.py:FACTORY) or an
ONNX file, calibrated on data, with the input preprocessing (per-channel mean/std)
recorded in the model and applied by the device's pixel tables exactly as the reference
applies them. The README's example is run as written."""
import copy
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from compiler import paths
from compiler.autodiff import device_replay
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import user_model as U
from compiler.ir.errors import CompilerError, ModelFormatError
from compiler.ref import inputs
from compiler.target import firmware
from compiler.target import runner as R
from host import protocol as P


def _readme_example() -> tuple[str, list[str]]:
    text = (paths.REPO / "README.md").read_text()
    py = re.search(r"<!-- example: mymodel.py -->\n```python\n(.*?)```", text, re.S).group(1)
    cmds = re.search(r"<!-- example: commands -->\n```\n(.*?)```", text, re.S).group(1)
    return py, [c for c in cmds.replace("\\\n", " ").splitlines() if c.strip()]


def test_readme_example_runs_as_written(tmp_path):
    py, commands = _readme_example()
    (tmp_path / "mymodel.py").write_text(py)
    outputs = []
    for c in commands:
        argv = shlex.split(c)
        assert argv[:3] == ["python", "-m", "compiler"], c
        p = subprocess.run([sys.executable] + argv[1:], cwd=tmp_path, capture_output=True, text=True)
        assert p.returncode == 0, f"{c}\n{p.stdout}\n{p.stderr}"
        assert "Traceback" not in p.stderr
        outputs.append(p.stdout)
    assert (tmp_path / "lenet.json").exists() and (tmp_path / "lenet.npz").exists()
    assert "quantize((pixel / 255 - mean[c]) / std[c], mean 0.1307, std 0.3081" in outputs[0]
    assert "int8, 7 nodes" in outputs[1]
    ref = subprocess.run([sys.executable, "-m", "compiler", "run", "lenet.json", "--image", "coffee",
                          "--board", "reference"], cwd=tmp_path, capture_output=True, text=True)

    def top5(text):   # [(class, logit)] of the top-5 line: the host build equals the reference
        line = next(ln for ln in text.splitlines() if ln.startswith("coffee: top-5"))
        return re.findall(r"(\d+) \((-?\d+)\)", line.split("ns per")[0])[:5]
    assert len(top5(outputs[2])) == 5 and top5(outputs[2]) == top5(ref.stdout)
    assert (tmp_path / "fw" / "firmware.elf").exists()


class _RGBNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
                                  nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.ReLU(),
                                  nn.Conv2d(8, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.body(x), 1))


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("rgb")
    (d / "net.py").write_text("import torch, torch.nn as nn\n"
                              + "from test_user_model import _RGBNet\n"
                              + "def make():\n    torch.manual_seed(0)\n    return _RGBNet()\n")
    return U.import_model(f"{d / 'net.py'}:make", input_shape=(3, 12, 12), calibrate="digits",
                          samples=64, mean=MEAN, std=STD)


def test_per_channel_tables_quantize_the_normalized_pixel(rgb_model):
    g = rgb_model
    lut, rule = inputs.pixel_lut(g)
    assert lut.shape == (3, 256) and "mean 0.485, 0.456, 0.406" in rule
    x = g.tensors[g.inputs[0]]
    p = np.arange(256) / 255.0
    for c in range(3):
        want = np.clip(np.rint(((p - MEAN[c]) / STD[c]) / x.scale) + x.zero_point, -128, 127)
        np.testing.assert_array_equal(lut[c], want)
    img = np.random.default_rng(0).integers(0, 256, (4, 12, 12, 3), dtype=np.uint8)
    got = inputs.apply_lut(lut, img)
    assert got.dtype == np.int8 and (got[..., 1] == lut[1][img[..., 1]]).all()


def test_device_applies_the_per_channel_rule_bit_exactly(rgb_model, tmp_path):
    """The device app (host build) learns from RGB samples through the per-channel tables:
    every prediction and the trained arrays equal the reference replay."""
    g = copy.deepcopy(rgb_model)
    prog = ad.build_program(g, ad.last_layers(g, 2))
    cfg = tr.TrainConfig(lr=0.05, seed=1)
    rep = firmware.build(copy.deepcopy(g), "host", tmp_path / "fw", program=prog, config=cfg,
                         app=firmware.DEVICE_APP, quiet=True)
    assert "#define TT_MODEL_PIXEL_LUTS 3" in (tmp_path / "fw" / "tt_model.h").read_text()
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 5, 16)]
    import serial
    with R.HostSerial(rep["elf"], timeout=60) as h:
        port = serial.serial_for_url(h.url, timeout=30)
        c = P.Client(port, timeout=30)
        dev = [c.sample(im, lab) for im, lab in zip(imgs, labels)]
        blob = c.download()
        c.exit(0)
        port.close()
    sim = device_replay.replay(g, prog, tr.TrainState(cfg), list(imgs), labels)
    assert [r.pred for r in dev] == sim.preds
    for (node, param), v in firmware.split_trained(g, rep, blob).items():
        np.testing.assert_array_equal(v, g.node(node).params[param], err_msg=f"{node}.{param}")


def test_import_refuses_bad_sources_clearly(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import torch.nn as nn\ndef make():\n    return nn.Linear(4, 2)\n"
                 "def other():\n    return 3\n")
    with pytest.raises(ModelFormatError, match="has no function 'nope' .*it has: make, other"):
        U.import_model(f"{f}:nope", input_shape=(1, 1, 4))
    with pytest.raises(ModelFormatError, match="returned a int, expected a torch.nn.Module"):
        U.import_model(f"{f}:other", input_shape=(1, 1, 4))
    with pytest.raises(CompilerError, match="needs --input-shape"):
        U.import_model(f"{f}:make")
    with pytest.raises(ModelFormatError, match="file not found"):
        U.import_model(f"{tmp_path / 'x.py'}:make", input_shape=(1, 2, 2))
    with pytest.raises(ModelFormatError, match="model file not found: .*m.pt2"):
        U.import_model(str(tmp_path / "m.pt2"), calibrate="digits")
    with pytest.raises(CompilerError, match="expected C,H,W"):
        U.parse_input_shape("3,32,32,3")
    with pytest.raises(CompilerError, match="2 values for a model input of 3 channels"):
        U.normalize(np.zeros((1, 2, 2, 3), np.uint8), [0.1, 0.2], None, 3)


def test_import_float_onnx_needs_calibration_then_quantizes(tmp_path):
    onnx_path = tmp_path / "net.onnx"
    torch.manual_seed(0)
    torch.onnx.export(_RGBNet().eval(), torch.zeros(1, 3, 12, 12), onnx_path, dynamo=False)
    with pytest.raises(CompilerError, match="a float ONNX model: give --calibrate"):
        U.import_model(str(onnx_path))
    g = U.import_model(str(onnx_path), calibrate="digits", samples=32, mean=MEAN, std=STD)
    assert g.is_int8 and g.tensors[g.inputs[0]].shape == (1, 12, 12, 3)
    assert inputs.pixel_lut(g)[0].shape == (3, 256)


def test_import_cli_one_error_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "compiler", "import", "nothere.py:make",
                        "--input-shape", "1,8,8", "-o", str(tmp_path / "m.json")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_onnx_node_names_trace_back_to_the_pytorch_modules(tmp_path):
    """Float and QDQ (onnxruntime) imports name IR nodes after the PyTorch modules the
    exporter recorded, so plans and memory tables name the user's layers."""
    import importlib.util

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from compiler.frontend import models
    py, _ = _readme_example()
    (tmp_path / "mymodel.py").write_text(py)
    spec = importlib.util.spec_from_file_location("readme_mymodel", tmp_path / "mymodel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fp, qp = tmp_path / "f.onnx", tmp_path / "q.onnx"
    torch.onnx.export(mod.make_model().eval(), torch.zeros(1, 1, 28, 28), str(fp), input_names=["x"],
                      dynamo=False)
    want = {"features.0", "features.3", "classifier.1", "classifier.3"}
    assert want <= {n.name for n in models.load(fp).nodes}
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"x": rng.random((1, 1, 28, 28), dtype=np.float32)} for _ in range(16))

        def get_next(self):
            return next(self.it, None)
    quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    g = models.load(qp)
    assert g.is_int8 and want <= {n.name for n in g.nodes}, [n.name for n in g.nodes]


def test_unsupported_layer_error_names_module_line_and_lists_supported(tmp_path):
    from onnx import TensorProto, helper

    from compiler.frontend.onnx_model import load_onnx
    from compiler.frontend.torch_fx import import_module
    from compiler.ir.errors import UnsupportedOpError

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(self.conv(x))
    with pytest.raises(UnsupportedOpError, match=r"'Tanh' at node 'act' \(module 'act' at test_user_model.py:\d+\)"
                       r".*supported layers: .*Conv2d.*MaxPool2d"):
        import_module(M(), torch.zeros(1, 1, 8, 8))
    node = helper.make_node("Tanh", ["x"], ["y"], name="t")
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 4, 4]) for n in "xy"]
    with pytest.raises(UnsupportedOpError, match="supported operators: .*Concat, Conv.*MaxPool"):
        load_onnx(helper.make_model(helper.make_graph([node], "g", vi[:1], vi[1:])))
