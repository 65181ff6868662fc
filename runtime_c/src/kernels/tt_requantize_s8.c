/* Standalone requantization of int32 accumulators (per-channel along the last axis). */
#include "tt_kernels.h"
#include "tt_simd.h"

size_t tt_requantize_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_requantize_s8(const int32_t *acc, int8_t *out, int32_t rows, int32_t c,
                                const int32_t *mult, const int32_t *shift, int32_t zero,
                                int32_t act_min, int32_t act_max)
{
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t ch = 0; ch < c; ++ch)
            out[ch] = tt_requant_s8(acc[ch], mult[ch], shift[ch], zero, act_min, act_max);
        acc += c;
        out += c;
    }
}
