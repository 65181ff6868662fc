/* Average pooling [in_h][in_w][c] -> [out_h][out_w][c] over k_h x k_w windows at
 * `stride`, `pad` rows / columns of padding on every side (compiler.ref.ops.avg_pool).
 * `count` of a window: k_h * k_w, or with count_include_pad == 0 its taps inside the map.
 * mult == NULL (input and output share scale and zero point): y = div_round_away(sum, count)
 * of the raw values, a counted padded tap being in_zero (a real zero). Otherwise one
 * requantization: y = clamp(requant(sum(x - in_zero), mult[i], shift[i]) + out_zero),
 * i = 0 when n_mult == 1, else count - 1. Channels are the outer loop (one int32 sum, no
 * scratch); pooling is a small share of the work: one portable version. */
#include "tt_kernels.h"
#include "tt_qmath.h"

size_t tt_avgpool_s8_scratch_bytes(const tt_avgpool_params *p)
{
    (void)p;
    return 0;
}

TT_KERNEL void tt_avgpool_s8(const tt_avgpool_params *p, const int8_t *in, int8_t *out)
{
    const tt_pool_params *g = &p->pool;
    const int32_t c = g->c;
    for (int32_t oy = 0; oy < g->out_h; ++oy) {
        const int32_t y0 = oy * g->stride - g->pad;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = y0 + g->k_h > g->in_h ? g->in_h - y0 : g->k_h;
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
            const int32_t x0 = ox * TT_STRIDE_W(g) - TT_PAD_W(g);
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = x0 + g->k_w > g->in_w ? g->in_w - x0 : g->k_w;
            const int32_t taps = (ky1 - ky0) * (kx1 - kx0);
            const int32_t count = p->count_include_pad ? g->k_h * g->k_w : taps;
            int8_t *o = out + ((size_t)oy * g->out_w + ox) * c;
            for (int32_t ch = 0; ch < c; ++ch) {
                int32_t s = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *x = in + ((size_t)(y0 + ky) * g->in_w + x0 + kx0) * c + ch;
                    for (int32_t kx = kx0; kx < kx1; ++kx, x += c) s += *x;
                }
                if (p->mult == NULL) {
                    o[ch] = (int8_t)tt_div_round_away(s + (count - taps) * p->in_zero, count);
                } else {
                    const int32_t i = p->n_mult == 1 ? 0 : count - 1;
                    o[ch] = tt_requant_s8(s - taps * p->in_zero, p->mult[i], p->shift[i],
                                          p->out_zero, -128, 127);
                }
            }
        }
    }
}
