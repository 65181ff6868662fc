/* Global average pooling [h][w][c] -> [c] whose output has its own scale and zero
 * point (a QDQ model): y = clamp(requant(sum(x - in_zero), mult, shift) + out_zero) with
 * one Q31 multiplier of s_in / (h*w * s_out), see compiler.ref.ops.global_avgpool_requant.
 * A tiny share of the work: one portable version. Sums fit in int32 for h*w < 2^23. */
#include "tt_kernels.h"
#include "tt_qmath.h"

size_t tt_avgpool_global_requant_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_avgpool_global_requant_s8(const int8_t *in, int32_t h, int32_t w, int32_t c,
                                            int32_t in_zero, int32_t out_zero, int32_t mult,
                                            int32_t shift, int8_t *out)
{
    const int32_t n = h * w;
    for (int32_t ch = 0; ch < c; ++ch) {
        const int8_t *x = in + ch;
        int32_t s = 0;
        for (int32_t i = 0; i < n; ++i, x += c) s += *x;
        out[ch] = tt_requant_s8(s - n * in_zero, mult, shift, out_zero, -128, 127);
    }
}
