/* Pointwise convolution (k = 1, pad = 0, any stride): input gradient, a matrix product
 * over the output pixels; the DSP variant is the input-gradient core of tt_grad_core.h.
 * Measured on the emulated Cortex-M7 (bench/kernels.py --train): 1.0-1.25 instructions
 * per MAC (the portable build: ~4.5). */
#include "tt_grad_core.h"

size_t tt_conv2d_1x1_grad_in_s16_scratch_bytes(const tt_conv_params *p)
{
    return TT_GRAD_IN_MM_SCRATCH_BYTES(p->out_c);
}

TT_KERNEL void tt_conv2d_1x1_grad_in_s16(const tt_conv_params *p, const int16_t *t,
                                         int32_t t_row0, int32_t *gx, int32_t gx_row0,
                                         int32_t y0, int32_t y1, void *scratch)
{
    const int32_t ci = p->in_c, co = p->out_c, s = p->stride, wo = p->out_w, wi = p->in_w;
    if (y1 <= y0) return;
    /* gx rows oy * s for the output rows oy in [oa, ob); with s > 1 every other gx pixel
       of the band is 0 */
    if (s != 1) memset(gx + (ptrdiff_t)(y0 - gx_row0) * wi * ci, 0,
                       (size_t)(y1 - y0) * (size_t)wi * (size_t)ci * 4u);
    const int32_t oa = (y0 + s - 1) / s;
    int32_t ob = (y1 - 1) / s + 1;
    if (ob > p->out_h) ob = p->out_h;
    if (ob <= oa) return;
    const int16_t *tp = t + (ptrdiff_t)(oa - t_row0) * wo * co;
    int32_t *gp = gx + (ptrdiff_t)(oa * s - gx_row0) * wi * ci;
    const int32_t rows = s == 1 ? 1 : ob - oa, n = s == 1 ? (ob - oa) * wo : wo;
    const int32_t split = tt_w_split_at(p->w_tail, p->w_split, co);
#if TT_DSP
    tt_gin_mm(tp, p->w, p->w_tail, split, co, ci, rows, n, gp, s * wi * ci, s * ci, scratch);
#else
    (void)scratch;
    tt_gin_mm_portable(tp, p->w, p->w_tail, split, co, ci, rows, n, gp, s * wi * ci, s * ci);
#endif
}
