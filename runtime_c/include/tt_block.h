/* Fused inverted-residual block, run row by row so the expanded tensor never exists
 * whole:   in -> [expand] -> depthwise -> pointwise2 [-> add(in, .)] -> out
 * "expand" is the block's pointwise1, or any other convolution feeding the depthwise
 * (e.g. the network's first 3x3 stride-2 conv, so its output is never materialised).
 *
 * Per group of `rows` depthwise output rows (1 when 0): the pointwise1 rows they read
 * are computed into a band of k_h + (rows - 1) * stride expanded rows (rows no longer
 * needed are shifted out), the depthwise kernel produces the rows, pointwise2 writes
 * those output rows, and the residual add (if any) is applied in place on them. More
 * rows per group cost band and row memory and save per-call work. Every value is produced by the same kernels
 * as the unfused layers, so the result is bit-identical to running them one by one.
 *
 * Buffers (from the compiler's arena plan): band (tt_block_band_bytes, unused without
 * pointwise1), row (tt_block_row_bytes), scratch: prep1 + prep2 bytes, then the max of
 * the three kernels' scratch.
 *
 * prep1 / prep2 (0 or TT_BLOCK_PREP_BYTES of the layer): with the DSP kernels, the
 * pointwise layer's weights are widened and its requantization planned once per block
 * call into that part of the scratch, instead of once per row (the portable build
 * leaves it unused).
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
    int32_t prep1, prep2;        /* bytes of the prepared pw1 / pw2 (0: per call) */
    int32_t rows;                /* depthwise output rows per group (0 or 1: one) */
    tt_spatial_kernel pw2_kernel; /* NULL: tt_conv2d_1x1_s8; a packed layer's kernel
                                     (tt_packed.h, then prep2 = 0) */
} tt_block_params;

/* Bytes of a prepared conv layer with k weights per output channel (k_h*k_w*in_c) and
   co output channels: a 2-word header, per channel pair 8 + k rounded up to 4 words
   (tt_gemm.h), a co-byte sink; a multiple of 8. */
#define TT_BLOCK_PREP_BYTES(k, co) \
    ((size_t)(((8 + 4 * (((co) + 1) / 2) * (8 + TT_R4(k)) + (co)) + 7) & ~7))

static inline int32_t tt_block_rows(const tt_block_params *p)
{
    return p->rows > 1 ? p->rows : 1;
}

static inline size_t tt_block_band_bytes(const tt_block_params *p)
{
    const size_t n = (size_t)(p->dw->k_h + (tt_block_rows(p) - 1) * p->dw->stride);
    return p->pw1 ? n * (size_t)p->dw->in_w * (size_t)p->dw->in_c : 0u;
}

static inline size_t tt_block_row_bytes(const tt_block_params *p)
{
    return (size_t)tt_block_rows(p) * (size_t)p->dw->out_w * (size_t)p->dw->out_c;
}

void tt_block_s8(const tt_block_params *p, const int8_t *in, int8_t *out, int8_t *band,
                 int8_t *row, void *scratch);

#endif
