/* Pointwise convolution (k = 1, pad = 0, any stride): weight gradient fused with the
 * in-place update, a matrix product over the output pixels; the DSP variant is the
 * weight-gradient core of tt_grad_core.h. Measured on the emulated Cortex-M7 (8x8
 * pixels, 48/96 channels): ~1.5 instructions per MAC in its inner loop, ~2.2-2.5 per MAC
 * with the per-weight update included (the portable build: ~11). */
#include "tt_grad_core.h"

size_t tt_conv2d_1x1_grad_w_update_s8_scratch_bytes(const tt_conv_params *p)
{
    if (p->stride == 1) return TT_GRAD_W_MM_SCRATCH_BYTES(1, p->out_h * p->out_w);
    return TT_GRAD_W_MM_SCRATCH_BYTES(p->out_h, p->out_w);
}

TT_KERNEL int tt_conv2d_1x1_grad_w_update_s8(const tt_conv_params *p, const int8_t *gy,
                                             const int8_t *x, int8_t *w,
                                             const tt_sgd_params *u, void *scratch)
{
    const int32_t ci = p->in_c, co = p->out_c, s = p->stride, wi = p->in_w;
    const int st = tt_sgd_check(u, tt_w_split_at(p->w_tail, p->w_split, co), 0);
    if (st != TT_OK) return st;
    const int32_t rows = s == 1 ? 1 : p->out_h, n = s == 1 ? p->out_h * p->out_w : p->out_w;
#if TT_DSP
    tt_gw_mm_update(gy, co, x, ci, p->in_zero, rows, n, s * wi * ci, s * ci, w, u, scratch);
#else
    (void)scratch;
    tt_gw_mm_update_portable(gy, co, x, ci, p->in_zero, rows, n, s * wi * ci, s * ci, w, u);
#endif
    return TT_OK;
}
