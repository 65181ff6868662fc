/* Loss gradient (compiler.ref.grad_ops.softmax_xent_grad) followed by the float32 gradient
 * quantization (tt_quantize_grad_f32). Float32 throughout, one IEEE operation at a time
 * in the order of the numpy code (sums are sequential, as numpy's cumsum). */
#include "tt_grad_core.h"

size_t tt_softmax_xent_grad_s8_scratch_bytes(int32_t c)
{
    return TT_SOFTMAX_XENT_GRAD_S8_SCRATCH_BYTES(c);
}

TT_KERNEL int tt_softmax_xent_grad_s8(const int8_t *logits, int32_t c, float s_y, int32_t z_y,
                                      int32_t label, int32_t bits, tt_grad_range range,
                                      int8_t *grad, float *grad_scale, float *loss,
                                      void *scratch)
{
    if (c < 1 || label < 0 || label >= c || tt_qmax_of(bits) < 0 || !tt_grad_range_ok(range))
        return TT_ERR_ARG;
    float *g = (float *)scratch;
    /* z = (y - z_y) * s_y; m = max(z) */
    float m = 0.0f;
    for (int32_t i = 0; i < c; ++i) {
        const float z = (float)(logits[i] - z_y) * s_y;
        g[i] = z;
        if (i == 0 || z > m) m = z;
    }
    /* e = expf(z - m); total = sequential sum */
    float total = 0.0f;
    for (int32_t i = 0; i < c; ++i) {
        const float e = tt_expf(g[i] - m);
        g[i] = e;
        total = i == 0 ? e : total + e;
    }
    /* p = e / total; g = p - onehot */
    for (int32_t i = 0; i < c; ++i) g[i] = g[i] / total;
    const float pl = g[label];
    g[label] = pl - 1.0f;
    /* Not bit-exact with numpy's log (the only such value of the training step). */
    *loss = -logf(pl > 1e-30f ? pl : 1e-30f);
    return tt_quantize_grad_f32(g, c, bits, range, grad, grad_scale);
}
