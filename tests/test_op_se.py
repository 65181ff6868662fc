"""Squeeze-excite ops end to end: sigmoid / hardsigmoid / hardswish as int8 lookup tables
(built at compile time from the input's and output's parameters) and the elementwise
mul with a per-channel gate broadcast over H x W (TFLite MUL): PyTorch and ONNX import,
reference against the float semantics, an SE block model in C against the reference bit
for bit (host build and QEMU), training with the SE block frozen and training through it
(the stem below the SE block trains: the gradient passes mul, hardsigmoid, the squeeze's
1x1 convs, the global pool and hardswish), bit for bit on the host build and QEMU, and
the int8 gradients against torch autograd. The C kernels tt_lut_s8 / tt_mul_s8 against
the reference: tests/kernel_cases.py; their backward kernels: tests/train_kernel_cases.py."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from op_helpers import calib as _calib
from op_helpers import export_onnx, int8_real_outputs
from op_helpers import int8_inputs as _inputs
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend.common import nchw_to_nhwc
from compiler.frontend.onnx_model import load_onnx
from compiler.frontend.torch_fx import import_module
from compiler.ir.ops import lut_table
from compiler.ir.qmath import quantize_multiplier
from compiler.quantize.float_ref import run_float
from compiler.ref import ops as ref_ops

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


class SE(nn.Module):
    """global pool -> 1x1 conv -> ReLU -> 1x1 conv -> hardsigmoid -> mul with the input."""

    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        g = self.gate(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * g


class SENet(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.act = nn.Hardswish()
        self.se = SE(16)
        self.c = nn.Conv2d(16, 12, 1)
        self.fc = nn.Linear(12, classes)

    def forward(self, x):
        x = self.se(self.act(self.stem(x)))
        x = torch.sigmoid(self.c(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _model(seed=0):
    torch.manual_seed(seed)
    return SENet().eval()


class _N:
    def __init__(self, op, **attrs):
        self.op, self.attrs = op, attrs


@pytest.mark.parametrize("node, fn", [
    (_N("sigmoid"), torch.sigmoid), (_N("hardsigmoid", alpha=1 / 6, beta=0.5), F.hardsigmoid),
    (_N("hardswish"), F.hardswish)])
def test_lut_table_is_the_rounded_torch_function(node, fn):
    s_in, z_in, s_out, z_out = 0.05, 3, 1 / 255, -128
    if node.op == "hardswish":
        s_out, z_out = 0.03, -20
    t = lut_table(node, s_in, z_in, s_out, z_out)
    x = (np.arange(-128, 128) - z_in) * s_in
    want = np.clip(np.round(fn(torch.from_numpy(x)).numpy() / s_out) + z_out, -128, 127)
    assert np.abs(t.astype(np.int64) - want).max() <= 1   # ties: half away vs half even
    np.testing.assert_array_equal(ref_ops.lut(np.array([-128, 0, 127], np.int8), t), t[[0, 128, 255]])


@settings(max_examples=40, **SETTINGS)
@given(h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 9), bcast=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_reference_mul_is_the_rounded_real_product(h, w, c, bcast, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (2, h, w, c)).astype(np.int8)
    b = rng.integers(-128, 128, (2, 1, 1, c) if bcast else (2, h, w, c)).astype(np.int8)
    sa, sb, so = (float(v) for v in rng.uniform(0.005, 0.1, 3))
    za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
    m, sh = quantize_multiplier(sa * sb / so)
    y = ref_ops.mul(a, b, za, zb, zo, m, sh)
    real = (a.astype(np.float64) - za) * sa * ((b.astype(np.float64) - zb) * sb)
    want = np.clip(real / so + zo, -128, 127)
    assert np.abs(y - want).max() <= 0.5 + 1e-6 * np.abs(real / so).max() + 1e-9


def test_torch_import_float_and_int8():
    m = _model()
    g = import_module(m, torch.zeros(1, 3, 16, 16))
    ops = [n.op for n in g.nodes]
    assert {"hardswish", "hardsigmoid", "sigmoid", "mul"} <= set(ops)
    mul = next(n for n in g.nodes if n.op == "mul")
    assert g.tensors[mul.inputs[1]].shape == (1, 1, 1, 16)   # the gate second
    x = _calib(8, seed=1)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)
    q = import_module(m, torch.zeros(1, 3, 16, 16), calibration=_calib())
    assert q.is_int8
    real, y = int8_real_outputs(q, x)
    assert np.abs(real - want).max() < 0.05 * np.abs(want).max() + 4 * y.scale


def test_onnx_import_matches_torch_import_and_onnxruntime(tmp_path):
    m = _model(1)
    path = tmp_path / "se.onnx"
    export_onnx(m, path, opset_version=14)
    go = load_onnx(path)
    gt = import_module(m, torch.zeros(1, 3, 16, 16))
    assert [n.op for n in go.nodes] == [n.op for n in gt.nodes]
    x = _calib(6, seed=2)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(run_float(go, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def int8_model():
    return import_module(_model(2), torch.zeros(1, 3, 16, 16), calibration=_calib(), name="senet")


def test_forward_in_c_is_bit_exact(int8_model, tmp_path):
    """Host build (QEMU runs the same forward pass, every step's logits checked bit for
    bit, in test_training_through_the_se_block_is_bit_exact)."""
    forward_both(int8_model, "host", tmp_path)


def test_training_with_se_in_the_frozen_part_is_bit_exact(int8_model, tmp_path):
    g = int8_model
    run_both(g, ad.last_layers(g, 1), tr.TrainConfig(lr=0.01), "host", tmp_path, _inputs(g, 3, 7),
             np.random.default_rng(8).integers(0, 5, 3))


@pytest.mark.parametrize("node, fn", [
    (_N("sigmoid"), torch.sigmoid), (_N("hardsigmoid", alpha=1 / 6, beta=0.5), F.hardsigmoid),
    (_N("hardswish"), F.hardswish)])
def test_derivative_table_is_torch_autograd(node, fn):
    """The int16 derivative table times its scale is torch's derivative at every int8
    input code (within the table's rounding), zero where the forward table saturates."""
    from compiler.ref import grad_ops
    s_in, z_in, s_out, z_out = 0.05, 3, 1 / 255, -128
    if node.op == "hardswish":
        s_out, z_out = 0.03, -20
    t, d_scale = grad_ops.lut_grad_table(node, s_in, z_in, s_out, z_out)
    assert t.dtype == np.int16 and np.abs(t).max() == 1 << grad_ops.LUT_GRAD_BITS
    x = torch.from_numpy((np.arange(-128, 128) - z_in) * s_in).requires_grad_()
    fn(x).sum().backward()
    want = x.grad.numpy()
    with torch.no_grad():
        y = fn(x).numpy() / s_out + z_out
    sat = (y < -128.5) | (y > 127.5)
    assert sat.any() == (node.op == "hardswish")
    real = t.astype(np.float64) * float(d_scale)
    assert np.abs(real[~sat] - want[~sat]).max() <= float(d_scale) / 2 + 1e-12
    assert (t[sat] == 0).all()
    gy = np.random.default_rng(0).integers(-128, 128, 256).astype(np.int8)
    xq = np.arange(-128, 128).astype(np.int8)
    np.testing.assert_array_equal(grad_ops.lut_grad_acc(gy, xq, t), gy.astype(np.int32) * t)


def test_reference_mul_gradients_are_the_products():
    from compiler.ref import grad_ops
    rng = np.random.default_rng(3)
    gy = rng.integers(-128, 128, (1, 3, 4, 5)).astype(np.int8)
    a = rng.integers(-128, 128, (1, 3, 4, 5)).astype(np.int8)
    gate = rng.integers(-128, 128, (1, 1, 1, 5)).astype(np.int8)
    ga = grad_ops.mul_grad_acc(gy, gate, -7)
    np.testing.assert_array_equal(ga, gy.astype(np.int64) * (gate.astype(np.int64) + 7))
    gg = grad_ops.mul_gate_grad_acc(gy, a, 5)
    assert gg.shape == (1, 1, 1, 5) and gg.dtype == np.int32
    np.testing.assert_array_equal(gg[0, 0, 0], (gy.astype(np.int64) * (a.astype(np.int64) - 5)).sum((0, 1, 2)))


def test_training_program_saves_what_the_se_backward_reads(int8_model):
    """The SE ops' backward steps name their saved int8 tensors, so the memory plan keeps
    them: the mul's two operands and the inputs of the three tables."""
    g = int8_model
    prog = ad.build_program(g, ad.whole_model(g))
    kinds = [s.kind for s in prog.steps]
    assert kinds.count("lut_grad") == 3 and kinds.count("mul_grad") == kinds.count("mul_gate_grad") == 1
    mul = next(n for n in g.nodes if n.op == "mul")
    luts = [n.inputs[0] for n in g.nodes if n.op in ("sigmoid", "hardsigmoid", "hardswish")]
    for t in list(mul.inputs) + luts:
        assert prog.saved[t].kind == "activation" and prog.saved[t].used_by, t


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_training_through_the_se_block_is_bit_exact(int8_model, board, tmp_path):
    """Every layer trains, so the stem's gradient passes sigmoid, mul (both operands:
    the feature map and the gate), hardsigmoid, the squeeze's 1x1 convs, the global pool
    and hardswish: 4 steps on the board equal the reference trainer bit for bit."""
    g = int8_model
    rep, _ = run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.01), board, tmp_path,
                      _inputs(g, 4, 9), np.random.default_rng(10).integers(0, 5, 4))
    assert "stem" in {a["node"] for a in rep["trained_arrays"]}, "the stem (below the SE block) trains"


def test_int8_gradients_follow_float_autograd_through_the_se_block(int8_model):
    """The int8 backward against torch autograd on the float twin (int8 clamp masks):
    every weight gradient and every input-gradient edge (both mul operands, the three
    tables) points the same way."""
    from compiler.sparse.float_twin import compare_gradients
    x = _inputs(int8_model, 2, 11)
    rows = [r for i in range(2) for r in compare_gradients(int8_model, x[i:i + 1], i, int8_masks=True)]
    ops = {r["type"] for r in rows}
    assert {"mul", "sigmoid", "hardsigmoid", "hardswish"} <= ops
    for r in rows:
        assert r["cos"] >= 0.95, r
