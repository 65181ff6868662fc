"""Plans for a model already trained for its task (``plan --keep-head``), the per-kind
learning rate (``lr_body``: 0 trains the classifier alone, bit for bit), whole-plan
re-measurement, saved graphs, and the round trip plan -> build -> stream (frozen, head
only, sparse plan) -> bit-exact replay of the sparse pass, on the host build and QEMU."""
import copy
import csv
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import specgen

from compiler import paths
from compiler.autodiff import device_replay as device_sim
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import datasets as D
from compiler.frontend import models
from compiler.ir import graph_io
from compiler.ref import inputs
from compiler.sparse import contrib, planner
from compiler.sparse import plan as sparse
from compiler.target import firmware
from compiler.target.from_plan import load_plan_graph
from host import protocol as P

REPO = paths.REPO


def _model(seed=3):
    """A small random model with a 10-way classifier, trained for a few steps (its head
    is no longer zero: a model 'already trained for its task')."""
    g = specgen.random_graph(seed, hw=12, n_blocks=3, classes=10)
    prog = ad.build_program(g, ad.last_layers(g, 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (20,) + g.tensors[g.inputs[0]].shape[1:], dtype=np.int8)
    st = tr.TrainState(tr.TrainConfig(lr=0.05, seed=seed))
    for i in range(20):
        tr.train_step(g, prog, st, x[i:i + 1], i % 10)
    return g


def test_graph_file_round_trip(tmp_path):
    g = _model()
    path = graph_io.save(g, tmp_path / "m.json")
    h = models.load(str(path))
    assert h.sha256() == g.sha256() and [n.name for n in h.nodes] == [n.name for n in g.nodes]
    real = models.load("mcunet-5fps")
    assert models.load(str(graph_io.save(real, tmp_path / "r.json"))).sha256() == real.sha256()
    # arrays that do not match the recorded hash: a clear error
    np.savez(tmp_path / "m.npz", **{k: v for k, v in np.load(tmp_path / "r.npz").items()})
    with pytest.raises(models.ModelFormatError):
        models.load(str(path))


def test_lr_body_zero_is_head_only_bit_for_bit():
    g = _model(4)
    body = sparse.body_layers(g)
    plan = sparse.SparsePlan(len(body), {body[-1]: Fraction(1, 2)})
    x = np.random.default_rng(1).integers(-128, 128, (12,) + g.tensors[g.inputs[0]].shape[1:],
                                          dtype=np.int8)
    ga, gb = copy.deepcopy(g), copy.deepcopy(g)
    pa = ad.build_program(ga, plan.trainable(ga))
    pb = ad.build_program(gb, {sparse.head(gb): ad.LayerTrain(True, 1, True)})
    sa = tr.TrainState(tr.TrainConfig(lr=0.05, seed=2, lr_body=0.0))
    sb = tr.TrainState(tr.TrainConfig(lr=0.05, seed=2))
    for i in range(12):
        ra = tr.train_step(ga, pa, sa, x[i:i + 1], i % 10)
        rb = tr.train_step(gb, pb, sb, x[i:i + 1], i % 10)
        assert np.array_equal(ra.logits, rb.logits)
    assert ga.sha256() == gb.sha256()
    assert ga.sha256() != g.sha256()                       # the head did learn
    # and a body learning rate of its own moves the body
    gc = copy.deepcopy(g)
    pc = ad.build_program(gc, plan.trainable(gc))
    sc = tr.TrainState(tr.TrainConfig(lr=0.05, seed=2, lr_body=0.05))
    for i in range(12):
        tr.train_step(gc, pc, sc, x[i:i + 1], i % 10)
    assert not np.array_equal(gc.node(body[-1]).params["bias"], g.node(body[-1]).params["bias"])


def test_remeasurement_picks_the_measured_best():
    """Summed gains rank plan A first; measured as wholes, plan C is best and wins."""
    A, B, C = sparse.SparsePlan(4), sparse.SparsePlan(2), sparse.SparsePlan(6)
    cands = [(A, 9.0), (B, 7.5), (C, 6.0)]
    truth = {A.key(): 81.0, B.key(): 80.0, C.key(): 84.5}
    asked = []

    def measure(plans):
        asked.extend(plans)
        return [truth[p.key()] for p in plans]

    best, rows = planner.pick_measured(cands, measure, base=78.0)
    assert best == 2 and len(asked) == 3
    assert [r["predicted_gain"] for r in rows] == [9.0, 7.5, 6.0]
    assert [r["measured_gain"] for r in rows] == [3.0, 2.0, 6.5]
    # ties go to the better predicted plan
    truth[C.key()] = 81.0
    assert planner.pick_measured(cands, measure, base=78.0)[0] == 0
    # the search ranking is deduplicated before measuring
    assert [p.key() for p, _ in planner.distinct_candidates(
        [(A, 3), (sparse.SparsePlan(4), 3), (B, 2)], 5)] == [A.key(), B.key()]


def test_analysis_measures_whole_plans_like_configurations(tmp_path):
    """A whole plan measured through the analysis equals plain reference training."""
    g = _model(5)
    ds = D.load("digits")
    x = inputs.model_inputs(g, ds.x[:80])
    s = contrib.Settings(lr=0.01, lr_body=0.002, seed=0, ratios=(Fraction(1, 2),), bias_step=4)
    an = contrib.analyse(g, x[:40], ds.y[:40], x[40:], ds.y[40:80], budget=10 ** 7, settings=s,
                         jobs=1, progress=False)
    body = sparse.body_layers(g)
    plan = sparse.SparsePlan(2, {body[-1]: Fraction(1, 2)})
    acc = an.measure([plan])[0]
    gg = copy.deepcopy(g)
    prog = ad.build_program(gg, plan.trainable(gg))
    feats = tr.prefix_features(gg, prog, x)
    tr.train_epochs(gg, prog, tr.TrainState(s.train_config()),
                    {k: v[:40] for k, v in feats.items()}, ds.y[:40], 1, order_seed=0)
    assert acc == tr.accuracy(gg, prog, ds.y[40:80], features={k: v[40:] for k, v in feats.items()})
    assert contrib.label(contrib.plan_config(plan)) in an.to_dict()["whole_plans"]


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_keep_head_errors(tmp_path):
    g = specgen.random_graph(2, hw=12, n_blocks=2, classes=5)
    path = graph_io.save(g, tmp_path / "five.json")
    p = _cli("plan", str(path), "--keep-head", "--data", "digits", "--train", "20", "--test",
             "20", "--quiet")
    assert p.returncode == 2 and "classifier has 5 classes" in p.stderr, p.stderr
    p = _cli("plan", str(path), "--data", "digits", "--lr-body", "-1", "--quiet")
    assert p.returncode == 2 and "--lr-body" in p.stderr


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_keep_head_plan_build_stream_replay(tmp_path, board):
    """plan --keep-head -> build --plan -> stream frozen / head / plan -> bit-exact replay."""
    g = _model(6)
    model = graph_io.save(g, tmp_path / "trained.json")
    plan_file = tmp_path / "plan.json"
    p = _cli("plan", str(model), "--keep-head", "--data", "digits", "--train", "60", "--test",
             "60", "--bias-step", "3", "--ratios", "1/8,1/2", "--generations", "3", "--lr", "0.02",
             "--lr-body", "0.005", "--history", "4", "--jobs", "2", "--cache", "", "--quiet",
             "--out", str(plan_file))
    assert p.returncode == 0, p.stderr
    assert "whole plans re-measured" in p.stdout
    plan = json.loads(plan_file.read_text())
    assert plan["head_init"] == "keep" and plan["classes"] == 10
    assert plan["model_sha256"] == g.sha256()
    assert plan["training"] == {"lr": 0.02, "lr_body": 0.005, "history": 4}
    assert "--keep-head" in plan["made_by"]
    assert sum(c["chosen"] for c in plan["measured"]["candidates"]) == 1
    b = _cli("build", str(model), "--plan", str(plan_file), "--board", board,
             "--out", str(tmp_path / "fw"))
    assert b.returncode == 0, b.stderr
    rep = json.loads((tmp_path / "fw" / "report.json").read_text())
    if board.startswith("qemu"):
        # the memory model of the device app (arena, which also holds the received image,
        # trained params, stack, protocol state, history buffer) against the linked
        # firmware: never below it
        slack = plan["predicted"]["ram_bytes"] - rep["linked"]["ram"]
        assert 0 <= slack <= 2048, (plan["predicted"], rep["linked"])
    from host import stream
    out = tmp_path / "stream"
    kind = "qemu" if board.startswith("qemu") else "host"
    status = stream.main(["--boot", f"{kind}:{rep['elf']}", "--expect-report",
                          str(tmp_path / "fw" / "report.json"), "--dataset", "digits",
                          "--limit", "30", "--passes", "frozen,head,plan", "--history", "4",
                          "--epochs", "2", "--out", str(out), "--download",
                          str(tmp_path / "w.bin"), "--no-progress"])
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["passes"]) == ["frozen", "head", "plan"]
    assert summary["result"].startswith("frozen ") and " -> head only " in summary["result"]
    assert " -> sparse plan " in summary["result"]
    # replay both learning passes on the reference
    gp, prog, pl = load_plan_graph(str(model), str(plan_file))
    rows = list(csv.DictReader(open(out / "stream.csv")))
    ds = D.load("digits")
    for mode, lr_body in (("head", 0.0), ("plan", 0.005)):   # plan last: its weights are downloaded
        rr = [r for r in rows if r["mode"] == mode]
        imgs = [P.resize_u8(ds.x[int(r["dataset_index"])], 12, 12, 3, mode=P.RESIZE_BILINEAR)
                for r in rr]
        gm = copy.deepcopy(gp)
        sim = device_sim.replay(gm, prog, tr.TrainState(tr.TrainConfig(
            lr=0.02, lr_body=lr_body, loss_range_mode="max")), imgs, [int(r["label"]) for r in rr],
            settings=device_sim.DeviceSettings(history=4, epochs=2))
        assert sim.preds == [int(r["pred"]) for r in rr], mode
    got = firmware.split_trained(gm, rep, (tmp_path / "w.bin").read_bytes())
    for (node, param), v in got.items():
        np.testing.assert_array_equal(v, gm.node(node).params[param], err_msg=f"{node}.{param}")


def test_bench_plans_by_budget_table():
    """bench/sparse.py's table: the chosen plan and the smaller budgets' plans, each with
    predicted and measured gain (measured now when the search did not re-measure it)."""
    from harness import load_bench
    bs = load_bench("sparse")

    def plan(k, ram, gain, measured=None):
        p = sparse.SparsePlan(k)
        p.meta = {"plan": f"k={k}", "predicted": {"ram_bytes": ram, "gain_points": gain}}
        if measured is not None:
            p.meta["measured"] = {"accuracy": measured}
        return p

    class An:
        base = 80.0
        alternatives = {128 * 1024: (plan(2, 120_000, 3.0), None),
                        173 * 1024: (plan(4, 170_000, 5.0, measured=86.0), None)}

        def measure(self, plans):
            return [83.5 for _ in plans]

    rows = bs.budget_table(An(), plan(8, 250_000, 9.0, measured=88.0))
    assert [r["budget_kb"] for r in rows] == [128, 173, bs.BUDGET // 1024]
    assert [r["measured_gain"] for r in rows] == [3.5, 6.0, 8.0]
    assert [r["predicted_gain"] for r in rows] == [3.0, 5.0, 9.0]
