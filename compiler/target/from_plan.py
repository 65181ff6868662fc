"""Firmware from a sparse-update plan file: the prepared graph, its training program and
the build settings (app, learning rates, history buffer) the plan records."""
from __future__ import annotations

import math
import os

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.ir.errors import CompilerError
from compiler.sparse import plan as sparse
from compiler.target import firmware

#: the device app's history buffer when nothing says otherwise (runtime_c/apps/device/main.c)
DEVICE_HISTORY_DEFAULT = 16
HISTORY_MAX = sparse.HISTORY_MAX
#: learning rate of the classifier when neither the plan nor the command line gives one
DEFAULT_LR = 2e-3


def load_plan_graph(model, plan_path: str, *, any_model: bool = False,
                    model_name: str | None = None):
    """(prepared graph, training program, plan) for ``build --plan``.

    A plan that does not record the model it was made for (``model_sha256``) is refused
    unless ``any_model`` (``build --any-model``): its channel permutations and layer
    names would be applied to whatever model is given."""
    plan = sparse.load(plan_path)
    if not plan.meta.get("model_sha256") and not any_model:
        raise sparse.PlanError(
            f"{plan_path}: model_sha256: expected the sha256 of the model the plan was made "
            "for (plans from `python -m compiler plan` record it; `python -m compiler inspect "
            "MODEL` prints it); pass --any-model to build it for this model anyway")
    base = models.load(model) if isinstance(model, (str, os.PathLike)) else model  # or a graph
    if not base.is_int8:
        raise CompilerError(f"{model_name or model}: a float model: `build --plan` expected an "
                            "int8 model")
    try:
        g = sparse.apply(base, plan)
        prog = ad.build_program(g, plan.trainable(g), loss=_recorded(plan).get("loss", "softmax_xent"))
    except sparse.PlanError as e:
        raise sparse.PlanError(f"{plan_path}: {e}") from None     # name the plan file
    return g, prog, plan


def _recorded(plan) -> dict:
    return plan.meta.get("training") or {}


def device_history(plan, g, *, history: int | None = None, budget: int | None = None,
                   stack: int = 8192) -> tuple[int, str]:
    """(capacity of the device app's history buffer in samples, a line saying where it
    comes from). ``history`` given (``build --history``): that; else the plan's
    ``training.history``; else the largest buffer up to :data:`DEVICE_HISTORY_DEFAULT`
    that fits in the plan's ``budget_bytes`` and in ``budget`` (the board's RAM) beside
    the training step under the compiler's memory model (:func:`compiler.sparse.plan.memory`;
    ``stack``: the board's). 0 when none fits (the line says so)."""
    rec = _recorded(plan).get("history")
    if history is not None:
        differs = (f"; the plan's RAM prediction counted {int(rec)}, so the firmware needs "
                   "more or less RAM than it says" if rec is not None and int(rec) != int(history)
                   else "")
        return int(history), f"history buffer: {int(history)} samples (--history){differs}"
    if rec is not None:
        why = "" if rec else " (the plan left no room for one: SET history is refused; " \
                             "`build --history N` or `plan --history N` gives one)"
        return int(rec), f"history buffer: {int(rec)} samples, as the plan says{why}"
    budgets = [int(b) for b in (plan.meta.get("budget_bytes"), budget) if b]
    if not budgets:
        return DEVICE_HISTORY_DEFAULT, (f"history buffer: {DEVICE_HISTORY_DEFAULT} samples "
                                        "(the device app's default; the plan does not say)")
    budget = min(budgets)
    reserve = sparse.app_reserve(g, "device")
    m0 = sparse.memory(g, plan, stack=stack, reserve=reserve)
    # one more sample: its features or input and label (an mse plan's: also its target)
    item = sparse.memory(g, plan, stack=stack, reserve=reserve, history=1)["total"] - m0["total"]
    n = max(0, min(DEVICE_HISTORY_DEFAULT, (budget - m0["total"]) // max(1, item)))
    if n == 0:
        return 0, (f"history buffer: none: the budget of {budget / 1024:.1f} KB leaves no room "
                   f"for one sample ({item} bytes) beside the training step "
                   f"({m0['total'] / 1024:.1f} KB), so SET history is refused; make the plan "
                   "with `plan --history N` to reserve one")
    return n, (f"history buffer: {n} samples of {item} bytes (the plan does not say; "
               f"{n * item / 1024:.1f} KB of the {budget / 1024:.1f} KB budget's "
               f"{(budget - m0['total']) / 1024:.1f} KB to spare)")


def plan_firmware_kwargs(plan, prog, *, app=None, lr=None, lr_body=None, history=None,
                         g=None, budget=None) -> dict:
    """Keyword arguments of :func:`compiler.target.firmware.build` for the firmware of ``plan``:
    the app (device or train-test), the training configuration (learning rates from the
    plan unless given) and the device app's history buffer (``history``; by default the
    plan's, else :func:`device_history` on ``g`` and ``budget`` when ``g`` is given, else
    :data:`DEVICE_HISTORY_DEFAULT`)."""
    app = app or plan.meta.get("app") or "device"
    if app not in ("device", "train-test"):
        raise CompilerError(f"unknown app {app!r}: expected device or train-test")
    trn = _recorded(plan)
    if lr is None:
        lr = trn.get("lr")
    if lr is None:
        lr = (plan.meta.get("analysis_settings") or {}).get("lr")
    if lr is None:
        lr = DEFAULT_LR
    if lr_body is None:
        lr_body = trn.get("lr_body")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0 < lr <= 1):
        raise CompilerError(f"learning rate: expected a number in (0, 1], got {lr!r}")
    if lr_body is not None and not (isinstance(lr_body, (int, float)) and math.isfinite(lr_body)
                                    and 0 <= lr_body <= 1):
        raise CompilerError(f"lr_body: expected a number in [0, 1], got {lr_body!r}")
    if history is None:
        if trn.get("history") is not None:
            history = trn["history"]
        elif g is not None and app == "device":
            history = device_history(plan, g, budget=budget)[0]
        else:
            history = DEVICE_HISTORY_DEFAULT
    if not (isinstance(history, int) and not isinstance(history, bool)
            and 0 <= history <= HISTORY_MAX):
        raise CompilerError(f"history: expected an integer in 0..{HISTORY_MAX} samples, "
                            f"got {history!r}")
    cfg = tr.TrainConfig(lr=float(lr), lr_body=None if lr_body is None else float(lr_body),
                         loss_range_mode="max")
    kw = dict(program=prog, config=cfg,
              app=firmware.DEVICE_APP if app == "device" else firmware.TRAIN_TEST_APP,
              defines={"TT_HISTORY_MAX": int(history)} if app == "device" else None)
    if plan.meta.get("budget_bytes"):   # the fastest step that fits the plan's budget
        kw["ram_budget"] = int(plan.meta["budget_bytes"])
    return kw
