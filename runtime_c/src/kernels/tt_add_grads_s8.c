/* Sum of two int8 gradients with different scales (compiler.ref.grad_ops.add_grads), requantized
 * with its own range statistic. */
#include "tt_grad_core.h"

size_t tt_add_grads_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_KERNEL int tt_add_grads_s8(const int8_t *q1, float s1, const int8_t *q2, float s2, int32_t n,
                              int32_t bits, tt_grad_range range, int8_t *out, float *out_scale,
                              void *scratch)
{
    (void)scratch;
    const int32_t qmax = tt_qmax_of(bits);
    if (qmax < 0 || !tt_grad_range_ok(range) || n < 0) return TT_ERR_ARG;
    if (!isfinite(s1) || !isfinite(s2)) return TT_ERR_ARG;
    const float mx = s2 > s1 ? s2 : s1; /* Python max(s1, s2) */
    const float sc = mx / 4096.0f;
    if (!(sc > 0.0f)) { /* both gradients numerically zero (scales underflowed) */
        for (int32_t i = 0; i < n; ++i) out[i] = 0;
        *out_scale = sc;
        return TT_OK;
    }
    float f1 = s1 / sc;
    f1 = f1 + 0.5f;
    f1 = floorf(f1);
    float f2 = s2 / sc;
    f2 = f2 + 0.5f;
    f2 = floorf(f2);
    const int32_t m1 = (int32_t)f1, m2 = (int32_t)f2; /* |m| <= 2^14 */
    /* pass 1: statistic of acc = q1 * m1 + q2 * m2 (not stored): only what the range
       kind reads (max |acc| or sum |acc|) */
    int64_t r;
    if (range.kind != TT_RANGE_MEAN) {
        uint32_t mx = 0;
        for (int32_t i = 0; i < n; ++i) {
            const uint32_t a = tt_abs32(q1[i] * m1 + q2[i] * m2);
            mx = a > mx ? a : mx;
        }
        r = n > 0 ? tt_range_of_max(mx, range) : 0;
    } else {
        uint32_t sum = 0; /* |acc| <= 2^22: 512 of them fit in 32 bits */
        uint64_t sum64 = 0;
        for (int32_t i = 0; i < n; ++i) {
            sum += tt_abs32(q1[i] * m1 + q2[i] * m2);
            if ((i & 511) == 511) {
                sum64 += sum;
                sum = 0;
            }
        }
        sum64 += sum;
        r = n > 0 ? (int64_t)range.k * (int64_t)(sum64 / (uint64_t)n) : 0;
    }
    if (r <= 0) {
        for (int32_t i = 0; i < n; ++i) out[i] = 0;
        *out_scale = sc;
        return TT_OK;
    }
    tt_rqg q;
    const float osc = tt_rqg_setup(&q, r, qmax, sc);
    /* pass 2: recompute and requantize */
    const int32_t fs = tt_rqg_fast_s(&q);
    if (fs) {
        const int32_t m = q.mult, rnd = (int32_t)1 << (fs - 1);
        for (int32_t i = 0; i < n; ++i)
            out[i] = tt_rqg_fast(q1[i] * m1 + q2[i] * m2, m, fs, rnd, qmax);
    } else {
        for (int32_t i = 0; i < n; ++i) out[i] = tt_rqg_apply(&q, q1[i] * m1 + q2[i] * m2);
    }
    *out_scale = osc;
    return TT_OK;
}
