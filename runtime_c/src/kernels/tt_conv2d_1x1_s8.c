/* Pointwise convolution (k = 1, pad = 0, stride 1 or 2) over output rows [y0, y1).
 *
 * DSP variant (see tt_gemm.h): output channels in chunks of TT_PW_CHUNK(in_c); a
 * chunk's weights are widened to int16 once per call (pre-scaled for the fast
 * requantization), then for every pair of output pixels the inputs are widened once
 * and each pair of output channels costs, per 4 input channels, 2 LDM + 8 SMLAD for
 * 16 MACs, plus a short requantization epilogue (SMMLA, ASR, SSAT, STRB) per output.
 */
#include "tt_gemm.h"

size_t tt_conv2d_1x1_s8_scratch_bytes(const tt_conv_params *p)
{
    return TT_CONV2D_1X1_S8_SCRATCH_BYTES(p->in_c);
}

#if TT_DSP

/* Prepare all co output channels of a conv with k weights per channel into prep. */
void tt_prep_layer(const tt_conv_params *p, int32_t k, int32_t *prep)
{
    const int clamp = !(p->act_min <= -128 && p->act_max >= 127);
    prep[0] = tt_pw_prepare(p->w, p->w_tail, p->w_split, k, p->bias, p->mult, p->shift,
                            p->in_zero, p->out_zero, 0, p->out_c, p->out_c, clamp, p->rq,
                            tt_prep_blocks(prep));
    prep[1] = 0;
}

/* Pointwise conv over output rows [y0, y1) for the n prepared channels [c0, c0 + n)
   (blocks; simple: tt_pw_prepare's answer); xbuf: k4 words, sink: n bytes. */
void tt_pw_rows(const tt_conv_params *p, const int32_t *blocks, int32_t c0,
                          int32_t n, int simple, const int8_t *in, int32_t in_row0,
                          int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                          int32_t *xbuf, int8_t *sink)
{
    const int32_t ci = p->in_c, co = p->out_c, s = p->stride, wo = p->out_w;
    const int32_t k4 = (ci + 3) & ~3, zi = p->in_zero;
    const int clamp = !(p->act_min <= -128 && p->act_max >= 127);
    const int32_t step = s * ci, skip = (s * p->in_w - s * wo) * ci;
    const int8_t *xp = in + (ptrdiff_t)(y0 * s - in_row0) * p->in_w * ci;
    int8_t *op = out + (ptrdiff_t)(y0 - out_row0) * wo * co + c0;
    int32_t x = 0, left = (y1 - y0) * wo;
#if TT_DSP_NATIVE
    /* contiguous pixels (stride 1), whole groups of 4 input channels, channel pairs:
       the pixel-pair loop in assembly */
    if (simple && s == 1 && skip == 0 && (ci & 3) == 0 && n >= 2 && (n & 1) == 0 && left >= 2) {
        const int32_t pairs = left / 2;
        const int32_t *wend = blocks + n / 2 * PW_BLOCK_WORDS(k4);
        const pw_rows_ctx cx = {xbuf, xbuf + k4, wend, op, op + co, 0,
                                xp, xp + (ptrdiff_t)2 * pairs * ci, ci, tt_pack16(-zi, -zi),
                                blocks, 2 * co - n};
        pw_rows_ldm_run(&cx, k4);
        xp += (ptrdiff_t)2 * pairs * ci;
        op += (ptrdiff_t)2 * pairs * co;
        left -= 2 * pairs;
        x = (2 * pairs) % wo;
    }
#endif
    for (; left > 0; left -= 2) {
        const int two = left >= 2;
        const int8_t *xa = xp, *xb = xa;
        xp += step;
        if (++x == wo) { x = 0; xp += skip; }
        if (two) {
            xb = xp;
            xp += step;
            if (++x == wo) { x = 0; xp += skip; }
        }
        tt_widen_pair(xa, xb, ci, zi, xbuf);
        tt_pw_pixel_pair(xbuf, blocks, n, k4, op, two ? op + co : sink, co, two, simple,
                         p->out_zero, clamp, p->act_min, p->act_max);
        op += 2 * co;
    }
}

TT_KERNEL void tt_conv2d_1x1_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                                int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                                void *scratch)
{
    const int32_t ci = p->in_c, co = p->out_c;
    const int32_t k4 = (ci + 3) & ~3, ch = TT_PW_CHUNK(ci), bw = PW_BLOCK_WORDS(k4);
    const int clamp = !(p->act_min <= -128 && p->act_max >= 127);
    if (y1 <= y0 || p->out_w <= 0) return;
    int32_t *xbuf = (int32_t *)scratch;
    int32_t *blocks = xbuf + k4;
    int8_t *sink = (int8_t *)(blocks + ch / 2 * bw);

    for (int32_t c0 = 0; c0 < co; c0 += ch) {
        const int32_t n = co - c0 < ch ? co - c0 : ch;
        const int simple = tt_pw_prepare(p->w, p->w_tail, p->w_split, ci, p->bias, p->mult,
                                         p->shift, p->in_zero, p->out_zero, c0, n, co, clamp,
                                         p->rq, blocks);
        tt_pw_rows(p, blocks, c0, n, simple, in, in_row0, out, out_row0, y0, y1, xbuf, sink);
    }
}

#else

/* Output channels [o0, o1) of one pixel; w: the weights of channel o0 (rows of ci). */
TT_INLINE void pw_channels(const tt_conv_params *p, const int8_t *xp, const int8_t *w,
                           int32_t o0, int32_t o1, int8_t *op)
{
    /* locals: the int8 stores to op could alias *p */
    const int32_t ci = p->in_c, zi = p->in_zero, zo = p->out_zero;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
    for (int32_t o = o0; o < o1; ++o, w += ci) {
        int32_t acc = bias[o];
        for (int32_t i = 0; i < ci; ++i) acc += (xp[i] - zi) * w[i];
        op[o] = tt_requant_s8(acc, mult[o], shift[o], zo, lo, hi);
    }
}

TT_KERNEL void tt_conv2d_1x1_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                                int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                                void *scratch)
{
    (void)scratch;
    const int32_t ci = p->in_c, co = p->out_c, s = p->stride, wo = p->out_w;
    const int32_t split = tt_w_split_at(p->w_tail, p->w_split, co); /* channels at p->w */
    for (int32_t y = y0; y < y1; ++y) {
        const int8_t *irow = in + (ptrdiff_t)(y * s - in_row0) * p->in_w * ci;
        int8_t *orow = out + (ptrdiff_t)(y - out_row0) * wo * co;
        for (int32_t x = 0; x < wo; ++x) {
            const int8_t *xp = irow + (ptrdiff_t)x * s * ci;
            if (split > 0) pw_channels(p, xp, p->w, 0, split, orow + x * co);
            if (split < co) pw_channels(p, xp, p->w_tail, split, co, orow + x * co);
        }
    }
}

#endif
