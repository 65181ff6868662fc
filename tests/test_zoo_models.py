"""The reference architectures end to end (tests/zoo_models.py): the MLPerf Tiny ResNet-8
(32x32x3), MobileNetV1-0.25 (96x96x3) and the README's LeNet (28x28x1, MaxPool2d) imported as a user imports them
(``import_model("zoo_models.py:FACTORY", calibrate="digits")``), their int8 reference
against the float model, the whole forward pass in C bit for bit on the host build and
QEMU, then ``plan`` on a small data set -> the plan file -> ``build --plan``'s graph and
program -> training steps in C bit for bit with the reference trainer (host and QEMU).
The MLPerf Tiny DS-CNN (49x10x1) goes the same way, briefly pre-trained (random weights
stay at chance on digits squeezed to 49x10, and plan refuses them); the FC autoencoder
with the mse loss in tests/test_mse_plan.py."""
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import zoo_models as Z
from op_helpers import int8_real_outputs
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit

from compiler.autodiff import trainer as tr
from compiler.frontend import datasets as D
from compiler.frontend import user_model as U
from compiler.ir import graph_io
from compiler.ref import inputs
from compiler.sparse import contrib, planner
from compiler.sparse import plan as sparse
from compiler.target.from_plan import load_plan_graph

QEMU = pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)
ZOO_FILE = Path(Z.__file__)
PRETRAINED = ZOO_FILE.parents[1] / "bench" / "zoo_pretrain.py"   # the same models, pre-trained
MEAN, STD = [0.5], [0.25]      # the same for every channel

# per model: the imported graph's shape, and a budget small enough that the plan's
# analysis only measures the last layers (the test stays quick; bench/zoo.py plans at
# 256 and 128 KB)
GAP = ["global_avgpool", "flatten", "fully_connected"]
CASES = {
    "resnet8": dict(convs=9, depthwise=0, adds=3, tail=GAP, budget=84 * 1024),
    "mobilenet_v1_025": dict(convs=27, depthwise=13, adds=0, tail=GAP, budget=120 * 1024),
    # DS-CNN with random weights stays at chance on squeezed digits (plan refuses it): it
    # comes briefly pre-trained on digits 0-4 (bench/zoo_pretrain.py, about 2 s, cached)
    "dscnn": dict(convs=9, depthwise=4, adds=0, tail=GAP, budget=60 * 1024, pretrained=True),
    "lenet": dict(convs=2, depthwise=0, adds=0, budget=40 * 1024,
                  tail=["max_pool", "flatten", "fully_connected", "fully_connected"]),
}
CLASSES = 3      # digits 0, 1, 2: the plan's new head


@pytest.fixture(scope="module", params=sorted(CASES))
def zoo(request, tmp_path_factory):
    name = request.param
    _, shape, _ = Z.ZOO[name]
    src = PRETRAINED if CASES[name].get("pretrained") else ZOO_FILE
    g = U.import_model(f"{src}:{name}", input_shape=shape, calibrate="digits", samples=64,
                       mean=MEAN, std=STD, name=name)
    path = graph_io.save(g, tmp_path_factory.mktemp(name) / f"{name}.json")
    return name, g, path


def test_import_keeps_the_architecture_and_matches_torch(zoo):
    name, g, _ = zoo
    want = CASES[name]
    convs = [n for n in g.nodes if n.op == "conv2d"]
    assert len(convs) == want["convs"] and sum(n.is_depthwise for n in convs) == want["depthwise"]
    assert sum(n.op == "add" for n in g.nodes) == want["adds"]
    # the reference code's AvgPool2d over the whole final map is the global pool
    assert [n.op for n in g.nodes][-len(want["tail"]):] == want["tail"]
    factory, shape, _ = Z.ZOO[name]
    x = U.calibration_inputs("digits", shape, MEAN, STD, samples=16, seed=9)
    with torch.no_grad():
        model = U.load_factory(f"{PRETRAINED}:{name}") if want.get("pretrained") else factory()
        ref = model(torch.from_numpy(x)).numpy()
    real, _ = int8_real_outputs(g, x)
    # per-tensor int8 through 27 random-weight layers (MobileNetV1) is noisy: the int8
    # logits follow the float ones across samples and mostly agree on the class
    dev = lambda a: (a - a.mean(0)).ravel()  # noqa: E731
    assert np.corrcoef(dev(real), dev(ref))[0, 1] > 0.9
    assert np.abs(real - ref).mean() < 0.1 * np.abs(ref).max()
    assert (real.argmax(1) == ref.argmax(1)).mean() >= 0.75


@pytest.mark.qemu
def test_forward_in_c_is_bit_exact_on_qemu(zoo, tmp_path):
    """The inference firmware (fused row-by-row blocks) on the emulated board; the host
    build's whole forward pass is checked by every training step below (its logits)."""
    forward_both(zoo[1], "qemu-mps2-an500", tmp_path, n=1)


def _digits():
    ds = D.load("digits")
    keep = ds.y < CLASSES
    return ds.x[keep], ds.y[keep]


@pytest.fixture(scope="module")
def planned(zoo, tmp_path_factory):
    """``plan`` on 30 + 30 digits of 3 classes (2 epochs at lr 0.2: the random-weight
    features need them to leave chance), written to a plan file; then the file edited
    as a user may (README: "Edit it and build it with build --plan"): the last three body
    layers' weights at ratio 1/2 added, so the training step also runs through the body
    (the random-weight model's own plan may keep only the head)."""
    name, g, path = zoo
    x, y = _digits()
    st = contrib.Settings(lr=0.2, epochs=2, ratios=(Fraction(1, 2),), bias_step=4)
    budget = CASES[name]["budget"]
    plan, an, gp = planner.make_plan(g, x, y, budget=budget, n_train=30, n_test=30, settings=st,
                                     jobs=1, cache=None, generations=2, progress=False,
                                     remeasure=0, log=lambda *a: None)
    assert plan.meta["predicted"]["ram_bytes"] <= budget
    assert plan.meta["model_sha256"] == g.sha256() and plan.meta["classes"] == CLASSES
    _, h, w, _ = g.tensors[g.inputs[0]].shape      # a 49x10 input keeps its size in build
    assert plan.meta["input_size"] == (h if h == w else None)
    d = tmp_path_factory.mktemp(name + "_plan")
    sparse.save(plan, d / "plan.json")
    edited = json.loads((d / "plan.json").read_text())
    body = sparse.body_layers(gp)
    edited["weights"] = {**edited["weights"], **{n: "1/2" for n in body[-3:]}}
    edited["bias_layers"] = max(edited["bias_layers"], min(4, len(body)))
    (d / "edited.json").write_text(json.dumps(edited))
    g2, _, p2 = load_plan_graph(str(path), str(d / "edited.json"))
    assert all(p2.weights[n] == Fraction(1, 2) for n in body[-3:])
    xs = inputs.model_inputs(g2, x[-3:])     # three digits, through the model's pixel rule
    return g2, p2, xs, y[-3:]


@pytest.mark.parametrize("board", ["host", QEMU])
def test_plan_build_train_is_bit_exact(planned, board, tmp_path):
    g, plan, x, labels = planned
    run_both(g, plan.trainable(g), tr.TrainConfig(lr=0.05, lr_body=0.01, seed=3), board,
             tmp_path, x, labels)
