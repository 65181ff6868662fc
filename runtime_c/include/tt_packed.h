/* Layers whose weights are stored at 4 bits (compiler.quantize.codebook): each weight is
 * a 4-bit code, two per byte (low nibble first), OHWI order (depthwise [C][kh][kw]),
 * each output channel's row of K codes padded to TT_PACKED_ROW(K) bytes; code i means
 * the int8 value codebook[i] (16 entries per layer). The kernels below unpack a chunk of
 * output channels (codebook lookup) into their scratch and run the int8 kernel of the
 * layer on it (tt_conv2d_1x1_s8, tt_conv2d_s8, tt_dwconv_wrapper_s8, tt_fc_s8, in their
 * portable or DSP variant), so every output equals the int8 layer with weights
 * codebook[code], bit for bit.
 *
 * Parameters: the int8 layer's struct as the first member (its w / w_tail unused), so a
 * pointer to it is what a tt_spatial_kernel (or a fused block, tt_block.h) is given and
 * the packed kernel gets its own struct back from it.
 */
#ifndef TT_PACKED_H
#define TT_PACKED_H
#include "tt_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_PACKED_ROW(k) (((k) + 1) / 2)
#define TT_R8(n) (((n) + 7) & ~7)

typedef struct tt_conv_packed_params {
    tt_conv_params conv;
    const uint8_t *codes;     /* [out_c][TT_PACKED_ROW(k_h * k_w * in_c)] (depthwise: k_h * k_w) */
    const int8_t *codebook;   /* [16] */
    int32_t chunk;            /* output channels unpacked at a time (not depthwise: all) */
    int32_t rows;             /* output rows per call of the int8 kernel (0: 1) */
} tt_conv_packed_params;

typedef struct tt_fc_packed_params {
    tt_fc_params fc;
    const uint8_t *codes;     /* [out_c][TT_PACKED_ROW(in_c)] */
    const int8_t *codebook;
    int32_t chunk;
} tt_fc_packed_params;

/* Scratch: a table of the 256 byte values' two weights (TT_PACKED_PAIRS_BYTES), the
   chunk's int8 weights, (convolutions) `rows` output rows of the chunk, then the int8
   kernel's own scratch for the chunk. */
#define TT_PACKED_PAIRS_BYTES 512
#define TT_PACKED_ROWS(rows) ((rows) > 1 ? (rows) : 1)
#define TT_CONV2D_1X1_PACKED_S8_SCRATCH_BYTES(in_c, out_w, chunk, rows)              \
    ((size_t)(TT_PACKED_PAIRS_BYTES + TT_R8((chunk) * (in_c)) +                      \
              TT_R8(TT_PACKED_ROWS(rows) * (out_w) * (chunk)) +                      \
              TT_CONV2D_1X1_S8_SCRATCH_BYTES(in_c)))
#define TT_CONV2D_PACKED_S8_SCRATCH_BYTES(k_h, k_w, in_c, out_w, chunk, rows)        \
    ((size_t)(TT_PACKED_PAIRS_BYTES + TT_R8((chunk) * (k_h) * (k_w) * (in_c)) +      \
              TT_R8(TT_PACKED_ROWS(rows) * (out_w) * (chunk)) +                      \
              TT_CONV2D_S8_SCRATCH_BYTES(k_h, k_w, in_c, chunk)))
/* depthwise: every channel's taps (c * k_h * k_w bytes), then the depthwise scratch */
#define TT_DWCONV_PACKED_S8_SCRATCH_BYTES(c, in_w, k_h, k_w, pad)                    \
    ((size_t)(TT_PACKED_PAIRS_BYTES + TT_R8((c) * (k_h) * (k_w)) +                   \
              TT_DWCONV_WRAPPER_S8_SCRATCH_BYTES(in_w, k_h, k_w, pad)))
#define TT_FC_PACKED_S8_SCRATCH_BYTES(in_c, chunk)                                   \
    ((size_t)(TT_PACKED_PAIRS_BYTES + TT_R8((chunk) * (in_c)) + TT_FC_S8_SCRATCH_BYTES(in_c)))

size_t tt_conv2d_1x1_packed_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_conv2d_packed_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_dwconv_packed_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_fc_packed_s8_scratch_bytes(const tt_fc_params *p);

/* The tt_spatial_kernel of a packed layer; p points at a tt_conv_packed_params' conv. */
void tt_conv2d_1x1_packed_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                             int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                             void *scratch);
void tt_conv2d_packed_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                         int8_t *out, int32_t out_row0, int32_t y0, int32_t y1, void *scratch);
void tt_dwconv_packed_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                         int8_t *out, int32_t out_row0, int32_t y0, int32_t y1, void *scratch);
/* p points at a tt_fc_packed_params' fc. */
void tt_fc_packed_s8(const tt_fc_params *p, const int8_t *in, int8_t *out, int32_t batch,
                     void *scratch);

#ifdef __cplusplus
}
#endif
#endif
