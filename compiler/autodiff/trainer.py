"""Reference int8 training step: what the device computes, in numpy.

:func:`train_step` runs, for one labelled sample (batch 1):

1. the int8 forward pass (the operators of :mod:`compiler.ref.executor`), over the whole
   graph, or only over the nodes downstream of a trainable layer when the caller passes
   the frozen prefix's cached outputs (``features``, see :func:`prefix_features`: the
   prefix is frozen, so its outputs for a sample never change -- the result is
   identical, only faster);
2. the backward program of :func:`compiler.autodiff.program.build_program`, one
   :mod:`compiler.ref.grad_ops` call chain per step (:data:`EXECUTORS`), which updates
   the graph's int8 weights and int32 biases **in place** (the arrays in
   ``node.params`` are overwritten), exactly as the device does.

Configuration (:class:`TrainConfig`)
    ``lr`` (float32 on the device), gradient ``bits`` 2..8, ``range_mode`` (max, max/2,
    max/4, 3*max/4, mean*K; ``loss_range_mode`` optionally another one for the loss gradient), ``rounding``
    of weight updates (stochastic, nearest, truncate),
    ``qas`` (on: ``weight_factors``/``bias_factors``, i.e. SGD on the real weights;
    off: ``weight_factors_plain``/``bias_factors_plain``, SGD on the integers with the
    gradient w.r.t. the integer, the unscaled baseline), ``seed`` of the stochastic
    rounding streams; ``lr_body`` (optional) the learning rate of every layer below the
    classifier (the classifier keeps ``lr``; ``lr_body=0`` trains the classifier alone with
    any program, bit for bit as a head-only program does). Momentum is not implemented (planned: it needs per-weight state
    memory in the plan).

Randomness
    The weights of layer ``layer_id`` (see :func:`compiler.autodiff.program.layer_ids`) at step
    ``state.step`` use the stream ``update_key(seed, step, layer_id)``; ``state.step``
    starts at 0 and counts calls to :func:`train_step` (the device's step counter).

Scales
    After a step, ``state.scales[buffer]`` holds the float32 scale of every gradient
    buffer of the program (int8 gradients, int16 prescaled gradients, int32
    accumulators), ``state.ranges[buffer]`` the integer range R chosen by each
    ``requant_grad``, for comparison with the C side; ``trace=True`` also keeps every
    buffer's values as first written (an in-place masked buffer also under
    ``<buffer>#masked``), the weight-gradient accumulators (``A:<node>``, with the real
    scale ``s_gy * s_x``) and bias gradients (``gb:<node>``, scale ``s_gy``) in
    ``state.trace`` as (values, scale) pairs.

Speed
    With the frozen prefix cached (:func:`prefix_features`), a step of the mcunet-5fps
    new 10-class head costs well under 1 ms, last block + head (~150k trained weights,
    128x128 input) about 10 ms on one core (single-threaded BLAS; multi-threaded BLAS on
    these tiny matrices is several times slower). The transposed-convolution and
    weight-gradient products run through :mod:`compiler.autodiff.fast_grad` (float64 BLAS,
    exact: bit for bit the reference's int64 sums; :func:`reference_kernels` runs the
    reference's own). There is no separate batched
    simulation: batch-1 SGD is sequential, and the reference itself is fast enough.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from compiler.autodiff import fast_forward, fast_grad
from compiler.autodiff import program as ad
from compiler.ir.errors import GraphError
from compiler.ir.graph import Graph
from compiler.ref import grad_ops as rgo
from compiler.ref.executor import KERNELS


@dataclass(frozen=True)
class TrainConfig:
    """Runtime settings of the training step (the device's SET values).

    ``range_mode`` is the range function of every gradient; ``loss_range_mode``, when
    set, overrides it for the loss gradient (LossGrad). Recommended: "max" there with any
    other ``range_mode``: ``p - onehot`` sums to zero over the classes, and clipping the
    true class's ``p - 1`` (max/2, max/4, mean*K) breaks that, so all class weights drift
    together until every int8 logit saturates (with max/2 everywhere, last block + new
    MNIST head stayed at chance; with max/2 + loss max it learned). Default None (= the
    same as ``range_mode``, which is what the generated C step does today)."""

    lr: float = 0.01
    bits: int = 8
    range_mode: str = "max"
    rounding: str = "stochastic"
    qas: bool = True
    seed: int = 0
    loss_range_mode: str | None = None
    lr_body: float | None = None
    #: reference only (accuracy studies; the firmware refuses anything but 8): the bits of
    #: the weights the input gradients read (:func:`compiler.ref.grad_ops.lowp_weight`)
    backward_w_bits: int = 8

    def __post_init__(self):
        rgo.qmax_of(self.bits)
        rgo._parse_mode(self.range_mode)
        if self.loss_range_mode is not None:
            rgo._parse_mode(self.loss_range_mode)
        if self.rounding not in rgo.ROUNDINGS:
            raise ValueError(f"rounding must be one of {rgo.ROUNDINGS}, got {self.rounding!r}")
        if not (self.lr >= 0 and np.isfinite(self.lr)):
            raise ValueError(f"learning rate must be finite and >= 0, got {self.lr}")
        if self.lr_body is not None and not (self.lr_body >= 0 and np.isfinite(self.lr_body)):
            raise ValueError(f"lr_body must be finite and >= 0, got {self.lr_body}")
        if self.backward_w_bits != 8:
            rgo.lowp_weight(np.zeros(1, np.int8), self.backward_w_bits)

    def lr_of(self, node: str, heads: frozenset) -> float:
        """Learning rate of ``node``'s parameters: ``lr`` for the classifier (``heads``),
        ``lr_body`` (when set) for every layer below it."""
        return self.lr if self.lr_body is None or node in heads else self.lr_body


@dataclass
class TrainState:
    config: TrainConfig = field(default_factory=TrainConfig)
    step: int = 0
    loss: float = float("nan")
    scales: dict[str, np.float32] = field(default_factory=dict)
    ranges: dict[str, int] = field(default_factory=dict)
    trace: dict[str, tuple] | None = None


@dataclass
class StepResult:
    loss: float
    logits: np.ndarray      # int8 [C] of the forward pass (before the update)
    pred: int               # argmax of the logits (evaluate-then-train)


# ----------------------------------------------------------------------------- forward

def _run_nodes(g: Graph, names, env: dict) -> dict:
    for name in names:
        node = g.node(name) if isinstance(name, str) else name
        env[node.output] = _FWD[node.op](g, node, *[env[t] for t in node.inputs])
    return env


def live_nodes(g: Graph, program: ad.TrainingProgram) -> list:
    frozen = set(program.frozen_nodes)
    return [n for n in g.nodes if n.name not in frozen]


def chunk_rows(g: Graph, nodes) -> int:
    """Samples per chunk for a batched forward pass over ``nodes`` (:func:`prefix_features`,
    :func:`outputs`): the operators' temporaries (float and int64 copies of every
    activation) stay in the CPU caches only while a chunk's largest tensor is small, so
    a chunk holds at most :data:`CHUNK_ELEMENTS` values of it (at most
    :data:`CHUNK_MAX` samples; at least one). The results do not depend on it (every
    sample is computed on its own); only the time does: on mcunet-5fps at 128x128, through
    the whole network (one core), chunks of 256 samples took 35 ms per sample, of 64
    26 ms, of 4 (this rule) 14 ms."""
    largest = max([int(np.prod(g.tensors[n.output].shape[1:])) for n in nodes] or [1])
    return max(1, min(CHUNK_MAX, CHUNK_ELEMENTS // max(1, largest)))


#: see :func:`chunk_rows`
CHUNK_ELEMENTS = 1 << 19
CHUNK_MAX = 16


def prefix_features(g: Graph, program: ad.TrainingProgram, x=None, *, known: dict | None = None,
                    batch_size: int | None = None) -> dict:
    """Outputs of the frozen prefix at ``program.boundary`` for a batch of int8 inputs
    (N, H, W, C): ``{tensor: array (N, ...)}``, to pass as ``features`` to
    :func:`train_step` / :func:`predict`. Instead of ``x``, ``known`` may give frozen
    tensors computed already (e.g. a deeper program's boundary): only the frozen nodes
    after them run. ``batch_size``: samples per chunk (default :func:`chunk_rows`)."""
    if (x is None) == (known is None):
        raise ValueError("pass either x or known")
    start = {g.inputs[0]: np.asarray(x)} if known is None else dict(known)
    n = len(next(iter(start.values())))
    frozen = set(program.frozen_nodes)
    have = set(start)
    nodes = []
    for node in g.nodes:
        if node.name in frozen and node.output not in have and all(t in have for t in node.inputs):
            nodes.append(node)
            have.add(node.output)
    missing = set(program.boundary) - have
    if missing:
        raise ValueError(f"boundary tensor(s) {sorted(missing)} cannot be computed from {sorted(start)}")
    parts: dict[str, list] = {t: [] for t in program.boundary}
    batch_size = batch_size or chunk_rows(g, nodes)
    for s in range(0, n, batch_size):
        env = _run_nodes(g, nodes, {t: v[s:s + batch_size] for t, v in start.items()})
        for t in program.boundary:
            parts[t].append(env[t])
    return {t: np.concatenate(v) for t, v in parts.items()}


def _slice(features: dict, i) -> dict:
    return {t: v[i:i + 1] if isinstance(i, (int, np.integer)) else v[i] for t, v in features.items()}


def forward(g: Graph, program: ad.TrainingProgram, x=None, features: dict | None = None) -> dict:
    """int8 forward pass; returns every tensor (dict). Exactly one of ``x`` (int8 input
    batch) and ``features`` (cached boundary tensors) must be given."""
    if (x is None) == (features is None):
        raise ValueError("pass either x or features")
    if features is None:
        env = {g.inputs[0]: np.asarray(x)}
        frozen = set(program.frozen_nodes)
        _run_nodes(g, [n for n in g.nodes if n.name in frozen], env)
    else:
        env = dict(features)
    return _run_nodes(g, live_nodes(g, program), env)


def predict(g: Graph, program: ad.TrainingProgram, x=None, features: dict | None = None,
            batch_size: int | None = None) -> np.ndarray:
    """Top-1 class of each sample with the current weights."""
    return outputs(g, program, x, features, batch_size).argmax(1)


def accuracy(g: Graph, program: ad.TrainingProgram, labels, x=None, features=None) -> float:
    return float((predict(g, program, x, features) == np.asarray(labels)).mean() * 100)


def outputs(g: Graph, program: ad.TrainingProgram, x=None, features: dict | None = None,
            batch_size: int | None = None) -> np.ndarray:
    """The int8 output of each sample with the current weights, flattened: (N, size).
    ``batch_size``: samples per chunk (default :func:`chunk_rows`)."""
    if features is None:
        features = prefix_features(g, program, x)
    n = len(next(iter(features.values())))
    batch_size = batch_size or chunk_rows(g, live_nodes(g, program))
    out = []
    for s in range(0, n, batch_size):
        y = forward(g, program, features=_slice(features, slice(s, s + batch_size)))[program.logits]
        out.append(y.reshape(y.shape[0], -1))
    return np.concatenate(out)


def reconstruction_errors(y, targets, s_y: float) -> np.ndarray:
    """Per sample, the mean squared error of int8 outputs ``y`` (N, size) against int8
    ``targets`` in real units (output scale ``s_y``): the loss of the mse rule
    (:func:`compiler.ref.grad_ops.mse_grad`), in float64."""
    e = (np.asarray(y, np.float64) - np.asarray(targets, np.float64).reshape(len(y), -1)) * float(s_y)
    return (e * e).mean(axis=1)


def mse_targets(program: ad.TrainingProgram, x) -> np.ndarray:
    """:func:`mse_target_of` of every sample of ``x`` (N, ...): (N, size) int8."""
    x = np.asarray(x)
    return mse_target_of(program, x).reshape(len(x), -1)   # elementwise: one call for all


# ----------------------------------------------------------------------------- backward executors

#: the integer gradient kernels the executors call: :mod:`compiler.autodiff.fast_grad`
#: (the same results as :mod:`compiler.ref.grad_ops`, faster), or the reference itself
#: inside :func:`reference_kernels`
_GRAD = fast_grad
#: the forward operators (:mod:`compiler.autodiff.fast_forward`, or the reference's)
_FWD = fast_forward.KERNELS


@contextlib.contextmanager
def reference_kernels():
    """Train with the reference's own operators and gradient kernels
    (:mod:`compiler.ref.ops`, :mod:`compiler.ref.grad_ops`) instead of their faster twins:
    the oracle the fast path is checked against."""
    global _GRAD, _FWD
    old, _GRAD, _FWD = (_GRAD, _FWD), rgo, KERNELS
    try:
        yield
    finally:
        _GRAD, _FWD = old


class _Ctx:
    def __init__(self, g: Graph, state: TrainState, fwd: dict, label: int, trace: bool,
                 target=None):
        self.g = g
        self.target = target
        self.state = state
        self.cfg = state.config
        self.fwd = fwd
        self.label = int(label)
        self.heads = frozenset(n.name for n in g.classifier_nodes())
        self.vals: dict[str, np.ndarray] = {}
        self.scales: dict[str, np.float32] = {}
        self.ranges: dict[str, int] = {}
        self.trace = {} if trace else None
        self.loss = float("nan")

    def get(self, name: str):
        return self.vals[name], self.scales[name]

    def put(self, name: str, v: np.ndarray, scale) -> None:
        if self.trace is not None:
            # an in-place step (Mask) keeps the buffer's first value under its own name
            key = f"{name}#masked" if name in self.vals else name
            self.trace[key] = (v.copy(), np.float32(scale))
        self.vals[name] = v
        self.scales[name] = np.float32(scale)

    def params(self, node: str) -> dict:
        return self.g.node(node).params


def _x_loss(s: ad.LossGrad, c: _Ctx):
    logits = c.fwd[s.logits].reshape(-1)
    if not 0 <= c.label < s.n_classes:
        raise ValueError(f"label {c.label} out of range for {s.n_classes} classes")
    gf, c.loss = rgo.softmax_xent_grad(logits, s.s_y, s.z_y, c.label)
    q, sc = rgo.quantize_grad_f32(gf, c.cfg.bits, c.cfg.loss_range_mode or c.cfg.range_mode)
    c.put(s.out, q.reshape(1, -1), sc)


def _x_mse(s: ad.MseGrad, c: _Ctx):
    y = c.fwd[s.logits].reshape(-1)
    if c.target is None or np.asarray(c.target).size != s.n:
        raise ValueError(f"the mse loss needs an int8 target of {s.n} values (mse_target_of)")
    gf, c.loss = rgo.mse_grad(y, np.asarray(c.target, np.int8), s.s_y)
    q, sc = rgo.quantize_grad_f32(gf, c.cfg.bits, c.cfg.loss_range_mode or c.cfg.range_mode)
    c.put(s.out, q.reshape(1, -1), sc)


def mse_target_of(program: ad.TrainingProgram, x) -> np.ndarray:
    """The default target of an mse program for int8 input ``x``: the input requantized
    to the output's quantization (an autoencoder; :func:`compiler.ref.grad_ops.mse_target`)."""
    s = program.steps[0]
    if not isinstance(s, ad.MseGrad) or s.target_of_input is None:
        raise ValueError(f"{program.graph_name}: the program has no input-derived target "
                         f"(loss {program.loss!r}; an mse target of the input needs output size == input size)")
    z, m, sh = s.target_of_input
    return rgo.mse_target(np.asarray(x).reshape(-1), z, m, sh, s.z_y)


def _x_mask(s: ad.Mask, c: _Ctx):
    q, sc = c.get(s.grad)
    c.put(s.out, _GRAD.mask_grad(q, c.fwd[s.y], s.act_min, s.act_max), sc)


def _x_prescale(s: ad.Prescale, c: _Ctx):
    q, sc = c.get(s.grad)
    c.put(s.out, _GRAD.prescale(q, s.mult, s.shift), rgo.input_grad_scale(sc, s.w_smax))


def _x_conv_grad_input(s: ad.ConvGradInput, c: _Ctx):
    t, sc = c.get(s.src)
    w = c.params(s.node)["weight"]
    if c.cfg.backward_w_bits != 8:
        w = rgo.lowp_weight(w, c.cfg.backward_w_bits)
    acc = _GRAD.conv_grad_input(t, w, s.in_shape[:2], s.stride, s.pad, s.groups)
    c.put(s.out, acc, sc)


def _x_fc_grad_input(s: ad.FcGradInput, c: _Ctx):
    t, sc = c.get(s.src)
    w = c.params(s.node)["weight"]
    if c.cfg.backward_w_bits != 8:
        w = rgo.lowp_weight(w, c.cfg.backward_w_bits)
    c.put(s.out, _GRAD.fc_grad_input(t.reshape(t.shape[0], -1), w), sc)


def _x_requant(s: ad.RequantGrad, c: _Ctx):
    acc, sc = c.get(s.acc)
    q, sq, r = _GRAD.range_requant_grad(acc, sc, c.cfg.bits, c.cfg.range_mode)
    c.ranges[s.out] = r
    c.put(s.out, q, sq)


def _x_avgpool(s: ad.AvgpoolGrad, c: _Ctx):
    q, sc = c.get(s.grad)
    q2, s2 = rgo.avgpool_grad_input(q.reshape(q.shape[0], 1, 1, -1), sc, s.hw)
    c.put(s.out, q2, s2)


def _x_max_pool(s: ad.MaxPoolGrad, c: _Ctx):
    q, sc = c.get(s.grad)
    c.put(s.out, rgo.max_pool_grad_acc(q, c.fwd[s.x], s.kernel, s.stride, s.pad), sc)


def _x_avg_pool(s: ad.AvgPoolWindowGrad, c: _Ctx):
    q, sc = c.get(s.grad)
    c.put(s.out, rgo.avg_pool_grad_acc(q, s.in_shape[:2], s.kernel, s.stride, s.pad),
          rgo.avg_pool_grad_scale(sc, s.kernel))


def _x_add_split(s: ad.AddSplit, c: _Ctx):
    q, sc = c.get(s.grad)
    for o in s.outs:
        if o is not None:
            c.put(o, q, sc)


def _x_concat_split(s: ad.ConcatSplit, c: _Ctx):
    q, sc = c.get(s.grad)
    for o, c0, ch in zip(s.outs, s.offsets, s.channels):
        if o is not None:
            c.put(o, rgo.concat_grad_split(q, c0, ch), sc)


def _x_lut_grad(s: ad.LutGrad, c: _Ctx):
    q, sc = c.get(s.grad)
    c.put(s.out, rgo.lut_grad_acc(q, c.fwd[s.x], s.table), rgo.F32(rgo.F32(sc) * rgo.F32(s.d_scale)))


def _x_mul_grad(s: ad.MulGrad, c: _Ctx):
    q, sc = c.get(s.grad)
    other = c.fwd[s.other]
    acc = (rgo.mul_gate_grad_acc(q, other, s.other_zero) if isinstance(s, ad.MulGateGrad)
           else rgo.mul_grad_acc(q, other, s.other_zero))
    c.put(s.out, acc, rgo.F32(rgo.F32(sc) * rgo.F32(s.other_scale)))


def _x_reshape(s: ad.Reshape, c: _Ctx):
    q, sc = c.get(s.grad)
    c.put(s.out, q.reshape((q.shape[0],) + tuple(s.shape[1:])), sc)


def _x_accumulate(s: ad.AccumulateGrads, c: _Ctx):
    qa, sa = c.get(s.a)
    qb, sb = c.get(s.b)
    q, sc = rgo.add_grads(qa, sa, qb, sb, c.cfg.bits, c.cfg.range_mode)
    c.put(s.out, q, sc)


def _factors(c: _Ctx, node: str, s_gy, s_x, s_w, bias: bool):
    if c.cfg.qas:
        f = rgo.bias_factors if bias else rgo.weight_factors
    else:
        f = rgo.bias_factors_plain if bias else rgo.weight_factors_plain
    return f(c.cfg.lr_of(node, c.heads), s_gy, s_x, s_w)


def _apply_weight_update(s, c: _Ctx, acc: np.ndarray, s_gy) -> None:
    p = c.params(s.node)
    f = _factors(c, s.node, s_gy, s.x_scale, p["w_scales"][:s.k], bias=False)
    key = rgo.update_key(c.cfg.seed, c.state.step, s.layer_id)
    p["weight"][...] = rgo.sgd_update_weights(p["weight"], acc, f, c.cfg.rounding, key)
    if c.trace is not None:
        c.trace[f"A:{s.node}"] = (acc.copy(), np.float32(np.float32(s_gy) * np.float32(s.x_scale)))


def _x_conv_update(s: ad.ConvUpdate, c: _Ctx):
    q, sc = c.get(s.grad)
    x = c.fwd[s.x] if s.x_bits == 8 else rgo.lowp_activation(c.fwd[s.x], s.x_bits, s.x_lo)
    acc = _GRAD.conv_grad_weight_acc(q, x, s.x_zero, s.kernel, s.stride, s.pad, s.groups, s.k)
    _apply_weight_update(s, c, acc, sc)


def _x_fc_update(s: ad.FcUpdate, c: _Ctx):
    q, sc = c.get(s.grad)
    x = c.fwd[s.x]
    acc = _GRAD.fc_grad_weight_acc(q.reshape(q.shape[0], -1), x.reshape(x.shape[0], -1), s.x_zero, s.k)
    _apply_weight_update(s, c, acc, sc)


def _x_bias_update(s: ad.BiasUpdate, c: _Ctx):
    q, sc = c.get(s.grad)
    p = c.params(s.node)
    f = _factors(c, s.node, sc, s.x_scale, p["w_scales"][:s.k], bias=True)
    p["bias"][...], gb = _GRAD.bias_grad_update(p["bias"], q, s.k, f)
    if c.trace is not None:
        c.trace[f"gb:{s.node}"] = (gb.copy(), np.float32(sc))


#: step kind -> executor (one ref_grad_ops call chain each; see the step docstrings)
EXECUTORS: dict[type, Callable] = {
    ad.LossGrad: _x_loss,
    ad.MseGrad: _x_mse,
    ad.Mask: _x_mask,
    ad.Prescale: _x_prescale,
    ad.ConvGradInput: _x_conv_grad_input,
    ad.FcGradInput: _x_fc_grad_input,
    ad.RequantGrad: _x_requant,
    ad.AvgpoolGrad: _x_avgpool,
    ad.MaxPoolGrad: _x_max_pool,
    ad.AvgPoolWindowGrad: _x_avg_pool,
    ad.AddSplit: _x_add_split,
    ad.ConcatSplit: _x_concat_split,
    ad.LutGrad: _x_lut_grad,
    ad.MulGrad: _x_mul_grad,
    ad.MulGateGrad: _x_mul_grad,
    ad.Reshape: _x_reshape,
    ad.AccumulateGrads: _x_accumulate,
    ad.ConvUpdate: _x_conv_update,
    ad.FcUpdate: _x_fc_update,
    ad.BiasUpdate: _x_bias_update,
}


# ----------------------------------------------------------------------------- the step

def train_step(g: Graph, program: ad.TrainingProgram, state: TrainState, x=None, label: int = 0,
               *, features: dict | None = None, trace: bool = False, target=None) -> StepResult:
    """One training step on one sample (batch 1): forward, loss, backward program, in-place
    update of ``g``'s parameters; ``state.step`` advances by one.

    ``x``: int8 input (1, H, W, C) or (H, W, C); or ``features``: the frozen prefix's
    outputs for this sample (``{tensor: (1, ...)}``, e.g. a row of :func:`prefix_features`).
    ``target``: int8 target of an mse program (default with ``x``: :func:`mse_target_of`);
    ``label`` is then ignored."""
    if x is not None:
        x = np.asarray(x)
        want = g.tensors[g.inputs[0]].shape[1:]
        if x.shape == want:
            x = x[None]
        if x.dtype != np.int8 or x.shape != (1,) + tuple(want):
            raise GraphError(f"{g.name}: train_step takes one int8 sample of shape {want}, "
                             f"got {x.dtype} {x.shape}")
    elif features is not None:
        missing = set(program.boundary) - set(features)
        if missing:
            raise ValueError(f"features lack boundary tensor(s) {sorted(missing)}")
        if any(v.shape[0] != 1 for v in features.values()):
            raise ValueError("train_step trains on one sample: features need batch dimension 1")
    if program.loss == "mse" and target is None and x is not None:
        target = mse_target_of(program, x)
    fwd = forward(g, program, x=x, features=features)
    c = _Ctx(g, state, fwd, label, trace, target)
    for step in program.steps:
        EXECUTORS[type(step)](step, c)
    logits = fwd[program.logits].reshape(-1)
    state.loss = c.loss
    state.scales = c.scales
    state.ranges = c.ranges
    state.trace = c.trace
    state.step += 1
    return StepResult(c.loss, logits.copy(), int(logits.argmax()))


def train_epochs(g: Graph, program: ad.TrainingProgram, state: TrainState, features: dict,
                 labels, epochs: int = 1, order_seed: int = 0, progress=None,
                 targets=None) -> list[float]:
    """Batch-1 SGD over cached features for ``epochs`` epochs, shuffled per epoch with
    ``order_seed`` (the same permutation a float baseline can replay). Returns losses.
    An mse program takes ``targets`` (N, size) int8 (e.g. :func:`mse_targets` of the
    inputs); its ``labels`` are ignored (None: as many as there are targets)."""
    if program.loss == "mse" and targets is None:
        raise ValueError("an mse program trains on targets: pass targets (mse_targets of the inputs)")
    if labels is None:
        labels = np.zeros(len(targets), np.int64)
    labels = np.asarray(labels)
    n = len(labels)
    losses = []
    rng = np.random.default_rng(order_seed)
    for _ in range(epochs):
        for i in rng.permutation(n):
            r = train_step(g, program, state, label=int(labels[i]), features=_slice(features, int(i)),
                           target=None if targets is None else targets[int(i)])
            losses.append(r.loss)
            if progress is not None:
                progress.update(1)
    return losses


def epoch_orders(n: int, epochs: int, order_seed: int = 0) -> list[np.ndarray]:
    """The sample orders :func:`train_epochs` uses."""
    rng = np.random.default_rng(order_seed)
    return [rng.permutation(n) for _ in range(epochs)]
