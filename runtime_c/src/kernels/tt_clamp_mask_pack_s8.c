/* The 1-bit ReLU / clamp mask of a forward output (compiler.ref.grad_ops.clamp_mask), packed
 * little-endian into bytes. */
#include "tt_grad_core.h"

size_t tt_clamp_mask_pack_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_KERNEL void tt_clamp_mask_pack_s8(const int8_t *y, int32_t n, int32_t act_min,
                                     int32_t act_max, uint8_t *mask, int32_t bit0)
{
    int32_t i = 0;
    /* leading bits up to a byte boundary, whole bytes, trailing bits */
    for (; i < n && ((bit0 + i) & 7); ++i) {
        const int32_t b = bit0 + i;
        const uint8_t bit = (uint8_t)(1u << (b & 7));
        if (y[i] > act_min && y[i] < act_max) mask[b >> 3] |= bit;
        else mask[b >> 3] &= (uint8_t)~bit;
    }
    for (; i + 8 <= n; i += 8) {
        uint32_t v = 0;
        for (int j = 0; j < 8; ++j) v |= (uint32_t)(y[i + j] > act_min && y[i + j] < act_max) << j;
        mask[(bit0 + i) >> 3] = (uint8_t)v;
    }
    for (; i < n; ++i) {
        const int32_t b = bit0 + i;
        const uint8_t bit = (uint8_t)(1u << (b & 7));
        if (y[i] > act_min && y[i] < act_max) mask[b >> 3] |= bit;
        else mask[b >> 3] &= (uint8_t)~bit;
    }
}
