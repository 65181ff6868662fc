"""The max_pool op end to end: PyTorch and ONNX import, float and int8 reference,
quantization (it keeps its input's scale and zero point), the C kernel (in
tests/kernel_cases.py), whole models in C against the reference bit for bit on the host
build and QEMU, training with max_pool in the frozen part and training through it (its
backward: the gradient goes to the first maximum of each window)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from op_helpers import calib as _calib
from op_helpers import export_onnx, int8_real_outputs, quantize_qdq
from op_helpers import int8_inputs as _inputs
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend.common import nchw_to_nhwc
from compiler.frontend.onnx_model import load_onnx
from compiler.frontend.torch_fx import import_module
from compiler.ir.errors import UnsupportedOpError
from compiler.quantize.float_ref import run_float
from compiler.ref import executor as reference
from compiler.ref import ops as ref_ops

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


class PoolNet(nn.Module):
    """A small CNN with both forms of max pooling, padding included."""

    def __init__(self, classes=5):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.p1 = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 12, 3, padding=1)
        self.c3 = nn.Conv2d(12, 16, 1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.p1(F.relu(self.c1(x)))
        x = F.max_pool2d(F.relu(self.c2(x)), 3, 2, 1)
        x = F.relu(self.c3(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _model(seed=0):
    torch.manual_seed(seed)
    return PoolNet().eval()


@settings(max_examples=40, **SETTINGS)
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 9), kh=st.integers(1, 4),
       kw=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2),
       seed=st.integers(0, 2**32 - 1))
def test_reference_is_torch_max_pool(h, w, c, kh, kw, stride, pad, seed):
    """Random shapes: the int8 reference equals torch's max_pool2d on the same values."""
    if 2 * pad > min(kh, kw) or h + 2 * pad < kh or w + 2 * pad < kw:
        return
    x = np.random.default_rng(seed).integers(-128, 128, (2, h, w, c)).astype(np.int8)
    y = ref_ops.max_pool(x, kh, kw, stride, pad)
    t = F.max_pool2d(torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2), (kh, kw),
                     stride, pad).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(y, t.astype(np.int8))


def test_torch_import_float_and_int8():
    m = _model()
    g = import_module(m, torch.zeros(1, 3, 16, 16))
    pools = [n for n in g.nodes if n.op == "max_pool"]
    assert [(n.attrs["kernel"], n.attrs["stride"], n.attrs["pad"]) for n in pools] == \
        [((2, 2), 2, 0), ((3, 3), 2, 1)]
    assert pools[0].source.startswith("module 'p1'")
    x = _calib(8, seed=1)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)
    q = import_module(m, torch.zeros(1, 3, 16, 16), calibration=_calib())
    assert q.is_int8
    for n in q.nodes:
        if n.op == "max_pool":   # max commutes with a monotonic quantization
            a, b = q.tensors[n.inputs[0]], q.tensors[n.output]
            assert (a.scale, a.zero_point) == (b.scale, b.zero_point)
    pred = reference.predict(q, reference.quantize_input(q, nchw_to_nhwc(x)))
    assert (pred == want.argmax(1)).mean() >= 0.75


def test_onnx_import_matches_torch_import_and_onnxruntime(tmp_path):
    m = _model(1)
    path = tmp_path / "pool.onnx"
    export_onnx(m, path)
    go = load_onnx(path)
    gt = import_module(m, torch.zeros(1, 3, 16, 16))
    assert [(n.op, n.attrs) for n in go.nodes if n.op == "max_pool"] == \
        [(n.op, n.attrs) for n in gt.nodes if n.op == "max_pool"]
    x = _calib(6, seed=2)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(run_float(go, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)


def test_relu_after_max_pool_folds_into_the_conv_before_it():
    """relu(max_pool(conv(x))) (the classic PyTorch MNIST net): max pooling commutes with
    the clamp, so the ReLU becomes the conv's output clamp."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 5)
            self.fc = nn.Linear(4 * 4 * 4, 3)

        def forward(self, x):
            x = F.relu(F.max_pool2d(self.conv(x), 2))
            return self.fc(torch.flatten(x, 1))
    torch.manual_seed(3)
    m = M().eval()
    x = np.random.default_rng(4).random((32, 1, 12, 12), np.float32)
    q = import_module(m, torch.zeros(1, 1, 12, 12), calibration=x)
    assert [n.op for n in q.nodes] == ["conv2d", "max_pool", "flatten", "fully_connected"]
    assert q.nodes[0].attrs["act_min"] == q.tensors[q.nodes[0].output].zero_point   # the ReLU
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    real, y = int8_real_outputs(q, x)
    assert np.abs(real - want).max() < 0.1 * np.abs(want).max() + 4 * y.scale


@pytest.mark.parametrize("bad, why", [
    (dict(dilation=2), "dilation"), (dict(ceil_mode=True), "ceil_mode")])
def test_unsupported_max_pool_variants_name_the_module(bad, why):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.MaxPool2d(2, **bad)

        def forward(self, x):
            return self.pool(x)
    with pytest.raises(UnsupportedOpError) as e:
        import_module(M(), torch.zeros(1, 2, 8, 8))
    assert "MaxPool2d" in str(e.value) and why in str(e.value) and "pool" in str(e.value)


def test_onnx_max_pool_with_indices_is_refused(tmp_path):
    from onnx import TensorProto, helper
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2])
    gr = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2])])
    with pytest.raises(UnsupportedOpError, match="Indices"):
        load_onnx(helper.make_model(gr, opset_imports=[helper.make_opsetid("", 13)]))


@pytest.fixture(scope="module")
def int8_model():
    return import_module(_model(2), torch.zeros(1, 3, 16, 16), calibration=_calib(), name="poolnet")


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_forward_in_c_is_bit_exact(int8_model, board, tmp_path):
    forward_both(int8_model, board, tmp_path)


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_training_with_max_pool_in_the_frozen_part_is_bit_exact(int8_model, board, tmp_path):
    """The last two layers train; both max pools sit below them (no gradient through
    them): 6 steps on the board equal the reference trainer bit for bit."""
    g = int8_model
    run_both(g, ad.last_layers(g, 2), tr.TrainConfig(lr=0.01), board, tmp_path, _inputs(g, 6, 7),
             np.random.default_rng(8).integers(0, 5, 6))


@settings(max_examples=30, **SETTINGS)
@given(h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 6), k=st.integers(1, 3),
       stride=st.integers(1, 3), pad=st.integers(0, 1), seed=st.integers(0, 2**32 - 1))
def test_reference_gradient_is_torch_autograd(h, w, c, k, stride, pad, seed):
    """Distinct input values (no ties): the routed, summed int32 gradient equals torch's
    max_pool2d backward on the same numbers."""
    from compiler.ref import grad_ops
    if 2 * pad > k or h + 2 * pad < k or w + 2 * pad < k or h * w * c * 2 > 256:
        return
    rng = np.random.default_rng(seed)
    x = (rng.permutation(256)[:2 * h * w * c] - 128).astype(np.int8).reshape(2, h, w, c)
    ho, wo = ref_ops.out_size(h, k, stride, pad), ref_ops.out_size(w, k, stride, pad)
    gy = rng.integers(-128, 128, (2, ho, wo, c)).astype(np.int8)
    acc = grad_ops.max_pool_grad_acc(gy, x, (k, k), stride, pad)
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2).requires_grad_()
    F.max_pool2d(xt, k, stride, pad).backward(torch.from_numpy(gy.astype(np.float64)).permute(0, 3, 1, 2))
    np.testing.assert_array_equal(acc, xt.grad.permute(0, 2, 3, 1).numpy().astype(np.int32))


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_training_through_max_pool_is_bit_exact(int8_model, board, tmp_path):
    """Every layer trains, so the gradient passes both max pools (ties included: ReLU
    outputs are often the zero point): 5 steps on the board equal the reference."""
    g = int8_model
    prog = ad.build_program(g, ad.whole_model(g))
    assert sum(s.kind == "max_pool_grad" for s in prog.steps) == 2
    rep, _ = run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.01), board, tmp_path,
                      _inputs(g, 5, 9), np.random.default_rng(10).integers(0, 5, 5))
    assert "c1" in {a["node"] for a in rep["trained_arrays"]}, "the first conv (below both pools) trains"


def test_int8_gradients_follow_float_autograd_through_max_pool(int8_model):
    """The int8 backward of the whole CNN (both max pools on the gradient path) against
    torch autograd on its float twin, with the int8 forward's clamp masks: every weight
    gradient and every input-gradient edge points the same way."""
    from compiler.sparse.float_twin import compare_gradients
    x = _inputs(int8_model, 3, 11)
    rows = [r for i in range(3) for r in compare_gradients(int8_model, x[i:i + 1], i, int8_masks=True)]
    pools = [r for r in rows if r["node"] in {n.name for n in int8_model.nodes if n.op == "max_pool"}]
    assert len(pools) == 6, "both max pools pass an input gradient for each of 3 samples"
    for r in rows:
        assert r["cos"] >= 0.95, r


@pytest.mark.parametrize("act", ["QInt8", "QUInt8"])
def test_qdq_model_from_onnxruntime_imports_and_agrees(act, tmp_path):
    """The CNN exported to ONNX and quantized by onnxruntime (QDQ, per-channel): MaxPool
    between DequantizeLinear and QuantizeLinear becomes max_pool with its input's
    parameters, and the int8 reference agrees with onnxruntime's own int8 execution."""
    fp = export_onnx(_model(4), tmp_path / "f.onnx")
    qp = quantize_qdq(fp, tmp_path / "q.onnx", _calib(64, seed=5), act)
    g = load_onnx(qp)
    assert g.is_int8 and [n.op for n in g.nodes].count("max_pool") == 2
    for n in g.nodes:
        if n.op == "max_pool":
            a, b = g.tensors[n.inputs[0]], g.tensors[n.output]
            assert (a.scale, a.zero_point) == (b.scale, b.zero_point)
    x = _calib(200, seed=6)
    sess = ort.InferenceSession(str(qp), providers=["CPUExecutionProvider"])
    out = g.tensors[g.outputs[0]]
    theirs = np.rint(sess.run(None, {"x": x})[0] / out.scale) + out.zero_point
    ours = reference.run(g, reference.quantize_input(g, nchw_to_nhwc(x))).astype(np.int64)
    within = (np.abs(ours - theirs) <= 1).mean()
    print(f"{act}: {within:.4%} of outputs within 1 LSB of onnxruntime")
    assert within >= 0.99, within
