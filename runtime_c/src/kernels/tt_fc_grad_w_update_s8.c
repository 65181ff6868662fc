/* Fully connected: weight gradient fused with the in-place update (the weight-gradient
 * matrix core of tt_grad_core.h with the batch rows as pixels). */
#include "tt_grad_core.h"

size_t tt_fc_grad_w_update_s8_scratch_bytes(const tt_fc_params *p, int32_t batch)
{
    (void)p;
    return TT_GRAD_W_MM_SCRATCH_BYTES(1, batch);
}

TT_KERNEL int tt_fc_grad_w_update_s8(const tt_fc_params *p, const int8_t *gy, const int8_t *x,
                                     int32_t batch, int8_t *w, const tt_sgd_params *u,
                                     void *scratch)
{
    const int st = tt_sgd_check(u, tt_w_split_at(p->w_tail, p->w_split, p->out_c), 0);
    if (st != TT_OK) return st;
    if (batch < 0) return TT_ERR_ARG;
#if TT_DSP
    tt_gw_mm_update(gy, p->out_c, x, p->in_c, p->in_zero, 1, batch, 0, p->in_c, w, u, scratch);
#else
    (void)scratch;
    tt_gw_mm_update_portable(gy, p->out_c, x, p->in_c, p->in_zero, 1, batch, 0, p->in_c, w, u);
#endif
    return TT_OK;
}
