/* Elementwise parts of the backward pass: int16 prescale of an output gradient
 * (ref_grad_ops.prescale), the 1-bit ReLU/clamp mask (clamp_mask) and its application,
 * and the global average pool backward (avgpool_grad_input). */
#include "tt_grad_core.h"

size_t tt_grad_prescale_s16_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}
size_t tt_clamp_mask_pack_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}
size_t tt_grad_mask_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}
size_t tt_avgpool_grad_s8_scratch_bytes(int32_t c)
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

TT_KERNEL void tt_grad_mask_s8(int8_t *g, int32_t n, const uint8_t *mask, int32_t bit0)
{
    for (int32_t i = 0; i < n; ++i) {
        const int32_t b = bit0 + i;
        if (!((mask[b >> 3] >> (b & 7)) & 1u)) g[i] = 0;
    }
}

TT_KERNEL void tt_avgpool_grad_s8(const int8_t *gy, float gy_scale, int32_t h, int32_t w,
                                  int32_t c, int8_t *gx, float *gx_scale)
{
    const int32_t hw = h * w;
    for (int32_t p = 0; p < hw; ++p, gx += c) memcpy(gx, gy, (size_t)c);
    *gx_scale = gy_scale / (float)hw;
}
