"""``tinytrain import SOURCE -o model.json``: your own model (a PyTorch module or an ONNX
file) quantized to int8 with your calibration data and saved, with its input
preprocessing, for every later command (``inspect``, ``build``, ``run``, ``plan``)."""
from __future__ import annotations

import argparse

from compiler.cli import args as A
from compiler.cli.commands import command


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE",
                   help="FILE.py:FACTORY (a Python file and a function in it that returns the "
                        "torch.nn.Module, e.g. mymodel.py:make_model) or an .onnx file (float, "
                        "or QDQ int8 as onnxruntime's quantize_static writes it)")
    p.add_argument("-o", "--out", required=True, type=A.writable_file, metavar="MODEL.json",
                   help="where to save the int8 model (MODEL.json + MODEL.npz beside it)")
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="the model input, channels first (e.g. 3,32,32; 1,49,10 for a "
                        "spectrogram); needed for a PyTorch module, read from an ONNX file")
    p.add_argument("--calibrate", metavar="DATA",
                   help="data to quantize a float model with: mnist, digits (bundled), "
                        "npz:FILE (arrays x uint8 images, y labels) or folder:DIR (one "
                        "subfolder of images per class)")
    p.add_argument("--samples", type=A.positive_int, default=256,
                   help="calibration samples taken from DATA (default 256)")
    p.add_argument("--mean", metavar="M[,M,M]",
                   help="the input normalization the model was trained with, per channel: "
                        "input = (pixel / 255 - mean) / std (default 0: pixel / 255); "
                        "recorded in the model and applied by the device to every sample")
    p.add_argument("--std", metavar="S[,S,S]", help="see --mean (default 1)")
    p.add_argument("--name", help="the model's name (default: the factory or file name)")


@command("import", help="import your own PyTorch or ONNX model, quantized to int8",
         description="Trace a PyTorch module (FILE.py:FACTORY) or read an ONNX file, quantize "
                     "a float model to int8 on calibration data (--calibrate), record the "
                     "input preprocessing (--mean/--std), and save the int8 graph as "
                     "MODEL.json + MODEL.npz: the model argument of inspect, build, run and "
                     "plan. Unsupported layers are named with their module and source line.",
         arguments=_import_args)
def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from compiler.cli.printer import summary
    from compiler.frontend import user_model as U
    from compiler.ir import graph_io
    shape = U.parse_input_shape(args.input_shape) if args.input_shape else None
    mean = U.parse_floats(args.mean, "--mean") if args.mean else None
    std = U.parse_floats(args.std, "--std") if args.std else None
    g = U.import_model(args.source, input_shape=shape, calibrate=args.calibrate,
                       samples=args.samples, mean=mean, std=std, name=args.name)
    out = graph_io.save(g, Path(args.out))
    s = summary(g)
    from compiler.ref.inputs import pixel_lut
    print(f"imported {args.source}: {s['nodes']} nodes, {s['params']:,} parameters, "
          f"{s['macs']:,} MACs, int8")
    print(f"input {'x'.join(map(str, g.tensors[g.inputs[0]].shape[1:]))} (H x W x C), "
          f"device input rule: {pixel_lut(g)[1]}")
    print(f"saved {out} (+ .npz), sha256 {g.sha256()[:16]}...")
    return 0
