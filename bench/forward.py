"""Forward-pass benchmark of the three real models on the emulated Cortex-M7.

For each model: peak SRAM (linked firmware and plan), flash, instructions per inference
on QEMU (-icount shift=0; the CMSDK timer gives 40-instruction resolution), MACs per
instruction, with the Arm DSP kernels and with the portable C kernels, with and without
block fusion. Writes bench/results.json (section "forward") and prints a table.

    .venv/bin/python bench/forward.py [--models mcunet-5fps ...] [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.frontend import images, models
from compiler.ir.errors import exit_on_error
from compiler.target import firmware

MODELS = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]
# Published / measured points of comparison (instructions or cycles per inference).
REFERENCE_POINTS = {
    "mcunet-5fps": {"tinyengine_cycles_216mhz_5fps": 43_000_000,
                    "cmsis_nn_instructions_qemu": 86_000_000},
}
RESULTS = REPO / "bench" / "results.json"


def bench_model(name: str, variants) -> dict:
    g = models.load(name)
    x = images.photo_batch(("chelsea",))
    macs = g.macs()
    out = {"macs": macs, "backbone_macs": macs - sum(g.node_macs(n) for n in g.classifier_nodes()),
           "variants": {}}
    for fuse, portable in variants:
        key = f"{'portable' if portable else 'dsp'}_fuse-{fuse}"
        t = time.time()
        rep = firmware.build(g, "qemu-mps2-an500", REPO / "build" / "bench" / f"{name}_{key}",
                             fuse=fuse, portable=portable, profile=True, quiet=True)
        _, cycles, steps = firmware.infer(rep["elf"], x, 1000, profile=True)
        insns = cycles[0]
        out["variants"][key] = {
            "instructions": insns, "macs_per_instruction": round(macs / insns, 3),
            "ram_linked_bytes": rep["linked"]["ram"], "flash_linked_bytes": rep["linked"]["flash"],
            "arena_bytes": rep["arena_bytes"], "peak_step": rep["layers"][rep["peak_step"]]["name"],
            "top_steps": sorted(steps.items(), key=lambda kv: -kv[1])[:5],
            "seconds": round(time.time() - t, 1)}
        print(f"  {name:<15} {key:<20} {insns / 1e6:7.1f}M instr  {macs / insns:5.2f} MAC/instr  "
              f"RAM {rep['linked']['ram'] / 1024:6.1f} KB  flash {rep['linked']['flash'] / 1024:6.1f} KB",
              flush=True)
    out["reference_points"] = REFERENCE_POINTS.get(name, {})
    return out


@exit_on_error()  # a bad model (unknown, missing, corrupt): one error line, exit 2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--quick", action="store_true", help="DSP + fused variant only")
    a = ap.parse_args(argv)
    models.require(*a.models)  # an unknown model stops here, before any build
    variants = [("auto", False)] if a.quick else [("auto", False), ("auto", True), ("none", False)]
    print("forward pass on qemu-mps2-an500 (Cortex-M7), 128x128 input, batch 1")
    res = {m: bench_model(m, variants) for m in a.models}
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["forward"] = res
    RESULTS.write_text(json.dumps(data, indent=1))
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
