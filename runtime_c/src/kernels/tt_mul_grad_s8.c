/* Backward of y = a * b w.r.t. one operand (compiler.ref.grad_ops.mul_grad_acc):
 * acc = gy * (other - z_other) over `pixels` x `c` values, int32 with the scale
 * s_gy * s_other (tt_requant_grad_s8 makes it int8). With bcast, `other` holds c values
 * (a per-channel gate) broadcast over the pixels. |acc| <= 128 * 255.
 *
 * DSP variant: 4 values per step, one word of gy and one of other (SXTB16 / SXTAB16 with
 * the zero point folded in), SMULBB / SMULTT as SMLABB / SMLATT onto 0; the values after
 * the last group of 4 of a run take the scalar loop. */
#include "tt_grad_core.h"

size_t tt_mul_grad_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

#if TT_DSP
/* acc[0, n) = g[.] * (o[.] - z), zoff = (-z, -z) as int16 lanes */
static TT_GRAD_NOINLINE void tt_mul_grad_run(const int8_t *g, const int8_t *o, int32_t z,
                                             int32_t zoff, int32_t n, int32_t *acc)
{
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const int32_t gv = tt_ld32(g + k), ov = tt_ld32(o + k);
        const int32_t g02 = tt_sxtb16(gv), o02 = tt_sxtab16(zoff, ov);
        const int32_t g13 = tt_sxtb16_ror8(gv), o13 = tt_sxtab16_ror8(zoff, ov);
        acc[k] = tt_smlabb(g02, o02, 0);
        acc[k + 1] = tt_smlabb(g13, o13, 0);
        acc[k + 2] = tt_smlatt(g02, o02, 0);
        acc[k + 3] = tt_smlatt(g13, o13, 0);
    }
    for (; k < n; ++k) acc[k] = (int32_t)g[k] * (o[k] - z);
}

TT_KERNEL void tt_mul_grad_s8(const int8_t *gy, const int8_t *other, int32_t z_other,
                              int32_t pixels, int32_t c, int32_t bcast, int32_t *acc)
{
    const int32_t zoff = tt_pack16(-z_other, -z_other);
    if (!bcast) {
        tt_mul_grad_run(gy, other, z_other, zoff, pixels * c, acc);
        return;
    }
    for (int32_t px = 0; px < pixels; ++px, gy += c, acc += c)
        tt_mul_grad_run(gy, other, z_other, zoff, c, acc);
}
#else
TT_KERNEL void tt_mul_grad_s8(const int8_t *gy, const int8_t *other, int32_t z_other,
                              int32_t pixels, int32_t c, int32_t bcast, int32_t *acc)
{
    for (int32_t px = 0; px < pixels; ++px, gy += c, acc += c) {
        const int8_t *o = bcast ? other : other + (size_t)px * c;
        for (int32_t k = 0; k < c; ++k) acc[k] = (int32_t)gy[k] * (o[k] - z_other);
    }
}
#endif
