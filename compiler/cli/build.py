"""CLI commands that produce and run firmware: ``build`` and ``run``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from compiler.cli import args as A
from compiler.cli import model_arg
from compiler.cli.commands import MODEL_HELP, command, require_int8
from compiler.ir.errors import CompilerError

FUSE_HELP = ("row-by-row fusion of inverted-residual blocks: auto (fuse blocks whose "
             "expanded tensor exceeds 16 KB; default), all, or none")


def _board_names() -> str:
    from compiler.target import firmware
    return ", ".join(firmware.boards())


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--board", default="qemu-mps2-an500",
                   help=f"target board (one of: {_board_names()}; default qemu-mps2-an500)")
    p.add_argument("--out", type=A.writable_dir,
                   help="output folder (default build/<board>/<model>)")
    p.add_argument("--fuse", default="auto", choices=["auto", "all", "none"], help=FUSE_HELP)
    p.add_argument("--portable", action="store_true",
                   help="build the portable C kernels even where Arm DSP variants exist")
    p.add_argument("--profile", action="store_true",
                   help="time every step with the board's cycle counter")
    p.add_argument("--json", action="store_true", help="print report.json instead of the table")
    p.add_argument("--plan", help="a sparse-update plan (from `python -m compiler plan`): build "
                                  "the firmware that trains on the device as the plan says")
    p.add_argument("--app", choices=["device", "train-test"], default=None,
                   help="with --plan: device (serial streaming protocol, host/stream.py) or "
                        "train-test (bare training-step loop); default: the plan's app")
    p.add_argument("--any-model", action="store_true",
                   help="with --plan: build a plan that does not record the model it was made "
                        "for (no model_sha256) for MODEL anyway; without it such a plan is "
                        "refused")
    p.add_argument("--lr", type=A.learning_rate, default=None,
                   help="with --plan: the device's default learning rate of the classifier, "
                        "in (0, 1] (default: the plan's)")
    p.add_argument("--lr-body", type=A.fraction, default=None,
                   help="with --plan: the default learning rate of the layers below the "
                        "classifier, in [0, 1] (default: the plan's)")
    p.add_argument("--history", type=A.history, default=None,
                   help="with --plan and the device app: the largest history buffer the "
                        f"device accepts (SET history), in samples, 0..{A.HISTORY_MAX} (default: "
                        "the plan's training.history; for a plan that does not say, the "
                        "largest buffer up to 16 that fits in the plan's budget)")
    p.add_argument("--train", type=A.train_spec, default=None,
                   help="without a plan: build training firmware (the device app by default) "
                        "that trains this: last:K (weights and biases of the last K conv / fc "
                        "layers), bias or bias:K (biases of all / the last K), whole; joined "
                        "with + (e.g. bias+last:2)")
    p.add_argument("--loss", choices=["softmax_xent", "mse"], default=None,
                   help="with --train: the loss; softmax_xent (a classifier learning from "
                        "labels, default) or mse (an autoencoder learning to reconstruct its "
                        "unlabelled input; its output size must equal its input size)")
    p.add_argument("--no-checkpoint", action="store_true",
                   help="with --plan and the device app: no flash checkpoints (SAVE, RESTORE, "
                        "autosave, checkpoint upload; by default what the board learns is saved "
                        "to two flash slots and restored at boot)")
    p.add_argument("--two-pass", choices=["fit", "auto", "on", "off"], default=None,
                   help="training firmware: input gradients computed twice, band by band, "
                        "instead of holding their int32 tensor (less RAM, more instructions). "
                        "fit (default): only when the build would not fit the board or the "
                        "plan's budget otherwise, then where the tensor sets the peak; auto: "
                        "where it sets the peak; on: everywhere; off: never")
    p.add_argument("--weight-bits", type=A.weight_bits, default=None,
                   help=WEIGHT_BITS_HELP)
    model_arg.add_import_options(p)


WEIGHT_BITS_HELP = ("weights of the frozen layers in flash: 8 (default) or 4 (two per byte, "
                    "a 16-value codebook per layer: the layer's own values when it has at most "
                    "16, else per-channel int4 requantization); 4:GLOB[,GLOB...] packs only "
                    "the frozen layers whose names match (e.g. 4:blocks.*); trained layers and "
                    "those the backward pass reads stay int8")


def _default_out(board: str, model: str) -> Path:
    """build/<board>/<model name> (as `make build` / `make flash` use; mbv2-w0.35 keeps its
    '.35', a .json/.onnx path gives its file name without the suffix)."""
    from compiler.frontend.models import name_of
    return Path("build") / board / name_of(model)


@command("build", help="compile a model into firmware for a board",
         description="Quantized model -> memory plan -> generated C (templates/) + runtime "
                     "kernels -> firmware.elf for the board, with report.json. Prints the "
                     "per-layer memory table (peak marked) and the RAM/flash use of the linked "
                     "firmware against the board budget; an over-budget plan fails with the table.",
         arguments=_build_args)
def cmd_build(args: argparse.Namespace) -> int:
    from compiler import api
    from compiler.target import firmware
    firmware.board_info(args.board)  # clear error on a wrong board, before any work
    out = Path(args.out) if args.out else _default_out(args.board, args.model)
    A.check_writable_dir(out)
    if args.plan and (args.train or args.loss):
        raise CompilerError("--train and --loss build training firmware without a plan; a plan "
                            "says what trains (and its training.loss): give one or the other")
    if args.loss and not args.train:
        raise CompilerError("--loss applies to training firmware: give --train (e.g. --train last:2)")
    if args.train:
        from compiler.target import weight_bits
        g = model_arg.load(args.model, args)
        require_int8(g, args.model, "build")
        kw = _train_kwargs(g, args)
        g, kw["program"], rows = weight_bits.apply(g, args.weight_bits, kw["program"],
                                                   args.fuse)
        _say_weight_bits(args, rows)
        rep = firmware.build(g, args.board, out, fuse=args.fuse, profile=args.profile,
                             portable=args.portable, quiet=args.json, two_pass=args.two_pass,
                             **kw)
        rep["weights_4bit"] = rows
        return _print_built(args, rep, out)
    api.check_plan_options(args.plan, app=args.app, lr=args.lr, lr_body=args.lr_body,
                           history=args.history, any_model=args.any_model,
                           checkpoint=not args.no_checkpoint)
    g = model_arg.load(args.model, args)
    if not args.plan:
        require_int8(g, args.model, "build")
    _, rep = api.build(g, args.board, out, plan=args.plan, fuse=args.fuse, profile=args.profile,
                       portable=args.portable, app=args.app, lr=args.lr, lr_body=args.lr_body,
                       history=args.history, any_model=args.any_model,
                       checkpoint=not args.no_checkpoint, quiet=args.json,
                       say=None if args.json else print, model_name=args.model,
                       two_pass=args.two_pass, weight_bits=args.weight_bits)
    return _print_built(args, rep, out)


def _say_weight_bits(args, rows, where: str = " (per layer: report.json weights_4bit)") -> None:
    if args.weight_bits is not None and args.weight_bits[0] == 4 and not getattr(args, "json", False):
        from compiler.quantize.codebook import summary
        print(summary(rows) + where)


def _print_built(args, rep: dict, out: Path) -> int:
    import json
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print(f"firmware: {rep['elf']}\nreport:   {out / 'report.json'}")
    return 0


def _train_kwargs(g, args) -> dict:
    """firmware.build arguments of ``build --train SPEC [--loss mse]`` (no plan)."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.target import firmware
    from compiler.target.from_plan import DEVICE_HISTORY_DEFAULT
    trainable = {}
    for kind, k in args.train:
        if kind == "last":
            trainable.update(ad.last_layers(g, k))
        elif kind == "bias":   # biases never replace a layer that also trains its weights
            trainable = {**ad.bias_only(g, k), **trainable}
        else:
            trainable.update(ad.whole_model(g))
    prog = ad.build_program(g, trainable, loss=args.loss or "softmax_xent")
    if prog.loss == "mse" and prog.steps[0].target_of_input is None and args.app != "train-test":
        raise CompilerError(f"{args.model}: --loss mse in the device app trains an autoencoder "
                            "on its own input: the output size must equal the input size")
    cfg = tr.TrainConfig(lr=args.lr or 0.01, lr_body=args.lr_body, loss_range_mode="max")
    app = args.app or "device"
    if app != "device" and args.history is not None:
        raise CompilerError("--history applies to the device app")
    history = DEVICE_HISTORY_DEFAULT if args.history is None else args.history
    return dict(program=prog, config=cfg,
                app=firmware.DEVICE_APP if app == "device" else firmware.TRAIN_TEST_APP,
                defines={"TT_HISTORY_MAX": int(history)} if app == "device" else None,
                checkpoint=not args.no_checkpoint)


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--image", required=True, action="append",
                   help="an image file, or the name of a photo bundled with scikit-image "
                        "(chelsea, coffee, astronaut, rocket, ...); repeat for several")
    p.add_argument("--board", default="reference",
                   help="where to run: reference (numpy executor, default), host, or a board "
                        "emulated by QEMU (qemu-mps2-an500)")
    p.add_argument("--fuse", default="auto", choices=["auto", "all", "none"], help=FUSE_HELP)
    p.add_argument("--top", type=A.positive_int, default=5,
                   help="how many classes to print (default 5)")
    p.add_argument("--weight-bits", type=A.weight_bits, default=None, help=WEIGHT_BITS_HELP)
    model_arg.add_import_options(p)


@command("run", help="run images through a model and print the top classes",
         description="Centre-crop and resize each image to the model input, run it on the "
                     "reference executor, the host build or the emulated board, and print the "
                     "top-k class indices with their int8 logits (and, on a board, the "
                     "instructions per inference).",
         arguments=_run_args)
def cmd_run(args: argparse.Namespace) -> int:
    from compiler import api
    from compiler.frontend import images
    photos = [images.load_any(s) for s in args.image]  # a bad image fails before the model loads
    g = model_arg.load(args.model, args)
    require_int8(g, args.model, "run")
    if args.weight_bits is not None:
        from compiler.target import weight_bits
        g, _, rows = weight_bits.apply(g, args.weight_bits, fuse=args.fuse)
        _say_weight_bits(args, rows, "")
    xin = g.tensors[g.inputs[0]]
    if len(xin.shape) != 4 or xin.shape[3] not in (1, 3):
        raise CompilerError(f"{args.model}: input of shape {xin.shape}: `run` feeds images, "
                            "expected an image input (N, H, W, 1 or 3)")
    out = None
    if args.board != "reference":
        out = A.check_writable_dir(_default_out(args.board, args.model))
    t = time.time()
    r = api.run(g, photos, args.board, fuse=args.fuse, out=out, quiet=False)
    if r.elf:
        print(f"built {r.elf} and ran {len(photos)} image(s) in {time.time() - t:.1f}s")
    for i, s in enumerate(args.image):
        order = np.argsort(-r.logits[i].astype(np.int32), kind="stable")[:args.top]
        extra = f"  ({r.cost[i]:,} {r.unit} per inference)" if r.cost is not None else ""
        print(f"{s}: top-{args.top} " + ", ".join(f"{k} ({int(r.logits[i][k])})" for k in order)
              + extra)
    return 0
