"""Power-of-two weights (INQ, compiler/quantize/inq.py): the procedure yields weights in
{0, +-2^n}, n in [n2, n1], quantizing the right share of each layer at each step, after
BatchNorm folding; post-training quantization turns such a layer into exact int8 powers
of two with power-of-two scales (the reference output is the float layer's up to
activation quantization); the ``inq`` command's output imports to that int8 model; bad
input gets one line."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from compiler.cli.main import main
from compiler.frontend.torch_fx import import_module
from compiler.quantize import inq as Q
from compiler.quantize import ptq
from compiler.quantize.float_ref import conv2d_f
from compiler.ref import executor as reference

TINY = '''
import torch.nn as nn


def tiny():
    torch_seed = __import__("torch").manual_seed(3)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    m[1].running_mean.uniform_(-0.2, 0.2)
    m[1].running_var.uniform_(0.5, 2.0)
    return m.eval()
'''


def _tiny_graph():
    ns = {}
    exec(TINY, ns)
    return import_module(ns["tiny"](), torch.zeros(1, 1, 8, 8))


def _exponents(w):
    return np.frexp(np.abs(w[w != 0]))[1] - 1


def test_levels_and_rule():
    w = np.array([1.2, -0.8, 0.74, -0.3, 0.02, 2 ** -7, 2 ** -7 * 0.99, 0.0], np.float64)
    n1, n2 = Q.levels(w.reshape(-1, 1), bits=5)        # max 1.2: n1 = floor(log2(1.6)) = 0
    assert (int(n1[0]), int(n2[0])) == (0, -6)          # 8 magnitudes capped to 7 (int8)
    assert [int(v[0][0]) - int(v[1][0]) for v in (Q.levels(w.reshape(-1, 1), b) for b in (2, 3, 4))] \
        == [0, 1, 3]
    n1c, n2c = Q.levels(np.array([[1.2, 0.1], [0.1, 0.2]]), bits=3, per_channel=True)
    assert n1c.tolist() == [0, -2] and n2c.tolist() == [-1, -3]
    assert Q.quantize_pow2(np.array([[0.4, 0.1], [0.1, 0.2]]), n1c, n2c).tolist() == [[0.5, 0], [0.125, 0.25]]
    q = Q.quantize_pow2(w, n1, n2)
    # [3/4, 3/2) x beta -> beta; [1/2, 3/4) x 2^n2 -> 2^n2; below -> 0
    assert q.tolist() == [1.0, -1.0, 0.5, -0.25, 2 ** -6, 2 ** -6, 0.0, 0.0]
    assert Q.quantize_pow2(np.array([5.0]), 0, -6).tolist() == [1.0]   # clamped to 2^n1
    assert np.array_equal(Q.quantize_pow2(q, n1, n2), q)                # idempotent


def test_inq_gives_powers_of_two_in_range_with_the_right_shares():
    g = _tiny_graph()
    assert any(n.op == "batch_norm" for n in g.nodes)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 48)
    steps = (0.5, 0.75, 0.875, 1.0)
    r = Q.run_inq(g, x[:32], y[:32], x[32:], y[32:],
                  Q.InqConfig(bits=4, steps=steps, epochs=1, batch=16), progress=False)
    assert not any(n.op == "batch_norm" for n in r.graph.nodes)       # folded before INQ
    layers = {n.name: n for n in r.graph.nodes if "weight" in n.params}
    assert set(layers) == set(r.summary["layers"]) and len(layers) == 2
    for name, n in layers.items():
        w = n.params["weight"]
        s = r.summary["layers"][name]
        e = _exponents(w)
        assert Q.is_pow2(w) and e.min() >= s["n2"] and e.max() <= s["n1"]
        assert s["n1"] - s["n2"] == 3                                    # 4 bits: 4 magnitudes
        for step, share in zip(r.summary["steps"], steps):
            assert step["quantized"][name] == round(share * w.size)
    # the torch module holds the same weights as the graph (the .pt2 that is saved)
    for name, n in layers.items():
        np.testing.assert_array_equal(r.module.ir_weight(name), n.params["weight"])


def _pow2_conv_graph(weight, bias, calib):
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())
    with torch.no_grad():
        m[0].weight.copy_(torch.from_numpy(weight))
        m[0].bias.copy_(torch.from_numpy(bias))
    return import_module(m.eval(), torch.zeros(1, 2, 6, 6), calibration=calib)


def test_ptq_of_pow2_weights_is_exact_and_matches_the_float_conv():
    rng = np.random.default_rng(1)
    e = rng.integers(-9, -2, (3, 2, 3, 3))
    w = (rng.choice([-1.0, 0.0, 1.0], e.shape) * np.ldexp(1.0, e)).astype(np.float32)
    w[1] *= 4                                         # channels with different exponents
    b = rng.uniform(-0.1, 0.1, 3).astype(np.float32)
    calib = rng.standard_normal((16, 2, 6, 6)).astype(np.float32)
    q = _pow2_conv_graph(w, b, calib)
    conv = next(n for n in q.nodes if n.op == "conv2d")
    assert q.metadata["pow2_layers"] == [conv.name]
    wq, sc = conv.params["weight"].astype(np.int64), conv.params["w_scales"].astype(np.float64)
    nz = wq[wq != 0]
    assert np.all(np.abs(nz) & (np.abs(nz) - 1) == 0) and np.abs(wq).max() == 64
    assert np.all(np.frexp(sc)[0] == 0.5)                                   # scales 2^k
    w_ohwi = w.transpose(0, 2, 3, 1)
    assert np.array_equal(wq * sc[:, None, None, None], w_ohwi)            # exact
    # the reference equals the float conv of the dequantized input, up to activation
    # quantization (one output step)
    xin = q.tensors[q.inputs[0]]
    x8 = reference.quantize_input(q, calib.transpose(0, 2, 3, 1)[:4])
    ref = np.asarray(reference.run(q, x8)).astype(np.int64)
    xf = (x8.astype(np.float64) - xin.zero_point) * xin.scale
    yf = np.maximum(conv2d_f(xf, w_ohwi.astype(np.float64), b.astype(np.float64), 1, 1, 1), 0)
    out = q.tensors[q.outputs[0]]
    yq = np.clip(np.round(yf / out.scale) + out.zero_point, -128, 127)
    assert np.abs(ref - yq).max() <= 1


def test_ptq_keeps_the_usual_path_for_other_weights():
    assert ptq.quantize_pow2_weights(np.array([[0.5, 0.3]], np.float32)) is None
    assert ptq.quantize_pow2_weights(np.array([[1.0, 2.0 ** -7]], np.float32)) is None  # 8 exponents
    assert ptq.quantize_pow2_weights(np.zeros((2, 3), np.float32)) is None
    q, s = ptq.quantize_pow2_weights(np.array([[1.0, -2.0 ** -6], [0.0, 0.0]], np.float32))
    assert q.tolist() == [[64, -1], [0, 0]] and s.tolist() == [2.0 ** -6, np.float32(1 / 127)]


def test_inq_command_output_imports_to_int8_powers_of_two(tmp_path, capsys):
    (tmp_path / "tiny.py").write_text(TINY)
    out = tmp_path / "tiny.pt2"
    rc = main(["inq", f"{tmp_path / 'tiny.py'}:tiny", "--input-shape", "1,8,8", "--data", "digits",
               "--epochs", "1", "--batch", "128", "--steps", "50,100", "--holdout", "0.5",
               "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0 and "INQ 100% quantized" in text and out.is_file()
    import json
    summary = json.loads(out.with_suffix(".inq.json").read_text())
    assert [s["share"] for s in summary["steps"]] == [0.5, 1.0] and summary["config"]["bits"] == 5
    from compiler import api
    g = api.import_model(str(out), calibrate="digits", samples=16)
    convs = [n for n in g.nodes if "weight" in n.params]
    assert g.metadata["pow2_layers"] == [n.name for n in convs] == list(summary["layers"])
    for n in convs:
        v = np.unique(n.params["weight"].astype(np.int64))
        assert len(v) <= 15 and all(x == 0 or (abs(x) & (abs(x) - 1)) == 0 for x in v)


@pytest.mark.parametrize("argv,msg", [
    (["--steps", "50,40,100"], "increasing percentages"),
    (["--steps", "50,75"], "ending with 100"),
    (["--bits", "6"], "an integer in 2..5"),
    (["--out", "x.onnx"], "expected a .pt2 file name"),
    (["--epochs", "-1"], "an integer >= 0"),
])
def test_inq_bad_options(tmp_path, capsys, argv, msg):
    base = {"--out": str(tmp_path / "o.pt2")}
    args = ["inq", "x.py:f", "--data", "digits"]
    for k, v in base.items():
        if k not in argv:
            args += [k, v]
    with pytest.raises(SystemExit) as e:
        main(args + argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


@pytest.mark.parametrize("source,extra,msg", [
    ("mcunet-5fps", [], "`inq` retrains a float model"),
    ("missing.py:f", ["--input-shape", "1,8,8"], "missing.py: file not found"),
    ("TINY:tiny", [], "needs --input-shape"),
    ("TINY:tiny", ["--input-shape", "1,8,8", "--data", "nosuch"], "--data nosuch"),
])
def test_inq_bad_input_one_line(tmp_path, capsys, source, extra, msg):
    (tmp_path / "tiny.py").write_text(TINY)
    source = source.replace("TINY", str(tmp_path / "tiny.py"))
    data = [] if "--data" in extra else ["--data", "digits"]
    rc = main(["inq", source, *data, *extra, "--out", str(tmp_path / "o.pt2"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and msg in err
