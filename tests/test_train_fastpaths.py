"""The vectorised helpers of compiler.ref.grad_ops (added for training speed) give exactly
the results of the original element-by-element / masked implementations, and the fast
gradient kernels the trainer uses (compiler.autodiff.fast_grad) those of the reference."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.ref import grad_ops as rgo


def _q31_scalar_vec(xs):
    pairs = [rgo.q31_of_f32(x) for x in np.asarray(xs, dtype=np.float32).ravel()]
    return (np.array([p[0] for p in pairs], dtype=np.int64),
            np.array([p[1] for p in pairs], dtype=np.int64))


def _fixed_round_masked(v, total, rounding, rnd):
    """The general (masked) path of ref_grad_ops._fixed_round, verbatim."""
    v = v.astype(np.int64)
    total = np.broadcast_to(total, v.shape).astype(np.int64)
    out = np.zeros_like(v)
    le0 = total <= 0
    out[le0] = v[le0] << (-total[le0])
    mid = (total > 0) & (total <= 62)
    t = total[mid]
    vm = v[mid]
    if rounding == "nearest":
        out[mid] = (vm + (np.int64(1) << (t - 1))) >> t
    elif rounding == "truncate":
        out[mid] = np.sign(vm) * (np.abs(vm) >> t)
    else:
        h = rnd[mid].astype(np.int64)
        r = np.where(t <= 32, h >> np.maximum(32 - t, 0), h << np.maximum(t - 32, 0))
        out[mid] = (vm + r) >> t
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 0x7F7FFFFF), min_size=1, max_size=40))
def test_q31_vec_equals_scalar(bit_patterns):
    xs = np.array(bit_patterns, np.uint32).view(np.float32)
    big = xs >= np.float32(2.0 ** 30)
    xs = np.where(big, np.float32(1.5), xs)
    m, s = rgo.q31_of_f32_vec(xs)
    m2, s2 = _q31_scalar_vec(xs)
    np.testing.assert_array_equal(m, m2)
    np.testing.assert_array_equal(s, s2)


@pytest.mark.parametrize("bad", [-1.0, np.inf, np.nan, 2.0 ** 31])
def test_q31_vec_raises_like_scalar(bad):
    with pytest.raises(ValueError):
        rgo.q31_of_f32_vec([0.5, bad])


def test_q31_vec_edge_values():
    xs = np.array([0.0, -0.0, 1e-45, 2.0 ** -33, 2.0 ** -32, 0.5, 1.0, 2.0 ** 29], np.float32)
    for a, b in zip(rgo.q31_of_f32_vec(xs), _q31_scalar_vec(xs)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(rgo.ROUNDINGS), st.integers(-3, 66),
       st.integers(1, 61), st.booleans())
def test_fixed_round_fast_path_equals_masked_path(seed, rounding, lo, hi, per_channel):
    rng = np.random.default_rng(seed)
    v = rng.integers(-(2 ** 55), 2 ** 55, (5, 3, 2)).astype(np.int64)
    if per_channel:
        total = rng.integers(min(lo, hi), max(lo, hi) + 1, (5, 1, 1)).astype(np.int64)
    else:
        total = rng.integers(min(lo, hi), max(lo, hi) + 1, v.shape).astype(np.int64)
    rnd = rng.integers(0, 2 ** 32, v.shape).astype(np.uint64)
    np.testing.assert_array_equal(rgo._fixed_round(v, total, rounding, rnd),
                                  _fixed_round_masked(v, total, rounding, rnd))


# ----------------------------------------------------------------------------- fast gradient kernels

def _conv_case(seed):
    """A random conv (dense, depthwise or pointwise; stride 1-2; symmetric or not) with
    full-range int16 / int8 operands."""
    from compiler.ir.qmath import out_size
    rng = np.random.default_rng(seed)
    kind = ("dense", "depthwise", "pointwise")[seed % 3]
    k = 1 if kind == "pointwise" else int(rng.choice([1, 3, 5, 7]))
    s = int(rng.integers(1, 3))
    p = int(rng.integers(0, k // 2 + 1))
    pe = int(rng.integers(0, k))
    while True:
        h, wd = (int(v) for v in rng.integers(1, 10, 2))
        ho, wo = out_size(h, k, s, p, pe), out_size(wd, k, s, p, pe)
        if ho > 0 and wo > 0:
            break
    ci, n = int(rng.integers(1, 12)), int(rng.integers(1, 3))
    co, groups = (ci, ci) if kind == "depthwise" else (int(rng.integers(1, 12)), 1)
    w = rng.integers(-128, 128, (co, k, k, ci // groups)).astype(np.int8)
    return rng, (n, h, wd, ci, ho, wo, co), w, s, p, groups


@pytest.mark.parametrize("seed", range(60))
def test_fast_conv_grads_equal_reference(seed):
    from compiler.autodiff import fast_grad
    rng, (n, h, wd, ci, ho, wo, co), w, s, p, groups = _conv_case(seed)
    t = rng.integers(-32768, 32768, (n, ho, wo, co)).astype(np.int16)
    # full-range gradients, and small ones (a depthwise sum then runs in float32: up to
    # the largest magnitude whose k*k products with 128 stay below 2**24)
    kk = w.shape[1] * w.shape[2]
    edge = min(32767, max(1, ((1 << 24) - 1) // (128 * kk)))
    small = rng.integers(-edge, edge + 1, t.shape).astype(np.int16)
    small.flat[0] = -edge if seed % 2 else edge
    for tt in (t, small, np.clip(small, -int(rng.integers(1, 300)), 300).astype(np.int16)):
        a = rgo.conv_grad_input(tt, w, (h, wd), s, p, groups)
        b = fast_grad.conv_grad_input(tt, w, (h, wd), s, p, groups)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    gy = rng.integers(-128, 128, (n, ho, wo, co)).astype(np.int8)
    x = rng.integers(-128, 128, (n, h, wd, ci)).astype(np.int8)
    z, k = int(rng.integers(-128, 128)), int(rng.integers(0, co + 1))
    kh = w.shape[1]
    a = rgo.conv_grad_weight_acc(gy, x, z, (kh, kh), s, p, groups, k)
    b = fast_grad.conv_grad_weight_acc(gy, x, z, (kh, kh), s, p, groups, k)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    t2, w2 = t.reshape(-1, co)[:, :min(co, 8)], rng.integers(-128, 128, (min(co, 8), 5)).astype(np.int8)
    np.testing.assert_array_equal(rgo.fc_grad_input(t2, w2), fast_grad.fc_grad_input(t2, w2))
    xf = x.reshape(n, -1)
    gf = gy.reshape(n, -1)
    np.testing.assert_array_equal(rgo.fc_grad_weight_acc(gf, xf, z, k), fast_grad.fc_grad_weight_acc(gf, xf, z, k))


@pytest.mark.parametrize("model, cfg", [
    ("mcunet-5fps", dict(loss_range_mode="max")),
    ("mcunet-5fps", dict(range_mode="mean*4", bits=6, rounding="nearest")),
    ("mcunet-5fps", dict(range_mode="max/2", loss_range_mode="max", qas=False)),
    ("mbv2-w0.35", dict(loss_range_mode="max")),
    ("proxyless-w0.3", dict(loss_range_mode="max"))])
def test_training_with_fast_kernels_equals_the_reference(model, cfg):
    """A whole real model (32x32, new head) trained for a few steps with the fast kernels
    (BLAS products, native steps: tests/test_native_steps.py) and with the reference's
    own, the three models and three training settings: identical prefix features,
    losses, logits, weights and scores."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.frontend import models
    from compiler.sparse import plan as sparse
    g0 = sparse.prepare(models.load(model), input_size=32, classes=10)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (8,) + tuple(g0.tensors[g0.inputs[0]].shape[1:])).astype(np.int8)
    y = rng.integers(0, 10, 8)
    runs = []
    for reference in (False, True):
        g = g0.copy()
        prog = ad.build_program(g, ad.whole_model(g))
        st = tr.TrainState(tr.TrainConfig(lr=0.05, seed=3, **cfg))
        with tr.reference_kernels() if reference else contextlib.nullcontext():
            feats = tr.prefix_features(g, prog, x)
            steps = [tr.train_step(g, prog, st, label=int(y[i]), features=tr._slice(feats, i))
                     for i in range(8)]
            out = tr.outputs(g, prog, features=feats)
        runs.append((steps, out, {(n.name, k): v.copy() for n in g.nodes for k, v in n.params.items()
                                  if k in ("weight", "bias")}))
    (s1, o1, p1), (s2, o2, p2) = runs
    assert [r.loss for r in s1] == [r.loss for r in s2]
    for a, b in zip(s1, s2):
        np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(o1, o2)
    assert p1.keys() == p2.keys()
    for key in p1:
        np.testing.assert_array_equal(p1[key], p2[key], err_msg=str(key))
    assert any((p1[key] != g0.node(key[0]).params[key[1]]).any() for key in p1)


def test_prefix_features_split_over_processes_equal_one_pass():
    """The analysis computes frozen-prefix features in forked processes, a slice of the
    samples each: the same arrays as one pass."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.frontend import models
    from compiler.sparse import contrib
    from compiler.sparse import plan as sparse
    g = sparse.prepare(models.load("mcunet-5fps"), input_size=32, classes=10)
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (200,) + tuple(g.tensors[g.inputs[0]].shape[1:])).astype(np.int8)
    prog = ad.build_program(g, contrib.config_plan(("bias", 6)).trainable(g))
    one = tr.prefix_features(g, prog, x)
    for jobs in (2, 3):
        split = contrib.prefix_features(g, prog, x, jobs)
        assert split.keys() == one.keys()
        for t in one:
            assert split[t].dtype == one[t].dtype
            np.testing.assert_array_equal(split[t], one[t])


def test_chunked_forward_equals_one_sample_at_a_time():
    """prefix_features and outputs run the samples in chunks sized for the CPU caches
    (trainer.chunk_rows): the same arrays as one sample at a time and as one batch."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.frontend import models
    from compiler.sparse import contrib
    from compiler.sparse import plan as sparse
    g = sparse.prepare(models.load("mcunet-5fps"), input_size=32, classes=10)
    rng = np.random.default_rng(2)
    head = g.node(sparse.head(g)).params["weight"]
    head[...] = rng.integers(-127, 128, head.shape)
    x = rng.integers(-128, 128, (37,) + tuple(g.tensors[g.inputs[0]].shape[1:])).astype(np.int8)
    prog = ad.build_program(g, contrib.config_plan(("bias", 12)).trainable(g))
    assert 1 < tr.chunk_rows(g, g.nodes) < len(x)
    runs = [(tr.prefix_features(g, prog, x, batch_size=b), b) for b in (None, 1, len(x))]
    for f, b in runs[1:]:
        assert f.keys() == runs[0][0].keys()
        for t in f:
            np.testing.assert_array_equal(f[t], runs[0][0][t], err_msg=f"batch {b}")
    feats = runs[0][0]
    out = tr.outputs(g, prog, features=feats)
    assert len(np.unique(out, axis=0)) > 1
    for b in (1, len(x)):
        np.testing.assert_array_equal(tr.outputs(g, prog, features=feats, batch_size=b), out)


def test_memory_models_in_processes_equal_one_process():
    """The weight candidates' memory evaluations run in forked processes: the same
    candidates, skips, figures and memo (the same plans evaluated) as in one process."""
    from compiler.frontend import models
    from compiler.sparse import contrib
    from compiler.sparse import plan as sparse
    g = sparse.prepare(models.load("mcunet-5fps"), input_size=32, classes=10)
    body = sparse.body_layers(g)
    layers = [body[1], body[-1]]
    runs = []
    for jobs in (1, 2):
        mm = sparse.MemoryModel(g)
        mem, skipped = {}, {}
        cfgs = contrib.weight_candidates(g, mm, 44 * 1024, contrib.Settings(), 4, mem, skipped,
                                         layers, jobs=jobs)
        runs.append((cfgs, mem, skipped, mm.cache))
    assert runs[0] == runs[1]
    assert runs[0][0] and runs[0][2]       # some fit, some do not


def test_boundary_chain_split_over_processes_equals_one_pass():
    """The analysis computes every boundary's features as one chain (each boundary from
    the one before), the samples split over forked processes: the same arrays as the
    chain in one process and as each boundary computed from the inputs."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.frontend import models
    from compiler.sparse import contrib
    from compiler.sparse import plan as sparse
    g = sparse.prepare(models.load("mcunet-5fps"), input_size=32, classes=10)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (150,) + tuple(g.tensors[g.inputs[0]].shape[1:])).astype(np.int8)
    body = sparse.body_layers(g)
    cfgs = [("bias", 30), ("weight", body[20], "1/8", 4), ("bias", 6), ("head",)]
    progs = [ad.build_program(g, contrib.config_plan(c).trainable(g)) for c in cfgs]
    one = contrib.boundary_features(g, progs, x, jobs=1)
    split = contrib.boundary_features(g, progs, x, jobs=2)
    assert list(one) == [tuple(p.boundary) for p in progs] == list(split)
    for p in progs:
        b = tuple(p.boundary)
        direct = tr.prefix_features(g, p, x)
        assert split[b].keys() == one[b].keys() == direct.keys()
        for t in direct:
            assert split[b][t].dtype == direct[t].dtype
            np.testing.assert_array_equal(one[b][t], direct[t])
            np.testing.assert_array_equal(split[b][t], direct[t])
