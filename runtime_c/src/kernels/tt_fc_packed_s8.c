/* Fully connected with 4-bit weights (tt_packed.h): tt_fc_s8 on chunks of unpacked output
 * channels, each writing its slice of the output row. */
#include "tt_packed_core.h"

size_t tt_fc_packed_s8_scratch_bytes(const tt_fc_params *p)
{
    return TT_FC_PACKED_S8_SCRATCH_BYTES(p->in_c,
                                         ((const tt_fc_packed_params *)(const void *)p)->chunk);
}

TT_KERNEL void tt_fc_packed_s8(const tt_fc_params *p, const int8_t *in, int8_t *out,
                               int32_t batch, void *scratch)
{
    const tt_fc_packed_params *q = (const tt_fc_packed_params *)(const void *)p;
    const int32_t k = p->in_c, co = p->out_c;
    const int32_t ch = q->chunk > 0 && q->chunk < co ? q->chunk : co;
    uint16_t *pairs = (uint16_t *)scratch;
    int8_t *wbuf = (int8_t *)scratch + TT_PACKED_PAIRS_BYTES;
    void *ks = wbuf + TT_R8((size_t)ch * (size_t)k);
    tt_fc_params c = *p;
    c.w_tail = NULL;
    c.w_split = 0;
    tt_packed_build_pairs(q->codebook, pairs);
    for (int32_t c0 = 0; c0 < co; c0 += ch) {
        const int32_t n = co - c0 < ch ? co - c0 : ch;
        tt_packed_unpack(q->codes + (size_t)c0 * (size_t)TT_PACKED_ROW(k), pairs, n, k, wbuf);
        c.out_c = n;
        c.w = wbuf;
        c.bias = p->bias + c0;
        c.mult = p->mult + c0;
        c.shift = p->shift + c0;
        for (int32_t b = 0; b < batch; ++b)
            tt_fc_s8(&c, in + (size_t)b * (size_t)k, out + (size_t)b * (size_t)co + c0, 1, ks);
    }
}
