"""Accuracy cost of saving a trained conv's input at fewer bits (LayerTrain.x_bits).

For each of the last conv layers of a small case (mcunet-5fps with a new 10-class head
at 32x32 on scikit-learn digits), train head + that layer's weights + the biases of the
last layers with the int8 reference training step, once with the input saved at 8 bits
and once at each lower width, on the same data and order; print held-out accuracies.

    python bench/lowp_saves.py [--layers 6] [--train 600] [--test 400] [--epochs 2]
"""
from __future__ import annotations

import argparse

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import datasets as D
from compiler.frontend import models
from compiler.ref import inputs
from compiler.sparse import plan as sparse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mcunet-5fps")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 4, 2])
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--bias-layers", type=int, default=6)
    a = ap.parse_args()
    g0 = sparse.prepare(models.load(a.model), input_size=a.size, classes=10)
    ds = D.load("digits")
    x = inputs.model_inputs(g0, ds.x[:a.train + a.test])
    y = ds.y[:a.train + a.test]
    xtr, ytr, xte, yte = x[:a.train], y[:a.train], x[a.train:], y[a.train:]
    body = sparse.body_layers(g0)
    print(f"{a.model} {a.size}x{a.size}, digits {a.train} train / {a.test} test, {a.epochs} epochs, "
          f"lr {a.lr}; head + biases of the last {a.bias_layers} layers + the layer's weights")
    print(f"{'layer':28s} " + " ".join(f"{b:>2d}-bit" for b in a.bits) + "   saved input (8-bit)")
    for name in body[-a.layers:]:
        accs = []
        for b in a.bits:
            g = g0.copy()
            t = sparse.SparsePlan(a.bias_layers, {name: 1},
                                  meta={"save_bits": {name: b}} if b != 8 else {}).trainable(g)
            prog = ad.build_program(g, t)
            feats = tr.prefix_features(g, prog, xtr)
            st = tr.TrainState(tr.TrainConfig(lr=a.lr, seed=0, loss_range_mode="max"))
            tr.train_epochs(g, prog, st, feats, ytr, a.epochs, order_seed=0)
            accs.append(tr.accuracy(g, prog, yte, features=tr.prefix_features(g, prog, xte)))
        xin = g0.node(name).inputs[0]
        print(f"{name:28s} " + " ".join(f"{v:6.1f}" for v in accs)
              + f"   {g0.tensors[xin].numel} B", flush=True)


if __name__ == "__main__":
    main()
