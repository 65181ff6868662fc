/* Float32 gradient quantization (compiler.ref.grad_ops.quantize_grad_f32). Float32 throughout, one
 * IEEE operation at a time in the order of the numpy code (sums are sequential, as
 * numpy's cumsum). */
#include "tt_grad_core.h"

size_t tt_quantize_grad_f32_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_KERNEL int tt_quantize_grad_f32(const float *g, int32_t n, int32_t bits, tt_grad_range range,
                                   int8_t *q, float *scale)
{
    const int32_t qmax = tt_qmax_of(bits);
    if (qmax < 0 || !tt_grad_range_ok(range) || n < 1) return TT_ERR_ARG;
    float r;
    if (range.kind != TT_RANGE_MEAN) {
        float m = fabsf(g[0]);
        for (int32_t i = 1; i < n; ++i) {
            const float a = fabsf(g[i]);
            if (a > m) m = a;
        }
        r = tt_range_of_maxf(m, range);
    } else {
        float s = fabsf(g[0]);
        for (int32_t i = 1; i < n; ++i) s = s + fabsf(g[i]);
        r = s / (float)n;
        r = r * (float)range.k;
    }
    if (!(r > 0.0f)) {
        for (int32_t i = 0; i < n; ++i) q[i] = 0;
        *scale = 1.0f;
        return TT_OK;
    }
    const float lim = (float)qmax;
    const float sc = r / lim;
    for (int32_t i = 0; i < n; ++i) {
        float v = g[i] / sc;
        v = tt_round_half_away_f32(v);
        if (v > lim) v = lim;
        else if (v < -lim) v = -lim;
        else if (v != v) v = 0.0f; /* NaN (0/0 when scale underflows): numpy is undefined */
        q[i] = (int8_t)(int32_t)v;
    }
    *scale = sc;
    return TT_OK;
}
