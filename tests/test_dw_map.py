"""The depthwise whole-map layout (``tt_conv_params.dw_map``, tt_kernels.h): which layers
the memory plan gives it (only where the arena does not grow), what the generated code
says, and the Python side's constants against the C header. The kernels on that path are
compared with the reference in test_kernels_host.py / test_kernels_qemu.py
(``kernel_cases.dw_map_cases``); the three real models, whose small maps run it, bit for
bit on QEMU in test_model_forward.py; random models with small depthwise maps likewise."""
import re

import numpy as np
import pytest

from compiler.codegen import generate
from compiler.frontend import models
from compiler.kernels import forward as KF
from compiler.kernels.sizes import c_sizes
from compiler.memory import schedule as memplan

REAL = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]


def test_rows_and_scratch_match_the_c_header():
    ks = (3, 5, 7)
    assert c_sizes([f"TT_DW_MAP_ROWS({k})" for k in ks]) == [KF.dw_map_rows(k) for k in ks]
    # the scratch is never smaller than the ring's (calls that do not fit run the ring)
    for w, pad in [(4, 1), (8, 2), (8, 3), (16, 1), (64, 1)]:
        for k in ks:
            m, r = c_sizes([f"TT_DW_MAP_SCRATCH_BYTES({w}, {k}, {k}, {pad})",
                            f"TT_DWCONV_S8_SCRATCH_BYTES({w}, {k}, {k}, {pad})"])
            assert m >= r


@pytest.fixture(scope="module", params=REAL)
def planned(request):
    g = models.load(request.param)
    return request.param, g, memplan.plan(g, "auto")


def test_only_eligible_layers_and_the_arena_never_grows(planned, monkeypatch):
    name, g, p = planned
    mapped = [s for s in p.steps if s.dw_map]
    assert mapped, f"{name}: no small depthwise map got the whole-map layout"
    for s in mapped:
        n = s.nodes[0]
        assert s.kind == "conv" and KF.dw_map_ok(g, n)
        _, ho, _, _ = g.tensors[n.output].shape
        assert ho <= 8
        assert s.scratch == c_sizes([KF.dw_map_scratch_expr(g, n)])[0]
    # the plan without any speed option (no block tiling, no whole maps) bounds it
    bare = memplan._plan(g, "auto", frozenset(), None, None, {})
    assert p.arena_bytes <= bare.arena_bytes
    # and without the whole maps the arena is no smaller
    monkeypatch.setattr(KF, "dw_map_ok", lambda g, n: False)
    assert memplan.plan(g, "auto").arena_bytes >= p.arena_bytes
    memplan.verify(p)


def test_big_maps_and_clamped_layers_never_get_it():
    g = models.load("proxyless-w0.3")
    for n in g.nodes:
        if n.op != "conv2d" or n.conv_kind != "depthwise":
            continue
        _, ho, wo, _ = g.tensors[n.output].shape
        k = n.attrs["kernel"][0]
        s = n.attrs["stride"] if isinstance(n.attrs["stride"], int) else n.attrs["stride"][0]
        fits = (ho - 1) * s + k <= KF.dw_map_rows(k) and wo % 4 == 0
        assert KF.dw_map_ok(g, n) == fits
        clamped = dict(n.attrs, act_min=0)
        saved, n.attrs = n.attrs, clamped
        try:
            assert not KF.dw_map_ok(g, n)
        finally:
            n.attrs = saved


def test_generated_code_sets_it_exactly_for_the_planned_steps(planned, tmp_path):
    name, g, p = planned
    generate.generate(g, tmp_path, plan=p)
    src = (tmp_path / "tt_model.c").read_text()
    assert src.count(".dw_map = 1,") == sum(s.dw_map for s in p.steps)
    for s in p.steps:
        if s.dw_map:
            assert re.search(r"TT_DW_MAP_SCRATCH_BYTES\(", src)
            break


@pytest.mark.qemu
def test_training_step_with_whole_map_layers_bit_exact_on_qemu(tmp_path):
    """mcunet-5fps at 128x128 with its last block and a new head training: the trained
    depthwise layer (4x4, 576 channels; per-call plans, its bias changes) and frozen small
    maps run the whole-map layout; steps bit-exact with the reference trainer on QEMU."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.frontend import images
    from compiler.memory import training
    from compiler.sparse import heads
    from tests.test_train_firmware import run_both

    g = heads.replace_head(models.load("mcunet-5fps"), 10, init="seeded", seed=2)
    trainable = ad.last_blocks(g, 1)
    p = training.plan_training(g, ad.build_program(g, trainable))
    mapped = {s.name for s in p.steps if s.dw_map}
    assert any(n in trainable for n in mapped), "no trained layer in the whole-map layout"
    assert any(n not in trainable for n in mapped), "no frozen layer in the whole-map layout"
    photos = images.photo_batch(("chelsea", "coffee", "astronaut"), size=128)
    x = np.concatenate([photos, photos])
    run_both(g, trainable, tr.TrainConfig(lr=0.02, seed=4), "qemu-mps2-an500", tmp_path, x,
             np.arange(len(x)) % 10)
