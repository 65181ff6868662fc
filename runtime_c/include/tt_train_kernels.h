/* int8 training kernels of the runtime: loss gradient, gradient scale choice, input
 * gradients, weight gradients fused with the in-place SGD update.
 *
 * Numeric contract: compiler/ref/grad_ops.py (the oracle), whose scalar helpers are
 * tt_train_math.h. Every kernel is bit-exact with the reference -- int8/int16/int32
 * results and float32 scales (same IEEE float32 operations in the same order; build
 * with -ffp-contract=off) -- in both builds:
 *   - Arm DSP variant, selected when __ARM_FEATURE_DSP is defined (e.g. -mcpu=cortex-m7)
 *     and TT_PORTABLE is not (TT_EMULATE_DSP runs it on C models of the instructions);
 *   - portable C99 variant otherwise.
 * DSP variants exist for the MAC-heavy kernels: 1x1 / fc / depthwise input gradients and
 * weight gradients, and the mul gradients (tt_mul_grad_s8, tt_mul_gate_grad_s8); the
 * generic convolution (in practice the first layer), the loss,
 * the scale choice and the elementwise kernels are the same C in both builds.
 * The only value that is not bit-exact is the loss reported by tt_softmax_xent_grad_s8
 * (libm logf vs numpy's log; it feeds nothing). No malloc, no I/O. Kernels are kept
 * out of line (TT_KERNEL) so a caller can time them.
 *
 * Conventions (as the forward kernels, tt_kernels.h)
 *   activations int8 NHWC, batch 1 per call for the spatial kernels; weights int8 OHWI
 *   (depthwise [C][k_h][k_w]); a layer is described by the same tt_conv_params /
 *   tt_fc_params as its forward kernel (fields not listed below are ignored).
 *   Split weights (tt_kernels.h: w_tail / w_split): the input gradients read every
 *   output channel through the split, with exactly the unsplit result; the weight
 *   updates write channels [0, u->k) of their `w` argument only (never w_tail) and,
 *   when p->w_tail != NULL, require u->k <= p->w_split (else TT_ERR_ARG).
 *   A gradient tensor is int8 values in [-qmax, qmax], qmax = 2^(bits-1) - 1, plus one
 *   float32 scale (real gradient ~= scale * q).
 *
 * Scratch
 *   Kernels take `void *scratch` of at least <kernel>_scratch_bytes(...) bytes, 4-byte
 *   aligned, only used during the call; sizes are the same in the DSP and the portable
 *   build (so a memory plan does not depend on the variant) and also exist as
 *   constant-expression macros TT_*_SCRATCH_BYTES. Kernels whose size is 0 accept NULL.
 *
 * Order within a training step: the input gradient of a layer reads its weights, so
 * run tt_*_grad_in_s16 before tt_*_grad_w_update_s8 updates them in place.
 *
 * Return values (tt_status.h: one convention for every runtime kernel)
 *   void, cannot fail (everything they read was fixed and checked at compile time):
 *     tt_grad_prescale_s16, tt_clamp_mask_pack_s8, tt_grad_mask_s8, tt_avgpool_grad_s8,
 *     tt_maxpool_grad_s8, tt_lut_grad_s8, tt_mul_grad_s8, tt_mul_gate_grad_s8,
 *     tt_avgpool_window_grad_s8
 *     and the input gradients tt_*_grad_in_s16.
 *   int, TT_OK or TT_ERR_ARG (they take run-time settings: bit width 2..8, range
 *   function, label, n):
 *     tt_quantize_grad_f32, tt_softmax_xent_grad_s8, tt_requant_grad_s8,
 *     tt_add_grads_s8 (also TT_ERR_ARG for scales it cannot combine, see below).
 *   int, TT_OK, TT_ERR_ARG or TT_ERR_FACTOR (they also take the SGD settings): the
 *     weight updates tt_*_grad_w_update_s8 and tt_bias_grad_update_s32. TT_ERR_ARG: k
 *     outside [0, out_c] (or above w_split with split weights), unknown rounding, or a
 *     negative pixel / batch count; TT_ERR_FACTOR: a channel's scale factor is not a
 *     valid Q31 factor. Every check comes before the first write, so on an error the
 *     weights and biases are untouched.
 *   tt_grad_range_s32 returns a value (the range statistic), tt_train_kernels_dsp() a
 *   build query. No kernel allocates memory or prints.
 */
#ifndef TT_TRAIN_KERNELS_H
#define TT_TRAIN_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include "tt_kernels.h"
#include "tt_status.h"
#include "tt_train_math.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameters --------------------------------------------------------------------- */

/* In-place SGD of the first k output channels of a layer. Factor of channel c:
 *   QAS (qas_off = 0, the default): weights f_c = ((lr * s_gy) * s_x) / s_w[c],
 *     bias f_b = ((lr * s_gy) / s_x) / s_w[c] (SGD on the real weight / bias);
 *   qas_off = 1 (for comparison): f_c = f_b = ((lr * s_gy) * s_x) * s_w[c]
 *     (compiler.ref.grad_ops.weight_factors_plain / bias_factors_plain). */
typedef struct tt_sgd_params {
    float lr;          /* learning rate */
    float s_gy;        /* scale of the output gradient gy */
    float s_x;         /* scale of the layer input x (x zero point: p->in_zero) */
    const float *s_w;  /* [out_c] per-output-channel weight scales */
    int32_t k;         /* update output channels [0, k), 0 <= k <= out_c */
    int32_t rounding;  /* TT_ROUND_STOCHASTIC, TT_ROUND_NEAREST or TT_ROUND_TRUNCATE */
    uint32_t key;      /* tt_update_key(seed, step, layer), used by stochastic rounding */
    int32_t qas_off;   /* 0: QAS factors, 1: plain factors */
} tt_sgd_params;

/* Bytes of a 1-bit-per-element mask of n elements. */
#define TT_MASK_BYTES(n) ((size_t)(((n) + 7) / 8))

/* ---- scratch sizes (bytes) ------------------------------------------------------------ */
/* softmax: the float32 gradient of the C classes. */
#define TT_SOFTMAX_XENT_GRAD_S8_SCRATCH_BYTES(c) ((size_t)4 * (size_t)(c))
#define TT_MSE_GRAD_S8_SCRATCH_BYTES(n) ((size_t)4 * (size_t)(n))
/* 1x1 / fc input gradient: pairs of output channels' weights widened to int16 lanes,
   8 inputs at a time, for up to 64 output channels (chunks of 64 otherwise): <= 1 KB. */
#define TT_GRAD_IN_MM_SCRATCH_BYTES(out_c) \
    ((size_t)32 * (size_t)(((out_c) + 1) / 2 < 32 ? ((out_c) + 1) / 2 : 32))
/* 1x1 / fc weight gradient: the output gradient of 4 channels as int16 pixel pairs,
   8 bytes per pixel (rows of an odd width are padded to an even width). Arguments:
   1x1 stride 1: (1, out_h * out_w); 1x1 stride > 1: (out_h, out_w); fc: (1, batch). */
#define TT_GRAD_W_MM_SCRATCH_BYTES(rows, row_px) \
    ((size_t)16 * (size_t)(rows) * (size_t)(((row_px) + 1) / 2))

/* depthwise input gradient: per tap, pairs of channels' weights as int16 lanes, for up
   to 32 channels at a time (3x3: 576 bytes). */
#define TT_DWCONV_GRAD_IN_S16_SCRATCH_BYTES(c, k_h, k_w) \
    ((size_t)4 * (size_t)((k_h) * (k_w)) * (size_t)(((c) < 32 ? (c) : 32) / 2))

size_t tt_quantize_grad_f32_scratch_bytes(int32_t n);                 /* 0 */
size_t tt_softmax_xent_grad_s8_scratch_bytes(int32_t c);
size_t tt_mse_grad_s8_scratch_bytes(int32_t n);
size_t tt_requant_grad_s8_scratch_bytes(int32_t n);                   /* 0 */
size_t tt_add_grads_s8_scratch_bytes(int32_t n);                      /* 0 */
size_t tt_grad_prescale_s16_scratch_bytes(int32_t c);                 /* 0 */
size_t tt_clamp_mask_pack_s8_scratch_bytes(int32_t n);                /* 0 */
size_t tt_grad_mask_s8_scratch_bytes(int32_t n);                      /* 0 */
size_t tt_avgpool_grad_s8_scratch_bytes(int32_t c);                   /* 0 */
size_t tt_concat_grad_s8_scratch_bytes(int32_t c);                    /* 0 */
size_t tt_lut_grad_s8_scratch_bytes(int32_t n);                       /* 0 */
size_t tt_mul_grad_s8_scratch_bytes(int32_t c);                       /* 0 */
size_t tt_mul_gate_grad_s8_scratch_bytes(int32_t c);                  /* 0 */
size_t tt_maxpool_grad_s8_scratch_bytes(const tt_pool_params *p);       /* 0 */
size_t tt_avgpool_window_grad_s8_scratch_bytes(const tt_pool_params *p); /* 0 */
size_t tt_conv2d_grad_in_s16_scratch_bytes(const tt_conv_params *p);  /* 0 */
size_t tt_conv2d_1x1_grad_in_s16_scratch_bytes(const tt_conv_params *p);
size_t tt_dwconv_grad_in_s16_scratch_bytes(const tt_conv_params *p);
size_t tt_fc_grad_in_s16_scratch_bytes(const tt_fc_params *p);
size_t tt_conv2d_grad_w_update_s8_scratch_bytes(const tt_conv_params *p);   /* 0 */
size_t tt_conv2d_1x1_grad_w_update_s8_scratch_bytes(const tt_conv_params *p);
size_t tt_dwconv_grad_w_update_s8_scratch_bytes(const tt_conv_params *p);   /* 0 */
size_t tt_fc_grad_w_update_s8_scratch_bytes(const tt_fc_params *p, int32_t batch);
size_t tt_bias_grad_update_s32_scratch_bytes(int32_t c);              /* 0 */

/* ---- loss and gradient quantization ------------------------------------------------- */

/* quantize_grad_f32: float32 gradient g[n] (n >= 1) -> int8 q[n] and *scale, with the
   range R = f(|g|) of `range` and `bits` 2..8. Returns TT_OK or TT_ERR_ARG. */
int tt_quantize_grad_f32(const float *g, int32_t n, int32_t bits, tt_grad_range range,
                         int8_t *q, float *scale);

/* softmax_xent_grad + quantize_grad_f32: int8 logits[c] (scale s_y, zero point z_y),
   label in [0, c) -> int8 grad[c] + *grad_scale (exact) and *loss = -log(max(p[label],
   1e-30)) (libm logf: within an ulp or two of the reference, not bit-exact).
   grad may alias logits. Returns TT_OK or TT_ERR_ARG (c < 1, label, bits, range). */
int tt_softmax_xent_grad_s8(const int8_t *logits, int32_t c, float s_y, int32_t z_y,
                            int32_t label, int32_t bits, tt_grad_range range, int8_t *grad,
                            float *grad_scale, float *loss, void *scratch);

/* mse_grad + quantize_grad_f32: int8 output y[n] and target[n] with the same scale s_y
   (the zero point cancels) -> int8 grad[n] of dL/dy_real = 2 (y - t) s_y / n + *grad_scale
   and *loss = sum(((y - t) s_y)^2) / n, all bit-exact. grad may alias y. Returns TT_OK
   or TT_ERR_ARG (n < 1, bits, range). */
int tt_mse_grad_s8(const int8_t *y, const int8_t *target, int32_t n, float s_y, int32_t bits,
                   tt_grad_range range, int8_t *grad, float *grad_scale, float *loss,
                   void *scratch);

/* grad_range_int: the integer range of int32 accumulators (max|acc| >> k,
   (3 * max|acc|) >> 2, or K * (sum|acc| / n)); 0 for n = 0. Up to 2^37. */
int64_t tt_grad_range_s32(const int32_t *acc, int32_t n, tt_grad_range range);

/* requant_grad: int32 gradient accumulators acc[n] with scale acc_scale -> int8 out[n] and
   *out_scale. The range is the tensor's own statistic (r_ext == NULL: two passes over
   acc) or *r_ext (e.g. the previous step's statistic; one pass). When r_stat is not
   NULL it receives this tensor's own statistic (computed in the same pass), for
   delayed scaling. out may alias acc (in-place narrowing). Returns TT_OK or TT_ERR_ARG. */
int tt_requant_grad_s8(const int32_t *acc, int32_t n, float acc_scale, int32_t bits,
                       tt_grad_range range, const int64_t *r_ext, int8_t *out,
                       float *out_scale, int64_t *r_stat);

/* add_grads: q1 * s1 + q2 * s2 -> int8 out[n] + *out_scale (common scale max(s1,s2)/4096,
   integer weights round(s_i / s_c), then requant_grad with its own statistic). The int32
   sum is recomputed in a second pass instead of being stored, so no scratch; out may
   alias q1 or q2. s1, s2 must be finite, >= 0 and max(s1, s2) / 4096 must not round to
   0 (else TT_ERR_ARG, where the reference raises). */
int tt_add_grads_s8(const int8_t *q1, float s1, const int8_t *q2, float s2, int32_t n,
                    int32_t bits, tt_grad_range range, int8_t *out, float *out_scale,
                    void *scratch);

/* ---- elementwise ------------------------------------------------------------------------ */

/* prescale: int8 output gradient gy[pixels][c] -> int16 t = requant(gy, mult[c],
   shift[c]) (mult/shift from compiler.ref.grad_ops.prescale_params). t must not alias gy. */
void tt_grad_prescale_s16(const int8_t *gy, int32_t pixels, int32_t c, const int32_t *mult,
                          const int32_t *shift, int16_t *t);

/* clamp_mask, packed: bit (bit0 + i) of mask (bit j is mask[j / 8] >> (j % 8), i.e.
   numpy packbits(bitorder="little")) = act_min < y[i] < act_max, i in [0, n). Other bits
   of mask are kept, so a forward pass run in bands can pack its rows one call each. */
void tt_clamp_mask_pack_s8(const int8_t *y, int32_t n, int32_t act_min, int32_t act_max,
                           uint8_t *mask, int32_t bit0);

/* g[i] = 0 where mask bit (bit0 + i) is 0, in place, i in [0, n). */
void tt_grad_mask_s8(int8_t *g, int32_t n, const uint8_t *mask, int32_t bit0);

/* avgpool_grad_input (global average pool): gy[c] -> gx[h][w][c] (broadcast) and
   *gx_scale = gy_scale / (h * w). */
void tt_avgpool_grad_s8(const int8_t *gy, float gy_scale, int32_t h, int32_t w, int32_t c,
                        int8_t *gx, float *gx_scale);

/* concat_grad_split: gx[p][0, c) = gy[p][c0, c0 + c) for p in [0, pixels), gy having
   out_c channels; the scale is gy's (the caller copies it). */
void tt_concat_grad_s8(const int8_t *gy, int32_t pixels, int32_t out_c, int32_t c0, int32_t c,
                       int8_t *gx);

/* lut_grad_acc (sigmoid / hardsigmoid / hardswish): acc[i] = gy[i] * dtable[x[i] + 128]
   over n values, x the saved int8 forward input, dtable the int16 derivative table
   (256 entries); int32 with the scale s_gy * d_scale. */
void tt_lut_grad_s8(const int16_t *dtable, const int8_t *x, const int8_t *gy, int32_t *acc,
                    int32_t n);

/* mul_grad_acc: acc = gy * (other - z_other) over pixels x c values (other: c values
   broadcast over the pixels when bcast); int32 with the scale s_gy * s_other. */
void tt_mul_grad_s8(const int8_t *gy, const int8_t *other, int32_t z_other, int32_t pixels,
                    int32_t c, int32_t bcast, int32_t *acc);

/* mul_gate_grad_acc: acc[c] = sum over pixels of gy[p][c] * (a[p][c] - z_a) (the gradient
   of a per-channel gate; pixels < 65536); int32 with the scale s_gy * s_a. */
void tt_mul_gate_grad_s8(const int8_t *gy, const int8_t *a, int32_t z_a, int32_t pixels,
                         int32_t c, int32_t *acc);

/* max_pool_grad_acc: each gy[oy][ox][c] added to the accumulator of the first maximum
   of its window in the forward input x (row, then column; padded taps never win);
   acc [in_h][in_w][c] int32 with the scale of gy (tt_requant_grad_s8 makes it int8). */
void tt_maxpool_grad_s8(const tt_pool_params *p, const int8_t *x, const int8_t *gy,
                        int32_t *acc);

/* avg_pool_grad_acc (every window with the divisor k_h * k_w): each gy[oy][ox][c] added
   to the accumulators of every tap of its window inside the map; acc [in_h][in_w][c]
   int32 with the scale of gy / (k_h * k_w) (tt_requant_grad_s8 makes it int8). */
void tt_avgpool_window_grad_s8(const tt_pool_params *p, const int8_t *gy, int32_t *acc);

/* ---- input gradients (transposed convolution) -------------------------------------------
 * t: the prescaled output gradient, int16 [out_h][out_w][out_c]; result int32 gx
 * [in_h][in_w][in_c] = conv_grad_input (scale s_gy * max(s_w) / 2^TT_PRESCALE_BITS).
 * Bands: a call computes the gx rows [y0, y1), full width; t points at logical t row
 * t_row0 and must hold the rows tt_grad_in_band_rows() reports; gx row y is written at
 * gx + (y - gx_row0) * in_w * in_c. Full tensor: (t, 0, gx, 0, 0, in_h). Accumulators
 * are int32 (sum |t| * |w| < 2^31: always true for |t| <= 2047). t and gx must not
 * overlap. */

/* t rows [*r0, *r1) (clipped to [0, out_h)) that gx rows [y0, y1) read. */
static inline void tt_grad_in_band_rows(const tt_conv_params *p, int32_t y0, int32_t y1,
                                        int32_t *r0, int32_t *r1)
{
    /* oy * stride + ky - pad in [y0, y1) for some ky in [0, k_h) */
    int32_t lo = y0 + p->pad - (p->k_h - 1), hi = y1 - 1 + p->pad;
    int32_t a = lo <= 0 ? 0 : (lo + p->stride - 1) / p->stride;
    int32_t b = hi < 0 ? 0 : hi / p->stride + 1;
    if (a > p->out_h) a = p->out_h;
    if (b > p->out_h) b = p->out_h;
    if (y1 <= y0 || b < a) b = a;
    *r0 = a;
    *r1 = b;
}

/* Generic k_h x k_w convolution, groups = 1, any stride, pad. */
void tt_conv2d_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                           int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                           void *scratch);
/* Pointwise (k = 1, pad = 0, stride 1 or 2; with stride 2 the gx pixels no output
   pixel reads are 0). */
void tt_conv2d_1x1_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                               int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                               void *scratch);
/* Depthwise (in_c == out_c, multiplier 1), any k_h x k_w, stride, pad. */
void tt_dwconv_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                           int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                           void *scratch);
/* Fully connected, batch rows: t [batch][out_c] -> gx [batch][in_c]. */
void tt_fc_grad_in_s16(const tt_fc_params *p, const int16_t *t, int32_t *gx, int32_t batch,
                       void *scratch);

/* Activations saved at 2..8 bits for a weight gradient (grad_ops.lowp_pack /
   lowp_activation): pack x[n] into ceil(n / (8 / bits)) bytes (codes of a grid of step
   2^(8 - bits) from lo), and restore the int8 values the weight gradient reads. TT_OK or
   TT_ERR_ARG (bits, n). */
int tt_act_lowp_pack_s8(const int8_t *x, int32_t n, int32_t lo, int32_t bits, uint8_t *packed);
int tt_act_lowp_unpack_s8(const uint8_t *packed, int32_t n, int32_t lo, int32_t bits, int8_t *x);

/* Two-pass input gradient straight to int8 (conv_grad_input then requant_grad with the
   tensor's own statistic, bit for bit, without the int32 tensor): `band` is one of the
   three conv kernels above, called twice per band of `rows` gx rows (pass 1: the range
   statistic, pass 2: the int8 values). t: the full prescaled gradient with scale t_scale;
   or t NULL and gy the int8 output gradient with the prescale factors pm / ps
   (tt_grad_prescale_s16): the t rows a band reads are prescaled into scratch, so t never
   exists either. out [in_h][in_w][in_c] int8 with *out_scale. Scratch: one band of int32
   (plus, with gy, the t rows of one band) plus the band kernel's own scratch
   (band_scratch bytes). TT_OK or TT_ERR_ARG (bits, range, rows). */
typedef void (*tt_grad_in_band_fn)(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                                   int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                                   void *scratch);
size_t tt_conv_grad_in_two_pass_s8_scratch_bytes(const tt_conv_params *p, int32_t rows,
                                                 int32_t prescale, size_t band_scratch);
int tt_conv_grad_in_two_pass_s8(tt_grad_in_band_fn band, const tt_conv_params *p,
                                const int16_t *t, const int8_t *gy, const int32_t *pm,
                                const int32_t *ps, float t_scale, int32_t rows, int32_t bits,
                                tt_grad_range range, int8_t *out, float *out_scale,
                                void *scratch);

/* ---- weight gradient fused with the in-place update ------------------------------------
 * gy: int8 output gradient (scale u->s_gy) [out_h][out_w][out_c] (fc: [batch][out_c]);
 * x: the layer's int8 input (scale u->s_x, zero point p->in_zero) [in_h][in_w][in_c]
 * (fc: [batch][in_c]); w: the weights (OHWI, depthwise [C][k_h][k_w]; normally p->w)
 * updated in place on the output channels [0, u->k) (the only part of w read or
 * written, so with split weights w = p->w holding channels [0, p->w_split) and
 * u->k <= p->w_split; p->w / p->w_tail themselves are not read):
 *     A = conv_grad_weight_acc(gy, x, ...)           (int32, per weight)
 *     w = clamp(w - round(A * f_c), -127, 127)         (sgd_update_weights, f_c: see
 *                                                       tt_sgd_params)
 * The whole weight gradient is never stored: each weight is updated as soon as its A is
 * complete. The stochastic random value of a weight is tt_hash32(its flat index in w,
 * u->key). Returns TT_OK, TT_ERR_ARG (k, incl. k > p->w_split when split; rounding) or
 * TT_ERR_FACTOR (some f_c is not a valid Q31 factor: w is left untouched). gy, x and w
 * must not overlap. */
int tt_conv2d_grad_w_update_s8(const tt_conv_params *p, const int8_t *gy, const int8_t *x,
                               int8_t *w, const tt_sgd_params *u, void *scratch);
int tt_conv2d_1x1_grad_w_update_s8(const tt_conv_params *p, const int8_t *gy,
                                   const int8_t *x, int8_t *w, const tt_sgd_params *u,
                                   void *scratch);
int tt_dwconv_grad_w_update_s8(const tt_conv_params *p, const int8_t *gy, const int8_t *x,
                               int8_t *w, const tt_sgd_params *u, void *scratch);
int tt_fc_grad_w_update_s8(const tt_fc_params *p, const int8_t *gy, const int8_t *x,
                           int32_t batch, int8_t *w, const tt_sgd_params *u, void *scratch);

/* Bias: gb[c] = sum over pixels of gy[pixels][c]; f_b = ((lr * s_gy) / s_x) / s_w[c]
   (qas_off: ((lr * s_gy) * s_x) * s_w[c]);
   bias[c] = sat_int32(bias[c] - round_nearest(gb * f_b)) for c in [0, u->k)
   (u->rounding and u->key are not used). Returns TT_OK, TT_ERR_ARG or TT_ERR_FACTOR
   (bias untouched). */
int tt_bias_grad_update_s32(const int8_t *gy, int32_t pixels, int32_t c,
                            const tt_sgd_params *u, int32_t *bias);

/* 1 when the Arm DSP variants are compiled in, 0 for the portable build. */
int tt_train_kernels_dsp(void);

#ifdef __cplusplus
}
#endif
#endif
