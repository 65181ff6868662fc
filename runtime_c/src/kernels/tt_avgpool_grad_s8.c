/* Global average pool backward (compiler.ref.grad_ops.avgpool_grad_input): broadcast, scale / (h*w). */
#include "tt_grad_core.h"

size_t tt_avgpool_grad_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_avgpool_grad_s8(const int8_t *gy, float gy_scale, int32_t h, int32_t w,
                                  int32_t c, int8_t *gx, float *gx_scale)
{
    const int32_t hw = h * w;
    for (int32_t p = 0; p < hw; ++p, gx += c) memcpy(gx, gy, (size_t)c);
    *gx_scale = gy_scale / (float)hw;
}
