/* int16 prescale of an int8 output gradient (compiler.ref.grad_ops.prescale): the per-channel
 * weight-scale factor applied before the input-gradient convolutions.
 *
 * t = requant(gy, m, s) = (gy * m + 2^(total-1)) >> total, total = 31 - s. For total in
 * [8, 32] this is hi32(X * m + 2^31) with X = gy * 2^(32 - total) (|X| <= 2^31:
 * exact in int32), one rounding high multiply (SMMULR) per value; other channels take the 64-bit
 * form. Channels outer, pixels inner: the channel's factor is set up once. */
#include "tt_grad_core.h"

size_t tt_grad_prescale_s16_scratch_bytes(int32_t c)
{
    (void)c;
    return 0;
}

static TT_GRAD_NOINLINE void tt_prescale_col(const int8_t *g, int16_t *t, int32_t pixels,
                                             int32_t c, int32_t m, int32_t p2)
{
    int32_t p = 0;
    for (; p + 2 <= pixels; p += 2, g += 2 * c, t += 2 * c) {
        const int32_t a = g[0], b = g[c];
        t[0] = (int16_t)tt_smmulr(a * p2, m);
        t[c] = (int16_t)tt_smmulr(b * p2, m);
    }
    if (p < pixels) t[0] = (int16_t)tt_smmulr(g[0] * p2, m);
}

TT_KERNEL void tt_grad_prescale_s16(const int8_t *gy, int32_t pixels, int32_t c,
                                    const int32_t *mult, const int32_t *shift, int16_t *t)
{
    for (int32_t o = 0; o < c; ++o) {
        const int32_t m = mult[o], total = 31 - shift[o];
        if (total >= 8 && total <= 32) {
            tt_prescale_col(gy + o, t + o, pixels, c, m, (int32_t)1 << (32 - total));
            continue;
        }
        const int8_t *g = gy + o;
        int16_t *tp = t + o;
        for (int32_t p = 0; p < pixels; ++p, g += c, tp += c)
            *tp = (int16_t)tt_requantize64(*g, m, shift[o]);
    }
}
