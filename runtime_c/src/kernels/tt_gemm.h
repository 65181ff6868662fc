/* Private to runtime_c/src/kernels: the DSP core shared by tt_conv2d_s8 and
 * tt_conv2d_1x1_s8.
 *
 * Both kernels are a GEMM out[pixel][o] = bias[o] + sum_k x[pixel][k] w[o][k]: the
 * pixels' k values (input channels, or an im2col row) are widened to int16 with the
 * zero point subtracted, two pixels interleaved per group of 4 k:
 *     xbuf = { p0(k0,k2), p0(k1,k3), p1(k0,k2), p1(k1,k3), p0(k4,k6), ... }
 * (the lane order SXTB16 / SXTAB16 produce), zero lanes past k. A chunk of output
 * channels is prepared once per call (tt_pw_prepare): per channel pair one block of
 * [bias0, bias1 | weights widened in the same layout | mult, off, t of each channel],
 * t == 0 marking a channel without a fast plan (exact 64-bit path, tt_simd.h). Then each
 * pixel pair runs over the chunk (tt_pw_pixel_pair): on the target, hand-written loops
 * with 2 LDM + 8 SMLAD per 16 MACs (k <= 16: fully unrolled) and a 4-output
 * SMMLA/ASR/SSAT epilogue; C elsewhere.
 */
#ifndef TT_GEMM_H
#define TT_GEMM_H
#include "tt_kernels.h"
#include "tt_simd.h"

#if TT_DSP

typedef struct tt_chrec {
    int32_t bias; /* scaled by 2^lsh when the weights are */
    int32_t mult, off, t;
} tt_chrec;

/* Record of a channel (bias scaled by 2^lsh of its plan; the weights must be scaled by
   tt_chrec_lsh()). */
TT_INLINE void tt_chrec_make(tt_chrec *r, int32_t bias, int32_t mult, int32_t shift,
                             int32_t zero, const int8_t *w, int32_t k, int32_t xmax,
                             int32_t max_lsh)
{
    tt_rq q;
    if (mult >= 0 && shift <= -2 && shift >= -24 && k <= 16384) {
        /* the usual case, as tt_rq_plan_w's first attempt in 32-bit arithmetic: lsh 0,
           bound = |bias| + k * xmax * 128 <= INT32_MAX, t = -1 - shift <= 23 */
        const uint32_t b = bias < 0 ? 0u - (uint32_t)bias : (uint32_t)bias;
        const uint32_t kx = (uint32_t)k * (uint32_t)xmax * 128u;
        if (b <= (uint32_t)INT32_MAX - kx) {
            const uint32_t hi = (uint32_t)(((uint64_t)(b + kx) * (uint32_t)mult) >> 32) + 1u;
            int32_t t = -1 - shift;
            while (t > 1 && hi < (1u << (t - 2))) --t;
            const int32_t off = (1 << (t - 1)) + zero * (1 << t);
            if ((uint32_t)(off < 0 ? -off : off) + hi <= (uint32_t)INT32_MAX) {
                r->bias = bias;
                r->mult = mult;
                r->off = off;
                r->t = t;
                return;
            }
        }
    }
    if (tt_rq_plan_w(&q, bias, mult, shift, zero, w, k, xmax, max_lsh)) {
        r->bias = (int32_t)((uint32_t)bias << q.lsh);
        r->mult = q.mult;
        r->off = q.off;
        r->t = q.t;
    } else {
        r->bias = bias;
        r->mult = mult;
        r->off = shift; /* slow path: keep (mult, shift) */
        r->t = 0;
    }
}

/* lsh of a record made by tt_chrec_make with max_lsh > 0 (bias scaled): recomputed from
   the shift; 0 for slow and for constant (mult 0) channels. */
TT_INLINE int32_t tt_chrec_lsh(const tt_chrec *r, int32_t shift)
{
    return (r->t && r->mult && shift >= -1) ? shift + 2 : 0;
}


/* Widen 1 <= n <= 4 values of v (int8) minus zero into the (e, o) word pair, 0 past n. */
TT_INLINE void tt_widen_tail(const int8_t *v, int32_t n, int32_t zero, int32_t *e, int32_t *o)
{
    const int32_t a0 = v[0] - zero, a1 = n > 1 ? v[1] - zero : 0;
    const int32_t a2 = n > 2 ? v[2] - zero : 0, a3 = n > 3 ? v[3] - zero : 0;
    *e = tt_pack16(a0, a2);
    *o = tt_pack16(a1, a3);
}

#if TT_DSP_NATIVE
/* The groups of 4 values of tt_widen_pair from xa up to xa_end (> xa): per group two
   LDR, four SXTAB16 and one STM of the 4 words. */
__attribute__((naked, noinline, unused)) static void tt_widen_groups(
    const int8_t *xa, const int8_t *xb, int32_t *xbuf, const int8_t *xa_end, int32_t zoff)
{
    (void)xa; (void)xb; (void)xbuf; (void)xa_end; (void)zoff;
    __asm volatile(
        "ldr     r12, [sp]\n\t"
        "push    {r4, r5, r6, r7}\n"
        "1:\n\t"
        "ldr     r4, [r0], #4\n\t"
        "ldr     r6, [r1], #4\n\t"
        "sxtab16 r5, r12, r4, ror #8\n\t"
        "sxtab16 r4, r12, r4\n\t"
        "sxtab16 r7, r12, r6, ror #8\n\t"
        "sxtab16 r6, r12, r6\n\t"
        "stm     r2!, {r4, r5, r6, r7}\n\t"
        "cmp     r0, r3\n\t"
        "bne     1b\n\t"
        "pop     {r4, r5, r6, r7}\n\t"
        "bx      lr\n");
}
#endif

/* Interleave two pixels' k int8 values (minus zero) into xbuf (k4 = k rounded up to 4
   words). */
TT_INLINE void tt_widen_pair(const int8_t *xa, const int8_t *xb, int32_t k, int32_t zero,
                             int32_t *xbuf)
{
    const int32_t zoff = tt_pack16(-zero, -zero);
    int32_t i = 0;
#if TT_DSP_NATIVE
    if (k >= 4) {
        i = k & ~3;
        tt_widen_groups(xa, xb, xbuf, xa + i, zoff);
        xbuf += i;
    }
#endif
    for (; i + 4 <= k; i += 4, xbuf += 4) {
        int32_t va = tt_ld32(xa + i), vb = tt_ld32(xb + i);
        xbuf[0] = tt_sxtab16(zoff, va);
        xbuf[1] = tt_sxtab16_ror8(zoff, va);
        xbuf[2] = tt_sxtab16(zoff, vb);
        xbuf[3] = tt_sxtab16_ror8(zoff, vb);
    }
    if (i < k) {
        tt_widen_tail(xa + i, k - i, zero, &xbuf[0], &xbuf[1]);
        tt_widen_tail(xb + i, k - i, zero, &xbuf[2], &xbuf[3]);
    }
}

/* a0j += sum over n groups of 4 k of x(pixel 0) . w(channel j), a1j likewise for pixel
   1: xp walks the interleaved pixel pair (4 words per group), wp the interleaved channel
   pair (same layout). n >= 1. 12 instructions per 16 MACs (+ 2 per 2 groups). */
#if defined(__GNUC__)
#define TT_OUTLINE static __attribute__((noinline, unused))
#else
#define TT_OUTLINE static
#endif

/* Out of line on purpose: the 13-register asm needs a fresh register context (inlined
   into a busy loop, the compiler may have too few free registers to allocate it). */
TT_OUTLINE void tt_mac_2x2(const int32_t *xp, const int32_t *wp, int32_t n, int32_t *a00,
                           int32_t *a01, int32_t *a10, int32_t *a11)
{
#if TT_DSP_NATIVE
    int32_t b00 = *a00, b01 = *a01, b10 = *a10, b11 = *a11;
    int32_t x0e, x0o, x1e, x1o, we, wo;
    __asm volatile(
        "tst     %[n], #1\n\t"
        "beq     1f\n\t"
        "adds    %[n], %[n], #1\n\t"
        "b       2f\n"
        "1:\n\t"
        "ldrd    %[x0e], %[x0o], [%[xp]], #8\n\t"
        "ldrd    %[x1e], %[x1o], [%[xp]], #8\n\t"
        "ldrd    %[we], %[wo], [%[wp]], #8\n\t"
        "smlad   %[b00], %[x0e], %[we], %[b00]\n\t"
        "smlad   %[b00], %[x0o], %[wo], %[b00]\n\t"
        "smlad   %[b10], %[x1e], %[we], %[b10]\n\t"
        "smlad   %[b10], %[x1o], %[wo], %[b10]\n\t"
        "ldrd    %[we], %[wo], [%[wp]], #8\n\t"
        "smlad   %[b01], %[x0e], %[we], %[b01]\n\t"
        "smlad   %[b01], %[x0o], %[wo], %[b01]\n\t"
        "smlad   %[b11], %[x1e], %[we], %[b11]\n\t"
        "smlad   %[b11], %[x1o], %[wo], %[b11]\n"
        "2:\n\t"
        "ldrd    %[x0e], %[x0o], [%[xp]], #8\n\t"
        "ldrd    %[x1e], %[x1o], [%[xp]], #8\n\t"
        "ldrd    %[we], %[wo], [%[wp]], #8\n\t"
        "smlad   %[b00], %[x0e], %[we], %[b00]\n\t"
        "smlad   %[b00], %[x0o], %[wo], %[b00]\n\t"
        "smlad   %[b10], %[x1e], %[we], %[b10]\n\t"
        "smlad   %[b10], %[x1o], %[wo], %[b10]\n\t"
        "ldrd    %[we], %[wo], [%[wp]], #8\n\t"
        "smlad   %[b01], %[x0e], %[we], %[b01]\n\t"
        "smlad   %[b01], %[x0o], %[wo], %[b01]\n\t"
        "smlad   %[b11], %[x1e], %[we], %[b11]\n\t"
        "smlad   %[b11], %[x1o], %[wo], %[b11]\n\t"
        "subs    %[n], %[n], #2\n\t"
        "bne     1b\n"
        : [b00] "+r"(b00), [b01] "+r"(b01), [b10] "+r"(b10), [b11] "+r"(b11),
          [xp] "+r"(xp), [wp] "+r"(wp), [n] "+r"(n), [x0e] "=&r"(x0e), [x0o] "=&r"(x0o),
          [x1e] "=&r"(x1e), [x1o] "=&r"(x1o), [we] "=&r"(we), [wo] "=&r"(wo)
        : "m"(*(const int32_t(*)[])xp), "m"(*(const int32_t(*)[])wp)
        : "cc");
    *a00 = b00;
    *a01 = b01;
    *a10 = b10;
    *a11 = b11;
#else
    int32_t b00 = *a00, b01 = *a01, b10 = *a10, b11 = *a11;
    for (; n > 0; --n, xp += 4, wp += 4) {
        b00 = tt_smlad(xp[1], wp[1], tt_smlad(xp[0], wp[0], b00));
        b10 = tt_smlad(xp[3], wp[1], tt_smlad(xp[2], wp[0], b10));
        b01 = tt_smlad(xp[1], wp[3], tt_smlad(xp[0], wp[2], b01));
        b11 = tt_smlad(xp[3], wp[3], tt_smlad(xp[2], wp[2], b11));
    }
    *a00 = b00;
    *a01 = b01;
    *a10 = b10;
    *a11 = b11;
#endif
}

/* Exact slow path for one output. */
TT_INLINE int8_t tt_chrec_slow(const tt_chrec *r, int32_t acc, int32_t zero, int32_t lo,
                               int32_t hi)
{
    return tt_requant_s8(acc, r->mult, r->off, zero, lo, hi);
}

/* Fast path for one output: requantize + saturate (+ act clamp). */
#define TT_FAST_OUT(acc, r) (tt_ssat8(tt_smmla((acc), (r)->mult, (r)->off) >> (r)->t))

TT_INLINE int32_t tt_clamp_lohi(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Store the 2 pixels x 2 channels block (channel 1 skipped when `single`). */
TT_INLINE void tt_store_block(int8_t *o0, int8_t *o1, const tt_chrec *r, int32_t a00,
                              int32_t a01, int32_t a10, int32_t a11, int32_t zero, int clamp,
                              int32_t lo, int32_t hi, const int single)
{
    if (TT_LIKELY(r[0].t && (single || r[1].t))) {
        int32_t v00 = TT_FAST_OUT(a00, &r[0]), v10 = TT_FAST_OUT(a10, &r[0]);
        int32_t v01 = 0, v11 = 0;
        if (!single) {
            v01 = TT_FAST_OUT(a01, &r[1]);
            v11 = TT_FAST_OUT(a11, &r[1]);
        }
        if (clamp) {
            v00 = tt_clamp_lohi(v00, lo, hi);
            v10 = tt_clamp_lohi(v10, lo, hi);
            if (!single) {
                v01 = tt_clamp_lohi(v01, lo, hi);
                v11 = tt_clamp_lohi(v11, lo, hi);
            }
        }
        o0[0] = (int8_t)v00;
        o1[0] = (int8_t)v10;
        if (!single) {
            o0[1] = (int8_t)v01;
            o1[1] = (int8_t)v11;
        }
        return;
    }
    o0[0] = r[0].t ? (int8_t)tt_clamp_lohi(TT_FAST_OUT(a00, &r[0]), lo, hi)
                   : tt_chrec_slow(&r[0], a00, zero, lo, hi);
    o1[0] = r[0].t ? (int8_t)tt_clamp_lohi(TT_FAST_OUT(a10, &r[0]), lo, hi)
                   : tt_chrec_slow(&r[0], a10, zero, lo, hi);
    if (!single) {
        o0[1] = r[1].t ? (int8_t)tt_clamp_lohi(TT_FAST_OUT(a01, &r[1]), lo, hi)
                       : tt_chrec_slow(&r[1], a01, zero, lo, hi);
        o1[1] = r[1].t ? (int8_t)tt_clamp_lohi(TT_FAST_OUT(a11, &r[1]), lo, hi)
                       : tt_chrec_slow(&r[1], a11, zero, lo, hi);
    }
}


/* ---- pointwise core shared by tt_conv2d_1x1_s8 and tt_conv2d_s8 ------------------- */
#if defined(__GNUC__)
#define TT_STATIC static __attribute__((unused))
#else
#define TT_STATIC static
#endif

/* Widen channel weights (scaled by 2^lsh) into slot s (0/1) of a pair's weight words. */
#if TT_DSP_NATIVE
/* The whole groups of tt_widen_weights with lsh 0: per 4 weights LDR, two SXTB16 and a
   post-indexed STRD into the slot (blk: its first word; wend > w). */
__attribute__((naked, noinline, unused)) static void tt_widen_w_groups(const int8_t *w,
                                                                       int32_t *blk,
                                                                       const int8_t *wend)
{
    (void)w; (void)blk; (void)wend;
    __asm volatile(
        "1:\n\t"
        "ldr     r3, [r0], #4\n\t"
        "sxtb16  r12, r3\n\t"
        "sxtb16  r3, r3, ror #8\n\t"
        "strd    r12, r3, [r1], #16\n\t"
        "cmp     r0, r2\n\t"
        "bne     1b\n\t"
        "bx      lr\n");
}
#endif

TT_STATIC void tt_widen_weights(const int8_t *w, int32_t k, int32_t lsh, int32_t *blk, int32_t s)
{
    if (lsh == 0) {
        int32_t i = 0;
        blk += 2 * s;
#if TT_DSP_NATIVE
        if (k >= 4) {
            i = k & ~3;
            tt_widen_w_groups(w, blk, w + i);
            blk += i;
        }
#endif
        for (; i + 4 <= k; i += 4, blk += 4) {
            int32_t v = tt_ld32(w + i);
            blk[0] = tt_sxtb16(v);
            blk[1] = tt_sxtb16_ror8(v);
        }
        if (i < k) tt_widen_tail(w + i, k - i, 0, &blk[0], &blk[1]);
        return;
    }
    for (int32_t i = 0; i < k; i += 4, blk += 4) {
        int32_t e, o;
        if (i + 4 <= k) {
            int32_t v = tt_ld32(w + i);
            e = tt_sxtb16(v);
            o = tt_sxtb16_ror8(v);
        } else {
            tt_widen_tail(w + i, k - i, 0, &e, &o);
        }
        blk[2 * s] = tt_pack16((int32_t)((uint32_t)(int16_t)e << lsh),
                               (int32_t)((uint32_t)(e >> 16) << lsh));
        blk[2 * s + 1] = tt_pack16((int32_t)((uint32_t)(int16_t)o << lsh),
                                   (int32_t)((uint32_t)(o >> 16) << lsh));
    }
}

#if TT_DSP_NATIVE
/* Whole channel-pair loop for one pixel pair (every channel on the fast path, full
 * int8 range), with fixed registers so that one LDM loads a group's 4 input words
 * (r0-r3) and one LDM a channel pair's 4 weight words (r4-r7): per group of 4 input
 * channels 2 LDM + 8 SMLAD; per channel pair a 6-word LDM of the requantization
 * records (SMMLA, ASR, SSAT per output) and post-indexed stores. Accumulators r8-r11,
 * input pointer r12, weight pointer lr. Frame (sp): xb, xend, wend, o0, o1, loop
 * entry. k4 <= 16: the groups unrolled (ng = 1: 34 instructions per 16 MACs,
 * ng = 4: 64 per 64); any k4: four groups per loop turn. */
typedef struct {
    const int32_t *xb, *xend, *wp, *wend;
    int8_t *o0;
    int32_t d1;
} pw_big_ctx;

/* one group: 4 input words (pixel 0 e/o, pixel 1 e/o), 4 weight words (channel 0
   e/o, channel 1 e/o) */
#define PW_LDM_GROUP                       \
    "ldm     r12!, {r0, r1, r2, r3}\n\t"   \
    "ldm     lr!, {r4, r5, r6, r7}\n\t"    \
    "smlad   r8, r0, r4, r8\n\t"           \
    "smlad   r8, r1, r5, r8\n\t"           \
    "smlad   r10, r2, r4, r10\n\t"         \
    "smlad   r10, r3, r5, r10\n\t"         \
    "smlad   r9, r0, r6, r9\n\t"           \
    "smlad   r9, r1, r7, r9\n\t"           \
    "smlad   r11, r2, r6, r11\n\t"         \
    "smlad   r11, r3, r7, r11\n\t"

/* the first group, accumulating onto the biases in r8 (channel 0) and r9 (channel 1):
   pixel 1's accumulators r10, r11 start from them, so no copies are needed */
#define PW_LDM_FIRST                       \
    "ldm     r12!, {r0, r1, r2, r3}\n\t"   \
    "ldm     lr!, {r4, r5, r6, r7}\n\t"    \
    "smlad   r10, r2, r4, r8\n\t"          \
    "smlad   r11, r2, r6, r9\n\t"          \
    "smlad   r8, r0, r4, r8\n\t"           \
    "smlad   r9, r0, r6, r9\n\t"           \
    "smlad   r8, r1, r5, r8\n\t"           \
    "smlad   r10, r3, r5, r10\n\t"         \
    "smlad   r9, r1, r7, r9\n\t"           \
    "smlad   r11, r3, r7, r11\n\t"

/* Any number ng >= 2 of groups: the first one (PW_LDM_FIRST), then four per loop turn
   (the loop end is on the stack), entered (LDR PC from the frame's slot 20) at the
   group that leaves a multiple of 4 of the other ng - 1. A group is 40 bytes of code
   (two 32-bit LDM, eight SMLAD), so the entry is the loop start +
   40 * ((4 - (ng - 1) % 4) % 4), computed once per call. */
#define PW_LOOP_ENTRY                                                   \
    "ldrd    r1, r2, [sp, #0]\n\t"                                     \
    "sub     r2, r1, r2\n\t"      /* -16 * ng */                         \
    "add     r2, r2, #16\n\t"     /* -16 * (ng - 1) */                   \
    "and     r2, r2, #48\n\t"     /* 16 * ((4 - (ng - 1) % 4) % 4) */    \
    "add     r2, r2, r2, lsl #2\n\t"                                    \
    "lsr     r2, r2, #1\n\t"                                            \
    "adr     r1, 2f\n\t"                                                \
    "add     r1, r1, r2\n\t"                                            \
    "orr     r1, r1, #1\n\t"      /* Thumb */                            \
    "str     r1, [sp, #20]\n\t"
#define PW_LOOP_GROUPS                                                  \
    PW_LDM_FIRST                                                        \
    "ldr     pc, [sp, #20]\n"                                           \
    ".p2align 2\n"                                                      \
    "2:\n\t" PW_LDM_GROUP PW_LDM_GROUP PW_LDM_GROUP PW_LDM_GROUP         \
    "ldr     r0, [sp, #4]\n\t"                                         \
    "cmp     r12, r0\n\t"                                              \
    "bne     2b\n\t"

/* after the groups: requantize the channel pair's two pixels (records loaded with one
   LDM), store them, and loop while weight blocks remain */
#define PW_PAIR_EPILOGUE                                                \
    "ldm     lr!, {r0, r1, r2, r3, r4, r5}\n\t"                 \
    "smmla   r8, r8, r0, r1\n\t"                                \
    "smmla   r10, r10, r0, r1\n\t"                              \
    "smmla   r9, r9, r3, r4\n\t"                                \
    "smmla   r11, r11, r3, r4\n\t"                              \
    "asr     r8, r8, r2\n\t"                                    \
    "asr     r10, r10, r2\n\t"                                  \
    "asr     r9, r9, r5\n\t"                                    \
    "asr     r11, r11, r5\n\t"                                  \
    "ssat    r8, #8, r8\n\t"                                    \
    "ssat    r10, #8, r10\n\t"                                  \
    "ssat    r9, #8, r9\n\t"                                    \
    "ssat    r11, #8, r11\n\t"                                  \
    "ldrd    r6, r7, [sp, #12]\n\t"                             \
    "strb    r9, [r6, #1]\n\t"                                  \
    "strb    r8, [r6], #2\n\t"                                  \
    "strb    r11, [r7, #1]\n\t"                                 \
    "strb    r10, [r7], #2\n\t"                                 \
    "strd    r6, r7, [sp, #12]\n\t"                             \
    "ldr     r0, [sp, #8]\n\t"                                  \
    "cmp     lr, r0\n\t"                                        \
    "bne     1b\n\t"

#define PW_LDM_FN(name, ENTRY, GROUPS)                                                \
    __attribute__((naked, noinline, unused)) static void name(const pw_big_ctx *cx) \
    {                                                                           \
        (void)cx;                                                               \
        __asm volatile(                                                         \
            "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                \
            "sub     sp, sp, #24\n\t"                                           \
            "ldr     r1, [r0, #0]\n\t"  /* xb */                                \
            "ldr     r2, [r0, #4]\n\t"  /* xend */                              \
            "ldr     r3, [r0, #12]\n\t" /* wend */                              \
            "ldr     r4, [r0, #16]\n\t" /* o0 */                                \
            "ldr     r5, [r0, #20]\n\t" /* d1 */                                \
            "ldr     lr, [r0, #8]\n\t"  /* wp */                                \
            "add     r5, r5, r4\n\t"    /* o1 */                                \
            "stm     sp, {r1, r2, r3, r4, r5, r6}\n\t"                          \
            ENTRY                                                               \
            "1:\n\t"                                                            \
            "ldr     r12, [sp, #0]\n\t"                                         \
            "ldrd    r8, r9, [lr], #8\n\t"                                      \
            GROUPS                                                              \
            PW_PAIR_EPILOGUE                                                    \
            "add     sp, sp, #24\n\t"                                           \
            "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n");                \
    }

/* An assembly routine FN in five variants: `name` for any number of groups of 4 input
   words (PW_LOOP_GROUPS), name1..name4 for k4 = 4, 8, 12, 16 (the groups unrolled), and
   name_run(cx, k4), which calls the one for k4. */
#define PW_VARIANTS(FN, name, ctx_t)                                            \
    FN(name, PW_LOOP_ENTRY, PW_LOOP_GROUPS)                                     \
    FN(name##1, "", PW_LDM_FIRST)                                               \
    FN(name##2, "", PW_LDM_FIRST PW_LDM_GROUP)                                  \
    FN(name##3, "", PW_LDM_FIRST PW_LDM_GROUP PW_LDM_GROUP)                     \
    FN(name##4, "", PW_LDM_FIRST PW_LDM_GROUP PW_LDM_GROUP PW_LDM_GROUP)        \
    TT_INLINE void name##_run(const ctx_t *cx, int32_t k4)                      \
    {                                                                           \
        switch (k4) {                                                           \
        case 4: name##1(cx); break;                                             \
        case 8: name##2(cx); break;                                             \
        case 12: name##3(cx); break;                                            \
        case 16: name##4(cx); break;                                            \
        default: name(cx);                                                      \
        }                                                                       \
    }

PW_VARIANTS(PW_LDM_FN, pw_pairs_ldm, pw_big_ctx)
#undef PW_LDM_FN

/* Pixel pairs of contiguous pixels (stride 1, in_c a multiple of 4) through all n
 * prepared channels (n even): per pair the two pixels are widened into xb (as
 * tt_widen_pair) and the channel-pair loop above runs; outputs then skip oskip bytes
 * (2 * co - n). The frame is the context itself, copied to the stack. */
typedef struct {
    const int32_t *xb, *xend, *wend; /* as pw_big_ctx */
    int8_t *o0, *o1;
    int32_t entry;                   /* set by the function */
    const int8_t *x, *xstop;         /* first pixel; x after the last pair */
    int32_t ci, zoff;                /* bytes per pixel; tt_pack16(-zero, -zero) */
    const int32_t *wp;               /* first channel pair's block */
    int32_t oskip;
} pw_rows_ctx;

#define PW_ROWS_FN(name, ENTRY, GROUPS)                                                \
    __attribute__((naked, noinline, unused)) static void name(const pw_rows_ctx *cx) \
    {                                                                           \
        (void)cx;                                                               \
        __asm volatile(                                                         \
            "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                \
            "sub     sp, sp, #48\n\t"                                           \
            "ldm     r0, {r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12}\n\t" \
            "stm     sp, {r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12}\n\t" \
            ENTRY                                                               \
            "4:\n\t"                                                            \
            "ldr     r0, [sp, #24]\n\t"  /* x */                                \
            "ldr     r3, [sp, #32]\n\t"  /* ci */                               \
            "ldr     r12, [sp, #36]\n\t" /* zoff */                             \
            "ldr     r2, [sp, #0]\n\t"   /* xb */                               \
            "add     r1, r0, r3\n\t"                                            \
            "add     r4, r1, r3\n\t"                                            \
            "str     r4, [sp, #24]\n\t"                                         \
            "mov     r3, r1\n"                                                  \
            "5:\n\t"                                                            \
            "ldr     r4, [r0], #4\n\t"                                          \
            "ldr     r6, [r1], #4\n\t"                                          \
            "sxtab16 r5, r12, r4, ror #8\n\t"                                   \
            "sxtab16 r4, r12, r4\n\t"                                           \
            "sxtab16 r7, r12, r6, ror #8\n\t"                                   \
            "sxtab16 r6, r12, r6\n\t"                                           \
            "stm     r2!, {r4, r5, r6, r7}\n\t"                                 \
            "cmp     r0, r3\n\t"                                                \
            "bne     5b\n\t"                                                    \
            "ldr     lr, [sp, #40]\n"    /* wp */                               \
            "1:\n\t"                                                            \
            "ldr     r12, [sp, #0]\n\t"                                         \
            "ldrd    r8, r9, [lr], #8\n\t"                                      \
            GROUPS                                                              \
            PW_PAIR_EPILOGUE                                                    \
            "ldr     r0, [sp, #44]\n\t"  /* oskip */                            \
            "add     r6, r6, r0\n\t"                                            \
            "add     r7, r7, r0\n\t"                                            \
            "strd    r6, r7, [sp, #12]\n\t"                                     \
            "ldrd    r0, r1, [sp, #24]\n\t" /* x, xstop */                      \
            "cmp     r0, r1\n\t"                                                \
            "bne     4b\n\t"                                                    \
            "add     sp, sp, #48\n\t"                                           \
            "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n");                \
    }

PW_VARIANTS(PW_ROWS_FN, pw_rows_ldm, pw_rows_ctx)

/* The pixel-pair loop above for a 3x3 conv over 3 input channels (the usual first conv;
 * tt_conv2d_s8.c), k4 = 28: each interior pixel's im2col row is widened straight from
 * the input (as widen_333_pair there: 7 groups of 4 taps, one 4-byte load per pixel and
 * group, unaligned where needed; the two groups that straddle kernel rows merge two
 * loads, the last one shifts out its 4th byte), then the 7 groups unrolled. The context
 * is pw_rows_ctx with x = the first pair's first tap, ci = the step between pixels
 * (stride * 3) and entry = the input row's bytes. 70 instructions per pixel pair, then
 * 94 per channel pair. */
#define W333_SX                                    \
    "sxtab16 r5, r12, r4, ror #8\n\t"              \
    "sxtab16 r4, r12, r4\n\t"                      \
    "sxtab16 r7, r12, r6, ror #8\n\t"              \
    "sxtab16 r6, r12, r6\n\t"                      \
    "stm     r2!, {r4, r5, r6, r7}\n\t"
__attribute__((naked, noinline, unused)) static void pw_rows333_ldm(const pw_rows_ctx *cx)
{
    (void)cx;
    __asm volatile(
        "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub     sp, sp, #48\n\t"
        "ldm     r0, {r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12}\n\t"
        "stm     sp, {r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12}\n"
        "4:\n\t"
        "ldr     r0, [sp, #24]\n\t"  /* pixel 0's first tap */
        "ldr     r3, [sp, #32]\n\t"  /* step between pixels */
        "ldr     r12, [sp, #36]\n\t" /* zoff */
        "ldr     r2, [sp, #0]\n\t"   /* xb */
        "add     r1, r0, r3\n\t"
        "add     r4, r1, r3\n\t"
        "str     r4, [sp, #24]\n\t"
        "ldr     r3, [sp, #20]\n\t"  /* input row bytes */
        "ldr     r4, [r0]\n\t"       /* taps 0-3 */
        "ldr     r6, [r1]\n\t"
        W333_SX
        "ldr     r4, [r0, #4]\n\t"   /* taps 4-7 */
        "ldr     r6, [r1, #4]\n\t"
        W333_SX
        "ldrb    r8, [r0, #8]\n\t"   /* tap 8, kernel row 1's taps 0-2 */
        "ldrb    r9, [r1, #8]\n\t"
        "add     r0, r0, r3\n\t"
        "add     r1, r1, r3\n\t"
        "ldr     r4, [r0, #-1]\n\t"
        "ldr     r6, [r1, #-1]\n\t"
        "bfi     r4, r8, #0, #8\n\t"
        "bfi     r6, r9, #0, #8\n\t"
        W333_SX
        "ldr     r4, [r0, #3]\n\t"   /* row 1's taps 3-6 */
        "ldr     r6, [r1, #3]\n\t"
        W333_SX
        "ldr     r4, [r0, #7]\n\t"   /* row 1's taps 7-8, row 2's taps 0-1 */
        "ldr     r6, [r1, #7]\n\t"
        "add     r0, r0, r3\n\t"
        "add     r1, r1, r3\n\t"
        "ldr     r8, [r0, #-2]\n\t"
        "ldr     r9, [r1, #-2]\n\t"
        "pkhbt   r4, r4, r8\n\t"
        "pkhbt   r6, r6, r9\n\t"
        W333_SX
        "ldr     r4, [r0, #2]\n\t"   /* row 2's taps 2-5 */
        "ldr     r6, [r1, #2]\n\t"
        W333_SX
        "ldr     r4, [r0, #5]\n\t"   /* row 2's taps 6-8, then 0 */
        "ldr     r6, [r1, #5]\n\t"
        "lsr     r4, r4, #8\n\t"
        "lsr     r6, r6, #8\n\t"
        W333_SX
        "ldr     lr, [sp, #40]\n"    /* wp */
        "1:\n\t"
        "ldr     r12, [sp, #0]\n\t"
        "ldrd    r8, r9, [lr], #8\n\t"
        PW_LDM_FIRST PW_LDM_GROUP PW_LDM_GROUP PW_LDM_GROUP PW_LDM_GROUP PW_LDM_GROUP
        PW_LDM_GROUP
        PW_PAIR_EPILOGUE
        "ldr     r0, [sp, #44]\n\t"  /* oskip */
        "add     r6, r6, r0\n\t"
        "add     r7, r7, r0\n\t"
        "strd    r6, r7, [sp, #12]\n\t"
        "ldrd    r0, r1, [sp, #24]\n\t" /* x, xstop */
        "cmp     r0, r1\n\t"
        "bne     4b\n\t"
        "add     sp, sp, #48\n\t"
        "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n");
}
#undef W333_SX
#undef PW_VARIANTS
#undef PW_LOOP_ENTRY
#undef PW_LOOP_GROUPS
#undef PW_LDM_FIRST
#undef PW_ROWS_FN
#undef PW_LDM_GROUP
#endif

/* Block of an output channel pair in scratch (words): bias0, bias1, k4 widened weight
   words (tt_gemm.h layout), then mult, off, t of each channel (t = 0: exact slow path,
   mult/off then hold the original mult/shift). */
#define PW_BLOCK_WORDS(k4) (8 + (k4))

TT_INLINE void pw_block_recs(const int32_t *blk, int32_t k4, tt_chrec r[2])
{
    const int32_t *q = blk + 2 + k4;
    r[0].bias = blk[0];
    r[1].bias = blk[1];
    r[0].mult = q[0];
    r[0].off = q[1];
    r[0].t = q[2];
    r[1].mult = q[3];
    r[1].off = q[4];
    r[1].t = q[5];
}


/* Prepare output channels [c0, c0 + n) (n <= chunk; row o of the weights at
   tt_w_row_k(w, w_tail, w_split, o, k), i.e. w + o * k when not split): one block per
   channel pair (a padding channel completes an odd n; it is never stored). rq: the
   layer's precomputed records (tt_kernels.h), or NULL. Returns 1 when every channel has
   a fast plan and no clamp is needed. */
TT_STATIC int tt_pw_prepare(const int8_t *w, const int8_t *w_tail, int32_t w_split,
                            int32_t k, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int32_t in_zero,
                            int32_t out_zero, int32_t c0, int32_t n, int32_t co, int clamp,
                            const int16_t *rq, int32_t *blocks)
{
    const int32_t k4 = (k + 3) & ~3, bw = PW_BLOCK_WORDS(k4);
    int simple = !clamp;
    if (rq != NULL && w_tail == NULL) {
        /* every channel has a plan without pre-scaled weights: decode the records,
           widen the weights */
        const int8_t *wo = w + (size_t)c0 * (size_t)k;
        int32_t *blk = blocks;
        for (int32_t j = 0; j < n; j += 2, blk += bw, wo += 2 * k) {
            int32_t *q = blk + 2 + k4;
            const int32_t o = c0 + j;
            blk[0] = bias[o];
            tt_widen_weights(wo, k, 0, blk + 2, 0);
            tt_rq_record(rq[o], mult[o], out_zero, &q[0], &q[1], &q[2]);
            if (j + 1 < n) {
                blk[1] = bias[o + 1];
                tt_widen_weights(wo + k, k, 0, blk + 2, 1);
                tt_rq_record(rq[o + 1], mult[o + 1], out_zero, &q[3], &q[4], &q[5]);
            } else { /* odd n: a padding channel */
                blk[1] = 0;
                for (int32_t i = 0; i < k4; i += 4) blk[2 + i + 2] = blk[2 + i + 3] = 0;
                q[3] = 0;
                q[4] = 0;
                q[5] = 1;
            }
        }
        return simple;
    }
    for (int32_t j = 0; j < ((n + 1) & ~1); ++j) {
        int32_t *blk = blocks + j / 2 * bw, *q = blk + 2 + k4 + 3 * (j & 1);
        const int32_t o = c0 + j;
        if (o >= co) { /* padding channel of an odd chunk */
            blk[j & 1] = 0;
            q[0] = 0;
            q[1] = 0;
            q[2] = 1;
            for (int32_t i = 0; i < k4; i += 4) blk[2 + i + 2] = blk[2 + i + 3] = 0;
            continue;
        }
        tt_chrec r;
        const int8_t *wo = tt_w_row_k(w, w_tail, w_split, o, k);
        tt_chrec_make(&r, bias[o], mult[o], shift[o], out_zero, wo, k, tt_xmax(in_zero), 8);
        tt_widen_weights(wo, k, tt_chrec_lsh(&r, shift[o]), blk + 2, j & 1);
        blk[j & 1] = r.bias;
        q[0] = r.mult;
        q[1] = r.off;
        q[2] = r.t;
        simple &= r.t != 0;
    }
    return simple;
}

/* Outputs of n prepared channels for the widened pixel pair xbuf: pixel 0 at o0, pixel
   1 at o0 + co (`two`; else at o1, a dummy). */
TT_STATIC void tt_pw_pixel_pair(const int32_t *xbuf, const int32_t *blocks, int32_t n,
                                int32_t k4, int8_t *o0, int8_t *o1, int32_t co, int two,
                                int simple, int32_t zo, int clamp, int32_t lo, int32_t hi)
{
    const int32_t bw = PW_BLOCK_WORDS(k4);
    int32_t j = 0;
#if TT_DSP_NATIVE
    if (simple && two && n >= 2) {
        const int32_t np = n / 2;
        const int32_t *wend = blocks + np * bw;
        const pw_big_ctx cx = {xbuf, xbuf + k4, blocks, wend, o0, co};
        pw_pairs_ldm_run(&cx, k4);
        j = 2 * np;
    }
#else
    (void)co;
    (void)two;
#endif
    for (; j < n; j += 2) {
        const int32_t *blk = blocks + j / 2 * bw;
        tt_chrec r[2];
        pw_block_recs(blk, k4, r);
        int32_t a00 = r[0].bias, a10 = r[0].bias, a01 = r[1].bias, a11 = r[1].bias;
        tt_mac_2x2(xbuf, blk + 2, k4 / 4, &a00, &a01, &a10, &a11);
        if (j + 1 < n) {
            if (simple) {
                o0[j] = (int8_t)TT_FAST_OUT(a00, &r[0]);
                o1[j] = (int8_t)TT_FAST_OUT(a10, &r[0]);
                o0[j + 1] = (int8_t)TT_FAST_OUT(a01, &r[1]);
                o1[j + 1] = (int8_t)TT_FAST_OUT(a11, &r[1]);
            } else {
                tt_store_block(o0 + j, o1 + j, r, a00, a01, a10, a11, zo, clamp, lo, hi, 0);
            }
        } else {
            tt_store_block(o0 + j, o1 + j, r, a00, a01, a10, a11, zo, clamp, lo, hi, 1);
        }
    }
}

/* ---- a prepared layer: every output channel at once ------------------------------
 * Layout (words): [simple, 0 | blocks of all channel pairs | a co-byte sink for the
 * missing pixel of an odd pixel count]; TT_BLOCK_PREP_BYTES(k, co) bytes (tt_block.h). */
#define TT_PREP_HDR_WORDS 2

TT_INLINE int32_t *tt_prep_blocks(int32_t *prep) { return prep + TT_PREP_HDR_WORDS; }

TT_INLINE int8_t *tt_prep_sink(int32_t *prep, int32_t k, int32_t co)
{
    return (int8_t *)(tt_prep_blocks(prep) + (co + 1) / 2 * PW_BLOCK_WORDS((k + 3) & ~3));
}

/* Prepare all co output channels of a conv with k weights per channel into prep
   (defined in tt_conv2d_1x1_s8.c). */
void tt_prep_layer(const tt_conv_params *p, int32_t k, int32_t *prep);

/* Pointwise conv over output rows [y0, y1) for the n prepared channels [c0, c0 + n)
   (blocks; simple: tt_pw_prepare's answer); xbuf: k4 words, sink: n bytes
   (tt_conv2d_1x1_s8.c). */
void tt_pw_rows(const tt_conv_params *p, const int32_t *blocks, int32_t c0, int32_t n,
                int simple, const int8_t *in, int32_t in_row0, int8_t *out, int32_t out_row0,
                int32_t y0, int32_t y1, int32_t *xbuf, int8_t *sink);

/* kxk conv over output rows [y0, y1) for the n prepared channels [c0, c0 + n); xbuf:
   k4 words then 2 * k4 raw bytes, sink: n bytes (tt_conv2d_s8.c). */
void tt_conv_rows(const tt_conv_params *p, const int32_t *blocks, int32_t c0, int32_t n,
                  int simple, const int8_t *in, int32_t in_row0, int8_t *out,
                  int32_t out_row0, int32_t y0, int32_t y1, int32_t *xbuf, int8_t *sink);

#endif /* TT_DSP */
#endif
