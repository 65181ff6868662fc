/* Backward of y = a * gate w.r.t. a per-channel gate broadcast over the pixels
 * (compiler.ref.grad_ops.mul_gate_grad_acc): acc[c] = sum over pixels of
 * gy[p][c] * (a[p][c] - z_a), int32 with the scale s_gy * s_a (tt_requant_grad_s8 makes
 * it int8). |acc| <= 128 * 255 * pixels: pixels < 65536. */
#include "tt_train_kernels.h"

size_t tt_mul_gate_grad_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_mul_gate_grad_s8(const int8_t *gy, const int8_t *a, int32_t z_a, int32_t pixels,
                                   int32_t c, int32_t *acc)
{
    for (int32_t k = 0; k < c; ++k) acc[k] = 0;
    for (int32_t px = 0; px < pixels; ++px, gy += c, a += c)
        for (int32_t k = 0; k < c; ++k) acc[k] += (int32_t)gy[k] * (a[k] - z_a);
}
