/* Application of a packed clamp mask (tt_clamp_mask_pack_s8) to a gradient, in place.
 * With bit0 on a byte boundary the mask is read a byte (8 values) at a time: a byte of
 * ones leaves its 8 values alone, a zero byte clears them with two word stores, any
 * other byte widens each half to a word of 0x00 / 0xFF bytes (the nibble times
 * 0x00204081 puts its bit i at bit 8 i, no two terms overlap) that is ANDed with 4
 * values at once. */
#include "tt_grad_core.h"

size_t tt_grad_mask_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_INLINE uint32_t tt_nibble_bytes(uint32_t nib)
{
    const uint32_t b = (nib * 0x00204081u) & 0x01010101u;
    return (b << 8) - b; /* 0x01 -> 0xFF per byte */
}

TT_KERNEL void tt_grad_mask_s8(int8_t *g, int32_t n, const uint8_t *mask, int32_t bit0)
{
    int32_t i = 0;
    if ((bit0 & 7) == 0) {
        const uint8_t *mp = mask + (bit0 >> 3);
        for (; i + 8 <= n; i += 8, ++mp) {
            const uint32_t mb = *mp;
            if (mb == 0xFFu) continue;
            int8_t *q = g + i;
            if (mb == 0u) {
                tt_st32(q, 0);
                tt_st32(q + 4, 0);
                continue;
            }
            tt_st32(q, (int32_t)((uint32_t)tt_ld32(q) & tt_nibble_bytes(mb & 15u)));
            tt_st32(q + 4, (int32_t)((uint32_t)tt_ld32(q + 4) & tt_nibble_bytes(mb >> 4)));
        }
    }
    for (; i < n; ++i) {
        const int32_t b = bit0 + i;
        if (!((mask[b >> 3] >> (b & 7)) & 1u)) g[i] = 0;
    }
}
