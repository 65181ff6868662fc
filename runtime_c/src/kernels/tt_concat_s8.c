/* Concatenation along the channels of NHWC maps (compiler.ref.ops.concat, TFLite
 * semantics): input i, c_i channels with zero point z_i, lands at channels
 * [c_0 + ... + c_{i-1}, + c_i) of the output, requantized to the output's parameters:
 *   y = clamp(requant(x - z_i, m_i, s_i) + out_zero, -128, 127)
 * An input that already has the output's parameters (m = 2^30, s = 1, z = out_zero) is
 * copied. DSP build: a requantized input uses tt_simd.h's fast plan (tt_rq: one SMMLA,
 * a shift and SSAT per value instead of a 64-bit multiply and variable shift), exact for
 * every int8 input; without a plan (multipliers outside its range) the portable loop. */
#include <string.h>

#include "tt_kernels.h"
#include "tt_qmath.h"
#include "tt_simd.h"

size_t tt_concat_s8_scratch_bytes(int32_t n_in)
{
    (void)n_in;
    return 0;
}

TT_KERNEL void tt_concat_s8(const tt_concat_input *in, int32_t n_in, int32_t pixels,
                            int32_t out_zero, int8_t *out)
{
    int32_t out_c = 0;
    for (int32_t i = 0; i < n_in; ++i) out_c += in[i].c;
    int32_t c0 = 0;
    for (int32_t i = 0; i < n_in; ++i) {
        const tt_concat_input *x = &in[i];
        const int32_t c = x->c;
        const int8_t *src = x->data;
        int8_t *dst = out + c0;
        if (x->mult == ((int32_t)1 << 30) && x->shift == 1 && x->zero == out_zero) {
            for (int32_t p = 0; p < pixels; ++p, src += c, dst += out_c)
                memcpy(dst, src, (size_t)c);
        } else {
#if TT_DSP
            tt_rq q; /* |x - zero| <= 255: a left shift up to 23 keeps it an int32 */
            if (tt_rq_plan(&q, x->mult, x->shift, out_zero, 255, 23)) {
                for (int32_t p = 0; p < pixels; ++p, src += c, dst += out_c)
                    for (int32_t k = 0; k < c; ++k)
                        dst[k] = (int8_t)tt_ssat8(
                            tt_smmla((int32_t)((uint32_t)(src[k] - x->zero) << q.lsh), q.mult,
                                     q.off) >> q.t);
                c0 += c;
                continue;
            }
#endif
            for (int32_t p = 0; p < pixels; ++p, src += c, dst += out_c)
                for (int32_t k = 0; k < c; ++k)
                    dst[k] = tt_requant_s8(src[k] - x->zero, x->mult, x->shift, out_zero, -128, 127);
        }
        c0 += c;
    }
}
