/* Sum of two int8 gradients with different scales (compiler.ref.grad_ops.add_grads), requantized
 * with its own range statistic. */
#include "tt_grad_core.h"

size_t tt_add_grads_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

#if TT_DSP
/* Four sums a[j] = q1[j] * m1 + q2[j] * m2: (q1, q2) as int16 lanes (SXTB16, PKH) against
   mm = (m1, m2) (|m| < 2^15), one SMUAD each. */
TT_INLINE void tt_addg4(const int8_t *q1, const int8_t *q2, int32_t mm, int32_t a[4])
{
    const int32_t x = tt_ld32(q1), y = tt_ld32(q2);
    const int32_t xe = tt_sxtb16(x), xo = tt_sxtb16_ror8(x);
    const int32_t ye = tt_sxtb16(y), yo = tt_sxtb16_ror8(y);
    a[0] = tt_smlad(tt_pkhbt_lsl16(xe, ye), mm, 0);
    a[1] = tt_smlad(tt_pkhbt_lsl16(xo, yo), mm, 0);
    a[2] = tt_smlad(tt_pkhtb_asr16(ye, xe), mm, 0);
    a[3] = tt_smlad(tt_pkhtb_asr16(yo, xo), mm, 0);
}

TT_INLINE uint32_t tt_addg_raise(int32_t a, uint32_t m)
{
    const uint32_t v = tt_abs32(a);
    return v > m ? v : m;
}

/* max |q1[i] * m1 + q2[i] * m2| over the first n4 (a multiple of 4) values: |a| <= m iff
   (uint32)(a + m) <= 2m, one ADD and one compare per value (as tt_grad_range_s32). */
static TT_GRAD_NOINLINE uint32_t tt_addg_max4(const int8_t *q1, const int8_t *q2, int32_t n4,
                                              int32_t mm)
{
    uint32_t m = 0, m2 = 0;
    for (int32_t i = 0; i < n4; i += 4) {
        int32_t a[4];
        tt_addg4(q1 + i, q2 + i, mm, a);
        if (TT_LIKELY((uint32_t)a[0] + m <= m2 && (uint32_t)a[1] + m <= m2 &&
                      (uint32_t)a[2] + m <= m2 && (uint32_t)a[3] + m <= m2))
            continue;
        m = tt_addg_raise(a[0], m);
        m = tt_addg_raise(a[1], m);
        m = tt_addg_raise(a[2], m);
        m = tt_addg_raise(a[3], m);
        m2 = 2u * m;
    }
    return m;
}

/* out[i] = tt_rqg_fast(q1[i] * m1 + q2[i] * m2, ...) for the first n4 values, four at a
   time (all four read before they are written: out may be q1 or q2). */
static TT_GRAD_NOINLINE void tt_addg_rq4(const int8_t *q1, const int8_t *q2, int32_t n4,
                                         int32_t mm, int32_t m, int32_t s, int32_t rnd,
                                         int32_t qmax, int8_t *out)
{
#if TT_DSP_NATIVE
    if (qmax == 127) { /* SSAT #8 each, the four bytes clamped to -127 together, one STR */
        for (int32_t i = 0; i < n4; i += 4) {
            int32_t a[4];
            tt_addg4(q1 + i, q2 + i, mm, a);
            const int32_t v0 = __ssat(tt_smmla(a[0], m, rnd) >> s, 8);
            const int32_t v1 = __ssat(tt_smmla(a[1], m, rnd) >> s, 8);
            const int32_t v2 = __ssat(tt_smmla(a[2], m, rnd) >> s, 8);
            const int32_t v3 = __ssat(tt_smmla(a[3], m, rnd) >> s, 8);
            tt_st32(out + i, (int32_t)tt_pack4_c127(v0, v1, v2, v3));
        }
        return;
    }
#endif
    for (int32_t i = 0; i < n4; i += 4) {
        int32_t a[4];
        tt_addg4(q1 + i, q2 + i, mm, a);
        out[i] = tt_rqg_fast(a[0], m, s, rnd, qmax);
        out[i + 1] = tt_rqg_fast(a[1], m, s, rnd, qmax);
        out[i + 2] = tt_rqg_fast(a[2], m, s, rnd, qmax);
        out[i + 3] = tt_rqg_fast(a[3], m, s, rnd, qmax);
    }
}
#endif

TT_KERNEL int tt_add_grads_s8(const int8_t *q1, float s1, const int8_t *q2, float s2, int32_t n,
                              int32_t bits, tt_grad_range range, int8_t *out, float *out_scale,
                              void *scratch)
{
    (void)scratch;
    const int32_t qmax = tt_qmax_of(bits);
    if (qmax < 0 || !tt_grad_range_ok(range) || n < 0) return TT_ERR_ARG;
    if (!isfinite(s1) || !isfinite(s2)) return TT_ERR_ARG;
    const float mx = s2 > s1 ? s2 : s1; /* Python max(s1, s2) */
    const float sc = mx / 4096.0f;
    if (!(sc > 0.0f)) { /* both gradients numerically zero (scales underflowed) */
        for (int32_t i = 0; i < n; ++i) out[i] = 0;
        *out_scale = sc;
        return TT_OK;
    }
    float f1 = s1 / sc;
    f1 = f1 + 0.5f;
    f1 = floorf(f1);
    float f2 = s2 / sc;
    f2 = f2 + 0.5f;
    f2 = floorf(f2);
    const int32_t m1 = (int32_t)f1, m2 = (int32_t)f2; /* |m| <= 2^14 */
    /* DSP: groups of 4 values with both weights as int16 lanes */
#if TT_DSP
    const int32_t n4 = m1 >= -32768 && m1 <= 32767 && m2 >= -32768 && m2 <= 32767 ? n & ~3 : 0;
    const int32_t mm = tt_pkhbt_lsl16(m1, m2);
#else
    const int32_t n4 = 0;
#endif
    /* pass 1: statistic of acc = q1 * m1 + q2 * m2 (not stored): only what the range
       kind reads (max |acc| or sum |acc|) */
    int64_t r;
    if (range.kind != TT_RANGE_MEAN) {
        uint32_t mx = 0;
#if TT_DSP
        if (n4) mx = tt_addg_max4(q1, q2, n4, mm);
#endif
        for (int32_t i = n4; i < n; ++i) {
            const uint32_t a = tt_abs32(q1[i] * m1 + q2[i] * m2);
            mx = a > mx ? a : mx;
        }
        r = n > 0 ? tt_range_of_max(mx, range) : 0;
    } else {
        uint32_t sum = 0; /* |acc| <= 2^22: 512 of them fit in 32 bits */
        uint64_t sum64 = 0;
        for (int32_t i = 0; i < n; ++i) {
            sum += tt_abs32(q1[i] * m1 + q2[i] * m2);
            if ((i & 511) == 511) {
                sum64 += sum;
                sum = 0;
            }
        }
        sum64 += sum;
        r = n > 0 ? (int64_t)range.k * (int64_t)(sum64 / (uint64_t)n) : 0;
    }
    if (r <= 0) {
        for (int32_t i = 0; i < n; ++i) out[i] = 0;
        *out_scale = sc;
        return TT_OK;
    }
    tt_rqg q;
    const float osc = tt_rqg_setup(&q, r, qmax, sc);
    /* pass 2: recompute and requantize */
    const int32_t fs = tt_rqg_fast_s(&q);
    if (fs) {
        const int32_t m = q.mult, rnd = (int32_t)1 << (fs - 1);
#if TT_DSP
        if (n4) tt_addg_rq4(q1, q2, n4, mm, m, fs, rnd, qmax, out);
#endif
        for (int32_t i = n4; i < n; ++i)
            out[i] = tt_rqg_fast(q1[i] * m1 + q2[i] * m2, m, fs, rnd, qmax);
    } else {
        for (int32_t i = 0; i < n; ++i) out[i] = tt_rqg_apply(&q, q1[i] * m1 + q2[i] * m2);
    }
    *out_scale = osc;
    return TT_OK;
}
