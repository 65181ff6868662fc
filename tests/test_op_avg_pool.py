"""Average pooling end to end: the windowed ``avg_pool`` (kernel, stride, padding per
axis, count_include_pad either way) and global pooling whose int8 output has its own
scale and zero point (as onnxruntime quantizes GlobalAveragePool / ReduceMean /
AveragePool). PyTorch, ONNX float and QDQ import, float and int8 reference, the C
kernels (cases in tests/kernel_cases.py and tests/train_kernel_cases.py), whole models in
C against the reference bit for bit on the host build and QEMU, training through the
pool."""

import copy

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from op_helpers import calib as _calib
from op_helpers import export_onnx, quantize_qdq
from op_helpers import int8_inputs as _inputs
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend.common import nchw_to_nhwc
from compiler.frontend.onnx_model import load_onnx
from compiler.frontend.torch_fx import import_module
from compiler.ir.errors import UnsupportedOpError
from compiler.ir.qmath import quantize_multipliers
from compiler.memory import schedule
from compiler.quantize.float_ref import run_float
from compiler.ref import executor as reference
from compiler.ref import ops as ref_ops

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


class AvgNet(nn.Module):
    """A small CNN with windowed average pools (square, padded, per axis) and a global one."""

    def __init__(self, classes=5, include_pad=True):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.p1 = nn.AvgPool2d(2)
        self.c2 = nn.Conv2d(8, 12, 3, padding=1)
        self.p3 = nn.AvgPool2d((2, 3), stride=(2, 1), padding=(0, 1), count_include_pad=include_pad)
        self.c3 = nn.Conv2d(12, 16, 1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.p1(F.relu(self.c1(x)))                   # 16 -> 8
        x = F.avg_pool2d(F.relu(self.c2(x)), 3, 2, 1)     # 8 -> 4 (padded, counted)
        x = F.relu(self.c3(self.p3(x)))                   # 4x4 -> 2x4
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return AvgNet(**kw).eval()


def _round_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


@settings(max_examples=30, **SETTINGS)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 5), kh=st.integers(1, 4),
       kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2),
       pw=st.integers(0, 2), cip=st.booleans(), z=st.integers(-128, 127),
       seed=st.integers(0, 2**32 - 1))
def test_reference_is_torch_avg_pool(h, w, c, kh, kw, sh, sw, ph, pw, cip, z, seed):
    """Random windows: the int8 reference (input and output sharing scale and zero point
    ``z``) is torch's avg_pool2d of the real values (x - z), plus z, rounded half away
    from zero; the float semantics are torch's exactly."""
    if 2 * ph > kh or 2 * pw > kw or h + 2 * ph < kh or w + 2 * pw < kw:
        return
    x = np.random.default_rng(seed).integers(-128, 128, (2, h, w, c)).astype(np.int8)
    y = ref_ops.avg_pool(x, kh, kw, (sh, sw), (ph, pw), cip, z)
    xt = torch.from_numpy(x.astype(np.float64) - z).permute(0, 3, 1, 2)
    t = F.avg_pool2d(xt, (kh, kw), (sh, sw), (ph, pw), count_include_pad=cip).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(y, np.clip(_round_away(t + z), -128, 127).astype(np.int8))
    from compiler.quantize.float_ref import FLOAT_KERNELS

    class N:
        attrs = dict(kernel=(kh, kw), stride=(sh, sw), pad=(ph, pw), count_include_pad=cip)
    np.testing.assert_allclose(FLOAT_KERNELS["avg_pool"](N, x.astype(np.float64) - z), t, atol=1e-9)


def test_torch_import_float_and_int8():
    m = _model()
    g = import_module(m, torch.zeros(1, 3, 16, 16))
    pools = [n for n in g.nodes if n.op == "avg_pool"]
    assert [(n.attrs["kernel"], n.attrs["stride"], n.attrs["pad"], n.attrs["count_include_pad"])
            for n in pools] == [((2, 2), 2, 0, True), ((3, 3), 2, 1, True),
                                ((2, 3), (2, 1), (0, 1), True)]
    assert pools[0].source.startswith("module 'p1'")
    assert [n.op for n in g.nodes].count("global_avgpool") == 1
    x = _calib(8, seed=1)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), want, atol=1e-4, rtol=1e-4)
    q = import_module(m, torch.zeros(1, 3, 16, 16), calibration=_calib())
    for n in q.nodes:
        if n.op == "avg_pool":   # PTQ: the mean keeps its input's parameters
            a, b = q.tensors[n.inputs[0]], q.tensors[n.output]
            assert (a.scale, a.zero_point) == (b.scale, b.zero_point) and "mult" not in n.attrs
            assert q.node_macs(n) == 0   # additions, counted as the global pool's
    pred = reference.predict(q, reference.quantize_input(q, nchw_to_nhwc(x)))
    assert (pred == want.argmax(1)).mean() >= 0.75


@pytest.mark.parametrize("module", [nn.AdaptiveAvgPool2d(1), nn.AvgPool2d(4), nn.AvgPool2d((4, 4), 3),
                                    "mean", "avg_pool2d"])
def test_every_global_pool_form_is_global_avgpool(module):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 1)
            self.pool = module if isinstance(module, nn.Module) else nn.Identity()

        def forward(self, x):
            x = self.conv(x)
            if module == "mean":
                return x.mean(dim=(2, 3), keepdim=True)
            if module == "avg_pool2d":
                return F.avg_pool2d(x, 4)
            return self.pool(x)
    g = import_module(M(), torch.zeros(1, 2, 4, 4))
    assert [n.op for n in g.nodes] == ["conv2d", "global_avgpool"]


def test_onnx_float_import_matches_torch_import(tmp_path):
    m = _model(1, include_pad=False)
    path = export_onnx(m, tmp_path / "pool.onnx")
    go = load_onnx(path)
    gt = import_module(m, torch.zeros(1, 3, 16, 16))
    key = [(n.op, n.attrs) for n in gt.nodes if n.op in ("avg_pool", "global_avgpool")]
    assert [(n.op, n.attrs) for n in go.nodes if n.op in ("avg_pool", "global_avgpool")] == key
    assert key[2][1]["count_include_pad"] is False
    x = _calib(6, seed=2)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(run_float(go, nchw_to_nhwc(x)), sess.run(None, {"x": x})[0],
                               atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("bad, why", [
    (dict(ceil_mode=True), "ceil_mode"), (dict(divisor_override=3), "divisor_override")])
def test_unsupported_avg_pool_variants_name_the_module(bad, why):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AvgPool2d(2, **bad)

        def forward(self, x):
            return self.pool(x)
    with pytest.raises(UnsupportedOpError) as e:
        import_module(M(), torch.zeros(1, 2, 7, 7))
    assert "AvgPool2d" in str(e.value) and why in str(e.value) and "pool" in str(e.value)


@pytest.fixture(scope="module")
def qdq(tmp_path_factory):
    """The CNN quantized by onnxruntime (QDQ, per-channel), with int8 and uint8
    activations: {act: (onnx path, imported graph)}."""
    d = tmp_path_factory.mktemp("qdq")
    out = {}
    for act in ("QInt8", "QUInt8"):
        fp = export_onnx(_model(4, include_pad=act == "QInt8"), d / f"f{act}.onnx")
        qp = quantize_qdq(fp, d / f"q{act}.onnx", _calib(64, seed=5), act)
        out[act] = (qp, load_onnx(qp))
    return out


def _pool_nodes(g):
    return [n for n in g.nodes if n.op in ("avg_pool", "global_avgpool")]


def _ort_int8_per_layer(qp, g, x):
    """onnxruntime's value of every pool output of ``g`` (the QuantizeLinear outputs of
    the QDQ model), in the IR's int8 representation."""
    import onnx
    m = onnx.load(str(qp))
    names = {n.output: n.output for n in _pool_nodes(g)}   # the pools' float outputs
    for n in _pool_nodes(g):   # (or of the flatten the importer put after the pool)
        names.update({c.output: n.output for c in g.consumers(n.output) if c.op == "flatten"})
    q = {names[n.input[0]]: n.output[0] for n in m.graph.node
         if n.op_type == "QuantizeLinear" and n.input[0] in names}
    m.graph.output.extend([onnx.ValueInfoProto(name=o)
                           for o in q.values()])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    vals = sess.run(list(q.values()), {"x": x})
    off = -128 if vals[0].dtype == np.uint8 else 0
    return {t: nchw_to_nhwc(v.astype(np.int64) + off) for t, v in zip(q, vals)}


@pytest.mark.parametrize("act", ["QInt8", "QUInt8"])
def test_qdq_pools_are_pools_and_agree_with_onnxruntime(qdq, act):
    """Every pool of the QDQ model (onnxruntime calibrates each pool output on its own)
    is imported as a pool re-quantizing to that output's parameters (no depthwise conv
    of ones), with the torch import's windows; each pool's int8 output, fed onnxruntime's
    own int8 input, is within 1 LSB of onnxruntime's, and so are the logits."""
    qp, g = qdq[act]
    assert [n.op for n in _pool_nodes(g)] == ["avg_pool", "avg_pool", "avg_pool", "global_avgpool"]
    assert not any(n.op == "conv2d" and n.is_depthwise and np.all(n.params["weight"] == 1) for n in g.nodes)
    gt = import_module(_model(4, include_pad=act == "QInt8"), torch.zeros(1, 3, 16, 16))
    strip = ("mult", "shift")
    assert [{k: v for k, v in n.attrs.items() if k not in strip} for n in _pool_nodes(g)] == \
        [n.attrs for n in _pool_nodes(gt)]
    assert "mult" in _pool_nodes(g)[-1].attrs, "onnxruntime re-quantizes the global pool"
    x = _calib(100, seed=6)
    theirs = _ort_int8_per_layer(qp, g, x)
    acts = reference.run(g, reference.quantize_input(g, nchw_to_nhwc(x)), return_all=True)
    assert theirs, "the pool outputs are QuantizeLinear outputs"
    for n in _pool_nodes(g):
        if n.output not in theirs:
            continue
        ins = _ort_int8_per_layer_input(qp, g, x, n.inputs[0])
        ours = np.asarray(ref_ops.KERNELS[n.op](g, n, ins.astype(np.int8)), np.int64)
        assert np.abs(ours.reshape(theirs[n.output].shape) - theirs[n.output]).max() <= 1, n.name
    out = g.tensors[g.outputs[0]]
    sess = ort.InferenceSession(str(qp), providers=["CPUExecutionProvider"])
    want = np.rint(sess.run(None, {"x": x})[0] / out.scale) + out.zero_point
    within = (np.abs(np.asarray(acts[g.outputs[0]], np.int64) - want) <= 1).mean()
    assert within >= 0.99, within


def _ort_int8_per_layer_input(qp, g, x, tensor):
    """onnxruntime's int8 value of IR tensor ``tensor`` (an op's float output, read at
    the QuantizeLinear that follows it)."""
    import onnx
    m = onnx.load(str(qp))
    o = next(n.output[0] for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor)
    m.graph.output.extend([onnx.ValueInfoProto(name=o)])
    v = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run([o], {"x": x})[0]
    off = -128 if v.dtype == np.uint8 else 0
    return nchw_to_nhwc(v.astype(np.int64) + off)


def _as_dwconv_of_ones(g):
    """``g`` with each re-quantizing global pool written as before pools were imported
    as pools: a depthwise H x W conv of ones."""
    g = copy.deepcopy(g)
    for i, n in enumerate(g.nodes):
        if n.op == "global_avgpool" and "mult" in n.attrs:
            x, y = g.tensors[n.inputs[0]], g.tensors[n.output]
            _, h, w, c = x.shape
            ws = np.full(c, 1.0 / (h * w), np.float32)
            m, s = quantize_multipliers(x.scale * ws.astype(np.float64) / y.scale)
            n.op, n.attrs = "conv2d", dict(kernel=(h, w), stride=1, pad=0, groups=c, act_min=-128,
                                           act_max=127)
            n.params = dict(weight=np.ones((c, h, w, 1), np.int8), bias=np.zeros(c, np.int32),
                            w_scales=ws, mult=m, shift=s)
    return g.validate()


def test_requantizing_global_pool_costs_less_than_the_dwconv_of_ones(qdq):
    g = qdq["QInt8"][1]
    before = _as_dwconv_of_ones(g)
    pool = next(n for n in g.nodes if n.op == "global_avgpool")
    assert "mult" in pool.attrs and g.node_macs(pool) == 0
    assert sum(map(g.node_macs, g.nodes)) < sum(map(before.node_macs, before.nodes))
    assert sum(map(g.param_count, g.nodes)) < sum(map(before.param_count, before.nodes))
    assert schedule.plan(g).arena_bytes <= schedule.plan(before).arena_bytes
    row, was = ([r for r in schedule.table(schedule.plan(h)) if r["name"] == pool.name][0] for h in (g, before))
    assert (row["kernel"], was["kernel"]) == ("tt_avgpool_global_requant_s8", "tt_dwconv_wrapper_s8")
    assert row["scratch_bytes"] == 0 < was["scratch_bytes"] and row["live_bytes"] < was["live_bytes"]
    x = _inputs(g, 20, 3)
    d = np.abs(np.asarray(reference.run(g, x), np.int64) - reference.run(before, x))
    assert d.max() <= 1   # the same integer sum, one rounding (multipliers differ in the last bits)


def _requantizing_windows(g):
    """``g`` with every windowed pool given output parameters of its own (onnxruntime
    keeps AveragePool's), so the C kernel's re-quantizing path runs in a whole model."""
    from compiler.ir.ops import avg_pool_divisors
    g = copy.deepcopy(g)
    for n in g.nodes:
        if n.op == "avg_pool" and "mult" not in n.attrs:
            x, y = g.tensors[n.inputs[0]], g.tensors[n.output]
            y.scale, y.zero_point = x.scale * 1.3, max(-128, x.zero_point - 5)
            m, s = quantize_multipliers([x.scale / (d * y.scale) for d in avg_pool_divisors(n, x.shape)])
            n.attrs.update(mult=[int(v) for v in m], shift=[int(v) for v in s])
    return g.validate()


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_training_through_requantizing_pools_is_bit_exact(qdq, board, tmp_path):
    """onnxruntime's int8 model: its re-quantizing global pool, and its windowed pools
    given output parameters of their own (onnxruntime keeps AveragePool's), so every
    pool runs the re-quantizing C path; every layer trains, the gradient passing all
    four pools: 3 steps on the board equal the reference bit for bit, logits included
    (the forward pass)."""
    g = _requantizing_windows(qdq["QInt8"][1])
    assert all("mult" in n.attrs for n in _pool_nodes(g))
    run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.01), board, tmp_path, _inputs(g, 3, 12),
             np.random.default_rng(13).integers(0, 5, 3))


def test_requantizing_pools_with_a_multiplier_per_divisor_in_c(qdq, tmp_path):
    """The uint8 model (mapped to int8), whose third pool leaves padded taps out of its
    count: given output parameters of its own it has one multiplier per divisor."""
    gw = _requantizing_windows(qdq["QUInt8"][1])
    assert [len(n.attrs["mult"]) for n in _pool_nodes(gw)] == [1, 1, 6, 1]
    forward_both(gw, "host", tmp_path)


@pytest.fixture(scope="module")
def int8_model():
    return import_module(_model(2), torch.zeros(1, 3, 16, 16), calibration=_calib(), name="avgnet")


@settings(max_examples=20, **SETTINGS)
@given(h=st.integers(2, 8), w=st.integers(2, 8), c=st.integers(1, 4), kh=st.integers(1, 3),
       kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 1),
       pw=st.integers(0, 1), seed=st.integers(0, 2**32 - 1))
def test_reference_gradient_is_torch_autograd(h, w, c, kh, kw, sh, sw, ph, pw, seed):
    """The int32 accumulators times their scale 1 / (kh*kw) are torch's avg_pool2d backward."""
    from compiler.ref import grad_ops
    if 2 * ph > kh or 2 * pw > kw or h + 2 * ph < kh or w + 2 * pw < kw:
        return
    rng = np.random.default_rng(seed)
    ho, wo = ref_ops.out_size(h, kh, sh, ph), ref_ops.out_size(w, kw, sw, pw)
    gy = rng.integers(-128, 128, (2, ho, wo, c)).astype(np.int8)
    acc = grad_ops.avg_pool_grad_acc(gy, (h, w), (kh, kw), (sh, sw), (ph, pw))
    xt = torch.zeros(2, c, h, w, dtype=torch.float64, requires_grad=True)
    F.avg_pool2d(xt, (kh, kw), (sh, sw), (ph, pw)).backward(
        torch.from_numpy(gy.astype(np.float64)).permute(0, 3, 1, 2))
    np.testing.assert_allclose(acc / (kh * kw), xt.grad.permute(0, 2, 3, 1).numpy(), atol=1e-12)


def test_training_through_avg_pool_is_bit_exact(int8_model, tmp_path):
    """Every layer trains, so the gradient passes all four pools, which keep their
    input's parameters (post-training quantization): 4 steps on the host build equal the
    reference bit for bit, logits included (the forward pass; on QEMU the same kernels
    run in test_training_through_requantizing_pools_is_bit_exact and the kernel suites)."""
    board = "host"
    g = int8_model
    prog = ad.build_program(g, ad.whole_model(g))
    assert sum(s.kind == "avg_pool_grad" for s in prog.steps) == 3
    rep, _ = run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.01), board, tmp_path,
                      _inputs(g, 4, 9), np.random.default_rng(10).integers(0, 5, 4))
    assert "c1" in {a["node"] for a in rep["trained_arrays"]}, "the first conv (below every pool) trains"


def test_int8_gradients_follow_float_autograd_through_avg_pool(int8_model):
    from compiler.sparse.float_twin import compare_gradients
    x = _inputs(int8_model, 2, 11)
    rows = [r for i in range(2) for r in compare_gradients(int8_model, x[i:i + 1], i, int8_masks=True)]
    pools = [r for r in rows if r["node"] in {n.name for n in int8_model.nodes if n.op == "avg_pool"}]
    assert len(pools) == 6, "the three windowed pools pass an input gradient for each of 2 samples"
    for r in rows:
        assert r["cos"] >= 0.95, r


def test_training_through_an_uncounted_padded_pool_is_refused():
    q = import_module(_model(3, include_pad=False), torch.zeros(1, 3, 16, 16), calibration=_calib(16))
    with pytest.raises(UnsupportedOpError, match="avg_pool.*count_include_pad=False"):
        ad.build_program(q, ad.whole_model(q))
    ad.build_program(q, ad.last_layers(q, 2))   # frozen below the pool: fine


class _GapNet(nn.Module):
    def __init__(self, form):
        super().__init__()
        self.form = form
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.conv(x))   # 6 x 6
        if self.form == "GlobalAveragePool":
            x = F.adaptive_avg_pool2d(x, 1)
        elif self.form == "ReduceMean":
            x = x.mean(dim=(2, 3), keepdim=True)
        else:
            x = F.avg_pool2d(x, 6)
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("act", ["QInt8", "QUInt8"])
@pytest.mark.parametrize("form", ["GlobalAveragePool", "ReduceMean", "AveragePool"])
def test_every_qdq_global_pool_form_is_a_global_pool(form, act, tmp_path):
    """The float and onnxruntime's QDQ model of each ONNX form of global pooling: one global_avgpool
    (the conv before it and the linear after it, nothing else), re-quantizing where
    onnxruntime gives its output parameters of its own, its output within 1 LSB of
    onnxruntime's on every sample."""
    import onnx
    torch.manual_seed(5)
    fp = export_onnx(_GapNet(form).eval(), tmp_path / "f.onnx", shape=(1, 3, 6, 6))
    assert form in {n.op_type for n in onnx.load(str(fp)).graph.node}
    assert [n.op for n in load_onnx(fp).nodes if n.op not in ("flatten", "clip")] == \
        ["conv2d", "global_avgpool", "fully_connected"], "the float model too"
    qp = quantize_qdq(fp, tmp_path / "q.onnx", _calib(32, seed=7, hw=6), act)
    g = load_onnx(qp)
    assert [n.op for n in g.nodes if n.op != "flatten"] == ["conv2d", "global_avgpool", "fully_connected"]
    x = _calib(50, seed=8, hw=6)
    pool = _pool_nodes(g)[0]
    ins = _ort_int8_per_layer_input(qp, g, x, g.nodes[0].output)
    ours = np.asarray(ref_ops.KERNELS["global_avgpool"](g, pool, ins.astype(np.int8)), np.int64)
    # onnxruntime calibrates GlobalAveragePool / ReduceMean outputs on their own; an
    # AveragePool's output shares its input's parameters
    assert ("mult" in pool.attrs) == (form != "AveragePool")
    theirs = _ort_int8_per_layer(qp, g, x)[pool.output]
    assert np.abs(ours.reshape(theirs.shape) - theirs).max() <= 1
    out = g.tensors[g.outputs[0]]
    sess = ort.InferenceSession(str(qp), providers=["CPUExecutionProvider"])
    want = np.rint(sess.run(None, {"x": x})[0] / out.scale) + out.zero_point
    got = reference.run(g, reference.quantize_input(g, nchw_to_nhwc(x))).astype(np.int64)
    assert np.abs(got - want).max() <= 1
