/* Depthwise convolution (in_c == out_c, multiplier 1): weight gradient fused with the
 * in-place update (compiler.ref.grad_ops.conv_grad_weight_acc with groups = C + sgd_update_weights).
 *
 * DSP variant: 4 channels at a time, one word of gy and one of x per pixel (SXTB16 /
 * SXTAB16 with the zero point folded in), SMLABB / SMLATT into 4 registers per tap, then
 * the 4 weights of the tap are updated; the channels after the last block of 4 take the
 * portable per-channel loop. Stride and padding may differ per axis (TT_STRIDE_W /
 * TT_PAD_W for the columns). */
#include "tt_grad_core.h"

size_t tt_dwconv_grad_w_update_s8_scratch_bytes(const tt_conv_params *p)
{
    (void)p;
    return 0;
}

#if TT_DSP

/* Sums of gy[p][c0 + q] * (x[p][c0 + q] - zx), q < 4, over one row of valid pixels of a
   tap, added to a[]. */
static TT_GRAD_NOINLINE void tt_dw_gw_row(const int8_t *gp, const int8_t *xp, int32_t n,
                                          int32_t ch, int32_t x_step, int32_t zoff, int32_t a[4])
{
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const int8_t *ge = gp + (ptrdiff_t)n * ch;
    for (; gp != ge; gp += ch, xp += x_step) {
        const int32_t gv = tt_ld32(gp), xv = tt_ld32(xp);
        const int32_t g02 = tt_sxtb16(gv), x02 = tt_sxtab16(zoff, xv);
        a0 = tt_smlabb(g02, x02, a0);
        a2 = tt_smlatt(g02, x02, a2);
        const int32_t g13 = tt_sxtb16_ror8(gv), x13 = tt_sxtab16_ror8(zoff, xv);
        a1 = tt_smlabb(g13, x13, a1);
        a3 = tt_smlatt(g13, x13, a3);
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

#endif /* TT_DSP */

/* One channel of the weight gradient, portable (all channels of the portable build,
   the channels after the last block of 4 in the DSP build). */
static void tt_dw_gw_channel(const tt_conv_params *p, const int8_t *gy, const int8_t *x,
                             int8_t *w, const tt_sgd_params *u, int32_t c)
{
    const int32_t ch = p->in_c, kh = p->k_h, kw = p->k_w, s = p->stride, pad = p->pad;
    const int32_t ho = p->out_h, wo = p->out_w, wi = p->in_w, zx = p->in_zero;
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p); /* columns (per-axis geometry) */
    tt_chf f;
    (void)tt_chf_weight(u, c, &f);
    for (int32_t ky = 0; ky < kh; ++ky) {
        int32_t oy0, oy1;
        tt_tap_range(p->in_h, ho, ky - pad, s, &oy0, &oy1);
        for (int32_t kx = 0; kx < kw; ++kx) {
            int32_t ox0, ox1;
            tt_tap_range(wi, wo, kx - pw, sw, &ox0, &ox1);
            int32_t acc = 0;
            for (int32_t oy = oy0; oy < oy1; ++oy) {
                const int8_t *g = gy + ((ptrdiff_t)oy * wo + ox0) * ch + c;
                const int8_t *xp =
                    x + ((ptrdiff_t)(oy * s + ky - pad) * wi + ox0 * sw + kx - pw) * ch + c;
                for (int32_t ox = ox0; ox < ox1; ++ox, g += ch, xp += sw * ch)
                    acc += *g * (*xp - zx);
            }
            tt_upd_w(w, (uint32_t)((c * kh + ky) * kw + kx), acc, &f, u->rounding, u->key);
        }
    }
}

TT_KERNEL int tt_dwconv_grad_w_update_s8(const tt_conv_params *p, const int8_t *gy,
                                         const int8_t *x, int8_t *w, const tt_sgd_params *u,
                                         void *scratch)
{
    (void)scratch;
    const int st = tt_sgd_check(u, tt_w_split_at(p->w_tail, p->w_split, p->in_c), 0);
    if (st != TT_OK) return st;
    int32_t c = 0;
#if TT_DSP
    const int32_t ch = p->in_c, kh = p->k_h, kw = p->k_w, s = p->stride, pad = p->pad;
    const int32_t ho = p->out_h, wo = p->out_w, wi = p->in_w, taps = kh * kw;
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p); /* columns (per-axis geometry) */
    const int32_t zoff = tt_pack16(-p->in_zero, -p->in_zero);
    const int32_t rounding = u->rounding;
    const uint32_t key = u->key;
    for (; c + 4 <= u->k; c += 4) {
        tt_chf f[4];
        for (int32_t q = 0; q < 4; ++q) (void)tt_chf_weight(u, c + q, &f[q]);
        for (int32_t ky = 0; ky < kh; ++ky) {
            int32_t oy0, oy1;
            tt_tap_range(p->in_h, ho, ky - pad, s, &oy0, &oy1);
            for (int32_t kx = 0; kx < kw; ++kx) {
                int32_t ox0, ox1, a[4] = {0, 0, 0, 0};
                tt_tap_range(wi, wo, kx - pw, sw, &ox0, &ox1);
                if (ox1 > ox0)
                    for (int32_t oy = oy0; oy < oy1; ++oy)
                        tt_dw_gw_row(gy + ((ptrdiff_t)oy * wo + ox0) * ch + c,
                                     x + ((ptrdiff_t)(oy * s + ky - pad) * wi + ox0 * sw + kx - pw) * ch + c,
                                     ox1 - ox0, ch, sw * ch, zoff, a);
                const uint32_t tap = (uint32_t)(ky * kw + kx);
                for (int32_t q = 0; q < 4; ++q)
                    tt_upd_w(w, (uint32_t)(c + q) * (uint32_t)taps + tap, a[q], &f[q], rounding, key);
            }
        }
    }
#endif
    for (; c < u->k; ++c) tt_dw_gw_channel(p, gy, x, w, u, c);
    return TT_OK;
}
