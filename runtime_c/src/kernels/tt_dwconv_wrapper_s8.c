/* Depthwise dispatch in one place (tt_kernels.h): which depthwise kernel runs a layer.
 *
 * The generated code calls tt_dwconv_wrapper_s8 for every depthwise layer (and a fused
 * block holds it as its dw_kernel), so this is the only place that chooses: 3x3 at
 * stride 1 or 2 (same on both axes) has a specialised kernel, which takes any pad; every
 * other shape (also per-axis stride / pad) goes to
 * the generic tt_dwconv_s8, which itself picks its unrolled 5x5 / 7x7 paths (and the 3x3
 * ones when it is called directly) in the DSP build. Nothing here looks at pad, out_w or
 * the build variant: each kernel checks what its fast paths need and falls back to its
 * direct loops otherwise, so the choice never changes the result (tests/kernel_cases.py
 * runs the wrapper against the reference on every shape class, host and QEMU).
 */
#include "tt_kernels.h"

tt_spatial_kernel tt_dwconv_wrapper_select_s8(const tt_conv_params *p)
{
    if (p->k_h == 3 && p->k_w == 3 && TT_SQUARE(p)) {
        if (p->stride == 1) return tt_dwconv_3x3_s1_s8;
        if (p->stride == 2) return tt_dwconv_3x3_s2_s8;
    }
    return tt_dwconv_s8;
}

size_t tt_dwconv_wrapper_s8_scratch_bytes(const tt_conv_params *p)
{
    if (p->dw_map) return TT_DW_MAP_SCRATCH_BYTES(p->in_w, p->k_h, p->k_w, p->pad);
    return TT_DWCONV_WRAPPER_S8_SCRATCH_BYTES(p->in_w, p->k_h, p->k_w, p->pad);
}

TT_KERNEL void tt_dwconv_wrapper_s8(const tt_conv_params *p, const int8_t *in,
                                    int32_t in_row0, int8_t *out, int32_t out_row0,
                                    int32_t y0, int32_t y1, void *scratch)
{
    tt_dwconv_wrapper_select_s8(p)(p, in, in_row0, out, out_row0, y0, y1, scratch);
}
