/* Global average pooling [h][w][c] -> [c]: y = div_round_away(sum x, h*w) on the raw
 * int8 values (input and output share scale and zero point), see compiler.ref.ops.global_avgpool.
 * A tiny share of the work: one portable version. Sums fit in int32 for h*w < 2^24. */
#include "tt_kernels.h"
#include "tt_qmath.h"

size_t tt_avgpool_global_s8_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL void tt_avgpool_global_s8(const int8_t *in, int32_t h, int32_t w, int32_t c,
                                    int8_t *out)
{
    const int32_t n = h * w;
    for (int32_t ch = 0; ch < c; ++ch) {
        const int8_t *x = in + ch;
        int32_t s = 0;
        for (int32_t i = 0; i < n; ++i, x += c) s += *x;
        out[ch] = (int8_t)tt_div_round_away(s, n);
    }
}
