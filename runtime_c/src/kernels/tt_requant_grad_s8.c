/* Gradient scale choice for int32 accumulators (compiler.ref.grad_ops.requant_grad): the range
 * statistic (tt_grad_range_s32, or the caller's delayed one) and the requantization to
 * int8 with its float32 scale. */
#include "tt_grad_core.h"

size_t tt_requant_grad_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_KERNEL int tt_requant_grad_s8(const int32_t *acc, int32_t n, float acc_scale, int32_t bits,
                                 tt_grad_range range, const int64_t *r_ext, int8_t *out,
                                 float *out_scale, int64_t *r_stat)
{
    const int32_t qmax = tt_qmax_of(bits);
    if (qmax < 0 || !tt_grad_range_ok(range) || n < 0) return TT_ERR_ARG;
    int64_t r;
    tt_rstat st = {0, 0};
    if (!r_ext) {
        r = tt_grad_range_s32(acc, n, range);
        if (r_stat) *r_stat = r;
    } else {
        r = *r_ext;
    }
    if (r <= 0) {
        if (r_ext && r_stat) *r_stat = tt_grad_range_s32(acc, n, range);
        for (int32_t i = 0; i < n; ++i) out[i] = 0;
        *out_scale = acc_scale;
        return TT_OK;
    }
    tt_rqg q;
    const float sc = tt_rqg_setup(&q, r, qmax, acc_scale);
    if (r_ext && r_stat) {
        for (int32_t i = 0; i < n; ++i) {
            const int32_t a = acc[i]; /* read before out[i] (may alias) is written */
            tt_rstat_add(&st, a);
            out[i] = tt_rqg_apply(&q, a);
        }
        *r_stat = tt_rstat_range(&st, n, range);
    } else {
        for (int32_t i = 0; i < n; ++i) out[i] = tt_rqg_apply(&q, acc[i]);
    }
    *out_scale = sc;
    return TT_OK;
}
