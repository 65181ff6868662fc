"""``tinytrain inq SOURCE --data DATA --out FILE.pt2``: power-of-two weights by
Incremental Network Quantization (:mod:`compiler.quantize.inq`), retrained on your
labelled data, saved as a float ``torch.export`` program that ``import`` (or any command
with ``--calibrate``) quantizes to exact int8 powers of two."""
from __future__ import annotations

import argparse
import json

import numpy as np

from compiler.cli import args as A
from compiler.cli.commands import command
from compiler.ir.errors import CompilerError
from compiler.quantize import inq as Q


def labelled_inputs(spec: str, shape, mean=None, std=None, channel_order: str = "rgb"):
    """(float inputs in PyTorch's layout, integer labels) of a data set spec: images
    (``mnist``, ``digits``, ``npz:FILE``, ``folder:DIR``) resized to the model's (C, H, W)
    and normalized with its input rule; a flat (F,) input takes ``npz:FILE`` whose ``x``
    is (N, F) (the model's float input) and ``y`` the labels."""
    from compiler.frontend import datasets as D
    from compiler.frontend import user_model as U
    if len(shape) == 1:
        kind, sep, path = str(spec).partition(":")
        if kind.strip().lower() != "npz" or not sep:
            raise CompilerError(f"--data {spec}: a flat input ({shape[0]},) is trained on "
                                "npz:FILE with arrays x (N, F) and y (N,)")
        try:
            with np.load(path) as z:
                if "x" not in z.files or "y" not in z.files:
                    raise CompilerError(f"--data {spec}: {path} needs arrays x and y (it has: "
                                        f"{', '.join(z.files) or 'none'})")
                x, y = z["x"].astype(np.float32), np.asarray(z["y"])
        except (OSError, ValueError) as e:
            raise CompilerError(f"--data {spec}: cannot read {path}: {e}") from None
        if x.shape[1:] != tuple(shape) or len(x) != len(y) or not np.isfinite(x).all():
            raise CompilerError(f"--data {spec}: x is {x.shape}, y {y.shape}; expected "
                                f"(N, {shape[0]}) finite values and N labels")
        return np.ascontiguousarray(x), y.astype(np.int64)
    c, h, w = shape
    try:
        ds = D.load(spec)
    except D.DatasetError as e:
        raise CompilerError(f"--data {spec}: {e}") from None
    imgs = np.stack([D.resize(D.to_channels(im, c), (h, w)) for im in ds.x])
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    if U.check_channel_order(channel_order, c) == "bgr":
        imgs = imgs[..., ::-1]
    x = U.normalize(imgs, mean, std, c)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.asarray(ds.y, np.int64)


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE",
                   help="the float model: FILE.py:FACTORY (with --input-shape), a .pt2 "
                        "torch.export program or a float .onnx file")
    p.add_argument("--data", required=True, metavar="DATA",
                   help="labelled training data: mnist, digits (bundled), npz:FILE (x uint8 "
                        "images, y labels; for a flat input x (N, F) floats) or folder:DIR "
                        "(one subfolder per class); --holdout of it measures the accuracy")
    p.add_argument("--out", required=True, type=A.pt2_file, metavar="FILE.pt2",
                   help="the power-of-two float model (a torch.export program, BatchNorm "
                        "folded); the summary goes beside it as FILE.inq.json")
    p.add_argument("--steps", type=A.inq_steps, default=Q.DEFAULT_STEPS, metavar="P,P,...,100",
                   help="accumulated share of each layer's weights quantized at each step, in "
                        "percent (default 50,75,87.5,100): the largest remaining weights first; "
                        "the rest are retrained after each step")
    p.add_argument("--bits", type=A.inq_bits, default=5,
                   help="bits per weight (default 5): 2^(b-1)/2 power-of-two magnitudes per "
                        f"layer, at most {Q.MAX_EXP + 1} (int8 holds +-2^0..+-2^{Q.MAX_EXP}: 0 "
                        "and 14 signed values, 4-bit codes); 2 is ternary {0, +-2^n1}")
    p.add_argument("--epochs", type=A.nonneg_int, default=2,
                   help="training epochs after each step (default 2)")
    p.add_argument("--lr", type=A.learning_rate, default=0.01,
                   help="SGD learning rate (default 0.01; momentum 0.9)")
    p.add_argument("--batch", type=A.positive_int, default=32, help="batch size (default 32)")
    p.add_argument("--seed", type=A.seed, default=0, help="random seed (default 0)")
    p.add_argument("--holdout", type=A.holdout_fraction, default=0.2,
                   help="share of DATA held out to measure accuracy after each step "
                        "(default 0.2; 0: none)")
    p.add_argument("--per-channel", action="store_true",
                   help="levels n1, n2 per output channel instead of per layer")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="the model input, channels first (e.g. 1,28,28), or F for a flat one; "
                        "needed for a PyTorch module")
    p.add_argument("--mean", metavar="M[,M,M]",
                   help="input normalization the model was trained with: input = "
                        "(pixel / 255 - mean) / std (default 0)")
    p.add_argument("--std", metavar="S[,S,S]", help="see --mean (default 1)")
    p.add_argument("--channel-order", choices=("rgb", "bgr"), default="rgb",
                   help="channel order the model was trained on (default rgb)")


def load_float(source: str, input_shape=None):
    """The float graph of a model source, refusing anything else with one line."""
    from pathlib import Path

    from compiler import api
    from compiler.frontend import user_model as U
    kind = U.source_kind(source)
    if kind is None:
        raise CompilerError(f"{source}: `inq` retrains a float model: expected FILE.py:FACTORY, "
                            "a .pt2 torch.export program or a float .onnx file")
    path = str(source).rpartition(":")[0] if kind == "pytorch" else str(source)
    if not Path(path).is_file():
        raise CompilerError(f"{path}: file not found (from {source})")
    if kind == "pytorch" and input_shape is None:
        raise CompilerError(f"{source}: a PyTorch module needs --input-shape C,H,W (F for a "
                            "flat input)")
    g = api.import_model(source, input_shape=input_shape, allow_float=True)
    if g.is_int8:
        raise CompilerError(f"{source}: an int8 (QDQ) model; `inq` retrains a float model")
    return g


@command("inq", help="power-of-two weights (INQ) for a float model, retrained on your data",
         description="Incremental Network Quantization (Zhou et al. 2017): fold BatchNorm, "
                     "then for each --steps share quantize the largest remaining weights of "
                     "every conv / Linear layer to 0 or +-2^n (n in [n2, n1], n1 = "
                     "floor(log2(4 max|W| / 3)), --bits b: 2^(b-1)/2 magnitudes, at most 7) "
                     "and retrain the others with SGD on --data. Saves the float model with "
                     "power-of-two weights as a .pt2 program (+ FILE.inq.json: levels per "
                     "layer, accuracy per step); `import FILE.pt2 --calibrate DATA` then gives "
                     "int8 weights that are exactly 0 and +-2^k (k = 0..6) with power-of-two "
                     "scales: the same int8 kernels, and 15 values that 4-bit codes hold.",
         arguments=_args)
def cmd_inq(args: argparse.Namespace) -> int:
    from pathlib import Path

    from compiler.frontend import user_model as U
    from compiler.quantize.torch_graph import export_program, torch_input_shape
    shape = U.parse_input_shape(args.input_shape) if args.input_shape else None
    mean = U.parse_floats(args.mean, "--mean") if args.mean else None
    std = U.parse_floats(args.std, "--std") if args.std else None
    g = load_float(args.source, shape)
    shape = torch_input_shape(g)
    if len(shape) == 3 and shape[1] == 1:
        raise CompilerError(f"{args.source}: input {','.join(map(str, shape))} (a 1-D (C, L) "
                            "input is a map of height 1): `inq` takes image (C, H, W) inputs "
                            "of height > 1 or flat (F) inputs")
    x, y = labelled_inputs(args.data, shape, mean, std, args.channel_order)
    order = np.random.default_rng(args.seed).permutation(len(x))
    n_val = int(round(args.holdout * len(x)))
    val, tr = order[:n_val], order[n_val:]
    if len(tr) == 0:
        raise CompilerError(f"--data {args.data}: no training samples left after --holdout")
    cfg = Q.InqConfig(bits=args.bits, steps=args.steps, epochs=args.epochs, lr=args.lr,
                      batch=args.batch, seed=args.seed, per_channel=args.per_channel)
    print(f"INQ of {args.source}: {len(tr)} training and {len(val)} held-out samples of "
          f"{args.data}, {args.bits} bits ({Q.magnitudes(args.bits)} magnitudes), steps "
          f"{', '.join(f'{100 * s:g}%' for s in args.steps)}, {args.epochs} epoch(s) each",
          flush=True)
    r = Q.run_inq(g, x[tr], y[tr], x[val] if n_val else None, y[val] if n_val else None, cfg,
                  progress=not args.no_progress, say=lambda s: print(s, flush=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    export_program(r.module, shape, out)
    summary = dict(r.summary, source=str(args.source), data=args.data,
                   train_samples=int(len(tr)), heldout_samples=int(n_val), program=str(out))
    js = out.with_suffix(".inq.json")
    js.write_text(json.dumps(summary, indent=1) + "\n")
    for name, lay in r.summary["layers"].items():
        print(f"  {name}: n1 {lay['n1']}, n2 {lay['n2']}, {lay['values']} distinct values, "
              f"{lay['zeros']} of {lay['weights']} zero")
    print(f"saved {out} and {js}")
    opts = "".join(f" --{k} {v}" for k, v in (("mean", args.mean), ("std", args.std)) if v)
    print(f"next: python -m compiler import {out} --calibrate {args.data}{opts} -o MODEL.json "
          "(int8 weights exactly 0, +-2^k)")
    return 0
