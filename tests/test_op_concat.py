"""The concat op end to end (channels: torch.cat(dim=1), ONNX Concat axis=1): PyTorch,
ONNX float and ONNX QDQ import, float and int8 reference (each input requantized to the
output's scale and zero point, TFLite semantics), the C kernel (tests/kernel_cases.py),
a two-branch (inception-like) model in C against the reference bit for bit on the host
build and QEMU, and training through it (the gradient splits by channel ranges)."""

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
from compiler.ir.qmath import quantize_multiplier
from compiler.quantize.float_ref import run_float
from compiler.ref import executor as reference
from compiler.ref import grad_ops
from compiler.ref import ops as ref_ops

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


class Inception(nn.Module):
    """A stem, then two branches (1x1 and 3x3) concatenated on the channels, a 1x1 conv
    over the concatenation, a second concat of three tensors (one read twice), a head."""

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.a = nn.Conv2d(8, 4, 1)
        self.b = nn.Conv2d(8, 6, 3, padding=1)
        self.mix = nn.Conv2d(10, 12, 1)
        self.fc = nn.Linear(12 + 4 + 4, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        a = F.relu(self.a(x))
        y = torch.cat([a, F.relu6(self.b(x))], 1)
        y = torch.cat((F.relu(self.mix(y)), a, a), dim=1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def _model(seed=0):
    torch.manual_seed(seed)
    return Inception().eval()


@settings(max_examples=40, **SETTINGS)
@given(pixels=st.integers(1, 20), channels=st.lists(st.integers(1, 9), min_size=1, max_size=4),
       seed=st.integers(0, 2**32 - 1))
def test_reference_is_requantized_float_concat(pixels, channels, seed):
    """Each part is its input's real value re-expressed in the output's parameters: within
    half an output step (plus the multiplier's rounding) of the exact value, or saturated;
    an input with the output's own parameters is copied exactly."""
    rng = np.random.default_rng(seed)
    s_out, z_out = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    xs, zs, ms, ss, scales = [], [], [], [], []
    for i, c in enumerate(channels):
        xs.append(rng.integers(-128, 128, (2, pixels, c)).astype(np.int8))
        same = i == 0
        z = z_out if same else int(rng.integers(-128, 128))
        s = s_out if same else s_out * float(np.exp(rng.uniform(-2, 2)))
        m, sh = quantize_multiplier(s / s_out)
        zs.append(z), ms.append(m), ss.append(sh), scales.append(s)
    y = ref_ops.concat(xs, zs, ms, ss, z_out)
    assert y.shape == (2, pixels, sum(channels)) and y.dtype == np.int8
    np.testing.assert_array_equal(y[..., :channels[0]], xs[0])
    want = np.concatenate([(x.astype(np.float64) - z) * s / s_out + z_out
                           for x, z, s in zip(xs, zs, scales)], axis=-1)
    err = np.abs(y - np.clip(want, -128, 127))
    assert err.max() <= 0.5 + 1e-6 * np.abs(want).max() + 1e-9


def test_torch_import_float_and_int8():
    m = _model()
    g = import_module(m, torch.zeros(1, 3, 16, 16))
    cats = [n for n in g.nodes if n.op == "concat"]
    assert [len(n.inputs) for n in cats] == [2, 3] and cats[1].inputs[1] == cats[1].inputs[2]
    assert g.tensors[cats[0].output].shape == (1, 8, 8, 10)
    x = _calib(8, seed=1)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)
    q = import_module(m, torch.zeros(1, 3, 16, 16), calibration=_calib())
    assert q.is_int8
    for n in q.nodes:
        if n.op == "concat":
            assert len(n.attrs["in_mult"]) == len(n.inputs) == len(n.attrs["in_shift"])
    real, y = int8_real_outputs(q, x)
    assert np.abs(real - want).max() < 0.1 * np.abs(want).max() + 4 * y.scale


def test_onnx_import_matches_torch_import_and_onnxruntime(tmp_path):
    m = _model(1)
    path = tmp_path / "cat.onnx"
    export_onnx(m, path)
    go = load_onnx(path)
    gt = import_module(m, torch.zeros(1, 3, 16, 16))
    assert [n.op for n in go.nodes] == [n.op for n in gt.nodes]
    x = _calib(6, seed=2)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(run_float(go, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dim", [2, 3, -1])
def test_cat_along_space_names_the_function(dim):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return torch.cat([self.c(x), x], dim)
    with pytest.raises(UnsupportedOpError) as e:
        import_module(M(), torch.zeros(1, 2, 4, 4))
    assert "cat" in str(e.value) and f"dim={dim}" in str(e.value)


def test_qdq_model_from_onnxruntime_imports_and_agrees(tmp_path):
    """The model quantized by onnxruntime (QDQ, per-channel): each Concat becomes a concat
    requantizing its inputs to the QuantizeLinear's parameters; the int8 reference agrees
    with onnxruntime's own int8 execution."""
    fp = export_onnx(_model(4), tmp_path / "f.onnx")
    qp = quantize_qdq(fp, tmp_path / "q.onnx", _calib(32, seed=5))
    g = load_onnx(qp)
    assert g.is_int8 and [n.op for n in g.nodes].count("concat") == 2
    x = _calib(100, seed=6)
    sess = ort.InferenceSession(str(qp), providers=["CPUExecutionProvider"])
    out = g.tensors[g.outputs[0]]
    theirs = np.rint(sess.run(None, {"x": x})[0] / out.scale) + out.zero_point
    ours = reference.run(g, reference.quantize_input(g, nchw_to_nhwc(x))).astype(np.int64)
    within = (np.abs(ours - theirs) <= 1).mean()
    assert within >= 0.99, within


@pytest.fixture(scope="module")
def int8_model():
    return import_module(_model(2), torch.zeros(1, 3, 16, 16), calibration=_calib(), name="catnet")


def test_forward_in_c_is_bit_exact(int8_model, tmp_path):
    """Host build (QEMU runs the same forward pass in the training test below)."""
    forward_both(int8_model, "host", tmp_path)


def test_reference_gradient_splits_by_channels():
    gy = np.arange(2 * 3 * 7, dtype=np.int64).reshape(2, 3, 7).astype(np.int8)
    parts = [grad_ops.concat_grad_split(gy, c0, c) for c0, c in ((0, 2), (2, 4), (6, 1))]
    np.testing.assert_array_equal(np.concatenate(parts, axis=-1), gy)
    assert all(p.flags.c_contiguous for p in parts)


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_training_through_concat_is_bit_exact(int8_model, board, tmp_path):
    """Every layer trains: the gradient splits at both concats (a tensor read twice by the
    second one sums its two parts, then its fork to the first): 5 steps on the board
    equal the reference trainer bit for bit."""
    g = int8_model
    prog = ad.build_program(g, ad.whole_model(g))
    assert sum(s.kind == "concat_split" for s in prog.steps) == 2
    rep, _ = run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.01), board, tmp_path,
                      _inputs(g, 5, 9), np.random.default_rng(10).integers(0, 5, 5))
    assert "stem" in {a["node"] for a in rep["trained_arrays"]}, "the stem (below both concats) trains"


def test_int8_gradients_follow_float_autograd_through_concat(int8_model):
    """The int8 backward against torch autograd on the model's float twin (int8 clamp
    masks): every weight gradient points the same way."""
    from compiler.sparse.float_twin import compare_gradients
    x = _inputs(int8_model, 2, 11)
    rows = [r for i in range(2) for r in compare_gradients(int8_model, x[i:i + 1], i, int8_masks=True)]
    assert rows
    for r in rows:
        assert r["cos"] >= 0.95, r
