"""Host tests of the int8 forward kernels (runtime_c/src) against compiler.ref.ops.

The kernels and the stdin/stdout driver (tests/c/kernel_driver.c) are compiled once per
session with the host gcc (-std=c99 -Wall -Wextra -Werror) in four variants:
  portable                the portable C99 kernels
  dsp-emulated            the Arm DSP kernels on C models of the DSP instructions
  sanitize-*              the same under AddressSanitizer + UndefinedBehaviorSanitizer
Every case runs through every variant and must be bit-exact with the reference; the
driver also checks guard bytes around every output and scratch buffer. The real DSP
instructions are checked on the emulated Cortex-M7 (tests/test_kernels_qemu.py).
"""
from __future__ import annotations

import concurrent.futures
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests import kernel_cases as kc

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not found")

SETTINGS = settings(max_examples=60, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="session")
def drivers(tmp_path_factory):
    out = tmp_path_factory.mktemp("kernel_drivers")
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = {v: ex.submit(kc.build_host_driver, out, v) for v in kc.HOST_VARIANTS}
        return {v: f.result() for v, f in futs.items()}


def run_all(drivers, cases: list[kc.Case]) -> dict[str, list[kc.Result]]:
    errs, results = [], {}
    for variant, exe in drivers.items():
        res = kc.run_host_driver(exe, cases)
        results[variant] = res
        errs += kc.check_results(cases, res, variant)
    assert not errs, "\n".join(errs[:20])
    return results


# ---- deterministic coverage ---------------------------------------------------------

def test_sweep(drivers):
    """Every entry point x kernel sizes x strides x pads x channel tails x regimes."""
    run_all(drivers, kc.sweep_cases(seed=1234))


def test_per_axis(drivers):
    """Kernel, stride and padding differing per axis on non-square maps (conv, depthwise,
    the depthwise dispatcher, max pool)."""
    run_all(drivers, kc.per_axis_cases())


def test_asym_pad(drivers):
    """Padding that differs between the two sides of an axis (conv, depthwise, the
    dispatcher, max pool): leading pads and the output size reach the kernel."""
    run_all(drivers, kc.asym_pad_cases())


def test_mul_requant_edges(drivers):
    """tt_mul_s8's and tt_concat_s8's requantization from tiny to large multipliers, the
    largest products."""
    run_all(drivers, kc.mul_edge_cases() + kc.concat_edge_cases())


def test_random_shapes(drivers):
    """The random case sets the QEMU test runs, on the host variants."""
    run_all(drivers, kc.random_cases(1, 120) + kc.random_cases(2, 120))


def test_sweep_firmware_suite(drivers):
    """The (smaller) suite the QEMU test embeds passes on the host too."""
    run_all(drivers, kc.sweep_cases(seed=99, small=True))


@pytest.mark.parametrize("op,k,stride,pad", [
    ("dwconv_3x3_s1", 3, 1, 1), ("dwconv_3x3_s2", 3, 2, 1), ("dwconv", 5, 1, 2),
    ("dwconv", 7, 2, 3), ("dwconv", 3, 2, 0), ("conv2d", 3, 2, 1), ("conv2d", 3, 1, 1),
    ("conv2d_1x1", 1, 1, 0), ("conv2d_1x1", 1, 2, 0)])
def test_bands_match_full_tensor(drivers, op, k, stride, pad):
    """Row-by-row, random bands and one full call all give the same tensor."""
    shape = dict(h=11, w=9, ci=6, co=5, k=k, stride=stride, pad=pad, seed=5 + k + stride)
    full = kc.conv_case(op, **shape, regime="typical")
    ho = full.params[3]
    rows = kc.conv_case(op, **shape, regime="typical", bands=[(y, y + 1) for y in range(ho)])
    rand = kc.conv_case(op, **shape, regime="typical", bands="random")
    halves = kc.conv_case(op, **shape, regime="typical", bands=[(0, ho // 2), (ho // 2, ho)])
    res = run_all(drivers, [full, rows, rand, halves])
    for variant, r in res.items():
        for other in r[1:]:
            np.testing.assert_array_equal(other.out, r[0].out, err_msg=variant)


def test_first_conv(drivers):
    """3x3 convs over 3 channels (the first-conv path that widens interior pixel pairs
    straight from the input), bit-exact on every variant."""
    run_all(drivers, kc.first_conv_cases())


def test_dw_map(drivers):
    """Depthwise 3x3 with the whole-map scratch (dw_map): the kernels stay bit-exact
    and within it (guard bytes) on every variant."""
    run_all(drivers, kc.dw_map_cases())


def test_split_weights(drivers):
    """Weights in two pieces (w_tail / w_split): every weight-reading entry point at the
    edges of the split and inside the DSP channel pairs / groups, bit-exact with the
    (unsplit) reference; the driver puts garbage where a wrong row computation would read."""
    cases = kc.split_edge_cases()
    assert {c.op for c in cases} == set(kc.WEIGHT_OPS)
    run_all(drivers, cases)


def test_bands_partial_range(drivers):
    """A call for rows [y0, y1) writes exactly those rows (guards around the band)."""
    case = kc.conv_case("dwconv_3x3_s1", h=9, w=7, ci=5, co=5, k=3, stride=1, pad=1, seed=3,
                        bands=[(0, 2), (2, 3), (3, 8), (8, 9)])
    run_all(drivers, [case])


def test_mobilenet_shapes(drivers):
    """A few real layer shapes (larger than the fuzzed ones), with bands."""
    cases = [
        kc.conv_case("conv2d", h=32, w=32, ci=3, co=16, k=3, stride=2, pad=1, seed=1,
                     bands=[(0, 5), (5, 16)]),
        kc.conv_case("dwconv_3x3_s1", h=16, w=16, ci=48, co=48, k=3, stride=1, pad=1, seed=2,
                     bands="random"),
        kc.conv_case("dwconv_3x3_s2", h=16, w=16, ci=48, co=48, k=3, stride=2, pad=1, seed=3),
        kc.conv_case("dwconv", h=16, w=16, ci=20, co=20, k=7, stride=2, pad=3, seed=4,
                     bands="random"),
        kc.conv_case("dwconv", h=8, w=8, ci=36, co=36, k=5, stride=1, pad=2, seed=5),
        kc.conv_case("conv2d_1x1", h=16, w=16, ci=48, co=8, k=1, stride=1, pad=0, seed=6,
                     bands="random"),
        kc.conv_case("conv2d_1x1", h=16, w=16, ci=8, co=48, k=1, stride=1, pad=0, seed=7),
        kc.fc_case(ci=160, co=10, batch=1, seed=8),
        kc.add_case(n=4096, seed=9),
        kc.avgpool_case(h=4, w=4, c=160, seed=10),
    ]
    run_all(drivers, cases)


# ---- property-based --------------------------------------------------------------------

zero_points = st.one_of(st.sampled_from([-128, -1, 0, 1, 127]), st.integers(-128, 127))
regimes = st.sampled_from(["typical", "typical", "mixed", "extreme"])


@st.composite
def act_ranges(draw):
    kind = draw(st.sampled_from(["full", "relu", "any"]))
    if kind == "full":
        return -128, 127
    lo = draw(st.integers(-128, 127))
    hi = 127 if kind == "relu" else draw(st.integers(lo, 127))
    return lo, hi


@st.composite
def bands_for(draw, ho: int):
    kind = draw(st.sampled_from(["full", "cuts"]))
    if kind == "full" or ho == 1:
        return None
    cuts = draw(st.lists(st.integers(1, ho - 1), max_size=min(5, ho - 1), unique=True))
    edges = [0, *sorted(cuts), ho]
    return list(zip(edges[:-1], edges[1:])) or None


def splits_for(co: int):
    """About a third of the cases get split weights (any split point, or a NULL tail)."""
    return st.one_of(st.none(), st.none(), st.integers(-1, co))


@st.composite
def conv_cases(draw, op: str):
    if op == "dwconv_3x3_s1":
        k, kw, stride = 3, 3, 1
    elif op == "dwconv_3x3_s2":
        k, kw, stride = 3, 3, 2
    elif op == "conv2d_1x1":
        k, kw, stride = 1, 1, draw(st.integers(1, 2))
    elif op in ("dwconv", "dwconv_wrapper"):
        k = draw(st.sampled_from([3, 5, 7, 1, 2, 4]))
        kw, stride = k, draw(st.sampled_from([1, 2, 2, 3]))
    elif op == "conv2d_3x3x3":
        k, kw, stride = 3, 3, draw(st.integers(1, 3))
    else:
        k = draw(st.integers(1, 5))
        kw = draw(st.sampled_from([k, k, 1, 3]))
        stride = draw(st.integers(1, 3))
    pad = 0 if op == "conv2d_1x1" else draw(st.integers(0, max(k, kw)))
    h = draw(st.integers(max(1, k - 2 * pad), 12))
    w = draw(st.integers(max(1, kw - 2 * pad), 24 if op == "conv2d_3x3x3" else 12))
    ci = 3 if op == "conv2d_3x3x3" else draw(st.integers(1, 20))
    if op == "conv2d_3x3x3":
        op = "conv2d"
    co = draw(st.integers(1, 20))
    ho = (h + 2 * pad - k) // stride + 1
    case = kc.conv_case(op, h=h, w=w, ci=ci, co=co, k=k, kw=kw, stride=stride, pad=pad,
                        seed=draw(st.integers(0, 2**32 - 1)), regime=draw(regimes),
                        act=draw(act_ranges()), x_zero=draw(zero_points), y_zero=draw(zero_points),
                        bands=draw(bands_for(ho)))
    case.split = draw(splits_for(kc.out_channels(case)))
    return case


@SETTINGS
@given(cases=st.lists(conv_cases("dwconv_3x3_s1"), min_size=1, max_size=4))
def test_dwconv_3x3_s1_random(drivers, cases):
    run_all(drivers, cases)


@SETTINGS
@given(cases=st.lists(conv_cases("dwconv_3x3_s2"), min_size=1, max_size=4))
def test_dwconv_3x3_s2_random(drivers, cases):
    run_all(drivers, cases)


@SETTINGS
@given(cases=st.lists(conv_cases("dwconv"), min_size=1, max_size=4))
def test_dwconv_random(drivers, cases):
    run_all(drivers, cases)


@SETTINGS
@given(cases=st.lists(conv_cases("dwconv_wrapper"), min_size=1, max_size=4))
def test_dwconv_wrapper_random(drivers, cases):
    """tt_dwconv_wrapper_s8 on random depthwise shapes (3x3 s1 / s2 reach the specialised
    kernels, the rest tt_dwconv_s8), bit-exact with the reference."""
    run_all(drivers, cases)


@SETTINGS
@given(cases=st.lists(conv_cases("conv2d_1x1"), min_size=1, max_size=4))
def test_conv2d_1x1_random(drivers, cases):
    run_all(drivers, cases)


@SETTINGS
@given(cases=st.lists(conv_cases("conv2d"), min_size=1, max_size=4))
def test_conv2d_random(drivers, cases):
    run_all(drivers, cases)


@SETTINGS
@given(cases=st.lists(conv_cases("conv2d_3x3x3"), min_size=1, max_size=4))
def test_conv2d_3x3_over_3_channels_random(drivers, cases):
    """Random geometry for the first-conv path (3x3 taps, 3 input channels)."""
    run_all(drivers, cases)


@SETTINGS
@given(ci=st.integers(1, 70), co=st.integers(1, 20), batch=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1), regime=regimes, act=act_ranges(), data=st.data())
def test_fc_random(drivers, ci, co, batch, seed, regime, act, data):
    case = kc.fc_case(ci=ci, co=co, batch=batch, seed=seed, regime=regime, act=act)
    case.split = data.draw(splits_for(co))
    run_all(drivers, [case])


@SETTINGS
@given(n=st.integers(1, 700), seed=st.integers(0, 2**32 - 1),
       regime=st.sampled_from(["typical", "extreme"]), act=act_ranges())
def test_add_random(drivers, n, seed, regime, act):
    run_all(drivers, [kc.add_case(n=n, seed=seed, regime=regime, act=act)])


@SETTINGS
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 20),
       seed=st.integers(0, 2**32 - 1))
def test_avgpool_random(drivers, h, w, c, seed):
    run_all(drivers, [kc.avgpool_case(h=h, w=w, c=c, seed=seed)])


@SETTINGS
@given(h=st.integers(1, 10), w=st.integers(1, 10), c=st.integers(1, 20), k=st.integers(1, 4),
       kw=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2),
       seed=st.integers(0, 2**32 - 1))
def test_maxpool_random(drivers, h, w, c, k, kw, stride, pad, seed):
    assume(2 * pad <= min(k, kw) and h + 2 * pad >= k and w + 2 * pad >= kw)
    run_all(drivers, [kc.maxpool_case(h=h, w=w, c=c, kh=k, kw=kw, stride=stride, pad=pad, seed=seed)])


@SETTINGS
@given(pixels=st.integers(1, 40), channels=st.lists(st.integers(1, 17), min_size=1, max_size=5),
       seed=st.integers(0, 2**32 - 1))
def test_concat_random(drivers, pixels, channels, seed):
    run_all(drivers, [kc.concat_case(pixels=pixels, channels=channels, seed=seed)])


@SETTINGS
@given(pixels=st.integers(1, 40), c=st.integers(1, 20), bcast=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_mul_random(drivers, pixels, c, bcast, seed):
    run_all(drivers, [kc.mul_case(pixels=pixels, c=c, bcast=bcast, seed=seed)])


@SETTINGS
@given(n=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_lut_random(drivers, n, seed):
    run_all(drivers, [kc.lut_case(n=n, seed=seed)])


@SETTINGS
@given(rows=st.integers(1, 4), c=st.integers(1, 20), seed=st.integers(0, 2**32 - 1),
       regime=st.sampled_from(["typical", "mixed", "extreme"]))
def test_requantize_random(drivers, rows, c, seed, regime):
    run_all(drivers, [kc.requantize_case(rows=rows, c=c, seed=seed, regime=regime)])


def test_scratch_sizes_are_constant_expressions(tmp_path):
    """The TT_*_SCRATCH_BYTES macros size static arrays and equal the functions."""
    src = tmp_path / "scratch.c"
    src.write_text("""
#include "tt_kernels.h"
static char a[TT_CONV2D_S8_SCRATCH_BYTES(3, 3, 3, 16)];
static char b[TT_CONV2D_1X1_S8_SCRATCH_BYTES(48)];
static char c[TT_DWCONV_S8_SCRATCH_BYTES(64, 3, 3, 1)];
static char d[TT_FC_S8_SCRATCH_BYTES(160)];
int main(void) {
    tt_conv_params p = {0};
    p.in_w = 64; p.in_c = 3; p.out_c = 16; p.k_h = 3; p.k_w = 3; p.pad = 1;
    if (tt_conv2d_s8_scratch_bytes(&p) != sizeof a) return 1;
    p.in_c = 48;
    if (tt_conv2d_1x1_s8_scratch_bytes(&p) != sizeof b) return 2;
    if (tt_dwconv_s8_scratch_bytes(&p) != sizeof c) return 3;
    if (tt_dwconv_3x3_s1_s8_scratch_bytes(&p) != sizeof c) return 4;
    tt_fc_params f = {0};
    f.in_c = 160;
    if (tt_fc_s8_scratch_bytes(&f) != sizeof d) return 5;
    return 0;
}
""")
    exe = tmp_path / "scratch"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{kc.INCLUDE}", str(src),
                    *map(str, kc.KERNEL_SRCS), "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)]).returncode == 0


def test_dwconv_wrapper_dispatch(tmp_path):
    """tt_dwconv_wrapper_select_s8 (the one place that picks a depthwise variant; the
    generated code calls the wrapper) sends 3x3 stride 1 / 2 to the specialised kernels
    and everything else to the general one, for every kernel size / stride / pad here,
    and the wrapper's scratch size (function and macro) is that kernel's."""
    def variant(kh, kw, stride):
        return f"tt_dwconv_3x3_s{stride}_s8" if kh == kw == 3 and stride in (1, 2) else "tt_dwconv_s8"

    rows = []
    for kh in (1, 2, 3, 4, 5, 7):
        for kw in sorted({kh, 1, 3, 5}):
            for stride in (1, 2, 3):
                for pad in (0, 1, 2, 3):
                    v = variant(kh, kw, stride)
                    rows.append(f"    {{{kh}, {kw}, {stride}, {pad}, {v}, {v}_scratch_bytes}},")
    src = tmp_path / "dispatch.c"
    src.write_text("""
#include <stdio.h>
#include "tt_kernels.h"
static const struct {
    int32_t kh, kw, stride, pad;
    tt_spatial_kernel fn;
    size_t (*scratch)(const tt_conv_params *);
} rows[] = {
""" + "\n".join(rows) + """
};
int main(void) {
    for (int i = 0; i < (int)(sizeof rows / sizeof rows[0]); ++i) {
        tt_conv_params p = {0};
        p.in_h = p.in_w = 11; p.in_c = p.out_c = 6;
        p.k_h = rows[i].kh; p.k_w = rows[i].kw; p.stride = rows[i].stride; p.pad = rows[i].pad;
        p.out_h = tt_conv_out_size(p.in_h, p.k_h, p.stride, p.pad);
        p.out_w = tt_conv_out_size(p.in_w, p.k_w, p.stride, p.pad);
        int bad = tt_dwconv_wrapper_select_s8(&p) != rows[i].fn ? 1
                  : tt_dwconv_wrapper_s8_scratch_bytes(&p) != rows[i].scratch(&p) ? 2
                  : TT_DWCONV_WRAPPER_S8_SCRATCH_BYTES(p.in_w, p.k_h, p.k_w, p.pad)
                        != rows[i].scratch(&p) ? 3 : 0;
        if (bad) {
            printf("row %d (k %dx%d s%d p%d): check %d\\n", i, (int)rows[i].kh, (int)rows[i].kw,
                   (int)rows[i].stride, (int)rows[i].pad, bad);
            return 1;
        }
    }
    return 0;
}
""")
    exe = tmp_path / "dispatch"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{kc.INCLUDE}", str(src),
                    *map(str, kc.KERNEL_SRCS), "-o", str(exe)], check=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


POOL_SETTINGS = settings(SETTINGS, max_examples=25)


@POOL_SETTINGS
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 20),
       seed=st.integers(0, 2**32 - 1))
def test_avgpool_requant_random(drivers, h, w, c, seed):
    run_all(drivers, [kc.avgpool_requant_case(h=h, w=w, c=c, seed=seed)])


@POOL_SETTINGS
@given(h=st.integers(1, 10), w=st.integers(1, 10), c=st.integers(1, 12), kh=st.integers(1, 4),
       kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2),
       pw=st.integers(0, 2), cip=st.booleans(), requant=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_avg_pool_random(drivers, h, w, c, kh, kw, sh, sw, ph, pw, cip, requant, seed):
    assume(2 * ph <= kh and 2 * pw <= kw and h + 2 * ph >= kh and w + 2 * pw >= kw)
    run_all(drivers, [kc.avg_pool_case(h=h, w=w, c=c, kh=kh, kw=kw, stride=(sh, sw), pad=(ph, pw),
                                       count_include_pad=cip, requant=requant, seed=seed)])
