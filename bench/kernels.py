"""Kernel micro-benchmark on the emulated Cortex-M7 (QEMU mps2-an500, -icount shift=0).

For typical layer shapes of the mcunet-5fps / mbv2-w0.35 backbones, runs every kernel in
the portable build and in the Arm DSP build and reports instructions per MAC (the board's
timer counts instructions under -icount; resolution 40 instructions). Outputs are also
checked against compiler.ref.ops on the target, so every number is of a bit-exact run.

    python bench/kernels.py [--json out.json] [--only SUBSTRING] [--rows] [--split]

--rows adds the same layers computed one output row per call (the fused block / patch
execution pattern), to show the per-call overhead of band execution.
--split runs every weight-reading kernel with its weights in two pieces (w_tail /
w_split, split at half the output channels, the sparse-training layout).
Not a test: numbers are printed, nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import harness
from tests import kernel_cases as kc

FLASH_BUDGET = 700 * 1024  # case stream + golden outputs per firmware image


def row_banded(c: kc.Case) -> kc.Case:
    ho = c.params[3]
    return kc.Case(c.op, c.params, c.arrays, c.expected, [(y, y + 1) for y in range(ho)],
                   c.name + " [1 row/call]", c.macs, c.split)


def chunks(cases: list[kc.Case]) -> list[list[kc.Case]]:
    out, cur, size = [], [], 0
    for c in cases:
        n = len(kc.encode([c])) + c.expected.size + 8
        if cur and size + n > FLASH_BUDGET:
            out.append(cur)
            cur, size = [], 0
        cur.append(c)
        size += n
    if cur:
        out.append(cur)
    return out


def run(cases: list[kc.Case], portable: bool, work: Path) -> list[tuple]:
    rows = []
    for i, group in enumerate(chunks(cases)):
        d = work / f"{'portable' if portable else 'dsp'}{i}"
        kc.write_cases_header(group, d / "gen" / "kernel_cases_data.h")
        defines = {"TT_DRIVER_EMBEDDED": None}
        if portable:
            defines["TT_PORTABLE"] = None
        elf = harness.build_firmware("qemu-mps2-an500", [kc.DRIVER_C], d / "fw",
                                     defines=defines, include_dirs=[d / "gen"],
                                     runtime_srcs=kc.KERNEL_SRCS)
        r = harness.run_qemu(elf, timeout=600)
        got = kc.parse_firmware_output(r.output.decode(errors="replace"), len(group))
        if len(got) != len(group):
            raise RuntimeError(f"firmware run failed: {r.describe()}")
        rows += got
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--only", help="only cases whose name contains this")
    ap.add_argument("--rows", action="store_true", help="also run one output row per call")
    ap.add_argument("--split", action="store_true",
                    help="weights split at half the output channels (w_tail / w_split)")
    args = ap.parse_args()
    cases = kc.bench_cases()
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    if args.rows:
        cases += [row_banded(c) for c in cases if c.op in kc.CONV_OPS]
    if args.split:
        cases = [kc.with_split(c, kc.out_channels(c) // 2) if c.op in kc.WEIGHT_OPS else c
                 for c in cases]
        for c in cases:
            if c.split is not None:
                c.name += " [split]"

    with tempfile.TemporaryDirectory() as td:
        work = Path(td)
        port = run(cases, True, work)
        dsp = run(cases, False, work)
    results = []
    hdr = (f"{'kernel':34s} {'MACs':>9s} {'portable':>11s} {'ins/MAC':>8s} {'DSP':>11s} "
           f"{'ins/MAC':>8s} {'MAC/ins':>8s} {'speedup':>7s}  exact")
    print(hdr)
    print("-" * len(hdr))
    tot_p = tot_d = tot_m = 0
    for c, p, d in zip(cases, port, dsp):
        ok = all(r[1] == 0 and r[2] == -1 for r in (p, d))
        ip, idsp = p[5], d[5]
        print(f"{c.name:34s} {c.macs:9d} {ip:11d} {ip / c.macs:8.2f} {idsp:11d} "
              f"{idsp / c.macs:8.2f} {c.macs / max(idsp, 1):8.2f} {ip / max(idsp, 1):7.2f}  "
              f"{'yes' if ok else 'NO'}")
        results.append(dict(name=c.name, op=c.op, macs=c.macs, portable_instructions=ip,
                            dsp_instructions=idsp, exact=ok))
        if c.op in kc.CONV_OPS and "row/call" not in c.name:
            tot_p, tot_d, tot_m = tot_p + ip, tot_d + idsp, tot_m + c.macs
    if tot_m:
        print("-" * len(hdr))
        print(f"{'conv-family total (full calls)':34s} {tot_m:9d} {tot_p:11d} {tot_p / tot_m:8.2f} "
              f"{tot_d:11d} {tot_d / tot_m:8.2f} {tot_m / tot_d:8.2f} {tot_p / tot_d:7.2f}")
    print("instructions = QEMU -icount instruction count of one call (timer resolution 40)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(r["exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
