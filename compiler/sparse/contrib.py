"""Contribution analysis: how much accuracy each piece of a sparse update buys.

On the user's data and with exactly the device's arithmetic (the int8 reference training
step, :func:`compiler.autodiff.trainer.train_epochs`), train for a short while and measure held-out
accuracy for

- ``head``: the classifier alone (the baseline every gain is measured against);
- ``bias k``: the classifier plus the biases of the last ``k`` conv layers;
- ``weight L r``: the classifier and the best bias depth found above, plus the weights
  (first ``r`` of the output channels) of conv layer ``L``.

Bias gain = ``accuracy(bias k) - accuracy(head)``; weight gain = ``accuracy(weight L r) -
accuracy(best bias depth)``, i.e. what the weights add on top of the bias update. Gains
below ``Settings.min_gain`` points are treated as noise by the search (with 1000 test
samples one standard error of an accuracy is about 1 point). The plan search
(:mod:`compiler.sparse.search`) then adds gains up under the memory budget, as in the
MCUNetV3 paper (gains are treated as additive).

Speed (this is a tool people wait for):

- configurations whose memory alone exceeds the budget are never run (the compiler's
  memory model decides; if the 1/8 slice of a layer does not fit, no larger one does);
- every configuration trains only its live suffix: the frozen prefix's outputs are
  computed once per boundary, chaining from one boundary to the next (one forward pass
  over the data in total, the samples split over the worker processes);
- the memory model of the weight candidates is evaluated in the worker processes too
  (:func:`memory_models`: the same plans as one process would evaluate);
- configurations run in parallel worker processes (``jobs``), the longest first, or as
  tasks of a Dask distributed cluster (``cluster``, :mod:`compiler.sparse.cluster`);
- the training step's integer gradient products run through float64 BLAS
  (:mod:`compiler.autodiff.fast_grad`, exact: the same results as the reference's int64
  sums), and its small per-layer steps (depthwise convolutions both ways, requantization,
  masks, bias updates, residual adds) in C compiled for this machine
  (:mod:`compiler.autodiff.native_steps`, bit for bit the reference's);
- results are cached per (graph, data, settings, configuration) in a JSON file, so a
  re-run, or a run with a larger budget, only trains what is new.

Channel choice for ratio < 1: :func:`channel_importance` sums, over a few samples, the
magnitude of each output channel's weight gradient (int8 reference, dequantized); the
plan permutes the most important channels to the front (:mod:`compiler.sparse.permute`) before
the analysis, so the analysed slice is the one the device will train.

An mse model (``Settings.loss = "mse"``, an autoencoder learning to reconstruct its
input) is analysed the same way with its own score (:func:`metric`): the reconstruction
error of the held-out samples after training, as the *error reduction* in % of the
frozen model's error (higher is better, like an accuracy); its "head" is the model's own
last layer (there is no classifier to replace), and every configuration trains with the
mse rule on targets derived from the inputs (:func:`compiler.autodiff.trainer.mse_targets`).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.ir.graph import Graph
from compiler.sparse import plan as sparse


@dataclass(frozen=True)
class Settings:
    """How each configuration is trained and scored."""

    epochs: int = 1
    lr: float = 2e-3
    seed: int = 0
    ratios: tuple = ad.RATIOS
    bias_step: int = 2            # bias depths s, 2s, ... (plus the deepest that fits)
    min_gain: float = 1.0         # weight gains below this many points count as noise
    lr_body: float | None = None  # learning rate below the classifier (None: lr)
    loss: str = "softmax_xent"    # or "mse": scored by reconstruction error (see metric)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise sparse.PlanError(f"unknown loss {self.loss!r}: expected one of {', '.join(LOSSES)}")

    def key(self) -> str:
        d = {"epochs": self.epochs, "lr": self.lr, "seed": self.seed}
        if self.lr_body is not None:
            d["lr_body"] = self.lr_body
        if self.loss != "softmax_xent":
            d["loss"] = self.loss
        return json.dumps(d, sort_keys=True)

    def train_config(self):
        return tr.TrainConfig(lr=self.lr, lr_body=self.lr_body, seed=self.seed,
                              loss_range_mode="max")


LOSSES = ("softmax_xent", "mse")


@dataclass(frozen=True)
class Metric:
    """What a configuration's score is, for tables, printouts and plan files."""

    key: str         # plan-file key of a score ("accuracy" or "error_reduction")
    baseline: str    # the configuration every gain is measured against, in words
    base_key: str    # plan-file key of the baseline's score
    what: str        # one line: what the score measures

    def describe(self, n_test: int) -> str:
        return f"{self.what} on {n_test} held-out samples"


ACCURACY = Metric("accuracy", "head only", "head_only_accuracy", "accuracy in %")
ERROR_REDUCTION = Metric("error_reduction", "last layer only", "last_layer_only_error_reduction",
                         "reconstruction error reduction (in % of the frozen model's error)")


def metric(loss: str) -> Metric:
    """:data:`ACCURACY` for a classifier, :data:`ERROR_REDUCTION` for an mse model."""
    return ERROR_REDUCTION if loss == "mse" else ACCURACY


@dataclass
class Analysis:
    """Measured accuracies (in %). ``bias[k]``: head + biases of the last k layers;
    ``weight[(layer, r)]``: head + biases of the last ``bias_k`` layers + layer's weights
    at ratio r (so a weight gain is what the weights add on top of the bias update)."""

    base: float
    bias: dict[int, float]                          # k -> accuracy
    weight: dict[tuple[str, Fraction], float]       # (layer, ratio) -> accuracy
    bias_k: int = 0                                 # bias depth the weight runs train with
    memory: dict[str, int] = field(default_factory=dict)   # config label -> predicted RAM
    skipped: dict[str, str] = field(default_factory=dict)  # config label -> why not run
    seconds: float = 0.0
    cached: int = 0
    n_train: int = 0
    n_test: int = 0
    alternatives: dict = field(default_factory=dict)  # budget -> (plan, graph), same measurements
    measured: dict = field(default_factory=dict)      # whole-plan label -> accuracy
    runner: object = field(default=None, repr=False)  # runs more configurations (same cache)
    metric: Metric = ACCURACY                          # what the figures are
    frozen_error: float | None = None                  # mse: the untrained model's error

    def measure(self, plans: list) -> list[float]:
        """Accuracy of each whole plan, trained and scored exactly as the configurations
        were (same data, settings, cache)."""
        cfgs = [plan_config(p) for p in plans]
        acc = self.runner.run(cfgs, "whole plans")
        self.measured.update(acc)
        return [acc[label(c)] for c in cfgs]

    def bias_gain(self, k: int) -> float:
        return 0.0 if k == 0 else self.bias[k] - self.base

    def weight_gain(self, layer: str, ratio) -> float:
        ref = self.bias[self.bias_k] if self.bias_k else self.base
        return self.weight[(layer, Fraction(ratio))] - ref

    def to_dict(self) -> dict:
        first = ({"head_accuracy": self.base} if self.metric is ACCURACY else
                 {"score": self.metric.what, self.metric.base_key: self.base,
                  "frozen_mean_squared_error": self.frozen_error})
        return {**first, "n_train": self.n_train, "n_test": self.n_test,
                "seconds": round(self.seconds, 1), "cached_configs": self.cached,
                "weights_measured_with_bias_layers": self.bias_k,
                "bias": {str(k): round(v, 3) for k, v in sorted(self.bias.items())},
                "weight": {f"{n} {r}": round(v, 3) for (n, r), v in self.weight.items()},
                "whole_plans": {k: round(v, 3) for k, v in self.measured.items()},
                "skipped": self.skipped}


def label(cfg: tuple) -> str:
    if cfg[0] == "head":
        return "head"
    if cfg[0] == "bias":
        return f"bias {cfg[1]}"
    if cfg[0] == "plan":
        return f"plan bias {cfg[1]}" + "".join(f" {n} {r}" for n, r in cfg[2])
    return f"weight {cfg[1]} {cfg[2]} bias {cfg[3]}"


def plan_config(plan: sparse.SparsePlan) -> tuple:
    """A whole plan as a configuration: ("plan", k, ((layer, ratio), ...))."""
    return ("plan", plan.bias_layers, tuple(sorted((n, str(r)) for n, r in plan.weights.items())))


def config_plan(cfg: tuple) -> sparse.SparsePlan:
    """("head",) | ("bias", k) | ("weight", layer, ratio, k) | ("plan", k, ((layer, ratio),
    ...)) -> plan."""
    if cfg[0] == "head":
        return sparse.SparsePlan(0)
    if cfg[0] == "bias":
        return sparse.SparsePlan(int(cfg[1]))
    if cfg[0] == "plan":
        return sparse.SparsePlan(int(cfg[1]), {n: Fraction(r) for n, r in cfg[2]})
    return sparse.SparsePlan(int(cfg[3]), {cfg[1]: Fraction(cfg[2])})


# ----------------------------------------------------------------------------- candidates

def bias_candidates(g: Graph, mm: sparse.MemoryModel, budget: int, settings: Settings,
                    mem: dict, skipped: dict, jobs: int | None = 1) -> list[tuple]:
    """("head",) and the bias depths that fit ``budget`` (bytes of RAM). ``jobs``: processes
    that evaluate the memory model, ``jobs`` depths at a time (None: all cores); the
    result is the same for any number."""
    body = sparse.body_layers(g)
    cfgs: list[tuple] = [("head",)]
    mem["head"] = mm.total(config_plan(("head",)))
    if mem["head"] > budget:
        what = "the last layer" if settings.loss == "mse" else "the classifier"
        raise sparse.PlanError(f"even training only {what} needs {mem['head'] / 1024:.1f} KB "
                               f"of RAM, over the budget of {budget / 1024:.1f} KB")
    step = max(1, settings.bias_step)
    ks = list(range(step, len(body) + 1, step))
    if not ks or ks[-1] != len(body):
        ks.append(len(body))
    fits_k = 0
    batch = max(1, jobs or os.cpu_count() or 1)
    for i, k in enumerate(ks):
        if i % batch == 0:   # the next few depths at once: at most batch - 1 evaluated in vain
            memory_models(mm, [config_plan(("bias", j)) for j in ks[i:i + batch]], jobs)
        cfg = ("bias", k)
        m = mem[label(cfg)] = mm.total(config_plan(cfg))
        if m > budget:
            skipped[label(cfg)] = f"needs {m / 1024:.1f} KB"
            # deeper bias training only adds saved masks and gradient buffers: the deepest
            # depth that fits lies between the last that did and this one
            for j in range(k - 1, fits_k, -1):
                c = ("bias", j)
                if (mem.setdefault(label(c), mm.total(config_plan(c)))) <= budget:
                    cfgs.append(c)
                    break
            break
        cfgs.append(cfg)
        fits_k = k
    return cfgs


def weight_candidates(g: Graph, mm: sparse.MemoryModel, budget: int, settings: Settings, k: int,
                      mem: dict, skipped: dict, layers: list[str] | None = None,
                      jobs: int | None = 1) -> list[tuple]:
    """(layer, ratio) configurations on top of bias depth ``k`` that fit ``budget``.
    ``jobs``: processes that evaluate the memory model (None: all cores); the plans
    evaluated, and so the result, are the same for any number."""
    names = list(layers if layers is not None else sparse.body_layers(g))
    alive = names
    for r in sorted(Fraction(x) for x in settings.ratios):   # ratio by ratio, as below
        plans = [config_plan(("weight", n, str(r), k)) for n in alive]
        memory_models(mm, plans, jobs)
        alive = [n for n, p in zip(alive, plans) if mm.total(p) <= budget]
    cfgs = []
    for name in names:
        for r in sorted(Fraction(x) for x in settings.ratios):
            cfg = ("weight", name, str(r), k)
            m = mem[label(cfg)] = mm.total(config_plan(cfg))
            if m > budget:
                skipped[label(cfg)] = f"needs {m / 1024:.1f} KB"
                break  # a larger slice needs at least as much
            cfgs.append(cfg)
    return cfgs


def _memory_of(plan: sparse.SparsePlan) -> dict:
    return _W["mm"](plan)


def memory_models(mm: sparse.MemoryModel, plans: list, jobs: int | None = 1) -> None:
    """Evaluate ``mm`` on each of ``plans`` not evaluated yet, in ``jobs`` forked
    processes (None: all cores), into its memo: a later ``mm(plan)`` is a look-up. Each
    evaluation is independent of the others (the memory model is a pure function of the
    graph and the plan), so the memo holds what one process would have computed."""
    todo, seen = [], set()
    for p in plans:
        if p.key() not in mm.cache and p.key() not in seen:
            seen.add(p.key())
            todo.append(p)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    if jobs == 1:
        for p in todo:
            mm(p)
        return
    mm(todo[0])   # the kernel sizes the runtime defines, evaluated once before forking
    _W.update(mm=mm)
    pool = mp.get_context("fork").Pool(jobs)
    try:
        for p, m in zip(todo[1:], pool.imap(_memory_of, todo[1:], chunksize=1)):
            mm.cache[p.key()] = m
    finally:
        pool.terminate()
        pool.join()
        _W.clear()


# ----------------------------------------------------------------------------- channel choice

def channel_importance(g: Graph, layers: list[str], x, y, *, samples: int = 32,
                       settings: Settings = Settings(),
                       keep_head: bool = False) -> dict[str, np.ndarray]:
    """Per output channel, the summed magnitude of the dequantized weight gradient over
    ``samples`` training samples (reference arithmetic). A new classifier is first trained
    alone for one epoch over ``x`` (a new head starts at zero, and a zero head passes no
    gradient down; ``keep_head``: the model's own trained head is used as it is); then the
    gradients are taken without applying any update. An mse model (``settings.loss``)
    keeps its last layer and takes the gradients of the mse rule (``y`` is ignored)."""
    if not layers:
        return {}
    g = g.copy()
    h = sparse.head(g)
    mse = settings.loss == "mse"
    if not keep_head and not mse:
        head_prog = ad.build_program(g, {h: ad.LayerTrain(True, 1, True)})
        tr.train_epochs(g, head_prog,
                        tr.TrainState(tr.TrainConfig(lr=settings.lr, seed=settings.seed)),
                        prefix_features(g, head_prog, x), y, 1, order_seed=settings.seed)
    trainable = {n: ad.LayerTrain(True, 1, False) for n in layers}
    prog = ad.build_program(g, trainable, loss=settings.loss)
    n = min(samples, len(x))
    feats = tr.prefix_features(g, prog, x[:n])
    targets = tr.mse_targets(prog, x[:n]) if mse else None
    state = tr.TrainState(tr.TrainConfig(lr=0.0, seed=settings.seed))
    imp = {name: np.zeros(g.node(name).params["weight"].shape[0]) for name in layers}
    for i in range(n):
        tr.train_step(g, prog, state, label=0 if mse else int(y[i]), features=tr._slice(feats, i),
                      trace=True, target=targets[i] if mse else None)
        for name in layers:
            acc, scale = state.trace[f"A:{name}"]
            a = np.abs(acc.astype(np.float64)).reshape(acc.shape[0], -1).sum(1)
            imp[name] += a * float(scale)
    return imp


# ----------------------------------------------------------------------------- running

_W: dict = {}   # worker globals (inherited through fork)


def _over_sample_slices(part, n: int, jobs: int | None, **work) -> list | None:
    """``part((lo, hi))`` for slices of ``n`` samples (multiples of 64) in ``jobs`` forked
    processes (default: all cores), ``work`` reaching them as worker globals; None when
    there is only one slice (the caller then runs the whole in this process)."""
    parts = max(1, min(jobs or os.cpu_count() or 1, n // 64))
    if parts == 1:
        return None
    cuts = [64 * round(i * n / parts / 64) for i in range(parts)] + [n]
    _W.update(work)
    pool = mp.get_context("fork").Pool(parts, initializer=_single_thread)
    try:
        return pool.map(part, list(zip(cuts[:-1], cuts[1:])))
    finally:
        pool.terminate()
        pool.join()
        _W.clear()


def _prefix_part(bounds: tuple[int, int]) -> dict:
    lo, hi = bounds
    return tr.prefix_features(_W["graph"], _W["prog"], _W["x"][lo:hi])


def prefix_features(g: Graph, prog: ad.TrainingProgram, x, jobs: int | None = None) -> dict:
    """:func:`compiler.autodiff.trainer.prefix_features` of ``x``, the samples split over
    ``jobs`` forked processes (default: all cores): a sample's features do not depend on
    the other samples, so the result is the same array."""
    res = _over_sample_slices(_prefix_part, len(x), jobs, graph=g, prog=prog, x=x)
    if res is None:
        return tr.prefix_features(g, prog, x)
    return {t: np.concatenate([r[t] for r in res]) for t in res[0]}


def _chain(g: Graph, progs: list, x) -> list[dict]:
    """Frozen-prefix features of ``x`` at each program's boundary (``progs`` in graph
    order), each boundary computed from the one before where it can be."""
    out, known = [], None
    for p in progs:
        f = None
        if known is not None:
            try:
                f = tr.prefix_features(g, p, known=known)
            except ValueError:
                f = None
        if f is None:
            f = tr.prefix_features(g, p, x)
        out.append(f)
        known = f   # later boundaries are computed from this one on
    return out


def _chain_part(bounds: tuple[int, int]) -> list[dict]:
    lo, hi = bounds
    return _chain(_W["graph"], _W["progs"], _W["x"][lo:hi])


def boundary_features(g: Graph, progs: list, x, jobs: int | None = None) -> dict[tuple, dict]:
    """``{boundary: features}`` of each program of ``progs`` (sorted by boundary position,
    earliest first) for the samples ``x``, the samples split over ``jobs`` forked
    processes (default: all cores), each running the chain of boundaries for its slice:
    a sample's features do not depend on the other samples, so the arrays are the same."""
    res = (_over_sample_slices(_chain_part, len(x), jobs, graph=g, progs=progs, x=x)
           if progs else None)
    if res is None:
        res = [_chain(g, progs, x)]
    return {tuple(p.boundary): {t: np.concatenate([r[i][t] for r in res]) for t in res[0][i]}
            for i, p in enumerate(progs)}


def _boundary_pos(g: Graph, boundary: tuple) -> int:
    pos = {t: i for i, t in enumerate(g.inputs)}
    for i, n in enumerate(g.nodes):
        pos[n.output] = i + 1
    return min(pos[t] for t in boundary)


def _run(cfg: tuple) -> tuple[tuple, float, float]:
    return run_config(_W, cfg)


def run_config(state: dict, cfg: tuple) -> tuple[tuple, float, float]:
    """Train configuration ``cfg`` and score it: ``(cfg, score, seconds)``. ``state``: what
    every configuration shares (graph, frozen-prefix features per boundary, labels,
    settings; see :meth:`_Runner.run`); the graph is copied, ``state`` is not changed."""
    t0 = time.time()
    g: Graph = state["graph"].copy()
    s: Settings = state["settings"]
    prog = ad.build_program(g, config_plan(cfg).trainable(g), loss=s.loss)
    feats = state["features"][tuple(prog.boundary)]
    ntr = state["n_train"]
    ftrain = {t: v[:ntr] for t, v in feats.items()}
    ftest = {t: v[ntr:] for t, v in feats.items()}
    st = tr.TrainState(s.train_config())
    targets = state.get("targets")
    if s.loss == "mse":
        tr.train_epochs(g, prog, st, ftrain, None, s.epochs, order_seed=s.seed,
                        targets=targets[:ntr])
        err = tr.reconstruction_errors(tr.outputs(g, prog, features=ftest), targets[ntr:],
                                       prog.steps[0].s_y).mean()
        return cfg, error_reduction(err, state["frozen_error"]), time.time() - t0
    tr.train_epochs(g, prog, st, ftrain, state["y_train"], s.epochs, order_seed=s.seed)
    acc = tr.accuracy(g, prog, state["y_test"], features=ftest)
    return cfg, acc, time.time() - t0


def error_reduction(err: float, frozen: float) -> float:
    """The score of an mse configuration: how much of the frozen model's mean
    reconstruction error ``frozen`` training removed, in % (100: perfect; negative: worse)."""
    return float(100.0 * (1.0 - float(err) / float(frozen)))


def data_hash(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class _Runner:
    """Runs configurations with cached prefix features, worker processes and the cache."""

    def __init__(self, g, x_train, y_train, x_test, y_test, settings, jobs, cache, progress,
                 cluster=None):
        self.g, self.settings, self.jobs, self.progress = g, settings, jobs, progress
        self.cluster = cluster   # a distributed.Client (compiler.sparse.cluster) or None
        self.x_all = np.concatenate([x_train, x_test])
        self.y_train, self.y_test = np.asarray(y_train), np.asarray(y_test)
        key = hashlib.sha256((g.sha256() + data_hash(x_train, y_train, x_test, y_test)
                              + settings.key()).encode()).hexdigest()[:20]
        self.store: dict[str, float] = {}
        self.file = None
        if cache is not None:
            self.file = Path(cache) / f"contrib-{g.name}-{key}.json"
            if self.file.exists():
                self.store = json.loads(self.file.read_text())
        self.cached = 0
        self.targets = self.frozen_error = None
        if settings.loss == "mse":
            prog = ad.build_program(g, config_plan(("head",)).trainable(g), loss="mse")
            if prog.steps[0].target_of_input is None:
                raise sparse.PlanError(
                    f"{g.name}: --loss mse plans an autoencoder (its target is its own input), "
                    f"but its output has {prog.steps[0].n} values and its input "
                    f"{int(g.tensors[g.inputs[0]].numel)}")
            self.targets = tr.mse_targets(prog, self.x_all)
            ntr = len(x_train)
            self.frozen_error = float(tr.reconstruction_errors(
                tr.outputs(g, prog, x=self.x_all[ntr:]), self.targets[ntr:],
                prog.steps[0].s_y).mean())
            if not self.frozen_error > 0:
                raise sparse.PlanError(f"{g.name} reconstructs the {len(x_test)} held-out samples "
                                       "exactly already: there is no error for training to reduce")

    def run(self, cfgs: list[tuple], what: str) -> dict[str, float]:
        g = self.g
        todo = [c for c in cfgs if label(c) not in self.store]
        self.cached += len(cfgs) - len(todo)
        if todo:
            progs = {c: ad.build_program(g, config_plan(c).trainable(g), loss=self.settings.loss)
                     for c in todo}
            bounds = sorted({tuple(p.boundary) for p in progs.values()},
                            key=lambda b: _boundary_pos(g, b))
            by_bound = {tuple(p.boundary): p for p in progs.values()}
            bar = _bar(self.progress, len(bounds), f"{what}: prefix features")
            features = boundary_features(g, [by_bound[b] for b in bounds], self.x_all, self.jobs)
            bar.update(len(bounds))
            bar.close()
            state = dict(graph=g, features=features, n_train=len(self.y_train),
                         y_train=self.y_train, y_test=self.y_test, settings=self.settings,
                         targets=self.targets, frozen_error=self.frozen_error)
            # longest first: earlier boundaries (more live layers) train slower
            todo.sort(key=lambda c: _boundary_pos(g, tuple(progs[c].boundary)))
            bar = _bar(self.progress, len(todo), what)
            try:
                for cfg, acc, _sec in self._results(state, todo):
                    self.store[label(cfg)] = acc
                    self._save()
                    bar.update(1)
            finally:
                bar.close()
        return {label(c): self.store[label(c)] for c in cfgs}

    def _results(self, state: dict, todo: list[tuple]):
        """``(cfg, score, seconds)`` of each configuration of ``todo``, as they finish: on
        the cluster, in worker processes (forked: they inherit ``state``), or here."""
        if self.cluster is not None:
            from compiler.sparse import cluster
            yield from cluster.run(self.cluster, run_config, state, todo)
            return
        jobs = max(1, min(self.jobs or os.cpu_count() or 1, len(todo)))
        if jobs == 1:
            yield from (run_config(state, c) for c in todo)
            return
        _W.update(state)
        pool = mp.get_context("fork").Pool(jobs, initializer=_single_thread)
        try:
            yield from pool.imap_unordered(_run, todo)
        finally:
            pool.terminate()
            pool.join()
            _W.clear()

    def _save(self):
        if self.file is None:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.store, indent=0, sort_keys=True))
        tmp.replace(self.file)


def analyse(g: Graph, x_train, y_train, x_test, y_test, *, budget: int,
            settings: Settings = Settings(), mm: sparse.MemoryModel | None = None,
            layers: list[str] | None = None, jobs: int | None = None, cache: Path | None = None,
            progress: bool = True, cluster=None, bias_depth: int | None = None) -> Analysis:
    """Run the contribution analysis of ``g`` (a prepared, channel-permuted graph); see
    the module doc. ``x_*`` are int8 model inputs, ``y_*`` labels (ignored by an mse
    analysis: zeros of the same length will do). Two stages: the head
    and every bias depth that fits; then each (layer, ratio) that fits on top of the best
    bias depth (``bias_depth``: on top of this one instead; 0, or a depth the bias stage
    measures). ``cluster``: a :class:`distributed.Client` (:func:`compiler.sparse.cluster.connect`)
    to run the configurations on instead of ``jobs`` local processes."""
    t_start = time.time()
    mm = mm or sparse.MemoryModel(g)
    mem: dict[str, int] = {}
    skipped: dict[str, str] = {}
    runner = _Runner(g, x_train, y_train, x_test, y_test, settings, jobs, cache, progress,
                     cluster)
    bcfgs = bias_candidates(g, mm, budget, settings, mem, skipped, jobs if cluster is None else 1)
    depths = [0] + [c[1] for c in bcfgs if c[0] == "bias"]
    if bias_depth is not None and bias_depth not in depths:
        raise sparse.PlanError(f"bias depth {bias_depth} is not one the analysis measures: "
                               f"{', '.join(map(str, depths))} (in steps of --bias-step, those "
                               "that fit the budget)")
    acc = runner.run(bcfgs, "bias depths")
    base = acc["head"]
    bias = {c[1]: acc[label(c)] for c in bcfgs if c[0] == "bias"}
    best_k = max([0] + sorted(bias), key=lambda k: (round(bias.get(k, base) - base, 9), -k))
    if bias_depth is not None:
        best_k = bias_depth
    wcfgs = weight_candidates(g, mm, budget, settings, best_k, mem, skipped, layers,
                              jobs if cluster is None else 1)
    acc = runner.run(wcfgs, f"weights (+ biases of {best_k} layers)")
    weight = {(c[1], Fraction(c[2])): acc[label(c)] for c in wcfgs}
    return Analysis(base, bias, weight, best_k, mem, skipped, time.time() - t_start, runner.cached,
                    len(y_train), len(y_test), runner=runner, metric=metric(settings.loss),
                    frozen_error=runner.frozen_error)


def _single_thread():
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = "1"
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _bar(on: bool, total: int, desc: str):
    if not on:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="set" if desc.endswith("features") else "cfg",
                dynamic_ncols=True, leave=True)
