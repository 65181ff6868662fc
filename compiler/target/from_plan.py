"""Firmware from a sparse-update plan file: the prepared graph, its training program and
the build settings (app, learning rates, history buffer) the plan records."""
from __future__ import annotations

import math

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.ir.errors import CompilerError
from compiler.sparse import plan as sparse
from compiler.target import firmware


def load_plan_graph(model: str, plan_path: str):
    """(prepared graph, training program, plan) for ``build --plan``."""
    plan = sparse.load(plan_path)
    g = sparse.apply(models.load(model), plan)
    prog = ad.build_program(g, plan.trainable(g))
    return g, prog, plan



def plan_firmware_kwargs(plan, prog, *, app=None, lr=None, lr_body=None, history=None) -> dict:
    """Keyword arguments of :func:`compiler.target.firmware.build` for the firmware of ``plan``:
    the app (device or train-test), the training configuration (learning rates from the
    plan unless given) and the device app's history buffer."""
    app = app or plan.meta.get("app", "device")
    if app not in ("device", "train-test"):
        raise CompilerError(f"unknown app {app!r}: device or train-test")
    trn = plan.meta.get("training") or {}
    lr = lr if lr is not None else trn.get("lr") or plan.meta.get("analysis_settings", {}).get("lr", 2e-3)
    lr_body = lr_body if lr_body is not None else trn.get("lr_body")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0 < lr <= 1):
        raise CompilerError(f"learning rate must be in (0, 1], got {lr!r}")
    if lr_body is not None and not (isinstance(lr_body, (int, float)) and math.isfinite(lr_body)
                                    and 0 <= lr_body <= 1):
        raise CompilerError(f"lr_body must be in [0, 1], got {lr_body!r}")
    if history is None:
        history = int(trn.get("history") or 0)
    if not 0 <= int(history) <= 255:
        raise CompilerError(f"history must be in 0..255 samples, got {history}")
    cfg = tr.TrainConfig(lr=float(lr), lr_body=None if lr_body is None else float(lr_body),
                         loss_range_mode="max")
    return dict(program=prog, config=cfg,
                app=firmware.DEVICE_APP if app == "device" else firmware.TRAIN_TEST_APP,
                defines={"TT_HISTORY_MAX": int(history)} if app == "device" else None)
