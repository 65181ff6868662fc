/* Average pool backward (compiler.ref.grad_ops.avg_pool_grad_acc), every window with the
 * divisor k_h * k_w: each output gradient gy[oy][ox][c] is added to every tap of its
 * window inside the map; overlapping windows add up. int32 accumulators [in_h][in_w][c]
 * with the scale of gy / (k_h * k_w) (the caller sets it; tt_requant_grad_s8 makes them
 * int8). */
#include "tt_train_kernels.h"

size_t tt_avgpool_window_grad_s8_scratch_bytes(const tt_pool_params *p)
{
    (void)p;
    return 0;
}

TT_KERNEL void tt_avgpool_window_grad_s8(const tt_pool_params *p, const int8_t *gy, int32_t *acc)
{
    const int32_t c = p->c;
    for (int32_t i = 0; i < p->in_h * p->in_w * c; ++i) acc[i] = 0;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride - p->pad;
        const int32_t ya = y0 < 0 ? 0 : y0;
        const int32_t yb = y0 + p->k_h > p->in_h ? p->in_h : y0 + p->k_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * TT_STRIDE_W(p) - TT_PAD_W(p);
            const int32_t xa = x0 < 0 ? 0 : x0;
            const int32_t xb = x0 + p->k_w > p->in_w ? p->in_w : x0 + p->k_w;
            const int8_t *g = gy + ((size_t)oy * p->out_w + ox) * c;
            for (int32_t yy = ya; yy < yb; ++yy)
                for (int32_t xx = xa; xx < xb; ++xx) {
                    int32_t *a = acc + ((size_t)yy * p->in_w + xx) * c;
                    for (int32_t ch = 0; ch < c; ++ch) a[ch] += g[ch];
                }
        }
    }
}
