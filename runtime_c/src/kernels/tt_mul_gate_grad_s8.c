/* Backward of y = a * gate w.r.t. a per-channel gate broadcast over the pixels
 * (compiler.ref.grad_ops.mul_gate_grad_acc): acc[c] = sum over pixels of
 * gy[p][c] * (a[p][c] - z_a), int32 with the scale s_gy * s_a (tt_requant_grad_s8 makes
 * it int8). |acc| <= 128 * 255 * pixels: pixels < 65536.
 *
 * DSP variant: 4 channels at a time in 4 registers, one word of gy and one of a per
 * pixel (SXTB16 / SXTAB16 with the zero point folded in), SMLABB / SMLATT; the channels
 * after the last group of 4 take the portable loop. */
#include "tt_grad_core.h"

size_t tt_mul_gate_grad_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

/* channels [k0, c) */
static void tt_gate_grad_channels(const int8_t *gy, const int8_t *a, int32_t z_a, int32_t pixels,
                                  int32_t c, int32_t k0, int32_t *acc)
{
    for (int32_t k = k0; k < c; ++k) acc[k] = 0;
    for (int32_t px = 0; px < pixels; ++px, gy += c, a += c)
        for (int32_t k = k0; k < c; ++k) acc[k] += (int32_t)gy[k] * (a[k] - z_a);
}

#if TT_DSP
static TT_GRAD_NOINLINE void tt_gate_grad4(const int8_t *g, const int8_t *x, int32_t zoff,
                                           int32_t pixels, int32_t c, int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int32_t px = 0; px < pixels; ++px, g += c, x += c) {
        const int32_t gv = tt_ld32(g), xv = tt_ld32(x);
        const int32_t g02 = tt_sxtb16(gv), x02 = tt_sxtab16(zoff, xv);
        a0 = tt_smlabb(g02, x02, a0);
        a2 = tt_smlatt(g02, x02, a2);
        const int32_t g13 = tt_sxtb16_ror8(gv), x13 = tt_sxtab16_ror8(zoff, xv);
        a1 = tt_smlabb(g13, x13, a1);
        a3 = tt_smlatt(g13, x13, a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

TT_KERNEL void tt_mul_gate_grad_s8(const int8_t *gy, const int8_t *a, int32_t z_a, int32_t pixels,
                                   int32_t c, int32_t *acc)
{
    int32_t k = 0;
#if TT_DSP
    const int32_t zoff = tt_pack16(-z_a, -z_a);
    for (; k + 4 <= c; k += 4) tt_gate_grad4(gy + k, a + k, zoff, pixels, c, acc + k);
#endif
    tt_gate_grad_channels(gy, a, z_a, pixels, c, k, acc);
}
