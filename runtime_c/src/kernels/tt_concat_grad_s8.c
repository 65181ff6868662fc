/* Concat backward (compiler.ref.grad_ops.concat_grad_split): the gradient of input i is
 * its channel range [c0, c0 + c) of the output gradient, same values, same scale (the
 * forward requantization only changes the representation of the real values). */
#include "tt_grad_core.h"

size_t tt_concat_grad_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_concat_grad_s8(const int8_t *gy, int32_t pixels, int32_t out_c, int32_t c0,
                                 int32_t c, int8_t *gx)
{
    gy += c0;
    for (int32_t p = 0; p < pixels; ++p, gy += out_c, gx += c) memcpy(gx, gy, (size_t)c);
}
