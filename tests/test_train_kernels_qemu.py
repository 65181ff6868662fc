"""The training kernels on the emulated Cortex-M7 (QEMU mps2-an500), bit-exact with
compiler.ref.grad_ops, in both builds: the Arm DSP variants (default for -mcpu=cortex-m7)
and the portable ones (-DTT_PORTABLE). This also checks the float32 scale arithmetic on
the target's single-precision FPU (built with -ffp-contract=off, as every firmware).

The cases (tests/train_kernel_cases.py) and their golden outputs are compiled into the
firmware (tests/c/train_kernel_driver.c, TT_DRIVER_EMBEDDED); it runs them all and
prints one short line per case (status, first mismatch, instructions), so one QEMU run
covers the whole suite without pushing tensors through the slow UART.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import train_kernel_cases as tc

harness = pytest.importorskip("tests.harness")

BOARD = "qemu-mps2-an500"
pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None
                       or shutil.which("arm-none-eabi-gcc") is None,
                       reason="qemu-system-arm / arm-none-eabi-gcc not installed"),
]


def qemu_cases() -> list[tc.Case]:
    # the sweep splits the weights of a third of its weight-taking cases
    return (tc.sweep_cases(seed=99, small=True) + tc.split_edge_cases() + tc.perf_cases()
            + tc.per_axis_and_se_cases() + tc.fastpath_cases())


def run_cases(cases: list[tc.Case], out_dir: Path, portable: bool, timeout: float = 120):
    return tc.run_firmware(cases, out_dir, portable, timeout)  # tests/driver_cases.py


def check(cases, r, text, rows, variant):
    assert not r.timed_out, r.describe()
    assert f"BEGIN {len(cases)} {variant}" in text, r.describe()
    assert len(rows) == len(cases), r.describe()
    errs = []
    for (i, status, bad, got, want, _insns), c in zip(rows, cases):
        if status:
            errs.append(f"case {i} {c.describe()}: {tc.STATUS.get(status, status)}")
        elif bad == -2:
            errs.append(f"case {i} {c.describe()}: loss out of tolerance")
        elif bad >= 0:
            errs.append(f"case {i} {c.describe()}: first byte mismatch at {bad}: got {got} "
                        f"expected {want}")
    assert not errs, "\n".join(errs[:20])
    assert "DONE 0" in text and r.exit_code == 0, r.describe()


@pytest.mark.parametrize("variant", ["dsp", "portable"])
def test_train_kernels_bit_exact_on_qemu(tmp_path, variant, capsys):
    cases = qemu_cases()
    r, text, rows = run_cases(cases, tmp_path, portable=(variant == "portable"))
    check(cases, r, text, rows, variant)
    # instructions per MAC of the layer-sized cases (-icount shift=0: 40-instruction ticks)
    with capsys.disabled():
        print(f"\n[{variant}] instructions per MAC on the emulated Cortex-M7:")
        for (i, *_rest, insns), c in zip(rows, cases):
            if c.name.startswith("perf"):
                print(f"  {c.name[5:]:<34} {insns:>9} insns  {insns / c.macs:6.2f} /MAC")


def test_firmware_detects_a_wrong_golden(tmp_path):
    """The on-target comparison really compares: a corrupted golden output must fail."""
    cases = qemu_cases()[:3]
    bad = bytearray(cases[1].expected)
    bad[5] ^= 1
    cases[1].expected = bytes(bad)
    r, text, rows = run_cases(cases, tmp_path, portable=False)
    assert len(rows) == 3, r.describe()
    assert rows[0][2] == -1 and rows[2][2] == -1
    assert rows[1][2] == 5
    assert r.exit_code == 1 and "DONE 1" in text, r.describe()
