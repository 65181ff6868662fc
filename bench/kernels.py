"""Kernel micro-benchmark on the emulated Cortex-M7 (QEMU mps2-an500, -icount shift=0).

For typical layer shapes of the mcunet-5fps / mbv2-w0.35 backbones, runs every kernel in
the portable build and in the Arm DSP build and reports instructions per MAC (the board's
timer counts instructions under -icount; resolution 40 instructions). Outputs are also
checked against compiler.ref.ops on the target, so every number is of a bit-exact run.

    python bench/kernels.py [--json out.json] [--only SUBSTRING] [--rows] [--split] [--rq]
                            [--map]
    python bench/kernels.py --train [--json out.json] [--only SUBSTRING]

--rows adds the same layers computed one output row per call (the fused block / patch
execution pattern), to show the per-call overhead of band execution.
--split runs every weight-reading kernel with its weights in two pieces (w_tail /
w_split, split at half the output channels, the sparse-training layout).
--rq adds every conv / fc case run with the precomputed requantization records the
compiler gives a frozen layer (compiler/kernels/rq_records.py).
--map adds every depthwise case run with the whole-map scratch (tt_conv_params.dw_map,
which the plan gives small maps where the arena does not grow).
--train measures the backward kernels instead (tests/train_kernel_cases.py, golden
outputs from compiler.ref.grad_ops): input gradients and weight gradients fused with the
update of pointwise, depthwise, kxk conv and fc layers per MAC, and the elementwise
steps (gradient mask, prescale, requant_grad, bias update, add) per element, at layer
shapes of the pinned 256 KB plans (bench/plans).
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
from tests import train_kernel_cases as tc

FLASH_BUDGET = 700 * 1024  # case stream + golden outputs per firmware image


def row_banded(c: kc.Case) -> kc.Case:
    ho = c.params[3]
    return kc.Case(c.op, c.params, c.arrays, c.expected, [(y, y + 1) for y in range(ho)],
                   c.name + " [1 row/call]", c.macs, c.split)


def with_records(c: kc.Case) -> kc.Case:
    """The case run with its layer's precomputed requantization records (same output)."""
    return kc.Case(c.op, c.params, c.arrays, c.expected, c.bands, c.name + " [rq]", c.macs,
                   c.split, kc.records_of(c))


def whole_map(c: kc.Case) -> kc.Case:
    """The depthwise case run with the whole-map scratch (tt_conv_params.dw_map)."""
    m = kc.Case(c.op, c.params, c.arrays, c.expected, c.bands, c.name + " [map]", c.macs,
                c.split, c.rq)
    m.dw_map = True
    return m


def chunks(cases: list, enc=None) -> list[list]:
    """The cases in groups whose streams and golden outputs fit one firmware image."""
    enc = enc or (lambda c: len(kc.encode([c])) + c.expected.size + 8)
    out, cur, size = [], [], 0
    for c in cases:
        n = enc(c)
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


def train_cases() -> list[tuple[str, tc.Case, int]]:
    """(unit, case, units) of the backward kernels at the plans' layer shapes."""
    import numpy as np
    rng = np.random.default_rng(11)
    out = []

    def mac(c):
        out.append(("MAC", c, c.macs))

    def elem(c, n):
        out.append(("elem", c, n))

    for h, ci, co in [(8, 24, 144), (8, 144, 24), (4, 336, 112), (16, 16, 48)]:
        mac(tc.conv_grad_in_case("conv2d_1x1", h=h, w=h, ci=ci, co=co, k=1, rng=rng,
                                 name=f"1x1 grad_in {h}x{h} {co}->{ci}"))
    for h, c, s in [(8, 144, 1), (4, 336, 1), (12, 48, 1), (16, 32, 2)]:
        mac(tc.conv_grad_in_case("dwconv", h=h, w=h, ci=c, co=c, k=3, stride=s, pad=1, rng=rng,
                                 name=f"dw grad_in {h}x{h}x{c} 3x3 s{s}"))
    for h, c, s in [(8, 96, 1), (4, 192, 1), (12, 32, 2)]:
        mac(tc.conv_grad_in_case("dwconv", h=h, w=h, ci=c, co=c, k=5, stride=s, pad=2, rng=rng,
                                 name=f"dw grad_in {h}x{h}x{c} 5x5 s{s}"))
    for h, c, s in [(8, 96, 1), (4, 192, 1), (8, 96, 2)]:
        mac(tc.conv_grad_in_case("dwconv", h=h, w=h, ci=c, co=c, k=7, stride=s, pad=3, rng=rng,
                                 name=f"dw grad_in {h}x{h}x{c} 7x7 s{s}"))
    # spatial shapes of the pinned plans' depthwise layers (proxyless-w0.3 blocks.7, .5,
    # .16; fewer channels where the test firmware's RAM needs it)
    rp = np.random.default_rng(12)
    for h, c, k, s in [(16, 32, 7, 2), (16, 32, 5, 1), (4, 384, 7, 1)]:
        mac(tc.conv_grad_in_case("dwconv", h=h, w=h, ci=c, co=c, k=k, stride=s, pad=k // 2,
                                 rng=rp, name=f"dw grad_in {h}x{h}x{c} {k}x{k} s{s} (plan)"))
    mac(tc.conv_grad_in_case("conv2d", h=8, w=8, ci=16, co=16, k=3, pad=1, rng=rng,
                             name="conv grad_in 8x8 16->16 3x3"))
    mac(tc.fc_grad_in_case(ci=160, co=10, batch=1, rng=rng, name="fc grad_in 160<-10"))
    for h, ci, co, kk in [(4, 112, 224, 112), (8, 24, 144, 72), (8, 144, 24, 24)]:
        mac(tc.conv_grad_w_case("conv2d_1x1", h=h, w=h, ci=ci, co=co, k=1, rng=rng, kk=kk,
                                name=f"1x1 grad_w+upd {h}x{h} {ci}->{co} k={kk}"))
    mac(tc.conv_grad_w_case("conv2d_1x1", h=4, w=4, ci=112, co=224, k=1, rng=rng, kk=112,
                            regime="mid", name="1x1 grad_w+upd 4x4 112->224 k=112 f~0.05-13"))
    mac(tc.conv_grad_w_case("dwconv", h=8, w=8, ci=144, co=144, k=3, pad=1, rng=rng,
                            name="dw grad_w+upd 8x8x144 3x3"))
    mac(tc.conv_grad_w_case("conv2d", h=8, w=8, ci=16, co=16, k=3, pad=1, rng=rng,
                            name="conv grad_w+upd 8x8 16->16 3x3"))
    mac(tc.fc_grad_w_case(ci=160, co=10, batch=1, rng=rng, name="fc grad_w+upd 160->10 b1"))
    g = tc.random_grad(rng, (64, 144))
    elem(tc.prescale_case(g, rng.uniform(0.002, 0.05, 144)), g.size)
    mb = rng.integers(0, 256, g.size // 8 + 1)
    mb[rng.random(mb.size) < 0.3] = 255
    elem(tc.grad_mask_case(g.ravel(), mb, 0), g.size)
    acc = np.clip(rng.standard_normal(g.size) * 1e5, -2**31, 2**31 - 1).astype(np.int32)
    elem(tc.requant_grad_case(acc, np.float32(1e-6), 8, "max"), g.size)
    elem(tc.bias_case(pixels=64, c=144, rng=rng), g.size)
    elem(tc.add_grads_case(g.ravel(), np.float32(1e-3), tc.random_grad(rng, g.size),
                           np.float32(2e-3), 8, "max"), g.size)
    for unit, c, _ in out:
        c.name = c.name.split(" params")[0] if c.name else c.op
    return out


def run_train(only: str | None, json_out: Path | None) -> int:
    rows = [r for r in train_cases() if not only or only in r[1].name]
    cases = [c for _, c, _ in rows]
    res = {}
    with tempfile.TemporaryDirectory() as td:
        groups = chunks(cases, lambda c: len(tc.encode([c])) + len(c.expected) + 8)
        for portable in (True, False):
            res[portable] = []
            for i, group in enumerate(groups):
                _, text, got = tc.run_firmware(group, Path(td) / f"{portable}{i}", portable,
                                               timeout=600)
                if len(got) != len(group):
                    raise RuntimeError(f"firmware run failed:\n{text[-2000:]}")
                res[portable] += got
    hdr = (f"{'backward kernel':38s} {'units':>7s} {'portable':>10s} {'ins/unit':>8s} "
           f"{'DSP':>10s} {'ins/unit':>8s} {'speedup':>7s}  exact")
    print(hdr)
    print("-" * len(hdr))
    out, ok_all = [], True
    for (unit, c, n), p, d in zip(rows, res[True], res[False]):
        ok = all(r[1] == 0 and r[2] == -1 for r in (p, d))
        ok_all &= ok
        ip, idsp = p[5], d[5]
        print(f"{c.name:38s} {n:7d} {ip:10d} {ip / n:8.2f} {idsp:10d} {idsp / n:8.2f} "
              f"{ip / max(idsp, 1):7.2f}  {'yes' if ok else 'NO'}  (per {unit})")
        out.append(dict(name=c.name, op=c.op, unit=unit, units=n, portable_instructions=ip,
                        dsp_instructions=idsp, exact=ok))
    print("instructions = QEMU -icount instruction count of one call (timer resolution 40)")
    if json_out:
        json_out.write_text(json.dumps(out, indent=1))
    return 0 if ok_all else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--only", help="only cases whose name contains this")
    ap.add_argument("--rows", action="store_true", help="also run one output row per call")
    ap.add_argument("--split", action="store_true",
                    help="weights split at half the output channels (w_tail / w_split)")
    ap.add_argument("--rq", action="store_true",
                    help="also run every conv / fc case with the precomputed requantization "
                         "records of a frozen layer (compiler/kernels/rq_records.py)")
    ap.add_argument("--map", action="store_true",
                    help="also run every depthwise case with the whole-map scratch (dw_map)")
    ap.add_argument("--train", action="store_true",
                    help="the backward kernels (per MAC / per element) instead")
    args = ap.parse_args()
    if args.train:
        return run_train(args.only, args.json)
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
    if args.rq:
        cases += [with_records(c) for c in cases if kc.records_of(c) is not None]
    if args.map:
        cases += [whole_map(c) for c in cases if c.op.startswith("dwconv")]

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
