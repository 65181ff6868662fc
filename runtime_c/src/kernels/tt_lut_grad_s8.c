/* Backward of an elementwise function by table (sigmoid, hardsigmoid, hardswish;
 * compiler.ref.grad_ops.lut_grad_acc): acc[i] = gy[i] * dtable[x[i] + 128], x the saved
 * int8 forward input, dtable the compile-time int16 derivative table
 * (compiler.ref.grad_ops.lut_grad_table). int32 result with the scale s_gy * d_scale
 * (tt_requant_grad_s8 makes it int8). |acc| <= 128 * 32767. */
#include "tt_train_kernels.h"

size_t tt_lut_grad_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_KERNEL void tt_lut_grad_s8(const int16_t *dtable, const int8_t *x, const int8_t *gy,
                              int32_t *acc, int32_t n)
{
    const int16_t *d = dtable + 128;
    for (int32_t i = 0; i < n; ++i) acc[i] = (int32_t)gy[i] * d[x[i]];
}
