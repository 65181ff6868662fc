/* Application of a packed clamp mask (tt_clamp_mask_pack_s8) to a gradient, in place. */
#include "tt_grad_core.h"

size_t tt_grad_mask_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_KERNEL void tt_grad_mask_s8(int8_t *g, int32_t n, const uint8_t *mask, int32_t bit0)
{
    for (int32_t i = 0; i < n; ++i) {
        const int32_t b = bit0 + i;
        if (!((mask[b >> 3] >> (b & 7)) & 1u)) g[i] = 0;
    }
}
