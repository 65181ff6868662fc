"""The three real int8 models: loading, MAC counts, predictions on bundled photos, and
agreement with an independent float simulation of the published arithmetic."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compiler.frontend import images, models
from compiler.ir.graph import accumulator_bound
from compiler.ref import executor as reference

pytestmark = pytest.mark.skipif(not (models.models_dir() / "mcunet-5fps.json").is_file(),
                                reason="real models not found (set TT_MODELS_DIR)")

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")

# Top-1 ImageNet class of each photo, obtained by running compiler.ref.executor on the
# images.photo_batch(PHOTOS) input (not hand-derived). chelsea is a cat: 285 = Egyptian
# cat (281-285 are the cat classes); coffee: 967 = espresso. A change here means the
# importer, the reference or the preprocessing changed behaviour.
PINNED = {
    "mcunet-5fps": [285, 967, 422, 668],
    "mbv2-w0.35": [285, 967, 528, 668],
    "proxyless-w0.3": [285, 967, 422, 682],
}

# Backbone MACs (classifier excluded) quoted for these models in the paper.
PAPER_MACS = {"mbv2-w0.35": 16.6e6, "proxyless-w0.3": 18.6e6, "mcunet-5fps": 22.5e6}


@pytest.fixture(scope="module")
def photos():
    return images.photo_batch(PHOTOS)


@pytest.fixture(scope="module", params=models.REAL_MODELS)
def real(request):
    return request.param, models.load(request.param)


def simulate_published(path, x_int8: np.ndarray) -> np.ndarray:
    """The README's arithmetic in float64, straight from the JSON + npz (NCHW, OIHW,
    torch conv), independent of the importer and of ref_ops: per-channel float rescale
    with round-half-even, float residual add, float mean + round for the pool."""
    spec = json.loads(path.read_text())
    z = np.load(path.with_suffix(".npz"))

    def arr(ref):
        return torch.from_numpy(z[ref["array"]].astype(np.float64))

    def conv(h, e):
        p = e["params"]
        w = arr(p["weight"])
        acc = F.conv2d(h - p["x_zero"], w, arr(p["bias"]), stride=e.get("stride", 1),
                       padding=(w.shape[2] - 1) // 2, groups=e.get("groups", 1))
        y = torch.round(acc * p["x_scale"] * arr(p["w_scales"]).view(1, -1, 1, 1) / p["y_scale"])
        return (y + p["y_zero"]).clamp(-128, 127)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _simulate(spec, conv, x_int8)
    finally:
        torch.set_num_threads(threads)


def _simulate(spec, conv, x_int8):
    h = torch.from_numpy(x_int8.astype(np.float64)).permute(0, 3, 1, 2)
    h = conv(h, spec["first_conv"])
    for b in spec["blocks"]:
        block_in = h
        for part in ("pointwise1", "depthwise", "pointwise2"):
            if b[part]:
                h, last = conv(h, b[part]), b[part]["params"]
        if b["residual"]:
            r = b["residual"]["params"]
            real = (block_in - r["x_zero"]) * r["x_scale"] + (h - last["y_zero"]) * last["y_scale"]
            h = (torch.round(real / r["y_scale"]) + r["y_zero"]).clamp(-128, 127)
    if spec["feature_mix"]:
        h = conv(h, spec["feature_mix"])
    h = torch.round(h.mean(dim=(2, 3), keepdim=True))
    return conv(h, spec["classifier"]).flatten(1).numpy()


def test_loads_as_int8_graph(real):
    name, g = real
    assert g.is_int8 and g.validate() is g
    inp = g.tensors[g.inputs[0]]
    assert inp.shape == (1, 128, 128, 3)
    assert inp.zero_point == 0 and inp.scale == pytest.approx(1 / 127.5)
    assert g.tensors[g.outputs[0]].shape == (1, 1000)
    assert [n.op for n in g.nodes][-3:] == ["global_avgpool", "flatten", "fully_connected"]
    for n in g.nodes:
        if n.op == "conv2d":
            w = n.params["weight"]
            assert n.attrs["pad"] == (w.shape[1] - 1) // 2
            assert np.all(np.abs(n.params["bias"].astype(np.int64)) + accumulator_bound(w) < 2 ** 31)


def test_weights_are_ohwi_copies_of_the_file(real):
    name, g = real
    z = np.load(models.resolve(name).with_suffix(".npz"))
    dw = g.node("blocks.1.depthwise")
    np.testing.assert_array_equal(dw.params["weight"], z["blocks/1/depthwise/params/weight"].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(g.node("classifier").params["weight"], z["classifier/params/weight"][:, :, 0, 0])


def test_mac_counts_match_the_paper(real):
    name, g = real
    backbone = g.macs() - sum(g.node_macs(n) for n in g.classifier_nodes())
    assert backbone == pytest.approx(PAPER_MACS[name], rel=0.01)


def test_pinned_photo_predictions(real, photos):
    name, g = real
    pred = reference.predict(g, photos)
    assert 281 <= pred[0] <= 285, "the cat photo must land on an ImageNet cat class"
    assert pred[1] in (967, 968, 504), "the coffee photo: espresso / cup / coffee mug"
    assert pred.tolist() == PINNED[name]


def test_agrees_with_float_simulation_of_published_arithmetic(real, photos):
    name, g = real
    rng = np.random.default_rng(1)
    noise = rng.integers(-128, 128, size=(1, 128, 128, 3)).astype(np.int8)
    x = np.concatenate([photos, noise])
    ours = reference.run(g, x).astype(np.int64)
    sim = simulate_published(models.resolve(name), x)
    diff = np.abs(ours - sim)
    # fixed-point multipliers vs float rescale: rounding differs by at most one LSB per layer
    assert (diff <= 1).mean() >= 0.99, f"{name}: max diff {diff.max()}"
    assert diff.max() <= 3
    for i in range(len(x)):
        near_top = set(np.flatnonzero(sim[i] >= sim[i].max() - 1))
        assert ours[i].argmax() in near_top, f"{name}: sample {i} top-1 differs beyond a 1-LSB tie"
