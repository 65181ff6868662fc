"""Incremental Network Quantization (Zhou et al., ICLR 2017): power-of-two weights.

Each conv / fully-connected layer's weights end in ``{0, +-2^n}``, ``n`` in
``[n2, n1]``, so that post-training quantization gives int8 weights that are exactly
``0, +-2^k`` with a power-of-two scale (:func:`compiler.quantize.ptq.quantize_pow2_weights`),
which the int8 kernels run as they are and the 4-bit codebook storage packs losslessly.

The procedure, on a float IR graph (BatchNorm folded first: folding after INQ would
scale the powers of two away), in PyTorch (:mod:`compiler.quantize.torch_graph`):

1. per layer (or per output channel), from the pre-trained weights:
   ``n1 = floor(log2(4 * max|W| / 3))``, ``n2 = n1 + 1 - 2^(b-1) / 2`` for ``b`` bits,
   then ``n2 >= n1 - 6``: int8 holds +-2^0 .. +-2^6 (2^7 = 128 does not fit), so at most
   7 magnitudes. ``b = 5`` (the paper's 8 magnitudes) therefore keeps 7: 0 and
   +-2^0 .. +-2^6, 15 values, which 16 codes hold. The largest magnitude is kept and
   the smallest dropped (weights below 2^(n2-1) become 0). ``b`` = 2: {0, +-2^n1};
   3: two magnitudes; 4: four;
2. for each accumulated share (default 50%, 75%, 87.5%, 100%): among the weights not yet
   quantized, the largest in magnitude (per layer) are quantized to the nearest level
   (the paper's rule: ``beta * sgn(w)`` for ``(alpha + beta) / 2 <= |w| < 3 beta / 2``,
   ``alpha`` the next lower level, so [3/4, 3/2) x beta, and [1/2, 3/2) x 2^n2 for the
   smallest; 0 below; larger than 3/2 x 2^n1: 2^n1) and frozen (mask); the remaining
   float weights and every bias are retrained with SGD for ``epochs`` epochs;
3. after 100% the weights are all quantized; the biases (float, int32 on the device)
   still train for ``epochs`` epochs.

Seeded (data order, torch's generator); accuracy on held-out data after every step.
:func:`run_inq` returns the power-of-two float graph, the trained module (for
``torch.export``) and a JSON-able summary.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from compiler.ir.errors import CompilerError
from compiler.ir.graph import Graph

#: int8 weights of a power-of-two layer are 0 and +-2^0 .. +-2^MAX_EXP (2^7 = 128 > 127)
MAX_EXP = 6
DEFAULT_STEPS = (0.5, 0.75, 0.875, 1.0)
BITS = (2, 3, 4, 5)


@dataclass
class InqConfig:
    bits: int = 5
    steps: tuple = DEFAULT_STEPS
    epochs: int = 2
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch: int = 32
    seed: int = 0
    per_channel: bool = False

    def check(self) -> None:
        if self.bits not in BITS:
            raise CompilerError(f"--bits {self.bits}: expected one of {', '.join(map(str, BITS))} "
                                f"(int8 holds at most {MAX_EXP + 1} power-of-two magnitudes)")
        s = list(self.steps)
        if not s or any(not 0 < v <= 1 for v in s) or s != sorted(set(s)) or s[-1] != 1:
            raise CompilerError(f"--steps {','.join(f'{100 * v:g}' for v in s)}: expected "
                                "increasing percentages in (0, 100] ending with 100")
        if self.epochs < 0 or self.batch < 1 or not 0 < self.lr <= 1:
            raise CompilerError("epochs >= 0, batch >= 1 and a learning rate in (0, 1] expected")


def magnitudes(bits: int) -> int:
    """How many powers of two a layer gets: ``2^(b-1) / 2``, at most MAX_EXP + 1."""
    return min(2 ** (bits - 2), MAX_EXP + 1)


def levels(w: np.ndarray, bits: int, per_channel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(n1, n2) of a weight array (int arrays of one value, or one per output channel)."""
    a = np.abs(np.asarray(w, np.float64)).reshape(w.shape[0], -1)
    s = a.max(axis=1) if per_channel else np.array([a.max()])
    s = np.where(s > 0, s, 1.0)                      # an all-zero layer: any levels
    n1 = np.floor(np.log2(4.0 * s / 3.0)).astype(np.int64)
    return n1, n1 + 1 - magnitudes(bits)


def quantize_pow2(w: np.ndarray, n1, n2) -> np.ndarray:
    """The INQ rule: each weight to 0 or +-2^n with n in [n2, n1] (see the module doc);
    ``n1`` / ``n2``: one value, or one per output channel (axis 0)."""
    w = np.asarray(w, np.float64)
    shape = (-1,) + (1,) * (w.ndim - 1)
    n1 = np.broadcast_to(np.asarray(n1).reshape(shape if np.size(n1) > 1 else ()), w.shape)
    n2 = np.broadcast_to(np.asarray(n2).reshape(shape if np.size(n2) > 1 else ()), w.shape)
    a = np.abs(w)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(a * (4.0 / 3.0)))       # beta = 2^e: 3/4 beta <= |w| < 3/2 beta
    e = np.minimum(np.where(a > 0, e, -np.inf), n1)
    keep = (e >= n2) | (a >= np.ldexp(1.0, n2 - 1))   # the smallest level takes [1/2, 3/4)
    e = np.maximum(e, n2)
    q = np.where(keep & (a > 0), np.sign(w) * np.ldexp(1.0, np.where(np.isfinite(e), e, 0).astype(np.int64)), 0.0)
    return q.astype(np.float32)


def is_pow2(w: np.ndarray) -> bool:
    """True when every weight is 0 or +-2^n."""
    w = np.asarray(w, np.float32)
    m, _ = np.frexp(w)
    return bool(np.all(np.isfinite(w)) and np.all((w == 0) | (np.abs(m) == 0.5)))


@dataclass
class InqResult:
    graph: Graph                     # the folded float graph with power-of-two weights
    module: object                   # the torch module (GraphModule) with those weights
    summary: dict = field(default_factory=dict)


def _accuracy(module, x, y, batch: int = 256) -> float:
    import torch
    if x is None or len(x) == 0:
        return float("nan")
    module.eval()
    right = 0
    with torch.no_grad():
        for s in range(0, len(x), batch):
            out = module(torch.from_numpy(x[s:s + batch]))
            right += int((out.argmax(1).numpy() == y[s:s + batch]).sum())
    return 100.0 * right / len(x)


def run_inq(graph: Graph, x_train: np.ndarray, y_train: np.ndarray, x_val=None, y_val=None,
            config: InqConfig | None = None, progress: bool = True, say=None) -> InqResult:
    """INQ on a float graph (BatchNorm and activations are folded first). ``x_*``: float32
    model inputs in PyTorch's layout ((N, C, H, W) or (N, F)), ``y_*``: integer labels;
    the output of the graph is the logits of a classifier (softmax cross-entropy)."""
    import torch

    from compiler.quantize.ptq import fold_batchnorm, fuse_activations
    from compiler.quantize.torch_graph import GraphModule
    cfg = config or InqConfig()
    cfg.check()
    say = say or (lambda s: None)
    g = fuse_activations(fold_batchnorm(graph))
    module = GraphModule(g)
    classes = int(np.prod(g.tensors[g.outputs[0]].shape[1:]))
    x_train = np.ascontiguousarray(x_train, np.float32)
    y_train = np.asarray(y_train, np.int64)
    if len(x_train) == 0 or len(x_train) != len(y_train):
        raise CompilerError(f"INQ needs labelled training samples; got {len(x_train)} inputs "
                            f"and {len(y_train)} labels")
    if y_train.min() < 0 or y_train.max() >= classes:
        raise CompilerError(f"labels {int(y_train.min())}..{int(y_train.max())} do not fit the "
                            f"model's {classes} outputs")
    if x_val is not None:
        x_val = np.ascontiguousarray(x_val, np.float32)
        y_val = np.asarray(y_val, np.int64)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    layers = module.layers
    params = {name: m.weight for name, m in layers.items()}
    lv = {name: levels(p.detach().numpy(), cfg.bits, cfg.per_channel) for name, p in params.items()}
    frozen = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in params.items()}
    qval = {name: torch.zeros_like(p) for name, p in params.items()}
    summary = dict(method="INQ (Zhou et al. 2017)", config=asdict(cfg),
                   magnitudes=magnitudes(cfg.bits), layers={}, steps=[])
    summary["config"]["steps"] = [float(v) for v in cfg.steps]
    summary["float_accuracy"] = _accuracy(module, x_val, y_val) if x_val is not None else None
    say(f"float model: {summary['float_accuracy']:.2f}% on {len(x_val)} held-out samples"
        if x_val is not None else "float model (no held-out data)")
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    loss_fn = torch.nn.CrossEntropyLoss()
    for share in cfg.steps:
        # partition: the largest remaining weights of each layer join the quantized set
        with torch.no_grad():
            for name, p in params.items():
                fr = frozen[name].reshape(-1)
                want = int(round(share * fr.numel()))
                new = want - int(fr.sum())
                if new > 0:
                    a = p.detach().abs().reshape(-1).clone()
                    a[fr] = -1.0
                    idx = torch.topk(a, new).indices
                    fr[idx] = True
                n1, n2 = lv[name]
                q = torch.from_numpy(quantize_pow2(p.detach().numpy(), n1, n2))
                qval[name] = torch.where(frozen[name], q, torch.zeros_like(q))
                p.copy_(torch.where(frozen[name], qval[name], p))
        trainable = [m.bias for m in layers.values()] + [p for n, p in params.items()
                                                         if not bool(frozen[n].all())]
        opt = torch.optim.SGD(trainable, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
        loss_sum, batches = 0.0, 0
        total = cfg.epochs * math.ceil(len(x_train) / cfg.batch)
        bar = None
        if progress and total:
            from tqdm import tqdm
            bar = tqdm(total=total, desc=f"INQ {100 * share:g}%", unit="batch", leave=False)
        module.train()
        for _ in range(cfg.epochs):
            order = torch.from_numpy(rng.permutation(len(x_train)))
            for s in range(0, len(order), cfg.batch):
                b = order[s:s + cfg.batch]
                loss = loss_fn(module(xt[b]), yt[b])
                opt.zero_grad()
                loss.backward()
                for name, p in params.items():
                    if p.grad is not None:
                        p.grad[frozen[name]] = 0.0
                opt.step()
                with torch.no_grad():     # momentum / weight decay never move a frozen weight
                    for name, p in params.items():
                        p.copy_(torch.where(frozen[name], qval[name], p))
                loss_sum += float(loss.detach())
                batches += 1
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        acc = _accuracy(module, x_val, y_val) if x_val is not None else None
        summary["steps"].append(dict(share=float(share), epochs=cfg.epochs,
                                     quantized={n: int(f.sum()) for n, f in frozen.items()},
                                     mean_loss=round(loss_sum / batches, 5) if batches else None,
                                     accuracy=acc))
        say(f"INQ {100 * share:g}% quantized: "
            + (f"{acc:.2f}% held out" if acc is not None else "done")
            + (f", mean training loss {loss_sum / batches:.4f}" if batches else ""))
    out = module.to_graph(g)
    for name, p in params.items():
        w = next(n for n in out.nodes if n.name == name).params["weight"]
        n1, n2 = lv[name]
        if not is_pow2(w):
            raise CompilerError(f"INQ: layer {name!r} ended with weights that are not powers of "
                                "two (internal error)")
        nz = w[w != 0]
        exps = np.frexp(np.abs(nz))[1] - 1 if nz.size else np.array([], np.int64)
        summary["layers"][name] = dict(
            n1=[int(v) for v in n1] if cfg.per_channel else int(n1[0]),
            n2=[int(v) for v in n2] if cfg.per_channel else int(n2[0]),
            weights=int(w.size), zeros=int(w.size - nz.size),
            exponents=sorted({int(v) for v in exps}),
            values=int(np.unique(w).size))
    summary["accuracy"] = summary["steps"][-1]["accuracy"]
    return InqResult(out, module, summary)
