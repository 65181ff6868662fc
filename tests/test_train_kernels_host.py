"""Host tests of the training kernels (runtime_c/src/kernels, tt_train_math.h)
against compiler.ref.grad_ops, bit for bit.

The kernels and the stdin/stdout driver (tests/c/train_kernel_driver.c) are compiled
once per session with the host gcc (-std=c99 -Wall -Wextra -Werror -ffp-contract=off)
in four variants: portable, Arm DSP code on C models of the instructions, and both under
AddressSanitizer + UndefinedBehaviorSanitizer. Every case runs through every variant;
outputs are compared as bytes (float32 scales as exact bit patterns); the driver also
checks guard bytes around every output and scratch buffer. The real DSP instructions
and the Cortex-M7 FPU are checked on the emulated board (test_train_kernels_qemu.py).
"""
from __future__ import annotations

import concurrent.futures
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler.ref import grad_ops as rg
from tests import train_kernel_cases as tc

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not found")

SETTINGS = settings(max_examples=30, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow])
F32 = np.float32


@pytest.fixture(scope="session")
def drivers(tmp_path_factory):
    out = tmp_path_factory.mktemp("train_kernel_drivers")
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = {v: ex.submit(tc.build_host_driver, out, v) for v in tc.HOST_VARIANTS}
        return {v: f.result() for v, f in futs.items()}


def run_all(drivers, cases: list[tc.Case]) -> dict[str, list[tc.Result]]:
    errs, results = [], {}
    for variant, exe in drivers.items():
        res = tc.run_host_driver(exe, cases)
        results[variant] = res
        errs += tc.check_results(cases, res, variant)
    assert not errs, "\n".join(errs[:20])
    return results


seeds = st.integers(0, 2**32 - 1)
grad_bits = st.integers(2, 8)
modes = st.one_of(st.sampled_from(["max", "max/2", "max/4", "3*max/4"]),
                  st.integers(1, 64).map(lambda k: f"mean*{k}"))
roundings = st.sampled_from(rg.ROUNDINGS)


# ---- deterministic coverage ---------------------------------------------------------

def test_sweep(drivers):
    """Every kernel and helper x range modes x bit widths x roundings x shape tails."""
    run_all(drivers, tc.sweep_cases(seed=1234))


def test_firmware_suite(drivers):
    """The suites the QEMU test embeds pass on the host too."""
    run_all(drivers, tc.sweep_cases(seed=99, small=True) + tc.perf_cases() + tc.fastpath_cases())


def test_detects_a_wrong_golden(drivers):
    """The comparison really compares: one flipped bit of a scale fails."""
    cases = tc.sweep_cases(seed=5, small=True)
    i = next(j for j, c in enumerate(cases) if c.op == "requant_grad")
    bad = bytearray(cases[i].expected)
    bad[-12] ^= 1  # lowest bit of the float32 scale (followed by the int64 statistic)
    cases[i].expected = bytes(bad)
    exe = drivers["portable"]
    errs = tc.check_results(cases, tc.run_host_driver(exe, cases))
    assert len(errs) == 1 and f"case {i} " in errs[0]


def test_grad_in_bands_match_full_tensor(drivers):
    """Row by row, random bands and one full call give the same input gradient."""
    for op, k, s, p in [("conv2d", 3, 2, 1), ("conv2d_1x1", 1, 2, 0), ("conv2d_1x1", 1, 1, 0),
                        ("dwconv", 3, 1, 1), ("dwconv", 5, 2, 2)]:
        h = 9
        kw = dict(h=h, w=7, ci=6, co=5, k=k, stride=s, pad=p)
        cases = [tc.conv_grad_in_case(op, **kw, rng=np.random.default_rng(3), bands=b)
                 for b in (None, [(y, y + 1) for y in range(h)], [(0, 4), (4, 4), (4, 9)],
                           [(2, 5)])]
        cases[3].expected = b""  # a partial band: only check it runs cleanly (guards)
        res = tc.run_host_driver(drivers["sanitize-dsp-emulated"], cases)
        assert all(r.status == 0 for r in res), [r.status for r in res]
        assert res[1].out == res[0].out == cases[0].expected and res[2].out == res[0].out
        row = 7 * 6 * 4
        assert res[3].out[2 * row:5 * row] == res[0].out[2 * row:5 * row]
        for variant, exe in drivers.items():
            errs = tc.check_results(cases[:3], tc.run_host_driver(exe, cases[:3]), variant)
            assert not errs, errs


def test_grad_in_two_pass(drivers):
    """The two-pass input gradient (no int32 tensor) equals conv_grad_input + requant_grad
    for every band kernel, band height, range mode and bit width, from the int16 prescaled
    gradient or the int8 one (prescaled band by band); bad arguments refuse."""
    cases = tc.grad_in_two_pass_cases(seed=21)
    bad = tc.grad_in_two_pass_case("dwconv", h=4, w=4, ci=5, co=5, k=3, pad=1,
                                   rng=np.random.default_rng(2), rows=1, bits_=8)
    bad.params[-5] = 0                          # rows 0
    run_all(drivers, cases)
    for exe in drivers.values():
        (r,) = tc.run_host_driver(exe, [bad])
        assert r.status == 0 and r.out[:4] == tc._i32(tc.TT_ERR_ARG)


def test_split_weights(drivers):
    """Weights in two pieces (w_tail / w_split): every input gradient at the edges of the
    split and across the DSP cores' channel pairs and chunks, bit-exact with the (unsplit)
    reference; the weight updates touch only the head (k <= split) or refuse (k > split)."""
    cases = tc.split_edge_cases()
    assert {c.op for c in cases} == set(tc.GRAD_IN_OPS) | set(tc.GRAD_W_OPS)
    assert any(c.expected[:4] == tc._i32(tc.TT_ERR_ARG) for c in cases)
    run_all(drivers, cases)


def test_per_axis_and_se_kernels(drivers):
    """Per-axis geometry in the conv / depthwise gradient kernels and the max pool
    backward; the squeeze-excite and concat backward kernels."""
    cases = tc.per_axis_and_se_cases()
    assert {"lut_grad", "mul_grad", "mul_gate_grad", "concat_grad"} <= {c.op for c in cases}
    run_all(drivers, cases)


def test_last_block_shapes(drivers):
    """Real shapes of a trained last block (larger than the fuzzed ones)."""
    rng = np.random.default_rng(11)
    cases = [
        tc.conv_grad_in_case("conv2d_1x1", h=8, w=8, ci=48, co=160, k=1, rng=rng, bands="random"),
        tc.conv_grad_w_case("conv2d_1x1", h=8, w=8, ci=160, co=48, k=1, rng=rng, kk=12),
        tc.conv_grad_w_case("conv2d_1x1", h=7, w=7, ci=33, co=70, k=1, stride=2, rng=rng, kk=35),
        tc.conv_grad_in_case("dwconv", h=8, w=8, ci=96, co=96, k=3, stride=1, pad=1, rng=rng),
        tc.conv_grad_w_case("dwconv", h=8, w=8, ci=96, co=96, k=3, stride=1, pad=1, rng=rng,
                            kk=48, rounding="nearest"),
        tc.fc_grad_in_case(ci=320, co=10, batch=1, rng=rng),
        tc.fc_grad_w_case(ci=320, co=10, batch=1, rng=rng),
        tc.softmax_case(rng.integers(-128, 128, 1000), F32(0.07), -3, 999, 8, "max"),
        tc.bias_case(pixels=64, c=160, rng=rng),
    ]
    run_all(drivers, cases)


# ---- scalar helpers (tt_train_math.h) ----------------------------------------------------

@SETTINGS
@given(seed=seeds, n=st.integers(1, 300))
def test_q31_of_f32_random(drivers, seed, n):
    rng = np.random.default_rng(seed)
    xs = np.concatenate([tc.random_float_bits(rng, n), rng.uniform(0, 2**31, n).astype(F32),
                         tc.special_floats()])
    run_all(drivers, [tc.q31_case(xs)])


@SETTINGS
@given(seed=seeds, lo=st.sampled_from([-1e-6, -1.0, -30.0, -100.0, -1e4]))
def test_expf_random(drivers, seed, lo):
    rng = np.random.default_rng(seed)
    r = tc.random_float_bits(rng, 50)
    xs = np.concatenate([rng.uniform(lo, 0.0, 300).astype(F32), -np.abs(r[np.isfinite(r)])])
    run_all(drivers, [tc.expf_case(xs)])


@SETTINGS
@given(seed=seeds, scale=st.sampled_from([1.0, 1e3, 1e7, 1e9]))
def test_round_half_away_random(drivers, seed, scale):
    rng = np.random.default_rng(seed)
    r = tc.random_float_bits(rng, 50)  # NaN excluded: its sign is not specified
    xs = np.concatenate([rng.uniform(-scale, scale, 200).astype(F32),
                         (rng.integers(-999, 999, 50) + 0.5).astype(F32), r[~np.isnan(r)]])
    run_all(drivers, [tc.round_case(xs)])


@SETTINGS
@given(seed=seeds, key=st.integers(0, 2**32 - 1))
def test_hash_and_update_key_random(drivers, seed, key):
    rng = np.random.default_rng(seed)
    run_all(drivers, [tc.hash_case(rng.integers(0, 2**32, 200, dtype=np.uint64), key),
                      tc.update_key_case(rng.integers(0, 2**32, (50, 3), dtype=np.uint64))])


@SETTINGS
@given(seed=seeds, rounding=roundings)
def test_fixed_round_random(drivers, seed, rounding):
    rng = np.random.default_rng(seed)
    n = 300
    v = rng.integers(-2**62 + 1, 2**62, n, dtype=np.int64) >> rng.integers(0, 62, n)
    tot = rng.integers(-2, 66, n).astype(np.int32)
    v[tot <= 0] >>= 24
    run_all(drivers, [tc.fixed_round_case(v, tot, rng.integers(0, 2**32, n, dtype=np.uint64),
                                          rounding)])


# ---- loss and scales ---------------------------------------------------------------------

@SETTINGS
@given(seed=seeds, n=st.integers(1, 300), b=grad_bits, mode=modes,
       mag=st.floats(-30, 10), zeros=st.floats(0, 1))
def test_quantize_grad_f32_random(drivers, seed, n, b, mode, mag, zeros):
    rng = np.random.default_rng(seed)
    g = (rng.standard_normal(n) * 10.0 ** mag).astype(F32)
    g[rng.random(n) < zeros] = 0
    run_all(drivers, [tc.quant_f32_case(g, b, mode)])


@SETTINGS
@given(seed=seeds, c=st.integers(1, 200), b=grad_bits, mode=modes,
       s_y=st.floats(1e-3, 2.0), z_y=st.integers(-128, 127), in_place=st.booleans())
def test_softmax_xent_grad_random(drivers, seed, c, b, mode, s_y, z_y, in_place):
    rng = np.random.default_rng(seed)
    logits = rng.integers(-128, 128, c)
    run_all(drivers, [tc.softmax_case(logits, F32(s_y), z_y, int(rng.integers(0, c)), b, mode,
                                      in_place)])


@SETTINGS
@given(seed=seeds, n=st.integers(1, 700), b=grad_bits, mode=modes, s_y=st.floats(1e-4, 2.0),
       in_place=st.booleans())
def test_mse_grad_random(drivers, seed, n, b, mode, s_y, in_place):
    rng = np.random.default_rng(seed)
    y = rng.integers(-128, 128, n)
    t = np.clip(y + rng.integers(-20, 21, n), -128, 127)
    run_all(drivers, [tc.mse_case(y, t, F32(s_y), b, mode, in_place)])


@SETTINGS
@given(seed=seeds, n=st.integers(1, 300), b=grad_bits, mode=modes, mag=st.floats(0, 9.3),
       acc_scale=st.floats(1e-12, 1.0), ext=st.sampled_from([None, "small", "big", "nonpos"]),
       want_stat=st.booleans(), in_place=st.booleans())
def test_requant_grad_random(drivers, seed, n, b, mode, mag, acc_scale, ext, want_stat,
                             in_place):
    rng = np.random.default_rng(seed)
    acc = np.clip(rng.standard_normal(n) * 10.0 ** mag, -2**31, 2**31 - 1).astype(np.int32)
    r = {None: None, "small": int(rng.integers(1, 1000)), "big": int(rng.integers(1, 2**40)),
         "nonpos": int(rng.integers(-5, 1))}[ext]
    cases = [tc.requant_grad_case(acc, F32(acc_scale), b, mode, r, want_stat or r is None,
                                  in_place),
             tc.grad_range_case(acc, mode)]
    run_all(drivers, cases)


@SETTINGS
@given(seed=seeds, n=st.integers(1, 300), b=grad_bits, mode=modes, e1=st.floats(-40, 3),
       e2=st.floats(-40, 3), alias=st.integers(0, 2))
def test_add_grads_random(drivers, seed, n, b, mode, e1, e2, alias):
    rng = np.random.default_rng(seed)
    cases = [tc.add_grads_case(tc.random_grad(rng, n, 2**(b - 1) - 1), F32(10.0 ** e1),
                               tc.random_grad(rng, n), F32(10.0 ** e2), b, mode, alias)]
    run_all(drivers, cases)


# ---- elementwise ---------------------------------------------------------------------

@SETTINGS
@given(seed=seeds, px=st.integers(1, 40), c=st.integers(1, 40), spread=st.floats(1, 100))
def test_prescale_random(drivers, seed, px, c, spread):
    rng = np.random.default_rng(seed)
    ws = rng.uniform(0.01 / spread, 0.01, c)
    run_all(drivers, [tc.prescale_case(tc.random_grad(rng, (px, c)), ws)])


@SETTINGS
@given(seed=seeds, n=st.integers(1, 100), bit0=st.integers(0, 20), lo=st.integers(-128, 127),
       hi=st.integers(-128, 127))
def test_masks_random(drivers, seed, n, bit0, lo, hi):
    rng = np.random.default_rng(seed)
    nb = (n + bit0 + 7) // 8 + int(rng.integers(0, 3))
    y = rng.integers(-128, 128, n)
    cases = [tc.mask_pack_case(y, lo, hi, bit0, rng.integers(0, 256, nb)),
             tc.grad_mask_case(tc.random_grad(rng, n), rng.integers(0, 256, nb), bit0)]
    run_all(drivers, cases)


@SETTINGS
@given(seed=seeds, h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 40),
       scale=st.floats(1e-30, 10.0))
def test_avgpool_grad_random(drivers, seed, h, w, c, scale):
    rng = np.random.default_rng(seed)
    run_all(drivers, [tc.avgpool_grad_case(tc.random_grad(rng, c), F32(scale), h, w)])


@SETTINGS
@given(seed=seeds, h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 12),
       k=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 1),
       ties=st.booleans())
def test_maxpool_grad_random(drivers, seed, h, w, c, k, stride, pad, ties):
    if 2 * pad > k or h + 2 * pad < k or w + 2 * pad < k:
        return
    rng = np.random.default_rng(seed)
    x = (rng.choice(np.array([-128, 0, 0, 7, 127], np.int8), (h, w, c)) if ties
         else rng.integers(-128, 128, (h, w, c)).astype(np.int8))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    run_all(drivers, [tc.maxpool_grad_case(x, tc.random_grad(rng, (ho, wo, c)), k, stride, pad)])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds, pixels=st.integers(1, 40), c=st.integers(1, 21), c0=st.integers(0, 9),
       n=st.integers(1, 300))
def test_se_and_concat_grad_kernels_random(drivers, seed, pixels, c, c0, n):
    """tt_lut_grad_s8, tt_mul_grad_s8 (broadcast gate and same shape),
    tt_mul_gate_grad_s8 and tt_concat_grad_s8 on random shapes."""
    rng = np.random.default_rng(seed)
    run_all(drivers, [tc.lut_grad_case(n, rng), tc.mul_grad_case(pixels, c, True, rng),
                      tc.mul_grad_case(pixels, c, False, rng), tc.mul_gate_grad_case(pixels, c, rng),
                      tc.concat_grad_case(pixels, c + c0 + 3, c0, c, rng)])


# ---- convolutions ----------------------------------------------------------------------

@st.composite
def conv_shapes(draw, op: str):
    if op == "conv2d_1x1":
        k, kw, stride, pad = 1, 1, draw(st.integers(1, 3)), 0
    elif op == "dwconv":
        k = draw(st.sampled_from([3, 5, 7, 1, 2, 4]))
        kw, stride = k, draw(st.sampled_from([1, 2, 2, 3]))
        pad = draw(st.integers(0, k))
    else:
        k = draw(st.integers(1, 5))
        kw = draw(st.sampled_from([k, k, 1, 3]))
        stride = draw(st.integers(1, 3))
        pad = draw(st.integers(0, max(k, kw)))
    h = draw(st.integers(max(1, k - 2 * pad), 11))
    w = draw(st.integers(max(1, kw - 2 * pad), 11))
    ci = draw(st.integers(1, 24))
    co = draw(st.integers(1, 40))
    return dict(h=h, w=w, ci=ci, co=co, k=k, kw=kw, stride=stride, pad=pad)


@st.composite
def band_lists(draw, h: int):
    kind = draw(st.sampled_from(["full", "cuts"]))
    if kind == "full" or h == 1:
        return None
    cuts = draw(st.lists(st.integers(1, h - 1), max_size=min(5, h - 1), unique=True))
    edges = [0, *sorted(cuts), h]
    return list(zip(edges[:-1], edges[1:]))


def maybe_split(data, case: tc.Case) -> tc.Case:
    """About a third of the cases get split weights (a split point drawn like the sweep's)."""
    if data.draw(st.integers(0, 2)) != 2:
        return case
    rng = np.random.default_rng(data.draw(seeds))
    return tc.with_split(case, tc.pick_split(rng, case))


def _grad_in(drivers, op, shape, seed, data, sparsity):
    bands = data.draw(band_lists(shape["h"]))
    case = tc.conv_grad_in_case(op, **shape, rng=np.random.default_rng(seed), bands=bands,
                                sparsity=sparsity)
    run_all(drivers, [maybe_split(data, case)])


@SETTINGS
@given(shape=conv_shapes("conv2d"), seed=seeds, data=st.data(), sparsity=st.floats(0, 1))
def test_conv2d_grad_in_random(drivers, shape, seed, data, sparsity):
    _grad_in(drivers, "conv2d", shape, seed, data, sparsity)


@SETTINGS
@given(shape=conv_shapes("conv2d_1x1"), seed=seeds, data=st.data(), sparsity=st.floats(0, 1))
def test_conv2d_1x1_grad_in_random(drivers, shape, seed, data, sparsity):
    _grad_in(drivers, "conv2d_1x1", shape, seed, data, sparsity)


@SETTINGS
@given(shape=conv_shapes("dwconv"), seed=seeds, data=st.data(), sparsity=st.floats(0, 1))
def test_dwconv_grad_in_random(drivers, shape, seed, data, sparsity):
    _grad_in(drivers, "dwconv", shape, seed, data, sparsity)


@SETTINGS
@given(ci=st.integers(1, 80), co=st.integers(1, 70), batch=st.integers(1, 4), seed=seeds,
       data=st.data())
def test_fc_grad_in_random(drivers, ci, co, batch, seed, data):
    case = tc.fc_grad_in_case(ci=ci, co=co, batch=batch, rng=np.random.default_rng(seed))
    run_all(drivers, [maybe_split(data, case)])


regimes = st.sampled_from(["typical", "typical", "small", "tiny", "huge", "invalid"])


def _grad_w(drivers, op, shape, seed, kfrac, rounding, regime, x_zero, data):
    kk = int(round(kfrac * shape["co"] if op != "dwconv" else kfrac * shape["ci"]))
    case = tc.conv_grad_w_case(op, **shape, rng=np.random.default_rng(seed), kk=max(kk, 1),
                               rounding=rounding, regime=regime, x_zero=x_zero,
                               qas_off=seed % 4 == 0)
    run_all(drivers, [maybe_split(data, case)])


@SETTINGS
@given(shape=conv_shapes("conv2d"), seed=seeds, kfrac=st.floats(0, 1), rounding=roundings,
       regime=regimes, x_zero=st.integers(-128, 127), data=st.data())
def test_conv2d_grad_w_update_random(drivers, shape, seed, kfrac, rounding, regime, x_zero, data):
    _grad_w(drivers, "conv2d", shape, seed, kfrac, rounding, regime, x_zero, data)


@SETTINGS
@given(shape=conv_shapes("conv2d_1x1"), seed=seeds, kfrac=st.floats(0, 1), rounding=roundings,
       regime=regimes, x_zero=st.integers(-128, 127), data=st.data())
def test_conv2d_1x1_grad_w_update_random(drivers, shape, seed, kfrac, rounding, regime, x_zero,
                                         data):
    _grad_w(drivers, "conv2d_1x1", shape, seed, kfrac, rounding, regime, x_zero, data)


@SETTINGS
@given(shape=conv_shapes("dwconv"), seed=seeds, kfrac=st.floats(0, 1), rounding=roundings,
       regime=regimes, x_zero=st.integers(-128, 127), data=st.data())
def test_dwconv_grad_w_update_random(drivers, shape, seed, kfrac, rounding, regime, x_zero, data):
    _grad_w(drivers, "dwconv", shape, seed, kfrac, rounding, regime, x_zero, data)


@SETTINGS
@given(ci=st.integers(1, 80), co=st.integers(1, 40), batch=st.integers(1, 5), seed=seeds,
       kfrac=st.floats(0, 1), rounding=roundings, regime=regimes, data=st.data())
def test_fc_grad_w_update_random(drivers, ci, co, batch, seed, kfrac, rounding, regime, data):
    case = tc.fc_grad_w_case(ci=ci, co=co, batch=batch, rng=np.random.default_rng(seed),
                             kk=max(1, int(round(kfrac * co))), rounding=rounding, regime=regime,
                             qas_off=seed % 4 == 0)
    run_all(drivers, [maybe_split(data, case)])


@SETTINGS
@given(px=st.integers(1, 100), c=st.integers(1, 40), seed=seeds, kfrac=st.floats(0, 1),
       regime=regimes, qas_off=st.booleans())
def test_bias_grad_update_random(drivers, px, c, seed, kfrac, regime, qas_off):
    case = tc.bias_case(pixels=px, c=c, rng=np.random.default_rng(seed),
                        kk=int(round(kfrac * c)), regime=regime, qas_off=qas_off)
    run_all(drivers, [case])


@SETTINGS
@given(seed=seeds, e=st.tuples(*[st.floats(-45, 38)] * 4))
def test_scale_factors_random(drivers, seed, e):
    """weight_factors, bias_factors, *_plain and input_grad_scale over the float32 range."""
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):  # values beyond float32 become inf: part of the test
        rows = (10.0 ** (np.array(e) + rng.uniform(-1, 1, (50, 4)))).astype(np.float32)
    run_all(drivers, [tc.factors_case(rows)])


# ---- API -------------------------------------------------------------------------------

def test_scratch_sizes_are_constant_expressions(tmp_path):
    """The TT_*_SCRATCH_BYTES macros size static arrays and equal the functions."""
    src = tmp_path / "scratch.c"
    src.write_text("""
#include "tt_train_kernels.h"
static char a[TT_SOFTMAX_XENT_GRAD_S8_SCRATCH_BYTES(10)];
static char b[TT_GRAD_IN_MM_SCRATCH_BYTES(96)];
static char c[TT_GRAD_IN_MM_SCRATCH_BYTES(5)];
static char d[TT_GRAD_W_MM_SCRATCH_BYTES(1, 64)];
static char e[TT_GRAD_W_MM_SCRATCH_BYTES(7, 7)];
static char f[TT_GRAD_W_MM_SCRATCH_BYTES(1, 3)];
static char g[TT_DWCONV_GRAD_IN_S16_SCRATCH_BYTES(96, 3, 3)];
static char h[TT_DWCONV_GRAD_IN_S16_SCRATCH_BYTES(5, 7, 7)];
int main(void) {
    tt_conv_params p = {0};
    p.out_c = 96; p.out_h = 8; p.out_w = 8; p.stride = 1;
    if (tt_softmax_xent_grad_s8_scratch_bytes(10) != sizeof a) return 1;
    if (tt_conv2d_1x1_grad_in_s16_scratch_bytes(&p) != sizeof b) return 2;
    p.out_c = 5;
    if (tt_conv2d_1x1_grad_in_s16_scratch_bytes(&p) != sizeof c) return 3;
    if (tt_conv2d_1x1_grad_w_update_s8_scratch_bytes(&p) != sizeof d) return 4;
    p.stride = 2; p.out_h = 7; p.out_w = 7;
    if (tt_conv2d_1x1_grad_w_update_s8_scratch_bytes(&p) != sizeof e) return 5;
    tt_fc_params q = {0};
    q.out_c = 96;
    if (tt_fc_grad_in_s16_scratch_bytes(&q) != sizeof b) return 6;
    if (tt_fc_grad_w_update_s8_scratch_bytes(&q, 3) != sizeof f) return 7;
    if (sizeof b != 1024 || sizeof c != 96 || sizeof d != 512) return 8;
    p.in_c = 96; p.k_h = 3; p.k_w = 3;
    if (tt_dwconv_grad_in_s16_scratch_bytes(&p) != sizeof g || sizeof g != 576) return 9;
    p.in_c = 5; p.k_h = 7; p.k_w = 7;
    if (tt_dwconv_grad_in_s16_scratch_bytes(&p) != sizeof h) return 10;
    return 0;
}
""")
    exe = tmp_path / "scratch"
    subprocess.run(["gcc", *tc.COMMON_FLAGS, f"-I{tc.INCLUDE}", str(src),
                    *map(str, tc.KERNEL_SRCS), "-lm", "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)]).returncode == 0


def test_kernels_reject_bad_arguments(tmp_path):
    """Bad bit widths, range functions, labels and k are reported, nothing is written."""
    src = tmp_path / "args.c"
    src.write_text("""
#include <string.h>
#include "tt_train_kernels.h"
int main(void) {
    int8_t l[4] = {1, 2, 3, 4}, g[4] = {9, 9, 9, 9};
    float sc = 7.0f, loss = 0.0f, s[4];
    tt_grad_range mx = {TT_RANGE_SHIFT, 0}, bad1 = {TT_RANGE_SHIFT, 3}, bad2 = {TT_RANGE_MEAN, 65};
    if (tt_softmax_xent_grad_s8(l, 4, 0.1f, 0, 4, 8, mx, g, &sc, &loss, s) != TT_ERR_ARG) return 1;
    if (tt_softmax_xent_grad_s8(l, 4, 0.1f, 0, -1, 8, mx, g, &sc, &loss, s) != TT_ERR_ARG) return 2;
    if (tt_softmax_xent_grad_s8(l, 4, 0.1f, 0, 0, 9, mx, g, &sc, &loss, s) != TT_ERR_ARG) return 3;
    if (tt_softmax_xent_grad_s8(l, 4, 0.1f, 0, 0, 1, mx, g, &sc, &loss, s) != TT_ERR_ARG) return 4;
    if (tt_softmax_xent_grad_s8(l, 4, 0.1f, 0, 0, 8, bad1, g, &sc, &loss, s) != TT_ERR_ARG) return 5;
    if (tt_softmax_xent_grad_s8(l, 4, 0.1f, 0, 0, 8, bad2, g, &sc, &loss, s) != TT_ERR_ARG) return 6;
    int32_t acc[4] = {1, 2, 3, 4};
    if (tt_requant_grad_s8(acc, 4, 1.0f, 8, bad1, NULL, g, &sc, NULL) != TT_ERR_ARG) return 7;
    tt_grad_range bad3 = {TT_RANGE_SHIFT3, 1}, bad4 = {3, 1};
    if (tt_requant_grad_s8(acc, 4, 1.0f, 8, bad3, NULL, g, &sc, NULL) != TT_ERR_ARG) return 13;
    if (tt_requant_grad_s8(acc, 4, 1.0f, 8, bad4, NULL, g, &sc, NULL) != TT_ERR_ARG) return 14;
    if (g[0] != 9 || sc != 7.0f) return 8;
    float sw[2] = {0.01f, 0.02f};
    tt_sgd_params u = {0.1f, 0.01f, 0.02f, sw, 3, TT_ROUND_NEAREST, 0, 0};
    tt_fc_params p;
    memset(&p, 0, sizeof p);
    p.in_c = 2; p.out_c = 2;
    int8_t w[4] = {1, 2, 3, -128}, x[2] = {5, 6}, gy[2] = {7, 8};
    if (tt_fc_grad_w_update_s8(&p, gy, x, 1, w, &u, NULL) != TT_ERR_ARG) return 9;
    u.k = 2; u.rounding = 3;
    if (tt_fc_grad_w_update_s8(&p, gy, x, 1, w, &u, NULL) != TT_ERR_ARG) return 10;
    u.rounding = TT_ROUND_NEAREST; sw[1] = -0.01f;
    if (tt_fc_grad_w_update_s8(&p, gy, x, 1, w, &u, NULL) != TT_ERR_FACTOR) return 11;
    if (w[0] != 1 || w[3] != -128) return 12;
    return 0;
}
""")
    exe = tmp_path / "args"
    subprocess.run(["gcc", *tc.COMMON_FLAGS, "-fsanitize=address,undefined", f"-I{tc.INCLUDE}",
                    str(src), *map(str, tc.KERNEL_SRCS), "-lm", "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)]).returncode == 0


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 8), w=st.integers(1, 8),
       c=st.integers(1, 9), kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 1), pw=st.integers(0, 1))
def test_avg_pool_grad_random(drivers, seed, h, w, c, kh, kw, sh, sw, ph, pw):
    assume(2 * ph <= kh and 2 * pw <= kw and h + 2 * ph >= kh and w + 2 * pw >= kw)
    rng = np.random.default_rng(seed)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    run_all(drivers, [tc.avg_pool_grad_case(h, w, tc.random_grad(rng, (ho, wo, c)), (kh, kw),
                                            (sh, sw), (ph, pw))])
