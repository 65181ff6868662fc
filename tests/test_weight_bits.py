"""4-bit weights of frozen layers (compiler/quantize/codebook.py, runtime_c tt_packed.h):
packing round trip, the exact (lossless) codebook of a layer with at most 16 values, the
int4 requantization, the C forward pass of packed models bit for bit with the reference
(a zoo model and a real model at a small input on the host build, a random model with
fused blocks on QEMU's DSP build), trained layers kept int8, bad --weight-bits values."""
import argparse
import copy

import numpy as np
import pytest
import specgen
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.cli import args as A
from compiler.codegen import generate
from compiler.frontend import models
from compiler.ir.errors import CompilerError
from compiler.ir.graph import GraphError
from compiler.memory import schedule as memplan
from compiler.quantize import codebook as CB
from compiler.ref import executor as reference
from compiler.sparse import heads
from compiler.target import weight_bits as WB


def test_pack_rows_round_trip_odd_rows():
    rng = np.random.default_rng(0)
    w = rng.integers(-7, 8, (5, 3, 3, 3)).astype(np.int8)        # K = 27: a padded nibble
    packed = CB.pack_rows(w, CB.IDENTITY)
    assert packed.dtype == np.uint8 and packed.size == 5 * 14
    assert packed[0] == (int(w.ravel()[0]) & 15) | ((int(w.ravel()[1]) & 15) << 4)
    np.testing.assert_array_equal(CB.unpack_rows(packed, CB.IDENTITY, w.shape), w)
    with pytest.raises(ValueError, match="not in the codebook"):
        CB.encode(np.array([9], np.int8), CB.IDENTITY)


def test_int4_requantization_per_channel():
    g = specgen.random_graph(4, hw=8, n_blocks=1)
    g4, rows = CB.pack_graph(g, 4)
    assert rows and all(r["kind"] == "int4" for r in rows)
    for r in rows:
        n8, n4 = g.node(r["layer"]), g4.node(r["layer"])
        w8, w4 = n8.params["weight"].astype(np.float64), n4.params["weight"]
        assert np.abs(w4).max() <= 7 and np.array_equal(n4.params["weight_codebook"], CB.IDENTITY)
        co = w8.shape[0]
        # the real weights move by at most half a step of the new per-channel scale
        real8 = w8.reshape(co, -1) * n8.params["w_scales"][:, None]
        real4 = w4.reshape(co, -1) * n4.params["w_scales"][:, None].astype(np.float64)
        assert np.all(np.abs(real8 - real4) <= n4.params["w_scales"][:, None] * (0.5 + 1e-6))
    assert CB.pack_graph(g, 8) == (g, [])


def _power_of_two(g, name):
    """g with layer ``name``'s weights on {0, +-1, +-2, ..., +-64} (15 values)."""
    g = copy.deepcopy(g)
    n = g.node(name)
    w = n.params["weight"].astype(np.int32)
    p = np.where(w == 0, 0, np.sign(w) * 2 ** np.clip(np.floor(np.log2(np.abs(w) + 1e-9)), 0, 6))
    n.params["weight"] = p.astype(np.int8)
    return g.validate()


def test_lossless_codebook_zoo_model_host(tmp_path):
    """The zoo's LeNet (5x5 convs: tt_conv2d_packed_s8; two fc) with power-of-two weights:
    exact codebooks, nothing requantized, and the packed firmware gives exactly the int8
    model's outputs."""
    import zoo_models as Z

    from compiler.frontend import user_model as U
    _, shape, _ = Z.ZOO["lenet"]
    g = U.import_model(f"{Z.__file__}:lenet", input_shape=shape, calibrate="digits",
                       samples=32, mean=[0.5], std=[0.25], name="lenet")
    names = [n.name for n in g.nodes if CB.packable(n)]
    for nm in names:
        g = _power_of_two(g, nm)
    g4, rows = CB.pack_graph(g, 4)
    assert [r["kind"] for r in rows] == ["exact"] * len(names) and len(names) == 4
    for nm in names:    # nothing requantized: same weights, scales, multipliers
        for k in ("weight", "bias", "mult", "shift", "w_scales"):
            np.testing.assert_array_equal(g4.node(nm).params[k], g.node(nm).params[k])
    x = np.random.default_rng(6).integers(-128, 128, (2,) + g.tensors[g.inputs[0]].shape[1:])
    want = np.asarray(reference.run(g, x.astype(np.int8)))       # the int8 model's outputs
    rep = forward_both(g4, "host", tmp_path, n=2, seed=6)        # firmware == reference(g4)
    np.testing.assert_array_equal(np.asarray(reference.run(g4, x.astype(np.int8))), want)
    assert rep["param_bytes"] < generate.flash_param_bytes(g)


def test_real_model_host_bit_exact(tmp_path):
    real = heads.with_input_size(models.load("mbv2-w0.35"), 40)
    # pointwise, depthwise, the first conv, the fc; several rows per kernel call for the
    # convs that run alone; smaller chunks / int8 where the arena peak needs it
    g4, _, rows = WB.apply(real, (4, None))
    assert len(rows) == sum(CB.packable(n) for n in real.nodes)
    assert max(n.attrs.get("weight_rows", 1) for n in g4.nodes) > 1
    assert memplan.plan(g4).arena_bytes <= memplan.plan(real).arena_bytes
    rep = forward_both(g4, "host", tmp_path, n=1)
    assert rep["param_bytes"] < 0.6 * generate.flash_param_bytes(real)


@pytest.mark.qemu
def test_packed_fused_blocks_qemu_bit_exact(tmp_path):
    g = specgen.random_graph(1, hw=13, n_blocks=3)
    g4, _ = CB.pack_graph(g, 4, layers=["blocks.*", "feature_mix", "classifier*"])  # not first_conv
    assert not CB.is_packed(g4.nodes[0]) and CB.is_packed(g4.nodes[-1])
    WB.set_rows(g4, "all")                  # the conv outside the blocks: several rows a call
    assert max(n.attrs.get("weight_rows", 1) for n in g4.nodes) > 1
    forward_both(g4, "qemu-mps2-an500", tmp_path, n=2, fuse="all")


def test_trained_layers_stay_int8(tmp_path):
    """Training firmware with a packed frozen part: trained layers and those on the
    gradient path stay int8, and the training steps are bit-exact on the host build."""
    g = specgen.random_graph(2, hw=8, n_blocks=2)
    prog = ad.build_program(g, ad.last_layers(g, 2))
    g4, prog4, rows = WB.apply(g, (4, None), prog)
    packed = {r["layer"] for r in rows}
    assert packed and not packed & WB.program_weight_nodes(prog4)
    assert set(prog4.trainable) == set(prog.trainable)
    x = np.random.default_rng(3).integers(-128, 128, (3,) + g.tensors[g.inputs[0]].shape[1:])
    run_both(g4, ad.last_layers(g4, 2), tr.TrainConfig(lr=0.01), "host", tmp_path,
             x.astype(np.int8), np.array([1, 4, 7]))
    # a packed layer the program reads is refused before any C is written
    bad, _ = CB.pack_graph(g, 4)
    with pytest.raises(CompilerError, match="4-bit weights"):
        generate.generate(bad, "/nonexistent-never-written", program=ad.build_program(
            bad, ad.last_layers(bad, 2)))


def test_bad_weight_bits():
    for text in ("5", "0", "16", "four", "4:", "8:blocks.*", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected 8, 4 or 4:LAYER_GLOB"):
            A.weight_bits(text)
    assert A.weight_bits("4:blocks.*, classifier") == (4, ("blocks.*", "classifier"))
    g = specgen.random_graph(2, hw=8, n_blocks=1)
    with pytest.raises(CompilerError, match="no layer of .* matches 'nope'"):
        CB.pack_graph(g, 4, layers=["nope"])
    g4, _ = CB.pack_graph(g, 4)
    n = next(n for n in g4.nodes if CB.is_packed(n))
    n.params["weight_codebook"] = n.params["weight_codebook"][:8]
    with pytest.raises(GraphError, match="weight_codebook must be int8"):
        g4.validate()
