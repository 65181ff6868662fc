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
    const int32_t ch = tt_packed_chunk_of(q->chunk, co);
    uint16_t *pairs = (uint16_t *)scratch;
    int8_t *wbuf = (int8_t *)scratch + TT_PACKED_PAIRS_BYTES;
    void *ks = wbuf + TT_R8((size_t)ch * (size_t)k);
    tt_fc_params c;
    TT_PACKED_BEGIN(c, p, q, pairs);
    for (int32_t c0 = 0; c0 < co; c0 += ch) {
        const int32_t n = co - c0 < ch ? co - c0 : ch;
        TT_PACKED_CHUNK(c, p, q, c0, n, k, pairs, wbuf);
        for (int32_t b = 0; b < batch; ++b)
            tt_fc_s8(&c, in + (size_t)b * (size_t)k, out + (size_t)b * (size_t)co + c0, 1, ks);
    }
}
