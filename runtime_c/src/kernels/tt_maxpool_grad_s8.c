/* Max pool backward (compiler.ref.grad_ops.max_pool_grad_acc): each output gradient
 * gy[oy][ox][c] is added to the accumulator of the first maximum of its window in the
 * forward input x (scan order: row, then column; padded taps never win); overlapping
 * windows add up. int32 accumulators [in_h][in_w][c] with the scale of gy. */
#include "tt_train_kernels.h"

size_t tt_maxpool_grad_s8_scratch_bytes(const tt_pool_params *p)
{
    (void)p;
    return 0;
}

TT_KERNEL void tt_maxpool_grad_s8(const tt_pool_params *p, const int8_t *x, const int8_t *gy,
                                  int32_t *acc)
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
            for (int32_t ch = 0; ch < c; ++ch) {
                int32_t best = -129;
                size_t at = 0;
                for (int32_t yy = ya; yy < yb; ++yy)
                    for (int32_t xx = xa; xx < xb; ++xx) {
                        const size_t k = ((size_t)yy * p->in_w + xx) * c + ch;
                        if (x[k] > best) { best = x[k]; at = k; }
                    }
                acc[at] += g[ch];
            }
        }
    }
}
