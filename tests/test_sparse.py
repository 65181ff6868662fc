"""Sparse update: plan files, the memory model with and without reordering, the plan
search against exhaustive enumeration, the contribution analysis (cached, parallel, and
identical to plain reference training), `compiler plan` / `build --plan`, and the
searched plans of the three real models (bench/plans/*.json) built for both boards and
bit-exact with the reference on QEMU at 128x128."""
import copy
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import specgen
from test_train_firmware import run_both

from compiler import paths
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.ref import inputs
from compiler.sparse import contrib, heads, permute, planner
from compiler.sparse import plan as sparse
from compiler.sparse import search as plan_search
from compiler.target import firmware

REPO = paths.REPO
REAL = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]


@pytest.fixture(scope="module")
def small():
    """mcunet-5fps with a new 10-class head at 32x32 (memory evaluations are fast)."""
    return sparse.prepare(models.load("mcunet-5fps"), input_size=32, classes=10)


def _digits(n=400, seed=0):
    from compiler.frontend import datasets as D
    ds = D.load("digits")
    return ds.x[:n], ds.y[:n]


# ----------------------------------------------------------------------------- plan files

def test_plan_roundtrip_and_trainable(small, tmp_path):
    body = sparse.body_layers(small)
    plan = sparse.SparsePlan(3, {body[-1]: "1/4", body[-5]: 1}, meta={"model": "x"})
    sparse.save(plan, tmp_path / "p.json")
    back = sparse.load(tmp_path / "p.json")
    assert back.key() == plan.key() and back.meta["model"] == "x"
    t = back.trainable(small)
    assert t[sparse.head(small)] == ad.LayerTrain(True, 1, True)
    assert t[body[-1]] == ad.LayerTrain(True, Fraction(1, 4), True)
    assert t[body[-5]] == ad.LayerTrain(True, 1, True)
    assert t[body[-2]] == ad.LayerTrain(False, 1, True)
    assert body[-4] not in t and len(t) == 5


def test_plan_save_bits_roundtrip(small, tmp_path):
    """save_bits: a layer's saved input at 4 bits is recorded in the plan file, reaches
    the training program (a packed save instead of the int8 one)."""
    body = sparse.body_layers(small)
    plan = sparse.SparsePlan(2, {body[-3]: 1}, meta={"save_bits": {body[-3]: 4}})
    sparse.save(plan, tmp_path / "p.json")
    back = sparse.load(tmp_path / "p.json")
    assert back.trainable(small)[body[-3]] == ad.LayerTrain(True, 1, True, 4)
    prog = ad.build_program(small, back.trainable(small))
    x = small.node(body[-3]).inputs[0]
    assert prog.saved[f"{x}#b4"].nbytes == (small.tensors[x].numel + 1) // 2 and x not in prog.saved
    plain = ad.build_program(small, sparse.SparsePlan(2, {body[-3]: 1}).trainable(small))
    assert prog.saved_bytes() < plain.saved_bytes()
    with pytest.raises(sparse.PlanError, match="save_bits"):
        sparse.SparsePlan(2, {}, meta={"save_bits": {body[-3]: 4}}).trainable(small)


@pytest.mark.parametrize("bad, match", [
    ({"format": "other"}, "not a sparse-update plan"),
    ({"format": sparse.FORMAT, "save_bits": {"a": 9}}, "save_bits"),
    ({"format": sparse.FORMAT, "weights": {"a": "1/3"}}, "bad channel ratio"),
    ({"format": sparse.FORMAT, "bias_layers": -1}, "bias_layers"),
    ([1, 2], "not a plan object"),
])
def test_bad_plan_files(tmp_path, bad, match):
    (tmp_path / "p.json").write_text(json.dumps(bad))
    with pytest.raises(sparse.PlanError, match=match):
        sparse.load(tmp_path / "p.json")


def test_plan_errors_name_the_problem(small):
    with pytest.raises(sparse.PlanError, match="not conv layers"):
        sparse.SparsePlan(0, {"nope": 1}).trainable(small)
    with pytest.raises(sparse.PlanError, match="has 42 conv layers"):
        sparse.SparsePlan(99).trainable(small)
    plan = sparse.SparsePlan(0, meta={"model": "mbv2-w0.35",
                                      "model_sha256": models.load("mbv2-w0.35").sha256()})
    with pytest.raises(sparse.PlanError, match="was made for model mbv2-w0.35"):
        sparse.apply(models.load("mcunet-5fps"), plan)
    with pytest.raises(Exception, match="256KB"):
        sparse.parse_bytes("lots")
    assert sparse.parse_bytes("256KB") == sparse.parse_bytes("256 KiB") == 262144


# ----------------------------------------------------------------------------- memory

def test_memory_reordering_and_full_update(small):
    """Fusing each update right after its gradient never costs more than applying all
    gradients after the backward pass, and saves memory once weights train; a full
    update needs more than any sparse plan."""
    body = sparse.body_layers(small)
    plan = sparse.SparsePlan(8, {body[-1]: "1/2", body[-4]: "1/4", body[-7]: "1/8"})
    re = sparse.memory(small, plan)
    no = sparse.memory(small, plan, reorder=False)
    full = sparse.memory(small, ad.whole_model(small))
    assert no["arena"] > re["arena"] and no["params"] == re["params"]
    assert full["total"] > no["total"]
    bias = sparse.SparsePlan(8)
    assert sparse.memory(small, bias, reorder=False)["arena"] >= sparse.memory(small, bias)["arena"]
    assert re["total"] == re["arena"] + re["params"] + re["stack"] + re["runtime"]


def test_memory_model_matches_build(small, tmp_path):
    body = sparse.body_layers(small)
    plan = sparse.SparsePlan(6, {body[-2]: "1/4"})
    m = sparse.memory(small, plan, reserve=0)
    prog = ad.build_program(small, plan.trainable(small))
    # a build whose budget is the model's own figure takes the smallest arena
    # (compiler.memory.two_pass: input gradients recomputed where their int32 tensor would
    # set the peak), the one the memory model predicts
    rep = firmware.build(copy.deepcopy(small), "qemu-mps2-an500", tmp_path / "small", program=prog,
                         quiet=True, ram_budget=m["total"])
    assert rep["arena_bytes"] == m["arena"]
    assert abs(rep["ram_param_bytes"] - m["params"]) <= 64
    assert 0 <= rep["linked"]["ram"] - m["total"] <= sparse.RUNTIME_RESERVE
    # with room to spare (the board's 256 KB), the fastest step: nothing recomputed
    two_pass = "tt_conv_grad_in_two_pass_s8("
    small_c = (tmp_path / "small" / "tt_model.c").read_text()
    fast = firmware.build(copy.deepcopy(small), "qemu-mps2-an500", tmp_path / "fast", quiet=True,
                          program=ad.build_program(small, plan.trainable(small)))
    assert two_pass not in (tmp_path / "fast" / "tt_model.c").read_text()
    assert fast["arena_bytes"] > rep["arena_bytes"] if two_pass in small_c else (
        fast["arena_bytes"] == rep["arena_bytes"])


# ----------------------------------------------------------------------------- search

def _synthetic(small, seed, layers, ratios=("1/8", "1")):
    rng = np.random.default_rng(seed)
    body = sparse.body_layers(small)
    bias = {k: 50 + float(rng.uniform(-3, 8)) for k in (4, 8, 12)}
    weight = {(body[i], Fraction(r)): 50 + float(rng.uniform(-2, 6)) for i in layers for r in ratios}
    return contrib.Analysis(50.0, bias, weight, bias_k=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_finds_the_exhaustive_optimum(small, seed):
    body = sparse.body_layers(small)
    layers = [len(body) - 1, len(body) - 3, len(body) - 8]
    an = _synthetic(small, seed, layers)
    mm = sparse.MemoryModel(small)
    lo = mm.total(sparse.SparsePlan(4))
    hi = mm.total(sparse.SparsePlan(12, {body[i]: 1 for i in layers}))
    budget = int(lo + (hi - lo) * [0.3, 0.5, 0.7][seed])
    ex = plan_search.exhaustive(an, mm, budget)
    got = plan_search.search(an, mm, budget, generations=15, seed=seed)
    assert mm.total(got.plan) <= budget and got.memory["total"] <= budget
    assert got.gain == pytest.approx(ex.gain)


def test_search_and_bias_listing_are_the_same_for_any_number_of_jobs(small):
    """The memory model evaluated ahead in worker processes: the same plans, gains,
    rankings and evaluation counts as one process."""
    body = sparse.body_layers(small)
    layers = [len(body) - 1, len(body) - 3, len(body) - 8]
    an = _synthetic(small, 4, layers)
    runs = []
    for jobs in (1, 2):
        mm = sparse.MemoryModel(small)
        budget = int(mm.total(sparse.SparsePlan(len(body) // 2)))
        mem, skipped = {}, {}
        cfgs = contrib.bias_candidates(small, mm, budget, contrib.Settings(bias_step=3), mem,
                                       skipped, jobs)
        res = plan_search.search(an, mm, budget, generations=6, seed=4, jobs=jobs)
        runs.append((cfgs, mem, skipped, res.plan.key(), res.gain, res.evaluated,
                     [(p.key(), g) for p, g in res.ranked]))
    assert runs[0] == runs[1]
    assert runs[0][2], "the budget stops the bias listing early"


def test_search_ignores_gains_below_min_gain(small):
    body = sparse.body_layers(small)
    an = contrib.Analysis(50.0, {2: 52.0}, {(body[-1], Fraction(1)): 52.5,
                                              (body[-2], Fraction(1)): 52.0 + 3.0}, bias_k=2)
    mm = sparse.MemoryModel(small)
    res = plan_search.search(an, mm, 10 ** 9, generations=3, min_gain=1.0)
    assert res.plan.bias_layers == 2 and set(res.plan.weights) == {body[-2]}


def test_budget_too_small_is_a_clear_error(small):
    mm = sparse.MemoryModel(small)
    with pytest.raises(sparse.PlanError, match="even training only the classifier needs"):
        contrib.bias_candidates(small, mm, 1000, contrib.Settings(), {}, {})


def test_descend_fits_the_budget_and_counts_low_bit_saves(small):
    """shrink.descend walks down from a plan to the first plan that fits (memory model);
    the memory model tells 4-bit saves from 8-bit ones (plan key); with nothing left to
    drop it says so."""
    from compiler.sparse import shrink
    body = sparse.body_layers(small)
    layers = [len(body) - 1, len(body) - 3, len(body) - 8]
    an = _synthetic(small, 0, layers)
    mm = sparse.MemoryModel(small)
    start = sparse.SparsePlan(12, {body[i]: 1 for i in layers})
    low = sparse.SparsePlan(12, {body[i]: 1 for i in layers},
                            meta={"save_bits": {body[layers[-1]]: 4}})
    assert low.key() != start.key() and mm.total(low) < mm.total(start)
    budget = mm.total(start) - 1
    (p, mem, steps), = shrink.descend(small, an, mm, start, [budget]).values()
    assert mem["total"] == mm.total(p) <= budget and steps
    assert p.key() != start.key()
    # one step fits: of the moves that fit, the one keeping the most predicted gain
    fitting = [(shrink.gain(an, q), q) for _l, _s, _w, q in shrink.moves(small, an, start)
               if mm.total(q) <= budget]
    assert fitting and len(steps) == 1
    assert shrink.gain(an, p) == max(v for v, _q in fitting)

    class Never(dict):   # a memory model under which nothing fits
        def __call__(self, plan):
            return {"total": 10 ** 9}
    with pytest.raises(sparse.PlanError, match="no smaller plan fits"):
        shrink.descend(small, an, Never(), start, [1000])


# ----------------------------------------------------------------------------- analysis

def test_analysis_is_reference_training_cached_and_parallel(small, tmp_path):
    x_u8, y = _digits(160)
    x = inputs.model_inputs(small, x_u8)
    xtr, ytr, xte, yte = x[:80], y[:80], x[80:], y[80:]
    body = sparse.body_layers(small)
    s = contrib.Settings(lr=5e-3, bias_step=20, ratios=(Fraction(1, 8), Fraction(1)))
    layers = [body[-1], body[-4]]
    an = contrib.analyse(small, xtr, ytr, xte, yte, budget=10 ** 9, settings=s, layers=layers,
                         jobs=2, cache=tmp_path, progress=False)
    n_cfgs = 1 + len(an.bias) + len(an.weight)
    assert sorted(an.bias) == [20, 40, 42] and len(an.weight) == 4 and an.cached == 0
    # one configuration replayed by hand: plain reference training from the raw inputs
    g = small.copy()
    cfg = ("weight", body[-4], "1/8", an.bias_k)
    prog = ad.build_program(g, contrib.config_plan(cfg).trainable(g))
    st = tr.TrainState(tr.TrainConfig(lr=5e-3, seed=0, loss_range_mode="max"))
    for i in tr.epoch_orders(len(ytr), 1, 0)[0]:
        tr.train_step(g, prog, st, xtr[i:i + 1], int(ytr[i]))
    assert an.weight[(body[-4], Fraction(1, 8))] == tr.accuracy(g, prog, yte, x=xte)
    # a re-run only reads the cache, and a 1-job run agrees
    again = contrib.analyse(small, xtr, ytr, xte, yte, budget=10 ** 9, settings=s, layers=layers,
                            jobs=1, cache=tmp_path, progress=False)
    assert again.cached == n_cfgs and again.to_dict()["weight"] == an.to_dict()["weight"]
    solo = contrib.analyse(small, xtr, ytr, xte, yte, budget=10 ** 9, settings=s, layers=layers,
                           jobs=1, cache=None, progress=False)
    assert solo.bias == an.bias and solo.weight == an.weight
    # weights measured on top of another bias depth: the bias stage comes from the cache,
    # the weight configurations train on the chosen depth (one replayed: same accuracy)
    other = next(k for k in (0, 20, 40, 42) if k != an.bias_k)
    forced = contrib.analyse(small, xtr, ytr, xte, yte, budget=10 ** 9, settings=s, layers=layers,
                             jobs=1, cache=tmp_path, progress=False, bias_depth=other)
    assert forced.bias_k == other and forced.bias == an.bias and len(forced.weight) == 4
    g = small.copy()
    prog = ad.build_program(g, contrib.config_plan(("weight", body[-1], "1", other)).trainable(g))
    st = tr.TrainState(tr.TrainConfig(lr=5e-3, seed=0, loss_range_mode="max"))
    for i in tr.epoch_orders(len(ytr), 1, 0)[0]:
        tr.train_step(g, prog, st, xtr[i:i + 1], int(ytr[i]))
    assert forced.weight[(body[-1], Fraction(1))] == tr.accuracy(g, prog, yte, x=xte)
    with pytest.raises(sparse.PlanError, match=r"bias depth 7 is not one the analysis measures: "
                                               r"0, 20, 40, 42"):
        contrib.analyse(small, xtr, ytr, xte, yte, budget=10 ** 9, settings=s, layers=layers,
                        jobs=1, cache=tmp_path, progress=False, bias_depth=7)


def test_make_plan_apply_reproduces_its_graph(tmp_path):
    base = models.load("mcunet-5fps")
    x_u8, y = _digits(200)
    s = contrib.Settings(lr=5e-3, bias_step=14, ratios=(Fraction(1, 8),), min_gain=-100)
    plan, an, g = planner.make_plan(base, x_u8, y, budget=64 * 1024, input_size=32,
                                    n_train=100, n_test=100, settings=s, jobs=2, generations=3,
                                    progress=False, log=lambda m: None, app="train-test")
    assert plan.meta["predicted"]["ram_bytes"] <= 64 * 1024
    assert plan.weights and plan.channels     # weights trained, channels permuted
    sparse.save(plan, tmp_path / "plan.json")
    g2 = sparse.apply(base, sparse.load(tmp_path / "plan.json"))
    assert g2.sha256() == g.sha256()
    assert set(plan.channels) == set(planner.needed_permutations(g, plan, plan.channels))


def test_channel_choice_permutes_by_importance_and_keeps_the_function(small):
    x_u8, y = _digits(64)
    x = inputs.model_inputs(small, x_u8)
    body = sparse.body_layers(small)
    pw1 = [n for n in body if n.endswith("pointwise1")][-3:]
    g, perms = planner.choose_channels(small, pw1 + [body[-1]], x, y, contrib.Settings())
    assert set(perms) == set(pw1 + [body[-1]])   # all permutable, none already in order
    imp = contrib.channel_importance(small, pw1 + [body[-1]], x, y, settings=contrib.Settings())
    for n in perms:   # the most important channels first (gradient magnitude, descending)
        assert perms[n] == permute.channel_order(imp[n])
        assert np.all(np.diff(imp[n][perms[n]]) <= 0) and imp[n].max() > 0
    from compiler.ref import executor as reference
    np.testing.assert_array_equal(reference.run(small, x), reference.run(g, x))
    # a plan slicing a depthwise layer needs its producer's permutation, not the others'
    dw = pw1[0].replace("pointwise1", "depthwise")
    plan = sparse.SparsePlan(2, {dw: "1/8", pw1[1]: 1})
    assert set(planner.needed_permutations(g, plan, perms)) == {pw1[0]}


# ----------------------------------------------------------------------------- firmware

@pytest.mark.parametrize("seed", [2, 7])
def test_random_model_plan_bit_exact_host(tmp_path, seed):
    """A plan on a random model (bias depth, sliced and full weight layers, permuted
    channels) trains on the host build bit for bit like the reference."""
    g = specgen.random_graph(seed, hw=12, n_blocks=4)
    body = sparse.body_layers(g)
    rng = np.random.default_rng(seed)
    perm_layers = [n for n in body if sparse_permutable(g, n)]
    channels = {}
    for n in perm_layers[-2:]:
        co = g.node(n).params["weight"].shape[0]
        channels[n] = [int(i) for i in rng.permutation(co)]
    plan = sparse.SparsePlan(int(rng.integers(1, len(body))),
                             {body[-1]: "1/2", body[-3]: "1/8", body[-4]: 1}, channels,
                             meta={"model_sha256": g.sha256()})
    gp = sparse.apply(g, plan)
    x = rng.integers(-128, 128, (12,) + g.tensors[g.inputs[0]].shape[1:]).astype(np.int8)
    labels = rng.integers(0, 10, 12)
    run_both(gp, plan.trainable(gp), tr.TrainConfig(lr=0.05, seed=seed), "host", tmp_path, x, labels)


def sparse_permutable(g, n):
    return permute.permutable(g, n)[0]


def _cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_plan_then_build_plan(tmp_path):
    out = tmp_path / "plan.json"
    p = _cli("plan", "mcunet-5fps", "--data", "digits", "--size", "32", "--train", "60",
             "--test", "60", "--bias-step", "21", "--ratios", "1/8", "--generations", "2",
             "--budget", "100KB", "--jobs", "2", "--cache", str(tmp_path / "cache"), "--quiet",
             "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "predicted:" in p.stdout and "head only:" in p.stdout
    plan = json.loads(out.read_text())
    assert plan["format"] == sparse.FORMAT and plan["budget_bytes"] == 100 * 1024
    assert plan["predicted"]["ram_bytes"] <= 100 * 1024 and plan["app"] == "device"
    b = _cli("build", "mcunet-5fps", "--plan", str(out), "--board", "host",
             "--out", str(tmp_path / "fw"))
    assert b.returncode == 0, b.stderr
    assert "plan " in b.stdout and "RAM" in b.stdout
    rep = json.loads((tmp_path / "fw" / "report.json").read_text())
    assert rep["training"] and rep["linked"]["ram"] <= 100 * 1024
    # wrong model for the plan: a clear error, nothing built
    w = _cli("build", "mbv2-w0.35", "--plan", str(out), "--board", "host",
             "--out", str(tmp_path / "fw2"))
    assert w.returncode == 2 and "was made for model mcunet-5fps" in w.stderr
    assert not (tmp_path / "fw2").exists()


def test_cli_plan_errors():
    p = _cli("plan", "mcunet-5fps", "--data", "digits", "--budget", "1KB", "--size", "32",
             "--train", "10", "--test", "10", "--quiet")
    assert p.returncode == 2 and "even training only the classifier" in p.stderr
    p = _cli("plan", "mcunet-5fps", "--data", "digits", "--ratios", "1/3")
    assert p.returncode == 2 and "--ratios" in p.stderr
    p = _cli("plan", "mcunet-5fps", "--data", "nosuch")
    assert p.returncode == 2 and "error:" in p.stderr


# ----------------------------------------------------------------------------- real models

def _pinned(model):
    path = REPO / "bench" / "plans" / f"{model}.json"
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} is missing: run `make bench` (bench/sparse.py)")
    return sparse.load(path)


@pytest.mark.parametrize("model", REAL)
def test_pinned_plan_fits_and_links_stm32(model, tmp_path):
    """The searched plan still fits the board under today's memory model and links for
    the real board."""
    plan = _pinned(model)
    g = sparse.apply(models.load(model), plan)
    assert g.tensors[g.inputs[0]].shape[1:3] == (128, 128)
    m = sparse.memory(g, plan, reserve=sparse.app_reserve(g, plan.meta["app"]))
    assert m["total"] <= plan.meta["budget_bytes"] <= 256 * 1024
    prog = ad.build_program(g, plan.trainable(g))
    rep = firmware.build(g, "stm32f746", tmp_path, program=prog, app=firmware.TRAIN_TEST_APP,
                         quiet=True)
    assert rep["linked"]["ram"] <= 256 * 1024


@pytest.mark.qemu
@pytest.mark.parametrize("model", REAL)
def test_pinned_plan_bit_exact_qemu(model, tmp_path, monkeypatch):
    plan = _pinned(model)
    if model == "proxyless-w0.3":   # the smallest arena: 11 input gradients recomputed
        monkeypatch.setenv("TT_TWO_PASS", "auto")   # (compiler.memory.two_pass), not the fastest
    g = sparse.apply(models.load(model), plan)
    from compiler.frontend import images
    x = images.photo_batch(("chelsea", "coffee", "astronaut"), size=128)
    run_both(g, plan.trainable(g), tr.TrainConfig(lr=2e-3, seed=3, loss_range_mode="max"),
             "qemu-mps2-an500", tmp_path, x, [1, 7, 3])


def test_heads_untouched():
    # prepare() leaves a model whose classes already match alone
    g = heads.replace_head(models.load("mcunet-5fps"), 10)
    assert sparse.prepare(g, classes=10) is g


def test_a_plan_where_nothing_beats_chance_is_refused():
    """Every configuration at chance (e.g. an untrained model): no plan, a message that
    says the features do not vary; one configuration clearly above chance is enough."""
    at_chance = contrib.Analysis(base=10.0, bias={2: 11.5, 4: 9.0},
                                 weight={("blocks.1.conv", Fraction(1, 8)): 12.0})
    with pytest.raises(sparse.PlanError, match="every configuration stays at chance.*do not vary"):
        planner.check_learns(at_chance, classes=10, n_test=400)
    learns = contrib.Analysis(base=10.0, bias={2: 31.0}, weight={})
    planner.check_learns(learns, classes=10, n_test=400)
