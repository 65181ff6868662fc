/* int16 prescale of an int8 output gradient (compiler.ref.grad_ops.prescale): the per-channel
 * weight-scale factor applied before the input-gradient convolutions. */
#include "tt_grad_core.h"

size_t tt_grad_prescale_s16_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_grad_prescale_s16(const int8_t *gy, int32_t pixels, int32_t c,
                                    const int32_t *mult, const int32_t *shift, int16_t *t)
{
    for (int32_t p = 0; p < pixels; ++p, gy += c, t += c)
        for (int32_t o = 0; o < c; ++o)
            t[o] = (int16_t)tt_requantize64(gy[o], mult[o], shift[o]);
}
