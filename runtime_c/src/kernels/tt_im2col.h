/* Private to runtime_c/src/kernels: im2col rows and the kxk convolution's pixel loop
 * on the pointwise core (tt_gemm.h), shared by tt_conv2d_s8 and the fused block.
 *
 * An im2col row of output pixel (y, x) is its k = k_h*k_w*in_c input values in OHWI
 * order (each kernel row is k_w*in_c contiguous bytes in NHWC), padding taps = in_zero,
 * and in_zero again up to k rounded up to 4 so the row widens without a tail.
 */
#ifndef TT_IM2COL_H
#define TT_IM2COL_H
#include "tt_gemm.h"

#if TT_DSP

TT_INLINE void copy_bytes(int8_t *d, const int8_t *s, int32_t n)
{
    for (; n >= 8; n -= 8, d += 8, s += 8) {
        int32_t a = tt_ld32(s), b = tt_ld32(s + 4);
        tt_st32(d, a);
        tt_st32(d + 4, b);
    }
    if (n >= 4) {
        tt_st32(d, tt_ld32(s));
        n -= 4, d += 4, s += 4;
    }
    for (; n > 0; --n) *d++ = *s++;
}

TT_INLINE void fill_bytes(int8_t *d, int32_t v, int32_t n)
{
    const int32_t v4 = tt_splat8(v);
    for (; n >= 4; n -= 4, d += 4) tt_st32(d, v4);
    for (; n > 0; --n) *d++ = (int8_t)v;
}

/* Raw im2col row of output pixel (y, x): k values, padding taps = in_zero. */
TT_INLINE void im2col(const tt_conv_params *p, const int8_t *in, int32_t in_row0, int32_t y,
                      int32_t x, int8_t *d)
{
    const int32_t ci = p->in_c, kw = p->k_w, kh = p->k_h, span = kw * ci, zi = p->in_zero;
    const int32_t rowb = p->in_w * ci;
    const int32_t ix0 = x * TT_STRIDE_W(p) - TT_PAD_W(p), iy0 = y * p->stride - p->pad;
    if (ix0 >= 0 && ix0 + kw <= p->in_w && iy0 >= 0 && iy0 + kh <= p->in_h) {
        const int8_t *src = in + (ptrdiff_t)(iy0 - in_row0) * rowb + (ptrdiff_t)ix0 * ci;
        for (int32_t ky = 0; ky < kh; ++ky, d += span, src += rowb) copy_bytes(d, src, span);
        return;
    }
    for (int32_t ky = 0; ky < kh; ++ky, d += span) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= p->in_h) {
            fill_bytes(d, zi, span);
            continue;
        }
        const int8_t *row = in + (ptrdiff_t)(iy - in_row0) * rowb;
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx;
            if (ix < 0 || ix >= p->in_w) fill_bytes(d + kx * ci, zi, ci);
            else copy_bytes(d + kx * ci, row + (ptrdiff_t)ix * ci, ci);
        }
    }
}

/* kxk conv over output rows [y0, y1) for the n prepared channels [c0, c0 + n) (blocks;
   simple: tt_pw_prepare's answer); xbuf: k4 words then 2 * k4 raw bytes, sink: n
   bytes. */
TT_STATIC void tt_conv_rows(const tt_conv_params *p, const int32_t *blocks, int32_t c0,
                            int32_t n, int simple, const int8_t *in, int32_t in_row0,
                            int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                            int32_t *xbuf, int8_t *sink)
{
    const int32_t co = p->out_c, wo = p->out_w, zi = p->in_zero;
    const int clamp = !(p->act_min <= -128 && p->act_max >= 127);
    const int32_t k = p->k_h * p->k_w * p->in_c, k4 = (k + 3) & ~3;
    int8_t *raw0 = (int8_t *)(xbuf + k4), *raw1 = raw0 + k4;
    int8_t *op = out + (ptrdiff_t)(y0 - out_row0) * wo * co + c0;
    int32_t y = y0, x = 0;
    for (int32_t i = k; i < k4; ++i) raw0[i] = raw1[i] = (int8_t)zi;
    for (int32_t left = (y1 - y0) * wo; left > 0; left -= 2) {
        const int two = left >= 2;
        im2col(p, in, in_row0, y, x, raw0);
        if (++x == wo) { x = 0; ++y; }
        if (two) {
            im2col(p, in, in_row0, y, x, raw1);
            if (++x == wo) { x = 0; ++y; }
        }
        tt_widen_pair(raw0, two ? raw1 : raw0, k4, zi, xbuf);
        tt_pw_pixel_pair(xbuf, blocks, n, k4, op, two ? op + co : sink, co, two, simple,
                         p->out_zero, clamp, p->act_min, p->act_max);
        op += 2 * co;
    }
}

#endif /* TT_DSP */
#endif
