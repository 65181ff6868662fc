"""The vectorised helpers of compiler.ref.grad_ops (added for training speed) give exactly
the results of the original element-by-element / masked implementations."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.ref import grad_ops as rgo


def _q31_scalar_vec(xs):
    pairs = [rgo.q31_of_f32(x) for x in np.asarray(xs, dtype=np.float32).ravel()]
    return (np.array([p[0] for p in pairs], dtype=np.int64),
            np.array([p[1] for p in pairs], dtype=np.int64))


def _fixed_round_masked(v, total, rounding, rnd):
    """The general (masked) path of ref_grad_ops._fixed_round, verbatim."""
    v = v.astype(np.int64)
    total = np.broadcast_to(total, v.shape).astype(np.int64)
    out = np.zeros_like(v)
    le0 = total <= 0
    out[le0] = v[le0] << (-total[le0])
    mid = (total > 0) & (total <= 62)
    t = total[mid]
    vm = v[mid]
    if rounding == "nearest":
        out[mid] = (vm + (np.int64(1) << (t - 1))) >> t
    elif rounding == "truncate":
        out[mid] = np.sign(vm) * (np.abs(vm) >> t)
    else:
        h = rnd[mid].astype(np.int64)
        r = np.where(t <= 32, h >> np.maximum(32 - t, 0), h << np.maximum(t - 32, 0))
        out[mid] = (vm + r) >> t
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 0x7F7FFFFF), min_size=1, max_size=40))
def test_q31_vec_equals_scalar(bit_patterns):
    xs = np.array(bit_patterns, np.uint32).view(np.float32)
    big = xs >= np.float32(2.0 ** 30)
    xs = np.where(big, np.float32(1.5), xs)
    m, s = rgo.q31_of_f32_vec(xs)
    m2, s2 = _q31_scalar_vec(xs)
    np.testing.assert_array_equal(m, m2)
    np.testing.assert_array_equal(s, s2)


@pytest.mark.parametrize("bad", [-1.0, np.inf, np.nan, 2.0 ** 31])
def test_q31_vec_raises_like_scalar(bad):
    with pytest.raises(ValueError):
        rgo.q31_of_f32_vec([0.5, bad])


def test_q31_vec_edge_values():
    xs = np.array([0.0, -0.0, 1e-45, 2.0 ** -33, 2.0 ** -32, 0.5, 1.0, 2.0 ** 29], np.float32)
    for a, b in zip(rgo.q31_of_f32_vec(xs), _q31_scalar_vec(xs)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(rgo.ROUNDINGS), st.integers(-3, 66),
       st.integers(1, 61), st.booleans())
def test_fixed_round_fast_path_equals_masked_path(seed, rounding, lo, hi, per_channel):
    rng = np.random.default_rng(seed)
    v = rng.integers(-(2 ** 55), 2 ** 55, (5, 3, 2)).astype(np.int64)
    if per_channel:
        total = rng.integers(min(lo, hi), max(lo, hi) + 1, (5, 1, 1)).astype(np.int64)
    else:
        total = rng.integers(min(lo, hi), max(lo, hi) + 1, v.shape).astype(np.int64)
    rnd = rng.integers(0, 2 ** 32, v.shape).astype(np.uint64)
    np.testing.assert_array_equal(rgo._fixed_round(v, total, rounding, rnd),
                                  _fixed_round_masked(v, total, rounding, rnd))
