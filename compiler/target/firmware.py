"""Build a model into firmware for a board, print the memory report, run it.

``build(graph, board, out_dir)`` generates the C sources (compiler.codegen.generate), compiles
them with the runtime and the board support (boards/common.mk) and returns the report
augmented with the linked figures. ``infer(elf, images)`` boots the firmware on QEMU (or
runs the host build) and returns the logits it computes.
"""
from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import numpy as np

from compiler import paths
from compiler.codegen import generate as codegen
from compiler.ir.errors import CompilerError
from compiler.ir.graph import Graph
from compiler.memory import schedule as memplan
from compiler.target import checkpoint

REPO = paths.REPO
BOARDS_DIR = paths.BOARDS
INFER_APP = paths.app_main("infer")
TRAIN_TEST_APP = paths.app_main("train_test")
DEVICE_APP = paths.app_main("device")


class BoardError(CompilerError):
    """Unknown board name."""


class BudgetError(CompilerError):
    """The plan does not fit the board; the message holds the memory table."""


def boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.mk"))


def board_info(name: str) -> dict:
    mk = BOARDS_DIR / name / "board.mk"
    if not mk.exists():
        raise BoardError(f"unknown board {name!r}; available boards: {', '.join(boards())}")
    text = mk.read_text()

    def var(key):
        m = re.search(rf"^{key}\s*:?=\s*(\S+)", text, re.M)
        return int(m.group(1)) if m else None
    return {"name": name, "ram_kb": var("BOARD_RAM_KB"), "flash_kb": var("BOARD_FLASH_KB"),
            "flash_lo_kb": var("BOARD_FLASH_LO_KB") or 0,
            "stack": var("BOARD_STACK"), "ckpt_slot_kb": var("BOARD_CKPT_SLOT_KB") or 0}


# The device app's checkpoint (compiler/target/checkpoint.py): a header, then a state
# block (counters and settings), then the trained arrays.
CKPT_HEADER_BYTES = checkpoint.HEADER.size
CKPT_STATE_BYTES = checkpoint.STATE.size


def checkpoint_figures(rep: dict, info: dict) -> dict:
    """Checkpoint size of a training build against the board's flash slot."""
    payload = CKPT_STATE_BYTES + rep.get("ram_param_bytes", 0)
    return {"bytes": CKPT_HEADER_BYTES + payload, "slot_bytes": info["ckpt_slot_kb"] * 1024,
            "slots": 2 if info["ckpt_slot_kb"] else 0}


# ----------------------------------------------------------------------------- report

def _bar(used: float, total: float, width: int = 10) -> str:
    n = min(width, int(round(width * used / total))) if total else 0
    return "[" + "=" * n + " " * (width - n) + "]"


def ram_figures(rep: dict) -> dict:
    """The RAM of a build report as `build` prints it (``host.stream`` prints the same):
    ``ram`` (the linked figure, or arena + trained parameters + stack before linking),
    ``budget``, ``arena``, ``stack``, ``params`` (trained parameters in RAM) and
    ``runtime`` (the rest: the runtime's buffers and statics), in bytes."""
    est = rep["arena_bytes"] + rep["stack_bytes"] + rep.get("ram_param_bytes", 0)
    ram = rep.get("linked", {}).get("ram", est)
    return {"ram": ram, "budget": rep["ram_budget_bytes"], "arena": rep["arena_bytes"],
            "stack": rep["stack_bytes"], "params": rep.get("ram_param_bytes", 0),
            "runtime": max(0, ram - est)}


def format_report(rep: dict) -> str:
    """NNoM-style per-layer table + RAM/flash bars."""
    lines = [f"{'#':>3} {'layer':<28} {'kernel':<30} {'output':<12} {'out KB':>7} "
             f"{'scratch':>8} {'live KB':>8}"]
    phase = None
    for r in rep["layers"]:
        if r.get("phase", "forward") != phase and "phase" in r:
            phase = r["phase"]
            lines.append(f"    -- {phase} " + ("(activations; saves for the backward stay live)"
                                                 if phase == "forward" else
                                                 "(output: gradient written; updates in place)"))
        mark = "  <- peak" if r["peak"] else ""
        lines.append(f"{r['step']:>3} {r['name'][:28]:<28} {r['kernel'][:30]:<30} "
                     f"{'x'.join(map(str, r['output_shape'])):<12} {r['output_bytes'] / 1024:7.1f} "
                     f"{r['scratch_bytes'] / 1024:8.1f} {r['live_bytes'] / 1024:8.1f}{mark}")
    fig = ram_figures(rep)
    ram_budget, ram, runtime = fig["budget"], fig["ram"], fig["runtime"]
    lines.append("")
    lines.append(f"RAM   {_bar(ram, ram_budget)} {100 * ram / ram_budget:5.1f}%  {ram / 1024:7.1f} KB "
                 f"of {ram_budget // 1024} KB   (arena {rep['arena_bytes'] / 1024:.1f}, "
                 + (f"trainable params {rep['ram_param_bytes'] / 1024:.1f}, "
                    if rep.get("ram_param_bytes") else "")
                 + f"stack {rep['stack_bytes'] / 1024:.1f}, runtime {runtime / 1024:.1f})")
    fb = rep["flash_budget_bytes"]
    flash = rep.get("linked", {}).get("flash", rep["param_bytes"])
    lo = rep.get("flash_lo_bytes", 0)
    if "linked" not in rep:
        flash -= lo
    lines.append(f"Flash {_bar(flash, fb)} {100 * flash / fb:5.1f}%  {flash / 1024:7.1f} KB of "
                 f"{fb // 1024} KB   (parameters {rep['param_bytes'] / 1024:.1f}"
                 + (f", {lo / 1024:.1f} of them beside the vector table" if lo else "") + ")")
    ck = rep.get("checkpoint")
    if ck:
        lines.append(f"Ckpt  {_bar(ck['bytes'], ck['slot_bytes'])} {100 * ck['bytes'] / ck['slot_bytes']:5.1f}%  "
                     f"{ck['bytes'] / 1024:7.1f} KB of {ck['slot_bytes'] // 1024} KB   (a checkpoint in "
                     f"one of {ck['slots']} flash slots: trained arrays + 0.2 KB header and state)")
    return "\n".join(lines)


def _ram_need(rep: dict) -> int:
    """Arena + trained parameters + stack of a generated build (its report)."""
    return rep["arena_bytes"] + rep["stack_bytes"] + rep.get("ram_param_bytes", 0)


def check_budget(rep: dict) -> None:
    need = _ram_need(rep)
    if need > rep["ram_budget_bytes"]:
        raise BudgetError(f"plan needs {need / 1024:.1f} KB of RAM (arena + trained parameters "
                          f"+ stack) but board "
                          f"'{rep['board']}' has {rep['ram_budget_bytes'] // 1024} KB\n"
                          + format_report(rep))
    if rep["param_bytes"] - rep.get("flash_lo_bytes", 0) > rep["flash_budget_bytes"]:
        raise BudgetError(f"parameters need {rep['param_bytes'] / 1024:.1f} KB of flash but board "
                          f"'{rep['board']}' has {rep['flash_budget_bytes'] // 1024} KB\n"
                          + format_report(rep))


# ----------------------------------------------------------------------------- build

def _flash_overflow(log: str) -> bool:
    """The link failed because the code and constants do not fit the board's flash."""
    return "FLASH over budget" in log or "region `FLASH' overflowed" in log


def build(g: Graph, board: str, out_dir, fuse: str = "auto", profile: bool = False,
          portable: bool = False, app: Path | None = None, quiet: bool = False,
          program=None, config=None, defines: dict | None = None, checkpoint: bool = True,
          two_pass: str | None = None, ram_budget: int | None = None) -> dict:
    """Generate + compile. Returns the report with ``elf`` and ``linked`` figures.
    With a training ``program`` (compiler.autodiff.program) the firmware also trains; ``app``
    defaults to the inference loop, or the training test loop for a program. The device
    app keeps flash checkpoints of what it learns unless ``checkpoint`` is False; their
    size is checked against the board's flash slots.

    ``two_pass`` (see :mod:`compiler.memory.two_pass`; default ``TT_TWO_PASS`` or ``fit``):
    with ``fit``, a training-test build recomputes no input gradient (the fastest step)
    when that fits the board's RAM and ``ram_budget`` (e.g. a plan's budget), else it
    takes the smallest arena (``auto``); the device app, whose history buffer is sized to
    the budget's remainder, always takes the smallest arena."""
    info = board_info(board)
    out_dir = Path(out_dir).resolve()
    app = app or (TRAIN_TEST_APP if program is not None else INFER_APP)
    if program is not None:
        save_training(g, program, config, out_dir)
        from compiler.memory import training as train_codegen
        from compiler.memory import two_pass as TP
        mode = TP.mode_of(two_pass)
        if mode == "fit" and app == TRAIN_TEST_APP:
            plan = train_codegen.plan_training(g, program, fuse, two_pass="off")
            rep = codegen.generate(g, out_dir, plan, info, program=program, config=config,
                                   rq_records=not portable)
            limit = min(b for b in (rep["ram_budget_bytes"], ram_budget) if b)
            from compiler.sparse.plan import RUNTIME_RESERVE  # beside arena, params, stack
            if _ram_need(rep) + RUNTIME_RESERVE > limit:
                plan = train_codegen.plan_training(g, program, fuse, two_pass="auto")
                rep = None
        else:
            plan = train_codegen.plan_training(g, program, fuse, two_pass=mode)
            rep = None
    else:
        plan = memplan.plan(g, fuse)
        rep = None
    if rep is None:
        rep = codegen.generate(g, out_dir, plan, info, program=program, config=config,
                               rq_records=not portable)
    check_budget(rep)
    defs = []
    if program is not None and app == DEVICE_APP:
        if checkpoint:
            ck = rep["checkpoint"] = checkpoint_figures(rep, info)
            if ck["bytes"] > ck["slot_bytes"]:
                raise BudgetError(
                    f"a checkpoint of this plan needs {ck['bytes']:,} bytes (trained arrays "
                    f"{rep.get('ram_param_bytes', 0):,} + header and state "
                    f"{CKPT_HEADER_BYTES + CKPT_STATE_BYTES}) but a flash checkpoint slot of board "
                    f"'{board}' holds {ck['slot_bytes']:,}: train fewer arrays, or build without "
                    f"checkpoints (--no-checkpoint)\n" + format_report(rep))
        else:
            defs.append("-DTT_PERSIST=0")
    if profile:
        defs.append("-DTT_PROFILE")
    if portable:
        defs.append("-DTT_PORTABLE")
    for k, v in (defines or {}).items():
        defs.append(f"-D{k}={v}")
    args = ["make", "--no-print-directory", "-f", "boards/common.mk", "firmware",
            f"BOARD={board}", f"OUT={out_dir}",
            f"APP_SRCS={app} {out_dir / 'tt_model.c'} {out_dir / 'tt_model_weights.c'}",
            f"EXTRA_INCS={out_dir}", "EXTRA_CFLAGS=" + " ".join(defs)]
    p = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0 and rep.get("rq_record_bytes") and _flash_overflow(p.stdout + p.stderr):
        # the precomputed requantization records only save instructions: without them
        # the firmware may still fit the flash
        n = rep["rq_record_bytes"]
        rep = {**codegen.generate(g, out_dir, plan, info, program=program, config=config,
                                  rq_records=False),
               **({"checkpoint": rep["checkpoint"]} if "checkpoint" in rep else {})}
        p = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
        if p.returncode == 0 and not quiet:
            print(f"note: built without the precomputed requantization records ({n:,} bytes): "
                  f"with them the firmware does not fit the flash of board '{board}'")
    if p.returncode != 0:
        raise CompilerError(f"firmware build failed for {g.name} on {board}:\n{p.stdout}{p.stderr}")
    mem = json.loads((out_dir / "memory.json").read_text())
    rep["linked"] = mem
    rep["elf"] = str(out_dir / "firmware.elf")
    (out_dir / "report.json").write_text(json.dumps(rep, indent=1))
    if not quiet:
        print(format_report(rep))
    return rep


# ----------------------------------------------------------------------------- replay

TRAIN_MODEL, TRAIN_SPEC = "train_model.json", "training.json"


def save_training(g: Graph, program, config, out_dir: Path) -> None:
    """What a reference replay of the firmware's training needs, beside it: the graph as
    compiled (train_model.json + .npz), its trainable set and the training configuration
    (training.json). ``host.stream --verify BUILD_DIR`` reads them."""
    import dataclasses

    from compiler.ir import graph_io
    out_dir.mkdir(parents=True, exist_ok=True)
    graph_io.save(g, out_dir / TRAIN_MODEL)
    from compiler.autodiff import trainer as tr
    cfg = dataclasses.asdict(config if config is not None else tr.TrainConfig())
    spec = {"trainable": {n: {"weight": lt.train_weight, "ratio": str(lt.ratio), "bias": lt.train_bias,
                              **({"x_bits": lt.x_bits} if lt.x_bits != 8 else {})}
                          for n, lt in program.trainable.items()},
            "config": cfg, "model_sha256": g.sha256(), "loss": program.loss}
    (out_dir / TRAIN_SPEC).write_text(json.dumps(spec, indent=1))


def load_training(build_dir) -> tuple:
    """(graph, program, TrainConfig, report) of a training build (see save_training)."""
    from fractions import Fraction

    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.ir import graph_io
    d = Path(build_dir)
    if d.is_file():
        d = d.parent
    for f in (TRAIN_SPEC, TRAIN_MODEL, "report.json"):
        if not (d / f).is_file():
            raise CompilerError(f"{d}: no {f}: expected the folder of a training firmware build "
                                "(python -m compiler build MODEL --plan PLAN)")
    spec = json.loads((d / TRAIN_SPEC).read_text())
    g = graph_io.load(d / TRAIN_MODEL)
    prog = ad.build_program(g, {n: ad.LayerTrain(t["weight"], Fraction(t["ratio"]), t["bias"],
                                                 t.get("x_bits", 8))
                                for n, t in spec["trainable"].items()},
                            loss=spec.get("loss", "softmax_xent"))
    cfg = tr.TrainConfig(**spec["config"]) if spec.get("config") else tr.TrainConfig()
    return g, prog, cfg, json.loads((d / "report.json").read_text())


# ----------------------------------------------------------------------------- run

def _exchange(port, x: np.ndarray, nout: int) -> tuple[np.ndarray, int]:
    port.write(b"I" + np.ascontiguousarray(x, dtype=np.int8).tobytes())
    hdr = port.read(1)
    if hdr != b"R":
        raise RuntimeError(f"firmware answered {hdr!r} instead of a result")
    data = port.read(nout + 4)
    if len(data) != nout + 4:
        raise RuntimeError("short read from firmware")
    return np.frombuffer(data[:nout], dtype=np.int8).copy(), struct.unpack("<I", data[nout:])[0]


def _serial_session(elf, board: str, timeout: float, talk) -> tuple[object, object]:
    """Boot ``elf`` (QEMU, or the host build on a pty), call ``talk(port)`` with a pyserial
    port, send ``Q`` (quit) and wait for a clean exit. Returns (talk's result, run result)."""
    import serial  # pyserial

    from compiler.target import runner as R

    runner = R.QemuSerial(elf, timeout) if board != "host" else R.HostSerial(elf, timeout)
    with runner as q:
        port = serial.serial_for_url(q.url, timeout=timeout)
        try:
            out = talk(port)
            try:
                port.write(b"Q")
                port.flush()
            except Exception:  # noqa: BLE001  (OSError, termios.error, SerialException)
                pass  # the host build may close its pty as soon as it reads Q
            res = q.wait(60)
        finally:
            try:
                port.close()
            except Exception:  # noqa: BLE001  (pty already gone)
                pass
    if res.exit_code != 0:
        raise RuntimeError("firmware failed: " + res.describe())
    return out, res


def infer(elf, images: np.ndarray, nout: int, board: str = "qemu-mps2-an500",
          timeout: float = 600, profile: bool = False) -> tuple[np.ndarray, list[int], dict]:
    """Run NHWC int8 ``images`` [N, H, W, C] through the firmware. Returns (logits [N,
    nout], cycles per image, per-step cycles of the last image if profile)."""
    def talk(port):
        outs, cycles = [], []
        for x in images:
            y, c = _exchange(port, x, nout)
            outs.append(y)
            cycles.append(c)
        if profile:
            port.write(b"P")
        return outs, cycles

    (outs, cycles), res = _serial_session(elf, board, timeout, talk)
    steps = {k.split(":", 1)[1]: v for k, v in res.timed.items() if k.startswith("step:")}
    return np.stack(outs), cycles, steps


def train_stream(elf, images: np.ndarray, labels, nout: int, n_param_bytes: int,
                 board: str = "qemu-mps2-an500", timeout: float = 600, targets=None):
    """Run training steps on the firmware built with the training test app. Returns
    (logits [N, nout] before each update, losses, return codes, cycles, trained params
    bytes after the last step). ``targets``: int8 [N, nout] targets of an mse model
    whose target is not its own input (the app makes an autoencoder's itself)."""
    def talk(port):
        outs, losses, rcs, cycles = [], [], [], []
        for i, (x, label) in enumerate(zip(images, labels)):
            extra = b"" if targets is None else np.ascontiguousarray(targets[i], np.int8).tobytes()
            port.write(b"T" + bytes([int(label)]) + np.ascontiguousarray(x, np.int8).tobytes() + extra)
            if port.read(1) != b"R":
                raise RuntimeError("training firmware did not answer")
            data = port.read(nout + 12)
            outs.append(np.frombuffer(data[:nout], np.int8).copy())
            loss, rc, cyc = struct.unpack("<fiI", data[nout:])
            losses.append(loss)
            rcs.append(rc)
            cycles.append(cyc)
        port.write(b"W")
        return np.stack(outs), losses, rcs, cycles, port.read(n_param_bytes)

    out, _ = _serial_session(elf, board, timeout, talk)
    return out


def split_trained(g, rep: dict, blob: bytes) -> dict:
    """Bytes of the trained arrays (as returned by :func:`train_stream` or downloaded from
    the device) -> {(node, param): ndarray} in the IR layout (weights OHWI int8, biases
    int32). A split weight's blob holds its trained rows only; the other rows are taken
    from ``g`` (they are frozen in flash)."""
    out, pos = {}, 0
    for a in rep["trained_arrays"]:
        ref = g.node(a["node"]).params[a["param"]]
        dt = np.int8 if a["param"] == "weight" else np.int32
        rows = a.get("rows", ref.shape[0])   # a split weight holds its trained rows only
        n = rows * (ref.size // ref.shape[0]) * np.dtype(dt).itemsize
        full = ref.copy()
        full[:rows] = np.frombuffer(blob[pos:pos + n], dt).reshape((rows,) + ref.shape[1:])
        out[(a["node"], a["param"])] = full
        pos += n
    if pos != len(blob):
        raise RuntimeError(f"trained parameter blob has {len(blob)} bytes, expected {pos}")
    return out
