/* Generic k_h x k_w convolution (groups = 1): weight gradient fused with the in-place
 * update (compiler.ref.grad_ops.conv_grad_weight_acc + sgd_update_weights). In a network this is
 * the first layer, whose weights are rarely trained, so there is only the portable C99
 * variant (used by both builds). */
#include "tt_grad_core.h"

size_t tt_conv2d_grad_w_update_s8_scratch_bytes(const tt_conv_params *p)
{
    (void)p;
    return 0;
}

TT_KERNEL int tt_conv2d_grad_w_update_s8(const tt_conv_params *p, const int8_t *gy,
                                         const int8_t *x, int8_t *w, const tt_sgd_params *u,
                                         void *scratch)
{
    (void)scratch;
    const int32_t ci = p->in_c, co = p->out_c, kh = p->k_h, kw = p->k_w, s = p->stride;
    const int32_t pad = p->pad, ho = p->out_h, wo = p->out_w, wi = p->in_w, zx = p->in_zero;
    const int32_t sw = TT_STRIDE_W(p), padw = TT_PAD_W(p);
    const int st = tt_sgd_check(u, tt_w_split_at(p->w_tail, p->w_split, co), 0);
    if (st != TT_OK) return st;
    for (int32_t c = 0; c < u->k; ++c) {
        tt_chf f;
        (void)tt_chf_weight(u, c, &f);
        for (int32_t ky = 0; ky < kh; ++ky) {
            int32_t oy0, oy1;
            tt_tap_range(p->in_h, ho, ky - pad, s, &oy0, &oy1);
            for (int32_t kx = 0; kx < kw; ++kx) {
                int32_t ox0, ox1;
                tt_tap_range(wi, wo, kx - padw, sw, &ox0, &ox1);
                const uint32_t base = (uint32_t)(((c * kh + ky) * kw + kx) * ci);
                for (int32_t i = 0; i < ci; ++i) {
                    int32_t acc = 0;
                    for (int32_t oy = oy0; oy < oy1; ++oy) {
                        const int8_t *g = gy + ((ptrdiff_t)oy * wo + ox0) * co + c;
                        const int8_t *xp =
                            x + ((ptrdiff_t)(oy * s + ky - pad) * wi + ox0 * sw + kx - padw) * ci + i;
                        for (int32_t ox = ox0; ox < ox1; ++ox, g += co, xp += sw * ci)
                            acc += *g * (*xp - zx);
                    }
                    tt_upd_w(w, base + (uint32_t)i, acc, &f, u->rounding, u->key);
                }
            }
        }
    }
    return TT_OK;
}
