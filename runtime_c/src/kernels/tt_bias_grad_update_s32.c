/* Bias gradient fused with the int32 bias update (compiler.ref.grad_ops.bias_grad_acc,
 * bias_factors, sgd_update_bias): b[c] = sat_int32(b[c] - round_nearest(gb[c] * f_b)).
 * The Arm DSP variant sums 4 channels per word load: SXTAB16 adds the bytes into two
 * pairs of int16 lanes, flushed to int32 every 256 pixels (|sum| <= 256 * 128 fits). */
#include "tt_grad_core.h"

size_t tt_bias_grad_update_s32_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_INLINE void tt_bias_apply(const tt_sgd_params *u, int32_t o, int32_t gb, int32_t *bias)
{
    tt_chf f;
    (void)tt_chf_bias(u, o, &f);
    const int64_t d = tt_fixed_round((int64_t)gb * f.mult, f.total, TT_ROUND_NEAREST, 0);
    int64_t v = (int64_t)bias[o] - d;
    if (v > INT32_MAX) v = INT32_MAX;
    if (v < INT32_MIN) v = INT32_MIN;
    bias[o] = (int32_t)v;
}

#if TT_DSP
/* Sums over the pixels of the channels o .. o + 3. */
static TT_GRAD_NOINLINE void tt_bias_sum4(const int8_t *g, int32_t pixels, int32_t c,
                                          int32_t s[4])
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t p0 = 0; p0 < pixels; p0 += 256) {
        const int32_t pe = pixels - p0 < 256 ? pixels - p0 : 256;
        int32_t e = 0, od = 0; /* lanes (c0, c2), (c1, c3) */
        for (int32_t p = 0; p < pe; ++p, g += c) {
            const int32_t v = tt_ld32(g);
            e = tt_sxtab16(e, v);
            od = tt_sxtab16_ror8(od, v);
        }
        s0 += (int16_t)e;
        s2 += e >> 16;
        s1 += (int16_t)od;
        s3 += od >> 16;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}
#endif

TT_KERNEL int tt_bias_grad_update_s32(const int8_t *gy, int32_t pixels, int32_t c,
                                      const tt_sgd_params *u, int32_t *bias)
{
    if (pixels < 0) return TT_ERR_ARG;
    const int st = tt_sgd_check(u, c, 1);
    if (st != TT_OK) return st;
    const int32_t k = u->k;
    int32_t o = 0;
#if TT_DSP
    for (; o + 4 <= k; o += 4) {
        int32_t s[4];
        tt_bias_sum4(gy + o, pixels, c, s);
        for (int32_t q = 0; q < 4; ++q) tt_bias_apply(u, o + q, s[q], bias);
    }
#endif
    for (; o < k; ++o) {
        int32_t gb = 0;
        const int8_t *g = gy + o;
        for (int32_t p = 0; p < pixels; ++p, g += c) gb += *g;
        tt_bias_apply(u, o, gb, bias);
    }
    return TT_OK;
}
