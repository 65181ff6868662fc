"""Reference int8 backward operators (numpy): the numeric contract of the training step.

Every function here has a C twin in the runtime (``tt_<op>_grad_*_s8`` kernels and
``tt_train_math.h``); the two must be bit-exact, including every float32 operation
(the firmware is built with ``-ffp-contract=off`` so no multiply-add is fused, and the
float32 operations below are written one IEEE operation at a time in the same order).

Representation
    A gradient tensor is int8 values ``q`` in [-qmax, qmax] (qmax = 2**(bits-1) - 1,
    bits 2..8) and one float32 ``scale``: real gradient ~= scale * q. Integer MACs
    accumulate in int32. float32 appears only in per-tensor / per-channel factors and in
    the loss.

Loss
    softmax cross-entropy on the dequantized logits ``s_y * (y - z_y)`` (float32), with a
    deterministic exp (:func:`expf`) and a sequential sum, so C and numpy agree exactly.
    The gradient ``p - onehot`` is quantized by :func:`quantize_grad_f32`.
    Or mean squared error (:func:`mse_grad`) against an int8 target with the output's
    quantization (an autoencoder's: its input requantized, :func:`mse_target`); its
    gradient ``2 (y - t) / N`` is quantized the same way.

Scale choice ("range functions")
    R = f(|g|): ``max``, ``max/2``, ``max/4``, ``3*max/4`` or ``mean*K`` (K an integer
    1..64); values beyond R saturate at +-qmax. For int32 accumulators R is an integer
    (max >> r, (3 * max) >> 2, or K * (sum|acc| // n)); for float32 gradients max / 2**r,
    (max * 3) / 4 (two float32 operations) or (sum / n) * K; the new scale is
    ``acc_scale * (R / qmax)`` and the int8 values ``clamp(requant(acc, q31(qmax / R)),
    -qmax, qmax)`` (float32 division, exact Q31 conversion of a float32, single-rounding
    requant of qmath).

Backward through a conv / fc with per-channel weight scales s_w[c]
    The output gradient is first *prescaled* per output channel into int16:
    ``t = requant(gy_q, q31(s_w[c] / max(s_w) * 2**PRESCALE_BITS))`` (|t| <= 127*16),
    then ``gx_acc = sum(w_q * t)`` (int32; transposed convolution) has the single scale
    ``s_gy * max(s_w) / 2**PRESCALE_BITS``.

ReLU / clamp derivative
    ``mask = (y > act_min) & (y < act_max)`` on the int8 forward output (1 bit per
    element, saved in the forward pass); the gradient is multiplied by it.

Weight update (QAS + SGD, in place)
    ``A = sum(gy_q * (x_q - x_zero))`` (int32) per weight of the trained channel slice;
    per channel ``f_c = ((lr * s_gy) * s_x) / s_w[c]`` (float32) -- this is SGD on the
    real weight, i.e. the gradient w.r.t. the int8 weight scaled by s_w^-2 (QAS); the
    update ``delta = round(A * f_c)`` in fixed point (``v = A * mult_c``, ``31 - shift_c``
    fraction bits) with stochastic rounding (a counter-based hash supplies the random
    fraction: order-independent, vectorisable), nearest (half up) or truncation (toward
    zero, for comparison only); ``w = clamp(w - delta, -127, 127)``.
    Bias: ``gb = sum(gy_q)``; ``f_b = ((lr * s_gy) / s_x) / s_w[c]``; nearest rounding;
    ``b = sat_int32(b - delta)``.
"""
from __future__ import annotations

import numpy as np

from compiler.ir.qmath import hw, requantize

PRESCALE_BITS = 4
F32 = np.float32
ROUNDINGS = ("stochastic", "nearest", "truncate")


# ----------------------------------------------------------------------------- helpers

def qmax_of(bits: int) -> int:
    if not 2 <= bits <= 8:
        raise ValueError(f"gradient bit width must be 2..8, got {bits}")
    return (1 << (bits - 1)) - 1


def q31_of_f32(x) -> tuple[int, int]:
    """Exact (mult, shift) of a non-negative float32: x == mult * 2**(shift - 31).
    Values below 2**-32 (and zero, denormals) give (0, 0). Raises for x >= 2**30."""
    x = F32(x)
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"scale factor must be finite and >= 0, got {x}")
    bits = int(np.array(x, dtype=np.float32).view(np.uint32))
    exp = (bits >> 23) & 0xFF
    if exp == 0:
        return 0, 0
    mant = (bits & 0x7FFFFF) | 0x800000          # 24 bits: x = mant * 2**(exp - 150)
    shift = exp - 126                             # x = (mant / 2**24) * 2**shift
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"scale factor {x} too large")
    return mant << 7, shift


def q31_of_f32_vec(xs) -> tuple[np.ndarray, np.ndarray]:
    """:func:`q31_of_f32` of every element (vectorised; same results and errors)."""
    x = np.asarray(xs, dtype=np.float32).ravel()
    bad = ~np.isfinite(x) | (x < 0)
    bits = x.view(np.uint32).astype(np.int64)
    exp = (bits >> 23) & 0xFF
    shift = exp - 126
    zero = (exp == 0) | (shift < -31)
    bad |= ~zero & (shift > 30)
    if bad.any():
        q31_of_f32(x[np.argmax(bad)])  # raises the scalar function's error
    mant = (bits & 0x7FFFFF) | 0x800000
    return np.where(zero, 0, mant << 7), np.where(zero, 0, shift)


def hash32(idx, key) -> np.ndarray:
    """Counter-based 32-bit hash (a murmur3-style finalizer of idx * golden + key)."""
    h = (np.asarray(idx, dtype=np.uint64) * np.uint64(0x9E3779B9) + np.uint64(int(key) & 0xFFFFFFFF))
    h &= np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x7FEB352D)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x846CA68B)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    return h


def update_key(seed: int, step: int, layer: int) -> int:
    """Key of the random stream of one layer's update at one training step."""
    return int(hash32(np.uint64(step & 0xFFFFFFFF), (seed + layer * 0x632BE5AB) & 0xFFFFFFFF))


def round_half_away_f32(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return np.where(v >= 0, np.floor(v + F32(0.5)), -np.floor(-v + F32(0.5))).astype(np.float32)


# ----------------------------------------------------------------------------- loss

EXP_LO = F32(-86.0)
LOG2E = F32(1.44269504)
LN2_HI = F32(0.693145752)
LN2_LO = F32(1.42860677e-06)
_EXP_POLY = [F32(1.0 / 720), F32(1.0 / 120), F32(1.0 / 24), F32(1.0 / 6), F32(0.5), F32(1.0), F32(1.0)]


def expf(x) -> np.ndarray:
    """Deterministic float32 exp for x <= 0 (softmax after subtracting the max)."""
    x = np.maximum(np.asarray(x, dtype=np.float32), EXP_LO)
    n = np.floor(x * LOG2E + F32(0.5)).astype(np.float32)
    r = (x - n * LN2_HI) - n * LN2_LO
    p = np.full_like(r, _EXP_POLY[0])
    for c in _EXP_POLY[1:]:
        p = p * r + c
    # p * 2**n by exponent arithmetic (n >= -125 here, p in (0.7, 1.5): result normal)
    bits = p.view(np.uint32).astype(np.int64) + (n.astype(np.int64) << 23)
    return bits.astype(np.uint32).view(np.float32)


def softmax_xent_grad(logits_q, s_y: float, z_y: int, label: int) -> tuple[np.ndarray, float]:
    """int8 logits [C] -> (dL/dlogit_real float32 [C], loss float32)."""
    s_y = F32(s_y)
    z = (np.asarray(logits_q, dtype=np.int32) - int(z_y)).astype(np.float32) * s_y
    m = z.max()
    e = expf(z - m)
    total = np.cumsum(e, dtype=np.float32)[-1]  # sequential sum, as in C
    p = e / total
    g = p.copy()
    g[label] = g[label] - F32(1.0)
    loss = F32(-np.log(np.maximum(p[label], F32(1e-30))))
    return g.astype(np.float32), float(loss)


def mse_grad(y_q, t_q, s_y: float) -> tuple[np.ndarray, float]:
    """MSE loss on the dequantized output: int8 ``y_q`` and target ``t_q`` [N] with the
    same quantization (scale ``s_y``; the zero point cancels) -> (dL/dy_real float32 [N],
    loss float32). ``e = (y - t) * s_y``; ``loss = sum(e * e) / N`` (sequential sum);
    ``g = e * (2 / N)`` with ``2 / N`` one float32 division."""
    d = (np.asarray(y_q, np.int32).ravel() - np.asarray(t_q, np.int32).ravel()).astype(np.float32)
    e = d * F32(s_y)
    n = F32(e.size)
    loss = np.cumsum(e * e, dtype=np.float32)[-1] / n   # sequential sum, as in C
    return (e * (F32(2.0) / n)).astype(np.float32), float(F32(loss))


def mse_target(x_q, x_zero: int, mult: int, shift: int, y_zero: int) -> np.ndarray:
    """The reconstruction target of an autoencoder: its int8 input requantized to the
    output's scale and zero point, ``clamp(requant(x - x_zero, mult, shift) + y_zero)``
    with ``(mult, shift) = quantize_multiplier(s_x / s_y)`` (as a concat input)."""
    r = requantize(np.asarray(x_q, np.int64) - int(x_zero), int(mult), int(shift)) + int(y_zero)
    return np.clip(r, -128, 127).astype(np.int8)


# ----------------------------------------------------------------------------- scales

def _parse_mode(mode: str) -> tuple[str, int]:
    if mode == "max":
        return "shift", 0
    if mode == "max/2":
        return "shift", 1
    if mode == "max/4":
        return "shift", 2
    if mode == "3*max/4":
        return "shift3", 2
    if mode.startswith("mean*"):
        k = int(mode[5:])
        if not 1 <= k <= 64:
            raise ValueError(f"mean*K needs 1 <= K <= 64, got {mode}")
        return "mean", k
    raise ValueError(f"unknown gradient range function {mode!r} (max, max/2, max/4, 3*max/4, mean*K)")


def quantize_grad_f32(g, bits: int = 8, mode: str = "max") -> tuple[np.ndarray, np.float32]:
    """float32 gradient -> (int8 q, float32 scale) with R = f(|g|)."""
    g = np.asarray(g, dtype=np.float32)
    qmax = qmax_of(bits)
    kind, k = _parse_mode(mode)
    a = np.abs(g)
    if kind == "shift":
        r = a.max() / F32(1 << k)
    elif kind == "shift3":
        r = (a.max() * F32(3)) / F32(1 << k)
    else:
        r = (np.cumsum(a, dtype=np.float32)[-1] / F32(a.size)) * F32(k)
    r = F32(r)
    if not r > 0:
        return np.zeros(g.shape, np.int8), F32(1.0)
    scale = F32(r / F32(qmax))
    q = np.clip(round_half_away_f32(g / scale), -qmax, qmax)
    return q.astype(np.int8), scale


def lowp_bytes(n: int, bits: int) -> int:
    """Bytes of ``n`` values saved at ``bits`` (2..8): ``8 // bits`` values per byte."""
    per = 8 // int(bits)
    return (int(n) + per - 1) // per


def lowp_codes(x, bits: int, lo: int) -> np.ndarray:
    """Codes of int8 values saved at ``bits``: q = clamp((x - lo + 2^(s-1)) >> s, 0,
    2^bits - 1) with s = 8 - bits (round half up onto a grid of step 2^s starting at
    ``lo``, the tensor's lower bound)."""
    s = 8 - int(bits)
    u = np.asarray(x, np.int32) - int(lo)
    q = (u + ((1 << s) >> 1)) >> s
    return np.clip(q, 0, (1 << int(bits)) - 1).astype(np.int32)


def lowp_activation(x, bits: int, lo: int) -> np.ndarray:
    """The int8 values a weight gradient reads from ``x`` saved at ``bits``: lo + q * 2^s
    (:func:`lowp_codes`; identity at 8 bits)."""
    q = lowp_codes(x, bits, lo)
    return np.clip(int(lo) + (q << (8 - int(bits))), -128, 127).astype(np.int8)


def lowp_weight(w, bits: int) -> np.ndarray:
    """int8 weights as an input gradient reads them at ``bits`` (2..8) -- reference only,
    for accuracy studies (no C kernel takes it): the low ``8 - bits`` bits of the
    magnitude dropped, ``sign(w) * ((|w| >> s) << s)`` with s = 8 - bits (truncation
    toward zero onto the grid of step 2^s; the weight scale is unchanged). Identity at 8
    bits."""
    b = int(bits)
    if not 2 <= b <= 8:
        raise ValueError(f"backward weight bits must be 2..8, got {bits}")
    s = 8 - b
    w = np.asarray(w, np.int32)
    return (np.sign(w) * ((np.abs(w) >> s) << s)).astype(np.int8)


def lowp_pack(x, bits: int, lo: int) -> np.ndarray:
    """The bytes saved: ``8 // bits`` codes per byte, the first in the lowest bits."""
    q = lowp_codes(np.ravel(x), bits, lo).astype(np.uint32)
    per, b = 8 // int(bits), int(bits)
    q = np.concatenate([q, np.zeros((-len(q)) % per, np.uint32)]).reshape(-1, per)
    return (q << (b * np.arange(per, dtype=np.uint32))).sum(axis=1).astype(np.uint8)


def grad_range_int(acc, mode: str) -> int:
    a = np.abs(np.asarray(acc, dtype=np.int64))
    kind, k = _parse_mode(mode)
    if a.size == 0:
        return 0
    if kind == "shift":
        return int(a.max()) >> k
    if kind == "shift3":
        return (3 * int(a.max())) >> k
    return k * (int(a.sum()) // a.size)


def requant_grad(acc, acc_scale: float, bits: int = 8, mode: str = "max",
                 r: int | None = None) -> tuple[np.ndarray, np.float32]:
    """int32 gradient accumulators (scale acc_scale) -> (int8 q, float32 scale).
    ``r`` overrides the range (e.g. a statistic from the previous step)."""
    qmax = qmax_of(bits)
    acc = np.asarray(acc, dtype=np.int64)
    r = grad_range_int(acc, mode) if r is None else int(r)
    if r <= 0:
        return np.zeros(acc.shape, np.int8), F32(acc_scale)
    inv = F32(F32(qmax) / F32(r))
    m, s = q31_of_f32(inv)
    q = np.clip(requantize(acc, m, s), -qmax, qmax).astype(np.int8)
    scale = F32(F32(acc_scale) * F32(F32(r) / F32(qmax)))
    return q, scale


def range_requant_grad(acc, acc_scale: float, bits: int = 8, mode: str = "max"):
    """The range of ``acc`` (:func:`grad_range_int`) and :func:`requant_grad` with it:
    ``(q, scale, r)``."""
    r = grad_range_int(acc, mode)
    q, scale = requant_grad(acc, acc_scale, bits, mode, r=r)
    return q, scale, r


def add_grads(q1, s1: float, q2, s2: float, bits: int = 8, mode: str = "max"):
    """Sum of two gradient tensors with different scales -> (int8 q, float32 scale).
    Common scale s_c = max(s1, s2) / 4096; integer weights m_i = floor(s_i / s_c + 0.5).
    If s_c is not positive (both scales zero or below 4096 * the smallest float32), the
    sum is zero: zeros with scale s_c."""
    s1, s2 = F32(s1), F32(s2)
    if not (np.isfinite(s1) and np.isfinite(s2)):
        raise ValueError(f"add_grads: scales must be finite, got {s1}, {s2}")
    sc = F32(max(s1, s2) / F32(4096.0))
    if not sc > 0:
        # both gradients are (numerically) zero: a zero gradient keeps shrinking its scale
        # through many layers (e.g. below a zero-initialised head) until it underflows
        return np.zeros(np.shape(q1), np.int8), sc
    m1 = int(np.floor(s1 / sc + F32(0.5)))
    m2 = int(np.floor(s2 / sc + F32(0.5)))
    acc = np.asarray(q1, np.int32) * m1 + np.asarray(q2, np.int32) * m2
    return requant_grad(acc, sc, bits, mode)


def clamp_mask(y_q, act_min: int, act_max: int) -> np.ndarray:
    y = np.asarray(y_q)
    return (y > act_min) & (y < act_max)


def mask_grad(q, y_q, act_min: int, act_max: int) -> np.ndarray:
    """The gradient ``q`` through a clamped output ``y_q``: ``q`` where ``y_q`` was not
    clamped (:func:`clamp_mask`), else 0 (int8, ``q``'s shape)."""
    q = np.asarray(q)
    return np.where(clamp_mask(y_q, act_min, act_max).reshape(q.shape), q, 0).astype(np.int8)


# ----------------------------------------------------------------------------- input gradients

def prescale_params(w_scales) -> tuple[np.ndarray, np.ndarray, float]:
    """Compile-time per-channel (mult, shift) for the int16 prescale, and max(s_w)."""
    from compiler.ir.qmath import quantize_multipliers
    ws = np.asarray(w_scales, dtype=np.float64)
    smax = float(ws.max())
    if smax <= 0:
        raise ValueError("all weight scales are zero")
    m, s = quantize_multipliers(ws / smax * (1 << PRESCALE_BITS))
    return m, s, smax


def prescale(gy_q, pmult, pshift) -> np.ndarray:
    """int8 output gradient [..., C] -> int16 per-channel prescaled values."""
    return requantize(np.asarray(gy_q, np.int64), pmult, pshift).astype(np.int16)


def conv_grad_input(t, w, in_hw: tuple[int, int], stride, pad, groups: int) -> np.ndarray:
    """Transposed convolution: t int16 [N,Ho,Wo,Co], w int8 OHWI -> int32 [N,H,W,Ci]
    (``stride``, ``pad``: an int or per axis ``(h, w)``; ``pad`` is the leading side:
    the trailing one, equal or not, follows from Ho, Wo)."""
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    t = np.asarray(t, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    n, ho, wo, co = t.shape
    _, kh, kw, cig = w.shape
    h, wd = in_hw
    ci = cig * groups
    hp = max(h + 2 * ph + sh, sh * (ho - 1) + kh)   # asymmetric pads: Ho, Wo may need more
    wp = max(wd + 2 * pw + sw, sw * (wo - 1) + kw)
    gx = np.zeros((n, hp, wp, ci), dtype=np.int64)
    cog = co // groups
    depthwise = groups == ci and cig == 1 and co == ci
    for ky in range(kh):
        for kx in range(kw):
            sl = (slice(None), slice(ky, ky + sh * (ho - 1) + 1, sh),
                  slice(kx, kx + sw * (wo - 1) + 1, sw))
            if depthwise:
                gx[sl] += t * w[:, ky, kx, 0]
            elif groups == 1:
                gx[sl] += t @ w[:, ky, kx, :]
            else:
                for g in range(groups):
                    gx[sl + (slice(g * cig, (g + 1) * cig),)] += (
                        t[..., g * cog:(g + 1) * cog] @ w[g * cog:(g + 1) * cog, ky, kx, :])
    return gx[:, ph:ph + h, pw:pw + wd, :].astype(np.int32)


def fc_grad_input(t, w) -> np.ndarray:
    """t int16 [N,Co], w int8 [Co,Ci] -> int32 [N,Ci]."""
    return (np.asarray(t, np.int64) @ np.asarray(w, np.int64)).astype(np.int32)


def avgpool_grad_input(gy_q, gy_scale: float, hw: tuple[int, int]):
    """Global average pool backward: broadcast, scale / (H*W). Returns (q [N,H,W,C], scale)."""
    gy = np.asarray(gy_q, np.int8).reshape(gy_q.shape[0], 1, 1, -1)
    q = np.broadcast_to(gy, (gy.shape[0], hw[0], hw[1], gy.shape[-1])).copy()
    return q, F32(F32(gy_scale) / F32(hw[0] * hw[1]))


def concat_grad_split(gy_q, c0: int, c: int) -> np.ndarray:
    """Concat backward for one input: its channel range [c0, c0 + c) of the output
    gradient (last axis), same values and scale (the forward requantization to the
    output's parameters only changes the representation of the real values)."""
    return np.ascontiguousarray(np.asarray(gy_q, np.int8)[..., c0:c0 + c])


def max_pool_grad_acc(gy_q, x_q, kernel: tuple[int, int], stride, pad) -> np.ndarray:
    """Max pool backward: each output gradient goes to the first maximum of its window
    in the forward input ``x`` (scan order: row, then column; padded taps never win), and
    overlapping windows add up. int8 gy [N,Ho,Wo,C], x [N,H,W,C] -> int32 [N,H,W,C] with
    the scale of gy (a RequantGrad makes it int8)."""
    x = np.asarray(x_q, np.int8)
    gy = np.asarray(gy_q, np.int32)
    n, h, w, c = x.shape
    kh, kw = kernel
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    acc = np.zeros((n, h, w, c), np.int32)
    ni, ci = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for oy in range(gy.shape[1]):
        y0, y1 = max(oy * sh - ph, 0), min(oy * sh - ph + kh, h)
        for ox in range(gy.shape[2]):
            x0, x1 = max(ox * sw - pw, 0), min(ox * sw - pw + kw, w)
            idx = x[:, y0:y1, x0:x1, :].reshape(n, -1, c).argmax(axis=1)   # first maximum
            np.add.at(acc, (ni, y0 + idx // (x1 - x0), x0 + idx % (x1 - x0), ci), gy[:, oy, ox, :])
    return acc


def avg_pool_grad_acc(gy_q, in_hw: tuple[int, int], kernel: tuple[int, int], stride, pad) -> np.ndarray:
    """Average pool backward (every window the same divisor ``kh * kw``): each output
    gradient is added to every tap of its window inside the map, overlapping windows
    summed. int8 gy [N,Ho,Wo,C] -> int32 [N,H,W,C] with the scale of gy / (kh * kw) (a
    RequantGrad makes it int8)."""
    gy = np.asarray(gy_q, np.int32)
    n, ho, wo, c = gy.shape
    h, w = in_hw
    kh, kw = kernel
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    acc = np.zeros((n, h + 2 * ph, w + 2 * pw, c), np.int32)
    for i in range(kh):
        for j in range(kw):
            acc[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :] += gy
    return np.ascontiguousarray(acc[:, ph:ph + h, pw:pw + w, :])


def avg_pool_grad_scale(gy_scale, kernel: tuple[int, int]):
    """The float32 scale of :func:`avg_pool_grad_acc`'s accumulators."""
    return F32(F32(gy_scale) / F32(kernel[0] * kernel[1]))


# ----------------------------------------------------------------------------- weight gradients

def conv_grad_weight_acc(gy_q, x_q, x_zero: int, kernel: tuple[int, int], stride, pad,
                         groups: int, k: int | None = None) -> np.ndarray:
    """A[c, ky, kx, i] = sum over batch and pixels of gy[c] * (x - x_zero) for the first
    ``k`` output channels (all when None). gy [N,Ho,Wo,Co] int8, x [N,H,W,Ci] int8;
    ``pad`` is the leading side (the trailing one follows from Ho, Wo)."""
    gy = np.asarray(gy_q, dtype=np.int64)
    n, ho, wo, co = gy.shape
    k = co if k is None else k
    kh, kw = kernel
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    xs = np.asarray(x_q, dtype=np.int64) - x_zero
    h, wd = xs.shape[1:3]   # trailing zeros: at least what Ho, Wo read (asymmetric pads)
    xs = np.pad(xs, ((0, 0), (ph, max(ph + sh, sh * (ho - 1) + kh - h - ph)),
                     (pw, max(pw + sw, sw * (wo - 1) + kw - wd - pw)), (0, 0)))
    ci = xs.shape[-1]
    cig = ci // groups
    cog = co // groups
    out = np.zeros((k, kh, kw, cig), dtype=np.int64)
    g2 = gy[..., :k].reshape(n * ho * wo, k)  # (not -1: k may be 0)
    for ky in range(kh):
        for kx in range(kw):
            tap = xs[:, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw, :]
            tap = tap.reshape(-1, ci)
            if groups == 1:
                out[:, ky, kx, :] = g2.T @ tap
            elif groups == ci and cig == 1:
                out[:, ky, kx, 0] = (g2 * tap[:, :k]).sum(axis=0)
            else:
                for c in range(k):
                    g = c // cog
                    out[c, ky, kx, :] = g2[:, c] @ tap[:, g * cig:(g + 1) * cig]
    return out.astype(np.int32)


def fc_grad_weight_acc(gy_q, x_q, x_zero: int, k: int | None = None) -> np.ndarray:
    gy = np.asarray(gy_q, np.int64)
    k = gy.shape[1] if k is None else k
    return (gy[:, :k].T @ (np.asarray(x_q, np.int64) - x_zero)).astype(np.int32)


def bias_grad_acc(gy_q, k: int | None = None) -> np.ndarray:
    gy = np.asarray(gy_q, np.int64)
    gy = gy.reshape(-1, gy.shape[-1])
    k = gy.shape[1] if k is None else k
    return gy[:, :k].sum(axis=0).astype(np.int32)


# ----------------------------------------------------------------------------- updates

def weight_factors(lr: float, s_gy: float, s_x: float, s_w) -> np.ndarray:
    """f_c = ((lr * s_gy) * s_x) / s_w[c] in float32 (QAS: SGD on the real weight)."""
    a = F32(F32(F32(lr) * F32(s_gy)) * F32(s_x))
    return (a / np.asarray(s_w, dtype=np.float32)).astype(np.float32)


def bias_factors(lr: float, s_gy: float, s_x: float, s_w) -> np.ndarray:
    a = F32(F32(F32(lr) * F32(s_gy)) / F32(s_x))
    return (a / np.asarray(s_w, dtype=np.float32)).astype(np.float32)


def _fixed_round(v: np.ndarray, total: np.ndarray, rounding: str, rnd: np.ndarray | None):
    """round(v * 2**-total) for int64 v, per-element total = fraction bits."""
    v = v.astype(np.int64)
    total = np.asarray(total, dtype=np.int64)
    if rounding in ROUNDINGS and total.size and total.min() > 0 and total.max() <= 62:
        # every element has 1..62 fraction bits: the general case below without masks
        if rounding == "nearest":
            return (v + (np.int64(1) << (total - 1))) >> total
        if rounding == "truncate":
            return np.sign(v) * (np.abs(v) >> total)
        h = rnd.astype(np.int64)
        r = np.where(total <= 32, h >> np.maximum(32 - total, 0), h << np.maximum(total - 32, 0))
        return (v + r) >> total
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
    elif rounding == "stochastic":
        h = rnd[mid].astype(np.int64)
        r = np.where(t <= 32, h >> np.maximum(32 - t, 0), h << np.maximum(t - 32, 0))
        out[mid] = (vm + r) >> t
    else:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    return out  # total > 62: 0


def sgd_update_weights(w, acc, factors, rounding: str = "stochastic", key: int = 0) -> np.ndarray:
    """In-place SGD on the first k output channels of an int8 weight (any layout with
    output channels first): w[:k] = clamp(w[:k] - round(acc * f_c), -127, 127)."""
    w = np.array(w, dtype=np.int8, copy=True)
    acc = np.asarray(acc, dtype=np.int64)
    k = acc.shape[0]
    m, s = q31_of_f32_vec(factors)
    shape = (k,) + (1,) * (acc.ndim - 1)
    v = acc * m.reshape(shape)
    total = (31 - s).reshape(shape)
    rnd = None
    if rounding == "stochastic":
        rnd = hash32(np.arange(acc.size, dtype=np.uint64).reshape(acc.shape), key)
    delta = _fixed_round(v, total, rounding, rnd)
    delta = np.clip(delta, -(1 << 31), (1 << 31) - 1)
    w[:k] = np.clip(w[:k].astype(np.int64) - delta, -127, 127).astype(np.int8)
    return w


def sgd_update_bias(b, gb, factors) -> np.ndarray:
    """b[:k] = sat_int32(b[:k] - round_nearest(gb * f_b))."""
    b = np.array(b, dtype=np.int32, copy=True)
    gb = np.asarray(gb, dtype=np.int64)
    k = gb.shape[0]
    m, s = q31_of_f32_vec(factors)
    delta = _fixed_round(gb * m, 31 - s, "nearest", None)
    b[:k] = np.clip(b[:k].astype(np.int64) - delta, -(1 << 31), (1 << 31) - 1).astype(np.int32)
    return b


def bias_grad_update(b, gy_q, k: int, factors) -> tuple[np.ndarray, np.ndarray]:
    """A bias update from the output gradient: ``(new b, gb)`` with ``gb =``
    :func:`bias_grad_acc` and the new ``b`` :func:`sgd_update_bias` of it."""
    gb = bias_grad_acc(gy_q, k)
    return sgd_update_bias(b, gb, factors), gb


# ----------------------------------------------------------------------------- additions (training program)
# Added with the training-program compiler (compiler.autodiff.program / compiler.autodiff.trainer); the
# functions above are unchanged. Each one below also needs a C twin.

def input_grad_scale(s_gy: float, w_smax: float) -> np.float32:
    """Scale of the prescaled int16 output gradient and of the int32 input-gradient
    accumulator of a conv / fc: ``s_gy * (max(s_w) / 2**PRESCALE_BITS)`` in float32
    (the division by a power of two is exact, so this is one float32 multiply)."""
    return F32(F32(s_gy) * F32(F32(w_smax) / F32(1 << PRESCALE_BITS)))


def weight_factors_plain(lr: float, s_gy: float, s_x: float, s_w) -> np.ndarray:
    """QAS off (for comparison): SGD on the int8 weight itself with the gradient w.r.t.
    ``w_q`` (= s_w[c] * dL/dw_real): ``f_c = ((lr * s_gy) * s_x) * s_w[c]`` in float32."""
    a = F32(F32(F32(lr) * F32(s_gy)) * F32(s_x))
    return (a * np.asarray(s_w, dtype=np.float32)).astype(np.float32)


def bias_factors_plain(lr: float, s_gy: float, s_x: float, s_w) -> np.ndarray:
    """QAS off: SGD on the int32 bias with the gradient w.r.t. ``b_q``
    (= s_x * s_w[c] * dL/db_real): ``f_b = ((lr * s_gy) * s_x) * s_w[c]`` in float32."""
    return weight_factors_plain(lr, s_gy, s_x, s_w)


# ----------------------------------------------------------------------------- squeeze-excite ops
# Backward of the elementwise lookup-table functions (sigmoid / hardsigmoid / hardswish)
# and of mul (same shapes, or a per-channel gate broadcast over H x W).

LUT_GRAD_BITS = 14     # the largest |f'| of a table maps to 2**14 (int16 entries)


def _d_sigmoid(node, x):
    s = 1.0 / (1.0 + np.exp(-x))
    return s * (1.0 - s)


def _d_hardsigmoid(node, x):
    v = x * node.attrs["alpha"] + node.attrs["beta"]
    return np.where((v > 0.0) & (v < 1.0), float(node.attrs["alpha"]), 0.0)


def _d_hardswish(node, x):
    return np.where(x <= -3.0, 0.0, np.where(x < 3.0, x / 3.0 + 0.5, 1.0))


#: op -> derivative f'(node, x) of the functions of compiler.ir.ops.LUT_FUNCTIONS (as
#: torch's autograd defines it at the kinks)
LUT_DERIVATIVES = {"sigmoid": _d_sigmoid, "hardsigmoid": _d_hardsigmoid,
                   "hardswish": _d_hardswish}


def lut_grad_table(node, in_scale: float, in_zero: int, out_scale: float,
                   out_zero: int) -> tuple[np.ndarray, np.float32]:
    """Compile-time derivative table of an elementwise function node: int16 entry
    ``q + 128`` is ``f'((q - in_zero) * in_scale) / d_scale`` rounded half away from zero,
    and 0 where the forward table saturates (the int8 output is clamped there, so its
    derivative is zero); ``d_scale`` (float32) maps the largest |f'| to 2**14."""
    from compiler.ir.ops import LUT_FUNCTIONS
    q = np.arange(-128, 128, dtype=np.float64)
    x = (q - in_zero) * in_scale
    d = LUT_DERIVATIVES[node.op](node, x).astype(np.float64)
    y = LUT_FUNCTIONS[node.op](node, x) / out_scale + out_zero
    d = np.where((y < -128.5) | (y > 127.5), 0.0, d)
    top = float(np.abs(d).max())
    d_scale = F32(top / (1 << LUT_GRAD_BITS)) if top > 0 else F32(1.0)
    t = d / float(d_scale)
    t = np.sign(t) * np.floor(np.abs(t) + 0.5)
    return np.clip(t, -32767, 32767).astype(np.int16), d_scale


def lut_grad_acc(gy_q, x_q, dtable) -> np.ndarray:
    """``acc = gy * dtable[x + 128]`` (int32, scale ``s_gy * d_scale``): the gradient of
    ``y = table[x + 128]`` at the saved int8 input ``x``."""
    d = np.asarray(dtable, np.int32)[np.asarray(x_q, np.int64) + 128]
    return (np.asarray(gy_q, np.int32) * d).astype(np.int32)


def mul_grad_acc(gy_q, other_q, other_zero: int) -> np.ndarray:
    """Gradient of ``y = a * b`` w.r.t. one operand: ``acc = gy * (other - z_other)``
    (int32, scale ``s_gy * s_other``); ``other`` may be [N, 1, 1, C] (a gate broadcast
    over gy's H x W)."""
    return (np.asarray(gy_q, np.int32) * (np.asarray(other_q, np.int32) - int(other_zero))).astype(np.int32)


def mul_gate_grad_acc(gy_q, a_q, a_zero: int) -> np.ndarray:
    """Gradient of ``y = a * gate`` w.r.t. a per-channel gate [N, 1, 1, C] broadcast over
    H x W: ``acc[c] = sum_hw gy * (a - z_a)`` (int32, scale ``s_gy * s_a``)."""
    p = np.asarray(gy_q, np.int64) * (np.asarray(a_q, np.int64) - int(a_zero))
    return p.sum(axis=(1, 2), keepdims=True).astype(np.int32)
