"""Offline output-channel permutation (:mod:`compiler.sparse.permute`).

The contract: a permuted graph computes *bit-identically* what the original computes
(int8 reference), every intermediate tensor is the original one with its channels
reordered, and only layers whose channels can be absorbed downstream are permutable.
All expected values come from running the reference on the unpermuted graph.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from specgen import random_graph

from compiler.frontend import models
from compiler.ir.errors import CompilerError
from compiler.ir.graph import INT8, Graph
from compiler.ir.qmath import quantize_multipliers
from compiler.ref import executor as reference
from compiler.sparse import heads, permute
from compiler.sparse.permute import PermuteError

WEIGHTED = ("conv2d", "fully_connected")
SIZES = {"mcunet-5fps": 48, "mbv2-w0.35": 32, "proxyless-w0.3": 48}


# ----------------------------------------------------------------------------- helpers

def _inputs(g: Graph, n: int = 4, seed: int = 0) -> np.ndarray:
    shape = g.tensors[g.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n, *shape)).astype(np.int8)


def _tensor_perms(g: Graph, applied: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Channel permutation of every tensor after permuting the nodes in ``applied``
    (independent of the module: propagate through channel-wise ops in graph order)."""
    perms: dict[str, np.ndarray] = {}
    for n in g.nodes:
        if n.name in applied:
            perms[n.output] = np.asarray(applied[n.name])
        elif n.inputs[0] in perms and (n.is_depthwise or n.op in ("global_avgpool", "flatten")):
            perms[n.output] = perms[n.inputs[0]]
    return perms


def _assert_same_function(g: Graph, pg: Graph, applied: dict[str, np.ndarray], x) -> None:
    """Logits bit-identical; every tensor equals the original with its channels permuted."""
    ref = reference.run(g, x, return_all=True)
    got = reference.run(pg, x, return_all=True)
    for t in g.outputs:
        np.testing.assert_array_equal(got[t], ref[t], err_msg=f"output {t} changed")
    perms = _tensor_perms(g, applied)
    for t, want in ref.items():
        if t in perms:
            want = want[..., perms[t]]
        np.testing.assert_array_equal(got[t], want, err_msg=f"tensor {t}")


def _random_perm(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.permutation(n)
    if n > 1 and np.array_equal(p, np.arange(n)):
        p = np.roll(p, 1)
    return p


def _weighted(g: Graph):
    return [n for n in g.nodes if n.op in WEIGHTED]


@pytest.fixture(scope="module")
def real_graphs():
    return {m: heads.replace_head(heads.with_input_size(models.load(m), SIZES[m]), 10,
                                  init="seeded", seed=1)
            for m in models.REAL_MODELS}


class _Builder:
    """Tiny int8 graphs for shapes the real models lack (fc -> fc, grouped conv, ...)."""

    def __init__(self, shape, seed=0):
        self.rng = np.random.default_rng(seed)
        self.g = Graph("synthetic")
        self.g.add_input("x", shape, INT8, 1 / 127.5, 0)

    def _params(self, x, w):
        rng, co = self.rng, w.shape[0]
        fan = int(np.prod(w.shape[1:]))
        w_scales = (rng.uniform(0.5, 1.5, co) / (127 * np.sqrt(fan)) * 3).astype(np.float32)
        y_scale = float(rng.uniform(0.02, 0.1))
        mult, shift = quantize_multipliers(self.g.tensors[x].scale * w_scales.astype(np.float64)
                                           / y_scale)
        params = dict(weight=w, bias=rng.integers(-2000, 2000, co).astype(np.int32),
                      w_scales=w_scales, mult=mult, shift=shift)
        return params, dict(dtype=INT8, scale=y_scale, zero_point=int(rng.integers(-20, 20)))

    def conv(self, name, x, co, k=1, groups=1, stride=1):
        ci = self.g.tensors[x].shape[3]
        w = self.rng.integers(-127, 128, (co, k, k, ci // groups)).astype(np.int8)
        params, q = self._params(x, w)
        attrs = dict(kernel=(k, k), stride=stride, pad=(k - 1) // 2, groups=groups,
                     act_min=-128, act_max=127)
        return self.g.add_node("conv2d", name, [x], attrs, params, **q)

    def dw(self, name, x, k=3):
        return self.conv(name, x, self.g.tensors[x].shape[3], k, groups=self.g.tensors[x].shape[3])

    def fc(self, name, x, co):
        w = self.rng.integers(-127, 128, (co, self.g.tensors[x].shape[1])).astype(np.int8)
        params, q = self._params(x, w)
        return self.g.add_node("fully_connected", name, [x], dict(act_min=-128, act_max=127),
                               params, **q)

    def op(self, op, name, x):
        t = self.g.tensors[x]
        return self.g.add_node(op, name, [x], dtype=INT8, scale=t.scale, zero_point=t.zero_point)

    def done(self, *outputs):
        self.g.outputs = list(outputs)
        return self.g.validate()


def _chain_graph():
    """conv -> dw -> dw -> conv -> pool -> flatten -> fc -> fc (everything permutable
    except the last fc)."""
    b = _Builder((1, 6, 6, 3))
    t = b.conv("c1", "x", 8, k=3)
    t = b.dw("dw1", t)
    t = b.dw("dw2", t, k=5)
    t = b.conv("c2", t, 12, stride=2)
    t = b.op("global_avgpool", "pool", t)
    t = b.op("flatten", "flat", t)
    t = b.fc("fc1", t, 9)
    return b.done(b.fc("fc2", t, 5))


# ----------------------------------------------------------------------------- real models

@pytest.mark.parametrize("model", models.REAL_MODELS)
def test_real_model_every_permutable_layer_at_once(real_graphs, model):
    g = real_graphs[model]
    sha = g.sha256()
    rng = np.random.default_rng(2024)
    pg, applied = g, {}
    for n in _weighted(g):
        ok, reason = permute.permutable(g, n.name)
        assert (reason == "") == ok, (n.name, reason)
        if ok:
            applied[n.name] = _random_perm(rng, n.params["weight"].shape[0])
            pg = permute.permute_output_channels(pg, n.name, applied[n.name])
        elif n.is_depthwise:
            assert "depthwise channels follow their producer" in reason
        with_add = [c for c in g.consumers(n.output) if c.op == "add"]
        if with_add:
            assert not ok and "add" in reason and with_add[0].name in reason, (n.name, reason)
            with pytest.raises(PermuteError, match="residual"):
                permute.permute_output_channels(g, n.name, range(n.params["weight"].shape[0]))

    assert any(name.endswith("pointwise1") for name in applied)
    pool = next(n for n in g.nodes if n.op == "global_avgpool")
    last = g.producer(pool.inputs[0])
    assert last.op == "conv2d" and last.name in applied, "last conv before the pool"
    assert not permute.permutable(g, heads.classifier_node(g).name)[0]

    assert g.sha256() == sha, "the input graph must not change"
    assert pg.sha256() != sha
    assert {k: v for k, v in pg.metadata.items() if k != "channel_permutations"} == g.metadata
    assert pg.metadata["channel_permutations"] == {k: v.tolist() for k, v in applied.items()}

    x = _inputs(g, 4)
    logits = reference.run(g, x)
    assert len(np.unique(logits, axis=0)) > 1, "inputs must give different logits"
    _assert_same_function(g, pg, applied, x)


# ----------------------------------------------------------------------------- random graphs

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), pseed=st.integers(0, 2**32 - 1))
def test_random_graphs_single_layer_permutations(seed, pseed):
    g = random_graph(seed, hw=8)
    rng = np.random.default_rng(pseed)
    x = _inputs(g, 3, seed)
    for n in _weighted(g):
        co = n.params["weight"].shape[0]
        ok, reason = permute.permutable(g, n.name)
        if not ok:
            with pytest.raises(PermuteError) as e:
                permute.permute_output_channels(g, n.name, np.arange(co))
            assert reason in str(e.value)
            continue
        p = _random_perm(rng, co)
        pg = permute.permute_output_channels(g, n.name, p)
        old, new = n.params["weight"], pg.node(n.name).params["weight"]
        np.testing.assert_array_equal(new, old[p])
        for k in ("bias", "w_scales", "mult", "shift"):
            np.testing.assert_array_equal(pg.node(n.name).params[k], n.params[k][p])
        if co > 1 and len(np.unique(old.reshape(co, -1), axis=0)) == co:
            assert not np.array_equal(new, old), "weights must move"
        _assert_same_function(g, pg, {n.name: p}, x)


# ----------------------------------------------------------------------------- synthetic graphs

def test_chain_of_depthwise_pool_flatten_and_fc():
    g = _chain_graph()
    assert [n.name for n in g.nodes if n.op in WEIGHTED and permute.permutable(g, n.name)[0]] \
        == ["c1", "c2", "fc1"]
    rng = np.random.default_rng(5)
    pg, applied = g, {}
    for name in ("c1", "c2", "fc1"):
        applied[name] = _random_perm(rng, g.node(name).params["weight"].shape[0])
        pg = permute.permute_output_channels(pg, name, applied[name])
    # c1's permutation moves both depthwise followers; the readers' input axes move
    for name in ("dw1", "dw2"):
        for k, v in g.node(name).params.items():
            np.testing.assert_array_equal(pg.node(name).params[k], v[applied["c1"]])
    np.testing.assert_array_equal(pg.node("c2").params["weight"],
                                  g.node("c2").params["weight"][applied["c2"]][..., applied["c1"]])
    np.testing.assert_array_equal(pg.node("fc2").params["weight"],
                                  g.node("fc2").params["weight"][:, applied["fc1"]])
    x = _inputs(g, 5)
    assert len(np.unique(reference.run(g, x), axis=0)) > 1
    _assert_same_function(g, pg, applied, x)


@pytest.mark.parametrize("case, culprit, words", [
    ("add", "c1", ["add 'sum'", "residual"]),
    ("grouped", "c1", ["grouped conv2d 'g2'"]),
    ("flatten", "c1", ["flatten 'flat'", "4x4 map"]),
    ("output", "c1", ["graph output"]),
    ("output_via_dw", "c1", ["tensor 'dw'", "graph output"]),
    ("grouped_self", "g2", ["grouped conv2d"]),
    ("depthwise_self", "dw", ["depthwise channels follow their producer 'c1'"]),
])
def test_not_permutable_reasons(case, culprit, words):
    b = _Builder((1, 4, 4, 4), seed=3)
    c1 = b.conv("c1", "x", 4, k=3)
    if case == "add":
        g = b.done(b.g.add_node("add", "sum", [c1, "x"], dict(
            act_min=-128, act_max=127, z1=0, z2=0, zo=0, m1=1 << 30, s1=0, m2=1 << 30, s2=0,
            mo=1 << 30, so=0), dtype=INT8, scale=0.05, zero_point=0))
    elif case in ("grouped", "grouped_self"):
        g = b.done(b.conv("g2", c1, 6, groups=2))
    elif case == "flatten":
        g = b.done(b.fc("fc", b.op("flatten", "flat", c1), 3))
    elif case == "output":
        g = b.done(b.conv("c2", c1, 2), c1)
    elif case in ("output_via_dw", "depthwise_self"):
        g = b.done(b.dw("dw", c1))
    ok, reason = permute.permutable(g, culprit)
    assert not ok
    for w in words:
        assert w in reason, reason
    identity = np.arange(g.node(culprit).params["weight"].shape[0])
    with pytest.raises(PermuteError) as e:
        permute.permute_output_channels(g, culprit, identity)
    assert reason in str(e.value)
    assert isinstance(e.value, CompilerError)


# ----------------------------------------------------------------------------- API edges

def test_bad_permutations_raise_value_error():
    g = _chain_graph()
    for bad in ([0, 1, 2], list(range(9)), [0, 0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7, 8],
                np.arange(8.0), np.arange(8).reshape(2, 4), [-1, 1, 2, 3, 4, 5, 6, 7]):
        with pytest.raises(ValueError, match="permutation|integers"):
            permute.permute_output_channels(g, "c1", bad)


def test_unknown_and_unweighted_nodes():
    g = _chain_graph()
    for call in (lambda: permute.permutable(g, "nope"),
                 lambda: permute.permute_output_channels(g, "nope", [0])):
        with pytest.raises(PermuteError, match="no node named 'nope'"):
            call()
    ok, reason = permute.permutable(g, "pool")
    assert not ok and "global_avgpool" in reason
    with pytest.raises(PermuteError, match="global_avgpool"):
        permute.permute_output_channels(g, "pool", [0])


def test_permutations_compose_and_invert():
    g = _chain_graph()
    rng = np.random.default_rng(11)
    p1, p2 = rng.permutation(8), rng.permutation(8)
    twice = permute.permute_output_channels(permute.permute_output_channels(g, "c1", p1), "c1", p2)
    once = permute.permute_output_channels(g, "c1", p1[p2])
    assert twice.sha256() == once.sha256()
    assert twice.metadata["channel_permutations"] == {"c1": p1[p2].tolist()}
    back = permute.permute_output_channels(permute.permute_output_channels(g, "c1", p1), "c1",
                                           np.argsort(p1))
    assert back.sha256() == g.sha256()
    assert back.metadata["channel_permutations"] == {"c1": list(range(8))}
    assert "channel_permutations" not in g.metadata


def test_channel_order():
    assert permute.channel_order([1.0, 3.0, 3.0, 0.0, 2.0]) == [1, 2, 4, 0, 3]
    rng = np.random.default_rng(0)
    for _ in range(20):
        imp = rng.integers(0, 4, int(rng.integers(1, 30)))  # many ties
        want = sorted(range(len(imp)), key=lambda i: (-imp[i], i))
        got = permute.channel_order(imp)
        assert got == want and all(type(i) is int for i in got)
    for bad in (np.zeros((2, 2)), [1.0, float("nan")]):
        with pytest.raises(ValueError):
            permute.channel_order(bad)


def test_most_important_channels_move_to_front(real_graphs):
    g = real_graphs["mcunet-5fps"]
    name = next(n.name for n in g.nodes if n.name.endswith("pointwise1"))
    w = g.node(name).params["weight"].astype(np.int64)
    imp = np.abs(w).reshape(w.shape[0], -1).sum(axis=1)
    pg = permute.permute_output_channels(g, name, permute.channel_order(imp))
    w2 = pg.node(name).params["weight"].astype(np.int64)
    imp2 = np.abs(w2).reshape(w2.shape[0], -1).sum(axis=1)
    assert np.all(np.diff(imp2) <= 0)
    k = max(1, int(np.floor(w.shape[0] * 0.25)))
    assert set(imp2[:k]) <= set(np.sort(imp)[::-1][:k])
