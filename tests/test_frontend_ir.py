"""IR invariants: validation, provenance hash, printer."""
from __future__ import annotations

import numpy as np
import pytest

from compiler.cli.printer import format_graph, summary
from compiler.frontend import models
from compiler.ir.errors import GraphError
from compiler.ir.graph import INT8, Graph
from compiler.ir.qmath import quantize_multipliers


def tiny_int8_graph(weight=None) -> Graph:
    """input -> 3x3 conv -> add(input) -> pool -> flatten -> fc, hand-built."""
    g = Graph("tiny")
    g.add_input("x", (1, 4, 4, 2), INT8, 0.05, -3)
    w = weight if weight is not None else np.arange(-36, 36, dtype=np.int8).reshape(2, 3, 3, 4)[:, :, :, :2].copy()
    mult, shift = quantize_multipliers(np.full(2, 0.05 * 0.01 / 0.05))
    g.add_node("conv2d", "conv", ["x"], dict(kernel=(3, 3), stride=1, pad=1, groups=1, act_min=-128, act_max=127),
               dict(weight=w, bias=np.array([10, -10], np.int32), w_scales=np.full(2, 0.01, np.float32),
                    mult=mult, shift=shift), dtype=INT8, scale=0.05, zero_point=-3)
    from compiler.ref.ops import AddParams
    p = AddParams.from_scales(0.05, -3, 0.05, -3, 0.08, 1)
    g.add_node("add", "add", ["x", "conv"], dict(act_min=-128, act_max=127, **p.__dict__),
               dtype=INT8, scale=0.08, zero_point=1)
    g.add_node("global_avgpool", "pool", ["add"], dtype=INT8, scale=0.08, zero_point=1)
    g.add_node("flatten", "flat", ["pool"], dtype=INT8, scale=0.08, zero_point=1)
    m2, s2 = quantize_multipliers(np.full(3, 0.08 * 0.02 / 0.1))
    g.add_node("fully_connected", "fc", ["flat"], dict(act_min=-128, act_max=127),
               dict(weight=np.array([[1, -2], [3, 4], [-127, 127]], np.int8), bias=np.zeros(3, np.int32),
                    w_scales=np.full(3, 0.02, np.float32), mult=m2, shift=s2), dtype=INT8, scale=0.1, zero_point=0)
    g.outputs.append("fc")
    return g.validate()


def test_hash_ignores_names_but_not_weights_or_qparams():
    a, b = tiny_int8_graph(), tiny_int8_graph()
    assert a.sha256() == b.sha256()
    b.node("conv").name = "renamed"
    b.node("renamed").source = "elsewhere"
    b.metadata["note"] = "x"
    assert a.sha256() == b.sha256()
    c = tiny_int8_graph()
    c.node("conv").params["weight"][0, 0, 0, 0] += 1
    assert a.sha256() != c.sha256()
    d = tiny_int8_graph()
    d.tensors["fc"].zero_point = 1
    assert a.sha256() != d.sha256()


def test_validate_rejects_broken_graphs():
    g = tiny_int8_graph()
    g.node("conv").params["weight"][0, 0, 0, 0] = -128
    with pytest.raises(GraphError, match="-127, 127"):
        g.validate()
    g = tiny_int8_graph()
    g.node("pool").outputs = ["flat"]
    with pytest.raises(GraphError):
        g.validate()
    g = tiny_int8_graph()
    g.node("conv").params["bias"][0] = 2 ** 31 - 1
    with pytest.raises(GraphError, match="overflow"):
        g.validate()
    g = tiny_int8_graph()
    g.tensors["pool"].scale = 0.5
    with pytest.raises(GraphError, match="keep"):
        g.validate()
    with pytest.raises(GraphError, match="not defined"):
        tiny_int8_graph().add_node("flatten", "f2", ["nope"])


def test_printer_shows_shapes_qparams_and_totals():
    g = tiny_int8_graph()
    text = format_graph(g)
    for needle in ("conv2d", "1x4x4x2", "k3x3 s1 p1", "s=0.08 z=1", "global_avgpool", "1x3", "576"):
        assert needle in text, needle
    s = summary(g)
    assert s["macs"] == 4 * 4 * 2 * 3 * 3 * 2 + 6
    assert s["classifier_macs"] == 6 and s["params"] == 36 + 2 + 6 + 3


@pytest.mark.skipif(not (models.models_dir() / "mcunet-5fps.json").is_file(), reason="real models not found")
def test_real_model_hash_is_stable_across_loads():
    assert models.load("mcunet-5fps").sha256() == models.load("mcunet-5fps").sha256()
