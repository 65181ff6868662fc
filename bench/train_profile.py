"""Training step of the pinned sparse-update plans on the emulated Cortex-M7 (QEMU
mps2-an500, -icount shift=0), with a per-step profile of the backward pass.

For each bench/plans/<model>.json (128x128 input, the training test app): builds the
plan's firmware as `python -m compiler build MODEL --plan PLAN --app train-test` does,
runs two training steps and checks logits and trained arrays bit-exact against the
reference trainer, then rebuilds the same generated model with a timer mark before every
backward step (b<i> in the generated C) and prints the instructions of each step, the
forward share and the backward steps grouped by kernel.

    python bench/train_profile.py [--models ...] [--top 25] [--json out.json]
    (also: python bench/train_steps.py --plans [models])
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.autodiff import trainer as tr
from compiler.frontend import images, models
from compiler.target import firmware
from compiler.target.from_plan import load_plan_graph, plan_firmware_kwargs

MODELS = ["mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps"]
PLANS = REPO / "bench" / "plans"
BOARD = "qemu-mps2-an500"
LABELS = [1, 7]
#: MCUNetV3's Tiny Training Engine, training step of its sparse plans at 128x128 on a
#: 216 MHz STM32F746 (ms)
PUBLISHED_MS = {"mbv2-w0.35": 373, "proxyless-w0.3": 443, "mcunet-5fps": 546}

# The profiling app: the training test app's 'T' command plus 'P' (report the marks).
PROFILE_MAIN = r"""
#include <stdint.h>
#include "tt_board.h"
#include "tt_model.h"
#include "tt_report.h"

static uint32_t prof[TT_BPROF_N + 1]; /* [TT_BPROF_N]: forward (until the first mark) */
static uint32_t last;
static int cur = -1;
static uint32_t total;

void tt_bprof_mark(int n)
{
    uint32_t t = board_cycles();
    if (cur >= 0) prof[cur] += t - last;
    cur = n;
    last = board_cycles();
}

int main(void)
{
    for (;;) {
        int c = board_uart_getc();
        if (c < 0 || c == 'Q') return 0;
        if (c == 'P') {
            tt_report_timed("", "total", -1, total);
            tt_report_timed("", "fwd", -1, prof[TT_BPROF_N]);
            for (int i = 0; i < TT_BPROF_N; ++i) tt_report_timed("", "b", i, prof[i]);
            continue;
        }
        if (c != 'T') continue;
        int label = board_uart_getc();
        int8_t *x = tt_model_input();
        for (int i = 0; i < TT_MODEL_INPUT_BYTES; ++i) x[i] = (int8_t)board_uart_getc();
        for (int i = 0; i <= TT_BPROF_N; ++i) prof[i] = 0;
        cur = TT_BPROF_N;
        last = board_cycles();
        uint32_t t0 = board_cycles();
        int rc = tt_model_train_step(label);
        tt_bprof_mark(-1);
        total = board_cycles() - t0;
        board_uart_write("R", 1);
        board_uart_write(&rc, 4);
    }
}
"""

MARK = re.compile(r"^    /\* b(\d+): (\S+) (\S+) \*/$")


def instrument(src: str) -> tuple[str, list[tuple[int, str, str, str]]]:
    """The generated tt_model.c with tt_bprof_mark(i) before backward step i (and -1 at its
    end) -> (text, [(i, kind, node, first kernel called)])."""
    out, steps, in_bwd = ["void tt_bprof_mark(int n);"], [], False
    for line in src.splitlines():
        if line.startswith("static int backward(int32_t label)") and not line.endswith(";"):
            in_bwd = True
        m = MARK.match(line) if in_bwd else None
        if m:
            out.append(f"    tt_bprof_mark({m.group(1)});")
            steps.append([int(m.group(1)), m.group(2), m.group(3), ""])
        elif in_bwd and steps and not steps[-1][3]:
            k = re.search(r"\b(tt_[a-z0-9_]+)\(", line)
            if k and not k.group(1).startswith("tt_update_key"):
                steps[-1][3] = k.group(1)
        if in_bwd and line.strip() == "tt_train_step_count++;":
            out.append("    tt_bprof_mark(-1);")
            in_bwd = False
        out.append(line)
    return "\n".join(out) + "\n", [tuple(s) for s in steps]


def build_profiled(out: Path, nsteps: int) -> Path:
    prof = out / "profile"
    prof.mkdir(exist_ok=True)
    (prof / "profile_main.c").write_text(PROFILE_MAIN)
    args = ["make", "--no-print-directory", "-f", "boards/common.mk", "firmware",
            f"BOARD={BOARD}", f"OUT={prof}",
            f"APP_SRCS={prof / 'profile_main.c'} {prof / 'tt_model.c'} {out / 'tt_model_weights.c'}",
            f"EXTRA_INCS={out}", f"EXTRA_CFLAGS=-DTT_BPROF_N={nsteps}"]
    p = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stdout + p.stderr)
    return prof / "firmware.elf"


def profile_steps(elf: Path, x: np.ndarray, labels) -> dict[str, int]:
    """Profile of the last of the training steps on x[i], labels[i] (the first step of a
    plan with a zero-initialised head back-propagates zeros)."""
    def talk(port):
        for xi, label in zip(x, labels):
            port.write(b"T" + bytes([label]) + np.ascontiguousarray(xi, np.int8).tobytes())
            if port.read(1) != b"R":
                raise RuntimeError("profiling firmware did not answer")
            port.read(4)
        port.write(b"P")
    _, res = firmware._serial_session(str(elf), BOARD, 600, talk)
    return res.timed


def run_plan(model: str) -> dict:
    g, prog, plan = load_plan_graph(models.load(model), str(PLANS / f"{model}.json"))
    kw = plan_firmware_kwargs(plan, prog, app="train-test")
    out = REPO / "build" / "bench" / f"train_profile_{model}"
    rep = firmware.build(g.copy(), BOARD, out, quiet=True, **kw)
    size = g.tensors[g.inputs[0]].shape[1]
    x = images.photo_batch(("chelsea", "coffee"), size=size)
    # whole step, checked against the reference trainer
    gr, st = g.copy(), tr.TrainState(kw["config"])
    ref = [np.asarray(tr.train_step(gr, prog, st, x[i:i + 1], LABELS[i]).logits).ravel()
           for i in range(len(LABELS))]
    y, _, rcs, cycles, blob = firmware.train_stream(rep["elf"], x, LABELS, 10,
                                                    rep["ram_param_bytes"])
    got = firmware.split_trained(gr, rep, blob)
    exact = (set(rcs) == {0} and np.array_equal(y, np.stack(ref))
             and all(np.array_equal(v, gr.node(n).params[p]) for (n, p), v in got.items()))
    # per-step profile of the second step (same code, timer marks added)
    src, steps = instrument((out / "tt_model.c").read_text())
    (out / "profile").mkdir(exist_ok=True)
    (out / "profile" / "tt_model.c").write_text(src)
    timed = profile_steps(build_profiled(out, len(steps)), x, LABELS)
    per = [dict(index=i, kind=k, node=n, kernel=kern, instructions=timed.get(f"b{i}", 0))
           for i, k, n, kern in steps]
    return dict(model=model, exact=bool(exact), step_instructions=int(cycles[-1]),
                forward_instructions=timed.get("fwd", 0),
                profiled_step_instructions=timed.get("total", 0),
                backward_instructions=sum(s["instructions"] for s in per), steps=per)


def show(r: dict, top: int) -> None:
    tot, fwd, bwd = r["step_instructions"], r["forward_instructions"], r["backward_instructions"]
    print(f"\n{r['model']}: step {tot / 1e6:.2f}M instructions (exact: "
          f"{'yes' if r['exact'] else 'NO'}), forward {fwd / 1e6:.2f}M, backward {bwd / 1e6:.2f}M "
          f"(profiled build)")
    by = defaultdict(lambda: [0, 0])
    for s in r["steps"]:
        key = s["kernel"] or f"({s['kind']})"
        by[key][0] += s["instructions"]
        by[key][1] += 1
    print(f"  {'backward kernel':34s} {'calls':>5s} {'instr':>11s} {'share':>6s}")
    for k, (v, n) in sorted(by.items(), key=lambda t: -t[1][0]):
        if v:
            print(f"  {k:34s} {n:5d} {v:11d} {100 * v / max(bwd, 1):5.1f}%")
    print(f"  top {top} backward steps:")
    for s in sorted(r["steps"], key=lambda s: -s["instructions"])[:top]:
        print(f"    b{s['index']:<4d} {s['kind']:18s} {s['node']:28s} {s['kernel']:30s} "
              f"{s['instructions']:9d}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    a = ap.parse_args(argv)
    res = []
    for m in a.models:
        r = run_plan(m)
        show(r, a.top)
        res.append(r)
    print("\nsummary (instructions per training step, QEMU -icount):")
    for r in res:
        print(f"  {r['model']:15s} {r['step_instructions'] / 1e6:7.2f}M  forward "
              f"{r['forward_instructions'] / 1e6:6.2f}M  backward "
              f"{r['backward_instructions'] / 1e6:6.2f}M  exact {'yes' if r['exact'] else 'NO'}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    results = REPO / "bench" / "results.json"
    data = json.loads(results.read_text()) if results.exists() else {}
    plans = data.setdefault("train_plans", {})
    for r in res:   # the published engine: ms per step at 216 MHz -> cycles
        cyc = PUBLISHED_MS[r["model"]] * 216_000
        plans[r["model"]] = {k: r[k] for k in ("step_instructions", "forward_instructions",
                                                "backward_instructions", "exact")}
        plans[r["model"]].update(published_cycles=cyc,
                                 ratio_to_published=round(r["step_instructions"] / cyc, 3))
    results.write_text(json.dumps(data, indent=1))
    print(f"wrote {results.relative_to(REPO)} (train_plans)")
    return 0 if all(r["exact"] for r in res) else 1


if __name__ == "__main__":
    sys.exit(main())
