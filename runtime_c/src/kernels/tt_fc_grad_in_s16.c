/* Fully connected: input gradient (the input-gradient matrix core of tt_grad_core.h
 * with the batch rows as pixels). */
#include "tt_grad_core.h"

size_t tt_fc_grad_in_s16_scratch_bytes(const tt_fc_params *p)
{
    return TT_GRAD_IN_MM_SCRATCH_BYTES(p->out_c);
}

TT_KERNEL void tt_fc_grad_in_s16(const tt_fc_params *p, const int16_t *t, int32_t *gx,
                                 int32_t batch, void *scratch)
{
    if (batch <= 0) return;
    const int32_t split = tt_w_split_at(p->w_tail, p->w_split, p->out_c);
#if TT_DSP
    tt_gin_mm(t, p->w, p->w_tail, split, p->out_c, p->in_c, 1, batch, gx, 0, p->in_c, scratch);
#else
    (void)scratch;
    tt_gin_mm_portable(t, p->w, p->w_tail, split, p->out_c, p->in_c, 1, batch, gx, 0, p->in_c);
#endif
}
