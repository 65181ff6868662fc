/* Scalar arithmetic of the training step: the C twin of the helpers in
 * compiler/ref/grad_ops.py (bit-exact, including every float32 operation).
 *
 * Float32 rules (what makes numpy and C agree bit for bit):
 *   - every float expression below is one IEEE float32 operation at a time, in the
 *     order of the numpy code; the firmware (and the host test build) is compiled with
 *     -ffp-contract=off, so no multiply-add is fused; no double anywhere;
 *   - float32 is evaluated in float32 (FLT_EVAL_METHOD 0: Arm single-precision FPU,
 *     x86-64 SSE), denormals are not flushed (the Cortex-M7 default);
 *   - the only libm function used is floorf (exact on every libm); exp is our own
 *     polynomial (tt_expf).
 * Integers: signed right shifts are arithmetic (true of every compiler we target);
 * no signed overflow anywhere (checked by the sanitizer builds of the tests).
 */
#ifndef TT_TRAIN_MATH_H
#define TT_TRAIN_MATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "tt_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* compiler.ref.grad_ops.PRESCALE_BITS: the int16 prescale multiplies by s_w[c]/max(s_w) * 2^4. */
#define TT_PRESCALE_BITS 4

/* Status codes (TT_OK, TT_ERR_ARG, TT_ERR_FACTOR): tt_status.h. */

/* Rounding of the weight update (compiler.ref.grad_ops.ROUNDINGS, same order). */
#define TT_ROUND_STOCHASTIC 0
#define TT_ROUND_NEAREST 1
#define TT_ROUND_TRUNCATE 2

/* Gradient range function R = f(|g|) (compiler.ref.grad_ops._parse_mode):
 *   {TT_RANGE_SHIFT, r}   "max" (r = 0), "max/2" (r = 1), "max/4" (r = 2)
 *   {TT_RANGE_SHIFT3, 2}  "3*max/4": (3 * max) >> 2 (int32 accumulators),
 *                         (max * 3) / 4 (float32 gradients)
 *   {TT_RANGE_MEAN, K}    "mean*K", 1 <= K <= 64
 * The max kinds (SHIFT, SHIFT3) read max |g|, the mean kind sum |g|. */
#define TT_RANGE_SHIFT 0
#define TT_RANGE_MEAN 1
#define TT_RANGE_SHIFT3 2
typedef struct tt_grad_range {
    int32_t kind;
    int32_t k;
} tt_grad_range;

static inline int tt_grad_range_ok(tt_grad_range r)
{
    if (r.kind == TT_RANGE_SHIFT) return r.k >= 0 && r.k <= 2;
    if (r.kind == TT_RANGE_SHIFT3) return r.k == 2;
    if (r.kind == TT_RANGE_MEAN) return r.k >= 1 && r.k <= 64;
    return 0;
}

/* The integer range R of a max kind from max |acc| (m <= 2^31). */
static inline int64_t tt_range_of_max(uint32_t m, tt_grad_range r)
{
    if (r.kind == TT_RANGE_SHIFT3) return (3 * (int64_t)m) >> r.k;
    return (int64_t)(m >> r.k);
}

/* The float32 range R of a max kind from max |g|, one IEEE operation at a time. */
static inline float tt_range_of_maxf(float m, tt_grad_range r)
{
    if (r.kind == TT_RANGE_SHIFT3) {
        const float t = m * 3.0f;
        return t / (float)(1 << r.k);
    }
    return m / (float)(1 << r.k);
}

/* qmax_of(bits) = 2^(bits-1) - 1 for bits 2..8; -1 for any other bit width. */
static inline int32_t tt_qmax_of(int32_t bits)
{
    if (bits < 2 || bits > 8) return -1;
    return ((int32_t)1 << (bits - 1)) - 1;
}

static inline uint32_t tt_f32_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

static inline float tt_f32_from_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, 4);
    return x;
}

/* q31_of_f32: exact (mult, shift) of a non-negative float32, x == mult * 2^(shift-31),
 * read from the float's bits. +-0, denormals and values below 2^-32 give (0, 0).
 * Returns TT_OK, or TT_ERR_FACTOR with (0, 0) exactly where the reference raises:
 * NaN, infinity, x < 0 (-0.0 is not < 0) or x >= 2^30. */
static inline int tt_q31_of_f32(float x, int32_t *mult, int32_t *shift)
{
    const uint32_t b = tt_f32_bits(x);
    const int32_t exp = (int32_t)((b >> 23) & 0xFFu);
    *mult = 0;
    *shift = 0;
    if (exp == 0xFF) return TT_ERR_FACTOR;                         /* inf, NaN */
    if ((b >> 31) && (b & 0x7FFFFFFFu)) return TT_ERR_FACTOR;      /* x < 0 */
    if (exp == 0) return TT_OK;                                     /* 0, denormal */
    const int32_t s = exp - 126;
    if (s < -31) return TT_OK;
    if (s > 30) return TT_ERR_FACTOR;
    *mult = (int32_t)(((b & 0x7FFFFFu) | 0x800000u) << 7);
    *shift = s;
    return TT_OK;
}

/* hash32: counter-based 32-bit hash (murmur3-style finalizer of idx * golden + key). */
static inline uint32_t tt_hash32(uint32_t idx, uint32_t key)
{
    uint32_t h = idx * 0x9E3779B9u + key;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return h;
}

/* update_key: key of the random stream of one layer's update at one training step. */
static inline uint32_t tt_update_key(uint32_t seed, uint32_t step, uint32_t layer)
{
    return tt_hash32(step, seed + layer * 0x632BE5ABu);
}

/* round_half_away_f32 */
static inline float tt_round_half_away_f32(float v)
{
    if (v >= 0.0f) return floorf(v + 0.5f);
    return -floorf(-v + 0.5f);
}

/* expf: deterministic float32 exp for x <= 0 (compiler.ref.grad_ops.expf, same operations).
 * The constants are the exact float32 values of EXP_LO, LOG2E, LN2_HI, LN2_LO and
 * _EXP_POLY (hex literals: no decimal-to-float rounding question). */
static inline float tt_expf(float x)
{
    if (x < -86.0f) x = -86.0f; /* np.maximum(x, EXP_LO) */
    float n = x * 0x1.715476p+0f; /* LOG2E */
    n = n + 0.5f;
    n = floorf(n);
    float r = n * 0x1.62e4p-1f; /* LN2_HI */
    r = x - r;
    const float rl = n * 0x1.7f7d1cp-20f; /* LN2_LO */
    r = r - rl;
    float p = 0x1.6c16c2p-10f; /* 1/720 */
    p = p * r;
    p = p + 0x1.111112p-7f; /* 1/120 */
    p = p * r;
    p = p + 0x1.555556p-5f; /* 1/24 */
    p = p * r;
    p = p + 0x1.555556p-3f; /* 1/6 */
    p = p * r;
    p = p + 0.5f;
    p = p * r;
    p = p + 1.0f;
    p = p * r;
    p = p + 1.0f;
    /* p * 2^n by exponent arithmetic (n >= -125 for x <= 0: the result is normal) */
    const int32_t ni = (int32_t)n;
    return tt_f32_from_bits(tt_f32_bits(p) + ((uint32_t)ni << 23));
}

/* _fixed_round: round(v * 2^-total) of an int64 v (|v| < 2^62), one of
 * TT_ROUND_STOCHASTIC (rnd = the 32-bit random value of this element), NEAREST (half
 * up), TRUNCATE (toward zero). total <= 0 shifts left (unreachable from a Q31 factor,
 * whose total = 31 - shift is 1..62); total > 62 gives 0. */
static inline int64_t tt_fixed_round(int64_t v, int32_t total, int32_t rounding, uint32_t rnd)
{
    if (total <= 0) return (int64_t)((uint64_t)v << (-total));
    if (total > 62) return 0;
    if (rounding == TT_ROUND_NEAREST) return (v + ((int64_t)1 << (total - 1))) >> total;
    if (rounding == TT_ROUND_TRUNCATE) return v < 0 ? -((-v) >> total) : v >> total;
    /* stochastic: the random fraction aligned below the rounding point */
    const int64_t r = total <= 32 ? (int64_t)(rnd >> (32 - total))
                                  : (int64_t)((uint64_t)rnd << (total - 32));
    return (v + r) >> total;
}

/* weight_factors (QAS): f_c = ((lr * s_gy) * s_x) / s_w[c] */
static inline float tt_weight_factor(float lr, float s_gy, float s_x, float s_w)
{
    float a = lr * s_gy;
    a = a * s_x;
    return a / s_w;
}

/* bias_factors: f_c = ((lr * s_gy) / s_x) / s_w[c] */
static inline float tt_bias_factor(float lr, float s_gy, float s_x, float s_w)
{
    float a = lr * s_gy;
    a = a / s_x;
    return a / s_w;
}

/* QAS off (weight_factors_plain, bias_factors_plain): f_c = ((lr * s_gy) * s_x) * s_w[c],
   SGD on the integers themselves (for comparison). */
static inline float tt_weight_factor_plain(float lr, float s_gy, float s_x, float s_w)
{
    float a = lr * s_gy;
    a = a * s_x;
    return a * s_w;
}

static inline float tt_bias_factor_plain(float lr, float s_gy, float s_x, float s_w)
{
    return tt_weight_factor_plain(lr, s_gy, s_x, s_w);
}

/* input_grad_scale: scale of the prescaled int16 output gradient and of the int32 input
   gradient of a conv / fc, s_gy * (max(s_w) / 2^TT_PRESCALE_BITS). */
static inline float tt_input_grad_scale(float s_gy, float w_smax)
{
    const float a = w_smax / (float)(1 << TT_PRESCALE_BITS);
    return s_gy * a;
}

/* One weight of sgd_update_weights: clamp(w - clamp32(round(acc * mult, 31 - shift)),
 * -127, 127) (a weight of -128 becomes -127 even when delta is 0, as in numpy). */
static inline int8_t tt_sgd_update_w(int8_t w, int32_t acc, int32_t mult, int32_t total,
                                     int32_t rounding, uint32_t rnd)
{
    int64_t d = tt_fixed_round((int64_t)acc * mult, total, rounding, rnd);
    if (d > INT32_MAX) d = INT32_MAX;
    if (d < INT32_MIN) d = INT32_MIN;
    int64_t v = (int64_t)w - d;
    if (v > 127) v = 127;
    if (v < -127) v = -127;
    return (int8_t)v;
}

#ifdef __cplusplus
}
#endif
#endif
