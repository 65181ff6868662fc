/* Depthwise 3x3 convolution, stride 2, any pad (channel multiplier 1), over output rows
 * [y0, y1). The DSP build runs the ring-of-rows code of tt_dwconv_core.h with its
 * hand-written 3x3 row loop (falling back to the direct loops for a shape it does not
 * cover); the portable build the direct loops with constant k and stride.
 */
#include "tt_dwconv_core.h"

size_t tt_dwconv_3x3_s2_s8_scratch_bytes(const tt_conv_params *p)
{
    return p->dw_map ? TT_DW_MAP_SCRATCH_BYTES(p->in_w, 3, 3, p->pad)
                     : TT_DWCONV_S8_SCRATCH_BYTES(p->in_w, 3, 3, p->pad);
}

#if TT_DSP

TT_KERNEL void tt_dwconv_3x3_s2_s8(const tt_conv_params *p, const int8_t *in,
                                   int32_t in_row0, int8_t *out, int32_t out_row0,
                                   int32_t y0, int32_t y1, void *scratch)
{
    if (dw_dsp_ok(p, 3, 2)) dw_dsp(p, in, in_row0, out, out_row0, y0, y1, scratch, 3, 2);
    else dw_ref(p, in, in_row0, out, out_row0, y0, y1, p->k_h, p->k_w, p->stride);
}

#else /* portable */

TT_KERNEL void tt_dwconv_3x3_s2_s8(const tt_conv_params *p, const int8_t *in,
                                   int32_t in_row0, int8_t *out, int32_t out_row0,
                                   int32_t y0, int32_t y1, void *scratch)
{
    (void)scratch;
    dw_ref(p, in, in_row0, out, out_row0, y0, y1, 3, 3, 2);
}

#endif
