"""Property tests on random small graphs, for each front end:

- valid models import, quantize and run through the int8 reference without error, and the
  float import computes what the source framework computes;
- invalid models (unsupported op or attribute, malformed file) always raise the
  documented error (:class:`UnsupportedOpError` / :class:`ModelFormatError`, both
  :class:`CompilerError`) naming the op and the node.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler.frontend.common import nchw_to_nhwc
from compiler.frontend.torch_fx import import_module
from compiler.frontend.tte_json import from_spec
from compiler.ir.errors import CompilerError, ModelFormatError, UnsupportedOpError
from compiler.quantize.float_ref import run_float
from compiler.quantize.ptq import quantize
from compiler.ref import executor as reference


@pytest.fixture(autouse=True, scope="module")
def _single_thread_torch():
    """Tiny tensors: torch worker threads only cost time, badly so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ----------------------------------------------------------------------------- PyTorch

conv_spec = st.fixed_dictionaries({
    "kind": st.just("conv"),
    "k": st.sampled_from([1, 3, 5]),
    "stride": st.sampled_from([1, 2]),
    "out": st.sampled_from([2, 4, 8]),
    "groups": st.sampled_from(["1", "dw", "2"]),
    "bias": st.booleans(),
    "bn": st.booleans(),
    "act": st.sampled_from([None, "relu", "relu6", "hardtanh", "F.relu", "clamp"]),
})
res_spec = st.fixed_dictionaries({
    "kind": st.just("res"),
    "k": st.sampled_from([3, 5]),
    "post_relu": st.booleans(),
})
net_spec = st.fixed_dictionaries({
    "in_ch": st.sampled_from([1, 3]),
    "size": st.integers(4, 12),
    "layers": st.lists(st.one_of(conv_spec, res_spec), min_size=1, max_size=4),
    "tail": st.sampled_from(["pool_fc", "mean_fc", "flatten_fc", "conv_out", "pool_bnfc",
                             "reshape_bnfc"]),
    "seed": st.integers(0, 2 ** 16),
})


class RandomNet(nn.Module):
    """A network built from a ``net_spec`` draw; ``bad`` (optional) is inserted after the
    layers, ``bad_fn`` applied there in ``forward``."""

    def __init__(self, spec, bad: nn.Module | None = None, bad_fn=None):
        super().__init__()
        self.spec = spec
        c = spec["in_ch"]
        self.layers = nn.ModuleList()
        self.acts = []
        for layer in spec["layers"]:
            if layer["kind"] == "conv":
                out = layer["out"]
                groups = {"1": 1, "dw": c, "2": 2 if c % 2 == 0 and out % 2 == 0 else 1}[layer["groups"]]
                if layer["groups"] == "dw":
                    out = c
                mods = [nn.Conv2d(c, out, layer["k"], layer["stride"], layer["k"] // 2, groups=groups,
                                  bias=layer["bias"])]
                if layer["bn"]:
                    mods.append(nn.BatchNorm2d(out))
                act = layer["act"]
                if act == "relu":
                    mods.append(nn.ReLU())
                elif act == "relu6":
                    mods.append(nn.ReLU6())
                elif act == "hardtanh":
                    mods.append(nn.Hardtanh(-1.0, 2.0))
                self.layers.append(nn.Sequential(*mods))
                self.acts.append(act if act in ("F.relu", "clamp") else None)
                c = out
            else:
                self.layers.append(nn.ModuleDict({
                    "dw": nn.Conv2d(c, c, layer["k"], 1, layer["k"] // 2, groups=c, bias=False),
                    "bn1": nn.BatchNorm2d(c), "act": nn.ReLU6(),
                    "pw": nn.Conv2d(c, c, 1), "bn2": nn.BatchNorm2d(c)}))
                self.acts.append("post_relu" if layer["post_relu"] else None)
        self.bad = bad
        self.bad_fn = bad_fn
        self.channels = c
        if spec["tail"] == "conv_out":
            self.out = nn.Conv2d(c, 3, 1)
        else:
            feat = c
            if spec["tail"] in ("flatten_fc", "reshape_bnfc"):
                feat = c * self._spatial() ** 2
            self.bnfc = nn.BatchNorm1d(feat) if spec["tail"] in ("pool_bnfc", "reshape_bnfc") else nn.Identity()
            self.out = nn.Linear(feat, 5)
        g = torch.Generator().manual_seed(spec["seed"])
        for m in self.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.data.uniform_(0.5, 1.5, generator=g)
                m.bias.data.uniform_(-0.2, 0.2, generator=g)

    def _spatial(self):
        n = self.spec["size"]
        for layer in self.spec["layers"]:
            if layer["kind"] == "conv":
                n = (n - 1) // layer["stride"] + 1
        return n

    def forward(self, x):
        for layer, act in zip(self.layers, self.acts):
            if isinstance(layer, nn.ModuleDict):
                y = layer["bn2"](layer["pw"](layer["act"](layer["bn1"](layer["dw"](x)))))
                x = x + y
                if act == "post_relu":
                    x = torch.relu(x)
            else:
                x = layer(x)
                if act == "F.relu":
                    x = nn.functional.relu(x)
                elif act == "clamp":
                    x = torch.clamp(x, min=0.0, max=4.0)
        if self.bad is not None:
            x = self.bad(x)
        if self.bad_fn is not None:
            x = self.bad_fn(x)
        tail = self.spec["tail"]
        if tail == "conv_out":
            return self.out(x)
        if tail == "mean_fc":
            x = x.mean(dim=(2, 3))
        elif tail == "flatten_fc":
            x = x.view(x.size(0), -1)
        elif tail == "reshape_bnfc":
            x = torch.reshape(x, (x.shape[0], -1))
        else:
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.out(self.bnfc(x))


def _inputs(spec, n):
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    return torch.rand(n, spec["in_ch"], spec["size"], spec["size"], generator=g)


@settings(max_examples=60, **SETTINGS)
@given(net_spec)
def test_torch_valid_graphs_import_quantize_and_run(spec):
    torch.manual_seed(spec["seed"])
    m = RandomNet(spec).eval()
    x = _inputs(spec, 12)
    g = import_module(m, x[:1])
    with torch.no_grad():
        want = m(x).numpy()
    got = run_float(g, nchw_to_nhwc(x.numpy()))
    if want.ndim == 4:
        want = nchw_to_nhwc(want)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    q = quantize(g, nchw_to_nhwc(x[:8].numpy()))
    y = reference.run(q, reference.quantize_input(q, nchw_to_nhwc(x[8:].numpy())))
    assert y.dtype == np.int8 and y.shape == (4,) + q.tensors[q.outputs[0]].shape[1:]
    assert q.sha256() == quantize(g, nchw_to_nhwc(x[:8].numpy())).sha256()


BAD_MODULES = [
    ("Conv2d", lambda c: nn.Conv2d(c, c, 3, padding=2, dilation=2), "dilation"),
    ("Conv2d", lambda c: nn.Conv2d(c, c, 3, padding=1, padding_mode="circular"), "padding_mode"),
    ("Conv2d", lambda c: nn.Conv2d(c, c, 3, padding=(1, 2), dilation=(1, 2)), "dilation"),
    ("Conv2d", lambda c: nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"), "padding_mode"),
    ("MaxPool2d", lambda c: nn.MaxPool2d(1, dilation=2), "dilation"),  # any map size
    ("Tanh", lambda c: nn.Tanh(), "not supported"),
    ("ReflectionPad2d", lambda c: nn.ReflectionPad2d((0, 1, 0, 1)), "not supported"),
    ("LeakyReLU", lambda c: nn.LeakyReLU(), "not supported"),
    ("Upsample", lambda c: nn.Upsample(scale_factor=2), "not supported"),
]
BAD_FUNCTIONS = [
    ("exp", torch.exp),
    ("mul", lambda x: x * 2.0),
    ("add", lambda x: x + 1.0),
    ("getitem", lambda x: x[:, :]),
    ("tanh", torch.tanh),
]


@settings(max_examples=30, **SETTINGS)
@given(net_spec, st.sampled_from(range(len(BAD_MODULES))))
def test_torch_unsupported_module_raises_with_module_path(spec, which):
    op, make, why = BAD_MODULES[which]
    torch.manual_seed(spec["seed"])
    probe = RandomNet(spec)
    m = RandomNet(spec, bad=make(probe.channels)).eval()
    if spec["tail"] in ("flatten_fc", "reshape_bnfc"):  # keep shapes valid around the inserted layer
        spec = dict(spec, tail="pool_fc")
        m = RandomNet(spec, bad=make(probe.channels)).eval()
    with pytest.raises(UnsupportedOpError) as e:
        import_module(m, _inputs(spec, 1))
    err = e.value
    assert err.op == op and err.node == "bad" and "module 'bad'" in err.source
    assert why in err.reason
    assert op in str(err) and "'bad'" in str(err)


@settings(max_examples=20, **SETTINGS)
@given(net_spec, st.sampled_from(range(len(BAD_FUNCTIONS))))
def test_torch_unsupported_function_raises_with_source_line(spec, which):
    op, fn = BAD_FUNCTIONS[which]
    spec = dict(spec, tail="pool_fc")
    m = RandomNet(spec, bad_fn=fn).eval()
    with pytest.raises(UnsupportedOpError) as e:
        import_module(m, _inputs(spec, 1))
    err = e.value
    assert op in err.op and err.node
    assert "RandomNet" in err.source and "test_frontend_hypothesis.py:" in err.source


# ----------------------------------------------------------------------------- ONNX

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from compiler.frontend.onnx_model import load_onnx  # noqa: E402

onnx_conv = st.fixed_dictionaries({
    "k": st.sampled_from([1, 3]),
    "stride": st.sampled_from([1, 2]),
    "out": st.sampled_from([2, 4]),
    "dw": st.booleans(),
    "post": st.sampled_from([None, "Relu", "Clip", "BatchNormalization"]),
})
onnx_spec = st.fixed_dictionaries({
    "in_ch": st.sampled_from([1, 2]),
    "size": st.integers(3, 9),
    "convs": st.lists(onnx_conv, min_size=1, max_size=3),
    "tail": st.sampled_from(["gap_flatten_gemm", "reducemean_reshape_matmul_add"]),
    "seed": st.integers(0, 2 ** 16),
})


def build_onnx(spec, bad: str | None = None):
    rng = np.random.default_rng(spec["seed"])
    inits, nodes = [], []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    c, cur, size = spec["in_ch"], "x", spec["size"]
    for i, cv in enumerate(spec["convs"]):
        k, s = cv["k"], cv["stride"]
        out, groups = (c, c) if cv["dw"] else (cv["out"], 1)
        w = const(f"w{i}", rng.normal(0, 0.5, (out, c // groups, k, k)).astype(np.float32))
        b = const(f"b{i}", rng.normal(0, 0.1, out).astype(np.float32))
        p = k // 2
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], group=groups)
        if bad is not None and i == len(spec["convs"]) - 1:
            if bad == "dilation":
                attrs.update(dilations=[2, 2], pads=[2 * p] * 4)
            elif bad == "negative_pads":   # cropping
                attrs["pads"] = [0, 0, -1, -1]
            elif bad == "auto_pad":
                attrs.pop("pads")
                attrs.update(auto_pad="SAME")   # not an ONNX value (SAME_UPPER / SAME_LOWER)
        nodes.append(helper.make_node("Conv", [cur, w, b], [f"c{i}"], name=f"conv{i}", **attrs))
        cur, c, size = f"c{i}", out, (size - 1) // s + 1
        post = cv["post"]
        if post == "Relu":
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"], name=f"relu{i}"))
            cur = f"r{i}"
        elif post == "Clip":
            nodes.append(helper.make_node("Clip", [cur, const(f"lo{i}", np.float32(0)),
                                                    const(f"hi{i}", np.float32(6))], [f"r{i}"], name=f"clip{i}"))
            cur = f"r{i}"
        elif post == "BatchNormalization":
            bn = [const(f"{n}{i}", v.astype(np.float32)) for n, v in
                  (("g", rng.uniform(0.5, 1.5, c)), ("be", rng.normal(0, 0.1, c)),
                   ("m", rng.normal(0, 0.1, c)), ("v", rng.uniform(0.5, 2, c)))]
            nodes.append(helper.make_node("BatchNormalization", [cur] + bn, [f"r{i}"], name=f"bn{i}"))
            cur = f"r{i}"
    if bad in ("MaxPool", "Tanh", "LeakyRelu", "Mul"):
        extra = {"MaxPool": dict(kernel_shape=[1, 1], dilations=[2, 2])}.get(bad, {})
        ins = [cur, const("two", np.float32(2))] if bad == "Mul" else [cur]
        nodes.append(helper.make_node(bad, ins, ["bad_out"], name="bad_node", **extra))
        cur = "bad_out"
    w = rng.normal(0, 0.5, (5, c)).astype(np.float32)
    if spec["tail"] == "gap_flatten_gemm":
        nodes += [helper.make_node("GlobalAveragePool", [cur], ["gap"], name="gap"),
                  helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
                  helper.make_node("Gemm", ["flat", const("fw", w), const("fb", np.zeros(5, np.float32))],
                                   ["y"], name="fc", transB=1)]
    else:
        nodes += [helper.make_node("ReduceMean", [cur, const("axes", np.array([2, 3]))], ["gap"],
                                   name="mean", keepdims=1),
                  helper.make_node("Reshape", ["gap", const("shape", np.array([1, -1]))], ["flat"], name="reshape"),
                  helper.make_node("MatMul", ["flat", const("fwt", w.T.copy())], ["mm"], name="matmul"),
                  helper.make_node("Add", ["mm", const("fb2", rng.normal(0, 0.1, 5).astype(np.float32))],
                                   ["y"], name="bias")]
    graph = helper.make_graph(nodes, "random", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, spec["in_ch"], spec["size"], spec["size"]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@settings(max_examples=50, **SETTINGS)
@given(onnx_spec)
def test_onnx_valid_graphs_match_onnxruntime_and_run_int8(spec):
    model = build_onnx(spec)
    onnx.checker.check_model(model)
    g = load_onnx(model)
    x = np.random.default_rng(spec["seed"]).random((6, spec["in_ch"], spec["size"], spec["size"]), np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    np.testing.assert_allclose(run_float(g, nchw_to_nhwc(x)), want, rtol=1e-4, atol=1e-4)
    q = load_onnx(model, calibration=x[:4])
    y = reference.run(q, reference.quantize_input(q, nchw_to_nhwc(x[4:])))
    assert y.dtype == np.int8 and y.shape == (2, 5)


@settings(max_examples=25, **SETTINGS)
@given(onnx_spec.filter(lambda s: all(cv["post"] != "BatchNormalization" for cv in s["convs"])))
def test_qdq_models_from_onnxruntime_match_it(spec):
    """Random float graphs quantized by onnxruntime (QDQ, per-channel) import and agree with
    onnxruntime's own int8 execution within 1 LSB. (A MatMul + bias Add tail is folded into
    one fully-connected layer, dropping onnxruntime's intermediate re-quantization; there
    only import and execution are checked, the outputs can differ by a few LSB.)"""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    x = np.random.default_rng(spec["seed"]).random((16, spec["in_ch"], spec["size"], spec["size"]), np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"x": v[None]} for v in x)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        fp, qp = Path(d) / "f.onnx", Path(d) / "q.onnx"
        onnx.save(build_onnx(spec), str(fp))
        quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        g = load_onnx(qp)
        sess = ort.InferenceSession(str(qp), providers=["CPUExecutionProvider"])
        theirs = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    out = g.tensors[g.outputs[0]]
    ours = reference.run(g, reference.quantize_input(g, nchw_to_nhwc(x))).astype(np.int64)
    assert ours.shape == theirs.shape
    if spec["tail"] == "gap_flatten_gemm":
        diff = np.abs(ours - (np.rint(theirs / out.scale) + out.zero_point))
        assert diff.max() <= 1, diff


ONNX_BAD = {"dilation": "conv", "negative_pads": "conv", "auto_pad": "conv",
            "MaxPool": "bad_node", "Tanh": "bad_node", "LeakyRelu": "bad_node", "Mul": "bad_node"}


@settings(max_examples=30, **SETTINGS)
@given(onnx_spec, st.sampled_from(sorted(ONNX_BAD)))
def test_onnx_unsupported_raises_with_node_name(spec, bad):
    model = build_onnx(spec, bad)
    with pytest.raises(UnsupportedOpError) as e:
        load_onnx(model)
    err = e.value
    expected_node = ONNX_BAD[bad]
    if expected_node == "conv":
        expected_node = f"conv{len(spec['convs']) - 1}"
        assert err.op == "Conv"
    else:
        assert err.op == bad
    assert err.node == expected_node and expected_node in str(err)


def test_onnx_garbage_bytes_raise_model_format_error(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x00not an onnx model\xff" * 10)
    with pytest.raises(ModelFormatError):
        load_onnx(p)


# ----------------------------------------------------------------------------- int8 JSON

def _qp(rng):
    return float(rng.uniform(0.01, 0.1)), int(rng.integers(-20, 20))


def build_tte(seed: int, size: int, nblocks: int):
    """A random but valid model in the real models' JSON format (+ its arrays)."""
    rng = np.random.default_rng(seed)
    arrays = {}

    def conv(path, cin, cout, k, stride, groups, hw, xq, yq):
        w = rng.integers(-127, 128, (cout, cin // groups, k, k)).astype(np.int8)
        arrays[f"{path}/weight"] = w
        arrays[f"{path}/bias"] = rng.integers(-5000, 5000, cout).astype(np.int32)
        arrays[f"{path}/w_scales"] = rng.uniform(1e-3, 1e-2, cout).astype(np.float32)
        out_hw = (hw + 2 * ((k - 1) // 2) - k) // stride + 1
        entry = dict(in_channel=cin, out_channel=cout, in_shape=hw, out_shape=out_hw,
                     kernel_size=[k, k], stride=stride, groups=groups, depthwise=groups > 1, act=None,
                     params=dict(x_scale=xq[0], x_zero=xq[1], y_scale=yq[0], y_zero=yq[1],
                                 **{n: {"array": f"{path}/{n}", "dtype": str(arrays[f"{path}/{n}"].dtype),
                                        "shape": list(arrays[f"{path}/{n}"].shape)}
                                    for n in ("weight", "bias", "w_scales")}))
        return entry, out_hw

    xq = (1 / 127.5, 0)
    yq = _qp(rng)
    c = int(rng.choice([4, 8]))
    first, hw = conv("first_conv", 3, c, 3, int(rng.choice([1, 2])), 1, size, xq, yq)
    blocks = []
    for i in range(nblocks):
        block_in_q, block_in_c, block_in_hw = yq, c, hw
        b = dict(pointwise1=None, residual=None, se=None)
        cur_q = yq
        mid = c
        if rng.random() < 0.7:
            mid = c * 2
            q = (float(rng.uniform(0.01, 0.05)), -128)
            b["pointwise1"], _ = conv(f"blocks/{i}/pointwise1", c, mid, 1, 1, 1, hw, cur_q, q)
            cur_q = q
        k, s = int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))
        q = (float(rng.uniform(0.01, 0.05)), -128)
        b["depthwise"], hw = conv(f"blocks/{i}/depthwise", mid, mid, k, s, mid, hw, cur_q, q)
        cout = c if (s == 1 and rng.random() < 0.6) else int(rng.choice([4, 8, 12]))
        yq = _qp(rng)
        b["pointwise2"], _ = conv(f"blocks/{i}/pointwise2", mid, cout, 1, 1, 1, hw, q, yq)
        if s == 1 and cout == block_in_c:
            rq = _qp(rng)
            b["residual"] = dict(in_channel=cout, in_shape=block_in_hw,
                                 params=dict(x_scale=block_in_q[0], x_zero=block_in_q[1],
                                             y_scale=rq[0], y_zero=rq[1]))
            yq = rq
        blocks.append(b)
        c = cout
    cls, _ = conv("classifier", c, 10, 1, 1, 1, 1, yq, _qp(rng))
    spec = dict(format="tte-int8-mbv2-family/1", input=dict(shape=[1, 3, size, size], layout="NCHW"),
                first_conv=first, blocks=blocks, feature_mix=None, classifier=cls)
    return spec, arrays


tte_args = st.tuples(st.integers(0, 2 ** 16), st.integers(8, 20), st.integers(0, 3))


@settings(max_examples=50, **SETTINGS)
@given(tte_args)
def test_tte_valid_specs_load_and_run(args):
    spec, arrays = build_tte(*args)
    g = from_spec(spec, arrays)
    x = np.random.default_rng(args[0]).integers(-128, 128, (3, args[1], args[1], 3)).astype(np.int8)
    y = reference.run(g, x)
    assert y.shape == (3, 10) and y.dtype == np.int8
    # one sample at a time gives the same answer as the batch
    np.testing.assert_array_equal(reference.run(g, x[1:2]), y[1:2])


def _paths(d, prefix=()):
    """Every key path inside the spec (dicts and lists)."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, prefix + (i,))


MUTATIONS = ["delete", "wrong_type", "act", "se", "x_scale", "weight_shape", "format", "weight_dtype",
             "out_shape", "negative_scale"]


@settings(max_examples=100, **SETTINGS)
@given(tte_args, st.sampled_from(MUTATIONS), st.integers(0, 10 ** 6))
def test_tte_invalid_specs_raise_documented_errors(args, mutation, pick):
    spec, arrays = build_tte(*args)
    spec = copy.deepcopy(spec)
    convs = [p for p in _paths(spec) if p and p[-1] == "params" and "kernel_size" in _get(spec, p[:-1])]
    target = _get(spec, convs[pick % len(convs)][:-1])
    expected = ModelFormatError
    if mutation == "delete":
        required = [p for p in _paths(spec) if _deletable(p)]
        p = required[pick % len(required)]
        del _get(spec, p[:-1])[p[-1]]
    elif mutation == "wrong_type":
        target["params"]["y_zero"] = "zero"
    elif mutation == "act":
        target["act"] = "relu"
        expected = UnsupportedOpError
    elif mutation == "se":
        assume(spec["blocks"])
        spec["blocks"][pick % len(spec["blocks"])]["se"] = {"params": {}}
        expected = UnsupportedOpError
    elif mutation == "x_scale":  # (first_conv's x_scale defines the input: any value is valid)
        later = [p for p in convs if p[0] != "first_conv"]
        _get(spec, later[pick % len(later)][:-1])["params"]["x_scale"] *= 1.5
    elif mutation == "weight_shape":
        key = target["params"]["weight"]["array"]
        w = arrays[key]
        arrays = dict(arrays, **{key: np.zeros((w.shape[0] + 1,) + w.shape[1:], np.int8)})
        target["params"]["weight"]["shape"] = list(arrays[key].shape)
    elif mutation == "format":
        spec["format"] = "something-else/1"
    elif mutation == "weight_dtype":
        key = target["params"]["weight"]["array"]
        arrays = dict(arrays, **{key: arrays[key].astype(np.float32)})
    elif mutation == "out_shape":
        assume("out_shape" in target)
        target["out_shape"] += 1
    elif mutation == "negative_scale":
        target["params"]["y_scale"] = -0.1
    with pytest.raises(CompilerError) as e:
        from_spec(spec, arrays)
    assert isinstance(e.value, expected), f"{mutation}: {type(e.value).__name__}: {e.value}"


def _get(d, path):
    for k in path:
        d = d[k]
    return d


def _deletable(p):
    optional = {"stride", "groups", "in_shape", "out_shape", "depthwise", "act", "se", "residual",
                "pointwise1", "feature_mix", "layout_note", "shape", "dtype"}
    if "residual" in p and "params" not in p:
        return False  # a residual entry is read for its params only (other keys are informative)
    return p[-1] not in optional and not (len(p) >= 2 and p[-2] in ("weight", "bias", "w_scales")
                                          and p[-1] in ("dtype", "shape"))
