"""Training-step benchmark on the emulated Cortex-M7: for each real model (new 10-class
head) and trainable set, instructions per training step on QEMU (-icount shift=0),
RAM (arena, trained parameters, linked total) and flash, or the plan's RAM need when it
does not fit the 256 KB board. Writes bench/results.json (section "train_steps").

    .venv/bin/python bench/train_steps.py [--size 128] [--models ...]
    .venv/bin/python bench/train_steps.py --plans [models]   (bench/train_profile.py: the
        pinned bench/plans/<model>.json plans, with a per-step backward profile)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import images, models
from compiler.ir.errors import exit_on_error
from compiler.sparse import heads
from compiler.target import firmware

MODELS = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]
SETS = {
    "head": lambda g: ad.last_layers(g, 1),
    "biases(last 6) + head": lambda g: {**ad.bias_only(g, 6), **ad.last_layers(g, 1)},
    "last block + head": lambda g: ad.last_blocks(g, 1),
    "last block (1/8 ch) + head": lambda g: {**ad.last_blocks(g, 1, ratio=0.125), **ad.last_layers(g, 1)},
}
RESULTS = REPO / "bench" / "results.json"


@exit_on_error()  # a bad model (unknown, missing, corrupt): one error line, exit 2
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--plans"]:
        from bench import train_profile
        return train_profile.main(["--models", *argv[1:]] if argv[1:] else [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args(argv)
    models.require(*a.models)  # an unknown model stops here, before any build
    res = {}
    print(f"training step on qemu-mps2-an500, input {a.size}x{a.size}, batch 1, new 10-class head")
    print(f"  {'model':<15} {'trainable set':<28} {'instr/step':>12} "
          f"{'arena KB':>9} {'params KB':>9} {'RAM KB':>8} {'flash KB':>9}")
    for m in a.models:
        g = heads.with_input_size(heads.replace_head(models.load(m), 10, init="seeded"), a.size)
        x = images.photo_batch(("chelsea", "coffee"), size=a.size)
        res[m] = {}
        for name, fn in SETS.items():
            prog = ad.build_program(g, fn(g))
            out = REPO / "build" / "bench" / ("train_" + m + "_" + re.sub(r"[^0-9A-Za-z]+", "_", name))
            try:
                rep = firmware.build(g, "qemu-mps2-an500", out, program=prog,
                                     config=tr.TrainConfig(lr=0.001), quiet=True)
            except firmware.BudgetError as e:
                need = str(e).splitlines()[0]
                res[m][name] = {"fits": False, "message": need}
                print(f"  {m:<15} {name:<28} does not fit: {need}")
                continue
            _, _, rcs, cycles, _ = firmware.train_stream(rep["elf"], x, [1, 2], 10,
                                                         rep["ram_param_bytes"])
            r = {"fits": True, "instructions_per_step": int(np.max(cycles)),
                 "arena_bytes": rep["arena_bytes"], "trained_param_bytes": rep["ram_param_bytes"],
                 "ram_linked_bytes": rep["linked"]["ram"], "flash_linked_bytes": rep["linked"]["flash"],
                 "backward_steps": len(prog.steps), "return_codes": sorted(set(rcs))}
            res[m][name] = r
            print(f"  {m:<15} {name:<28} {r['instructions_per_step'] / 1e6:11.1f}M "
                  f"{r['arena_bytes'] / 1024:9.1f} {r['trained_param_bytes'] / 1024:9.1f} "
                  f"{r['ram_linked_bytes'] / 1024:8.1f} {r['flash_linked_bytes'] / 1024:9.1f}",
                  flush=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["train_steps"] = {"input_size": a.size, "models": res}
    RESULTS.write_text(json.dumps(data, indent=1))
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
