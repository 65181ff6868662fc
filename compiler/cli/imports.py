"""``tinytrain import SOURCE -o model.json``: your own model (a PyTorch module or an ONNX
file) quantized to int8 with your calibration data and saved, with its input
preprocessing, for every later command (``inspect``, ``build``, ``run``, ``plan``)."""
from __future__ import annotations

import argparse

from compiler.cli import args as A
from compiler.cli import model_arg
from compiler.cli.commands import command


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE",
                   help="FILE.py:FACTORY (a Python file and a function in it that returns the "
                        "torch.nn.Module, e.g. mymodel.py:make_model), a .pt2 torch.export "
                        "program or an .onnx file (float, or QDQ int8 as onnxruntime's "
                        "quantize_static writes it)")
    p.add_argument("-o", "--out", required=True, type=A.writable_file, metavar="MODEL.json",
                   help="where to save the int8 model (MODEL.json + MODEL.npz beside it)")
    model_arg.add_import_options(p, title=None)


@command("import", help="import your own PyTorch or ONNX model, quantized to int8",
         description="Trace a PyTorch module (FILE.py:FACTORY), load a torch.export .pt2 "
                     "program or read an ONNX file, quantize a float model to int8 on calibration data (--calibrate), record the "
                     "input preprocessing (--mean/--std), and save the int8 graph as "
                     "MODEL.json + MODEL.npz: the model argument of inspect, build, run and "
                     "plan. Unsupported layers are named with their module and source line.",
         arguments=_import_args)
def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from compiler.cli.printer import summary
    from compiler.frontend import user_model as U
    from compiler.ir import graph_io
    g = U.import_model(args.source, **model_arg.import_kwargs(args))
    out = graph_io.save(g, Path(args.out))
    s = summary(g)
    from compiler.ref.inputs import pixel_lut
    print(f"imported {args.source}: {s['nodes']} nodes, {s['params']:,} parameters, "
          f"{s['macs']:,} MACs, int8")
    print(f"input {'x'.join(map(str, g.tensors[g.inputs[0]].shape[1:]))} (H x W x C), "
          f"device input rule: {pixel_lut(g)[1]}")
    print(f"saved {out} (+ .npz), sha256 {g.sha256()[:16]}...")
    return 0
