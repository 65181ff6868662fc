"""Padding that differs between the two sides of an axis (TensorFlow's 'same' at stride 2,
ONNX ``auto_pad`` SAME_UPPER / SAME_LOWER or ``pads`` with begin != end, PyTorch
``ZeroPad2d`` / ``ConstantPad2d`` / ``F.pad`` before a conv or max pool): the IR keeps
the leading pads in ``pad`` and the trailing ones in ``pad_end``. The integer reference
and its gradients against torch on explicitly padded inputs, ONNX float / QDQ import
against the PyTorch import and onnxruntime, a small model in C bit for bit (host and
QEMU) and training through the asymmetric conv, depthwise and max pool."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from op_helpers import quantize_qdq
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend.common import nchw_to_nhwc, same_pads
from compiler.frontend.onnx_model import load_onnx
from compiler.frontend.torch_fx import import_module
from compiler.ir import graph_io
from compiler.ir.errors import GraphError, UnsupportedOpError
from compiler.quantize.float_ref import conv2d_f, run_float
from compiler.ref import executor as reference
from compiler.ref import grad_ops
from compiler.ref import ops as ref_ops

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))
QEMU = pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)


# ----------------------------------------------------------------------------- reference

geom = dict(h=st.integers(1, 8), w=st.integers(1, 8), kh=st.integers(1, 4), kw=st.integers(1, 4),
            sh=st.integers(1, 3), sw=st.integers(1, 3),
            pads=st.tuples(*[st.integers(0, 3)] * 4), dw=st.booleans(),
            seed=st.integers(0, 2**32 - 1))


def _fits(h, w, kh, kw, pads):
    t, left, b, r = pads
    return h + t + b >= kh and w + left + r >= kw


@settings(max_examples=20, **SETTINGS)
@given(**geom)
def test_reference_conv_and_its_gradients_are_torch_on_padded_input(h, w, kh, kw, sh, sw, pads,
                                                                    dw, seed):
    """conv / depthwise with pads (top, left, bottom, right): the accumulators, the input
    gradient and the weight gradient equal torch's conv2d (and autograd) on F.pad'ed
    integers; the float reference equals torch's float conv."""
    if not _fits(h, w, kh, kw, pads):
        return
    t, left, b, r = pads
    rng = np.random.default_rng(seed)
    ci = int(rng.integers(1, 4))
    co, groups = (ci, ci) if dw else (int(rng.integers(1, 4)), 1)
    x = rng.integers(-128, 128, (2, h, w, ci)).astype(np.int8)
    wt = rng.integers(-127, 128, (co, kh, kw, ci // groups)).astype(np.int8)
    xz = int(rng.integers(-20, 20))
    stride, pad, pad_end = (sh, sw), (t, left), (b, r)
    acc = ref_ops.conv_acc(x, wt, np.zeros(co, np.int32), xz, stride, pad, groups, pad_end)
    xt = torch.from_numpy(x.astype(np.float64) - xz).permute(0, 3, 1, 2).requires_grad_()
    wtt = torch.from_numpy(wt.astype(np.float64)).permute(0, 3, 1, 2).requires_grad_()
    yt = F.conv2d(F.pad(xt, (left, r, t, b)), wtt, None, stride, 0, groups=groups)
    np.testing.assert_array_equal(acc, yt.detach().permute(0, 2, 3, 1).numpy())
    gy = rng.integers(-128, 128, acc.shape).astype(np.int8)
    yt.backward(torch.from_numpy(gy.astype(np.float64)).permute(0, 3, 1, 2))
    gx = grad_ops.conv_grad_input(gy.astype(np.int16), wt, (h, w), stride, pad, groups)
    np.testing.assert_array_equal(gx, xt.grad.permute(0, 2, 3, 1).numpy())
    gw = grad_ops.conv_grad_weight_acc(gy, x, xz, (kh, kw), stride, pad, groups)
    np.testing.assert_array_equal(gw, wtt.grad.permute(0, 2, 3, 1).numpy())
    xf, wf = rng.normal(size=(1, h, w, ci)), rng.normal(size=wt.shape)
    yf = conv2d_f(xf, wf, np.zeros(co), stride, pad, groups, pad_end)
    want = F.conv2d(F.pad(torch.from_numpy(xf).permute(0, 3, 1, 2), (left, r, t, b)),
                    torch.from_numpy(wf).permute(0, 3, 1, 2), None, stride, groups=groups)
    np.testing.assert_allclose(yf, want.permute(0, 2, 3, 1).numpy(), atol=1e-9)


@settings(max_examples=20, **SETTINGS)
@given(**geom)
def test_reference_max_pool_and_its_gradient_are_torch_on_padded_input(h, w, kh, kw, sh, sw,
                                                                       pads, dw, seed):
    """Every side less than the kernel (each window holds a real value): the int8 max
    pool and its gradient equal torch's on a -inf-padded input."""
    t, left, b, r = pads
    if max(t, b) >= kh or max(left, r) >= kw or not _fits(h, w, kh, kw, pads):
        return
    rng = np.random.default_rng(seed)
    x = (rng.permutation(256)[:2 * h * w * 2] - 128).astype(np.int8).reshape(2, h, w, 2)  # no ties
    y = ref_ops.max_pool(x, kh, kw, (sh, sw), (t, left), (b, r))
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2).requires_grad_()
    yt = F.max_pool2d(F.pad(xt, (left, r, t, b), value=-np.inf), (kh, kw), (sh, sw))
    np.testing.assert_array_equal(y, yt.detach().permute(0, 2, 3, 1).numpy().astype(np.int8))
    gy = rng.integers(-128, 128, y.shape).astype(np.int8)
    yt.backward(torch.from_numpy(gy.astype(np.float64)).permute(0, 3, 1, 2))
    acc = grad_ops.max_pool_grad_acc(gy, x, (kh, kw), (sh, sw), (t, left))
    np.testing.assert_array_equal(acc, xt.grad.permute(0, 2, 3, 1).numpy().astype(np.int32))


def test_shape_inference_uses_both_sides_and_checks_them():
    """Output size from the leading and the trailing pads; a max pool side as large as
    the kernel (a window of padding only) is refused."""
    from compiler.ir.graph import FLOAT32, Graph
    g = Graph("t")
    x = g.add_input("x", (1, 16, 16, 2), FLOAT32)
    w = np.zeros((4, 3, 3, 2), np.float32)
    y = g.add_node("conv2d", "c", [x], dict(kernel=(3, 3), stride=2, pad=0, pad_end=1, groups=1,
                                            act_min=-np.inf, act_max=np.inf),
                   dict(weight=w, bias=np.zeros(4, np.float32)))
    assert g.tensors[y].shape == (1, 8, 8, 4)
    with pytest.raises(GraphError, match="pad_end"):
        g.add_node("max_pool", "p", [y], dict(kernel=(2, 2), stride=2, pad=0, pad_end=(2, 0)))


# ----------------------------------------------------------------------------- the model

class AsymNet(nn.Module):
    """TensorFlow-style 'same' stride-2 conv (ZeroPad2d) and depthwise (ConstantPad2d 0;
    on the DSP 3x3 stride-2 path: one output row and column more than symmetric
    padding), a max pool padded after with -inf (F.pad), a 3x3 conv padded (top 1,
    right 1) (F.pad), global average pool, Linear."""

    def __init__(self):
        super().__init__()
        self.pad1 = nn.ZeroPad2d((0, 1, 0, 1))        # (left, right, top, bottom)
        self.c1 = nn.Conv2d(3, 8, 3, stride=2)
        self.pad2 = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, groups=8)
        self.c3 = nn.Conv2d(8, 12, 3)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.c1(self.pad1(x)))
        x = F.relu(self.dw(self.pad2(x)))
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 2)
        x = F.relu(self.c3(F.pad(x, (0, 1, 1, 0))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


SHAPE = (1, 3, 20, 20)


def _model():
    torch.manual_seed(3)
    return AsymNet().eval()


def _x(n, seed):
    return np.random.default_rng(seed).normal(0, 1, (n,) + SHAPE[1:]).astype(np.float32)


def _onnx(m: AsymNet, pad_nodes: bool = False) -> onnx.ModelProto:
    """The same network written the way tf2onnx writes it: auto_pad SAME_UPPER on the
    stride-2 conv, explicit begin != end ``pads`` elsewhere; or (``pad_nodes``, Keras'
    ZeroPadding2D) a Pad node (constant pads) before each layer."""
    inits, nodes = [], []

    def pad(src, name, tlbr, value=0.0):
        if not pad_nodes:
            return src, dict(pads=list(tlbr))
        t, left, b, r = tlbr
        inits.append(numpy_helper.from_array(np.array([0, 0, t, left, 0, 0, b, r], np.int64),
                                             name + ".pads"))
        inits.append(numpy_helper.from_array(np.array(value, np.float32), name + ".value"))
        nodes.append(helper.make_node("Pad", [src, name + ".pads", name + ".value"], [name],
                                      name=name, mode="constant"))
        return name, {}

    def const(name, t):
        inits.append(numpy_helper.from_array(t.detach().numpy().astype(np.float32), name))
        return name

    def conv(name, src, mod, **attrs):
        nodes.append(helper.make_node("Conv", [src, const(name + ".w", mod.weight),
                                               const(name + ".b", mod.bias)], [name],
                                      name=name, **attrs))
        nodes.append(helper.make_node("Relu", [name], [name + ".r"], name=name + "_relu"))
        return name + ".r"

    if pad_nodes:
        y = conv("c1", pad("x", "p1", (0, 0, 1, 1))[0], m.c1, kernel_shape=[3, 3], strides=[2, 2])
    else:
        y = conv("c1", "x", m.c1, kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
    y, pads = pad(y, "p2", (0, 0, 1, 1))
    y = conv("dw", y, m.dw, kernel_shape=[3, 3], strides=[2, 2], group=8, **pads)
    y, pads = pad(y, "p3", (0, 0, 1, 1), -np.inf)
    nodes.append(helper.make_node("MaxPool", [y], ["mp"], name="mp", kernel_shape=[2, 2],
                                  strides=[2, 2], **pads))
    y, pads = pad("mp", "p4", (1, 0, 0, 1))
    y = conv("c3", y, m.c3, kernel_shape=[3, 3], **pads)
    nodes += [helper.make_node("GlobalAveragePool", [y], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
              helper.make_node("Gemm", ["flat", const("fc.w", m.fc.weight), const("fc.b", m.fc.bias)],
                               ["y"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "asym", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                       ["n", 3, 20, 20])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _geometry(g):
    return [(n.op, n.attrs.get("kernel"), n.attrs.get("stride"), n.attrs.get("pad"),
             n.attrs.get("pad_end")) for n in g.nodes if n.op in ("conv2d", "max_pool")]


@pytest.fixture(scope="module")
def asym():
    m = _model()
    return m, import_module(m, torch.zeros(SHAPE), calibration=_x(64, 1), name="asym")


def test_torch_pads_fold_into_the_layers_and_match_torch(asym, tmp_path):
    m, q = asym
    g = import_module(m, torch.zeros(SHAPE))
    assert _geometry(g) == [("conv2d", (3, 3), 2, 0, 1), ("conv2d", (3, 3), 2, 0, 1),
                            ("max_pool", (2, 2), 2, 0, 1), ("conv2d", (3, 3), 1, (1, 0), (0, 1))]
    assert [g.tensors[n.output].shape[1:3] for n in g.nodes if n.op == "conv2d"] == \
        [(10, 10), (5, 5), (2, 2)]
    x = _x(8, 2)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), want, atol=1e-5, rtol=1e-5)
    back = graph_io.load(graph_io.save(q, tmp_path / "asym.json"))   # pad_end round-trips
    assert _geometry(back) == _geometry(q) and back.sha256() == q.sha256()


@pytest.mark.parametrize("pad_nodes", [False, True], ids=["pads", "Pad"])
def test_onnx_same_upper_and_asymmetric_pads_import_like_torch_and_onnxruntime(asym, pad_nodes,
                                                                              tmp_path):
    m, qt = asym
    model = _onnx(m, pad_nodes)
    go, gt = load_onnx(model), import_module(m, torch.zeros(SHAPE))
    assert _geometry(go) == _geometry(gt)
    x = _x(6, 3)
    path = tmp_path / "asym.onnx"
    onnx.save(model, str(path))
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_float(go, nchw_to_nhwc(x)), want, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(run_float(gt, nchw_to_nhwc(x)), want, atol=1e-5, rtol=1e-5)
    qo = load_onnx(model, calibration=_x(64, 1))     # calibrated: the same int8 graph
    xi = np.random.default_rng(4).integers(-128, 128, (4, 20, 20, 3)).astype(np.int8)
    np.testing.assert_array_equal(reference.run(qo, xi), reference.run(qt, xi))


def test_onnx_qdq_with_asymmetric_pads_agrees_with_onnxruntime(asym, tmp_path):
    fp = tmp_path / "f.onnx"
    onnx.save(_onnx(asym[0]), str(fp))
    qp = quantize_qdq(fp, tmp_path / "q.onnx", _x(64, 5))
    g = load_onnx(qp)
    assert g.is_int8 and _geometry(g)[:4] == _geometry(asym[1])   # (+ the pool as a conv)
    x = _x(100, 6)
    out = g.tensors[g.outputs[0]]
    sess = ort.InferenceSession(str(qp), providers=["CPUExecutionProvider"])
    theirs = np.rint(sess.run(None, {"x": x})[0] / out.scale) + out.zero_point
    ours = reference.run(g, reference.quantize_input(g, nchw_to_nhwc(x))).astype(np.int64)
    within = (np.abs(ours - theirs) <= 1).mean()
    assert within >= 0.99, within


@pytest.mark.parametrize("auto", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_onnx_auto_pad_matches_onnxruntime(auto, tmp_path):
    """Conv and MaxPool with auto_pad, even and odd kernels, strides 1 and 2, odd and even
    sizes (SAME_LOWER puts the odd extra pad before)."""
    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 2, 2, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[2, 3],
                              strides=[2, 1], auto_pad=auto),
             helper.make_node("MaxPool", ["c"], ["y"], name="pool", kernel_shape=[3, 2],
                              strides=[2, 2], auto_pad=auto)]
    g = helper.make_graph(nodes, "a", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                    [1, 2, 11, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "a.onnx"
    onnx.save(model, str(path))
    x = rng.normal(0, 1, (1, 2, 11, 8)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ir = load_onnx(model)
    got = run_float(ir, nchw_to_nhwc(x))
    np.testing.assert_allclose(got, want.transpose(0, 2, 3, 1), atol=1e-5, rtol=1e-5)
    if auto != "VALID":
        assert any("pad_end" in n.attrs for n in ir.nodes)
    assert same_pads(8, 2, 1, False) == (0, 1) and same_pads(8, 2, 1, True) == (1, 0)


def test_torch_same_padding_with_even_kernels_matches_torch():
    """padding='same' with an even kernel: k - 1 in all, the odd one after."""
    torch.manual_seed(1)
    m2 = nn.Sequential(nn.Conv2d(3, 4, (2, 5), padding="same")).eval()
    m1 = nn.Sequential(nn.Conv1d(2, 3, 4, padding="same")).eval()
    g2, g1 = import_module(m2, torch.zeros(1, 3, 7, 6)), import_module(m1, torch.zeros(1, 2, 9))
    assert (g2.nodes[0].attrs["pad"], g2.nodes[0].attrs["pad_end"]) == ((0, 2), (1, 2))
    assert (g1.nodes[0].attrs["pad"], g1.nodes[0].attrs["pad_end"]) == ((0, 1), (0, 2))
    x2, x1 = torch.randn(2, 3, 7, 6), torch.randn(2, 2, 9)
    with torch.no_grad():
        np.testing.assert_allclose(run_float(g2, nchw_to_nhwc(x2.numpy())),
                                   nchw_to_nhwc(m2(x2).numpy()), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(run_float(g1, nchw_to_nhwc(x1.numpy())),
                                   nchw_to_nhwc(m1(x1).numpy()), atol=1e-5, rtol=1e-5)


def test_pads_that_cannot_fold_are_refused_with_the_layer_and_line():
    class ReluAfterPad(nn.Module):
        def __init__(self):
            super().__init__()
            self.pad = nn.ZeroPad2d((0, 1, 0, 1))
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.c(F.relu(self.pad(x)))

    with pytest.raises(UnsupportedOpError, match="only supported directly before") as e:
        import_module(ReluAfterPad(), torch.zeros(1, 3, 8, 8))
    assert e.value.node == "pad" and "test_op_asym_pad.py:" in str(e.value)

    class ZeroBeforePool(nn.Module):
        def forward(self, x):
            return F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2)

    with pytest.raises(UnsupportedOpError, match="-inf padding") as e:
        import_module(ZeroBeforePool(), torch.zeros(1, 3, 8, 8))
    assert "test_op_asym_pad.py:" in str(e.value)

    class OnePad(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.c(F.pad(x, (1, 1, 1, 1), value=1.0))

    with pytest.raises(UnsupportedOpError, match="only zero padding"):
        import_module(OnePad(), torch.zeros(1, 3, 8, 8))

    model = _onnx(_model(), pad_nodes=True)     # ONNX: a Pad read by a Relu
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.input[0] = "p1"
    with pytest.raises(UnsupportedOpError, match="read by Relu") as e:
        load_onnx(model)
    assert e.value.op == "Pad" and e.value.node == "p1"


# ----------------------------------------------------------------------------- in C

def _ints(g, n, seed):
    shape = g.tensors[g.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n,) + shape).astype(np.int8)


def test_asym_forward_in_c_is_bit_exact(asym, tmp_path):
    """Host build; on QEMU the training test checks every step's logits (the whole
    forward pass, its depthwise on the DSP 3x3 stride-2 path) bit for bit."""
    forward_both(asym[1], "host", tmp_path, n=3)


@pytest.mark.parametrize("board", ["host", QEMU])
def test_training_through_asymmetric_conv_depthwise_and_pool_is_bit_exact(asym, board, tmp_path):
    """Every layer trains: c3's input gradient (generic conv, pads (1, 0) / (0, 1)) flows
    through the asymmetric max pool and the depthwise (input and weight gradients) into
    the stride-2 'same' conv c1 (weight gradient); 3 steps on the board equal the
    reference."""
    g = asym[1]
    prog = ad.build_program(g, ad.whole_model(g))
    grads_in = {s.node for s in prog.steps if isinstance(s, ad.ConvGradInput)}
    assert {"c3", "dw"} <= grads_in
    rep, _ = run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.02), board, tmp_path,
                      _ints(g, 3, 5), np.random.default_rng(4).integers(0, 5, 3))
    assert {"c1", "dw", "c3"} <= {a["node"] for a in rep["trained_arrays"]}


def test_float_twin_gradients_agree_through_asymmetric_padding(asym):
    """The torch twin of the gradient checks pads each asymmetric layer explicitly: the
    int8 gradients point the same way as its float ones."""
    from compiler.sparse.float_twin import compare_gradients
    rows = compare_gradients(asym[1], _ints(asym[1], 1, 0), 2)
    assert {r["node"] for r in rows} >= {"c1", "dw", "max_pool2d", "c3"}
    assert min(r["cos"] for r in rows) > 0.99, rows
