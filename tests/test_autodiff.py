"""compiler.autodiff.program: rules table, program structure, dead-code elimination, sizes."""
from __future__ import annotations

import json
from fractions import Fraction

import pytest
import specgen

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.ir import ops
from compiler.ir.errors import UnsupportedOpError
from compiler.ref import grad_ops as rgo

HAVE_MODELS = (models.models_dir() / "mcunet-5fps.json").is_file()
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason="real models not found")


@pytest.fixture(scope="module")
def mcunet():
    return models.load("mcunet-5fps")


def residual_graph(seed0: int = 0):
    """A random model with at least one residual add, a pointwise1 and a feature mix."""
    for seed in range(seed0, seed0 + 200):
        g = specgen.random_graph(seed, hw=12, n_blocks=3)
        ops = [n.op for n in g.nodes]
        if "add" in ops and any(n.name.endswith("pointwise1") for n in g.nodes):
            return g
    raise AssertionError("no residual graph found")


def kinds(p):
    return [s.kind for s in p.steps]


# ----------------------------------------------------------------------------- rules table

# forward-only ops (training through them raises NoBackwardRuleError naming the op and
# the node); the squeeze-excite ops train since their backward rules (tests/test_op_se.py)
NO_RULE_YET: set[str] = set()


def test_every_int8_op_has_a_rule():
    for op in ops.INT8_OPS:
        assert (op in ad.RULES) != (op in NO_RULE_YET), op
    assert "clamp" in ad.RULES and "softmax_xent" in ad.RULES


def test_missing_rule_raises_naming_op_and_node(monkeypatch):
    g = residual_graph()
    add = next(n for n in g.nodes if n.op == "add")
    monkeypatch.delitem(ad.RULES, "add")
    with pytest.raises(ad.NoBackwardRuleError) as e:
        ad.build_program(g, ad.whole_model(g))
    assert isinstance(e.value, UnsupportedOpError)
    assert e.value.op == "add" and e.value.node == add.name
    assert "'add'" in str(e.value) and add.name in str(e.value) and "backward rule" in str(e.value)
    # an op without a rule in the frozen prefix is fine: it needs no backward
    p = ad.build_program(g, ad.last_layers(g, 1))
    assert {s.node for s in p.steps} == {"classifier"}


def test_missing_clamp_rule_raises(monkeypatch):
    g = residual_graph()
    monkeypatch.delitem(ad.RULES, "clamp")
    with pytest.raises(ad.NoBackwardRuleError, match="clamp"):
        ad.build_program(g, ad.last_layers(g, 2))


def test_step_kinds_map_onto_ref_grad_ops_and_executors():
    for kind, cls in ad.STEP_KINDS.items():
        assert cls.kind == kind and cls.__doc__
        assert cls in tr.EXECUTORS, kind
        if cls.ref != "(alias)":
            for fn in cls.ref.split(" + "):
                assert callable(getattr(rgo, fn)), fn


# ----------------------------------------------------------------------------- structure

def _check_dataflow(p: ad.TrainingProgram):
    """Every buffer is read after it is written; written once (Mask may write in place)."""
    written: set[str] = set()
    for s in p.steps:
        for r in s.reads():
            assert r in written, (s.index, s.kind, r)
        for w in s.writes():
            assert w in p.buffers, w
            if w in written:
                assert isinstance(s, ad.Mask) and s.out == s.grad == w
            written.add(w)
        for k in s.saved_keys():
            assert k in p.saved and s.index in p.saved[k].used_by
    assert [s.index for s in p.steps] == list(range(len(p.steps)))


def _check_order(g, p: ad.TrainingProgram):
    """Reverse topological order; a node's updates come right after its input gradient."""
    topo = {n.name: i for i, n in enumerate(g.nodes)}
    prev = len(topo)
    for s in p.steps:
        assert topo[s.node] <= prev, (s.index, s.node)
        prev = topo[s.node]
    for s in p.steps:
        if isinstance(s, (ad.ConvUpdate, ad.FcUpdate, ad.BiasUpdate)):
            later = [t for t in p.steps[s.index + 1:] if t.node == s.node]
            assert all(isinstance(t, (ad.ConvUpdate, ad.FcUpdate, ad.BiasUpdate)) for t in later)


@pytest.mark.parametrize("seed", range(6))
def test_whole_model_program_is_consistent(seed):
    g = specgen.random_graph(seed, hw=12, n_blocks=3)
    p = ad.build_program(g, ad.whole_model(g))
    _check_dataflow(p)
    _check_order(g, p)
    params = ad.param_nodes(g)
    assert {s.node for s in p.updates() if s.kind != "bias_update"} == {n.name for n in params}
    assert {s.node for s in p.updates() if s.kind == "bias_update"} == {n.name for n in params}
    # the graph input never gets a gradient: the first conv computes no input gradient
    assert not any(s.kind == "requant_grad" and s.tensor == g.inputs[0] for s in p.steps)
    assert p.frozen_nodes == [] and p.boundary == [g.inputs[0]]
    assert kinds(p)[0] == "loss_grad"
    json.dumps(p.to_dict())
    assert "loss_grad" in p.summary()


def test_residual_fork_accumulates_and_masks_out_of_place():
    g = residual_graph()
    p = ad.build_program(g, ad.whole_model(g))
    add = next(n for n in g.nodes if n.op == "add")
    skip, branch = add.inputs
    acc = [s for s in p.steps if isinstance(s, ad.AccumulateGrads) and s.tensor == skip]
    assert len(acc) == len(g.consumers(skip)) - 1 >= 1
    split = next(s for s in p.steps if isinstance(s, ad.AddSplit) and s.node == add.name)
    assert all(o is not None for o in split.outs)
    for o in split.outs:
        assert p.buffers[o].alias_of == split.grad and p.buffers[o].nbytes == 0
    # the branch's own clamp must not zero the shared buffer the skip path still reads
    m = next(s for s in p.steps if isinstance(s, ad.Mask) and s.node == g.producer(branch).name)
    assert m.grad == split.outs[1] and m.out != m.grad and m.out.endswith("#masked")
    assert p.grad_of[skip] == acc[-1].out
    _check_dataflow(p)


def test_logits_clamp_is_straight_through_unless_asked():
    g = specgen.random_graph(0)
    p = ad.build_program(g, ad.last_layers(g, 1))
    assert kinds(p) == ["loss_grad", "fc_update", "bias_update"]
    p = ad.build_program(g, ad.last_layers(g, 1), mask_logits=True)
    assert kinds(p) == ["loss_grad", "mask", "fc_update", "bias_update"]
    assert p.saved["classifier#mask"].covered  # logits are saved whole anyway


# ----------------------------------------------------------------------------- dead code

@needs_models
def test_head_only_program(mcunet):
    p = ad.build_program(mcunet, ad.last_blocks(mcunet, 0))
    assert {s.node for s in p.steps} == {"classifier"}
    assert kinds(p) == ["loss_grad", "fc_update", "bias_update"]
    assert p.boundary == ["flatten"] and len(p.frozen_nodes) == len(mcunet.nodes) - 1
    assert {k: s.kind for k, s in p.saved.items()} == {"classifier": "logits", "flatten": "activation"}
    fc = p.steps[1]
    assert (fc.k, fc.in_features, fc.acc_shape, fc.acc_bytes) == (1000, 160, (1000, 160), 640000)
    assert fc.layer_id == len(ad.param_nodes(mcunet)) - 1


@needs_models
def test_no_input_gradient_below_lowest_trained_layer(mcunet):
    p = ad.build_program(mcunet, ad.last_blocks(mcunet, 1))
    grads_for = {s.tensor for s in p.steps if isinstance(s, ad.RequantGrad)}
    assert "blocks.12.add" not in grads_for          # input of the lowest trained layer
    assert "blocks.13.pointwise1" in grads_for
    assert p.boundary == ["blocks.12.add"]
    assert {s.node for s in p.steps} <= {"classifier", "flatten", "pool"} | {
        f"blocks.13.{r}" for r in ("pointwise1", "depthwise", "pointwise2")}
    _check_dataflow(p)
    _check_order(mcunet, p)


@needs_models
def test_frozen_layer_between_trained_ones_only_propagates(mcunet):
    spec = {"blocks.13.pointwise1": ad.LayerTrain(), "classifier": ad.LayerTrain()}
    p = ad.build_program(mcunet, spec)
    upd = {(s.kind, s.node) for s in p.updates()}
    assert upd == {("conv_update", "blocks.13.pointwise1"), ("bias_update", "blocks.13.pointwise1"),
                   ("fc_update", "classifier"), ("bias_update", "classifier")}
    gi = {s.node for s in p.steps if s.kind in ("conv_grad_input", "fc_grad_input")}
    assert gi == {"classifier", "blocks.13.pointwise2", "blocks.13.depthwise"}
    # frozen pw2 / depthwise need no saved input activations, only their clamp masks
    acts = {s.tensor for s in p.saved.values() if s.kind == "activation"}
    assert acts == {"flatten", "blocks.12.add"}


@needs_models
@pytest.mark.parametrize("ratio,k", [(Fraction(1, 8), 72), (Fraction(1, 4), 144), ("1/2", 288), (1, 576)])
def test_channel_ratio_slices_first_k(mcunet, ratio, k):
    p = ad.build_program(mcunet, {"blocks.13.depthwise": ad.LayerTrain(True, Fraction(ratio), True)})
    u = next(s for s in p.steps if isinstance(s, ad.ConvUpdate))
    assert u.k == k and u.acc_shape == (k, 3, 3, 1) and u.param_bytes == 9 * k
    b = next(s for s in p.steps if isinstance(s, ad.BiasUpdate))
    assert b.k == 576


@needs_models
def test_bias_only_plan_has_no_weight_updates_and_saves_no_activations(mcunet):
    p = ad.build_program(mcunet, ad.bias_only(mcunet, 4))
    assert not any(isinstance(s, (ad.ConvUpdate, ad.FcUpdate)) for s in p.steps)
    assert [s.node for s in p.updates()] == [n.name for n in ad.param_nodes(mcunet)[-4:]][::-1]
    assert not any(s.kind == "activation" for s in p.saved.values())
    # input gradients stop at the lowest trained bias
    lowest = ad.param_nodes(mcunet)[-4]
    assert not any(isinstance(s, ad.RequantGrad) and s.tensor == lowest.inputs[0] for s in p.steps)


@needs_models
def test_saved_tensor_sizes(mcunet):
    p = ad.build_program(mcunet, ad.last_blocks(mcunet, 1))
    sv = p.saved
    assert sv["blocks.12.add"].nbytes == 4 * 4 * 96 and sv["blocks.12.add"].kind == "activation"
    m = sv["blocks.13.pointwise2#mask"]
    assert m.kind == "mask" and m.nbytes == (4 * 4 * 160 + 7) // 8 and not m.covered
    assert sv["blocks.13.depthwise#mask"].covered  # the activation is saved anyway
    assert p.saved_bytes() == sum(s.nbytes for s in sv.values() if not s.covered)
    buf = p.buffers["acc:blocks.13.depthwise@blocks.13.pointwise2"]
    assert (buf.dtype, buf.nbytes) == ("int32", 4 * 4 * 576 * 4)
    assert p.buffers["t:blocks.13.pointwise2"].nbytes == 4 * 4 * 160 * 2


# ----------------------------------------------------------------------------- trainable sets

@needs_models
def test_trainable_helpers(mcunet):
    lb = ad.last_blocks(mcunet, 1)
    assert set(lb) == {"blocks.13.pointwise1", "blocks.13.depthwise", "blocks.13.pointwise2", "classifier"}
    assert set(ad.last_blocks(mcunet, 0)) == {"classifier"}
    assert list(ad.last_layers(mcunet, 2)) == ["blocks.13.pointwise2", "classifier"]
    assert len(ad.whole_model(mcunet)) == len(ad.param_nodes(mcunet))
    ids = ad.layer_ids(mcunet)
    assert ids["first_conv"] == 0 and ids["classifier"] == len(ids) - 1
    assert ad.blocks(mcunet)[-1] == ("blocks.13", ["blocks.13.pointwise1", "blocks.13.depthwise",
                                                    "blocks.13.pointwise2"])


def test_trainable_set_errors():
    g = specgen.random_graph(1)
    with pytest.raises(ad.TrainPlanError, match="not in graph"):
        ad.build_program(g, {"nope": ad.LayerTrain()})
    with pytest.raises(ad.TrainPlanError, match="only conv2d"):
        ad.build_program(g, {"pool": ad.LayerTrain()})
    with pytest.raises(ad.TrainPlanError, match="ratio"):
        ad.LayerTrain(True, Fraction(1, 3))
    with pytest.raises(ad.TrainPlanError, match="trains nothing"):
        ad.build_program(g, {"classifier": (False, 1, False)})
    # tuples and dicts are accepted
    p = ad.build_program(g, {"classifier": (True, 0.5, False)})
    assert kinds(p) == ["loss_grad", "fc_update"] and p.steps[1].k == 5
    p = ad.build_program(g, {"classifier": {"train_weight": False}})
    assert kinds(p) == ["loss_grad", "bias_update"]


def test_channels_of_ratio():
    assert ad.channels_of_ratio(10, Fraction(1, 8)) == 1
    assert ad.channels_of_ratio(16, Fraction(1, 8)) == 2
    assert ad.channels_of_ratio(3, Fraction(1, 2)) == 1
    assert ad.channels_of_ratio(7, 1) == 7
