/* Private to runtime_c/src/kernels: selection of the Arm DSP kernel variants and the few
 * SIMD primitives they use.
 *
 * TT_DSP is 1 when the DSP variants are compiled:
 *   - on a core with the DSP extension (__ARM_FEATURE_DSP, e.g. Cortex-M4/M7), using
 *     GCC's <arm_acle.h> intrinsics and a little inline assembly;
 *   - on any other machine when TT_EMULATE_DSP is defined: the same kernel code runs
 *     on C models of the instructions below, so the host tests can fuzz the DSP code
 *     paths (the target tests then check the real instructions).
 * -DTT_PORTABLE forces the portable C99 variants everywhere.
 */
#ifndef TT_SIMD_H
#define TT_SIMD_H
#include <stdint.h>
#include <string.h>
#include "tt_qmath.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TT_PORTABLE)
#define TT_DSP 1
#define TT_DSP_NATIVE 1
#include <arm_acle.h>
#elif defined(TT_EMULATE_DSP) && !defined(TT_PORTABLE)
#define TT_DSP 1
#define TT_DSP_NATIVE 0
#else
#define TT_DSP 0
#define TT_DSP_NATIVE 0
#endif

#if defined(__GNUC__)
#define TT_INLINE static inline __attribute__((always_inline))
#define TT_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define TT_INLINE static inline
#define TT_LIKELY(x) (x)
#endif

/* Unaligned-safe loads/stores (compile to single LDR/STR where the core allows it). */
TT_INLINE int32_t tt_ld32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}
TT_INLINE void tt_st32(void *p, int32_t v) { memcpy(p, &v, 4); }

#if TT_DSP

#if TT_DSP_NATIVE
/* (x0, x2) and (x1, x3) sign-extended to 16-bit lanes; sxtab16 also adds a lane-pair. */
TT_INLINE int32_t tt_sxtb16(int32_t x) { return (int32_t)__sxtb16((uint32_t)x); }
TT_INLINE int32_t tt_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
TT_INLINE int32_t tt_sxtab16(int32_t a, int32_t x)
{
    return (int32_t)__sxtab16((uint32_t)a, (uint32_t)x);
}
TT_INLINE int32_t tt_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
TT_INLINE int32_t tt_smlad(int32_t x, int32_t y, int32_t acc)
{
    return __smlad((uint32_t)x, (uint32_t)y, acc);
}
TT_INLINE int32_t tt_smlabb(int32_t x, int32_t y, int32_t acc) { return __smlabb(x, y, acc); }
TT_INLINE int32_t tt_smlabt(int32_t x, int32_t y, int32_t acc) { return __smlabt(x, y, acc); }
TT_INLINE int32_t tt_smlatb(int32_t x, int32_t y, int32_t acc) { return __smlatb(x, y, acc); }
TT_INLINE int32_t tt_smlatt(int32_t x, int32_t y, int32_t acc) { return __smlatt(x, y, acc); }
/* acc + ((a * b) >> 32) */
TT_INLINE int32_t tt_smmla(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
TT_INLINE int32_t tt_ssat8(int32_t x) { return __ssat(x, 8); }
/* bottom half of a, top half of b */
TT_INLINE int32_t tt_pkhbt(int32_t a, int32_t b)
{
    int32_t r;
    __asm("pkhbt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* bottom half of a, bottom half of b in the top */
TT_INLINE int32_t tt_pkhbt_lsl16(int32_t a, int32_t b)
{
    int32_t r;
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* top half of a in the bottom, top half of b in the top */
TT_INLINE int32_t tt_pkhtb_asr16(int32_t b, int32_t a)
{
    int32_t r;
    __asm("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}
/* per-byte signed max / min of 4 int8 lanes (ssub8 sets the GE flags sel reads, so the
   pair stays in one asm statement) */
TT_INLINE int32_t tt_max_s8x4(int32_t a, int32_t b)
{
    int32_t r;
    __asm("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}
TT_INLINE int32_t tt_min_s8x4(int32_t a, int32_t b)
{
    int32_t r;
    __asm("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}

#else /* C models of the instructions (two's complement, wrapping like the hardware) */

TT_INLINE int32_t tt_lanes(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
TT_INLINE int32_t tt_lo(int32_t x) { return (int16_t)(uint16_t)((uint32_t)x & 0xFFFFu); }
TT_INLINE int32_t tt_hi(int32_t x) { return (int16_t)(uint16_t)((uint32_t)x >> 16); }
TT_INLINE int32_t tt_byte(int32_t x, int i) { return (int8_t)(uint8_t)((uint32_t)x >> (8 * i)); }
TT_INLINE int32_t tt_wrap32(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }

TT_INLINE int32_t tt_sxtb16(int32_t x) { return tt_lanes(tt_byte(x, 0), tt_byte(x, 2)); }
TT_INLINE int32_t tt_sxtb16_ror8(int32_t x) { return tt_lanes(tt_byte(x, 1), tt_byte(x, 3)); }
TT_INLINE int32_t tt_sxtab16(int32_t a, int32_t x)
{
    return tt_lanes(tt_lo(a) + tt_byte(x, 0), tt_hi(a) + tt_byte(x, 2));
}
TT_INLINE int32_t tt_sxtab16_ror8(int32_t a, int32_t x)
{
    return tt_lanes(tt_lo(a) + tt_byte(x, 1), tt_hi(a) + tt_byte(x, 3));
}
TT_INLINE int32_t tt_smlad(int32_t x, int32_t y, int32_t acc)
{
    return tt_wrap32((int64_t)acc + tt_lo(x) * tt_lo(y) + tt_hi(x) * tt_hi(y));
}
TT_INLINE int32_t tt_smlabb(int32_t x, int32_t y, int32_t acc)
{
    return tt_wrap32((int64_t)acc + tt_lo(x) * tt_lo(y));
}
TT_INLINE int32_t tt_smlabt(int32_t x, int32_t y, int32_t acc)
{
    return tt_wrap32((int64_t)acc + tt_lo(x) * tt_hi(y));
}
TT_INLINE int32_t tt_smlatb(int32_t x, int32_t y, int32_t acc)
{
    return tt_wrap32((int64_t)acc + tt_hi(x) * tt_lo(y));
}
TT_INLINE int32_t tt_smlatt(int32_t x, int32_t y, int32_t acc)
{
    return tt_wrap32((int64_t)acc + tt_hi(x) * tt_hi(y));
}
TT_INLINE int32_t tt_smmla(int32_t a, int32_t b, int32_t acc)
{
    int64_t p = (int64_t)a * b;
    return tt_wrap32((int64_t)acc + (p >> 32));
}
TT_INLINE int32_t tt_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
TT_INLINE int32_t tt_pkhbt(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b & 0xFFFF0000u));
}
TT_INLINE int32_t tt_pkhbt_lsl16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}
TT_INLINE int32_t tt_pkhtb_asr16(int32_t b, int32_t a)
{
    return (int32_t)(((uint32_t)b & 0xFFFF0000u) | ((uint32_t)a >> 16));
}
TT_INLINE int32_t tt_max_s8x4(int32_t a, int32_t b)
{
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
        int32_t x = tt_byte(a, i), y = tt_byte(b, i);
        r |= (uint32_t)(uint8_t)(x >= y ? x : y) << (8 * i);
    }
    return (int32_t)r;
}
TT_INLINE int32_t tt_min_s8x4(int32_t a, int32_t b)
{
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
        int32_t x = tt_byte(a, i), y = tt_byte(b, i);
        r |= (uint32_t)(uint8_t)(x >= y ? y : x) << (8 * i);
    }
    return (int32_t)r;
}
#endif /* TT_DSP_NATIVE */

/* Two int16 lanes (lo, hi) in one word. */
TT_INLINE int32_t tt_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
/* The same byte in all four lanes. */
TT_INLINE int32_t tt_splat8(int32_t v) { return (int32_t)(((uint32_t)v & 0xFFu) * 0x01010101u); }

/* ---- fast requantization ---------------------------------------------------------
 * For an output channel whose accumulators satisfy |acc| <= bound, pick lsh, t, off
 * such that, with acc' = acc * 2^lsh,
 *     (smmla(acc', mult, off) >> t) == requant(acc, mult, shift) + zero
 * exactly:
 *     shift <= -2:  lsh = 0,         t = -1 - shift
 *     shift >= -1:  lsh = shift + 2, t = 1
 *     off = 2^(t-1) + zero * 2^t
 * Proof: smmla gives hi = floor(acc' mult / 2^32) + off; for integer hi and t >= 1,
 * floor((acc' mult + 2^(31+t)) / 2^(32+t)) = (floor(acc' mult / 2^32) + 2^(t-1)) >> t,
 * and zero * 2^t passes through the shift. Valid while acc' and hi + off fit in int32;
 * tt_rq_plan() returns 0 (use tt_requant_s8) otherwise. When |hi| < 2^(t-2) for every
 * accumulator in the bound, every result is 0 and t is lowered (same results) so that
 * zero * 2^t fits: near-dead channels (shift -25..-31) stay on the fast path. */
typedef struct tt_rq {
    int32_t mult, off, t, lsh;
} tt_rq;

TT_INLINE int tt_rq_plan(tt_rq *q, int32_t mult, int32_t shift, int32_t zero,
                         int64_t bound, int32_t max_lsh)
{
    int32_t lsh, t;
    if (mult < 0) return 0;
    if (shift <= -2) {
        lsh = 0;
        t = -1 - shift;
    } else {
        lsh = shift + 2;
        t = 1;
    }
    if (t > 29 || lsh > max_lsh) return 0;
    int64_t acc_max = bound << lsh; /* bound < 2^32, lsh <= 32 */
    if (acc_max > INT32_MAX) return 0;
    int64_t hi_max = ((acc_max * mult) >> 32) + 1;
    /* Tiny multipliers (large t): if |hi| < 2^(t-1) always, every result is 0 (+ zero);
       any smaller t' with |hi| < 2^(t'-1) gives the same, and keeps zero * 2^t' small. */
    while (t > 1 && hi_max < ((int64_t)1 << (t - 2))) --t;
    int64_t off = ((int64_t)1 << (t - 1)) + (int64_t)zero * ((int64_t)1 << t);
    int64_t off_abs = off < 0 ? -off : off;
    if (hi_max + off_abs > INT32_MAX) return 0;
    q->mult = mult;
    q->off = (int32_t)off;
    q->t = t;
    q->lsh = lsh;
    return 1;
}

/* tt_rq_plan() for the bound |bias| + k * xmax * 128 in 32-bit arithmetic, for the usual
   case only (mult >= 0, -24 <= shift <= -2, so lsh 0; the bound and hi + off below 2^31);
   0 when that does not apply (then use tt_rq_plan / tt_rq_plan_w). */
TT_INLINE int tt_rq_plan32(tt_rq *q, int32_t bias, int32_t mult, int32_t shift, int32_t zero,
                           int32_t k, int32_t xmax)
{
    const uint32_t b = bias < 0 ? 0u - (uint32_t)bias : (uint32_t)bias;
    if (mult < 0 || shift > -2 || shift < -24 || k > 16384 || zero < -128 || zero > 127)
        return 0;
    const uint32_t kx = (uint32_t)k * (uint32_t)xmax * 128u;
    if (b > 0x7FFFFFFFu - kx) return 0;
    const uint32_t hi = (uint32_t)(((uint64_t)(b + kx) * (uint32_t)mult) >> 32) + 1u;
    int32_t t = -1 - shift;
    while (t > 1 && hi < (1u << (t - 2))) --t;
    const int32_t off = (1 << (t - 1)) + zero * (1 << t);
    if ((uint32_t)(off < 0 ? -off : off) + hi > 0x7FFFFFFFu) return 0;
    q->mult = mult;
    q->off = off;
    q->t = t;
    q->lsh = 0;
    return 1;
}

/* sum(|w|) of n int8 weights */
TT_INLINE int64_t tt_wabs(const int8_t *w, int32_t n)
{
    int64_t s = 0;
    for (int32_t i = 0; i < n; ++i) s += w[i] < 0 ? -w[i] : w[i];
    return s;
}

/* Plan for an output channel with bias `bias` and k int8 weights w, whose inputs satisfy
   |x - in_zero| <= xmax. First with the worst-case bound k * xmax * 128; only if that
   fails (huge bias) with the exact sum(|w|). A channel whose whole reachable range
   saturates to one int8 value (e.g. all-zero weights: near-dead channels often carry
   saturated biases) is a constant: mult 0 and off = 2 * value (t = 1) give exactly
   that whatever the accumulator holds. */
TT_INLINE int tt_rq_plan_w(tt_rq *q, int32_t bias, int32_t mult, int32_t shift,
                           int32_t zero, const int8_t *w, int32_t k, int32_t xmax,
                           int32_t max_lsh)
{
    const int64_t b = bias < 0 ? -(int64_t)bias : bias;
    if (tt_rq_plan(q, mult, shift, zero, b + (int64_t)k * xmax * 128, max_lsh)) return 1;
    const int64_t wabs = tt_wabs(w, k);
    if (tt_rq_plan(q, mult, shift, zero, b + wabs * xmax, max_lsh)) return 1;
    /* requant is monotonic in acc: if both ends of the reachable range saturate to the
       same int8, the channel is a constant */
    int64_t lo = (int64_t)bias - wabs * xmax, hi = (int64_t)bias + wabs * xmax;
    lo = lo < INT32_MIN ? INT32_MIN : lo;
    hi = hi > INT32_MAX ? INT32_MAX : hi;
    int64_t vlo = tt_requantize64((int32_t)lo, mult, shift) + zero;
    int64_t vhi = tt_requantize64((int32_t)hi, mult, shift) + zero;
    vlo = vlo < -128 ? -128 : (vlo > 127 ? 127 : vlo);
    vhi = vhi < -128 ? -128 : (vhi > 127 ? 127 : vhi);
    if (vlo != vhi || mult < 0) return 0;
    q->mult = 0;
    q->off = (int32_t)(2 * vlo);
    q->t = 1;
    q->lsh = 0;
    return 1;
}

/* The plan of precomputed record r (tt_kernels.h "Precomputed records") of a channel
   with multiplier mult, for output zero point zero. */
TT_INLINE void tt_rq_record(int32_t r, int32_t mult, int32_t zero, int32_t *q_mult,
                            int32_t *q_off, int32_t *q_t)
{
    const int32_t t = r & 0xFF;
    if (TT_LIKELY(t != 0)) {
        *q_mult = mult;
        *q_off = (int32_t)((uint32_t)(1 + 2 * zero) << (t - 1));
        *q_t = t;
    } else {
        *q_mult = 0;
        *q_off = 2 * (r >> 8);
        *q_t = 1;
    }
}

/* max |x - zero| over int8 x */
TT_INLINE int32_t tt_xmax(int32_t zero) { return zero >= 0 ? 128 + zero : 127 - zero; }

#endif /* TT_DSP */

/* |x - zero| * |w| <= 255 * 128 for int8 operands */
#define TT_MAX_PRODUCT 32640

#endif
