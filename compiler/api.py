"""The toolchain from Python (notebooks): what the commands do, as functions.

    from compiler import api
    g = api.import_model("mymodel.py:make_model", input_shape=(1, 28, 28),
                         calibrate="mnist", mean=[0.1307], std=[0.3081])
    api.save(g, "lenet.json")
    out = api.run(g, images)                   # uint8 RGB/gray images (N, H, W[, C])
    out.predictions, out.logits                # argmax per image, int8 logits (N, classes)
    build_dir, report = api.build(g, board="host")

- :func:`import_model`: a source (``FILE.py:FACTORY``, ``.pt2``, ``.onnx``) -> int8 graph
  (``import``);
- :func:`load`: any model argument of the commands (real-model name, ``.json``, QDQ
  ``.onnx``, or a source with import options) -> graph;
- :func:`save`: graph -> ``MODEL.json`` + ``MODEL.npz``;
- :func:`run`: images through the reference executor, the host build or QEMU (``run``);
- :func:`build`: firmware for a board, optionally training as a sparse-update plan says
  (``build``).

The commands call these same functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def import_model(source, **kw):
    """See :func:`compiler.frontend.user_model.import_model` (``input_shape``,
    ``calibrate``, ``samples``, ``mean``, ``std``, ``channel_order``, ``name``)."""
    from compiler.frontend.user_model import import_model as _import
    return _import(str(source), **kw)


def is_source(model, **import_kw) -> bool:
    """True if :func:`load` imports ``model`` (FILE.py:FACTORY, .pt2, a float .onnx, or a
    QDQ .onnx given import options) rather than reading it as it is."""
    from compiler.frontend import user_model as U
    kind = U.source_kind(model)
    if kind in ("pytorch", "pt2"):
        return True
    if kind == "onnx":
        from compiler.frontend import models
        from compiler.frontend.onnx_common import read_model
        from compiler.frontend.onnx_model import is_qdq
        return not is_qdq(read_model(models.resolve(model))) or any(
            v is not None for v in import_kw.values())
    return False


def load(model, *, allow_float: bool = False, **import_kw):
    """A model argument as the commands take it -> graph: a source is imported with
    ``import_kw`` (as :func:`import_model`), anything else loaded as it is; a Graph is
    returned unchanged. ``allow_float``: a source without ``calibrate`` gives its float
    graph instead of an error."""
    from compiler.ir.graph import Graph
    if isinstance(model, Graph):
        return model
    if is_source(model, **{k: v for k, v in import_kw.items()
                          if k not in ("samples", "channel_order") and v is not None}):
        return import_model(model, allow_float=allow_float,
                            **{k: v for k, v in import_kw.items() if v is not None})
    from compiler.frontend import models
    return models.load(model)


def save(g, path) -> Path:
    """Save ``g`` as ``path`` (.json) + its .npz; returns the .json path."""
    from compiler.ir import graph_io
    return graph_io.save(g, Path(path))


@dataclass
class Outputs:
    """What :func:`run` returns: int8 ``logits`` (N, classes), ``predictions`` (N,), and on
    a board the ``cost`` per inference in ``unit`` (QEMU: instructions; host: ns)."""
    logits: np.ndarray
    predictions: np.ndarray
    cost: list[int] | None = None
    unit: str | None = None
    elf: str | None = None


def model_inputs(g, images) -> np.ndarray:
    """uint8 images (N, H, W[, C]) or a list of differently sized ones -> the int8 model
    inputs, each centre-cropped and resized to the model's input and mapped through the
    model's own input rule (mean / std, channel order) as the device maps it."""
    from compiler.frontend import images as I
    from compiler.ir.errors import CompilerError
    from compiler.ref import inputs
    xin = g.tensors[g.inputs[0]]
    if len(xin.shape) != 4 or xin.shape[3] not in (1, 3):
        raise CompilerError(f"{g.name}: input of shape {xin.shape}: images expected an image "
                            "input (N, H, W, 1 or 3)")
    _, h, w, c = xin.shape
    raw = np.stack([_fit_image(np.asarray(im, np.uint8), (h, w), c) for im in images])
    if "pixel - 128" in str(g.metadata.get("input_preprocess", "")):
        return I.to_int8(raw)
    return inputs.apply_lut(inputs.pixel_lut(g)[0], inputs.in_model_order(g, raw))


def _fit_image(img: np.ndarray, size_hw: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image

    from compiler.frontend import images
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = images.center_crop_resize(img, size_hw[0])
    if size_hw[0] != size_hw[1]:
        img = np.asarray(Image.fromarray(img).resize((size_hw[1], size_hw[0])))
    if channels == 1:
        img = np.asarray(Image.fromarray(img).convert("L"))[..., None]
    return img


def run(g, images, board: str = "reference", *, fuse: str = "auto", out=None,
        quiet: bool = True) -> Outputs:
    """Images through ``g`` on ``board``: ``reference`` (numpy executor), ``host`` or a
    QEMU board (the firmware is built into ``out``, default build/<board>/<model name>)."""
    from compiler.ir.errors import CompilerError
    from compiler.ref import executor as reference
    from compiler.target import firmware
    g = load(g)
    x = model_inputs(g, images)
    if board == "reference":
        y = np.asarray(reference.run(g, x))
        return Outputs(y, np.argmax(y.astype(np.int32), axis=1))
    if board not in firmware.boards():
        raise CompilerError(f"unknown board {board!r}; choose reference or one of: "
                            f"{', '.join(firmware.boards())}")
    if board == "stm32f746":
        raise CompilerError("stm32f746 is a real board: flash it with `make flash "
                            "BOARD=stm32f746`; `run` drives reference, host or QEMU")
    from compiler.cli import args as A
    out = A.check_writable_dir(out or Path("build") / board / g.name)
    rep = firmware.build(g, board, out, fuse=fuse, quiet=quiet)
    y, cost, _ = firmware.infer(rep["elf"], x, int(np.prod(g.tensors[g.outputs[0]].shape)),
                                board=board)
    y = np.asarray(y)
    unit = "instructions" if board.startswith("qemu") else "ns"
    return Outputs(y, np.argmax(y.astype(np.int32), axis=1), list(cost), unit, rep["elf"])


def check_plan_options(plan, *, app=None, lr=None, lr_body=None, history=None,
                       any_model=False, checkpoint=True) -> None:
    """The training options of :func:`build` need a ``plan``."""
    from compiler.ir.errors import CompilerError
    if plan is None and (app or lr is not None or lr_body is not None or history is not None
                         or any_model or not checkpoint):
        raise CompilerError("--app, --lr, --lr-body, --history, --any-model and --no-checkpoint "
                            "apply to training firmware: give a --plan (or --train)")


def build(model, board: str = "host", out=None, plan=None, *, fuse: str = "auto",
          profile: bool = False, portable: bool = False, app: str | None = None,
          lr: float | None = None, lr_body: float | None = None, history: int | None = None,
          any_model: bool = False, checkpoint: bool = True, quiet: bool = True,
          say=None, model_name: str | None = None, two_pass: str | None = None,
          weight_bits=None) -> tuple[Path, dict]:
    """Firmware of ``model`` (a graph or a model argument) for ``board`` in ``out``
    (default build/<board>/<model name>) -> (``out``, the memory report: report.json's
    content with ``elf``). With ``plan`` (a plan file from ``plan``): the firmware that
    trains as it says (``app`` device or train-test, learning rates and the device app's
    history buffer as ``build --plan`` takes them). ``say``: called with the lines
    ``build`` prints about the plan. ``two_pass``: see :mod:`compiler.memory.two_pass`
    (default fit: recompute input gradients only where the budget needs it).
    ``weight_bits``: (bits, layer globs or None), see :mod:`compiler.target.weight_bits`
    (None: int8 weights); the report's ``weights_4bit`` lists the packed layers."""
    from compiler.ir.errors import CompilerError
    from compiler.ir.graph import Graph
    from compiler.target import firmware
    info = firmware.board_info(board)   # a wrong board fails before any work
    name = model.name if isinstance(model, Graph) else None
    check_plan_options(plan, app=app, lr=lr, lr_body=lr_body, history=history,
                       any_model=any_model, checkpoint=checkpoint)
    if out is None:
        from compiler.frontend.models import name_of
        out = Path("build") / board / (name or name_of(model))
    from compiler.cli import args as A
    out = A.check_writable_dir(out)
    say = say or (lambda s: None)
    kw = {}
    if plan is not None:
        from compiler.target.from_plan import device_history, load_plan_graph, plan_firmware_kwargs
        g, prog, p = load_plan_graph(load(model), str(plan), any_model=any_model,
                                     model_name=model_name or name or str(model))
        app = app or p.meta.get("app") or "device"
        note = None
        if app != "device" and history is not None:
            raise CompilerError(f"--history applies to the device app; the plan's app is {app} "
                                "(--app device builds the device app)")
        if app == "device":
            history, note = device_history(p, g, history=history,
                                           budget=(info["ram_kb"] or 0) * 1024 or None,
                                           stack=info["stack"] or 8192)
        kw = plan_firmware_kwargs(p, prog, app=app, lr=lr, lr_body=lr_body, history=history)
        say(f"plan {plan}: {p.describe(g)}")
        if note:
            say(note)
        kw["checkpoint"] = checkpoint
    else:
        g = load(model)
        if not g.is_int8:
            raise CompilerError(f"{model_name or name or model}: a float model: `build` expected "
                                "an int8 model (a QDQ int8 ONNX file, a real model or a model "
                                ".json)")
    rows = []
    if weight_bits is not None:
        from compiler.quantize.codebook import summary
        from compiler.target import weight_bits as WB
        g, prog4, rows = WB.apply(g, weight_bits, kw.get("program"), fuse)
        if prog4 is not None:
            kw["program"] = prog4
        if weight_bits[0] == 4:
            say(summary(rows) + " (per layer: report.json weights_4bit)")
    rep = firmware.build(g, board, out, fuse=fuse, profile=profile, portable=portable,
                         quiet=quiet, two_pass=two_pass, **kw)
    if rows:
        rep["weights_4bit"] = rows
        import json
        rp = Path(out) / "report.json"
        rp.write_text(json.dumps({**json.loads(rp.read_text()), "weights_4bit": rows}, indent=1))
    return out, rep
