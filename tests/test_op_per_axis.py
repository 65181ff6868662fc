"""Kernels, strides and padding that differ per axis (non-square inputs such as 49 x 10
spectrograms) and Conv1d as a 1 x K conv on a 1 x L map, end to end: the integer
reference and its gradients against torch, PyTorch and ONNX import, whole models in C
against the reference bit for bit (host and QEMU), and training through them. The
acceptance model is the MLPerf Tiny keyword-spotting DS-CNN (input 1 x 49 x 10)."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit
from zoo_models import dscnn  # the MLPerf Tiny KWS DS-CNN

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend.common import nchw_to_nhwc
from compiler.frontend.onnx_model import load_onnx
from compiler.frontend.torch_fx import import_module
from compiler.ir import graph_io
from compiler.ir.qmath import hw, out_size
from compiler.quantize.float_ref import run_float
from compiler.ref import executor as reference
from compiler.ref import grad_ops
from compiler.ref import ops as ref_ops

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))
QEMU = pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)


def _randomize_bn(m, seed):
    g = torch.Generator().manual_seed(seed)
    for b in m.modules():
        if isinstance(b, nn.BatchNorm2d):
            n = b.num_features
            b.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            b.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            b.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            b.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return m


def _dscnn(seed=0):
    torch.manual_seed(seed)
    return _randomize_bn(dscnn(), seed).eval()


def _spectrograms(n, seed):
    return np.random.default_rng(seed).normal(0, 1, (n, 1, 49, 10)).astype(np.float32)


def _ints(g, n, seed):
    shape = g.tensors[g.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n,) + shape).astype(np.int8)


@pytest.fixture(scope="module")
def kws():
    m = _dscnn()
    return m, import_module(m, torch.zeros(1, 1, 49, 10), calibration=_spectrograms(64, 1),
                            name="dscnn")


# ----------------------------------------------------------------------------- reference

geom = dict(h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
            sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
            dw=st.booleans(), seed=st.integers(0, 2**32 - 1))


def _shapes_ok(h, w, kh, kw, ph, pw):
    return h + 2 * ph >= kh and w + 2 * pw >= kw


@settings(max_examples=40, **SETTINGS)
@given(**geom)
def test_reference_conv_and_its_gradients_are_torch(h, w, kh, kw, sh, sw, ph, pw, dw, seed):
    """Per-axis geometry: the int8 conv accumulators, the input gradient (transposed conv)
    and the weight gradient equal torch's conv2d and its autograd on the same integers."""
    if not _shapes_ok(h, w, kh, kw, ph, pw):
        return
    rng = np.random.default_rng(seed)
    ci = int(rng.integers(1, 5))
    co, groups = (ci, ci) if dw else (int(rng.integers(1, 5)), 1)
    x = rng.integers(-128, 128, (2, h, w, ci)).astype(np.int8)
    wt = rng.integers(-127, 128, (co, kh, kw, ci // groups)).astype(np.int8)
    xz = int(rng.integers(-20, 20))
    stride, pad = (sh, sw), (ph, pw)
    acc = ref_ops.conv_acc(x, wt, np.zeros(co, np.int32), xz, stride, pad, groups)
    xt = torch.from_numpy(x.astype(np.float64) - xz).permute(0, 3, 1, 2).requires_grad_()
    wtt = torch.from_numpy(wt.astype(np.float64)).permute(0, 3, 1, 2).requires_grad_()
    yt = F.conv2d(xt, wtt, None, stride, pad, groups=groups)
    np.testing.assert_array_equal(acc, yt.detach().permute(0, 2, 3, 1).numpy())
    gy = rng.integers(-128, 128, acc.shape).astype(np.int8)
    yt.backward(torch.from_numpy(gy.astype(np.float64)).permute(0, 3, 1, 2))
    gx = grad_ops.conv_grad_input(gy.astype(np.int16), wt, (h, w), stride, pad, groups)
    np.testing.assert_array_equal(gx, xt.grad.permute(0, 2, 3, 1).numpy())
    gw = grad_ops.conv_grad_weight_acc(gy, x, xz, (kh, kw), stride, pad, groups)
    np.testing.assert_array_equal(gw, wtt.grad.permute(0, 2, 3, 1).numpy())


@settings(max_examples=30, **SETTINGS)
@given(**geom)
def test_reference_max_pool_and_its_gradient_are_torch(h, w, kh, kw, sh, sw, ph, pw, dw, seed):
    if 2 * ph > kh or 2 * pw > kw or not _shapes_ok(h, w, kh, kw, ph, pw) or h * w * 3 * 2 > 256:
        return
    rng = np.random.default_rng(seed)
    x = (rng.permutation(256)[:2 * h * w * 3] - 128).astype(np.int8).reshape(2, h, w, 3)  # no ties
    y = ref_ops.max_pool(x, kh, kw, (sh, sw), (ph, pw))
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2).requires_grad_()
    yt = F.max_pool2d(xt, (kh, kw), (sh, sw), (ph, pw))
    np.testing.assert_array_equal(y, yt.detach().permute(0, 2, 3, 1).numpy().astype(np.int8))
    gy = rng.integers(-128, 128, y.shape).astype(np.int8)
    yt.backward(torch.from_numpy(gy.astype(np.float64)).permute(0, 3, 1, 2))
    acc = grad_ops.max_pool_grad_acc(gy, x, (kh, kw), (sh, sw), (ph, pw))
    np.testing.assert_array_equal(acc, xt.grad.permute(0, 2, 3, 1).numpy().astype(np.int32))


# ----------------------------------------------------------------------------- DS-CNN

def test_dscnn_import_keeps_per_axis_geometry_and_matches_torch(kws, tmp_path):
    m, q = kws
    first = q.nodes[0]
    assert first.attrs["kernel"] == (10, 4) and hw(first.attrs["stride"]) == (2, 2)
    assert first.attrs["pad"] == (5, 1)
    assert q.tensors[first.output].shape == (1, 25, 5, 64)
    assert [n.op for n in q.nodes][-3:] == ["global_avgpool", "flatten", "fully_connected"]
    x = _spectrograms(16, 2)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    y = reference.run(q, reference.quantize_input(q, nchw_to_nhwc(x)))
    o = q.tensors[q.outputs[0]]
    real = (np.asarray(y, np.float64) - o.zero_point) * o.scale
    assert np.abs(real - want).max() < 0.1 * np.abs(want).max() + 4 * o.scale
    assert (real.argmax(1) == want.argmax(1)).mean() >= 0.8
    back = graph_io.load(graph_io.save(q, tmp_path / "kws.json"))   # per-axis attrs round-trip
    assert back.nodes[0].attrs == first.attrs and back.sha256() == q.sha256()


def test_dscnn_onnx_export_gives_the_same_graph(tmp_path):
    m = _dscnn(1)
    path = tmp_path / "kws.onnx"
    torch.onnx.export(m, torch.zeros(1, 1, 49, 10), str(path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    go, gt = load_onnx(path), import_module(m, torch.zeros(1, 1, 49, 10))
    convs = lambda g: [(n.attrs["kernel"], n.attrs["stride"], n.attrs["pad"], n.attrs["groups"])  # noqa: E731
                       for n in g.nodes if n.op == "conv2d"]
    assert convs(go) == convs(gt) and convs(go)[0] == ((10, 4), 2, (5, 1), 1)
    x = _spectrograms(8, 3)
    np.testing.assert_allclose(run_float(go, nchw_to_nhwc(x)), run_float(gt, nchw_to_nhwc(x)),
                               atol=1e-4, rtol=1e-4)
    calib = _spectrograms(32, 4)   # calibrated: the same int8 graph
    qo = load_onnx(path, calibration=calib)
    qt = import_module(m, torch.zeros(1, 1, 49, 10), calibration=calib)
    xi = _ints(qt, 4, 5)
    np.testing.assert_array_equal(reference.run(qo, xi), reference.run(qt, xi))


def test_dscnn_forward_in_c_is_bit_exact(kws, tmp_path):
    forward_both(kws[1], "host", tmp_path, n=2)


@pytest.mark.parametrize("board", ["host", QEMU])
def test_dscnn_training_last_blocks_and_head_is_bit_exact(kws, board, tmp_path):
    """Also the QEMU forward check: every step's logits (the whole forward pass, the
    per-axis first conv included) equal the reference's bit for bit."""
    g = kws[1]
    trainable = ad.last_layers(g, 3)   # last depthwise + pointwise + the classifier
    run_both(g, trainable, tr.TrainConfig(lr=0.01), board, tmp_path, _ints(g, 3, 7),
             np.random.default_rng(8).integers(0, 12, 3))


# ----------------------------------------------------------------------------- per-axis everywhere

class Strips(nn.Module):
    """Per-axis geometry in every layer kind; training c3 + c2 + fc runs the generic
    conv's weight-gradient kernel and its input gradient (into c3) with per-axis c2."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, (3, 1), padding=(1, 0))
        self.p1 = nn.MaxPool2d((2, 3), stride=(2, 1), padding=(0, 1))
        self.dw = nn.Conv2d(6, 6, (3, 5), stride=(2, 1), padding=(1, 2), groups=6)
        self.c3 = nn.Conv2d(6, 8, 1)
        self.c2 = nn.Conv2d(8, 8, (2, 3), stride=(1, 2), padding=(1, 1))
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.p1(F.relu(self.c1(x)))
        x = F.relu(self.c3(F.relu(self.dw(x))))
        x = F.relu(self.c2(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@pytest.fixture(scope="module")
def strips():
    torch.manual_seed(4)
    m = Strips().eval()
    x = np.random.default_rng(6).normal(0, 1, (48, 2, 11, 7)).astype(np.float32)
    return m, import_module(m, torch.zeros(1, 2, 11, 7), calibration=x, name="strips")


def test_strips_forward_host_bit_exact_and_matches_torch(strips, tmp_path):
    m, q = strips
    x = np.random.default_rng(9).normal(0, 1, (8, 2, 11, 7)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    g = import_module(m, torch.zeros(1, 2, 11, 7))
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)
    forward_both(q, "host", tmp_path, n=3)


def test_strips_training_through_the_per_axis_conv_is_bit_exact(strips, tmp_path):
    g = strips[1]
    c2 = next(n.name for n in g.nodes if n.op == "conv2d" and n.attrs["kernel"] == (2, 3))
    trainable = ad.last_layers(g, 3)     # c3 (1x1), c2 (per axis), fc
    assert c2 in trainable
    prog = ad.build_program(g, trainable)
    assert any(isinstance(s, ad.ConvGradInput) and s.node == c2 for s in prog.steps)
    run_both(g, trainable, tr.TrainConfig(lr=0.02), "host", tmp_path, _ints(g, 4, 3),
             np.random.default_rng(2).integers(0, 5, 4))


@pytest.mark.parametrize("board", ["host", QEMU])
def test_training_a_per_axis_depthwise_is_bit_exact(strips, board, tmp_path):
    """Every layer trains: the depthwise (3 x 5 kernel, stride (2, 1), pad (1, 2)) runs
    its weight-gradient kernel and its input gradient (through the per-axis max pool
    into c1) with per-axis geometry: 4 steps on the board equal the reference."""
    g = strips[1]
    dw = next(n for n in g.nodes if n.is_depthwise)
    prog = ad.build_program(g, ad.whole_model(g))
    assert any(isinstance(s, ad.ConvGradInput) and s.node == dw.name for s in prog.steps)
    rep, _ = run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.02), board, tmp_path,
                      _ints(g, 4, 5), np.random.default_rng(4).integers(0, 5, 4))
    assert dw.name in {a["node"] for a in rep["trained_arrays"]}


# ----------------------------------------------------------------------------- Conv1d

class Seq(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(8, 8, 3, stride=2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(self.gap(F.relu(self.conv2(x))), 1))


def test_conv1d_is_a_1xk_conv_bit_exact_on_host(tmp_path):
    torch.manual_seed(1)
    m = _randomize_bn(Seq(), 2).eval()
    m.bn.running_mean.normal_(0, 0.1)
    x = np.random.default_rng(3).normal(0, 1, (48, 1, 64)).astype(np.float32)
    g = import_module(m, torch.zeros(1, 1, 64))
    assert g.tensors[g.inputs[0]].shape == (1, 1, 64, 1)
    conv = next(n for n in g.nodes if n.op == "conv2d")
    assert (conv.attrs["kernel"], conv.attrs["stride"], conv.attrs["pad"]) == ((1, 5), 1, (0, 2))
    with torch.no_grad():
        want = m(torch.from_numpy(x[:8])).numpy()
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x[:8])), want, atol=1e-4, rtol=1e-4)
    q = import_module(m, torch.zeros(1, 1, 64), calibration=x, name="seq")
    pool = next(n for n in q.nodes if n.op == "max_pool")
    assert (pool.attrs["kernel"], pool.attrs["stride"]) == ((1, 2), (1, 2))
    y = reference.run(q, reference.quantize_input(q, nchw_to_nhwc(x[:8])))
    o = q.tensors[q.outputs[0]]
    real = (np.asarray(y, np.float64) - o.zero_point) * o.scale
    assert np.abs(real - want).max() < 0.1 * np.abs(want).max() + 4 * o.scale
    forward_both(q, "host", tmp_path, n=2)
    assert out_size(64, 5, 1, 2) == 64
