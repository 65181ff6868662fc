"""The trainer's native steps (compiler/autodiff/native_steps.c) give the reference's
results bit for bit: each C twin against its compiler.ref function on random shapes and
parameters (the extremes included), the forward operators of the trainer against the
reference executor's, and the fallback when the library is off (whole training runs
with either set: tests/test_train_fastpaths.py)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.autodiff import fast_forward, fast_grad
from compiler.autodiff import native_steps as nat
from compiler.ir import qmath as qm
from compiler.ir.graph import Node
from compiler.ref import grad_ops as rgo
from compiler.ref import ops

SEEDS = st.integers(0, 2 ** 32 - 1)


def test_the_library_builds_here():
    assert nat.available()


def _rq_params(rng, c: int, typical: float):
    """Per-channel (or per-tensor) multipliers and shifts: mostly ones that map
    accumulators of magnitude ``typical`` near the int8 range (else every output clamps
    and a rounding error would hide), a third of those exact powers of two (every other
    odd sum is then a rounding tie), and some over the reference's whole range."""
    n = c if rng.integers(0, 2) else 1
    kind = rng.integers(0, 4)
    if kind == 0:
        return (rng.integers(0, 1 << 31, n).astype(np.int32),
                rng.integers(-31, 31, n).astype(np.int32))
    e = max(0, int(np.log2(max(typical, 1.0))) - 6)     # M about 2**-e
    shift = np.clip(-e + rng.integers(-1, 2, n), -31, 30).astype(np.int32)
    if kind == 1:
        return np.full(n, 1 << 30, np.int32), shift
    return rng.integers(1 << 30, 1 << 31, n).astype(np.int32), shift


def _bounds(rng):
    return [(-128, 127), (0, 127), (-128, 0), (-20, 45), (-300, 300), (50, -50)][rng.integers(0, 6)]


@settings(max_examples=150, deadline=None)
@given(SEEDS)
def test_rq_tail_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    c, m = int(rng.integers(1, 20)), int(rng.integers(1, 30))
    f32 = bool(rng.integers(0, 2))
    top = int(rng.choice([300, 1 << 14, (1 << 24) - 1] if f32 else [300, 1 << 20, 1 << 40]))
    acc = rng.integers(-top, top + 1, (m, c)).astype(np.float32 if f32 else np.float64)
    bias = rng.integers(-min(top, 1 << 31), min(top, (1 << 31) - 1), c).astype(np.int32)
    mult, shift = _rq_params(rng, c, top / 2)
    yz = int(rng.integers(-128, 128))
    lo, hi = _bounds(rng)
    want = qm.clamp_s8(qm.requantize(np.rint(acc).astype(np.int64) + bias, mult, shift) + yz, lo, hi)
    np.testing.assert_array_equal(nat.rq_tail(acc, bias, mult, shift, yz, lo, hi), want)


def _conv_node(rng, kind: str):
    """A conv2d node (depthwise, pointwise, dense or grouped) with random geometry and
    quantization, its input and a stand-in graph with the two zero points."""
    k = 1 if kind == "pointwise" else int(rng.choice([1, 2, 3, 5, 7]))
    s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    pad = (0, 0) if kind == "pointwise" else (int(rng.integers(0, k)), int(rng.integers(0, k)))
    pad_end = None if rng.integers(0, 2) else (int(rng.integers(0, k)), int(rng.integers(0, k)))
    while True:
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        pe = pad if pad_end is None else pad_end
        if qm.out_size(h, k, s[0], pad[0], pe[0]) > 0 and qm.out_size(w, k, s[1], pad[1], pe[1]) > 0:
            break
    ci = int(rng.integers(1, 24))
    groups = {"depthwise": ci, "grouped": 1}.get(kind, 1)
    if kind == "grouped":
        groups = int(rng.choice([g for g in (2, 3, 4) if ci % g == 0] or [1]))
    co = ci if kind == "depthwise" else int(rng.integers(1, 20)) * groups
    wt = rng.integers(-128, 128, (co, k, k, ci // groups)).astype(np.int8)
    mult, shift = _rq_params(rng, co, 128 * 128 * np.sqrt(k * k * ci // groups))
    lo, hi = _bounds(rng)
    attrs = dict(stride=s, pad=pad, groups=groups, act_min=lo, act_max=hi)
    if pad_end is not None:
        attrs["pad_end"] = pad_end
    node = Node("conv2d", "c", ["x"], ["y"], attrs,
                dict(weight=wt, bias=rng.integers(-(1 << 16), 1 << 16, co).astype(np.int32),
                     mult=mult, shift=shift))
    g = SimpleNamespace(tensors={"x": SimpleNamespace(zero_point=int(rng.integers(-128, 128))),
                                 "y": SimpleNamespace(zero_point=int(rng.integers(-128, 128)))})
    x = rng.integers(-128, 128, (int(rng.integers(1, 3)), h, w, ci)).astype(np.int8)
    return g, node, x


@settings(max_examples=200, deadline=None)
@given(SEEDS, st.sampled_from(["depthwise", "pointwise", "dense", "grouped"]))
def test_trainer_conv2d_equals_the_reference_executor(seed, kind):
    g, node, x = _conv_node(np.random.default_rng(seed), kind)
    want = ops.KERNELS["conv2d"](g, node, x)
    got = fast_forward.conv2d(g, node, x)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(SEEDS)
def test_trainer_add_equals_the_reference_executor(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 9, 4))
    attrs = dict(z1=int(rng.integers(-128, 128)), z2=int(rng.integers(-128, 128)),
                 zo=int(rng.integers(-128, 128)), act_min=-128, act_max=127)
    # inputs scaled by about 2**-20 after the left shift, the sum by about 1; exact powers
    # of two (rounding ties) half the time
    for m, s, lo_s in (("m1", "s1", -21), ("m2", "s2", -21), ("mo", "so", 0)):
        attrs[m] = 1 << 30 if rng.integers(0, 2) else int(rng.integers(1 << 30, 1 << 31))
        attrs[s] = int(rng.integers(lo_s - 1, lo_s + 3))
    attrs["act_min"], attrs["act_max"] = _bounds(rng)
    node = Node("add", "a", ["x1", "x2"], ["y"], attrs)
    x1, x2 = (rng.integers(-128, 128, shape).astype(np.int8) for _ in range(2))
    np.testing.assert_array_equal(fast_forward.add(None, node, x1, x2),
                                  ops.KERNELS["add"](None, node, x1, x2))


@settings(max_examples=150, deadline=None)
@given(SEEDS)
def test_depthwise_grad_input_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 2, 3, 5, 7]))
    s, p = (int(rng.integers(1, 4)), int(rng.integers(1, 4))), (int(rng.integers(0, k)), int(rng.integers(0, k)))
    h, w = (int(v) for v in rng.integers(1, 12, 2))
    ho, wo = qm.out_size(h, k, s[0], p[0]), qm.out_size(w, k, s[1], p[1])
    if ho <= 0 or wo <= 0:
        return
    c = int(rng.integers(1, 24))
    t = rng.integers(-32768, 32768, (int(rng.integers(1, 3)), ho, wo, c)).astype(np.int16)
    wt = rng.integers(-128, 128, (c, k, k, 1)).astype(np.int8)
    want = rgo.conv_grad_input(t, wt, (h, w), s, p, c)
    np.testing.assert_array_equal(nat.dw_grad_input(t, wt, (h, w), s, p), want)
    np.testing.assert_array_equal(fast_grad.conv_grad_input(t, wt, (h, w), s, p, c), want)


@settings(max_examples=150, deadline=None)
@given(SEEDS)
def test_pointwise_grad_input_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    h, w = (int(v) for v in rng.integers(1, 12, 2))
    ho, wo = qm.out_size(h, 1, s[0], 0), qm.out_size(w, 1, s[1], 0)
    ci, co = int(rng.choice([1, 3, 8, 16, 64, 70])), int(rng.choice([1, 5, 24, 40]))
    t = rng.integers(-32768, 32768, (int(rng.integers(1, 3)), ho, wo, co)).astype(np.int16)
    t[rng.random(t.shape) < 0.5] = 0
    wt = rng.integers(-128, 128, (co, 1, 1, ci)).astype(np.int8)
    want = rgo.conv_grad_input(t, wt, (h, w), s, 0, 1)
    np.testing.assert_array_equal(nat.pw_grad_input(t, wt, (h, w), s), want)
    np.testing.assert_array_equal(fast_grad.conv_grad_input(t, wt, (h, w), s, 0, 1), want)


@settings(max_examples=150, deadline=None)
@given(SEEDS)
def test_mask_and_prescale_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 7, int(rng.integers(1, 5))))
    q = rng.integers(-128, 128, shape).astype(np.int8)
    y = rng.integers(-128, 128, shape).astype(np.int8)
    y.flat[::3] = rng.choice([-128, 127], y.flat[::3].shape)
    lo, hi = _bounds(rng)
    np.testing.assert_array_equal(fast_grad.mask_grad(q, y, lo, hi), rgo.mask_grad(q, y, lo, hi))
    c = shape[-1]
    mult, shift = _rq_params(rng, c, 1.0)
    mult, shift = (mult, shift + 8) if rng.integers(0, 2) else (mult, shift)   # into int16
    shift = np.clip(shift, -31, 30).astype(np.int32)
    np.testing.assert_array_equal(fast_grad.prescale(q, mult, shift), rgo.prescale(q, mult, shift))
    m, s, _ = rgo.prescale_params(rng.uniform(1e-4, 1e-1, c))   # the trainer's own
    np.testing.assert_array_equal(fast_grad.prescale(q, m, s), rgo.prescale(q, m, s))


MODES = ["max", "max/2", "max/4", "3*max/4", "mean*1", "mean*4", "mean*64"]


@settings(max_examples=200, deadline=None)
@given(SEEDS, st.sampled_from(MODES), st.integers(2, 8))
def test_range_and_requant_of_gradients_equal_the_reference(seed, mode, bits):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(0 if seed % 17 == 0 else 1, 9, int(rng.integers(1, 4))))
    top = int(rng.choice([1, 3, 200, 1 << 16, 1 << 31]))
    acc = rng.integers(-top, top, shape, dtype=np.int64).astype(np.int32)
    if acc.size and seed % 5 == 0:
        acc.flat[0] = -(1 << 31)
    if seed % 11 == 0:
        acc[...] = 0
    scale = np.float32(rng.uniform(1e-9, 10.0))
    q, sq, r = fast_grad.range_requant_grad(acc, scale, bits, mode)
    q2, sq2, r2 = rgo.range_requant_grad(acc, scale, bits, mode)
    assert r == r2 and sq.dtype == sq2.dtype == np.float32 and sq == sq2
    np.testing.assert_array_equal(q, q2)


def _factor(rng) -> np.float32:
    kind = int(rng.integers(0, 5))
    if kind == 0:
        return np.float32(0.0)
    if kind == 1:   # denormals and values below 2**-32 (both give (0, 0))
        return np.float32(rng.choice([1e-45, 1e-40, 2.0 ** -33]))
    return np.float32(2.0 ** rng.uniform(-31, 29.9))


@settings(max_examples=150, deadline=None)
@given(SEEDS)
def test_bias_update_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 9, int(rng.integers(1, 5))))
    c = shape[-1]
    k = int(rng.integers(0, c + 1))
    gy = rng.integers(-128, 128, shape).astype(np.int8)
    b = rng.integers(-(1 << 31), 1 << 31, c).astype(np.int32)
    f = np.array([_factor(rng) for _ in range(k)], np.float32)
    (b1, g1), (b2, g2) = fast_grad.bias_grad_update(b, gy, k, f), rgo.bias_grad_update(b, gy, k, f)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_array_equal(g1, g2)
    assert b1.dtype == b2.dtype and g1.dtype == g2.dtype


@pytest.mark.parametrize("bad", [-1.0, -1e-40, np.inf, np.nan, 2.0 ** 31])
def test_a_refused_bias_factor_raises_as_in_the_reference(bad):
    gy = np.ones((2, 3), np.int8)
    b = np.zeros(3, np.int32)
    f = np.array([0.5, bad, 0.25], np.float32)
    with pytest.raises(ValueError) as ref:
        rgo.bias_grad_update(b, gy, 3, f)
    with pytest.raises(ValueError) as fast:
        fast_grad.bias_grad_update(b, gy, 3, f)
    assert str(fast.value) == str(ref.value)
    assert (b == 0).all()


def test_without_the_library_numpy_runs_with_a_note(monkeypatch, capsys):
    rng = np.random.default_rng(0)
    g, node, x = _conv_node(rng, "depthwise")
    want = fast_forward.conv2d(g, node, x)
    monkeypatch.setattr(nat.LIB, "_lib", [])
    monkeypatch.setattr(nat, "_FNS", {})
    monkeypatch.setenv("TT_NATIVE_STEPS", "0")
    assert not nat.available()
    np.testing.assert_array_equal(fast_forward.conv2d(g, node, x), want)
    q = rng.integers(-128, 128, (3, 4)).astype(np.int8)
    np.testing.assert_array_equal(fast_grad.mask_grad(q, q, -128, 127), rgo.mask_grad(q, q, -128, 127))
    monkeypatch.setattr(nat.LIB, "_lib", [])
    monkeypatch.delenv("TT_NATIVE_STEPS")

    def no_cc():
        raise RuntimeError("cc: not found")
    monkeypatch.setattr(nat.LIB, "build", no_cc)
    assert not nat.available()
    assert "the trainer's native step library is unavailable (cc: not found)" in capsys.readouterr().err
