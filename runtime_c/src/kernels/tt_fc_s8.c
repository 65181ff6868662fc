/* Fully connected: y[n][o] = clamp(requant(bias[o] + sum_i (x[n][i] - in_zero) w[o][i])
 *                                   + out_zero, act_min, act_max)
 * DSP variant: the input row is widened once to int16 (zero point subtracted, lanes
 * ordered as SXTB16 leaves the weights: (x0, x2), (x1, x3)), then two output channels
 * at a time with SMLAD: per 4 inputs, 1 load of x, 2 x (load + 2 SXTB16) for the
 * weights and 4 SMLAD for 8 MACs (on the target a hand-written loop, 8 inputs per
 * iteration: 24 instructions per 16 MACs). Requantization: the fast plan (tt_simd.h)
 * from the 32-bit bound in_c * xmax * 128 when it applies, else the 64-bit one. */
#include "tt_kernels.h"
#include "tt_simd.h"

size_t tt_fc_s8_scratch_bytes(const tt_fc_params *p)
{
    return TT_FC_S8_SCRATCH_BYTES(p->in_c);
}

#if TT_DSP
TT_INLINE int32_t fc_finish(const tt_fc_params *p, int32_t o, int32_t acc, int32_t lo,
                            int32_t hi, int32_t xmax)
{
    if (p->rq != NULL) { /* precomputed (tt_kernels.h): a plan with lsh 0 */
        int32_t m, off, t;
        tt_rq_record(p->rq[o], p->mult[o], p->out_zero, &m, &off, &t);
        int32_t v = tt_ssat8(tt_smmla(acc, m, off) >> t);
        v = v < lo ? lo : v;
        return v > hi ? hi : v;
    }
    tt_rq q;
    const int32_t bias = p->bias[o], mult = p->mult[o], shift = p->shift[o];
    int ok = tt_rq_plan32(&q, bias, mult, shift, p->out_zero, p->in_c, xmax);
    if (!ok) {
        int64_t bound = (int64_t)(bias < 0 ? -(int64_t)bias : bias) +
                        (int64_t)p->in_c * TT_MAX_PRODUCT;
        ok = tt_rq_plan(&q, mult, shift, p->out_zero, bound, 8);
    }
    if (TT_LIKELY(ok)) {
        int32_t v = tt_ssat8(tt_smmla((int32_t)((uint32_t)acc << q.lsh), q.mult, q.off) >> q.t);
        v = v < lo ? lo : v;
        return v > hi ? hi : v;
    }
    return tt_requant_s8(acc, mult, shift, p->out_zero, lo, hi);
}

/* a0 += x . w0 and a1 += x . w1 over the n4 widened inputs at xp (n4 a multiple of 4). */
TT_INLINE void fc_dot2(const int32_t *xp, const int8_t *w0, const int8_t *w1, int32_t n4,
                       int32_t *pa0, int32_t *pa1)
{
    int32_t a0 = *pa0, a1 = *pa1;
#if TT_DSP_NATIVE
    int32_t xe, xo, wa, wb, t;
    const int32_t *xend = xp + n4 / 2;
#define FC_DOT2_GROUP                                  \
    "ldrd    %[xe], %[xo], [%[xp]], #8\n\t"          \
    "ldr     %[wa], [%[w0]], #4\n\t"                 \
    "ldr     %[wb], [%[w1]], #4\n\t"                 \
    "sxtb16  %[t], %[wa]\n\t"                        \
    "smlad   %[a0], %[xe], %[t], %[a0]\n\t"          \
    "sxtb16  %[t], %[wa], ror #8\n\t"                \
    "smlad   %[a0], %[xo], %[t], %[a0]\n\t"          \
    "sxtb16  %[t], %[wb]\n\t"                        \
    "smlad   %[a1], %[xe], %[t], %[a1]\n\t"          \
    "sxtb16  %[t], %[wb], ror #8\n\t"                \
    "smlad   %[a1], %[xo], %[t], %[a1]\n\t"
    if (n4 & 4)
        __asm volatile(FC_DOT2_GROUP
                       : [a0] "+r"(a0), [a1] "+r"(a1), [xp] "+r"(xp), [w0] "+r"(w0),
                         [w1] "+r"(w1), [xe] "=&r"(xe), [xo] "=&r"(xo), [wa] "=&r"(wa),
                         [wb] "=&r"(wb), [t] "=&r"(t)
                       :
                       : "memory");
    if (xp != xend)
        __asm volatile("1:\n\t" FC_DOT2_GROUP FC_DOT2_GROUP
                       "cmp     %[xp], %[xend]\n\t"
                       "bne     1b\n"
                       : [a0] "+r"(a0), [a1] "+r"(a1), [xp] "+r"(xp), [w0] "+r"(w0),
                         [w1] "+r"(w1), [xe] "=&r"(xe), [xo] "=&r"(xo), [wa] "=&r"(wa),
                         [wb] "=&r"(wb), [t] "=&r"(t)
                       : [xend] "r"(xend)
                       : "cc", "memory");
#undef FC_DOT2_GROUP
#else
    for (int32_t i = 0; i < n4; i += 4, xp += 2) {
        int32_t xe = xp[0], xo = xp[1];
        int32_t wa = tt_ld32(w0 + i), wb = tt_ld32(w1 + i);
        a0 = tt_smlad(xe, tt_sxtb16(wa), a0);
        a0 = tt_smlad(xo, tt_sxtb16_ror8(wa), a0);
        a1 = tt_smlad(xe, tt_sxtb16(wb), a1);
        a1 = tt_smlad(xo, tt_sxtb16_ror8(wb), a1);
    }
#endif
    *pa0 = a0;
    *pa1 = a1;
}

TT_KERNEL void tt_fc_s8(const tt_fc_params *p, const int8_t *in, int8_t *out, int32_t batch,
                        void *scratch)
{
    const int32_t ci = p->in_c, co = p->out_c, n4 = ci & ~3;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int32_t zoff = tt_pack16(-p->in_zero, -p->in_zero), xmax = tt_xmax(p->in_zero);
    int32_t *xb = (int32_t *)scratch; /* n4 / 2 words */
    for (int32_t n = 0; n < batch; ++n, in += ci, out += co) {
        for (int32_t i = 0; i < n4; i += 4) {
            int32_t x = tt_ld32(in + i);
            xb[i / 2] = tt_sxtab16(zoff, x);
            xb[i / 2 + 1] = tt_sxtab16_ror8(zoff, x);
        }
        int32_t o = 0;
        for (; o + 2 <= co; o += 2) {
            const int8_t *w0 = tt_fc_w_row(p, o), *w1 = tt_fc_w_row(p, o + 1);
            int32_t a0 = p->bias[o], a1 = p->bias[o + 1];
            fc_dot2(xb, w0, w1, n4, &a0, &a1);
            for (int32_t i = n4; i < ci; ++i) {
                int32_t x = in[i] - p->in_zero;
                a0 += x * w0[i];
                a1 += x * w1[i];
            }
            out[o] = (int8_t)fc_finish(p, o, a0, lo, hi, xmax);
            out[o + 1] = (int8_t)fc_finish(p, o + 1, a1, lo, hi, xmax);
        }
        for (; o < co; ++o) {
            const int8_t *w0 = tt_fc_w_row(p, o);
            int32_t a0 = p->bias[o];
            const int32_t *xp = xb;
            for (int32_t i = 0; i < n4; i += 4, xp += 2) {
                int32_t wa = tt_ld32(w0 + i);
                a0 = tt_smlad(xp[0], tt_sxtb16(wa), a0);
                a0 = tt_smlad(xp[1], tt_sxtb16_ror8(wa), a0);
            }
            for (int32_t i = n4; i < ci; ++i) a0 += (in[i] - p->in_zero) * w0[i];
            out[o] = (int8_t)fc_finish(p, o, a0, lo, hi, xmax);
        }
    }
}
#else
TT_KERNEL void tt_fc_s8(const tt_fc_params *p, const int8_t *in, int8_t *out, int32_t batch,
                        void *scratch)
{
    (void)scratch;
    const int32_t ci = p->in_c, co = p->out_c, zi = p->in_zero;
    for (int32_t n = 0; n < batch; ++n, in += ci, out += co) {
        for (int32_t o = 0; o < co; ++o) {
            const int8_t *w = tt_fc_w_row(p, o);
            int32_t acc = p->bias[o];
            for (int32_t i = 0; i < ci; ++i) acc += (in[i] - zi) * w[i];
            out[o] = tt_requant_s8(acc, p->mult[o], p->shift[o], p->out_zero, p->act_min,
                                   p->act_max);
        }
    }
}
#endif
