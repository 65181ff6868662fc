/* Generic k_h x k_w convolution, groups = 1, any stride and pad, over output rows
 * [y0, y1).
 *
 * DSP variant (see tt_gemm.h): im2col of two output pixels at a time (each kernel row
 * of a pixel is kw*in_c contiguous bytes in NHWC; padding taps are in_zero), widened to
 * int16 pairs with the zero point subtracted, then the pointwise core: the OHWI weight
 * rows of a chunk of output channels (at most out_c, so the scratch stays small for the
 * first conv, usually the layer with the largest activations) are widened once per
 * call, and each pair of output channels costs 4 LDRD + 8 SMLAD per 16 MACs. */
#include "tt_im2col.h"

size_t tt_conv2d_s8_scratch_bytes(const tt_conv_params *p)
{
    return TT_CONV2D_S8_SCRATCH_BYTES(p->k_h, p->k_w, p->in_c, p->out_c);
}

#if TT_DSP

TT_KERNEL void tt_conv2d_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                            int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                            void *scratch)
{
    const int32_t co = p->out_c;
    const int clamp = !(p->act_min <= -128 && p->act_max >= 127);
    const int32_t k = p->k_h * p->k_w * p->in_c, k4 = (k + 3) & ~3;
    const int32_t ch = TT_CONV2D_CHUNK(k, co), bw = PW_BLOCK_WORDS(k4);
    int32_t *xbuf = (int32_t *)scratch;  /* k4 words + 2 * k4 raw bytes */
    int32_t *blocks = xbuf + k4 + k4 / 2; /* ch / 2 channel-pair blocks */
    int8_t *sink = (int8_t *)(blocks + ch / 2 * bw);
    if (y1 <= y0 || p->out_w <= 0) return;

    for (int32_t c0 = 0; c0 < co; c0 += ch) {
        const int32_t n = co - c0 < ch ? co - c0 : ch;
        const int simple = tt_pw_prepare(p->w, p->w_tail, p->w_split, k, p->bias, p->mult,
                                         p->shift, p->in_zero, p->out_zero, c0, n, co, clamp,
                                         blocks);
        tt_conv_rows(p, blocks, c0, n, simple, in, in_row0, out, out_row0, y0, y1, xbuf, sink);
    }
}

#else

TT_KERNEL void tt_conv2d_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                            int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                            void *scratch)
{
    (void)scratch;
    const int32_t ci = p->in_c, co = p->out_c, wo = p->out_w, kh = p->k_h, kw = p->k_w;
    const int32_t zi = p->in_zero;
    for (int32_t y = y0; y < y1; ++y) {
        int8_t *orow = out + (ptrdiff_t)(y - out_row0) * wo * co;
        for (int32_t x = 0; x < wo; ++x) {
            const int32_t ix0 = x * TT_STRIDE_W(p) - TT_PAD_W(p), iy0 = y * p->stride - p->pad;
            for (int32_t o = 0; o < co; ++o) {
                int32_t acc = p->bias[o];
                const int8_t *wo = tt_w_row(p, o);
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t iy = iy0 + ky;
                    if (iy < 0 || iy >= p->in_h) continue;
                    const int8_t *row = in + (ptrdiff_t)(iy - in_row0) * p->in_w * ci;
                    const int8_t *wr = wo + (size_t)(ky * kw) * ci;
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int32_t ix = ix0 + kx;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int8_t *xp = row + (ptrdiff_t)ix * ci, *wp = wr + kx * ci;
                        for (int32_t i = 0; i < ci; ++i) acc += (xp[i] - zi) * wp[i];
                    }
                }
                orow[x * co + o] = tt_requant_s8(acc, p->mult[o], p->shift[o], p->out_zero,
                                                 p->act_min, p->act_max);
            }
        }
    }
}

#endif
