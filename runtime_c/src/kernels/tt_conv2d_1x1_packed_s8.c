/* Pointwise convolution with 4-bit weights (tt_packed.h): tt_conv2d_1x1_s8 on chunks of
 * unpacked output channels. */
#include "tt_packed_core.h"

size_t tt_conv2d_1x1_packed_s8_scratch_bytes(const tt_conv_params *p)
{
    return TT_CONV2D_1X1_PACKED_S8_SCRATCH_BYTES(p->in_c, p->out_w, tt_packed_conv_of(p)->chunk,
                                                 tt_packed_conv_of(p)->rows);
}

TT_KERNEL void tt_conv2d_1x1_packed_s8(const tt_conv_params *p, const int8_t *in,
                                       int32_t in_row0, int8_t *out, int32_t out_row0,
                                       int32_t y0, int32_t y1, void *scratch)
{
    tt_packed_conv_chunks(p, tt_conv2d_1x1_s8, in, in_row0, out, out_row0, y0, y1, scratch);
}
