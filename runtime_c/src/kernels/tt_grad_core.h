/* Private to runtime_c/src/kernels: helpers shared by the training kernels.
 *
 *   - per-channel SGD factors (validated before any weight is touched) and the update
 *     of one weight;
 *   - the integer range / requantization steps of requant_grad (and the 32-bit fast form
 *     of the requantization for factors below 1/2);
 *   - geometry of a convolution tap;
 *   - the Arm DSP matrix cores of the 1x1 / fc input and weight gradients (their innermost
 *     loops in inline assembly on the target: LDM / LDRD loads, no spills).
 */
#ifndef TT_GRAD_CORE_H
#define TT_GRAD_CORE_H
#include "tt_simd.h"
#include "tt_train_kernels.h"

/* Hot inner loops live in small out-of-line functions: with 14 usable registers, GCC
   spills accumulators when they are inlined into the kernels' outer loops. */
#if defined(__GNUC__)
#define TT_GRAD_NOINLINE __attribute__((noinline))
#else
#define TT_GRAD_NOINLINE
#endif

/* ---- SGD factors ---------------------------------------------------------------------- */

/* Q31 factor of one channel: (mult, total = 31 - shift), and its fast path.
 *
 * Fast path (total >= 32, i.e. f_c < 2^-1, with stochastic or nearest rounding): with
 * s = total - 32 and the rounding addend of _fixed_round written as h * 2^s (stochastic:
 * h = the random value, since r = h << (total - 32); nearest: h = 2^31, since
 * 2^(total-1) = 2^31 * 2^s),
 *     delta = (A * mult + h * 2^s) >> total = hi32(A * mult + h * 2^s) >> s
 * (floor(floor(X / 2^32) / 2^s) = floor(X / 2^(32+s))), one SMULL + one UMLAL + one
 * shift; |X| < 2^63 so nothing overflows. mult = 0 (factor below 2^-32) gives delta = 0
 * for every rounding and also takes this path. Everything else (large factors,
 * truncation) uses the generic tt_sgd_update_w. */
typedef struct {
    int32_t mult, total;
    int32_t fast, s;
    uint32_t p2s, h; /* 2^s; h of nearest rounding */
} tt_chf;

TT_INLINE int tt_chf_set(tt_chf *f, int st, int32_t m, int32_t sh, int32_t rounding)
{
    f->mult = m;
    f->total = 31 - sh;
    f->fast = 0;
    f->s = 0;
    f->p2s = 1;
    f->h = 0x80000000u;
    if (m == 0) {
        f->fast = 1;
    } else if (f->total >= 32 && f->total <= 62 && rounding != TT_ROUND_TRUNCATE) {
        f->fast = 1;
        f->s = f->total - 32;
        f->p2s = (uint32_t)1 << f->s;
    }
    return st;
}

TT_INLINE int tt_chf_weight(const tt_sgd_params *u, int32_t c, tt_chf *f)
{
    int32_t m, s;
    const float fc = u->qas_off ? tt_weight_factor_plain(u->lr, u->s_gy, u->s_x, u->s_w[c])
                                : tt_weight_factor(u->lr, u->s_gy, u->s_x, u->s_w[c]);
    int st = tt_q31_of_f32(fc, &m, &s);
    return tt_chf_set(f, st, m, s, u->rounding);
}

TT_INLINE int tt_chf_bias(const tt_sgd_params *u, int32_t c, tt_chf *f)
{
    int32_t m, s;
    const float fb = u->qas_off ? tt_bias_factor_plain(u->lr, u->s_gy, u->s_x, u->s_w[c])
                                : tt_bias_factor(u->lr, u->s_gy, u->s_x, u->s_w[c]);
    int st = tt_q31_of_f32(fb, &m, &s);
    return tt_chf_set(f, st, m, s, TT_ROUND_NEAREST);
}

/* Arguments of a weight update: k, rounding, every channel's factor. Nothing is written
   unless this returns TT_OK (the reference raises before updating anything). */
static inline int tt_sgd_check(const tt_sgd_params *u, int32_t out_c, int bias)
{
    if (!u || u->k < 0 || u->k > out_c) return TT_ERR_ARG;
    if (!bias && (u->rounding < TT_ROUND_STOCHASTIC || u->rounding > TT_ROUND_TRUNCATE))
        return TT_ERR_ARG;
    for (int32_t c = 0; c < u->k; ++c) {
        tt_chf f;
        int st = bias ? tt_chf_bias(u, c, &f) : tt_chf_weight(u, c, &f);
        if (st != TT_OK) return st;
    }
    return TT_OK;
}

/* Fast-path update (see tt_chf): w - delta clamped to +-127; delta is first clamped to
   [-256, 255] (any delta beyond saturates the weight anyway). */
TT_INLINE int32_t tt_clamp_d9(int32_t d)
{
#if TT_DSP_NATIVE
    return __ssat(d, 9);
#else
    return d < -256 ? -256 : (d > 255 ? 255 : d);
#endif
}

TT_INLINE int8_t tt_upd_fast(int32_t w, int32_t acc, int32_t mult, uint32_t h, uint32_t p2s,
                             int32_t s)
{
    const uint64_t x = (uint64_t)((int64_t)acc * mult) + (uint64_t)h * p2s;
    const int32_t d = tt_clamp_d9((int32_t)(uint32_t)(x >> 32) >> s);
    int32_t v = w - d; /* [-383, 383] */
#if TT_DSP_NATIVE
    v = __ssat(v, 8);
    v = v < -127 ? -127 : v;
#else
    v = v < -127 ? -127 : (v > 127 ? 127 : v);
#endif
    return (int8_t)v;
}

#if TT_DSP_NATIVE
/* tt_upd_fast before its clamp at -127: w - delta saturated to [-128, 127]. */
TT_INLINE int32_t tt_upd_fast_s8(int32_t w, int32_t acc, int32_t mult, uint32_t h, uint32_t p2s,
                                 int32_t s)
{
    const uint64_t x = (uint64_t)((int64_t)acc * mult) + (uint64_t)h * p2s;
    return __ssat(w - tt_clamp_d9((int32_t)(uint32_t)(x >> 32) >> s), 8);
}

/* Four values in [-128, 127] as the bytes of a word, each raised to at least -127
   (PKHBT, UXTB16, ORR, then SSUB8 + SEL). */
TT_INLINE uint32_t tt_pack4_c127(int32_t v0, int32_t v1, int32_t v2, int32_t v3)
{
    const uint32_t lo = 0x81818181u; /* -127 in every byte */
    uint32_t p02, p13, d;
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(p02) : "r"(v0), "r"(v2));
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(p13) : "r"(v1), "r"(v3));
    uint32_t x = __uxtb16(p02) | (__uxtb16(p13) << 8);
    __asm("ssub8 %[d], %[x], %[lo]\n\t"
          "sel %[x], %[x], %[lo]"
          : [x] "+r"(x), [d] "=&r"(d)
          : [lo] "r"(lo)
          : "cc");
    return x;
}
#endif

/* Update of the weight with flat index idx (its position in the weight array). */
TT_INLINE void tt_upd_w(int8_t *w, uint32_t idx, int32_t acc, const tt_chf *f,
                        int32_t rounding, uint32_t key)
{
    if (TT_LIKELY(f->fast)) {
        const uint32_t h = rounding == TT_ROUND_STOCHASTIC ? tt_hash32(idx, key) : f->h;
        w[idx] = tt_upd_fast(w[idx], acc, f->mult, h, f->p2s, f->s);
        return;
    }
    const uint32_t rnd = rounding == TT_ROUND_STOCHASTIC ? tt_hash32(idx, key) : 0u;
    w[idx] = tt_sgd_update_w(w[idx], acc, f->mult, f->total, rounding, rnd);
}

/* hi32(a * b + 2^31): the rounded high word of a product (SMMULR). */
#if TT_DSP_NATIVE
TT_INLINE int32_t tt_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
TT_INLINE int32_t tt_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
}
#endif

/* acc + hi32(a * b) (SMMLA) and the int8 saturation, in every build. */
TT_INLINE int32_t tt_mulhi_add(int32_t a, int32_t b, int32_t acc)
{
#if TT_DSP
    return tt_smmla(a, b, acc);
#else
    return acc + (int32_t)(((int64_t)a * b) >> 32);
#endif
}

TT_INLINE int32_t tt_sat8(int32_t v)
{
#if TT_DSP
    return tt_ssat8(v);
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* ---- requant_grad --------------------------------------------------------------------- */

TT_INLINE uint32_t tt_abs32(int32_t v) { return v < 0 ? 0u - (uint32_t)v : (uint32_t)v; }

/* Running statistic of grad_range_int. */
typedef struct {
    uint32_t max;
    uint64_t sum;
} tt_rstat;

TT_INLINE void tt_rstat_add(tt_rstat *st, int32_t v)
{
    const uint32_t a = tt_abs32(v);
    if (a > st->max) st->max = a;
    st->sum += a;
}

TT_INLINE int64_t tt_rstat_range(const tt_rstat *st, int32_t n, tt_grad_range range)
{
    if (n <= 0) return 0;
    if (range.kind != TT_RANGE_MEAN) return tt_range_of_max(st->max, range);
    return (int64_t)range.k * (int64_t)(st->sum / (uint64_t)n);
}

/* Requantization of requant_grad for a range r > 0: q = clamp(requant(acc, m, s), +-qmax),
   scale = acc_scale * (r / qmax). */
typedef struct {
    int32_t mult, shift, qmax;
} tt_rqg;

TT_INLINE float tt_rqg_setup(tt_rqg *q, int64_t r, int32_t qmax, float acc_scale)
{
    const float rf = (float)r;
    const float qf = (float)qmax;
    const float inv = qf / rf; /* <= 127: always a valid Q31 factor */
    (void)tt_q31_of_f32(inv, &q->mult, &q->shift);
    q->qmax = qmax;
    const float ratio = rf / qf;
    return acc_scale * ratio;
}

TT_INLINE int8_t tt_rqg_apply(const tt_rqg *q, int32_t acc)
{
    int64_t v = tt_requantize64(acc, q->mult, q->shift);
    if (v > q->qmax) v = q->qmax;
    if (v < -q->qmax) v = -q->qmax;
    return (int8_t)v;
}

/* tt_rqg_apply for factors below 1/2 (total = 31 - shift in [33, 62], s = total - 32 >= 1):
   (hi32(a * m) + 2^(s-1)) >> s, clamped (see tt_rqg_apply_n in tt_requant_grad_s8.c). */
TT_INLINE int tt_rqg_fast_s(const tt_rqg *q)
{
    const int32_t total = 31 - q->shift;
    return total >= 33 && total <= 62 ? total - 32 : 0;
}

TT_INLINE int8_t tt_rqg_fast(int32_t a, int32_t m, int32_t s, int32_t rnd, int32_t qmax)
{
    int32_t v = tt_mulhi_add(a, m, rnd) >> s;
    v = v > qmax ? qmax : v;
    return (int8_t)(v < -qmax ? -qmax : v);
}

/* ---- convolution geometry --------------------------------------------------------------- */

/* Output positions o in [*lo, *hi) whose tap o * s + off lies in [0, n_in), clipped to
   [0, n_out). */
TT_INLINE void tt_tap_range(int32_t n_in, int32_t n_out, int32_t off, int32_t s, int32_t *lo,
                            int32_t *hi)
{
    int32_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int32_t last = n_in - 1 - off;
    int32_t b = last < 0 ? 0 : last / s + 1;
    if (b > n_out) b = n_out;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* ---- portable matrix cores (1x1 and fc) ---------------------------------------------------
 * Same geometry as the DSP cores below: rows x n pixels; t / gy pixel (r, j) at
 * (r * n + j) * co (contiguous), gx / x pixel at r * row + j * step.
 * Input-gradient weights may be split (tt_kernels.h "Split weights"): rows [0, split) at
 * w, rows [split, co) at w_tail (split = tt_w_split_at(): co when not split). */

/* g[i] += t[o] * w[o][i] for the channels [o0, o1) whose rows start at wr. */
static inline void tt_gin_rows_portable(int32_t *g, const int16_t *t, const int8_t *wr,
                                        int32_t o0, int32_t o1, int32_t ci)
{
    for (int32_t o = o0; o < o1; ++o, wr += ci) {
        const int32_t tv = t[o];
        if (!tv) continue;
        for (int32_t i = 0; i < ci; ++i) g[i] += tv * wr[i];
    }
}

static inline void tt_gin_mm_portable(const int16_t *t, const int8_t *w, const int8_t *w_tail,
                                      int32_t split, int32_t co, int32_t ci, int32_t rows,
                                      int32_t n, int32_t *gx, int32_t gx_row, int32_t gx_step)
{
    for (int32_t r = 0; r < rows; ++r) {
        int32_t *g = gx + (ptrdiff_t)r * gx_row;
        for (int32_t j = 0; j < n; ++j, t += co, g += gx_step) {
            for (int32_t i = 0; i < ci; ++i) g[i] = 0;
            if (split > 0) tt_gin_rows_portable(g, t, w, 0, split, ci);
            if (split < co) tt_gin_rows_portable(g, t, w_tail, split, co, ci);
        }
    }
}

static inline void tt_gw_mm_update_portable(const int8_t *gy, int32_t co, const int8_t *x,
                                            int32_t ci, int32_t zx, int32_t rows, int32_t n,
                                            int32_t x_row, int32_t x_step, int8_t *w,
                                            const tt_sgd_params *u)
{
    const uint32_t key = u->key; /* locals: w (int8_t) stores could alias *u */
    const int32_t rounding = u->rounding, k = u->k;
    for (int32_t c = 0; c < k; ++c) {
        tt_chf f;
        (void)tt_chf_weight(u, c, &f);
        const uint32_t base = (uint32_t)c * (uint32_t)ci;
        int32_t i = 0;
        for (; i + 4 <= ci; i += 4) { /* 4 inputs per pass over the pixels */
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            const int8_t *g = gy + c;
            for (int32_t r = 0; r < rows; ++r) {
                const int8_t *xp = x + (ptrdiff_t)r * x_row + i;
                for (int32_t j = 0; j < n; ++j, g += co, xp += x_step) {
                    const int32_t gv = *g;
                    a0 += gv * (xp[0] - zx);
                    a1 += gv * (xp[1] - zx);
                    a2 += gv * (xp[2] - zx);
                    a3 += gv * (xp[3] - zx);
                }
            }
            tt_upd_w(w, base + (uint32_t)i, a0, &f, rounding, key);
            tt_upd_w(w, base + (uint32_t)i + 1u, a1, &f, rounding, key);
            tt_upd_w(w, base + (uint32_t)i + 2u, a2, &f, rounding, key);
            tt_upd_w(w, base + (uint32_t)i + 3u, a3, &f, rounding, key);
        }
        for (; i < ci; ++i) {
            int32_t acc = 0;
            const int8_t *g = gy + c;
            for (int32_t r = 0; r < rows; ++r) {
                const int8_t *xp = x + (ptrdiff_t)r * x_row + i;
                for (int32_t j = 0; j < n; ++j, g += co, xp += x_step) acc += *g * (*xp - zx);
            }
            tt_upd_w(w, base + (uint32_t)i, acc, &f, rounding, key);
        }
    }
}

/* ---- DSP matrix cores (1x1 and fc) -------------------------------------------------------- */
#if TT_DSP

TT_INLINE int32_t tt_ld16u(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return (int32_t)v;
}

/* Input gradient: gx[px][i] = sum_o t[px][o] * w[o][i] for rows x n pixels; t pixel
 * (r, j) at t + (r * n + j) * co (contiguous), gx pixel at gx + r * gx_row + j * gx_step.
 *
 * Inputs 8 (then 4, then 1..3 in plain C) at a time, output channels in chunks of 64:
 * the chunk's weights are widened into scratch as int16 pairs (w[o][i], w[o+1][i]),
 * 8 words per channel pair (1 KB); per pixel and channel pair: 1 load of
 * (t[o], t[o+1]), 8 weight words and 8 SMLAD for 16 MACs (about 21 instructions with
 * the loop). Chunks after the first accumulate into gx. Split weights (rows [0, split)
 * at w, the others at w_tail) only change where the widening reads a row from. */
#define TT_GIN_CHUNK 64

/* One channel pair: rows wa, wb (from input i0 on; wb unused when !two). */
TT_INLINE void tt_gin_prep_pair(const int8_t *wa, const int8_t *wb, int two, int32_t nb,
                                int32_t *wp)
{
    for (int32_t j = 0; j < nb; j += 4, wp += 4) {
        int32_t a = tt_ld32(wa + j), b = two ? tt_ld32(wb + j) : 0;
        int32_t ae = tt_sxtb16(a), ao = tt_sxtb16_ror8(a);
        int32_t be = tt_sxtb16(b), bo = tt_sxtb16_ror8(b);
        wp[0] = tt_pkhbt_lsl16(ae, be);
        wp[1] = tt_pkhbt_lsl16(ao, bo);
        wp[2] = tt_pkhtb_asr16(be, ae);
        wp[3] = tt_pkhtb_asr16(bo, ao);
    }
}

/* Weight rows of the input-gradient cores: rows [0, split) at w, the others at tail
   (split = co when the weights are not split). */
typedef struct {
    const int8_t *w, *tail;
    int32_t split;
} tt_wrows;

/* The chunk [o0, o1) that holds the split (at most one per call). Out of line, so the
   common case below stays a plain loop. */
static TT_GRAD_NOINLINE void tt_gin_prep_split(const tt_wrows *wr, int32_t ci, int32_t o0,
                                               int32_t o1, int32_t i0, int32_t nb, int32_t *wp)
{
    for (int32_t o = o0; o < o1; o += 2, wp += nb) {
        const int two = o + 1 < o1;
        const int8_t *wa = tt_w_row_k(wr->w, wr->tail, wr->split, o, ci) + i0;
        const int8_t *wb = two ? tt_w_row_k(wr->w, wr->tail, wr->split, o + 1, ci) + i0 : wa;
        tt_gin_prep_pair(wa, wb, two, nb, wp);
    }
}

/* Channels [o0, o1), inputs [i0, i0 + nb). */
TT_INLINE void tt_gin_prep(const tt_wrows *wr, int32_t ci, int32_t o0, int32_t o1, int32_t i0,
                           int32_t nb, int32_t *wp)
{
    const int32_t split = wr->split;
    if (o0 < split && split < o1) {
        tt_gin_prep_split(wr, ci, o0, o1, i0, nb, wp);
        return;
    }
    /* the chunk lies in one piece: rows ci apart */
    const int8_t *wa =
        (o0 < split ? wr->w + (size_t)o0 * ci : wr->tail + (size_t)(o0 - split) * ci) + i0;
    for (int32_t o = o0; o < o1; o += 2, wa += 2 * ci, wp += nb)
        tt_gin_prep_pair(wa, wa + ci, o + 1 < o1, nb, wp);
}

/* One chunk of output channels (npair pairs + odd) for rows x n pixels and nb inputs:
   gx (+)= t . w. Kept out of line so that the register allocation of its inner loop
   (8 accumulators, t, w, 3 pointers) is not disturbed by the caller's loops. */

TT_INLINE void tt_gin_chunk(const int16_t *tp, int32_t co, int32_t npair, int32_t odd,
                            int32_t rows, int32_t n, int32_t *gx, int32_t gx_row,
                            int32_t gx_step, const int32_t *scratch, int first, const int nb)
{
    for (int32_t r = 0; r < rows; ++r) {
        int32_t *gp = gx + (ptrdiff_t)r * gx_row;
        for (int32_t j = 0; j < n; ++j, tp += co, gp += gx_step) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
            if (!first) {
                a0 = gp[0]; a1 = gp[1]; a2 = gp[2]; a3 = gp[3];
                if (nb == 8) { a4 = gp[4]; a5 = gp[5]; a6 = gp[6]; a7 = gp[7]; }
            }
            const int32_t *wp = scratch;
            const int16_t *tq = tp, *te = tp + 2 * npair;
            for (; tq != te; tq += 2, wp += nb) {
                const int32_t tv = tt_ld32(tq);
                a0 = tt_smlad(tv, wp[0], a0);
                a1 = tt_smlad(tv, wp[1], a1);
                a2 = tt_smlad(tv, wp[2], a2);
                a3 = tt_smlad(tv, wp[3], a3);
                if (nb == 8) {
                    a4 = tt_smlad(tv, wp[4], a4);
                    a5 = tt_smlad(tv, wp[5], a5);
                    a6 = tt_smlad(tv, wp[6], a6);
                    a7 = tt_smlad(tv, wp[7], a7);
                }
            }
            if (odd) { /* last channel alone: (t[o], 0) x (w[o][i], 0) */
                const int32_t tv = (int32_t)(uint16_t)tq[0];
                a0 = tt_smlad(tv, wp[0], a0);
                a1 = tt_smlad(tv, wp[1], a1);
                a2 = tt_smlad(tv, wp[2], a2);
                a3 = tt_smlad(tv, wp[3], a3);
                if (nb == 8) {
                    a4 = tt_smlad(tv, wp[4], a4);
                    a5 = tt_smlad(tv, wp[5], a5);
                    a6 = tt_smlad(tv, wp[6], a6);
                    a7 = tt_smlad(tv, wp[7], a7);
                }
            }
            gp[0] = a0; gp[1] = a1; gp[2] = a2; gp[3] = a3;
            if (nb == 8) { gp[4] = a4; gp[5] = a5; gp[6] = a6; gp[7] = a7; }
        }
    }
}

static TT_GRAD_NOINLINE void tt_gin_chunk8(const int16_t *tp, int32_t co, int32_t npair,
                                           int32_t odd, int32_t rows, int32_t n, int32_t *gx,
                                           int32_t gx_row, int32_t gx_step,
                                           const int32_t *scratch, int first)
{
    tt_gin_chunk(tp, co, npair, odd, rows, n, gx, gx_row, gx_step, scratch, first, 8);
}

#if TT_DSP_NATIVE
/* a0..a3 += sum over npair channel pairs of t pair . 4 weight words, with one LDM of the
   4 weight words per pair (t pairs: unaligned LDR). npair >= 1. */
#define TT_GIN4_PAIR                                   \
    "ldr r12, [%[tq]], #4\n\t"                         \
    "ldmia %[wp]!, {r4, r5, r6, r7}\n\t"               \
    "smlad %[a0], r12, r4, %[a0]\n\t"                  \
    "smlad %[a1], r12, r5, %[a1]\n\t"                  \
    "smlad %[a2], r12, r6, %[a2]\n\t"                  \
    "smlad %[a3], r12, r7, %[a3]\n\t"

/* n pixels of one gx row (t pixels co apart, gx pixels gx_step apart) for 4 inputs:
   gp[0..3] (+)= t . w over npair >= 1 channel pairs (+ the odd channel). */
static TT_GRAD_NOINLINE void tt_gin4_pixels(const int16_t *tp, int32_t co, int32_t n,
                                            int32_t *gp, int32_t gx_step,
                                            const int32_t *scratch, int32_t npair, int32_t odd,
                                            int first)
{
    for (; n > 0; --n, tp += co, gp += gx_step) {
        int32_t b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        if (!first) {
            b0 = gp[0]; b1 = gp[1]; b2 = gp[2]; b3 = gp[3];
        }
        const int16_t *t = tp, *te = tp + 2 * npair;
        const int32_t *w = scratch;
        if (npair & 1) {
            __asm volatile(TT_GIN4_PAIR
                           : [a0] "+r"(b0), [a1] "+r"(b1), [a2] "+r"(b2), [a3] "+r"(b3),
                             [tq] "+r"(t), [wp] "+r"(w)
                           :
                           : "r4", "r5", "r6", "r7", "r12", "memory");
        }
        if (t != te) {
            __asm volatile("1:\n\t" TT_GIN4_PAIR TT_GIN4_PAIR
                           "cmp %[tq], %[te]\n\t"
                           "bne 1b\n\t"
                           : [a0] "+r"(b0), [a1] "+r"(b1), [a2] "+r"(b2), [a3] "+r"(b3),
                             [tq] "+r"(t), [wp] "+r"(w)
                           : [te] "r"(te)
                           : "r4", "r5", "r6", "r7", "r12", "cc", "memory");
        }
        if (odd) { /* last channel alone: (t[o], 0) x (w[o][i], 0) */
            const int32_t tv = (int32_t)(uint16_t)t[0];
            b0 = tt_smlad(tv, w[0], b0);
            b1 = tt_smlad(tv, w[1], b1);
            b2 = tt_smlad(tv, w[2], b2);
            b3 = tt_smlad(tv, w[3], b3);
        }
        gp[0] = b0; gp[1] = b1; gp[2] = b2; gp[3] = b3;
    }
}
#undef TT_GIN4_PAIR

static TT_GRAD_NOINLINE void tt_gin_chunk4(const int16_t *tp, int32_t co, int32_t npair,
                                           int32_t odd, int32_t rows, int32_t n, int32_t *gx,
                                           int32_t gx_row, int32_t gx_step,
                                           const int32_t *scratch, int first)
{
    if (!npair) { /* one channel */
        tt_gin_chunk(tp, co, npair, odd, rows, n, gx, gx_row, gx_step, scratch, first, 4);
        return;
    }
    for (int32_t r = 0; r < rows; ++r, tp += (ptrdiff_t)n * co)
        tt_gin4_pixels(tp, co, n, gx + (ptrdiff_t)r * gx_row, gx_step, scratch, npair, odd,
                       first);
}
#else
static TT_GRAD_NOINLINE void tt_gin_chunk4(const int16_t *tp, int32_t co, int32_t npair,
                                           int32_t odd, int32_t rows, int32_t n, int32_t *gx,
                                           int32_t gx_row, int32_t gx_step,
                                           const int32_t *scratch, int first)
{
    tt_gin_chunk(tp, co, npair, odd, rows, n, gx, gx_row, gx_step, scratch, first, 4);
}
#endif

static void tt_gin_block(const int16_t *t, const tt_wrows *wr, int32_t co, int32_t ci,
                         int32_t rows, int32_t n, int32_t *gx, int32_t gx_row, int32_t gx_step,
                         int32_t i0, int32_t *scratch, const int nb)
{
    const int32_t chunk = TT_GIN_CHUNK * 8 / nb; /* the same 1 KB of scratch */
    for (int32_t oc = 0; oc < co; oc += chunk) {
        const int32_t oe = oc + chunk < co ? oc + chunk : co;
        tt_gin_prep(wr, ci, oc, oe, i0, nb, scratch);
        if (nb == 8)
            tt_gin_chunk8(t + oc, co, (oe - oc) / 2, (oe - oc) & 1, rows, n, gx + i0, gx_row,
                          gx_step, scratch, oc == 0);
        else
            tt_gin_chunk4(t + oc, co, (oe - oc) / 2, (oe - oc) & 1, rows, n, gx + i0, gx_row,
                          gx_step, scratch, oc == 0);
    }
}

/* acc + sum over the channels [o0, o1) of t[o] * (*wc), wc stepping by ci from wc. */
TT_INLINE int32_t tt_gin_col(const int16_t *tp, const int8_t *wc, int32_t o0, int32_t o1,
                             int32_t ci, int32_t acc)
{
    for (int32_t o = o0; o < o1; ++o, wc += ci) acc += tp[o] * *wc;
    return acc;
}

static inline void tt_gin_mm(const int16_t *t, const int8_t *w, const int8_t *w_tail,
                             int32_t split, int32_t co, int32_t ci, int32_t rows, int32_t n,
                             int32_t *gx, int32_t gx_row, int32_t gx_step, void *scratch)
{
    int32_t *ws = (int32_t *)scratch;
    const tt_wrows wr = {w, w_tail, split};
    int32_t i0 = 0;
#if TT_DSP_NATIVE
    /* blocks of 4 inputs: the LDM inner loop (tt_gin4_pairs) */
    for (; i0 + 4 <= ci; i0 += 4)
        tt_gin_block(t, &wr, co, ci, rows, n, gx, gx_row, gx_step, i0, ws, 4);
#else
    for (; i0 + 8 <= ci; i0 += 8)
        tt_gin_block(t, &wr, co, ci, rows, n, gx, gx_row, gx_step, i0, ws, 8);
    if (i0 + 4 <= ci) {
        tt_gin_block(t, &wr, co, ci, rows, n, gx, gx_row, gx_step, i0, ws, 4);
        i0 += 4;
    }
#endif
    if (i0 < ci) { /* the last 1..3 inputs */
        const int16_t *tp = t;
        for (int32_t r = 0; r < rows; ++r) {
            int32_t *gp = gx + (ptrdiff_t)r * gx_row;
            for (int32_t j = 0; j < n; ++j, tp += co, gp += gx_step) {
                for (int32_t i = i0; i < ci; ++i) {
                    int32_t acc = 0;
                    if (split > 0) acc = tt_gin_col(tp, w + i, 0, split, ci, acc);
                    if (split < co) acc = tt_gin_col(tp, w_tail + i, split, co, ci, acc);
                    gp[i] = acc;
                }
            }
        }
    }
}

/* Weight gradient fused with the update: A[c][i] = sum_px gy[px][c] * (x[px][i] - zx) for
 * c < u->k, rows x n pixels; gy pixel (r, j) at gy + (r * n + j) * co (contiguous), x pixel
 * at x + r * x_row + j * x_step; weight (c, i) at w[c * ci + i].
 *
 * Output channels 4 at a time: the channels' gradients are first laid out in scratch as
 * int16 pixel pairs (gy[p][c], gy[p+1][c]) (4 words per pixel pair, rows of odd width
 * padded with a zero pixel), with their sums over pixels. Then per 2 inputs and pixel
 * pair: 2 LDRH + 1 ORR + 2 SXTB16 for (x[p][i], x[p+1][i]), 4 loads and 8 SMLAD for
 * 16 MACs (24 instructions with the loop: 8 accumulators + 4 pointers/strides + 3
 * temporaries need one register more than the core has); the zero point is applied once
 * at the end: A = sum(gy * x) - zx * sum(gy) (exact modulo 2^32, like the int32 result).
 * Each weight is updated as soon as its A is complete. A single pixel (fc with batch 1)
 * skips the MAC loop: A = gy[c] * (x[i] - zx). */
TT_INLINE void tt_gw_prep(const int8_t *gy, int32_t co, int32_t c0, int32_t rows, int32_t n,
                          int32_t *gs, int32_t gsum[4])
{
    const int full = c0 + 4 <= co;
    gsum[0] = gsum[1] = gsum[2] = gsum[3] = 0;
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t j = 0; j < n; j += 2, gs += 4) {
            const int8_t *ga = gy + ((ptrdiff_t)r * n + j) * co + c0;
            const int8_t *gb = ga + co;
            const int two = j + 1 < n;
            int32_t g0 = 0, g1 = 0;
            if (full) {
                g0 = tt_ld32(ga);
                if (two) g1 = tt_ld32(gb);
            } else {
                for (int32_t q = 0; c0 + q < co; ++q) {
                    g0 |= (int32_t)((uint32_t)(uint8_t)ga[q] << (8 * q));
                    if (two) g1 |= (int32_t)((uint32_t)(uint8_t)gb[q] << (8 * q));
                }
            }
            const int32_t lo = tt_pkhbt_lsl16(g0, g1), hi = tt_pkhtb_asr16(g1, g0);
            gs[0] = tt_sxtb16(lo);
            gs[1] = tt_sxtb16_ror8(lo);
            gs[2] = tt_sxtb16(hi);
            gs[3] = tt_sxtb16_ror8(hi);
            for (int q = 0; q < 4; ++q) gsum[q] += (int16_t)gs[q] + (gs[q] >> 16);
        }
    }
}

/* Sums over the pixels of gy[p][c0 + q] * x[p][i0 + j] (q < 4, j < ni), no zero point,
   added to s[2 q + j]. Per pixel pair: the x values of both pixels as int16 lanes
   (x[pa][i], x[pb][i]) = SXTB16 of (bytes of pa) | (bytes of pb) << 16, then 4 (ni = 1)
   or 8 SMLAD with the prepared gy pairs. Out of line (see tt_gin_chunk). */
TT_INLINE void tt_gw_rows(const int32_t *gs, int32_t npair, int32_t odd, int32_t rows,
                          const int8_t *x, int32_t x_row, int32_t x_step, int32_t s[8],
                          const int ni)
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    int32_t s20 = s[4], s21 = s[5], s30 = s[6], s31 = s[7];
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + (ptrdiff_t)r * x_row;
        const int32_t *ge = gs + 4 * npair;
        for (; gs != ge; gs += 4) {
            uint32_t xa, xb;
            if (ni == 2) {
                xa = (uint32_t)tt_ld16u(xp);
                xb = (uint32_t)tt_ld16u(xp + x_step);
            } else {
                xa = (uint8_t)xp[0];
                xb = (uint8_t)xp[x_step];
            }
            xp += 2 * x_step;
            const int32_t xx = (int32_t)(xa | (xb << 16));
            const int32_t x0 = tt_sxtb16(xx);
            if (ni == 2) {
                const int32_t x1 = tt_sxtb16_ror8(xx);
                int32_t g = gs[0];
                s00 = tt_smlad(g, x0, s00);
                s01 = tt_smlad(g, x1, s01);
                g = gs[1];
                s10 = tt_smlad(g, x0, s10);
                s11 = tt_smlad(g, x1, s11);
                g = gs[2];
                s20 = tt_smlad(g, x0, s20);
                s21 = tt_smlad(g, x1, s21);
                g = gs[3];
                s30 = tt_smlad(g, x0, s30);
                s31 = tt_smlad(g, x1, s31);
            } else {
                s00 = tt_smlad(gs[0], x0, s00);
                s10 = tt_smlad(gs[1], x0, s10);
                s20 = tt_smlad(gs[2], x0, s20);
                s30 = tt_smlad(gs[3], x0, s30);
            }
        }
        if (odd) { /* last pixel of the row: its pair's second gy lane is 0 */
            const int32_t xx = ni == 2 ? tt_ld16u(xp) : (int32_t)(uint8_t)xp[0];
            const int32_t x0 = tt_sxtb16(xx);
            s00 = tt_smlad(gs[0], x0, s00);
            s10 = tt_smlad(gs[1], x0, s10);
            s20 = tt_smlad(gs[2], x0, s20);
            s30 = tt_smlad(gs[3], x0, s30);
            if (ni == 2) {
                const int32_t x1 = tt_sxtb16_ror8(xx);
                s01 = tt_smlad(gs[0], x1, s01);
                s11 = tt_smlad(gs[1], x1, s11);
                s21 = tt_smlad(gs[2], x1, s21);
                s31 = tt_smlad(gs[3], x1, s31);
            }
            gs += 4;
        }
    }
    s[0] = s00; s[1] = s01; s[2] = s10; s[3] = s11;
    s[4] = s20; s[5] = s21; s[6] = s30; s[7] = s31;
}

#if TT_DSP_NATIVE
/* tt_gw_rows(.., 2) with the pixel-pair loop in assembly: per pixel pair 2 LDRH + ORR +
   2 SXTB16, 4 LDR of the gy pairs, 8 SMLAD (21 instructions with the loop, whose end is
   reloaded from the stack: 8 accumulators leave no register for it). */
static TT_GRAD_NOINLINE void tt_gw_rows2(const int32_t *gs, int32_t npair, int32_t odd,
                                         int32_t rows, const int8_t *x, int32_t x_row,
                                         int32_t x_step, int32_t s[8])
{
    if (odd || npair == 0) {
        tt_gw_rows(gs, npair, odd, rows, x, x_row, x_step, s, 2);
        return;
    }
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    int32_t s20 = s[4], s21 = s[5], s30 = s[6], s31 = s[7];
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + (ptrdiff_t)r * x_row;
        const int32_t *ge = gs + 4 * npair;
        int32_t xa, xb, g;
        __asm volatile("1:\n\t"
                       "ldrh %[xa], [%[xp]]\n\t"
                       "ldrh %[xb], [%[xp], %[st]]\n\t"
                       "add %[xp], %[xp], %[st], lsl #1\n\t"
                       "orr %[xa], %[xa], %[xb], lsl #16\n\t"
                       "sxtb16 %[xb], %[xa], ror #8\n\t"
                       "sxtb16 %[xa], %[xa]\n\t"
                       "ldr %[g], [%[gs]], #4\n\t"
                       "smlad %[s00], %[g], %[xa], %[s00]\n\t"
                       "smlad %[s01], %[g], %[xb], %[s01]\n\t"
                       "ldr %[g], [%[gs]], #4\n\t"
                       "smlad %[s10], %[g], %[xa], %[s10]\n\t"
                       "smlad %[s11], %[g], %[xb], %[s11]\n\t"
                       "ldr %[g], [%[gs]], #4\n\t"
                       "smlad %[s20], %[g], %[xa], %[s20]\n\t"
                       "smlad %[s21], %[g], %[xb], %[s21]\n\t"
                       "ldr %[g], [%[gs]], #4\n\t"
                       "smlad %[s30], %[g], %[xa], %[s30]\n\t"
                       "smlad %[s31], %[g], %[xb], %[s31]\n\t"
                       "ldr %[g], %[ge]\n\t"
                       "cmp %[gs], %[g]\n\t"
                       "bne 1b\n\t"
                       : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11),
                         [s20] "+r"(s20), [s21] "+r"(s21), [s30] "+r"(s30), [s31] "+r"(s31),
                         [xp] "+r"(xp), [gs] "+r"(gs), [xa] "=&r"(xa), [xb] "=&r"(xb),
                         [g] "=&r"(g)
                       : [st] "r"(x_step), [ge] "m"(ge)
                       : "cc", "memory");
    }
    s[0] = s00; s[1] = s01; s[2] = s10; s[3] = s11;
    s[4] = s20; s[5] = s21; s[6] = s30; s[7] = s31;
}
#else
static TT_GRAD_NOINLINE void tt_gw_rows2(const int32_t *gs, int32_t npair, int32_t odd,
                                         int32_t rows, const int8_t *x, int32_t x_row,
                                         int32_t x_step, int32_t s[8])
{
    tt_gw_rows(gs, npair, odd, rows, x, x_row, x_step, s, 2);
}
#endif

static TT_GRAD_NOINLINE void tt_gw_rows1(const int32_t *gs, int32_t npair, int32_t odd,
                                         int32_t rows, const int8_t *x, int32_t x_row,
                                         int32_t x_step, int32_t s[8])
{
    tt_gw_rows(gs, npair, odd, rows, x, x_row, x_step, s, 1);
}

/* Updates the weights (c0 + q, i0 + j), q < nc, j < ni, from the sums s[2 q + j]. */
static TT_GRAD_NOINLINE void tt_gw_update_block(int8_t *w, int32_t c0, int32_t ci, int32_t i0,
                                                const int32_t s[8], const int32_t corr[4],
                                                const tt_chf f[4], int32_t nc, int32_t ni,
                                                int32_t rounding, uint32_t key)
{
    for (int32_t q = 0; q < nc; ++q) {
        const tt_chf *fq = &f[q];
        const uint32_t idx = (uint32_t)(c0 + q) * (uint32_t)ci + (uint32_t)i0;
        const int32_t a0 = (int32_t)((uint32_t)s[2 * q] - (uint32_t)corr[q]);
        const int32_t a1 = (int32_t)((uint32_t)s[2 * q + 1] - (uint32_t)corr[q]);
        if (TT_LIKELY(fq->fast)) {
            const int32_t m = fq->mult, sh = fq->s;
            const uint32_t p2s = fq->p2s;
            if (rounding == TT_ROUND_STOCHASTIC) {
                w[idx] = tt_upd_fast(w[idx], a0, m, tt_hash32(idx, key), p2s, sh);
                if (ni == 2) w[idx + 1] = tt_upd_fast(w[idx + 1], a1, m, tt_hash32(idx + 1, key), p2s, sh);
            } else {
                w[idx] = tt_upd_fast(w[idx], a0, m, fq->h, p2s, sh);
                if (ni == 2) w[idx + 1] = tt_upd_fast(w[idx + 1], a1, m, fq->h, p2s, sh);
            }
        } else {
            tt_upd_w(w, idx, a0, fq, rounding, key);
            if (ni == 2) tt_upd_w(w, idx + 1, a1, fq, rounding, key);
        }
    }
}

/* Updates of TT_GW_RUN consecutive weights of one channel (flat indices idx ..) from their
   gradients a[]: one loop per rounding case, the hash index advanced by one per weight. */
#define TT_GW_RUN 8

static TT_GRAD_NOINLINE void tt_gw_update_run(int8_t *w, uint32_t idx, const int32_t *a,
                                              const tt_chf *f, int32_t rounding, uint32_t key)
{
    int8_t *wp = w + idx;
    if (TT_LIKELY(f->fast)) {
        const int32_t m = f->mult, sh = f->s;
        const uint32_t p2s = f->p2s;
#if TT_DSP_NATIVE
        /* four weights per STR, clamped at -127 together */
        if (rounding == TT_ROUND_STOCHASTIC) {
            for (int32_t j = 0; j < TT_GW_RUN; j += 4) {
                const uint32_t i = idx + (uint32_t)j;
                const int32_t v0 = tt_upd_fast_s8(wp[j], a[j], m, tt_hash32(i, key), p2s, sh);
                const int32_t v1 = tt_upd_fast_s8(wp[j + 1], a[j + 1], m, tt_hash32(i + 1u, key), p2s, sh);
                const int32_t v2 = tt_upd_fast_s8(wp[j + 2], a[j + 2], m, tt_hash32(i + 2u, key), p2s, sh);
                const int32_t v3 = tt_upd_fast_s8(wp[j + 3], a[j + 3], m, tt_hash32(i + 3u, key), p2s, sh);
                tt_st32(wp + j, (int32_t)tt_pack4_c127(v0, v1, v2, v3));
            }
        } else {
            const uint32_t h = f->h;
            for (int32_t j = 0; j < TT_GW_RUN; j += 4) {
                const int32_t v0 = tt_upd_fast_s8(wp[j], a[j], m, h, p2s, sh);
                const int32_t v1 = tt_upd_fast_s8(wp[j + 1], a[j + 1], m, h, p2s, sh);
                const int32_t v2 = tt_upd_fast_s8(wp[j + 2], a[j + 2], m, h, p2s, sh);
                const int32_t v3 = tt_upd_fast_s8(wp[j + 3], a[j + 3], m, h, p2s, sh);
                tt_st32(wp + j, (int32_t)tt_pack4_c127(v0, v1, v2, v3));
            }
        }
#else
        if (rounding == TT_ROUND_STOCHASTIC) {
            for (int32_t j = 0; j < TT_GW_RUN; ++j)
                wp[j] = tt_upd_fast(wp[j], a[j], m, tt_hash32(idx + (uint32_t)j, key), p2s, sh);
        } else {
            const uint32_t h = f->h;
            for (int32_t j = 0; j < TT_GW_RUN; ++j) wp[j] = tt_upd_fast(wp[j], a[j], m, h, p2s, sh);
        }
#endif
        return;
    }
#if TT_DSP_NATIVE
    if (f->total >= 11 && f->total <= 31 && rounding != TT_ROUND_TRUNCATE) {
        /* factors in [1/2, 2^20) (mult >= 2^30): with k = 32 - total, delta =
           floor((A m + r) / 2^total) = hi32((A' << k) m + (r << k)) exactly, where A' is A
           saturated to [-1024, 1023] (f >= 1/2: any |A| beyond gives |delta| >= 511 of the
           same sign, the weight clamps alike) and r << k is the random word with its low k
           bits cleared (nearest: 2^31) */
        const int32_t m = f->mult, k = 32 - f->total;
        const uint32_t mask = ~(((uint32_t)1 << k) - 1u);
        const int st = rounding == TT_ROUND_STOCHASTIC;
        for (int32_t j = 0; j < TT_GW_RUN; j += 4) {
            int32_t v[4];
            for (int32_t u = 0; u < 4; ++u) {
                const uint32_t h = st ? tt_hash32(idx + (uint32_t)(j + u), key) & mask : 0x80000000u;
                const int32_t ak = (int32_t)((uint32_t)__ssat(a[j + u], 11) << k);
                v[u] = tt_upd_fast_s8(wp[j + u], ak, m, h, 1u, 0);
            }
            tt_st32(wp + j, (int32_t)tt_pack4_c127(v[0], v[1], v[2], v[3]));
        }
        return;
    }
#endif
    for (int32_t j = 0; j < TT_GW_RUN; ++j) tt_upd_w(w, idx + (uint32_t)j, a[j], f, rounding, key);
}

static inline void tt_gw_mm_update(const int8_t *gy, int32_t co, const int8_t *x, int32_t ci,
                                   int32_t zx, int32_t rows, int32_t n, int32_t x_row,
                                   int32_t x_step, int8_t *w, const tt_sgd_params *u,
                                   void *scratch)
{
    int32_t *gs = (int32_t *)scratch;
    const int32_t k = u->k;
    const uint32_t key = u->key; /* locals: w (int8_t) stores could alias *u */
    const int32_t rounding = u->rounding;
    if (rows * n == 1) { /* one pixel (fc, batch 1): A = gy[c] * (x[i] - zx), no MAC loop */
        for (int32_t c = 0; c < k; ++c) {
            tt_chf f;
            (void)tt_chf_weight(u, c, &f);
            const int32_t g = gy[c];
            int8_t *wc = w + (size_t)c * ci;
            const uint32_t base = (uint32_t)c * (uint32_t)ci;
            if (f.fast && rounding == TT_ROUND_STOCHASTIC) {
                for (int32_t i = 0; i < ci; ++i)
                    wc[i] = tt_upd_fast(wc[i], g * (x[i] - zx), f.mult,
                                        tt_hash32(base + (uint32_t)i, key), f.p2s, f.s);
            } else if (f.fast) {
                for (int32_t i = 0; i < ci; ++i)
                    wc[i] = tt_upd_fast(wc[i], g * (x[i] - zx), f.mult, f.h, f.p2s, f.s);
            } else {
                for (int32_t i = 0; i < ci; ++i)
                    tt_upd_w(w, base + (uint32_t)i, g * (x[i] - zx), &f, rounding, key);
            }
        }
        return;
    }
    for (int32_t c0 = 0; c0 < k; c0 += 4) {
        const int32_t nc = k - c0 < 4 ? k - c0 : 4;
        int32_t gsum[4], corr[4], s[8];
        tt_chf f[4];
        for (int32_t q = 0; q < nc; ++q) (void)tt_chf_weight(u, c0 + q, &f[q]);
        tt_gw_prep(gy, co, c0, rows, n, gs, gsum);
        for (int32_t q = 0; q < 4; ++q) corr[q] = (int32_t)((uint32_t)zx * (uint32_t)gsum[q]);
        int32_t i0 = 0;
        for (; i0 + TT_GW_RUN <= ci; i0 += TT_GW_RUN) {
            /* the sums of TT_GW_RUN inputs, then one run of updates per channel */
            int32_t a[4][TT_GW_RUN];
            for (int32_t j = 0; j < TT_GW_RUN; j += 2) {
                s[0] = s[1] = s[2] = s[3] = s[4] = s[5] = s[6] = s[7] = 0;
                tt_gw_rows2(gs, n / 2, n & 1, rows, x + i0 + j, x_row, x_step, s);
                for (int32_t q = 0; q < 4; ++q) {
                    a[q][j] = (int32_t)((uint32_t)s[2 * q] - (uint32_t)corr[q]);
                    a[q][j + 1] = (int32_t)((uint32_t)s[2 * q + 1] - (uint32_t)corr[q]);
                }
            }
            for (int32_t q = 0; q < nc; ++q)
                tt_gw_update_run(w, (uint32_t)(c0 + q) * (uint32_t)ci + (uint32_t)i0, a[q],
                                 &f[q], rounding, key);
        }
        for (; i0 < ci; i0 += 2) {
            const int32_t ni = i0 + 2 <= ci ? 2 : 1;
            s[0] = s[1] = s[2] = s[3] = s[4] = s[5] = s[6] = s[7] = 0;
            if (ni == 2) tt_gw_rows2(gs, n / 2, n & 1, rows, x + i0, x_row, x_step, s);
            else tt_gw_rows1(gs, n / 2, n & 1, rows, x + i0, x_row, x_step, s);
            tt_gw_update_block(w, c0, ci, i0, s, corr, f, nc, ni, rounding, key);
        }
    }
}

#endif /* TT_DSP */
#endif
