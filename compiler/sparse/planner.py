"""Sparse-update planning end to end: model + data + budget -> plan JSON.

:func:`make_plan` = prepare the graph (new head for the data's classes, input size) ->
pick the candidate layers the budget allows -> choose and permute channels
(:func:`compiler.sparse.contrib.channel_importance`, :mod:`compiler.sparse.permute`) -> contribution
analysis (:func:`compiler.sparse.contrib.analyse`) -> plan search
(:func:`compiler.sparse.search.search`) -> :class:`compiler.sparse.plan.SparsePlan` with the
predicted memory and gain recorded. ``python -m compiler plan`` and ``bench/sparse.py``
call it.

With ``settings.loss == "mse"`` (an autoencoder that learns to reconstruct its input)
the data are flat feature vectors without labels, every score is the held-out
reconstruction error reduction (:data:`compiler.sparse.contrib.ERROR_REDUCTION`), the
model keeps its own last layer (``head_init: keep``: the "head only" baseline is the last
layer only) and the plan records ``training.loss = "mse"`` for ``build --plan``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from compiler.ir.graph import Graph
from compiler.ref import inputs
from compiler.sparse import contrib, permute
from compiler.sparse import plan as sparse
from compiler.sparse import search as plan_search


def split_data(images: np.ndarray, labels: np.ndarray, n_train: int, n_test: int, seed: int = 0):
    """Shuffle with ``seed`` and take ``n_train`` training then ``n_test`` held-out samples."""
    n = len(labels)
    if n_train + n_test > n:
        raise sparse.PlanError(f"the data has {n} samples, fewer than --train {n_train} + "
                               f"--test {n_test}")
    order = np.random.default_rng(seed).permutation(n)
    tr, te = order[:n_train], order[n_train:n_train + n_test]
    return images[tr], labels[tr], images[te], labels[te]


def choose_channels(g: Graph, layers: list[str], x, y, settings: contrib.Settings,
                    samples: int = 32, keep_head: bool = False) -> tuple[Graph, dict[str, list[int]]]:
    """Permute the output channels of every permutable layer in ``layers`` by importance
    (most important first). Returns the permuted graph and ``{layer: permutation}``."""
    ok = [n for n in layers if permute.permutable(g, n)[0]]
    imp = contrib.channel_importance(g, ok, x, y, samples=samples, settings=settings,
                                     keep_head=keep_head)
    perms = {}
    for n in ok:
        perm = permute.channel_order(imp[n])
        if list(perm) != list(range(len(perm))):
            g = permute.permute_output_channels(g, n, perm)
            perms[n] = [int(i) for i in perm]
    return g, perms


def needed_permutations(g: Graph, plan: sparse.SparsePlan, perms: dict) -> dict:
    """The permutations a plan relies on: of layers trained at a ratio below 1, and of
    the producers of depthwise layers trained at a ratio below 1 (their channels follow)."""
    sliced = {n for n, r in plan.weights.items() if r < 1}
    keep = {}
    for n, p in perms.items():
        followers = [c.name for c in g.consumers(g.node(n).output) if c.is_depthwise]
        if n in sliced or any(f in sliced for f in followers):
            keep[n] = p
    return keep


def pick_measured(candidates: list, measure, base: float,
                  key: str = "accuracy") -> tuple[int, list[dict]]:
    """Choose among whole candidate plans by measured accuracy.

    ``candidates``: ``[(plan, predicted gain)]`` best predicted first (the search's
    ranking); ``measure(plans) -> [accuracy %]`` trains and scores each whole plan;
    ``base``: the head-only accuracy gains are measured against. Returns the index of the
    plan with the highest measured accuracy (ties: the earlier, i.e. better predicted,
    one) and one row per candidate with predicted and measured gain side by side
    (``key``: the name of the measured score in the rows, the metric's key)."""
    if not candidates:
        raise ValueError("no candidate plans to measure")
    accs = list(measure([p for p, _ in candidates]))
    rows = [{"plan": p, "predicted_gain": round(float(pg), 2), key: round(float(a), 2),
             "measured_gain": round(float(a) - base, 2)}
            for (p, pg), a in zip(candidates, accs)]
    best = max(range(len(rows)), key=lambda i: (rows[i][key], -i))
    return best, rows


def distinct_candidates(ranked: list, n: int) -> list:
    """The first ``n`` distinct plans of a search ranking (``[(plan, gain)]``)."""
    out, seen = [], set()
    for p, gain in ranked:
        if p.key() not in seen:
            seen.add(p.key())
            out.append((p, gain))
        if len(out) == n:
            break
    return out


def make_plan(base: Graph, images: np.ndarray, labels: np.ndarray, *, budget: int,
              input_size: int | None = None, classes: int | None = None, n_train: int = 1000,
              n_test: int = 1000, settings: contrib.Settings = contrib.Settings(),
              stack: int = 8192, app: str = "device", jobs: int | None = None, cache: Path | None = None,
              generations: int = 30, progress: bool = True, log=print,
              meta: dict | None = None, keep_head: bool = False, remeasure: int = 4,
              history: int = 0, extra_budgets=(),
              cluster=None, bias_depth: int | None = None) -> tuple[sparse.SparsePlan, contrib.Analysis, Graph]:
    """See the module doc. ``images`` uint8 (N, H, W[, C]), ``labels`` 0..K-1. Returns the
    plan, the analysis and the graph the plan builds (prepared, permuted). Plans for the
    ``extra_budgets`` (smaller than ``budget``) are searched over the same measurements
    and left in ``analysis.alternatives[budget] = (plan, graph)``.

    ``keep_head``: the model is already trained for its task; its classifier (weights and
    classes) is kept and every configuration adapts it on ``images`` (e.g. samples of a
    shifted world), instead of a new zero head per configuration.
    ``remeasure``: the best ``remeasure`` distinct plans of the search are trained and
    scored as wholes, and the best measured one wins (gains are not quite additive).
    ``history``: the device app's history buffer (samples) the plan must leave room for.
    ``cluster``: a :class:`distributed.Client` (:func:`compiler.sparse.cluster.connect`)
    the analysis configurations run on (default: ``jobs`` local processes).
    ``bias_depth``: the weight configurations are measured on top of the biases of this
    many last layers (default: the best bias depth; :func:`compiler.sparse.contrib.analyse`).

    ``settings.loss == "mse"``: ``images`` are flat feature vectors (N, F) in the model's
    float input units (or its int8 inputs), ``labels`` are ignored (may be None); see the
    module doc."""
    if settings.loss == "mse":
        return _make_mse_plan(base, images, budget=budget, input_size=input_size,
                              classes=classes, n_train=n_train, n_test=n_test, settings=settings,
                              stack=stack, app=app, jobs=jobs, cache=cache,
                              generations=generations, progress=progress, log=log, meta=meta,
                              remeasure=remeasure, history=history, extra_budgets=extra_budgets,
                              cluster=cluster, bias_depth=bias_depth)
    labels = np.asarray(labels)
    own = int(base.tensors[base.outputs[0]].shape[-1])
    if keep_head:
        if classes is not None and int(classes) != own:
            raise sparse.PlanError(f"--keep-head keeps the model's {own} classes; --classes "
                                   f"{classes} contradicts it")
        if int(labels.max()) >= own:
            raise sparse.PlanError(f"--keep-head: the data has labels up to {int(labels.max())} "
                                   f"but the model's classifier has {own} classes")
        classes = own
    classes = int(classes or labels.max() + 1)
    if classes < 2:
        raise sparse.PlanError(f"a classifier needs at least 2 classes, got {classes}")
    if int(labels.max()) >= classes:
        raise sparse.PlanError(f"--classes {classes}: the data has labels up to "
                               f"{int(labels.max())}: expected at least {int(labels.max()) + 1} "
                               "classes (or leave --classes out)")
    g0 = sparse.prepare(base, input_size=input_size, classes=None if keep_head else classes)
    x = inputs.model_inputs(g0, images)
    x_tr, y_tr, x_te, y_te = split_data(x, labels, n_train, n_test, settings.seed)
    mm = sparse.MemoryModel(g0, stack, sparse.app_reserve(g0, app), history=history)
    log(f"{g0.name}: {len(sparse.body_layers(g0))} conv layers below the classifier, input "
        f"{g0.tensors[g0.inputs[0]].shape[1]}x{g0.tensors[g0.inputs[0]].shape[2]}, {classes} classes; "
        f"budget {budget / 1024:.1f} KB")
    g, perms, an = _analyse(g0, mm, x_tr, y_tr, x_te, y_te, budget, settings, keep_head,
                            jobs, cache, progress, log, cluster, bias_depth)
    check_learns(an, classes, len(y_te))
    _, h, w, _ = g.tensors[g.inputs[0]].shape
    base_meta = {"model": base.name, "model_sha256": base.sha256(),
                 # a square input's size (build --plan resizes a model to it); a non-square
                 # one (a 49x10 spectrogram) stays the model's own: None
                 "input_size": int(h) if h == w else None, "classes": classes,
                 "head_init": "keep" if keep_head else "zero", "app": app, **(meta or {}),
                 "training": {"lr": settings.lr, "lr_body": settings.lr_body,
                              "history": int(history)},
                 "analysis_settings": _analysis_settings(settings, n_train, n_test, remeasure)}
    return _plans(g0, g, perms, an, mm, budget, settings, generations, progress, base_meta,
                  remeasure, extra_budgets, log, jobs if cluster is None else 1)


def _make_mse_plan(base: Graph, features, *, budget, input_size, classes, n_train, n_test,
                   settings, stack, app, jobs, cache, generations, progress, log, meta,
                   remeasure, history, extra_budgets, cluster=None, bias_depth=None):
    """:func:`make_plan` for an mse model (see the module doc)."""
    if classes is not None:
        raise sparse.PlanError(f"--classes {classes}: an mse plan keeps the model's own output "
                               "layer (there is no classifier to replace); leave --classes out")
    if input_size is not None:
        raise sparse.PlanError(f"--size {input_size}: an mse plan takes the model's own flat "
                               "input; leave --size out")
    g0 = sparse.prepare(base)
    features = np.asarray(features)
    x = features if features.dtype == np.int8 else inputs.flat_samples(g0, features)
    x = x.reshape((len(x),) + tuple(g0.tensors[g0.inputs[0]].shape[1:]))
    zeros = np.zeros(len(x), np.int64)           # no labels: the target is the input
    x_tr, y_tr, x_te, y_te = split_data(x, zeros, n_train, n_test, settings.seed)
    mm = sparse.MemoryModel(g0, stack, sparse.app_reserve(g0, app), history=history, loss="mse")
    log(f"{g0.name}: {len(sparse.body_layers(g0))} layers below the last one, "
        f"{int(g0.tensors[g0.inputs[0]].numel)} input features reconstructed (mse); "
        f"budget {budget / 1024:.1f} KB")
    g, perms, an = _analyse(g0, mm, x_tr, y_tr, x_te, y_te, budget, settings, True,
                            jobs, cache, progress, log, cluster, bias_depth)
    check_reduces_error(an, settings.min_gain)
    base_meta = {"model": base.name, "model_sha256": base.sha256(), "head_init": "keep",
                 "app": app, **(meta or {}),
                 "training": {"loss": "mse", "lr": settings.lr, "lr_body": settings.lr_body,
                              "history": int(history)},
                 "analysis_settings": _analysis_settings(settings, n_train, n_test, remeasure)}
    return _plans(g0, g, perms, an, mm, budget, settings, generations, progress, base_meta,
                  remeasure, extra_budgets, log, jobs if cluster is None else 1)


def check_reduces_error(an: contrib.Analysis, min_gain: float) -> None:
    """The mse counterpart of :func:`check_learns`: refuse to plan when no configuration
    (not even the last layer alone) reduces the held-out reconstruction error by more
    than ``min_gain`` % of the frozen model's error (the search's noise level; at least
    any reduction at all)."""
    scores = [an.base, *an.bias.values(), *an.weight.values()]
    if max(scores) <= max(0.0, min_gain):
        raise sparse.PlanError(
            f"no configuration reduces the reconstruction error beyond noise: the best of "
            f"{len(scores)} removes {max(scores):.1f}% of the frozen model's error (mean "
            f"squared error {an.frozen_error:.4g} on {an.n_test} held-out samples; --min-gain "
            f"{min_gain:g}). Is the learning rate (--lr, --lr-body) too small or too large, or "
            "are the features in other units than the model was trained on?")


def _analyse(g0, mm, x_tr, y_tr, x_te, y_te, budget, settings, keep_head, jobs, cache,
             progress, log, cluster=None, bias_depth=None):
    """Candidate layers under the budget -> channel order -> contribution analysis."""
    mem: dict = {}
    skipped: dict = {}
    one = contrib.Settings(ratios=(min(settings.ratios),), loss=settings.loss)
    cfgs = contrib.weight_candidates(g0, mm, budget, one, 0, mem, skipped,
                                     jobs=jobs if cluster is None else 1)
    layers = [c[1] for c in cfgs]
    log(f"memory model: {len(layers)} of {len(sparse.body_layers(g0))} layers can train weights "
        f"within the budget (at ratio {min(settings.ratios)})")
    g, perms = choose_channels(g0, layers, x_tr, y_tr, settings, keep_head=keep_head)
    log(f"channel order: {len(perms)} layers permuted so the most important channels train first")
    an = contrib.analyse(g, x_tr, y_tr, x_te, y_te, budget=budget, settings=settings, mm=mm,
                         jobs=jobs, cache=cache, progress=progress, cluster=cluster,
                         bias_depth=bias_depth)
    return g, perms, an


def _analysis_settings(settings, n_train, n_test, remeasure) -> dict:
    d = {"epochs": settings.epochs, "lr": settings.lr, "lr_body": settings.lr_body,
         "seed": settings.seed, "n_train": n_train, "n_test": n_test,
         "min_gain": settings.min_gain, "remeasured_candidates": int(remeasure)}
    if settings.loss == "mse":
        d.update(loss="mse", score=contrib.ERROR_REDUCTION.what)
    return d


def _plans(g0, g, perms, an, mm, budget, settings, generations, progress, base_meta, remeasure,
           extra_budgets, log, jobs: int | None = 1):
    """The plans at ``extra_budgets`` (into ``an.alternatives``) and at ``budget``; ``jobs``:
    processes evaluating the memory model for the search."""
    for b in extra_budgets:
        try:
            an.alternatives[int(b)] = _finish(g0, g, perms, an, mm, int(b), settings, generations,
                                              False, base_meta, remeasure, jobs)
        except plan_search.NoPlanError as e:
            log(f"budget {b / 1024:.1f} KB: {e}")
    plan, gp = _finish(g0, g, perms, an, mm, budget, settings, generations, progress, base_meta,
                       remeasure, jobs)
    return plan, an, gp


def check_learns(an: contrib.Analysis, classes: int, n_test: int) -> None:
    """Refuse to plan when no configuration beats chance: every accuracy within two
    standard deviations (binomial, ``n_test`` samples) of 100/classes %."""
    accs = [an.base, *an.bias.values(), *an.weight.values()]
    chance = 100.0 / classes
    band = 2 * 100.0 * math.sqrt((chance / 100) * (1 - chance / 100) / max(1, n_test))
    if max(accs) <= chance + band:
        raise sparse.PlanError(
            f"every configuration stays at chance: the best of {len(accs)} reaches "
            f"{max(accs):.1f}% with {classes} classes (chance {chance:.1f}%, +-{band:.1f} on "
            f"{n_test} test samples). The features the classifier sees do not vary with the "
            "input: an untrained model, or input preprocessing that does not match how it "
            "was trained (python -m compiler import --mean/--std)? Check the model on your "
            "data first (python -m compiler run MODEL --image ...)")


def _finish(g0, g, perms, an, mm, budget, settings, generations, progress, base_meta,
            remeasure=0, jobs: int | None = 1):
    """Search at ``budget`` over the analysis; the plan (with the permutations it uses and
    its predictions) and the graph it builds. With ``remeasure``, the best few distinct
    plans of the search are measured as wholes and the best measured one is taken."""
    res = plan_search.search(an, mm, budget, generations=generations, seed=settings.seed,
                             min_gain=settings.min_gain, progress=progress, jobs=jobs)
    plan, gain, measured = res.plan, res.gain, None
    cands = distinct_candidates(res.ranked, remeasure) if remeasure and an.runner else []
    if len(cands) > 1 or (cands and cands[0][0].key() != sparse.SparsePlan(0).key()):
        key = an.metric.key
        best, rows = pick_measured(cands, an.measure, an.base, key)
        plan, gain = cands[best]
        plan = sparse.SparsePlan(plan.bias_layers, dict(plan.weights))
        measured = {key: rows[best][key], "gain_points": rows[best]["measured_gain"],
                    "candidates": [{**{k: v for k, v in r.items() if k != "plan"},
                                    "plan": r["plan"].describe(g), "ram_bytes": mm.total(r["plan"]),
                                    "chosen": i == best} for i, r in enumerate(rows)]}
    mem = mm(plan)
    plan.channels = needed_permutations(g, plan, perms)
    gp = g if plan.channels == perms else sparse.apply(g0, plan)
    plan.meta = {
        **base_meta, "budget_bytes": int(budget),
        "predicted": {"ram_bytes": mem["total"], "arena_bytes": mem["arena"],
                      "trained_param_bytes": mem["params"], "stack_bytes": mem["stack"],
                      "history_bytes": mem.get("history", 0),
                      "gain_points": round(gain, 2), an.metric.base_key: round(an.base, 2),
                      "memory_evaluations": res.evaluated},
        "plan": plan.describe(gp),
    }
    if measured is not None:
        plan.meta["measured"] = measured
    return plan, gp


def gains_table(an: contrib.Analysis, plan: sparse.SparsePlan | None = None, top: int = 15) -> str:
    """Readable summary of the analysis (best weight configurations, bias depths)."""
    m = an.metric
    score = "" if m is contrib.ACCURACY else f" {m.what}"
    lines = [f"{m.baseline}: {an.base:.1f}%{score} on {an.n_test} held-out samples "
             f"({an.n_train} training samples; {an.seconds:.0f} s, {an.cached} configs cached)"]
    if m is not contrib.ACCURACY:
        lines.append(f"(frozen model: mean squared error {an.frozen_error:.4g}; gains below are "
                     "points of error reduction)")
    if an.bias:
        lines.append(f"biases of the last k layers (gain over {m.baseline}): " + ", ".join(
            f"k={k}: {an.bias_gain(k):+.1f}" for k in sorted(an.bias)))
    rows = sorted(an.weight, key=lambda nr: -an.weight_gain(*nr))[:top]
    if rows:
        lines.append(f"best weight configurations (gain over {m.baseline.replace(' only', '')} + "
                     f"biases of the last {an.bias_k} "
                     f"layers; {len(an.weight)} measured; * = in the plan):")
        for n, r in rows:
            mark = " *" if plan is not None and plan.weights.get(n) == r else ""
            lines.append(f"  {n:<28} {str(r):>4}  {an.weight_gain(n, r):+6.1f}{mark}")
    return "\n".join(lines)
