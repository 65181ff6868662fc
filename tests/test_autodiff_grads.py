"""Gradient correctness: the reference's int8 gradients (dequantized) against PyTorch
autograd on the float twin of the same model (compiler.sparse.float_twin), per layer type."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import specgen
import torch
import torch.nn as nn
import torch.nn.functional as F

from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.frontend.torch_fx import import_module
from compiler.ref import executor as reference
from compiler.sparse import heads
from compiler.sparse.float_twin import compare_gradients

HAVE_MODELS = (models.models_dir() / "mcunet-5fps.json").is_file()
LAYER_TYPES = {("conv kxk", "weight"), ("conv kxk", "input"), ("depthwise", "weight"),
               ("depthwise", "input"), ("pointwise", "weight"), ("pointwise", "input"),
               ("fc", "weight"), ("fc", "input"), ("add", "input"), ("avgpool", "input")}


def _bn(c, gen):
    b = nn.BatchNorm2d(c)
    with torch.no_grad():
        b.weight.uniform_(0.5, 1.5, generator=gen)
        b.bias.uniform_(-0.2, 0.2, generator=gen)
        b.running_mean.uniform_(-0.2, 0.2, generator=gen)
        b.running_var.uniform_(0.5, 1.5, generator=gen)
    return b


class Small(nn.Module):
    """Every layer type once: kxk conv (twice, the second with an input gradient),
    depthwise, pointwise, residual add, global average pool, linear."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        self.c1 = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), _bn(8, gen), nn.ReLU6())
        self.c2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), _bn(16, gen), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16), _bn(16, gen), nn.ReLU6())
        self.pw = nn.Sequential(nn.Conv2d(16, 16, 1), _bn(16, gen))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        y = self.c2(self.c1(x))
        y = y + self.pw(self.dw(y))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def _images(rng, n):
    z = torch.tensor(rng.normal(size=(n, 3, 4, 4)).astype(np.float32))
    smooth = F.interpolate(z, size=(12, 12), mode="bilinear").numpy()
    return (smooth + 0.3 * rng.normal(size=(n, 3, 12, 12))).astype(np.float32)


@pytest.fixture(scope="module")
def small_int8():
    rng = np.random.default_rng(0)
    g = import_module(Small().eval(), torch.zeros(1, 3, 12, 12), calibration=_images(rng, 64))
    x = reference.quantize_input(g, _images(rng, 8).transpose(0, 2, 3, 1))
    labels = rng.integers(0, 10, 8)
    return g, x, labels


def _collect(g, xs, labels, **kw):
    res = defaultdict(list)
    for x, label in zip(xs, labels):
        for r in compare_gradients(g, x[None], int(label), **kw):
            res[(r["type"], r["what"])].append(r["cos"])
    return res


def test_ptq_torch_model_gradients_match_autograd_at_8_bits(small_int8):
    g, x, labels = small_int8
    res = _collect(g, x, labels, config=tr.TrainConfig(lr=0.0, bits=8))
    assert LAYER_TYPES <= set(res)
    for key, cs in res.items():
        assert np.mean(cs) >= 0.95 and min(cs) >= 0.9, (key, np.round(cs, 4))


def test_fewer_bits_give_less_accurate_gradients(small_int8):
    g, x, labels = small_int8
    mean = {}
    for bits in (8, 3):
        res = _collect(g, x[:4], labels[:4], config=tr.TrainConfig(lr=0.0, bits=bits))
        mean[bits] = np.mean([np.mean(v) for v in res.values()])
    assert mean[8] > mean[3] and mean[8] > 0.98


@pytest.mark.parametrize("seeds", [range(0, 5), range(5, 10)])
def test_random_int8_graphs_backward_arithmetic(seeds):
    """Random int8 graphs (uncalibrated, heavily saturating: forward rounding flips many
    clamp decisions, so torch uses the int8 forward's masks here): kernel sizes 3/5/7,
    strides, residuals, expansion and feature-mix layers."""
    res = defaultdict(list)
    for seed in seeds:
        g = specgen.random_graph(seed, hw=12, n_blocks=3)
        rng = np.random.default_rng(seed)
        x = rng.integers(-128, 128, (1, 12, 12, 3)).astype(np.int8)
        for r in compare_gradients(g, x, int(rng.integers(10)), int8_masks=True):
            res[(r["type"], r["what"])].append(r["cos"])
    for key, cs in res.items():
        assert np.mean(cs) >= 0.95, (key, np.round(cs, 4))


@pytest.mark.skipif(not HAVE_MODELS, reason="real models not found")
def test_real_model_with_new_head_backward_arithmetic():
    """mcunet-5fps (48x48 input, new 10-class head), every layer trained, one digit-like
    input, torch with the int8 forward's masks (over 40 layers, forward rounding alone
    changes a few percent of the ReLU decisions, which compounds)."""
    g = heads.replace_head(heads.with_input_size(models.load("mcunet-5fps"), 48), 10, init="seeded")
    rng = np.random.default_rng(1)
    img = np.full((48, 48), -128, np.int16)
    img[12:36, 20:28] = 127                  # a bright bar ("1")
    img = np.clip(img + rng.integers(-20, 20, img.shape), -128, 127)
    x = np.repeat(img[..., None], 3, axis=2).astype(np.int8)[None]
    res = defaultdict(list)
    for r in compare_gradients(g, x, 1, int8_masks=True):
        res[(r["type"], r["what"])].append(r["cos"])
    assert {("depthwise", "weight"), ("pointwise", "input"), ("add", "input")} <= set(res)
    for key, cs in res.items():
        assert np.mean(cs) >= 0.98 and min(cs) >= 0.95, (key, np.round(cs, 3))
