"""The reference architectures (tests/zoo_models.py: MLPerf Tiny ResNet-8, MobileNetV1-0.25,
DS-CNN, the FC autoencoder, and the README's LeNet) through the whole toolchain, measured
on the emulated Cortex-M7 (qemu-mps2-an500, -icount shift=0: the timer counts
instructions, 40-instruction resolution).

Per model: parameters, MACs, RAM and flash of the inference firmware and of the training
firmware (the linked ELF's figures, as the build's memory report prints them),
instructions per inference and per training step, and what ``plan`` chose on a small data
set (scikit-learn digits resized to the model input; classes 0-2) at 256 KB and 128 KB:
the trained layers and ratios, predicted and whole-plan measured gain over head only.
The training firmware is the training-step app (``--app train-test``) of the 256 KB
plan (or of the last 3 layers when the plan is refused); a plan's RAM is the device
app's (serial streaming: input image, protocol state). Every run is checked bit for bit against the
numpy reference. Random weights (fixed seed), BatchNorm statistics from random data.

Writes bench/zoo.json and bench/zoo.md and prints the table.

    .venv/bin/python bench/zoo.py [--models resnet8 ...] [--train 40] [--test 60]
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

import zoo_models as Z  # noqa: E402
from test_model_forward import forward_both  # noqa: E402
from test_train_firmware import run_both  # noqa: E402

from compiler.autodiff import program as ad  # noqa: E402
from compiler.autodiff import trainer as tr  # noqa: E402
from compiler.frontend import datasets as D  # noqa: E402
from compiler.frontend import user_model as U  # noqa: E402
from compiler.frontend.torch_fx import import_module  # noqa: E402
from compiler.ref import inputs  # noqa: E402
from compiler.sparse import contrib, planner  # noqa: E402
from compiler.sparse import plan as sparse  # noqa: E402

BOARD = "qemu-mps2-an500"
BUDGETS = (256 * 1024, 128 * 1024)
CLASSES = 3
OUT_JSON = REPO / "bench" / "zoo.json"
OUT_MD = REPO / "bench" / "zoo.md"
BUILD = REPO / "build" / "bench" / "zoo"
MSE_PENDING = "needs the MSE loss (in progress)"


def import_zoo(name: str):
    factory, shape, _ = Z.ZOO[name]
    if len(shape) == 1:        # flat input (the autoencoder): calibrated on random features
        calib = np.random.default_rng(0).normal(0, 1, (128,) + shape).astype(np.float32)
        import torch
        return import_module(factory(), torch.zeros((1,) + shape), calibration=calib, name=name)
    c = shape[0]
    return U.import_model(f"{Z.__file__}:{name}", input_shape=shape, calibrate="digits",
                          samples=128, mean=[0.5] * c, std=[0.25] * c, name=name)


def plan_zoo(g, args):
    ds = D.load("digits")
    keep = ds.y < CLASSES
    st = contrib.Settings(lr=0.2, epochs=2, ratios=(Fraction(1, 4), Fraction(1)), bias_step=4)
    plan, an, gp = planner.make_plan(
        g, ds.x[keep], ds.y[keep], budget=BUDGETS[0], n_train=args.train, n_test=args.test,
        settings=st, jobs=args.jobs, cache=BUILD / "cache", generations=8, progress=False,
        remeasure=2, log=lambda *a: None, extra_budgets=BUDGETS[1:])
    rows = {}
    for b in BUDGETS:
        p, pg = (plan, gp) if b == BUDGETS[0] else an.alternatives.get(b, (None, None))
        if p is None:
            rows[str(b // 1024)] = {"plan": "none fits"}
            continue
        pr, m = p.meta["predicted"], p.meta.get("measured") or {}
        rows[str(b // 1024)] = {
            "plan": p.describe(pg), "bias_layers": p.bias_layers,
            "weights": {k: str(v) for k, v in p.weights.items()},
            "ram_bytes": pr["ram_bytes"], "predicted_gain": pr["gain_points"],
            "head_only_accuracy": pr["head_only_accuracy"],
            "measured_accuracy": m.get("accuracy"), "measured_gain": m.get("gain_points")}
    data = {"data": f"digits 0-{CLASSES - 1}, {args.train} train + {args.test} test samples",
            "budgets_kb": rows}
    return plan, gp, data


def bench_model(name: str, args) -> dict:
    t0 = time.time()
    g = import_zoo(name)
    out = {"what": Z.ZOO[name][2], "input": list(Z.ZOO[name][1]), "macs": int(g.macs()),
           "parameters": int(g.param_count())}
    rep = forward_both(g, BOARD, BUILD / f"{name}_infer", n=1)     # bit-exact, and measured
    from compiler.target import firmware
    x = np.random.default_rng(1).integers(-128, 128, (1,) + g.tensors[g.inputs[0]].shape[1:],
                                          dtype=np.int8)
    nout = int(np.prod(g.tensors[g.outputs[0]].shape))
    _, cycles, _ = firmware.infer(rep["elf"], x, nout, board=BOARD)
    out["inference"] = {"instructions": int(cycles[0]), "ram_bytes": rep["linked"]["ram"],
                        "flash_bytes": rep["linked"]["flash"], "arena_bytes": rep["arena_bytes"]}
    if len(Z.ZOO[name][1]) == 1:
        out["plan"] = out["training"] = MSE_PENDING
    else:
        try:
            plan, gp, out["plan"] = plan_zoo(g, args)
            trainable, what = plan.trainable(gp), plan.describe(gp)
        except sparse.PlanError as e:
            out["plan"] = f"refused: {str(e).splitlines()[0]}"
            gp = sparse.prepare(g, classes=CLASSES)      # measure a fixed set instead
            trainable, what = ad.last_layers(gp, 3), "last 3 layers (no plan)"
        ds = D.load("digits")
        idx = np.flatnonzero(ds.y < CLASSES)[-2:]
        xs = inputs.model_inputs(gp, ds.x[idx])
        trep, tcyc = run_both(copy.deepcopy(gp), trainable, tr.TrainConfig(lr=0.2, seed=1), BOARD,
                              BUILD / f"{name}_train", xs, ds.y[idx])
        out["training"] = {"trained": what, "instructions_per_step": int(max(tcyc)),
                           "ram_bytes": trep["linked"]["ram"], "flash_bytes": trep["linked"]["flash"],
                           "arena_bytes": trep["arena_bytes"],
                           "trained_param_bytes": trep.get("ram_param_bytes", 0)}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _kb(b) -> str:
    return f"{b / 1024:.1f}"


def table(res: dict) -> str:
    lines = ["| model | params | MACs | inference RAM / flash KB | instr / inference | "
             "training RAM / flash KB | instr / training step | plan at 256 KB | plan at 128 KB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        inf, trn = r["inference"], r.get("training", "-")
        if isinstance(trn, dict):
            tcol = f"{_kb(trn['ram_bytes'])} / {_kb(trn['flash_bytes'])}"
            p256 = r["plan"]["budgets_kb"].get("256", {}) if isinstance(r["plan"], dict) else {}
            what = "the 256 KB plan" if trn.get("trained") == p256.get("plan") else trn.get("trained")
            icol = f"{trn['instructions_per_step'] / 1e6:.2f}M ({what})"
        else:
            tcol, icol = trn, "-"
        plans = []
        for b in ("256", "128"):
            p = r["plan"]["budgets_kb"].get(b) if isinstance(r["plan"], dict) else None
            if p is None:
                plans.append(r["plan"] if isinstance(r["plan"], str) else "-")
            elif "ram_bytes" not in p:
                plans.append(p["plan"])
            else:
                meas = (f", measured {p['measured_gain']:+.1f}" if p.get("measured_gain") is not None
                        else "")
                plans.append(f"{p['plan']} ({_kb(p['ram_bytes'])} KB; head only "
                             f"{p['head_only_accuracy']:.1f}%, predicted {p['predicted_gain']:+.1f}"
                             f"{meas})")
        if isinstance(r["plan"], str) and r["plan"].startswith("refused"):
            plans = [r["plan"].split(":")[0] + ": at chance on this data", "-"]
        lines.append(f"| {name} | {r['parameters']:,} | {r['macs'] / 1e6:.2f}M | "
                     f"{_kb(inf['ram_bytes'])} / {_kb(inf['flash_bytes'])} | "
                     f"{inf['instructions'] / 1e6:.2f}M | {tcol} | {icol} | {plans[0]} | {plans[1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(Z.ZOO), choices=list(Z.ZOO))
    ap.add_argument("--train", type=int, default=40, help="plan: training samples per configuration")
    ap.add_argument("--test", type=int, default=60, help="plan: held-out samples per configuration")
    ap.add_argument("--jobs", type=int, default=2, help="plan: worker processes")
    a = ap.parse_args(argv)
    res = json.loads(OUT_JSON.read_text())["models"] if OUT_JSON.exists() else {}
    for name in a.models:
        print(f"{name} ...", flush=True)
        res[name] = bench_model(name, a)
        res = {k: res[k] for k in Z.ZOO if k in res}
        OUT_JSON.write_text(json.dumps({"board": BOARD, "models": res}, indent=1) + "\n")
    md = table(res)
    OUT_MD.write_text("# Reference architectures on qemu-mps2-an500\n\n"
                      "Made by `python bench/zoo.py` (random weights, fixed seed; plans on "
                      f"scikit-learn digits 0-{CLASSES - 1}).\n\n" + md + "\n")
    print(md)
    print(f"wrote {OUT_JSON.relative_to(REPO)}, {OUT_MD.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
