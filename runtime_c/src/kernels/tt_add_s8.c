/* Residual add (TFLite scheme, see compiler.ref.ops.add):
 *   a = requant((x1 - z1) << 20, m1, s1);  b = requant((x2 - z2) << 20, m2, s2)
 *   y = clamp(requant(a + b, mo, so) + zo, act_min, act_max)
 * With s1, s2 <= 0, |a|, |b| <= 255 * 2^20 < 2^28, so a + b fits in int32.
 *
 * DSP variant: each operand's term is a function of its int8 value alone, so for
 * n >= ADD_LUT_MIN elements both are tabulated first (2 x 256 words on the stack, already
 * multiplied by the output plan's 2^lsh: |a| * 2 < 2^29), and each element costs two
 * table loads, an add and the output requantization (on the target a hand-written loop,
 * 9 instructions per element with the full int8 range). */
#include "tt_kernels.h"
#include "tt_simd.h"

size_t tt_add_s8_scratch_bytes(const tt_add_params *p)
{
    (void)p;
    return 0;
}

#define TT_ADD_SCALE ((int32_t)1 << TT_ADD_LEFT_SHIFT)

#if TT_DSP
typedef struct {
    int32_t p1, c1, m1, o1, t1; /* operand 1: a = smmla(x * p1 + c1, m1, o1) >> t1 */
    int32_t p2, c2, m2, o2, t2;
    int32_t po, mo, oo, to; /* out = ssat8(smmla((a + b) * po, mo, oo) >> to) */
} add_plan;

TT_INLINE void add_loop(const add_plan *q, const int8_t *in1, const int8_t *in2,
                        int8_t *out, int32_t n, const int clamp, int32_t lo, int32_t hi)
{
    const int32_t p1 = q->p1, c1 = q->c1, m1 = q->m1, o1 = q->o1, t1 = q->t1;
    const int32_t p2 = q->p2, c2 = q->c2, m2 = q->m2, o2 = q->o2, t2 = q->t2;
    const int32_t po = q->po, mo = q->mo, oo = q->oo, to = q->to;
    for (int32_t i = 0; i < n; ++i) {
        int32_t a = tt_smmla(in1[i] * p1 + c1, m1, o1) >> t1;
        int32_t b = tt_smmla(in2[i] * p2 + c2, m2, o2) >> t2;
        int32_t v = tt_ssat8(tt_smmla((int32_t)((uint32_t)(a + b) * (uint32_t)po), mo, oo) >> to);
        if (clamp) {
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
        }
        out[i] = (int8_t)v;
    }
}

/* Elements from which the tables pay off (building them is ~5 instructions per entry). */
#define ADD_LUT_MIN 256

/* ta[u] (tb[u]) = po * term of operand 1 (2) for the int8 value with bit pattern u. */
TT_INLINE void add_tables(const add_plan *q, int32_t *ta, int32_t *tb)
{
    for (int32_t u = 0; u < 256; ++u) {
        const int32_t x = (int32_t)(int8_t)u;
        ta[u] = (int32_t)((uint32_t)(tt_smmla(x * q->p1 + q->c1, q->m1, q->o1) >> q->t1) *
                          (uint32_t)q->po);
        tb[u] = (int32_t)((uint32_t)(tt_smmla(x * q->p2 + q->c2, q->m2, q->o2) >> q->t2) *
                          (uint32_t)q->po);
    }
}

TT_INLINE void add_loop_lut(const add_plan *q, const int32_t *ta, const int32_t *tb,
                            const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n,
                            const int clamp, int32_t lo, int32_t hi)
{
    const int32_t mo = q->mo, oo = q->oo, to = q->to;
    const uint8_t *u1 = (const uint8_t *)in1, *u2 = (const uint8_t *)in2;
    int32_t i = 0;
#if TT_DSP_NATIVE
    if (!clamp && n >= 4) {
        /* 4 elements per turn, each read before it is written (in place is fine) */
        int8_t *o = out;
        const int8_t *oend = out + (n & ~3);
        int32_t x, y;
#define ADD_LUT_ONE                                   \
        "ldrb    %[x], [%[u1]], #1\n\t"              \
        "ldrb    %[y], [%[u2]], #1\n\t"              \
        "ldr     %[x], [%[ta], %[x], lsl #2]\n\t"     \
        "ldr     %[y], [%[tb], %[y], lsl #2]\n\t"     \
        "add     %[x], %[x], %[y]\n\t"               \
        "smmla   %[x], %[x], %[mo], %[oo]\n\t"        \
        "asr     %[x], %[x], %[to]\n\t"              \
        "ssat    %[x], #8, %[x]\n\t"                 \
        "strb    %[x], [%[o]], #1\n\t"
        __asm volatile("1:\n\t" ADD_LUT_ONE ADD_LUT_ONE ADD_LUT_ONE ADD_LUT_ONE
                       "cmp     %[o], %[oend]\n\t"
                       "bne     1b\n"
                       : [u1] "+r"(u1), [u2] "+r"(u2), [o] "+r"(o), [x] "=&r"(x), [y] "=&r"(y)
                       : [ta] "r"(ta), [tb] "r"(tb), [mo] "r"(mo), [oo] "r"(oo), [to] "r"(to),
                         [oend] "r"(oend)
                       : "cc", "memory");
#undef ADD_LUT_ONE
        i = n & ~3;
    }
#endif
    for (; i < n; ++i, ++u1, ++u2) { /* u1, u2: element i (the loop above advanced them) */
        int32_t v = tt_ssat8(tt_smmla(ta[*u1] + tb[*u2], mo, oo) >> to);
        if (clamp) {
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
        }
        out[i] = (int8_t)v;
    }
}

TT_KERNEL void tt_add_s8(const tt_add_params *p, const int8_t *in1, const int8_t *in2,
                         int8_t *out, int32_t n)
{
    const int32_t z1 = p->z1, z2 = p->z2, lo = p->act_min, hi = p->act_max;
    const int64_t in_bound = (int64_t)255 * TT_ADD_SCALE;
    tt_rq q1, q2, qo;
    if (!tt_rq_plan(&q1, p->m1, p->s1, 0, in_bound, 2) ||
        !tt_rq_plan(&q2, p->m2, p->s2, 0, in_bound, 2) ||
        !tt_rq_plan(&qo, p->mo, p->so, p->zo, (int64_t)1 << 29, 1)) {
        for (int32_t i = 0; i < n; ++i) {
            int32_t a = tt_requantize((in1[i] - z1) * TT_ADD_SCALE, p->m1, p->s1);
            int32_t b = tt_requantize((in2[i] - z2) * TT_ADD_SCALE, p->m2, p->s2);
            out[i] = tt_requant_s8(a + b, p->mo, p->so, p->zo, lo, hi);
        }
        return;
    }
    /* (x - z) << (20 + lsh) fits: |x - z| <= 255, 20 + lsh <= 22; computed as
       x * 2^sh - z * 2^sh (one multiply-accumulate) */
    const int32_t sh1 = TT_ADD_LEFT_SHIFT + q1.lsh, sh2 = TT_ADD_LEFT_SHIFT + q2.lsh;
    const add_plan ap = {(int32_t)1 << sh1, (int32_t)((uint32_t)-z1 << sh1), q1.mult, q1.off,
                         q1.t, (int32_t)1 << sh2, (int32_t)((uint32_t)-z2 << sh2), q2.mult,
                         q2.off, q2.t, (int32_t)1 << qo.lsh, qo.mult, qo.off, qo.t};
    const int clamp = !(lo <= -128 && hi >= 127);
    if (n >= ADD_LUT_MIN) {
        int32_t ta[256], tb[256];
        add_tables(&ap, ta, tb);
        if (clamp) add_loop_lut(&ap, ta, tb, in1, in2, out, n, 1, lo, hi);
        else add_loop_lut(&ap, ta, tb, in1, in2, out, n, 0, lo, hi);
        return;
    }
    if (!clamp) add_loop(&ap, in1, in2, out, n, 0, lo, hi);
    else add_loop(&ap, in1, in2, out, n, 1, lo, hi);
}
#else
TT_KERNEL void tt_add_s8(const tt_add_params *p, const int8_t *in1, const int8_t *in2,
                         int8_t *out, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        int32_t a = tt_requantize((in1[i] - p->z1) * TT_ADD_SCALE, p->m1, p->s1);
        int32_t b = tt_requantize((in2[i] - p->z2) * TT_ADD_SCALE, p->m2, p->s2);
        out[i] = tt_requant_s8(a + b, p->mo, p->so, p->zo, p->act_min, p->act_max);
    }
}
#endif
