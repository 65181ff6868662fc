/* Depthwise convolution (in_c == out_c, multiplier 1): input gradient (transposed
 * depthwise convolution, compiler.ref.grad_ops.conv_grad_input with groups = C).
 *
 * DSP variant: channels in chunks of 32; the chunk's weights are paired per tap in
 * scratch ((w[c][tap], w[c+1][tap]) as int16 lanes); per gx pixel and valid tap, two
 * channels per SMLABB + SMLATT, accumulated in gx itself (the first valid tap writes).
 * Stride and padding may differ per axis (TT_STRIDE_W / TT_PAD_W for the columns). */
#include "tt_grad_core.h"

#define TT_DW_GIN_CH 32

size_t tt_dwconv_grad_in_s16_scratch_bytes(const tt_conv_params *p)
{
    return TT_DWCONV_GRAD_IN_S16_SCRATCH_BYTES(p->in_c, p->k_h, p->k_w);
}

#if TT_DSP

/* g[0 .. 2 np + odd) (=|+=) t[.] * w[.][tap] for one tap, 4 channels per iteration. */
static TT_GRAD_NOINLINE void tt_dw_gin_tap(int32_t *g, const int16_t *tp, const int32_t *wsp,
                                           int32_t np, int32_t odd, int32_t wlast, int first)
{
    int32_t *ge4 = g + 4 * (np / 2);
    if (first) {
        for (; g != ge4; g += 4, tp += 4, wsp += 2) {
            const int32_t t0 = tt_ld32(tp), t1 = tt_ld32(tp + 2), w0 = wsp[0], w1 = wsp[1];
            g[0] = tt_smlabb(t0, w0, 0);
            g[1] = tt_smlatt(t0, w0, 0);
            g[2] = tt_smlabb(t1, w1, 0);
            g[3] = tt_smlatt(t1, w1, 0);
        }
        if (np & 1) {
            const int32_t t0 = tt_ld32(tp), w0 = wsp[0];
            g[0] = tt_smlabb(t0, w0, 0);
            g[1] = tt_smlatt(t0, w0, 0);
            g += 2;
            tp += 2;
        }
        if (odd) g[0] = tp[0] * wlast;
    } else {
        for (; g != ge4; g += 4, tp += 4, wsp += 2) {
            const int32_t t0 = tt_ld32(tp), t1 = tt_ld32(tp + 2), w0 = wsp[0], w1 = wsp[1];
            g[0] = tt_smlabb(t0, w0, g[0]);
            g[1] = tt_smlatt(t0, w0, g[1]);
            g[2] = tt_smlabb(t1, w1, g[2]);
            g[3] = tt_smlatt(t1, w1, g[3]);
        }
        if (np & 1) {
            const int32_t t0 = tt_ld32(tp), w0 = wsp[0];
            g[0] = tt_smlabb(t0, w0, g[0]);
            g[1] = tt_smlatt(t0, w0, g[1]);
            g += 2;
            tp += 2;
        }
        if (odd) g[0] += tp[0] * wlast;
    }
}

TT_KERNEL void tt_dwconv_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                                     int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                                     void *scratch)
{
    const int32_t ch = p->in_c, kh = p->k_h, kw = p->k_w, s = p->stride, pad = p->pad;
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p); /* columns (per-axis geometry) */
    const int32_t ho = p->out_h, wo = p->out_w, wi = p->in_w, taps = kh * kw;
    int32_t *ws = (int32_t *)scratch;
    for (int32_t c0 = 0; c0 < ch; c0 += TT_DW_GIN_CH) {
        const int32_t nc = ch - c0 < TT_DW_GIN_CH ? ch - c0 : TT_DW_GIN_CH;
        const int32_t np = nc / 2, odd = nc & 1;
        for (int32_t q = 0; q < np; ++q) {
            const int8_t *wa = tt_dw_w_row(p, c0 + 2 * q), *wb = tt_dw_w_row(p, c0 + 2 * q + 1);
            for (int32_t tap = 0; tap < taps; ++tap)
                ws[tap * np + q] = tt_pack16(wa[tap], wb[tap]);
        }
        const int8_t *wl = tt_dw_w_row(p, c0 + nc - 1); /* last channel (odd nc) */
        for (int32_t iy = y0; iy < y1; ++iy) {
            int32_t *g = gx + (ptrdiff_t)(iy - gx_row0) * wi * ch + c0;
            for (int32_t ix = 0; ix < wi; ++ix, g += ch) {
                int first = 1;
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t py = iy + pad - ky;
                    if (py < 0 || py % s) continue;
                    const int32_t oy = py / s;
                    if (oy >= ho) continue;
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int32_t px = ix + pw - kx;
                        if (px < 0 || px % sw) continue;
                        const int32_t ox = px / sw;
                        if (ox >= wo) continue;
                        const int32_t tap = ky * kw + kx;
                        tt_dw_gin_tap(g, t + ((ptrdiff_t)(oy - t_row0) * wo + ox) * ch + c0,
                                      ws + tap * np, np, odd, wl[tap], first);
                        first = 0;
                    }
                }
                if (first)
                    for (int32_t c = 0; c < nc; ++c) g[c] = 0;
            }
        }
    }
}

#else /* portable */

/* g[c] += t[c] * w[c][tap] for the channels [c0, c1) whose tap is at wk (taps apart). */
TT_INLINE void dw_gin_channels(int32_t *g, const int16_t *tp, const int8_t *wk, int32_t c0,
                               int32_t c1, int32_t taps)
{
    for (int32_t c = c0; c < c1; ++c, wk += taps) g[c] += tp[c] * *wk;
}

TT_KERNEL void tt_dwconv_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                                     int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                                     void *scratch)
{
    (void)scratch;
    const int32_t ch = p->in_c, kh = p->k_h, kw = p->k_w, s = p->stride, pad = p->pad;
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p); /* columns (per-axis geometry) */
    const int32_t ho = p->out_h, wo = p->out_w, wi = p->in_w, taps = kh * kw;
    const int32_t split = tt_w_split_at(p->w_tail, p->w_split, ch); /* channels at p->w */
    for (int32_t iy = y0; iy < y1; ++iy) {
        int32_t *g = gx + (ptrdiff_t)(iy - gx_row0) * wi * ch;
        for (int32_t ix = 0; ix < wi; ++ix, g += ch) {
            for (int32_t c = 0; c < ch; ++c) g[c] = 0;
            for (int32_t ky = 0; ky < kh; ++ky) {
                const int32_t py = iy + pad - ky;
                if (py < 0 || py % s) continue;
                const int32_t oy = py / s;
                if (oy >= ho) continue;
                for (int32_t kx = 0; kx < kw; ++kx) {
                    const int32_t px = ix + pw - kx;
                    if (px < 0 || px % sw) continue;
                    const int32_t ox = px / sw;
                    if (ox >= wo) continue;
                    const int16_t *tp = t + ((ptrdiff_t)(oy - t_row0) * wo + ox) * ch;
                    const int32_t tap = ky * kw + kx;
                    if (split > 0) dw_gin_channels(g, tp, p->w + tap, 0, split, taps);
                    if (split < ch) dw_gin_channels(g, tp, p->w_tail + tap, split, ch, taps);
                }
            }
        }
    }
}
#endif /* TT_DSP */
