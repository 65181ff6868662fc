/* Depthwise convolution with 4-bit weights (tt_packed.h): every channel reads its own input
 * channel, so the whole layer's taps are unpacked (c * k_h * k_w bytes) and
 * tt_dwconv_wrapper_s8 runs once. */
#include "tt_packed_core.h"

size_t tt_dwconv_packed_s8_scratch_bytes(const tt_conv_params *p)
{
    return TT_DWCONV_PACKED_S8_SCRATCH_BYTES(p->out_c, p->in_w, p->k_h, p->k_w, p->pad);
}

TT_KERNEL void tt_dwconv_packed_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                                   int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                                   void *scratch)
{
    const tt_conv_packed_params *q = tt_packed_conv_of(p);
    const int32_t k = p->k_h * p->k_w;
    uint16_t *pairs = (uint16_t *)scratch;
    int8_t *wbuf = (int8_t *)scratch + TT_PACKED_PAIRS_BYTES;
    tt_conv_params c = *p;
    tt_packed_build_pairs(q->codebook, pairs);
    tt_packed_unpack(q->codes, pairs, p->out_c, k, wbuf);
    c.w = wbuf;
    c.w_tail = NULL;
    c.w_split = 0;
    tt_dwconv_wrapper_s8(&c, in, in_row0, out, out_row0, y0, y1,
                         wbuf + TT_R8((size_t)p->out_c * (size_t)k));
}
