/* Fused inverted-residual block, run row by row so the expanded tensor never exists
 * whole:   in -> [expand] -> depthwise -> pointwise2 [-> add(in, .)] -> out
 * "expand" is the block's pointwise1, or any other convolution feeding the depthwise
 * (e.g. the network's first 3x3 stride-2 conv, so its output is never materialised).
 *
 * Per depthwise output row y: the pointwise1 rows that row reads are computed into a
 * band of k_h expanded rows (rows no longer needed are shifted out), the depthwise
 * kernel produces one row, pointwise2 writes output row y, and the residual add (if
 * any) is applied in place on that row. Every value is produced by the same kernels
 * as the unfused layers, so the result is bit-identical to running them one by one.
 *
 * Buffers (from the compiler's arena plan): band (tt_block_band_bytes, unused without
 * pointwise1), row (tt_block_row_bytes), scratch (max of the three kernels' scratch).
 */
#ifndef TT_BLOCK_H
#define TT_BLOCK_H
#include "tt_kernels.h"

/* tt_spatial_kernel: the spatial kernels' signature (tt_kernels.h). */
typedef struct tt_block_params {
    const tt_conv_params *pw1;   /* expand conv; NULL: the depthwise reads the input */
    tt_spatial_kernel pw1_kernel; /* tt_conv2d_1x1_s8 or tt_conv2d_s8 */
    const tt_conv_params *dw;
    tt_spatial_kernel dw_kernel; /* tt_dwconv_s8, a specialised variant, or
                                    tt_dwconv_wrapper_select_s8(dw) */
    const tt_conv_params *pw2;
    const tt_add_params *add;    /* NULL: no residual */
    int32_t add_in_first;        /* 1: add(in, pw2 out) ; 0: add(pw2 out, in) */
} tt_block_params;

static inline size_t tt_block_band_bytes(const tt_block_params *p)
{
    return p->pw1 ? (size_t)p->dw->k_h * (size_t)p->dw->in_w * (size_t)p->dw->in_c : 0u;
}

static inline size_t tt_block_row_bytes(const tt_block_params *p)
{
    return (size_t)p->dw->out_w * (size_t)p->dw->out_c;
}

void tt_block_s8(const tt_block_params *p, const int8_t *in, int8_t *out, int8_t *band,
                 int8_t *row, void *scratch);

#endif
