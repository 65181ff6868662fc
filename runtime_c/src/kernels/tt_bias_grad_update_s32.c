/* Bias gradient fused with the int32 bias update (compiler.ref.grad_ops.bias_grad_acc,
 * bias_factors, sgd_update_bias): b[c] = sat_int32(b[c] - round_nearest(gb[c] * f_b)). */
#include "tt_grad_core.h"

size_t tt_bias_grad_update_s32_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

TT_KERNEL int tt_bias_grad_update_s32(const int8_t *gy, int32_t pixels, int32_t c,
                                      const tt_sgd_params *u, int32_t *bias)
{
    if (pixels < 0) return TT_ERR_ARG;
    const int st = tt_sgd_check(u, c, 1);
    if (st != TT_OK) return st;
    for (int32_t o = 0; o < u->k; ++o) {
        tt_chf f;
        (void)tt_chf_bias(u, o, &f);
        int32_t gb = 0;
        const int8_t *g = gy + o;
        for (int32_t p = 0; p < pixels; ++p, g += c) gb += *g;
        const int64_t d = tt_fixed_round((int64_t)gb * f.mult, f.total, TT_ROUND_NEAREST, 0);
        int64_t v = (int64_t)bias[o] - d;
        if (v > INT32_MAX) v = INT32_MAX;
        if (v < INT32_MIN) v = INT32_MIN;
        bias[o] = (int32_t)v;
    }
    return TT_OK;
}
