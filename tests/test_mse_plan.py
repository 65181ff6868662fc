"""``plan --loss mse``: the sparse-update plan of an autoencoder, scored by the held-out
reconstruction error it removes, on a small autoencoder-like model (through the CLI) and
on the MLPerf Tiny FC autoencoder at the paper's depth (tests/zoo_models.py, through the
Python API): plan -> plan file -> ``build --plan``'s graph and program -> training steps
in C bit for bit with the reference trainer on the host build and QEMU. The data come
from one fixed low-rank Gaussian distribution (structure to learn); every plan must
measurably reduce the reconstruction error."""
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn as nn
import zoo_models as Z
from test_bad_input import one_error_in_process
from test_mse import run_mse_both  # board vs reference mse training, bit for bit

from compiler.autodiff import trainer as tr
from compiler.cli import main as cli
from compiler.frontend.torch_fx import import_module
from compiler.ir import graph_io
from compiler.ref.inputs import flat_samples
from compiler.sparse import contrib, planner
from compiler.sparse import plan as sparse
from compiler.target import firmware
from compiler.target.from_plan import load_plan_graph, plan_firmware_kwargs

QEMU = pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)


def low_rank(n, features, seed, rank=4):
    """n float feature vectors of one fixed distribution: a rank-``rank`` Gaussian (the
    same basis for every seed) plus a little noise."""
    basis = np.random.default_rng(1234).normal(0, 1, (rank, features)) / np.sqrt(rank)
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, (n, rank)) @ basis + rng.normal(0, 0.1, (n, features))).astype(np.float32)


def _small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(),
                         nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64)).eval()


def _cfg(plan):
    """The training configuration ``build --plan`` gives the firmware, with a seed."""
    c = plan_firmware_kwargs(plan, None, app="train-test")["config"]
    return tr.TrainConfig(lr=c.lr, lr_body=c.lr_body, seed=3, loss_range_mode=c.loss_range_mode)


# ----------------------------------------------------------------------------- small model, CLI

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 64 -> 32 -> 8 -> 32 -> 64 autoencoder, its data and `plan --loss mse` run on it."""
    d = tmp_path_factory.mktemp("mse_plan")
    g = import_module(_small(), torch.zeros(1, 64), calibration=low_rank(128, 64, 0))
    model = graph_io.save(g, d / "ae.json")
    x = low_rank(300, 64, 1)
    np.savez(d / "feat.npz", x=x, y=np.arange(len(x)) % 3)       # labels are ignored
    out = d / "plan.json"
    argv = ["plan", str(model), "--loss", "mse", "--data", f"npz:{d / 'feat.npz'}",
            "--budget", "40KB", "--train", "100", "--test", "50", "--lr", "1", "--bias-step", "1",
            "--ratios", "1/8,1", "--generations", "5", "--remeasure", "2", "--jobs", "1",
            "--cache", "", "--quiet", "--out", str(out)]
    return dict(dir=d, g=g, model=model, x=x, out=out, argv=argv)


@pytest.fixture(scope="module")
def small_planned(small):
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(small["argv"]) == 0
    return buf.getvalue(), json.loads(small["out"].read_text())


def test_cli_plans_an_autoencoder(small, small_planned):
    text, plan = small_planned
    assert plan["training"]["loss"] == "mse" and plan["head_init"] == "keep"
    assert plan["training"]["lr"] == 1 and "classes" not in plan
    assert plan["analysis_settings"]["loss"] == "mse"
    assert plan["analysis"]["score"] == contrib.ERROR_REDUCTION.what
    pr, m = plan["predicted"], plan["measured"]
    assert pr["ram_bytes"] <= 40 * 1024
    # a real learning check: training what the plan says removes reconstruction error
    # from held-out samples, beyond what the last layer alone removes
    assert pr["last_layer_only_error_reduction"] > 0 and m["error_reduction"] > 0
    assert m["error_reduction"] >= pr["last_layer_only_error_reduction"]
    assert "accuracy" not in text and "head only" not in text
    assert "last layer only:" in text and "points of error reduction over last layer only" in text
    assert f"measured: {m['error_reduction']:.1f}% reconstruction error reduction" in text
    assert (f"build it with: python -m compiler build {small['model']} --plan {small['out']} "
            "--board stm32f746") in text


@pytest.mark.parametrize("board", ["host", QEMU])
def test_small_plan_trains_bit_exact(small, small_planned, board, tmp_path):
    g, prog, plan = load_plan_graph(str(small["model"]), str(small["out"]))
    assert prog.loss == "mse" and prog.steps[0].target_of_input is not None
    x = flat_samples(g, small["x"][-4:])       # the raw int8 samples the device receives
    run_mse_both(g, plan.trainable(g), _cfg(plan), board, tmp_path, x)


def test_cli_refuses_what_an_mse_plan_cannot_use(small, capsys):
    base = ["plan", small["model"], "--loss", "mse", "--quiet", "--cache", "",
            "--out", small["dir"] / "no.json"]
    one_error_in_process(capsys, base + ["--data", "digits"], "plan --loss mse learns to "
                         "reconstruct flat feature vectors", "npz:FILE whose array x is (N, 64)")
    np.savez(small["dir"] / "f32.npz", x=low_rank(10, 32, 0))
    one_error_in_process(capsys, base + ["--data", f"npz:{small['dir'] / 'f32.npz'}"],
                         "x is float32 (10, 32)", "takes 64 features per sample")
    np.savez(small["dir"] / "nox.npz", features=low_rank(10, 64, 0))
    one_error_in_process(capsys, base + ["--data", f"npz:{small['dir'] / 'nox.npz'}"],
                         "has no array 'x'")
    one_error_in_process(capsys, base + ["--data", f"npz:{small['dir'] / 'feat.npz'}",
                                         "--classes", "3"], "--classes does not apply")
    one_error_in_process(capsys, base + ["--data", f"npz:{small['dir'] / 'feat.npz'}",
                                         "--loss", "l2"], "--loss", "invalid choice")
    assert not (small["dir"] / "no.json").exists()


def test_no_learning_is_refused(small):
    """The counterpart of the at-chance refusal: no configuration reduces the error."""
    st = contrib.Settings(lr=1e-6, lr_body=0.0, loss="mse", ratios=(Fraction(1, 8),),
                          bias_step=3)
    with pytest.raises(sparse.PlanError, match="no configuration reduces the reconstruction "
                                               "error beyond noise"):
        planner.make_plan(small["g"], small["x"], None, budget=40 * 1024, n_train=20,
                          n_test=20, settings=st, jobs=1, cache=None, generations=1,
                          progress=False, remeasure=0, log=lambda *a: None)


# ----------------------------------------------------------------------------- zoo autoencoder

@pytest.fixture(scope="module")
def zoo_planned(tmp_path_factory):
    """The MLPerf Tiny autoencoder (640 -> 128 x4 -> 8 -> 128 x4 -> 640) planned at a
    budget where the 128 x 640 output layer (80 KB of trained weights) leaves room for a
    few slices of the layers above it."""
    g = import_module(Z.autoencoder_settled(), torch.zeros(1, 640), calibration=low_rank(128, 640, 0))
    x = low_rank(80, 640, 1)
    st = contrib.Settings(lr=0.5, loss="mse", ratios=(Fraction(1, 8),), bias_step=5)
    budget = 116 * 1024
    plan, an, gp = planner.make_plan(g, x, None, budget=budget, n_train=40, n_test=30,
                                     settings=st, jobs=1, cache=None, generations=3,
                                     progress=False, remeasure=2, log=lambda *a: None)
    assert plan.meta["predicted"]["ram_bytes"] <= budget
    assert len(sparse.body_layers(gp)) == 9 and an.metric is contrib.ERROR_REDUCTION
    d = tmp_path_factory.mktemp("zoo_ae_plan")
    sparse.save(plan, d / "plan.json")
    g2, prog, p2 = load_plan_graph(g, str(d / "plan.json"))
    assert prog.loss == "mse" and p2.meta["training"]["loss"] == "mse"
    return g2, p2, flat_samples(g2, x[-3:]), prog


def test_zoo_autoencoder_plan_reduces_the_error(zoo_planned):
    _, plan, _, _ = zoo_planned
    m = plan.meta["measured"]
    assert m["error_reduction"] > 0, m


def test_zoo_autoencoder_plan_links_within_its_prediction(zoo_planned, tmp_path):
    """The device app of the plan (`build --plan`, no flash checkpoints: 80 KB of trained
    output layer and more fill a slot) links for the board in no more RAM than the plan
    predicted (the autoencoder's 640-byte targets and outputs counted)."""
    g, plan, _, prog = zoo_planned
    kw = plan_firmware_kwargs(plan, prog, g=g)
    rep = firmware.build(g, "stm32f746", tmp_path, quiet=True, checkpoint=False, **kw)
    assert rep["linked"]["ram"] <= plan.meta["predicted"]["ram_bytes"] <= plan.meta["budget_bytes"]


@pytest.mark.parametrize("board", ["host", QEMU])
def test_zoo_autoencoder_plan_trains_bit_exact(zoo_planned, board, tmp_path):
    g, plan, x, _ = zoo_planned
    run_mse_both(g, plan.trainable(g), _cfg(plan), board, tmp_path, x)


def test_replay_takes_float_features_as_the_host_quantizes_them(small):
    """device_replay quantizes float feature vectors exactly as flat_samples does (the
    raw int8 samples the host sends): same scores, same trained weights."""
    import copy

    from compiler.autodiff import device_replay
    from compiler.autodiff import program as ad
    g = small["g"]
    prog = ad.build_program(g, ad.last_layers(g, 2), loss="mse")
    feats = small["x"][:6]
    runs = []
    for xs in (feats, flat_samples(g, feats)):
        gr = copy.deepcopy(g)
        r = device_replay.replay(gr, prog, tr.TrainState(tr.TrainConfig(lr=0.5)), xs,
                                 [None] * len(xs))
        runs.append((r.scores, [n.params["weight"].copy() for n in gr.nodes if "weight" in n.params]))
    np.testing.assert_array_equal(np.float32(runs[0][0]), np.float32(runs[1][0]))
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    assert any((a != n.params["weight"]).any()
               for a, n in zip(runs[0][1], [n for n in g.nodes if "weight" in n.params]))
