/* int8 forward kernels of the runtime (CMSIS-NN style names: tt_<op>_<variant>_s8).
 *
 * Numeric contract: compiler/ref/ops.py (the oracle) and compiler/ir/qmath.py, whose C twin
 * is tt_qmath.h. Every kernel is bit-exact with the reference, in both builds:
 *   - Arm DSP variant, selected when __ARM_FEATURE_DSP is defined (e.g. -mcpu=cortex-m7)
 *     and TT_PORTABLE is not;
 *   - portable C99 variant otherwise (host build, or -DTT_PORTABLE on the target).
 * No malloc, no I/O, no floating point. Kernels are kept out of line (TT_KERNEL) so a
 * caller can time them.
 *
 * Return values (the convention of every runtime kernel: tt_status.h)
 *   Every forward kernel returns void and cannot fail: the shapes, strides, pads,
 *   quantization parameters and scratch sizes it is called with were checked when the
 *   model was compiled (the generated C re-checks the scratch sizes with
 *   _Static_assert), and nothing else reaches it at run time. The contract below is
 *   the caller's to keep; a call outside it is undefined, not reported. The int
 *   returned by tt_kernels_dsp() is a build query, not a status. No kernel allocates
 *   memory or prints: every buffer, scratch included, comes from the caller.
 *
 * Tensors
 *   activations int8 NHWC (batch 1 per call), weights int8 OHWI (depthwise: [C][kh][kw]),
 *   bias int32 [out_c], per-output-channel requantization mult/shift int32 [out_c]
 *   (compiler.qmath.quantize_multiplier), zero points in [-128, 127],
 *   -128 <= act_min <= act_max <= 127 (ReLU / ReLU6 are folded into the clamp).
 *   For each output channel c:
 *       acc = bias[c] + sum((x - in_zero) * w)       (padding taps contribute 0)
 *       y   = clamp(requant(acc, mult[c], shift[c]) + out_zero, act_min, act_max)
 *   Accumulators are int32: |bias| + sum(|x - in_zero| * |w|) must stay below 2^31
 *   (always true for real layers).
 *
 * Split weights
 *   A layer's weights may live in two pieces, e.g. the trained output channels in RAM and
 *   the frozen ones in flash (sparse training updates only channels [0, k)). With
 *   K = k_h*k_w*in_c (conv2d, conv2d_1x1), k_h*k_w (depthwise, [C][kh][kw]) or in_c (fc):
 *     w_tail == NULL      every channel c is at w + c*K (w_split is ignored); this is
 *                         what a zero-initialised (or designated-initialiser) struct gets;
 *     w_tail != NULL      channel c is at w + c*K for c < w_split and at
 *                         w_tail + (c - w_split)*K for c >= w_split (0 <= w_split;
 *                         w_split >= out_c: all at w, w_tail unused; w_split = 0: all at
 *                         w_tail, w unused).
 *   Every kernel that reads weights (forward and tt_*_grad_in_s16) honours the split and
 *   gives exactly the unsplit result; tt_w_row() / tt_dw_w_row() / tt_fc_w_row() give a
 *   channel's row. The in-place weight updates (tt_*_grad_w_update_s8) write channels
 *   [0, k) of the `w` they are given, which must then be p->w with k <= w_split.
 *
 * Band (patch) execution of the spatial kernels (conv2d, conv2d_1x1, dwconv*)
 *   A call computes the output rows [y0, y1) of the layer, full width, so the caller
 *   can run an early block band by band without ever holding the whole tensors:
 *     in, in_row0   `in` points at logical input row in_row0, i.e. input row r (in the
 *                   full tensor of height p->in_h) is read at
 *                   in + (r - in_row0) * in_w * in_c.
 *                   The buffer must hold the rows tt_band_in_rows() reports for
 *                   [y0, y1); rows outside [0, in_h) are padding and never read.
 *     out, out_row0 output row y is written at out + (y - out_row0) * out_w * out_c.
 *   A full-tensor call is (in, 0, out, 0, 0, out_h). Computing [0, out_h) in any number
 *   of bands gives exactly the full-tensor result. in and out must not overlap.
 *   Padding: pad rows/columns before; the padding after is whatever out_h / out_w
 *   read past the input: pad for a symmetric layer (out = (in + 2 * pad - k) / stride
 *   + 1, as ref_ops), or another amount when the two sides differ (the IR's pad_end,
 *   e.g. TensorFlow's 'same' at stride 2: out = (in + pad + pad_end - k) / stride + 1).
 *   Every kernel (forward and backward) treats each tap outside the input as padding,
 *   so only the leading pads and the output size reach it. The depthwise DSP paths
 *   take any out_h and an out_w up to one more than symmetric padding gives (e.g.
 *   TensorFlow's 'same' at stride 2), and fall back to the direct loops beyond.
 *
 *   Cost of banding: per call the DSP kernels prepare the weights of a channel chunk
 *   (conv2d, conv2d_1x1: widened once per call) and widen the input rows the band reads
 *   (depthwise: k rows per channel group and call), so one output row per call costs
 *   more than a few rows per call (bench/kernels.py --rows shows both).
 *
 * Variants: Arm DSP code (ACLE intrinsics, and hand-written row loops for the hot
 * paths) exists for conv2d, conv2d_1x1, the depthwise kernels (k = 3, 5, 7, stride 1/2),
 * fc and add (and the requantization of mul and of concat's requantized inputs);
 * avgpool, requantize and lut are portable everywhere. Requantization uses an
 * exact SMMLA-based fast path where the channel's accumulator range allows it (see
 * runtime_c/src/kernels/tt_simd.h), else the 64-bit formula of tt_qmath.h.
 *
 * Precomputed records (rq)
 *   The DSP conv2d, conv2d_1x1, depthwise and fc kernels requantize with a fast plan per
 *   output channel (mult, off, t, lsh; runtime_c/src/kernels/tt_simd.h), which depends
 *   on the bias, so they compute it per call. For a layer whose bias never changes (not
 *   trained) the compiler precomputes it (compiler/kernels/rq_records.py), 2 bytes per
 *   channel: rq[o] = t (1..29) for the plan (mult[o], (1 + 2 * out_zero) << (t - 1), t,
 *   lsh), lsh = shift[o] + 2 when shift[o] >= -1 (depthwise only; else 0), or v * 256
 *   for a constant channel (every output v: mult 0, off 2 * v, t 1, lsh 0); given only
 *   when every channel of the layer has such a plan. NULL: computed per call. The
 *   portable kernels ignore it; the results are the same either way.
 *
 * Scratch
 *   Kernels that need scratch take a `void *scratch` of at least
 *   <kernel>_scratch_bytes(p) bytes, 4-byte aligned; it is only used during the call
 *   (one arena region can serve every kernel). The sizes are also available as
 *   constant-expression macros (TT_*_SCRATCH_BYTES) for static arrays; they are the
 *   same in the DSP and the portable build, so a memory plan does not depend on the
 *   variant. Kernels whose size is 0 accept NULL.
 */
#ifndef TT_KERNELS_H
#define TT_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include "tt_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TT_KERNEL __attribute__((noinline, noipa))
#else
#define TT_KERNEL
#endif

/* ---- parameters --------------------------------------------------------------- */

/* conv2d (groups = 1), conv2d_1x1 and depthwise conv (in_c == out_c). */
typedef struct tt_conv_params {
    int32_t in_h, in_w, in_c;    /* logical input; in_h is the full height (padding) */
    int32_t out_h, out_w, out_c; /* out_h/out_w = (in + 2*pad - k) / stride + 1 */
    int32_t k_h, k_w;            /* kernel size */
    int32_t stride;              /* rows (and columns unless stride_w > 0) */
    int32_t pad;                 /* symmetric; rows (and columns unless stride_w > 0) */
    int32_t in_zero, out_zero;
    int32_t act_min, act_max;
    const int8_t *w;             /* OHWI [out_c][k_h][k_w][in_c]; depthwise [c][k_h][k_w]
                                    (split: channels [0, w_split) only) */
    const int32_t *bias;         /* [out_c] */
    const int32_t *mult;         /* [out_c] Q31 */
    const int32_t *shift;        /* [out_c] */
    const int8_t *w_tail;        /* split weights (see "Split weights" above); NULL: none */
    int32_t w_split;             /* output channels at w when w_tail != NULL */
    int32_t stride_w, pad_w;     /* per-axis geometry (see TT_STRIDE_W); 0: square */
    const int16_t *rq;           /* NULL, or the requantization records of a frozen
                                    layer (see "Precomputed records") */
    int32_t dw_map;              /* depthwise: 1 when the layer's scratch is
                                    TT_DW_MAP_SCRATCH_BYTES, room for its whole padded
                                    input map (see there) */
} tt_conv_params;

/* fully connected: y[n][o] from x[n][i], w [out_c][in_c]. */
typedef struct tt_fc_params {
    int32_t in_c, out_c;
    int32_t in_zero, out_zero;
    int32_t act_min, act_max;
    const int8_t *w;             /* [out_c][in_c] (split: channels [0, w_split) only) */
    const int32_t *bias;
    const int32_t *mult;
    const int32_t *shift;
    const int8_t *w_tail;        /* split weights (see "Split weights" above); NULL: none */
    int32_t w_split;             /* output channels at w when w_tail != NULL */
    const int16_t *rq;           /* NULL, or the requantization records of a frozen layer */
} tt_fc_params;

/* residual add, TFLite scheme (compiler.ref.ops.AddParams): s1, s2 <= 0 (always true for
   AddParams.from_scales), any (mo, so). */
typedef struct tt_add_params {
    int32_t z1, z2, zo;
    int32_t m1, s1, m2, s2, mo, so;
    int32_t act_min, act_max;
} tt_add_params;

/* One input of a channel concatenation (compiler.ref.ops.concat): an NHWC map of `c`
   channels with zero point `zero`, requantized to the output's scale and zero point by
   (mult, shift) (Q31 multiplier of in_scale / out_scale; 2^30, 1 is the identity). */
/* elementwise product, TFLite MUL (compiler.ref.ops.mul): (mult, shift) the Q31
   multiplier of a_scale * b_scale / out_scale. */
typedef struct tt_mul_params {
    int32_t za, zb, zo;
    int32_t mult, shift;
    int32_t act_min, act_max;
} tt_mul_params;

typedef struct tt_concat_input {
    const int8_t *data;
    int32_t c, zero, mult, shift;
} tt_concat_input;

/* Spatial pooling window over an NHWC map (max pool): k_h x k_w windows at `stride`,
   `pad` border rows / columns on every side (2 * pad <= k_h, k_w); per axis as in
   tt_conv_params (stride_w / pad_w when stride_w > 0). When the two sides of an axis
   differ, pad is the leading one and out_h / out_w give the trailing one (each side
   < k: every window holds a real value). */
typedef struct tt_pool_params {
    int32_t in_h, in_w, c, out_h, out_w;
    int32_t k_h, k_w, stride, pad;
    int32_t stride_w, pad_w;
} tt_pool_params;

/* Average pool (tt_avgpool_s8): the window of `pool`; count_include_pad: padded taps
   count in a window's divisor (k_h * k_w) or not (its taps inside the map); mult / shift
   NULL: input and output share scale and zero point, else n_mult Q31 multipliers of
   s_in / (count * s_out): one (every window the same divisor) or k_h * k_w (entry
   count - 1). */
typedef struct tt_avgpool_params {
    tt_pool_params pool;
    int32_t in_zero, out_zero, count_include_pad, n_mult;
    const int32_t *mult, *shift;
} tt_avgpool_params;

/* Per-axis geometry of a tt_conv_params / tt_pool_params: `stride` / `pad` are the rows'
   (H); the columns' (W) are stride_w / pad_w when stride_w > 0, else the same as the rows'
   (a zero-initialised stride_w is the square case). Kernels that only take square
   geometry (1x1, depthwise fast paths) are chosen only when TT_SQUARE. */
#define TT_STRIDE_W(p) ((p)->stride_w > 0 ? (p)->stride_w : (p)->stride)
#define TT_PAD_W(p) ((p)->stride_w > 0 ? (p)->pad_w : (p)->pad)
#define TT_SQUARE(p) (TT_STRIDE_W(p) == (p)->stride && TT_PAD_W(p) == (p)->pad)

/* ---- split weights ------------------------------------------------------------ */

/* Row (K weights) of output channel c of a possibly split weight array (see "Split
   weights" above). */
static inline const int8_t *tt_w_row_k(const int8_t *w, const int8_t *w_tail, int32_t w_split,
                                       int32_t c, int32_t K)
{
    return (w_tail != NULL && c >= w_split) ? w_tail + (size_t)(c - w_split) * (size_t)K
                                            : w + (size_t)c * (size_t)K;
}

/* Number of leading output channels stored at w (the rest are at w_tail): out_c when the
   weights are not split. */
static inline int32_t tt_w_split_at(const int8_t *w_tail, int32_t w_split, int32_t out_c)
{
    return (w_tail == NULL || w_split >= out_c) ? out_c : w_split;
}

/* conv2d / conv2d_1x1 (OHWI): the k_h*k_w*in_c weights of output channel c. */
static inline const int8_t *tt_w_row(const tt_conv_params *p, int32_t c)
{
    return tt_w_row_k(p->w, p->w_tail, p->w_split, c, p->k_h * p->k_w * p->in_c);
}

/* depthwise ([C][k_h][k_w]): the k_h*k_w taps of channel c. */
static inline const int8_t *tt_dw_w_row(const tt_conv_params *p, int32_t c)
{
    return tt_w_row_k(p->w, p->w_tail, p->w_split, c, p->k_h * p->k_w);
}

/* fully connected: the in_c weights of output channel c. */
static inline const int8_t *tt_fc_w_row(const tt_fc_params *p, int32_t c)
{
    return tt_w_row_k(p->w, p->w_tail, p->w_split, c, p->in_c);
}

/* ---- band helpers ------------------------------------------------------------- */

static inline int32_t tt_conv_out_size(int32_t n, int32_t k, int32_t stride, int32_t pad)
{
    return (n + 2 * pad - k) / stride + 1;
}

/* Input rows [*r0, *r1) (clipped to [0, in_h)) that output rows [y0, y1) read. */
static inline void tt_band_in_rows(const tt_conv_params *p, int32_t y0, int32_t y1,
                                   int32_t *r0, int32_t *r1)
{
    int32_t a = y0 * p->stride - p->pad;
    int32_t b = (y1 - 1) * p->stride - p->pad + p->k_h;
    *r0 = a < 0 ? 0 : a;
    *r1 = b > p->in_h ? p->in_h : b;
    if (*r1 < *r0) *r1 = *r0;
}

/* ---- scratch sizes (bytes) ----------------------------------------------------- */
/* conv2d_1x1: two input pixels widened to int16, plus a chunk of TT_PW_CHUNK(in_c)
   output channels: their weights widened to int16 and a 16-byte record each, plus
   one byte each. */
#define TT_R4(n) (((n) + 3) & ~3)
#define TT_PW_CHUNK_RAW(in_c) ((1024 / TT_R4(in_c)) & ~1)
#define TT_PW_CHUNK(in_c) \
    (TT_PW_CHUNK_RAW(in_c) > 32 ? 32 : (TT_PW_CHUNK_RAW(in_c) < 8 ? 8 : TT_PW_CHUNK_RAW(in_c)))
#define TT_CONV2D_1X1_S8_SCRATCH_BYTES(in_c) \
    ((size_t)(4 * TT_R4(in_c) + TT_PW_CHUNK(in_c) * (2 * TT_R4(in_c) + 17)))
/* conv2d: the same core on im2col rows (k = k_h*k_w*in_c values, raw then int16) with a
   chunk of at most out_c channels. */
#define TT_CONV2D_CHUNK(k, out_c) \
    (TT_PW_CHUNK(k) < (((out_c) + 1) & ~1) ? TT_PW_CHUNK(k) : (((out_c) + 1) & ~1))
#define TT_CONV2D_S8_SCRATCH_BYTES(k_h, k_w, in_c, out_c)                                  \
    ((size_t)(6 * TT_R4((k_h) * (k_w) * (in_c)) +                                        \
              TT_CONV2D_CHUNK((k_h) * (k_w) * (in_c), out_c) *                             \
                  (2 * TT_R4((k_h) * (k_w) * (in_c)) + 17)))
/* depthwise (square k = k_h = k_w): per group of 4 channels, a ring of k input rows
   widened to int16 pairs, and per channel 1 (3x3) or k (5x5, 7x7) contexts of
   8 + k*(k-1) words. */
#define TT_DW_ROW_WORDS(in_w, pad) (((in_w) + 2 * (pad) + 1) / 2 + 4)
#define TT_DWCONV_S8_SCRATCH_BYTES(in_w, k_h, k_w, pad)                          \
    ((size_t)(4 * (4 * (k_h) * TT_DW_ROW_WORDS(in_w, pad) +                       \
                   4 * ((k_h) <= 3 ? 1 : (k_h)) * (8 + (k_h) * ((k_w) - 1)))))
/* depthwise with dw_map set (3x3, 5x5, 7x7 at stride 1 or 2): the whole-map layout,
   TT_DW_MAP_ROWS(k) slots of input rows per group of 4 channels (instead of a ring of
   k) and one context per channel. A call whose input rows (padding included) fit in
   them, e.g. all rows of a map of at most 8 rows, widens each row once and
   needs neither ring rotations nor per-row ring bookkeeping: what small maps (4x4, 8x8)
   spend most of their time on. The scratch is the larger of that and the ring's (calls
   that do not fit run the ring): larger for 3x3, the same as the ring's for 5x5 / 7x7
   small maps (their ring keeps k context sets). */
#define TT_DW_MAP_ROWS(k) ((k) == 3 ? 10 : 14)
#define TT_DW_MAP_ONLY_BYTES(in_w, k, pad) \
    ((size_t)(4 * (4 * TT_DW_MAP_ROWS(k) * TT_DW_ROW_WORDS(in_w, pad) + 4 * (8 + (k) * ((k) - 1)))))
#define TT_DW_MAP_SCRATCH_BYTES(in_w, k_h, k_w, pad)                              \
    (TT_DW_MAP_ONLY_BYTES(in_w, k_h, pad) > TT_DWCONV_S8_SCRATCH_BYTES(in_w, k_h, k_w, pad) \
         ? TT_DW_MAP_ONLY_BYTES(in_w, k_h, pad)                                  \
         : TT_DWCONV_S8_SCRATCH_BYTES(in_w, k_h, k_w, pad))
/* depthwise through tt_dwconv_wrapper_s8: the size of whichever variant it runs (all
   three need TT_DWCONV_S8_SCRATCH_BYTES of the layer). */
#define TT_DWCONV_WRAPPER_S8_SCRATCH_BYTES(in_w, k_h, k_w, pad) \
    TT_DWCONV_S8_SCRATCH_BYTES(in_w, k_h, k_w, pad)
/* fully connected: the input vector widened to int16. */
#define TT_FC_S8_SCRATCH_BYTES(in_c) ((size_t)(2 * (((in_c) + 3) & ~3)))

size_t tt_conv2d_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_conv2d_1x1_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_dwconv_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_dwconv_3x3_s1_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_dwconv_3x3_s2_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_dwconv_wrapper_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_fc_s8_scratch_bytes(const tt_fc_params *p);
size_t tt_add_s8_scratch_bytes(const tt_add_params *p);           /* 0 */
size_t tt_avgpool_global_s8_scratch_bytes(int32_t c);             /* 0 */
size_t tt_maxpool_s8_scratch_bytes(const tt_pool_params *p);      /* 0 */
size_t tt_avgpool_global_requant_s8_scratch_bytes(int32_t c);     /* 0 */
size_t tt_avgpool_s8_scratch_bytes(const tt_avgpool_params *p);   /* 0 */
size_t tt_concat_s8_scratch_bytes(int32_t n_in);                  /* 0 */
size_t tt_mul_s8_scratch_bytes(const tt_mul_params *p);           /* 0 */
size_t tt_lut_s8_scratch_bytes(int32_t n);                        /* 0 */
size_t tt_requantize_s8_scratch_bytes(int32_t c);                 /* 0 */

/* ---- kernels ------------------------------------------------------------------ */

/* Signature of the spatial kernels (conv2d, conv2d_1x1, the depthwise ones): what
   tt_dwconv_wrapper_select_s8 returns and tt_block_params (tt_block.h) holds. */
typedef void (*tt_spatial_kernel)(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                                  int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                                  void *scratch);

/* Generic k_h x k_w convolution, groups = 1, any stride >= 1, pad >= 0 (e.g. the
   first 3x3 stride-2 conv on 3 input channels). */
void tt_conv2d_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                  int8_t *out, int32_t out_row0, int32_t y0, int32_t y1, void *scratch);

/* Pointwise convolution: k = 1, pad = 0, stride 1 or 2. */
void tt_conv2d_1x1_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                      int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                      void *scratch);

/* Depthwise convolution (in_c == out_c, multiplier 1), any k_h x k_w, stride >= 1,
   pad >= 0. The DSP build has unrolled paths for square odd k (3, 5, 7) at stride
   1 or 2; other shapes use a portable loop. */
void tt_dwconv_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                  int8_t *out, int32_t out_row0, int32_t y0, int32_t y1, void *scratch);
/* Specialised depthwise: require k_h = k_w = 3 and stride 1 (resp. 2); any pad. */
void tt_dwconv_3x3_s1_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                         int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                         void *scratch);
void tt_dwconv_3x3_s2_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                         int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                         void *scratch);
/* Depthwise dispatch in one place: runs the variant the compiler picks for the layer
   (its forward conv emitter, compiler/kernels/forward.py): tt_dwconv_3x3_s1_s8 when
   k_h = k_w = 3 and stride = 1, tt_dwconv_3x3_s2_s8 when k_h = k_w = 3 and stride = 2
   (any pad: both specialised kernels take every pad), else tt_dwconv_s8 (which chooses
   its own 5x5 / 7x7 fast paths). Bit-identical to calling that variant directly, same
   bands, same scratch (tt_dwconv_wrapper_s8_scratch_bytes). */
void tt_dwconv_wrapper_s8(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                          int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                          void *scratch);
/* The variant tt_dwconv_wrapper_s8 runs for p, e.g. for tt_block_params.dw_kernel (the
   fused block runner then calls that kernel directly, once per output row). */
tt_spatial_kernel tt_dwconv_wrapper_select_s8(const tt_conv_params *p);

/* Fully connected on `batch` rows: in [batch][in_c] -> out [batch][out_c]. */
void tt_fc_s8(const tt_fc_params *p, const int8_t *in, int8_t *out, int32_t batch,
              void *scratch);

/* Residual add of n elements; out may alias in1 or in2. */
void tt_add_s8(const tt_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
               int32_t n);

/* Concatenation along the channels: n_in NHWC maps of `pixels` positions each -> out
   [pixels][sum of in[i].c], each input requantized to out_zero and the output scale
   (must not alias an input). */
void tt_concat_s8(const tt_concat_input *in, int32_t n_in, int32_t pixels, int32_t out_zero,
                  int8_t *out);

/* Elementwise product of a [pixels][c] and b ([pixels][c], or [c] broadcast over the
   pixels when bcast != 0); out may alias a. */
void tt_mul_s8(const tt_mul_params *p, const int8_t *a, const int8_t *b, int8_t *out,
               int32_t pixels, int32_t c, int32_t bcast);

/* Elementwise function by table: out[i] = table[in[i] + 128], i in [0, n); out may
   alias in. */
void tt_lut_s8(const int8_t *table, const int8_t *in, int8_t *out, int32_t n);

/* Global average pool [h][w][c] -> [c]: div_round_away(sum, h*w) (input and output
   share scale and zero point). */
void tt_avgpool_global_s8(const int8_t *in, int32_t h, int32_t w, int32_t c, int8_t *out);

/* Global average pool [h][w][c] -> [c] with the output's own parameters:
   clamp(requant(sum(x - in_zero), mult, shift) + out_zero), one Q31 multiplier of
   s_in / (h*w * s_out). */
void tt_avgpool_global_requant_s8(const int8_t *in, int32_t h, int32_t w, int32_t c,
                                  int32_t in_zero, int32_t out_zero, int32_t mult,
                                  int32_t shift, int8_t *out);

/* Average pool [in_h][in_w][c] -> [out_h][out_w][c] (see tt_avgpool_params and
   compiler.ref.ops.avg_pool). */
void tt_avgpool_s8(const tt_avgpool_params *p, const int8_t *in, int8_t *out);

/* Max pool [in_h][in_w][c] -> [out_h][out_w][c]: the largest int8 value of each window
   (input and output share scale and zero point); padded taps never win. */
void tt_maxpool_s8(const tt_pool_params *p, const int8_t *in, int8_t *out);

/* Standalone requantization of int32 accumulators [rows][c] (per-channel mult/shift
   along the last axis) to int8: clamp(requant(acc) + zero, act_min, act_max). */
void tt_requantize_s8(const int32_t *acc, int8_t *out, int32_t rows, int32_t c,
                      const int32_t *mult, const int32_t *shift, int32_t zero,
                      int32_t act_min, int32_t act_max);

/* 1 when the Arm DSP variants are compiled in, 0 for the portable build. */
int tt_kernels_dsp(void);

#ifdef __cplusplus
}
#endif
#endif
