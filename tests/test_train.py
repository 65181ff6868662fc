"""compiler.autodiff.trainer: the reference training step (wiring, in-place updates, slices, PRNG
keys, cached-prefix path) and compiler.sparse.heads."""
from __future__ import annotations

import copy
from fractions import Fraction

import numpy as np
import pytest
import specgen

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.ref import executor as reference
from compiler.ref import grad_ops as rgo
from compiler.sparse import heads

HAVE_MODELS = (models.models_dir() / "mcunet-5fps.json").is_file()
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason="real models not found")


def conv_pool_graph():
    """A random model whose last conv feeds the global average pool directly."""
    for seed in range(200):
        g = specgen.random_graph(seed, hw=12, n_blocks=2)
        pool = g.node("pool")
        if g.producer(pool.inputs[0]).op == "conv2d":
            return g
    raise AssertionError


def sample(g, seed=0):
    shape = g.tensors[g.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (1,) + shape).astype(np.int8)


def params_of(g):
    return {(n.name, k): v.copy() for n in g.nodes for k, v in n.params.items()}


# ----------------------------------------------------------------------------- golden wiring

@pytest.mark.parametrize("qas", [True, False])
@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
def test_step_equals_manual_ref_grad_ops_chain(qas, rounding):
    """conv -> pool -> flatten -> fc, both layers trained: train_step must be exactly the
    documented chain of ref_grad_ops calls."""
    g = conv_pool_graph()
    conv = g.producer(g.node("pool").inputs[0])
    fc = g.node("classifier")
    # without QAS the gradient w.r.t. the integers is ~s_w**2 smaller: a larger lr moves it
    lr = 0.05 if qas else 3e4
    cfg = tr.TrainConfig(lr=lr, bits=6, range_mode="max/2", rounding=rounding, qas=qas, seed=7,
                         loss_range_mode="mean*3")
    spec = {conv.name: ad.LayerTrain(True, Fraction(1, 2), True), fc.name: ad.LayerTrain()}
    p = ad.build_program(g, spec)
    x, label = sample(g, 3), 4
    env = reference.run(g, x, return_all=True)
    ids = ad.layer_ids(g)
    wf = rgo.weight_factors if qas else rgo.weight_factors_plain
    bf = rgo.bias_factors if qas else rgo.bias_factors_plain
    T = g.tensors
    # --- manual chain (weights before the update are used for input gradients)
    y = T[fc.output]
    gl, loss = rgo.softmax_xent_grad(env[fc.output][0], y.scale, y.zero_point, label)
    gq, gs = rgo.quantize_grad_f32(gl, 6, "mean*3")
    gq = gq.reshape(1, -1)
    m, s, smax = rgo.prescale_params(fc.params["w_scales"])
    t = rgo.prescale(gq, m, s)
    ts = rgo.input_grad_scale(gs, np.float32(smax))
    acc = rgo.fc_grad_input(t, fc.params["weight"])
    fq, fs = rgo.requant_grad(acc, ts, 6, "max/2")
    xin = T[fc.inputs[0]]
    A = rgo.fc_grad_weight_acc(gq, env[fc.inputs[0]], xin.zero_point)
    w_fc = rgo.sgd_update_weights(fc.params["weight"], A, wf(lr, gs, xin.scale, fc.params["w_scales"]),
                                  rounding, rgo.update_key(7, 0, ids[fc.name]))
    b_fc = rgo.sgd_update_bias(fc.params["bias"], rgo.bias_grad_acc(gq),
                               bf(lr, gs, xin.scale, fc.params["w_scales"]))
    h, w_ = T[conv.output].shape[1:3]
    pq, ps = rgo.avgpool_grad_input(fq.reshape(1, 1, 1, -1), fs, (h, w_))
    mask = rgo.clamp_mask(env[conv.output], conv.attrs["act_min"], conv.attrs["act_max"])
    pq = np.where(mask, pq, 0).astype(np.int8)
    k = conv.params["weight"].shape[0] // 2
    a = conv.attrs
    xc = T[conv.inputs[0]]
    A2 = rgo.conv_grad_weight_acc(pq, env[conv.inputs[0]], xc.zero_point, a["kernel"], a["stride"],
                                  a["pad"], a["groups"], k)
    w_c = rgo.sgd_update_weights(conv.params["weight"], A2,
                                 wf(lr, ps, xc.scale, conv.params["w_scales"][:k]), rounding,
                                 rgo.update_key(7, 0, ids[conv.name]))
    b_c = rgo.sgd_update_bias(conv.params["bias"], rgo.bias_grad_acc(pq),
                              bf(lr, ps, xc.scale, conv.params["w_scales"]))
    # --- the reference step
    state = tr.TrainState(cfg)
    before = params_of(g)
    r = tr.train_step(g, p, state, x, label)
    assert r.loss == loss and r.pred == int(env[fc.output][0].argmax())
    np.testing.assert_array_equal(fc.params["weight"], w_fc)
    np.testing.assert_array_equal(fc.params["bias"], b_fc)
    np.testing.assert_array_equal(conv.params["weight"], w_c)
    np.testing.assert_array_equal(conv.params["bias"], b_c)
    np.testing.assert_array_equal(conv.params["weight"][k:], before[(conv.name, "weight")][k:])
    assert state.scales[p.grad_of[fc.output]] == gs
    assert state.scales[p.input_grads[fc.name][0]] == fs
    assert state.step == 1 and state.loss == loss
    # the update moved something (the test is not vacuous)
    assert not np.array_equal(conv.params["weight"][:k], before[(conv.name, "weight")][:k])
    assert not np.array_equal(fc.params["weight"], before[(fc.name, "weight")])


def test_weights_are_updated_in_place():
    g = specgen.random_graph(2)
    p = ad.build_program(g, ad.last_layers(g, 1))
    w = g.node("classifier").params["weight"]
    tr.train_step(g, p, tr.TrainState(tr.TrainConfig(lr=0.5)), sample(g), 1)
    assert g.node("classifier").params["weight"] is w


# ----------------------------------------------------------------------------- semantics

@pytest.mark.parametrize("seed", range(4))
def test_cached_features_path_is_bit_identical(seed):
    g = specgen.random_graph(seed, hw=12, n_blocks=3)
    spec = ad.last_layers(g, 3)
    p = ad.build_program(g, spec)
    xs = np.concatenate([sample(g, i) for i in range(4)])
    labels = [0, 3, 5, 9]
    feats = tr.prefix_features(g, p, xs)
    assert set(feats) == set(p.boundary)
    g1, g2 = g.copy(), g.copy()
    s1, s2 = tr.TrainState(tr.TrainConfig(lr=0.1)), tr.TrainState(tr.TrainConfig(lr=0.1))
    for i in range(4):
        r1 = tr.train_step(g1, p, s1, xs[i], labels[i], trace=True)
        r2 = tr.train_step(g2, p, s2, label=labels[i], features={t: v[i:i + 1] for t, v in feats.items()},
                           trace=True)
        assert r1.loss == r2.loss and s1.scales == s2.scales
        assert s1.trace.keys() == s2.trace.keys()
    assert all(np.array_equal(a, b) for a, b in zip(params_of(g1).values(), params_of(g2).values()))
    np.testing.assert_array_equal(tr.predict(g1, p, xs), tr.predict(g2, p, features=feats))
    np.testing.assert_array_equal(tr.predict(g1, p, xs), reference.predict(g1, xs))


def test_frozen_parameters_never_change_and_bias_only_changes_only_biases():
    g = specgen.random_graph(4, hw=12, n_blocks=3)
    p = ad.build_program(g, ad.bias_only(g, 3))
    before = params_of(g)
    state = tr.TrainState(tr.TrainConfig(lr=0.5))
    for i in range(5):
        tr.train_step(g, p, state, sample(g, i), i)
    after = params_of(g)
    trained = {n.name for n in ad.param_nodes(g)[-3:]}
    changed = {key for key in before if not np.array_equal(before[key], after[key])}
    assert changed and all(k == "bias" and n in trained for n, k in changed)


@pytest.mark.parametrize("ratio", [Fraction(1, 8), Fraction(1, 4), Fraction(1, 2)])
def test_channel_slice_updates_only_first_k(ratio):
    g = conv_pool_graph()
    conv = g.producer(g.node("pool").inputs[0])
    p = ad.build_program(g, {conv.name: ad.LayerTrain(True, ratio, False)})
    w0 = conv.params["weight"].copy()
    state = tr.TrainState(tr.TrainConfig(lr=2.0))
    for i in range(5):
        tr.train_step(g, p, state, sample(g, i), i % 10)
    k = ad.channels_of_ratio(w0.shape[0], ratio)
    w = conv.params["weight"]
    np.testing.assert_array_equal(w[k:], w0[k:])
    assert not np.array_equal(w[:k], w0[:k])


def test_prng_keys_follow_seed_and_step():
    g = specgen.random_graph(5)
    p = ad.build_program(g, ad.last_layers(g, 2))
    runs = []
    for seed in (1, 1, 2):
        h = g.copy()
        state = tr.TrainState(tr.TrainConfig(lr=0.05, seed=seed))
        for i in range(3):
            tr.train_step(h, p, state, sample(g, i), i)
        assert state.step == 3
        runs.append(params_of(h))
    same = all(np.array_equal(a, b) for a, b in zip(runs[0].values(), runs[1].values()))
    diff = any(not np.array_equal(a, b) for a, b in zip(runs[0].values(), runs[2].values()))
    assert same and diff
    # starting at another step counter changes the stream too
    h = g.copy()
    state = tr.TrainState(tr.TrainConfig(lr=0.05, seed=1), step=100)
    for i in range(3):
        tr.train_step(h, p, state, sample(g, i), i)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0].values(), params_of(h).values()))


def test_state_records_every_buffer_scale():
    g = specgen.random_graph(6, hw=12, n_blocks=3)
    p = ad.build_program(g, ad.whole_model(g))
    state = tr.TrainState(tr.TrainConfig(lr=0.01))
    tr.train_step(g, p, state, sample(g), 2, trace=True)
    written = {w for s in p.steps for w in s.writes()}
    assert set(state.scales) == written
    assert all(isinstance(v, np.float32) and v > 0 for v in state.scales.values())
    assert set(state.ranges) == {s.out for s in p.steps if isinstance(s, ad.RequantGrad)}
    for n in ad.param_nodes(g):
        assert f"A:{n.name}" in state.trace and f"gb:{n.name}" in state.trace


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_lowp_saved_activation_rule(bits):
    """Saved inputs at 2..8 bits: identity at 8, the lower bound (a ReLU's zero) exact,
    round half up onto the grid (error <= half a step below the top code), and the packed
    bytes decode to the same values."""
    x = np.arange(-128, 128, dtype=np.int8)
    for lo in (-128, -5):
        y = rgo.lowp_activation(x[x >= lo], bits, lo)
        if bits == 8:
            assert np.array_equal(y, x[x >= lo])
        assert y[0] == lo
        step = 1 << (8 - bits)
        top = lo + ((1 << bits) - 1) * step
        err = np.abs(y.astype(int) - x[x >= lo].astype(int))
        assert err[x[x >= lo] <= top].max() <= step // 2
        packed = rgo.lowp_pack(x[x >= lo], bits, lo)
        per = 8 // bits
        assert len(packed) == rgo.lowp_bytes((x >= lo).sum(), bits)
        codes = (packed[:, None].astype(int) >> (bits * np.arange(per))) & ((1 << bits) - 1)
        assert np.array_equal(lo + codes.ravel()[:len(y)] * step, y.astype(int))


def test_lowp_saves_change_only_their_layer():
    """A conv whose input is saved at 4 bits: same loss and input gradients, a different
    weight update of that layer only; its saved input shrinks to half."""
    g = specgen.random_graph(2, hw=12, n_blocks=2)
    name = [n.name for n in ad.param_nodes(g)][-2]
    runs = []
    for bits in (8, 4):
        gg = copy.deepcopy(g)
        t = ad.whole_model(gg)
        t[name] = ad.LayerTrain(True, 1, True, bits)
        p = ad.build_program(gg, t)
        r = tr.train_step(gg, p, tr.TrainState(tr.TrainConfig(lr=0.05)), sample(gg), 3)
        runs.append((p, params_of(gg), r.loss))
    (p8, a, l8), (p4, b, l4) = runs
    assert l8 == l4
    x = g.node(name).inputs[0]
    assert p4.saved_bytes() < p8.saved_bytes() and p4.saved[f"{x}#b4"].kind == "lowp"
    differ = {k for k in a if not np.array_equal(a[k], b[k])}
    assert differ and all(k[0] == name for k in differ), differ


def test_zero_learning_rate_changes_nothing():
    g = specgen.random_graph(7)
    p = ad.build_program(g, ad.whole_model(g))
    before = params_of(g)
    tr.train_step(g, p, tr.TrainState(tr.TrainConfig(lr=0.0)), sample(g), 1)
    assert all(np.array_equal(before[k], v) for k, v in params_of(g).items())


def test_input_checks():
    g = specgen.random_graph(8)
    p = ad.build_program(g, ad.last_layers(g, 1))
    state = tr.TrainState()
    with pytest.raises(Exception, match="int8"):
        tr.train_step(g, p, state, sample(g).astype(np.float32), 0)
    with pytest.raises(ValueError, match="either"):
        tr.train_step(g, p, state, None, 0)
    with pytest.raises(ValueError, match="label"):
        tr.train_step(g, p, state, sample(g), 10)
    with pytest.raises(ValueError, match="rounding"):
        tr.TrainConfig(rounding="up")
    with pytest.raises(ValueError, match="bit width"):
        tr.TrainConfig(bits=9)
    with pytest.raises(ValueError, match="range function"):
        tr.TrainConfig(loss_range_mode="max/3")
    # a single sample without batch axis is accepted
    tr.train_step(g, p, state, sample(g)[0], 0)


# ----------------------------------------------------------------------------- heads

@needs_models
@pytest.mark.parametrize("init", ["zero", "seeded"])
def test_replace_head(init):
    g0 = models.load("mcunet-5fps")
    g = heads.replace_head(g0, 10, init=init, seed=3)
    fc = g.node("classifier")
    assert fc.params["weight"].shape == (10, 160) and fc.params["bias"].tolist() == [0] * 10
    assert g.tensors["classifier"].shape == (1, 10) and g.tensors["classifier"].zero_point == 0
    assert g.tensors["classifier"].scale == pytest.approx(32 / 255)
    assert g0.node("classifier").params["weight"].shape == (1000, 160)   # original untouched
    if init == "zero":
        assert not fc.params["weight"].any()
    else:
        again = heads.replace_head(g0, 10, init="seeded", seed=3).node("classifier").params["weight"]
        other = heads.replace_head(g0, 10, init="seeded", seed=4).node("classifier").params["weight"]
        np.testing.assert_array_equal(fc.params["weight"], again)
        assert not np.array_equal(fc.params["weight"], other)
        # U(-1/sqrt(160), 1/sqrt(160)) at scale 4/sqrt(160)/127: |w| <= ~32
        assert 20 < np.abs(fc.params["weight"]).max() <= 32
    # the new head trains: loss on one repeated sample goes down
    small = heads.with_input_size(g, 32)
    p = ad.build_program(small, ad.last_layers(small, 1))
    x = sample(small)
    feats = tr.prefix_features(small, p, x)
    state = tr.TrainState(tr.TrainConfig(lr=0.01))
    losses = [tr.train_step(small, p, state, label=7, features=feats).loss for _ in range(20)]
    assert losses[-1] < losses[0] * 0.5
    assert tr.predict(small, p, features=feats)[0] == 7


@needs_models
def test_with_input_size():
    g = heads.with_input_size(models.load("mcunet-5fps"), 48)
    assert g.tensors["input"].shape == (1, 48, 48, 3)
    assert g.tensors["blocks.13.pointwise2"].shape == (1, 2, 2, 160)
    assert reference.run(g, np.zeros((2, 48, 48, 3), np.int8)).shape == (2, 1000)
