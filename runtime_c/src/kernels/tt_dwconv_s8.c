/* Depthwise convolution (channel multiplier 1), any k_h x k_w, stride and pad, over
 * output rows [y0, y1).
 *
 * DSP build: square k in {5, 7} at stride 1 or 2 (with a consistent out_w) runs the
 * ring-of-rows code of tt_dwconv_core.h (dw_dsp; the 5x5 / 7x7 row loops are below), 3x3
 * at stride 1 or 2 the specialised kernels (tt_dwconv_3x3_s1_s8 / _s2_s8).
 * Any other shape, and the portable build, use the direct loops (dw_ref).
 */
#define TT_DW_BIG 1
#include "tt_dwconv_core.h"

size_t tt_dwconv_s8_scratch_bytes(const tt_conv_params *p)
{
    if (p->dw_map) return TT_DW_MAP_SCRATCH_BYTES(p->in_w, p->k_h, p->k_w, p->pad);
    return TT_DWCONV_S8_SCRATCH_BYTES(p->in_w, p->k_h, p->k_w, p->pad);
}

#if TT_DSP

#if TT_DSP_NATIVE
/* Depthwise 5x5 / 7x7 row loops (tt_dwconv_big_rows.h) for the single ring (k slots per
   column). */
#define DWB_NAME(x) x
#define DW5_CSB "80"
#define DW7_CSB "112"
#include "tt_dwconv_big_rows.h"
#undef DWB_NAME
#undef DW5_CSB
#undef DW7_CSB
/* the same loops for the double ring (2k slots per column) */
#define DWB_NAME(x) x##_dbl
#define DW5_CSB "160"
#define DW7_CSB "224"
#include "tt_dwconv_big_rows.h"
#undef DWB_NAME
#undef DW5_CSB
#undef DW7_CSB
/* 5x5 for the whole-map layout (TT_DW_MAP_ROWS(5) = 14 slots per column; 7x7's 14 slots
   are the double ring's column, so it runs the _dbl loops) */
#define DWB_NAME(x) x##_map
#define DW5_CSB "224"
#define DWB_NO_7X7
#include "tt_dwconv_big_rows.h"
#undef DWB_NAME
#undef DW5_CSB
#undef DWB_NO_7X7

#endif

TT_KERNEL void tt_dwconv_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                            int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                            void *scratch)
{
    /* 3x3 at stride 1 / 2: the specialised kernels' code (same scratch, same results;
       one copy of it in flash) */
    if (dw_dsp_ok(p, 3, 1)) {
        tt_dwconv_3x3_s1_s8(p, in, in_row0, out, out_row0, y0, y1, scratch);
        return;
    }
    if (dw_dsp_ok(p, 3, 2)) {
        tt_dwconv_3x3_s2_s8(p, in, in_row0, out, out_row0, y0, y1, scratch);
        return;
    }
#define DW_CASE(k, s) \
    if (dw_dsp_ok(p, k, s)) { dw_dsp(p, in, in_row0, out, out_row0, y0, y1, scratch, k, s); return; }
    DW_CASE(5, 1)
    DW_CASE(5, 2)
    DW_CASE(7, 1)
    DW_CASE(7, 2)
#undef DW_CASE
    dw_ref(p, in, in_row0, out, out_row0, y0, y1, p->k_h, p->k_w, p->stride);
}

#else /* portable */

TT_KERNEL void tt_dwconv_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                            int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                            void *scratch)
{
    (void)scratch;
    dw_ref(p, in, in_row0, out, out_row0, y0, y1, p->k_h, p->k_w, p->stride);
}

#endif
