/* Integer arithmetic primitives of the forward pass: the C twin of compiler/ir/qmath.py.
 *
 * Every function here is bit-exact with its Python counterpart (C99, no floating
 * point). Signed right shifts are arithmetic (true of every compiler we target).
 *
 * Requantization (single rounding, as CMSIS-NN's CMSIS_NN_USE_SINGLE_ROUNDING):
 *
 *     requant(acc) = (acc * mult + 2^(30 - shift)) >> (31 - shift)     in int64
 *
 * mult is a Q31 multiplier in [2^30, 2^31) (or 0), shift in [-31, 30]; the result is
 * acc * mult * 2^(shift - 31) rounded half towards +infinity.
 */
#ifndef TT_QMATH_H
#define TT_QMATH_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TT_SHIFT_MIN (-31)
#define TT_SHIFT_MAX 30
/* Residual add: inputs are scaled by 2^20 before their own requantization. */
#define TT_ADD_LEFT_SHIFT 20

/* Exact requant(acc) as int64 (qmath.requantize for one int32 accumulator). */
static inline int64_t tt_requantize64(int32_t acc, int32_t mult, int32_t shift)
{
    const int total = 31 - (int)shift; /* 1 .. 62 */
    /* |acc * mult| <= 2^62 and the rounding term <= 2^61: no int64 overflow. */
    return ((int64_t)acc * mult + ((int64_t)1 << (total - 1))) >> total;
}

/* requant(acc) saturated to int32. Equal to qmath.requantize whenever that fits in
   int32, which is always the case for shift <= 0. */
static inline int32_t tt_requantize(int32_t acc, int32_t mult, int32_t shift)
{
    int64_t r = tt_requantize64(acc, mult, shift);
    if (r > INT32_MAX) return INT32_MAX;
    if (r < INT32_MIN) return INT32_MIN;
    return (int32_t)r;
}

/* clamp(requant(acc) + zero, act_min, act_max) as int8, exact for every int32 acc and
   every (mult, shift) (the saturation above cannot change a clamped result). */
static inline int8_t tt_requant_s8(int32_t acc, int32_t mult, int32_t shift,
                                  int32_t zero, int32_t act_min, int32_t act_max)
{
    int64_t r = tt_requantize64(acc, mult, shift) + zero;
    if (r < act_min) r = act_min;
    if (r > act_max) r = act_max;
    return (int8_t)r;
}

static inline int32_t tt_clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Integer division rounding half away from zero (qmath.div_round_away), den > 0. */
static inline int32_t tt_div_round_away(int32_t num, int32_t den)
{
    const int32_t half = den / 2;
    /* C99 division truncates toward zero. */
    return num >= 0 ? (num + half) / den : (num - half) / den;
}

#ifdef __cplusplus
}
#endif
#endif
