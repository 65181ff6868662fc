"""The int8 forward kernels on the emulated Cortex-M7 (QEMU mps2-an500), bit-exact with
compiler.ref.ops, in both builds: the Arm DSP variants (default for -mcpu=cortex-m7) and
the portable ones (-DTT_PORTABLE).

The cases (tests/kernel_cases.py) and their golden outputs are compiled into the
firmware (tests/c/kernel_driver.c, TT_DRIVER_EMBEDDED); it runs them all and prints one
short line per case (status, first mismatch, instructions), so one QEMU run covers the
whole suite without pushing tensors through the slow UART.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests import kernel_cases as kc

harness = pytest.importorskip("tests.harness")

BOARD = "qemu-mps2-an500"
pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="qemu-system-arm / arm-none-eabi-gcc not installed")


def qemu_cases() -> list[kc.Case]:
    """The small systematic sweep (a third of its weight-reading cases with split
    weights), the split edge cases, the per-axis cases, plus a few real layer shapes with
    bands."""
    cases = kc.sweep_cases(seed=99, small=True) + kc.split_edge_cases() + kc.per_axis_cases()
    cases += kc.asym_pad_cases()
    cases += kc.mul_edge_cases() + kc.concat_edge_cases() + kc.first_conv_cases(n=24)
    cases += kc.dw_map_cases()
    cases += [
        kc.conv_case("conv2d", h=24, w=24, ci=3, co=16, k=3, stride=2, pad=1, seed=11,
                     bands=[(0, 3), (3, 12)]),
        kc.conv_case("dwconv_3x3_s1", h=12, w=12, ci=48, co=48, k=3, stride=1, pad=1, seed=12,
                     bands="random"),
        kc.conv_case("dwconv_3x3_s1", h=9, w=11, ci=19, co=19, k=3, stride=1, pad=1, seed=13,
                     act=(-20, 90)),
        kc.conv_case("dwconv_3x3_s2", h=13, w=12, ci=24, co=24, k=3, stride=2, pad=1, seed=14,
                     bands="random"),
        kc.conv_case("dwconv", h=12, w=12, ci=12, co=12, k=7, stride=2, pad=3, seed=15),
        kc.conv_case("dwconv", h=8, w=8, ci=20, co=20, k=5, stride=1, pad=2, seed=16,
                     regime="mixed"),
        kc.conv_case("dwconv", h=8, w=8, ci=9, co=9, k=7, stride=1, pad=3, seed=17),
        kc.conv_case("conv2d_1x1", h=8, w=8, ci=48, co=8, k=1, stride=1, pad=0, seed=18,
                     bands="random"),
        kc.conv_case("conv2d_1x1", h=8, w=8, ci=8, co=48, k=1, stride=1, pad=0, seed=19,
                     regime="mixed"),
        kc.conv_case("conv2d_1x1", h=7, w=9, ci=21, co=7, k=1, stride=2, pad=0, seed=20),
        # the assembly pointwise rows (stride 1, in_c a multiple of 4, channel pairs) with
        # 5..9 groups of 4 input channels (every entry of the four-group loop), an odd
        # pixel count, one-pixel rows, two chunks (32 + 4 channels), an odd channel count
        kc.conv_case("conv2d_1x1", h=3, w=3, ci=20, co=36, k=1, stride=1, pad=0, seed=31,
                     act=(-128, 127)),
        kc.conv_case("conv2d_1x1", h=5, w=1, ci=24, co=6, k=1, stride=1, pad=0, seed=32,
                     act=(-128, 127), bands="random"),
        kc.conv_case("conv2d_1x1", h=2, w=3, ci=28, co=10, k=1, stride=1, pad=0, seed=33,
                     act=(-128, 127)),
        kc.conv_case("conv2d_1x1", h=1, w=3, ci=32, co=4, k=1, stride=1, pad=0, seed=34,
                     act=(-128, 127)),
        kc.conv_case("conv2d_1x1", h=3, w=3, ci=20, co=7, k=1, stride=1, pad=0, seed=35,
                     act=(-128, 127)),
        kc.conv_case("conv2d", h=5, w=5, ci=4, co=6, k=3, stride=1, pad=1, seed=36,
                     act=(-128, 127)),
        kc.fc_case(ci=160, co=10, batch=1, seed=21),
        kc.add_case(n=2000, seed=22),
        kc.avgpool_case(h=4, w=4, c=96, seed=23),
        kc.maxpool_case(h=9, w=7, c=24, kh=3, kw=3, stride=2, pad=1, seed=24),
        kc.maxpool_case(h=8, w=8, c=5, kh=2, kw=2, stride=2, pad=0, seed=25),
        kc.concat_case(pixels=30, channels=[8, 5, 16], seed=26),
        kc.mul_case(pixels=25, c=12, bcast=True, seed=27),
        kc.mul_case(pixels=9, c=7, bcast=False, seed=28),
        kc.lut_case(n=300, seed=29),
    ]
    # every hand-written DSP row loop: k in 3/5/7, stride 1/2, widths with and without a
    # remainder of the 4-wide blocks, full range (asm) and clamped (C), slow channels mixed in
    seed = 100
    for k in (3, 5, 7):
        for stride in (1, 2):
            for w, act, regime in [(9, (-128, 127), "typical"), (12, (-128, 127), "mixed"),
                                   (13, (-30, 90), "typical")]:
                seed += 1
                op = f"dwconv_3x3_s{stride}" if k == 3 else "dwconv"
                c = kc.conv_case(op, h=2 * k + 1, w=w * stride, ci=9, co=9, k=k,
                                 stride=stride, pad=k // 2, seed=seed, act=act,
                                 regime=regime, bands="random")
                if seed % 2:  # split inside the first / second group of 4 channels
                    c.split = 3 if seed % 4 == 1 else 6
                cases.append(c)
    return cases


def run_cases(cases: list[kc.Case], out_dir: Path, portable: bool, timeout: float = 300):
    return kc.run_firmware(cases, out_dir, portable, timeout)  # tests/driver_cases.py


@pytest.mark.parametrize("variant", ["dsp", "portable"])
def test_kernels_bit_exact_on_qemu(tmp_path, variant):
    cases = qemu_cases()
    r, text, rows = run_cases(cases, tmp_path, portable=(variant == "portable"))
    assert not r.timed_out, r.describe()
    assert f"BEGIN {len(cases)} {variant}" in text, r.describe()
    assert len(rows) == len(cases), r.describe()
    errs = []
    for (i, status, bad, got, want, _cycles), c in zip(rows, cases):
        if status:
            errs.append(f"case {i} {c.describe()}: {kc.STATUS.get(status, status)}")
        elif bad >= 0:
            errs.append(f"case {i} {c.describe()}: first mismatch at {bad}: got {got} "
                        f"expected {want}")
    assert not errs, "\n".join(errs[:20])
    assert "DONE 0" in text and r.exit_code == 0, r.describe()


@pytest.mark.parametrize("seed", [1, 2])
def test_random_shapes_dsp_on_qemu(tmp_path, seed):
    """Random shapes through the real DSP instructions and hand-written loops (the host
    tests run their C models)."""
    cases = kc.random_cases(seed, 120)
    r, text, rows = run_cases(cases, tmp_path, portable=False)
    assert len(rows) == len(cases), r.describe()
    errs = [f"case {i} {c.describe()}: status {st} first mismatch {bad}: got {g} expected {e}"
            for (i, st, bad, g, e, _), c in zip(rows, cases) if st or bad >= 0]
    assert not errs, "\n".join(errs[:20])


def test_firmware_detects_a_wrong_golden(tmp_path):
    """The on-target comparison really compares: a corrupted golden output must fail."""
    cases = qemu_cases()[:3]
    bad = cases[1]
    bad.expected = bad.expected.copy()
    bad.expected[0] = np.int8(bad.expected[0] ^ 1)
    r, text, rows = run_cases(cases, tmp_path, portable=False)
    assert len(rows) == 3, r.describe()
    assert rows[0][2] == -1 and rows[2][2] == -1
    assert rows[1][2] == 0
    assert r.exit_code == 1 and "DONE 1" in text, r.describe()
