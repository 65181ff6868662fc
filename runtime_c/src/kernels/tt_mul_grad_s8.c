/* Backward of y = a * b w.r.t. one operand (compiler.ref.grad_ops.mul_grad_acc):
 * acc = gy * (other - z_other) over `pixels` x `c` values, int32 with the scale
 * s_gy * s_other (tt_requant_grad_s8 makes it int8). With bcast, `other` holds c values
 * (a per-channel gate) broadcast over the pixels. |acc| <= 128 * 255. */
#include "tt_train_kernels.h"

size_t tt_mul_grad_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_mul_grad_s8(const int8_t *gy, const int8_t *other, int32_t z_other,
                              int32_t pixels, int32_t c, int32_t bcast, int32_t *acc)
{
    for (int32_t px = 0; px < pixels; ++px, gy += c, acc += c) {
        const int8_t *o = bcast ? other : other + (size_t)px * c;
        for (int32_t k = 0; k < c; ++k) acc[k] = (int32_t)gy[k] * (o[k] - z_other);
    }
}
