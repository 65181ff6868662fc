/* Gradient scale choice for int32 accumulators (compiler.ref.grad_ops.requant_grad): the range
 * statistic (tt_grad_range_s32, or the caller's delayed one) and the requantization to
 * int8 with its float32 scale. */
#include "tt_grad_core.h"

size_t tt_requant_grad_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

/* out[i] = tt_rqg_apply(q, acc[i]) for i < n. With total = 31 - shift in [32, 62]
   (factors below 1/2) and s = total - 32, requant(a) = (a * m + 2^(total-1)) >> total is
   (hi32(a * m) + 2^(s-1)) >> s for s >= 1 (2^(total-1) is a multiple of 2^32) and
   hi32(a * m + 2^31) for s = 0: one 32x32 -> 64 multiply, an add and a shift, no 64-bit
   shift. Values are read before the output byte with the same index is written (out may
   alias acc). */
/* clamp(v, -qmax, qmax) */
TT_INLINE int32_t tt_clamp_q(int32_t v, int32_t qmax)
{
    v = v > qmax ? qmax : v;
    return v < -qmax ? -qmax : v;
}

/* clamp(v, -127, 127) */
TT_INLINE int32_t tt_clamp_q127(int32_t v)
{
    v = tt_sat8(v);
    return v < -127 ? -127 : v;
}

/* The loop of tt_rqg_apply_n for s >= 1; q127: qmax is 127. */
TT_INLINE void tt_rqg_loop(const int32_t *acc, int32_t n, int8_t *out, int32_t m, int32_t s,
                           int32_t qmax, const int q127)
{
    const int32_t rnd = (int32_t)1 << (s - 1);
    int32_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const int32_t a = acc[i], b = acc[i + 1];
        const int32_t v = tt_mulhi_add(a, m, rnd) >> s, w = tt_mulhi_add(b, m, rnd) >> s;
        out[i] = (int8_t)(q127 ? tt_clamp_q127(v) : tt_clamp_q(v, qmax));
        out[i + 1] = (int8_t)(q127 ? tt_clamp_q127(w) : tt_clamp_q(w, qmax));
    }
    if (i < n) {
        const int32_t v = tt_mulhi_add(acc[i], m, rnd) >> s;
        out[i] = (int8_t)(q127 ? tt_clamp_q127(v) : tt_clamp_q(v, qmax));
    }
}

#if TT_DSP_NATIVE
/* The q127 loop four values at a time: SMMLA, ASR, SSAT #8 each, the four bytes packed
   and clamped to -127 together (tt_pack4_c127), one STR. Returns the
   values done (a multiple of 4); the same order of reads and writes as tt_rqg_loop. */
static int32_t tt_rqg_loop127_x4(const int32_t *acc, int32_t n, int8_t *out, int32_t m,
                                 int32_t s)
{
    const int32_t rnd = (int32_t)1 << (s - 1);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t v0 = __ssat(tt_smmla(acc[i], m, rnd) >> s, 8);
        const int32_t v1 = __ssat(tt_smmla(acc[i + 1], m, rnd) >> s, 8);
        const int32_t v2 = __ssat(tt_smmla(acc[i + 2], m, rnd) >> s, 8);
        const int32_t v3 = __ssat(tt_smmla(acc[i + 3], m, rnd) >> s, 8);
        tt_st32(out + i, (int32_t)tt_pack4_c127(v0, v1, v2, v3));
    }
    return i;
}
#endif

/* out[i] = tt_rqg_apply(q, acc[i]) for i < n. With total = 31 - shift in [32, 62]
   (factors below 1/2) and s = total - 32, requant(a) = (a * m + 2^(total-1)) >> total is
   (hi32(a * m) + 2^(s-1)) >> s for s >= 1 (2^(total-1) is a multiple of 2^32: one SMMLA
   and a shift) and hi32(a * m + 2^31) for s = 0 (SMMULR). Values are read before the
   output byte with the same index is written (out may alias acc). */
static TT_GRAD_NOINLINE void tt_rqg_apply_n(const tt_rqg *q, const int32_t *acc, int32_t n,
                                           int8_t *out)
{
    const int32_t m = q->mult, total = 31 - q->shift, qmax = q->qmax;
    if (total < 32 || total > 62) {
        for (int32_t i = 0; i < n; ++i) out[i] = tt_rqg_apply(q, acc[i]);
        return;
    }
    const int32_t s = total - 32;
    if (s == 0) {
        for (int32_t i = 0; i < n; ++i) out[i] = (int8_t)tt_clamp_q(tt_smmulr(acc[i], m), qmax);
    } else if (qmax == 127) {
#if TT_DSP_NATIVE
        const int32_t done = tt_rqg_loop127_x4(acc, n, out, m, s);
        tt_rqg_loop(acc + done, n - done, out + done, m, s, qmax, 1);
#else
        tt_rqg_loop(acc, n, out, m, s, qmax, 1);
#endif
    } else {
        tt_rqg_loop(acc, n, out, m, s, qmax, 0);
    }
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
        tt_rqg_apply_n(&q, acc, n, out);
    }
    *out_scale = sc;
    return TT_OK;
}
