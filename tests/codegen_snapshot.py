"""Snapshot of every generated C file for a fixed set of models and configurations.

    python tests/codegen_snapshot.py OUT_DIR        # writes OUT_DIR/<case>/... + MANIFEST

Used to show that a refactoring of the compiler leaves the generated C byte-identical:
run it before and after, then ``diff -r``. Cases: the three real models (forward with
and without fused blocks; last block + new head; biases only; half-channel sparse
update; head-only at lr_body 0) and random test models (forward; four trainable sets).
"""
from __future__ import annotations

import copy
import hashlib
import sys
from pathlib import Path

import specgen  # (tests/ on the path: run from the repository root or with pytest.ini)

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.codegen import generate as codegen
from compiler.frontend import models
from compiler.memory import schedule as memplan
from compiler.memory import training as train_codegen
from compiler.sparse import heads


def _cases():
    for name in ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"):
        base = models.load(name)
        yield f"{name}-fwd-auto", base, None, None, "auto"
        yield f"{name}-fwd-none", base, None, None, "none"
        g = heads.with_input_size(heads.replace_head(base, 10, init="zero"), 64)
        yield f"{name}-lastblock", g, ad.last_blocks(g, 1), tr.TrainConfig(lr=0.01), "auto"
        yield f"{name}-bias", g, ad.bias_only(g), tr.TrainConfig(lr=0.003, lr_body=0.001), "auto"
        yield (f"{name}-half", g, ad.last_blocks(g, 3, ratio=0.5),
               tr.TrainConfig(lr=0.003, lr_body=0.0, loss_range_mode="max"), "auto")
    for seed in (1, 2, 5, 7):
        g = specgen.random_graph(seed)
        yield f"random{seed}-fwd", g, None, None, "auto"
        for which, fn in (("last", lambda g: ad.last_blocks(g, 1)),
                          ("whole", lambda g: ad.whole_model(g)),
                          ("half", lambda g: ad.last_blocks(g, 2, ratio=0.5)),
                          ("bias", lambda g: ad.bias_only(g))):
            yield f"random{seed}-{which}", g, fn(g), tr.TrainConfig(rounding="nearest"), "auto"


def main(out: str) -> int:
    out_dir = Path(out)
    lines = []
    for case, g, trainable, cfg, fuse in _cases():
        g = copy.deepcopy(g)
        d = out_dir / case
        if trainable is None:
            plan, prog = memplan.plan(g, fuse), None
        else:
            prog = ad.build_program(g, trainable)
            plan = train_codegen.plan_training(g, prog, fuse)
        codegen.generate(g, d, plan, program=prog, config=cfg)
        for f in sorted(d.iterdir()):
            lines.append(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {case}/{f.name}")
        print(case, flush=True)
    (out_dir / "MANIFEST").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/codegen-snapshot"))
