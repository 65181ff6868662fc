/* Fully connected: y[n][o] = clamp(requant(bias[o] + sum_i (x[n][i] - in_zero) w[o][i])
 *                                   + out_zero, act_min, act_max)
 * DSP variant: the input row is widened once to int16 (zero point subtracted, lanes
 * ordered as SXTB16 leaves the weights: (x0, x2), (x1, x3)), then two output channels
 * at a time with SMLAD: per 4 inputs, 1 load of x, 2 x (load + 2 SXTB16) for the
 * weights and 4 SMLAD for 8 MACs. */
#include "tt_kernels.h"
#include "tt_simd.h"

size_t tt_fc_s8_scratch_bytes(const tt_fc_params *p)
{
    return TT_FC_S8_SCRATCH_BYTES(p->in_c);
}

#if TT_DSP
TT_INLINE int32_t fc_finish(const tt_fc_params *p, int32_t o, int32_t acc, int32_t lo,
                            int32_t hi)
{
    tt_rq q;
    int64_t bound = (int64_t)(p->bias[o] < 0 ? -(int64_t)p->bias[o] : p->bias[o]) +
                    (int64_t)p->in_c * TT_MAX_PRODUCT;
    if (TT_LIKELY(tt_rq_plan(&q, p->mult[o], p->shift[o], p->out_zero, bound, 8))) {
        int32_t v = tt_ssat8(tt_smmla((int32_t)((uint32_t)acc << q.lsh), q.mult, q.off) >> q.t);
        v = v < lo ? lo : v;
        return v > hi ? hi : v;
    }
    return tt_requant_s8(acc, p->mult[o], p->shift[o], p->out_zero, lo, hi);
}

TT_KERNEL void tt_fc_s8(const tt_fc_params *p, const int8_t *in, int8_t *out, int32_t batch,
                        void *scratch)
{
    const int32_t ci = p->in_c, co = p->out_c, n4 = ci & ~3;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int32_t zoff = tt_pack16(-p->in_zero, -p->in_zero);
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
            const int32_t *xp = xb;
            for (int32_t i = 0; i < n4; i += 4, xp += 2) {
                int32_t xe = xp[0], xo = xp[1];
                int32_t wa = tt_ld32(w0 + i), wb = tt_ld32(w1 + i);
                a0 = tt_smlad(xe, tt_sxtb16(wa), a0);
                a0 = tt_smlad(xo, tt_sxtb16_ror8(wa), a0);
                a1 = tt_smlad(xe, tt_sxtb16(wb), a1);
                a1 = tt_smlad(xo, tt_sxtb16_ror8(wb), a1);
            }
            for (int32_t i = n4; i < ci; ++i) {
                int32_t x = in[i] - p->in_zero;
                a0 += x * w0[i];
                a1 += x * w1[i];
            }
            out[o] = (int8_t)fc_finish(p, o, a0, lo, hi);
            out[o + 1] = (int8_t)fc_finish(p, o + 1, a1, lo, hi);
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
            out[o] = (int8_t)fc_finish(p, o, a0, lo, hi);
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
