"""Integer arithmetic primitives shared by the reference executor and the C runtime.

This module *is* the numeric contract of the forward pass. Every function here has a
C twin in ``runtime_c/include/tt_qmath.h``; the two must stay bit-exact.

Requantization (single rounding, as CMSIS-NN's ``CMSIS_NN_USE_SINGLE_ROUNDING``):

    real multiplier M = m * 2**shift,  m = mult / 2**31 in [0.5, 1),  mult a Q31 int32
    requant(acc)      = (acc * mult + 2**(30 - shift)) >> (31 - shift)     (int64, arithmetic shift)

so the result is ``acc * M`` rounded half towards +infinity. ``shift`` is limited to
[-31, 30]; multipliers below 2**-32 become (0, 0) and requantize everything to 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SHIFT_MIN = -31
SHIFT_MAX = 30


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Real multiplier -> (Q31 mult, shift) with real ~= mult * 2**(shift - 31)."""
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"multiplier must be finite and >= 0, got {real!r}")
    if real == 0.0:
        return 0, 0
    m, e = math.frexp(real)  # real = m * 2**e, m in [0.5, 1)
    q = int(round(m * (1 << 31)))
    if q == (1 << 31):
        q //= 2
        e += 1
    if e < SHIFT_MIN:
        return 0, 0
    if e > SHIFT_MAX:
        raise ValueError(f"multiplier {real!r} too large (shift {e} > {SHIFT_MAX})")
    return q, e


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier`: returns int32 arrays (mult, shift)."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


def requantize(acc, mult, shift) -> np.ndarray:
    """Single-rounding fixed-point multiply. ``acc`` int32-valued array; ``mult`` and
    ``shift`` broadcast against it (per-channel along the last axis). Returns int64."""
    acc = np.asarray(acc, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    total = 31 - shift
    rnd = np.left_shift(np.int64(1), total - 1)
    return np.right_shift(acc * mult + rnd, total)


def clamp_s8(y, lo: int = -128, hi: int = 127) -> np.ndarray:
    return np.clip(y, lo, hi).astype(np.int8)


def div_round_away(num, den: int) -> np.ndarray:
    """Integer division rounding half away from zero (C: (n + sgn(n)*d/2) / d)."""
    num = np.asarray(num, dtype=np.int64)
    half = den // 2
    adj = np.where(num >= 0, num + half, num - half)
    # C division truncates toward zero
    return np.sign(adj) * (np.abs(adj) // den)


# ----------------------------------------------------------------------------- shapes, add

def out_size(n: int, k: int, stride: int, pad: int, pad_end: int | None = None) -> int:
    """Output length of a window of ``k`` at ``stride`` over ``n`` values padded with
    ``pad`` before and ``pad_end`` after (None: ``pad``, symmetric)."""
    return (n + pad + (pad if pad_end is None else pad_end) - k) // stride + 1


def hw(v) -> tuple[int, int]:
    """A per-axis attribute (``stride`` or ``pad`` of conv2d / max_pool: an int for both
    axes, as in saved square graphs, or ``(h, w)``) as ``(h, w)``."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    h, w = v
    return int(h), int(w)


def hw_attr(h: int, w: int):
    """The IR value of a per-axis attribute: an int when both axes agree (square graphs
    keep their saved form), else ``(h, w)``."""
    return int(h) if h == w else (int(h), int(w))


def pad_end_hw(attrs) -> tuple[int, int]:
    """The trailing pads (bottom, right) of a conv2d / max_pool node's ``attrs``: its
    ``pad_end`` attribute (present only when a side differs from the leading ``pad``,
    e.g. TensorFlow's 'same' padding at stride 2), else ``pad`` (symmetric)."""
    return hw(attrs.get("pad_end", attrs["pad"]))


ADD_LEFT_SHIFT = 20


@dataclass(frozen=True)
class AddParams:
    z1: int
    z2: int
    zo: int
    m1: int
    s1: int
    m2: int
    s2: int
    mo: int
    so: int

    @staticmethod
    def from_scales(scale1: float, zero1: int, scale2: float, zero2: int,
                    scale_out: float, zero_out: int) -> "AddParams":
        twice_max = 2.0 * max(scale1, scale2)
        m1, s1 = quantize_multiplier(scale1 / twice_max)
        m2, s2 = quantize_multiplier(scale2 / twice_max)
        mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * scale_out))
        return AddParams(zero1, zero2, zero_out, m1, s1, m2, s2, mo, so)
