/* Elementwise product, TFLite MUL (compiler.ref.ops.mul):
 *   y = clamp(requant((a - za) * (b - zb), mult, shift) + zo, act_min, act_max)
 * over `pixels` x `c` values; with bcast, b holds c values (one per channel, e.g. a
 * squeeze-excite gate) broadcast over the pixels. |(a - za) * (b - zb)| <= 255 * 255.
 *
 * DSP variant: the requantization of tt_simd.h's fast plan (tt_rq: one SMMLA, a shift
 * and SSAT per value instead of a 64-bit multiply and variable shift), exact for every
 * product; when no plan exists (multipliers outside its range) the portable loop. */
#include "tt_kernels.h"
#include "tt_qmath.h"
#include "tt_simd.h"

size_t tt_mul_s8_scratch_bytes(const tt_mul_params *p)
{
    (void)p;
    return 0;
}

static void tt_mul_portable(const tt_mul_params *p, const int8_t *a, const int8_t *b, int8_t *out,
                            int32_t pixels, int32_t c, int32_t bcast)
{
    const int32_t za = p->za, zb = p->zb;
    for (int32_t px = 0; px < pixels; ++px, a += c, out += c) {
        const int8_t *bb = bcast ? b : b + (size_t)px * c;
        for (int32_t k = 0; k < c; ++k)
            out[k] = tt_requant_s8((a[k] - za) * (bb[k] - zb), p->mult, p->shift, p->zo,
                                   p->act_min, p->act_max);
    }
}

#if TT_DSP
TT_KERNEL void tt_mul_s8(const tt_mul_params *p, const int8_t *a, const int8_t *b, int8_t *out,
                         int32_t pixels, int32_t c, int32_t bcast)
{
    tt_rq q;
    /* |product| <= 255 * 255 < 2^16: a left shift up to 15 keeps it an int32 */
    if (!tt_rq_plan(&q, p->mult, p->shift, p->zo, (int64_t)255 * 255, 15)) {
        tt_mul_portable(p, a, b, out, pixels, c, bcast);
        return;
    }
    const int32_t za = p->za, zb = p->zb, lo = p->act_min, hi = p->act_max;
    const int32_t mult = q.mult, off = q.off, t = q.t, lsh = q.lsh;
    for (int32_t px = 0; px < pixels; ++px, a += c, out += c) {
        const int8_t *bb = bcast ? b : b + (size_t)px * c;
        for (int32_t k = 0; k < c; ++k) {
            const int32_t prod = (a[k] - za) * (bb[k] - zb);
            int32_t v = tt_ssat8(tt_smmla((int32_t)((uint32_t)prod << lsh), mult, off) >> t);
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            out[k] = (int8_t)v;
        }
    }
}
#else
TT_KERNEL void tt_mul_s8(const tt_mul_params *p, const int8_t *a, const int8_t *b, int8_t *out,
                         int32_t pixels, int32_t c, int32_t bcast)
{
    tt_mul_portable(p, a, b, out, pixels, c, bcast);
}
#endif
