/* Max pooling [in_h][in_w][c] -> [out_h][out_w][c] over k_h x k_w windows at `stride`,
 * `pad` rows / columns of padding on every side that never win (PyTorch / ONNX
 * semantics: a padded tap counts as -infinity). Input and output share scale and zero
 * point, so the int8 maximum is the real maximum; see ref/ops.py max_pool.
 * Channels are the inner loop: one pass over each window's taps per output pixel. */
#include "tt_kernels.h"

size_t tt_maxpool_s8_scratch_bytes(const tt_pool_params *p)
{
    (void)p;
    return 0;
}

TT_KERNEL void tt_maxpool_s8(const tt_pool_params *p, const int8_t *in, int8_t *out)
{
    const int32_t c = p->c;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride - p->pad;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = y0 + p->k_h > p->in_h ? p->in_h - y0 : p->k_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * TT_STRIDE_W(p) - TT_PAD_W(p);
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = x0 + p->k_w > p->in_w ? p->in_w - x0 : p->k_w;
            int8_t *o = out + ((size_t)oy * p->out_w + ox) * c;
            for (int32_t ch = 0; ch < c; ++ch) o[ch] = -128;
            for (int32_t ky = ky0; ky < ky1; ++ky) {
                const int8_t *row = in + ((size_t)(y0 + ky) * p->in_w + x0) * c;
                for (int32_t kx = kx0; kx < kx1; ++kx) {
                    const int8_t *x = row + (size_t)kx * c;
                    for (int32_t ch = 0; ch < c; ++ch)
                        if (x[ch] > o[ch]) o[ch] = x[ch];
                }
            }
        }
    }
}
