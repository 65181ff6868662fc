/* Generic k_h x k_w convolution (groups = 1): input gradient (transposed convolution,
 * compiler.ref.grad_ops.conv_grad_input). In a network this is the first layer, whose input needs
 * no gradient, so there is only the portable C99 variant (used by both builds). */
#include "tt_grad_core.h"

size_t tt_conv2d_grad_in_s16_scratch_bytes(const tt_conv_params *p)
{
    (void)p;
    return 0;
}

/* g[i] += t[o] * w[o][tap][i] for the output channels [o0, o1) whose rows start at wr
   (channel o0's tap) and are wstride apart. */
TT_INLINE void gin_channels(int32_t *g, const int16_t *tp, const int8_t *wr, int32_t o0,
                            int32_t o1, int32_t ci, int32_t wstride)
{
    for (int32_t o = o0; o < o1; ++o, wr += wstride) {
        const int32_t tv = tp[o];
        if (!tv) continue;
        for (int32_t i = 0; i < ci; ++i) g[i] += tv * wr[i];
    }
}

/* gx[iy][ix][i] = sum over taps (ky, kx) with iy + pad - ky = oy * stride (0 <= oy < out_h),
   same in x (with the columns' stride / pad), and o of t[oy][ox][o] * w[o][ky][kx][i]. */
TT_KERNEL void tt_conv2d_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                                     int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                                     void *scratch)
{
    (void)scratch;
    const int32_t ci = p->in_c, co = p->out_c, kh = p->k_h, kw = p->k_w, s = p->stride;
    const int32_t pad = p->pad, ho = p->out_h, wo = p->out_w, wi = p->in_w;
    const int32_t sw = TT_STRIDE_W(p), padw = TT_PAD_W(p);
    const int32_t wstride = kh * kw * ci;
    const int32_t split = tt_w_split_at(p->w_tail, p->w_split, co); /* channels at p->w */
    for (int32_t iy = y0; iy < y1; ++iy) {
        int32_t *g = gx + (ptrdiff_t)(iy - gx_row0) * wi * ci;
        for (int32_t ix = 0; ix < wi; ++ix, g += ci) {
            for (int32_t i = 0; i < ci; ++i) g[i] = 0;
            for (int32_t ky = 0; ky < kh; ++ky) {
                const int32_t py = iy + pad - ky;
                if (py < 0 || py % s) continue;
                const int32_t oy = py / s;
                if (oy >= ho) continue;
                for (int32_t kx = 0; kx < kw; ++kx) {
                    const int32_t px = ix + padw - kx;
                    if (px < 0 || px % sw) continue;
                    const int32_t ox = px / sw;
                    if (ox >= wo) continue;
                    const int16_t *tp = t + ((ptrdiff_t)(oy - t_row0) * wo + ox) * co;
                    const int32_t tap = (ky * kw + kx) * ci;
                    if (split > 0) gin_channels(g, tp, p->w + tap, 0, split, ci, wstride);
                    if (split < co)
                        gin_channels(g, tp, p->w_tail + tap, split, co, ci, wstride);
                }
            }
        }
    }
}
