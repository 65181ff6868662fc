"""The fast paths of ref_ops.conv_acc (float32 / float64 BLAS, pointwise shortcut,
depthwise taps, groups) against a plain int64 implementation."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.ref import ops as ref_ops


def conv_acc_int64(x, w, bias, x_zero, stride, pad, groups):
    n, h, wd, ci = x.shape
    co, kh, kw, cig = w.shape
    xs = np.pad(x.astype(np.int64) - x_zero, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = ref_ops.out_size(h, kh, stride, pad), ref_ops.out_size(wd, kw, stride, pad)
    out = np.zeros((n, ho, wo, co), np.int64)
    cog = co // groups
    for o in range(co):
        g = o // cog
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride,
                           g * cig:(g + 1) * cig]
                out[..., o] += patch @ w[o, i, j].astype(np.int64)
    return out + bias.astype(np.int64)


case = st.fixed_dictionaries({
    "kind": st.sampled_from(["dw", "pw", "full", "grouped"]),
    "k": st.sampled_from([1, 2, 3, 5]),
    "stride": st.sampled_from([1, 2, 3]),
    "pad": st.integers(0, 2),
    "hw": st.integers(1, 7),
    "c": st.integers(1, 6),
    "wide": st.sampled_from([0, 512, 513, 514, 520]),  # around the float32-exactness bound
    "extreme": st.booleans(),
    "x_zero": st.sampled_from([-128, 0, 127, 7]),
    "seed": st.integers(0, 2 ** 16),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case)
def test_conv_acc_is_exact(c):
    rng = np.random.default_rng(c["seed"])
    k, groups = c["k"], 1
    if c["kind"] == "dw":
        ci = co = groups = c["c"]
        cig = 1
    elif c["kind"] == "pw":
        k, ci, co, cig = 1, c["wide"] or c["c"], c["c"], c["wide"] or c["c"]
    elif c["kind"] == "grouped":
        groups = 2
        ci, co = 2 * c["c"], 2 * (c["c"] % 3 + 1)
        cig = c["c"]
    else:
        ci = cig = max(1, (c["wide"] // (k * k)) + (1 if c["wide"] else 0)) if c["wide"] else c["c"]
        co = c["c"]
    hw = max(c["hw"], k - 2 * c["pad"])
    x = rng.integers(-128, 128, (2, hw, hw, ci)).astype(np.int8)
    if c["extreme"]:  # the worst case for the exactness bound: every term at +-255*128
        x[:] = -128 if c["x_zero"] > 0 else 127
        w = np.full((co, k, k, cig), -128, np.int8)
    else:
        w = rng.integers(-128, 128, (co, k, k, cig)).astype(np.int8)
    b = rng.integers(-2 ** 24, 2 ** 24, co).astype(np.int32)
    got = ref_ops.conv_acc(x, w, b, c["x_zero"], c["stride"], c["pad"], groups)
    want = conv_acc_int64(x, w, b, c["x_zero"], c["stride"], c["pad"], groups)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
