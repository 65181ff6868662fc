/* MSE loss gradient (compiler.ref.grad_ops.mse_grad) followed by the float32 gradient
 * quantization (tt_quantize_grad_f32). Float32 one IEEE operation at a time in the order
 * of the numpy code (the sum is sequential, as numpy's cumsum): the loss is bit-exact. */
#include "tt_grad_core.h"

size_t tt_mse_grad_s8_scratch_bytes(int32_t n)
{
    return TT_MSE_GRAD_S8_SCRATCH_BYTES(n);
}

TT_KERNEL int tt_mse_grad_s8(const int8_t *y, const int8_t *target, int32_t n, float s_y,
                             int32_t bits, tt_grad_range range, int8_t *grad,
                             float *grad_scale, float *loss, void *scratch)
{
    if (n < 1 || tt_qmax_of(bits) < 0 || !tt_grad_range_ok(range)) return TT_ERR_ARG;
    float *g = (float *)scratch;
    const float nf = (float)n;
    const float two_over_n = 2.0f / nf;
    float total = 0.0f;
    for (int32_t i = 0; i < n; ++i) {
        const float e = (float)((int32_t)y[i] - (int32_t)target[i]) * s_y;
        const float e2 = e * e;
        total = i == 0 ? e2 : total + e2;
        g[i] = e * two_over_n;
    }
    *loss = total / nf;
    return tt_quantize_grad_f32(g, n, bits, range, grad, grad_scale);
}
