"""CLI commands that produce and run firmware: ``build`` and ``run``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from compiler.cli.commands import MODEL_HELP, command
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
    p.add_argument("--out", help="output folder (default build/<board>/<model>)")
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
    p.add_argument("--lr", type=float, default=None,
                   help="with --plan: the device's default learning rate of the classifier, "
                        "in (0, 1] (default: the plan's)")
    p.add_argument("--lr-body", type=float, default=None,
                   help="with --plan: the default learning rate of the layers below the "
                        "classifier, in [0, 1] (default: the plan's)")
    p.add_argument("--history", type=int, default=None,
                   help="with --plan and the device app: the largest history buffer the "
                        "device accepts (SET history), in samples (default: the one the plan "
                        "left room for)")


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
    import json

    from compiler.frontend import models
    from compiler.target import firmware
    firmware.board_info(args.board)  # clear error on a wrong board, before any work
    out = Path(args.out) if args.out else _default_out(args.board, args.model)
    kw = {}
    if args.plan:
        from compiler.target.from_plan import load_plan_graph, plan_firmware_kwargs
        g, prog, plan = load_plan_graph(args.model, args.plan)
        kw = plan_firmware_kwargs(plan, prog, app=args.app, lr=args.lr, lr_body=args.lr_body,
                                  history=args.history)
        if not args.json:
            print(f"plan {args.plan}: {plan.describe(g)}")
    elif args.app or args.lr is not None or args.lr_body is not None or args.history is not None:
        raise CompilerError("--app, --lr, --lr-body and --history apply to training firmware: "
                            "give a --plan")
    else:
        g = models.load(args.model)
    rep = firmware.build(g, args.board, out, fuse=args.fuse, profile=args.profile,
                         portable=args.portable, quiet=args.json, **kw)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print(f"firmware: {rep['elf']}\nreport:   {out / 'report.json'}")
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--image", required=True, action="append",
                   help="an image file, or the name of a photo bundled with scikit-image "
                        "(chelsea, coffee, astronaut, rocket, ...); repeat for several")
    p.add_argument("--board", default="reference",
                   help="where to run: reference (numpy executor, default), host, or a board "
                        "emulated by QEMU (qemu-mps2-an500)")
    p.add_argument("--fuse", default="auto", choices=["auto", "all", "none"], help=FUSE_HELP)
    p.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")


def _load_image(spec: str, size_hw: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image

    from compiler.frontend import images
    img = images.load_image(spec) if Path(spec).exists() else images.load_photo(spec)
    img = images.center_crop_resize(img, size_hw[0])
    if size_hw[0] != size_hw[1]:
        img = np.asarray(Image.fromarray(img).resize((size_hw[1], size_hw[0])))
    if channels == 1:
        img = np.asarray(Image.fromarray(img).convert("L"))[..., None]
    return img


@command("run", help="run images through a model and print the top classes",
         description="Centre-crop and resize each image to the model input, run it on the "
                     "reference executor, the host build or the emulated board, and print the "
                     "top-k class indices with their int8 logits (and, on a board, the "
                     "instructions per inference).",
         arguments=_run_args)
def cmd_run(args: argparse.Namespace) -> int:
    from compiler.frontend import images, models
    from compiler.ref import executor as reference
    from compiler.target import firmware
    g = models.load(args.model)
    xin = g.tensors[g.inputs[0]]
    _, h, w, c = xin.shape
    raw = np.stack([_load_image(s, (h, w), c) for s in args.image])
    if "pixel - 128" in str(g.metadata.get("input_preprocess", "")):
        x = images.to_int8(raw)
    else:
        x = reference.quantize_input(g, raw.astype(np.float32) / 255.0)
    cycles = None
    if args.board == "reference":
        y = np.asarray(reference.run(g, x))
    else:
        if args.board not in firmware.boards():
            raise CompilerError(f"unknown board {args.board!r}; choose reference or one of: "
                                f"{', '.join(firmware.boards())}")
        if args.board == "stm32f746":
            raise CompilerError("stm32f746 is a real board: flash it with `make flash "
                                "BOARD=stm32f746`; `run` drives reference, host or QEMU")
        out = _default_out(args.board, args.model)
        t = time.time()
        rep = firmware.build(g, args.board, out, fuse=args.fuse)
        print(f"built {rep['elf']} in {time.time() - t:.1f}s; running {len(x)} image(s)...")
        y, cycles, _ = firmware.infer(rep["elf"], x, int(np.prod(g.tensors[g.outputs[0]].shape)),
                                      board=args.board)
    for i, s in enumerate(args.image):
        order = np.argsort(-y[i].astype(np.int32), kind="stable")[:args.top]
        extra = ""
        if cycles is not None:
            unit = "instructions" if args.board.startswith("qemu") else "ns"
            extra = f"  ({cycles[i]:,} {unit} per inference)"
        print(f"{s}: top-{args.top} " + ", ".join(f"{k} ({int(y[i][k])})" for k in order) + extra)
    return 0
