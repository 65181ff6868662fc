"""The model argument of every command, and the import options that go with it.

A command's MODEL is a real int8 model name, a model ``.json``, a QDQ int8 ``.onnx`` (as
they are), or a source that ``import`` would quantize: ``FILE.py:FACTORY``, a ``.pt2``
torch.export program or a float ``.onnx``. :func:`add_import_options` adds the options
of ``import`` (``--input-shape``, ``--calibrate``, ``--samples``, ``--mean``, ``--std``,
``--channel-order``, ``--name``) to a command's parser; :func:`check` refuses a bad model
argument (or a float source without ``--calibrate``) before any heavy work, and
:func:`load` returns the int8 graph, importing a source exactly as ``import`` does.
"""
from __future__ import annotations

import argparse
import shlex

from compiler.cli import args as A
from compiler.ir.errors import CompilerError

#: options whose values `import` needs again to rebuild the same model
IMPORT_OPTIONS = ("input_shape", "calibrate", "samples", "mean", "std", "channel_order", "name")
_DEFAULT_SAMPLES = 256


def add_import_options(p: argparse.ArgumentParser, *, title: str | None = "import options") -> None:
    """The options of ``import`` (one group, the same for every command)."""
    grp = p.add_argument_group(title, "how a model source (FILE.py:FACTORY, .pt2, float .onnx) "
                                      "is quantized to int8, as `import` does") if title else p
    grp.add_argument("--input-shape", metavar="C,H,W",
                     help="the model input, channels first (e.g. 3,32,32; 1,49,10 for a "
                          "spectrogram; C,L for a 1-D (Conv1d) input, F for a flat one); needed "
                          "for a PyTorch module, read from a .pt2 program or an ONNX file")
    grp.add_argument("--calibrate", metavar="DATA",
                     help="data to quantize a float model with: mnist, digits (bundled), "
                          "npz:FILE (arrays x uint8 images, y labels; for a 1-D input x is the "
                          "model's float input, (N, C, L) or (N, F), used as is) or folder:DIR "
                          "(one subfolder of images per class)")
    grp.add_argument("--samples", type=A.positive_int, default=_DEFAULT_SAMPLES,
                     help=f"calibration samples taken from DATA (default {_DEFAULT_SAMPLES})")
    grp.add_argument("--mean", metavar="M[,M,M]",
                     help="the input normalization the model was trained with, per channel: "
                          "input = (pixel / 255 - mean) / std (default 0: pixel / 255); "
                          "recorded in the model and applied by the device to every sample")
    grp.add_argument("--std", metavar="S[,S,S]", help="see --mean (default 1)")
    grp.add_argument("--channel-order", choices=("rgb", "bgr"), default="rgb",
                     help="the channel order the model was trained on (default rgb); images are "
                          "always sent as RGB, a bgr model sees channel c from image channel 2 - c")
    grp.add_argument("--name", help="the model's name (default: the factory or file name)")


def _given(args) -> list[str]:
    """Import options given on the command line (not at their defaults)."""
    out = []
    for k in IMPORT_OPTIONS:
        v = getattr(args, k, None)
        if v is not None and not (k == "samples" and v == _DEFAULT_SAMPLES) \
                and not (k == "channel_order" and v == "rgb"):
            out.append(k)
    return out


def import_kwargs(args) -> dict:
    """The keyword arguments of :func:`compiler.frontend.user_model.import_model` from the
    parsed options."""
    from compiler.frontend import user_model as U
    return dict(input_shape=U.parse_input_shape(args.input_shape) if args.input_shape else None,
                calibrate=args.calibrate, samples=args.samples,
                mean=U.parse_floats(args.mean, "--mean") if args.mean else None,
                std=U.parse_floats(args.std, "--std") if args.std else None,
                name=args.name, channel_order=args.channel_order)


def is_source(model, args=None) -> bool:
    """True if ``model`` is imported (FILE.py:FACTORY, .pt2, float .onnx, or a QDQ .onnx
    with import options), False if it is loaded as it is."""
    from compiler import api
    given = {k: True for k in _given(args)} if args is not None else {}
    return api.is_source(model, **given)


def check(model, args=None, *, need_int8: bool = True) -> None:
    """A bad model argument, import options for a model that is not a source, or (with
    ``need_int8``) a float source without ``--calibrate``: one clear error, before any
    heavy work. ``inspect`` (``need_int8=False``) shows a float source's float graph."""
    from pathlib import Path

    from compiler.frontend import models
    from compiler.frontend import user_model as U
    kind = U.source_kind(model)
    if kind is None:
        models.require(model)
        given = _given(args) if args is not None else []
        if given:
            opts = ", ".join("--" + k.replace("_", "-") for k in given)
            raise CompilerError(f"{model}: {opts} apply to a model source (FILE.py:FACTORY, .pt2, "
                                "float .onnx); this model is already int8")
        return
    if kind == "pytorch":
        path = str(model).rpartition(":")[0]
        if not Path(path).is_file():
            raise CompilerError(f"{path}: file not found (from {model})")
        if args is not None and not args.input_shape:
            raise CompilerError(f"{model}: a PyTorch module needs --input-shape C,H,W (C,L or F "
                                "for a 1-D or flat input)")
    elif kind == "pt2":
        if not Path(str(model)).is_file():
            raise CompilerError(f"model file not found: {model}")
    else:
        models.require(model)
    if need_int8 and args is not None and not args.calibrate and kind == "onnx":
        models.load(model)    # a malformed ONNX file is named as such (quick, no calibration)
    if need_int8 and args is not None and not args.calibrate and is_source(model, args) \
            and not (kind == "onnx" and _given(args)):
        cmd = getattr(args, "command", None) or "this command"
        raise CompilerError(f"{model}: a float model: `{cmd}` expected an int8 model; give "
                            "--calibrate DATA (e.g. mnist, digits, npz:FILE, folder:DIR) to "
                            "quantize it, as `import` does")
    if args is not None:
        import_kwargs(args)       # --input-shape / --mean / --std parse


def load(model, args=None, *, allow_float: bool = False):
    """The graph of a command's model argument: a source imported with the command's import
    options (:func:`compiler.api.load`), anything else loaded as it is."""
    from compiler import api
    return api.load(model, allow_float=allow_float,
                    **(import_kwargs(args) if args is not None else {}))


def import_command(model, args, out: str) -> str:
    """The ``import`` command line that saves the same int8 model as ``out``."""
    parts = ["python", "-m", "compiler", "import", str(model)]
    for k in _given(args):
        parts += ["--" + k.replace("_", "-"), str(getattr(args, k))]
    return " ".join(shlex.quote(p) for p in parts + ["-o", out])
