/* Generic k_h x k_w convolution, groups = 1, any stride and pad, over output rows
 * [y0, y1).
 *
 * DSP variant (see tt_gemm.h): im2col of two output pixels at a time (each kernel row
 * of a pixel is kw*in_c contiguous bytes in NHWC; padding taps are in_zero), widened to
 * int16 pairs with the zero point subtracted, then the pointwise core: the OHWI weight
 * rows of a chunk of output channels (at most out_c, so the scratch stays small for the
 * first conv, usually the layer with the largest activations) are widened once per
 * call, and each pair of output channels costs 2 LDM + 8 SMLAD per 16 MACs.
 *
 * 3x3 over 3 input channels (a model's usual first layer, k = 27): interior pixel pairs
 * skip the raw im2col copy and are widened straight from the input with 4-byte loads
 * (widen_333_pair; on the target pw_rows333_ldm in tt_gemm.h runs a row's whole run of
 * interior pairs in one call, 70 instructions per pixel pair and 94 per channel pair):
 * the first conv of the three real models went from 1.26 to 1.01 instructions per MAC. */
#include "tt_gemm.h"

size_t tt_conv2d_s8_scratch_bytes(const tt_conv_params *p)
{
    return TT_CONV2D_S8_SCRATCH_BYTES(p->k_h, p->k_w, p->in_c, p->out_c);
}

#if TT_DSP

/* An im2col row of output pixel (y, x) is its k = k_h*k_w*in_c input values in OHWI
 * order, padding taps = in_zero, and in_zero again up to k rounded up to 4 so the row
 * widens without a tail. */
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

/* Output pixels of a band in order, with their im2col rows: interior pixels (every tap
   inside the input) copy k_h contiguous spans from a pointer that moves by stride_w *
   in_c; the others go through im2col(). */
typedef struct {
    const tt_conv_params *p;
    const int8_t *in;
    int32_t in_row0, y, x, wo, rowb, span, kh, sxc, xlo, xhi;
    int32_t inside;    /* y's kernel rows are all inside the input */
    ptrdiff_t off;     /* then the first tap of pixel (y, x) is in[off + x * sxc] */
} im2col_iter;

TT_INLINE void im2col_row(im2col_iter *it)
{
    const tt_conv_params *p = it->p;
    const int32_t iy0 = it->y * p->stride - p->pad;
    it->inside = iy0 >= 0 && iy0 + it->kh <= p->in_h;
    it->off = (ptrdiff_t)(iy0 - it->in_row0) * it->rowb - (ptrdiff_t)TT_PAD_W(p) * p->in_c;
}

TT_INLINE void im2col_begin(im2col_iter *it, const tt_conv_params *p, const int8_t *in,
                            int32_t in_row0, int32_t y0)
{
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p), last = p->in_w - p->k_w + pw;
    it->p = p;
    it->in = in;
    it->in_row0 = in_row0;
    it->y = y0;
    it->x = 0;
    it->wo = p->out_w;
    it->rowb = p->in_w * p->in_c;
    it->span = p->k_w * p->in_c;
    it->kh = p->k_h;
    it->sxc = sw * p->in_c;
    it->xlo = (pw + sw - 1) / sw;
    it->xhi = last < 0 ? 0 : last / sw + 1;
    im2col_row(it);
}

/* Raw im2col row of the current pixel into d, then step to the next pixel. */
TT_INLINE void im2col_next(im2col_iter *it, int8_t *d)
{
    const int32_t x = it->x;
    if (it->inside && x >= it->xlo && x < it->xhi) {
        const int8_t *s = it->in + (it->off + (ptrdiff_t)x * it->sxc);
        const int32_t span = it->span, rowb = it->rowb;
        if (span == 9) { /* 3x3 over 3 channels (the usual first conv): straight-line copies */
            for (int32_t ky = it->kh; ky > 0; --ky, d += 9, s += rowb) {
                const int32_t a = tt_ld32(s), b = tt_ld32(s + 4);
                tt_st32(d, a);
                tt_st32(d + 4, b);
                d[8] = s[8];
            }
        } else {
            for (int32_t ky = it->kh; ky > 0; --ky, d += span, s += rowb) copy_bytes(d, s, span);
        }
    } else {
        im2col(it->p, it->in, it->in_row0, it->y, x, d);
    }
    if (++it->x == it->wo) {
        it->x = 0;
        ++it->y;
        im2col_row(it);
    }
}

/* 3x3 taps over 3 channels (the usual first conv) of the interior pixel pair whose
   first taps are s and s + sxc, widened straight from the input into xbuf exactly as
   tt_widen_pair widens their im2col rows (except the 28th value, the padding tap:
   -in_zero instead of 0; its weight is 0), without the raw copy. Each group of 4 taps is
   one 4-byte load (unaligned where needed); the two groups that straddle kernel rows
   merge two loads. Loads may touch a byte or two beside a kernel row's 9 taps, always
   inside the three input rows the pixel reads (s - 1 .. s + 2 * rowb + 8). */
#define W333_GROUPS(s, v0, v1, v2, v3, v4, v5, v6)                                       \
    do {                                                                                \
        const int8_t *s1_ = (s) + rowb, *s2_ = s1_ + rowb;                              \
        v0 = tt_ld32(s);                                                                \
        v1 = tt_ld32((s) + 4);                                                          \
        v2 = (int32_t)(((uint32_t)tt_ld32(s1_ - 1) & ~0xFFu) | (uint8_t)(s)[8]);        \
        v3 = tt_ld32(s1_ + 3);                                                          \
        v4 = tt_pkhbt(tt_ld32(s1_ + 7), tt_ld32(s2_ - 2));                              \
        v5 = tt_ld32(s2_ + 2);                                                          \
        v6 = (int32_t)((uint32_t)tt_ld32(s2_ + 5) >> 8);                                \
    } while (0)
#define W333_STORE(g, a, b)                    \
    do {                                       \
        xbuf[4 * (g)] = tt_sxtab16(zoff, a);       \
        xbuf[4 * (g) + 1] = tt_sxtab16_ror8(zoff, a); \
        xbuf[4 * (g) + 2] = tt_sxtab16(zoff, b);   \
        xbuf[4 * (g) + 3] = tt_sxtab16_ror8(zoff, b); \
    } while (0)

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void widen_333_pair(const int8_t *s, int32_t sxc, int32_t rowb, int32_t zoff,
                           int32_t *xbuf)
{
    int32_t a0, a1, a2, a3, a4, a5, a6, b0, b1, b2, b3, b4, b5, b6;
    W333_GROUPS(s, a0, a1, a2, a3, a4, a5, a6);
    W333_GROUPS(s + sxc, b0, b1, b2, b3, b4, b5, b6);
    W333_STORE(0, a0, b0);
    W333_STORE(1, a1, b1);
    W333_STORE(2, a2, b2);
    W333_STORE(3, a3, b3);
    W333_STORE(4, a4, b4);
    W333_STORE(5, a5, b5);
    W333_STORE(6, a6, b6);
}
#undef W333_GROUPS
#undef W333_STORE

void tt_conv_rows(const tt_conv_params *p, const int32_t *blocks, int32_t c0,
                            int32_t n, int simple, const int8_t *in, int32_t in_row0,
                            int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                            int32_t *xbuf, int8_t *sink)
{
    const int32_t co = p->out_c, wo = p->out_w, zi = p->in_zero;
    const int clamp = !(p->act_min <= -128 && p->act_max >= 127);
    const int32_t k = p->k_h * p->k_w * p->in_c, k4 = (k + 3) & ~3;
    int8_t *raw0 = (int8_t *)(xbuf + k4), *raw1 = raw0 + k4;
    int8_t *op = out + (ptrdiff_t)(y0 - out_row0) * wo * co + c0;
    im2col_iter it;
    im2col_begin(&it, p, in, in_row0, y0);
    for (int32_t i = k; i < k4; ++i) raw0[i] = raw1[i] = (int8_t)zi;
    const int32_t zoff = tt_pack16(-zi, -zi);
#if TT_DSP_NATIVE
    /* raw1 = raw0 + k4: a pixel pair is the pointwise rows' contiguous pair (ci = k4) */
    const int fast = simple && n >= 2 && (n & 1) == 0;
    pw_rows_ctx cx = {xbuf, xbuf + k4, blocks + n / 2 * PW_BLOCK_WORDS(k4), op, op + co, 0,
                      raw0, raw0 + 2 * k4, k4, zoff, blocks, 0};
#endif
    /* 3x3 over 3 channels: interior pixel pairs widen straight from the input */
    const int w333 = k == 27 && it.kh == 3 && it.span == 9;
    for (int32_t left = (y1 - y0) * wo; left > 0; left -= 2) {
#if TT_DSP_NATIVE
        /* a run of interior pixel pairs in one row: all in one call */
        if (w333 && fast && it.inside && it.x >= it.xlo) {
            const int32_t xe = it.xhi < wo ? it.xhi : wo;
            int32_t np = (xe - it.x) / 2;
            if (np > left / 2) np = left / 2;
            if (np > 0) {
                const int8_t *s = it.in + (it.off + (ptrdiff_t)it.x * it.sxc);
                pw_rows_ctx rc = cx;
                rc.o0 = op;
                rc.o1 = op + co;
                rc.entry = it.rowb;
                rc.x = s;
                rc.xstop = s + (ptrdiff_t)2 * np * it.sxc;
                rc.ci = it.sxc;
                rc.oskip = 2 * co - n;
                pw_rows333_ldm(&rc);
                op += (ptrdiff_t)2 * np * co;
                left -= 2 * np - 2; /* the loop subtracts 2 */
                if ((it.x += 2 * np) == wo) {
                    it.x = 0;
                    ++it.y;
                    im2col_row(&it);
                }
                continue;
            }
        }
#endif
        const int two = left >= 2;
        if (w333 && two && it.inside && it.x >= it.xlo && it.x + 2 <= it.xhi &&
            it.x + 2 <= wo) {
            const int8_t *s = it.in + (it.off + (ptrdiff_t)it.x * it.sxc);
            widen_333_pair(s, it.sxc, it.rowb, zoff, xbuf);
            if ((it.x += 2) == wo) {
                it.x = 0;
                ++it.y;
                im2col_row(&it);
            }
            tt_pw_pixel_pair(xbuf, blocks, n, k4, op, op + co, co, 1, simple, p->out_zero,
                             clamp, p->act_min, p->act_max);
            op += 2 * co;
            continue;
        }
        im2col_next(&it, raw0);
        if (two) im2col_next(&it, raw1);
#if TT_DSP_NATIVE
        if (fast && two) {
            cx.o0 = op;
            cx.o1 = op + co;
            pw_rows_ldm_run(&cx, k4);
            op += 2 * co;
            continue;
        }
#endif
        tt_widen_pair(raw0, two ? raw1 : raw0, k4, zi, xbuf);
        tt_pw_pixel_pair(xbuf, blocks, n, k4, op, two ? op + co : sink, co, two, simple,
                         p->out_zero, clamp, p->act_min, p->act_max);
        op += 2 * co;
    }
}

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
                                         p->rq, blocks);
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
