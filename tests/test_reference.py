"""compiler.ref.executor: delegation to ref_ops, batching, input checks."""
from __future__ import annotations

import numpy as np
import pytest
from test_frontend_ir import tiny_int8_graph

from compiler.frontend import images, models
from compiler.ir.errors import GraphError
from compiler.ref import executor as reference
from compiler.ref import ops as ref_ops

HAVE_MODELS = (models.models_dir() / "mcunet-5fps.json").is_file()


def test_reference_is_the_ref_ops_chain():
    g = tiny_int8_graph()
    x = np.random.default_rng(0).integers(-128, 128, (5, 4, 4, 2)).astype(np.int8)
    conv, add, fc = g.node("conv"), g.node("add"), g.node("fc")
    p = conv.params
    y = ref_ops.conv2d(x, p["weight"], p["bias"], -3, -3, p["mult"], p["shift"], stride=1, pad=1)
    y = ref_ops.add(x, y, add.add_params())
    y = ref_ops.global_avgpool(y).reshape(5, -1)
    p = fc.params
    y = ref_ops.fully_connected(y, p["weight"], p["bias"], 1, 0, p["mult"], p["shift"])
    np.testing.assert_array_equal(reference.run(g, x), y)
    everything = reference.run(g, x, return_all=True)
    assert set(everything) == set(g.tensors) and everything["fc"].dtype == np.int8


def test_input_checks():
    g = tiny_int8_graph()
    with pytest.raises(GraphError, match="int8"):
        reference.run(g, np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(GraphError, match="shape"):
        reference.run(g, np.zeros((1, 2, 4, 4), np.int8))


def test_quantize_input_rounds_half_to_even_and_saturates():
    g = tiny_int8_graph()
    g.tensors["x"].scale = 0.25  # zero point -3; exact binary halves below
    q = reference.quantize_input(g, np.array([0.125, 0.375]).reshape(1, 1, 1, 2))
    assert q.ravel().tolist() == [-3, -1]  # 0.5 -> 0, 1.5 -> 2 (ONNX QuantizeLinear)
    q = reference.quantize_input(g, np.array([100.0, -100.0]).reshape(1, 1, 1, 2))
    assert q.ravel().tolist() == [127, -128]


@pytest.mark.skipif(not HAVE_MODELS, reason="real models not found")
def test_batching_does_not_change_results():
    g = models.load("mcunet-5fps")
    rng = np.random.default_rng(0)
    x = np.concatenate([images.photo_batch(("chelsea", "coffee")),
                        rng.integers(-128, 128, (3, 128, 128, 3)).astype(np.int8)])
    whole = reference.run(g, x, batch_size=32)
    np.testing.assert_array_equal(reference.run(g, x, batch_size=2), whole)
    for i in range(len(x)):
        np.testing.assert_array_equal(reference.run(g, x[i:i + 1]), whole[i:i + 1])
    assert reference.predict(g, x).tolist() == whole.argmax(1).tolist()
