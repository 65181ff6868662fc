/* Input gradient of a convolution straight to int8, without the int32 tensor
 * (compiler.ref.grad_ops.conv_grad_input then requant_grad, bit for bit).
 *
 * Pass 1 computes the int32 gradient band by band (`rows` gx rows at a time, in scratch)
 * only to accumulate the range statistic of requant_grad; pass 2 recomputes every band
 * and requantizes it into `out` with the scale that statistic gives. The statistic
 * (max |g| or the sum of |g|) does not depend on the order it is accumulated in, so the
 * result equals tt_*_grad_in_s16 + tt_requant_grad_s8 exactly; the cost is the
 * input-gradient MACs twice, the memory one band of int32 instead of the whole tensor. */
#include "tt_grad_core.h"

/* Most t rows one band of `rows` gx rows reads. */
static int32_t tt_two_pass_t_rows(const tt_conv_params *p, int32_t rows)
{
    int32_t most = 0;
    for (int32_t y0 = 0; y0 < p->in_h; y0 += rows) {
        const int32_t y1 = y0 + rows < p->in_h ? y0 + rows : p->in_h;
        int32_t r0, r1;
        tt_grad_in_band_rows(p, y0, y1, &r0, &r1);
        if (r1 - r0 > most) most = r1 - r0;
    }
    return most;
}

static int32_t tt_two_pass_rows(const tt_conv_params *p, int32_t rows)
{
    return rows < 1 ? 1 : rows > p->in_h ? p->in_h : rows;
}

size_t tt_conv_grad_in_two_pass_s8_scratch_bytes(const tt_conv_params *p, int32_t rows,
                                                 int32_t prescale, size_t band_scratch)
{
    rows = tt_two_pass_rows(p, rows);
    size_t n = (size_t)rows * (size_t)p->in_w * (size_t)p->in_c * 4u + band_scratch;
    if (prescale)
        n += ((size_t)tt_two_pass_t_rows(p, rows) * (size_t)p->out_w * (size_t)p->out_c * 2u + 3u)
             & ~(size_t)3u;
    return n;
}

/* gx rows [y0, y1) into tile; with gy, the t rows they read are prescaled into tb first. */
static void tt_two_pass_band(tt_grad_in_band_fn band, const tt_conv_params *p, const int16_t *t,
                             const int8_t *gy, const int32_t *pm, const int32_t *ps, int16_t *tb,
                             int32_t *tile, int32_t y0, int32_t y1, void *bs)
{
    if (!gy) {
        band(p, t, 0, tile, y0, y0, y1, bs);
        return;
    }
    int32_t r0, r1;
    tt_grad_in_band_rows(p, y0, y1, &r0, &r1);
    const int32_t row_t = p->out_w * p->out_c;
    if (r1 > r0) tt_grad_prescale_s16(gy + (ptrdiff_t)r0 * row_t, (r1 - r0) * p->out_w, p->out_c,
                                      pm, ps, tb);
    band(p, tb, r0, tile, y0, y0, y1, bs);
}

TT_KERNEL int tt_conv_grad_in_two_pass_s8(tt_grad_in_band_fn band, const tt_conv_params *p,
                                          const int16_t *t, const int8_t *gy, const int32_t *pm,
                                          const int32_t *ps, float t_scale, int32_t rows,
                                          int32_t bits, tt_grad_range range, int8_t *out,
                                          float *out_scale, void *scratch)
{
    const int32_t qmax = tt_qmax_of(bits);
    if (qmax < 0 || !tt_grad_range_ok(range) || rows < 1 || !band || (!t && !gy)) return TT_ERR_ARG;
    rows = tt_two_pass_rows(p, rows);
    const int32_t row_n = p->in_w * p->in_c, n = p->in_h * row_n;
    int32_t *tile = (int32_t *)scratch;
    int16_t *tb = (int16_t *)(void *)((int8_t *)scratch + (size_t)rows * (size_t)row_n * 4u);
    void *bs = tb;
    if (gy)
        bs = (int8_t *)tb + (((size_t)tt_two_pass_t_rows(p, rows) * (size_t)p->out_w *
                              (size_t)p->out_c * 2u + 3u) & ~(size_t)3u);
    tt_rstat st = {0, 0};
    for (int32_t y0 = 0; y0 < p->in_h; y0 += rows) {
        const int32_t y1 = y0 + rows < p->in_h ? y0 + rows : p->in_h;
        tt_two_pass_band(band, p, t, gy, pm, ps, tb, tile, y0, y1, bs);
        const int32_t m = (y1 - y0) * row_n;
        for (int32_t i = 0; i < m; ++i) tt_rstat_add(&st, tile[i]);
    }
    const int64_t r = tt_rstat_range(&st, n, range);
    if (r <= 0) {
        for (int32_t i = 0; i < n; ++i) out[i] = 0;
        *out_scale = t_scale;
        return TT_OK;
    }
    tt_rqg q;
    const float sc = tt_rqg_setup(&q, r, qmax, t_scale);
    for (int32_t y0 = 0; y0 < p->in_h; y0 += rows) {
        const int32_t y1 = y0 + rows < p->in_h ? y0 + rows : p->in_h;
        tt_two_pass_band(band, p, t, gy, pm, ps, tb, tile, y0, y1, bs);
        const int32_t m = (y1 - y0) * row_n;
        int8_t *o = out + (ptrdiff_t)y0 * row_n;
        for (int32_t i = 0; i < m; ++i) o[i] = tt_rqg_apply(&q, tile[i]);
    }
    *out_scale = sc;
    return TT_OK;
}
