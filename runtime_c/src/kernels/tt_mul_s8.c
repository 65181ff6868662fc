/* Elementwise product, TFLite MUL (compiler.ref.ops.mul):
 *   y = clamp(requant((a - za) * (b - zb), mult, shift) + zo, act_min, act_max)
 * over `pixels` x `c` values; with bcast, b holds c values (one per channel, e.g. a
 * squeeze-excite gate) broadcast over the pixels. |(a - za) * (b - zb)| <= 255 * 255. */
#include "tt_kernels.h"
#include "tt_qmath.h"

size_t tt_mul_s8_scratch_bytes(const tt_mul_params *p)
{
    (void)p;
    return 0;
}

TT_KERNEL void tt_mul_s8(const tt_mul_params *p, const int8_t *a, const int8_t *b, int8_t *out,
                         int32_t pixels, int32_t c, int32_t bcast)
{
    const int32_t za = p->za, zb = p->zb;
    for (int32_t px = 0; px < pixels; ++px, a += c, out += c) {
        const int8_t *bb = bcast ? b : b + (size_t)px * c;
        for (int32_t k = 0; k < c; ++k)
            out[k] = tt_requant_s8((a[k] - za) * (bb[k] - zb), p->mult, p->shift, p->zo,
                                   p->act_min, p->act_max);
    }
}
