/* Private to runtime_c/src/kernels: the depthwise code shared by tt_dwconv_s8,
 * tt_dwconv_3x3_s1_s8 and tt_dwconv_3x3_s2_s8 (each includes this header once and gets
 * its own copy of the static functions; dw_dsp / dw_ref are instantiated with constant k
 * and stride in each kernel).
 *
 * Portable variant: direct loops (dw_ref; the 3x3 entry points call it with constant
 * k/stride).
 *
 * DSP variant (square k in {3, 5, 7}, stride 1 or 2; anything else falls back to the
 * portable loops). NHWC interleaves channels, but depthwise sums run over taps of one
 * channel, so SMLAD needs two taps of the same channel in one register. Per group of 4
 * channels the kernel keeps, in scratch, a ring of k input rows in a "pair" layout:
 * word (m * k + slot) * 4 + channel holds (x[2m] - in_zero, x[2m+1] - in_zero) as two
 * int16 lanes, in padded column coordinates (padding columns are 0, so borders need no
 * tests). Each input row is widened once per group and call (2 pixels x 4 channels: 2 LDR,
 * 2 PKH, 4 SXTAB16, 2 STRD) and reused by every output row of the call that reads it.
 * Over several rows the ring rotates: row iy lives in slot iy mod k; instead of moving
 * data, the weights are kept in slot order in a per-channel context (one per rotation;
 * see DW_NROT for where they live and when they are built), rotated from the group's
 * packed weights; padding rows are zero-filled slots. A one-row call (the fused block
 * runs a layer so, one output row per call) loads its k rows in kernel order, packs the
 * weights straight into the contexts and gives padding rows zero weights instead of data.
 *
 * Per channel the packed weights (int16 pairs, pre-scaled for the fast requantization)
 * multiply the pairs directly, for k = 2h + 1 and P[m] the pair word of column m:
 *   stride 1, outputs 2m and 2m+1 (per kernel row):
 *     out[2m]   += sum_{i<h} P[m+i] . A[i] + lo(P[m+h]) * w[2h]      A[i] = (w[2i], w[2i+1])
 *     out[2m+1] += hi(P[m]) * w[0] + sum_{i<h} P[m+1+i] . B[i]       B[i] = (w[2i+1], w[2i+2])
 *   stride 2, output j:
 *     out[j]    += sum_{i<h} P[j+i] . A[i] + lo(P[j+h]) * w[2h]
 * The row loops (hand-written assembly on the target, C elsewhere) produce 4 outputs per
 * iteration, loading each pair once: 3x3 s1 is 60 instructions per 36 MACs, 7x7 about
 * 1.1 instructions per MAC. Requantization is SMMLA + ASR + SSAT (tt_simd.h); ranges
 * narrower than int8 (act clamp) and channels without a fast plan take C paths.
 *
 * 5x5 / 7x7 over several rows use a double ring where it fits in the layer's scratch
 * (dw_dsp): every row also in slot + k, so an output row's k rows are contiguous slots in
 * kernel order and one context set serves all rows (no rotations).
 *
 * Small maps (tt_conv_params.dw_map, when the plan gave the layer TT_DW_MAP_SCRATCH_BYTES):
 * a call whose input rows, padding included, fit in TT_DW_MAP_ROWS(k) slots runs the
 * whole-map layout instead (tt_dw_map_run): the ring with that many slots, input row iy
 * in slot iy - (y0 * stride - pad), so every output row's k rows are consecutive slots
 * in kernel order. Each row is widened once per group, one context per channel serves
 * all rows (no rotations), and the rows run straight through the row loops (3x3: the
 * map variants with 160-byte columns; 5x5: the _map loops, 7x7: the double ring's, both
 * with 224-byte columns). Per group of 4 channels of a 4x4 map that is about 30% fewer
 * instructions than the ring's rotations and per-row bookkeeping.
 *
 * The 5x5 / 7x7 row loops live in tt_dwconv_s8.c, the only kernel that runs those
 * sizes: it defines TT_DW_BIG to 1 before including this header, which declares them;
 * with TT_DW_BIG 0 (the 3x3 kernels) dw_row_fast only has the 3x3 loops. tt_dw_map_run
 * is defined there too (one copy for the three kernels).
 */
#ifndef TT_DWCONV_CORE_H
#define TT_DWCONV_CORE_H
#include "tt_kernels.h"
#include "tt_simd.h"

#ifndef TT_DW_BIG
#define TT_DW_BIG 0
#endif

#if defined(__GNUC__)
#define TT_NOINLINE __attribute__((noinline))
#else
#define TT_NOINLINE
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define TT_UNROLL _Pragma("GCC unroll 8")
#else
#define TT_UNROLL
#endif

/* One output row of one channel, straight from NHWC (portable path and DSP fallback
   for channels whose requantization has no fast plan). */
TT_INLINE void dw_row_ref(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                          int8_t *orow, int32_t y, int32_t c, int32_t kh, int32_t kw,
                          int32_t s)
{
    const int32_t C = p->in_c, W = p->in_w, zi = p->in_zero;
    const int32_t iy0 = y * s - p->pad;
    const int32_t sx = p->stride_w > 0 ? p->stride_w : s, px = TT_PAD_W(p); /* columns */
    const int32_t bias = p->bias[c], mult = p->mult[c], shift = p->shift[c];
    const int8_t *wc = tt_w_row_k(p->w, p->w_tail, p->w_split, c, kh * kw);
    for (int32_t x = 0; x < p->out_w; ++x) {
        const int32_t ix0 = x * sx - px;
        int32_t acc = bias;
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = iy0 + ky;
            if (iy < 0 || iy >= p->in_h) continue;
            const int8_t *row = in + (ptrdiff_t)(iy - in_row0) * W * C + c;
            for (int32_t kx = 0; kx < kw; ++kx) {
                const int32_t ix = ix0 + kx;
                if (ix < 0 || ix >= W) continue;
                acc += (row[(ptrdiff_t)ix * C] - zi) * wc[ky * kw + kx];
            }
        }
        orow[(ptrdiff_t)x * C] = tt_requant_s8(acc, mult, shift, p->out_zero, p->act_min,
                                               p->act_max);
    }
}

TT_INLINE void dw_ref(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                      int8_t *out, int32_t out_row0, int32_t y0, int32_t y1, int32_t kh,
                      int32_t kw, int32_t s)
{
    const int32_t C = p->in_c;
    for (int32_t y = y0; y < y1; ++y) {
        int8_t *orow = out + (ptrdiff_t)(y - out_row0) * p->out_w * C;
        for (int32_t c = 0; c < C; ++c) dw_row_ref(p, in, in_row0, orow + c, y, c, kh, kw, s);
    }
}

#if TT_DSP

/* dw_row_ref out of line, for the DSP paths' channels without a fast plan (rare: one
   copy per kernel file instead of one per inlined path) */
TT_NOINLINE static void dw_row_slow(const tt_conv_params *p, const int8_t *in,
                                    int32_t in_row0, int8_t *orow, int32_t y, int32_t c,
                                    int32_t k, int32_t s)
{
    dw_row_ref(p, in, in_row0, orow, y, c, k, k, s);
}

/* Ring of input rows for one group of (up to) 4 channels: word (m * k + slot) * 4 + j
   holds channel j's pair (x[2m - pad], x[2m + 1 - pad]) (minus in_zero, 0 outside the
   row) of the input row currently in `slot` (row iy lives in slot iy mod k). */
typedef struct {
    int32_t *w;
    int32_t rw;      /* columns (pair words) */
    int32_t k;       /* slots (rows held) */
    int32_t cs;      /* words per column: 4 * k, or 8 * k for a double ring */
    int32_t dbl;     /* double ring: row iy also in slot iy mod k + k (see dw_dsp) */
    int32_t tag[7];  /* input row in each slot, -1 if none */
} dw_ring;

/* A double ring's second copy of one column (slot + k): all 4 channel words (lanes past
   nc are never read, in either copy), a fixed count so the copy stays straight-line. */
TT_INLINE void dw_dup_column(int32_t *d, const int K)
{
    d[4 * K] = d[0];
    d[4 * K + 1] = d[1];
    d[4 * K + 2] = d[2];
    d[4 * K + 3] = d[3];
}

/* Widen input row iy of channels [g, g + nc) into ring slot `slot`. */
TT_INLINE void dw_load_row(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                           int32_t iy, int32_t g, int32_t nc, dw_ring *rg, int32_t slot,
                           const int K, const int DBL)
{
    const int32_t C = p->in_c, W = p->in_w, pad = p->pad, zi = p->in_zero;
    const int8_t *src = in + (ptrdiff_t)(iy - in_row0) * W * C + g;
    /* words per column; a double ring's second copy at +4K (5x5 / 7x7 only) */
    const int32_t dbl = TT_DW_BIG && K >= 5 && DBL, cs = dbl ? 8 * K : 4 * K;
    int32_t *d0 = rg->w + 4 * slot;
    /* columns m with both 2m - pad and 2m + 1 - pad inside [0, W) */
    const int32_t m_first = (pad + 1) / 2, m_full_end = (W + pad) / 2;
    const int32_t m_end = (W + pad - 1) / 2 + 1;
    int32_t m = m_first;
    const int32_t zoff = tt_pack16(-zi, -zi);
    if (pad & 1) { /* leading partial column: (padding, x[0]) */
        int32_t *d = d0 + (m_first - 1) * cs;
        if (nc == 4) {
            const int32_t v = tt_ld32(src);
            const uint32_t e = (uint32_t)tt_sxtab16(zoff, v), o = (uint32_t)tt_sxtab16_ror8(zoff, v);
            d[0] = (int32_t)(e << 16);
            d[1] = (int32_t)(o << 16);
            d[2] = (int32_t)(e & 0xFFFF0000u);
            d[3] = (int32_t)(o & 0xFFFF0000u);
        } else {
            for (int32_t j = 0; j < nc; ++j) d[j] = tt_pack16(0, src[j] - zi);
        }
        if (dbl) dw_dup_column(d, K);
    }
    if (nc == 4 && m < m_full_end) {
        const int8_t *sp = src + (ptrdiff_t)(2 * m - pad) * C;
        int32_t *d = d0 + m * cs;
#if TT_DSP_NATIVE
        /* 13 instructions per 2 pixels x 4 channels (15 storing both copies) */
        int32_t n = m_full_end - m, va, vb, t0, t1, w0, w1;
        const int32_t c2 = 2 * C;
/* both column layouts: the pixel pair's channels widened, (a2 a3 b2 b3) stored at +8 */
#define DW_S2_HEAD                                                  \
            "1:\n\t"                                                  \
            "ldr     %[vb], [%[sp], %[C]]\n\t"                         \
            "ldr     %[va], [%[sp]]\n\t"                               \
            "add     %[sp], %[sp], %[c2]\n\t"                          \
            "pkhbt   %[t0], %[va], %[vb], lsl #16\n\t"                 \
            "pkhtb   %[t1], %[vb], %[va], asr #16\n\t"                 \
            "sxtab16 %[w0], %[z], %[t1]\n\t"                           \
            "sxtab16 %[w1], %[z], %[t1], ror #8\n\t"                   \
            "strd    %[w0], %[w1], [%[d], #8]\n\t"
#define DW_S2_T0                                                    \
            "sxtab16 %[w0], %[z], %[t0]\n\t"                           \
            "sxtab16 %[w1], %[z], %[t0], ror #8\n\t"
#define DW_S2_TAIL                                                  \
            "strd    %[w0], %[w1], [%[d]], %[csb]\n\t"                 \
            "subs    %[n], %[n], #1\n\t"                               \
            "bne     1b\n"                                             \
            : [sp] "+r"(sp), [d] "+r"(d), [n] "+r"(n), [va] "=&r"(va), [vb] "=&r"(vb), \
              [t0] "=&r"(t0), [t1] "=&r"(t1), [w0] "=&r"(w0), [w1] "=&r"(w1)
        if (dbl)
            __asm volatile(
            DW_S2_HEAD
            "strd    %[w0], %[w1], [%[d], %[k16] + 8]\n\t"
            DW_S2_T0
            "strd    %[w0], %[w1], [%[d], %[k16]]\n\t"
            DW_S2_TAIL
            : [C] "r"(C), [c2] "r"(c2), [z] "r"(zoff), [csb] "i"(32 * K), [k16] "i"(16 * K)
            : "cc", "memory");
        else
            __asm volatile(
            DW_S2_HEAD
            DW_S2_T0
            DW_S2_TAIL
            : [C] "r"(C), [c2] "r"(c2), [z] "r"(zoff), [csb] "i"(16 * K)
            : "cc", "memory");
#undef DW_S2_HEAD
#undef DW_S2_T0
#undef DW_S2_TAIL
        m = m_full_end;
#else
        for (; m < m_full_end; ++m, sp += 2 * C, d += cs) {
            int32_t va = tt_ld32(sp), vb = tt_ld32(sp + C);
            int32_t t0 = tt_pkhbt_lsl16(va, vb);  /* a0 a1 b0 b1 */
            int32_t t1 = tt_pkhtb_asr16(vb, va);  /* a2 a3 b2 b3 */
            d[0] = tt_sxtab16(zoff, t0);         /* (a0, b0) */
            d[1] = tt_sxtab16_ror8(zoff, t0);    /* (a1, b1) */
            d[2] = tt_sxtab16(zoff, t1);
            d[3] = tt_sxtab16_ror8(zoff, t1);
            if (dbl) dw_dup_column(d, K);
        }
#endif
    } else {
        for (; m < m_full_end; ++m) {
            const int8_t *sp = src + (ptrdiff_t)(2 * m - pad) * C;
            int32_t *d = d0 + m * cs;
            for (int32_t j = 0; j < nc; ++j) d[j] = tt_pack16(sp[j] - zi, sp[C + j] - zi);
            if (dbl) dw_dup_column(d, K);
        }
    }
    if (m < m_end) { /* trailing partial column: (x[W-1], padding) */
        const int8_t *sp = src + (ptrdiff_t)(W - 1) * C;
        int32_t *d = d0 + m * cs;
        if (nc == 4) {
            const int32_t v = tt_ld32(sp);
            const uint32_t e = (uint32_t)tt_sxtab16(zoff, v), o = (uint32_t)tt_sxtab16_ror8(zoff, v);
            d[0] = (int32_t)(e & 0xFFFFu);
            d[1] = (int32_t)(o & 0xFFFFu);
            d[2] = (int32_t)(e >> 16);
            d[3] = (int32_t)(o >> 16);
        } else {
            for (int32_t j = 0; j < nc; ++j) d[j] = tt_pack16(sp[j] - zi, 0);
        }
        if (dbl) dw_dup_column(d, K);
    }
    rg->tag[slot] = iy;
}

/* Zero the columns dw_load_row never writes (padding, and the margin the 4-wide blocks
   read past the last output). */
static void dw_zero_pads(dw_ring *rg, const tt_conv_params *p)
{
    const int32_t cs = TT_DW_BIG ? rg->cs : 4 * rg->k, pad = p->pad;
    const int32_t left = pad / 2, m_end = (p->in_w + pad - 1) / 2 + 1;
    for (int32_t m = 0; m < rg->rw; ++m) {
        if (m == left && m < m_end) m = m_end;
        if (m >= rg->rw) break;
        for (int32_t i = 0; i < cs; ++i) rg->w[m * cs + i] = 0;
    }
}

/* tt_rq_plan_w(q, ..., 8) with its first attempt (the weight-independent bound
   |bias| + k * xmax * 128) in 32-bit arithmetic when that is exact: shift <= -2 (lsh 0),
   t <= 22, an int8 zero point and a bound below 2^31 give the same plan; anything else
   (and a failed first attempt) goes to tt_rq_plan_w. Runs per channel and call, so per
   output row in the fused block. */
TT_INLINE int dw_plan(tt_rq *q, int32_t bias, int32_t mult, int32_t shift, int32_t zero,
                      const int8_t *w, int32_t k, int32_t xmax)
{
    const uint32_t b = bias < 0 ? 0u - (uint32_t)bias : (uint32_t)bias;
    const uint32_t kx = (uint32_t)(k * xmax * 128);
    int32_t t = -1 - shift;
    if (mult >= 0 && shift <= -2 && t <= 22 && zero >= -128 && zero <= 127 &&
        b <= 0x7FFFFFFFu - kx) {
        const int32_t hi_max = (int32_t)(((uint64_t)(b + kx) * (uint32_t)mult) >> 32) + 1;
        while (t > 1 && hi_max < (1 << (t - 2))) --t;
        const int32_t off = (1 << (t - 1)) + zero * (1 << t);
        const uint32_t off_abs = off < 0 ? 0u - (uint32_t)off : (uint32_t)off;
        if ((uint32_t)hi_max + off_abs <= 0x7FFFFFFFu) {
            q->mult = mult;
            q->off = off;
            q->t = t;
            q->lsh = 0;
            return 1;
        }
    }
    return tt_rq_plan_w(q, bias, mult, shift, zero, w, k, xmax, 8);
}

/* Channel c's plan (weights wc): its precomputed record (tt_kernels.h, "Precomputed
   records": every channel of such a layer has one), else dw_plan. 0: no fast plan. */
TT_INLINE int dw_channel_plan(const tt_conv_params *p, int32_t c, const int8_t *wc, int K,
                              tt_rq *q)
{
    if (p->rq != NULL) {
        tt_rq_record(p->rq[c], p->mult[c], p->out_zero, &q->mult, &q->off, &q->t);
        q->lsh = (p->rq[c] & 0xFF) && p->shift[c] >= -1 ? p->shift[c] + 2 : 0;
        return 1;
    }
    return dw_plan(q, p->bias[c], p->mult[c], p->shift[c], p->out_zero, wc, K * K,
                   tt_xmax(p->in_zero));
}

/* Zero all columns of ring slot `slot` (a padding row). */
static void dw_zero_slot(dw_ring *rg, int32_t slot)
{
    const int32_t cs = TT_DW_BIG ? rg->cs : 4 * rg->k;
    const int32_t copies = TT_DW_BIG && rg->dbl ? 2 : 1; /* a double ring: both copies */
    for (int32_t copy = 0; copy < copies; ++copy, slot += rg->k) {
        int32_t *d = rg->w + 4 * slot;
#if TT_DSP_NATIVE
        /* explicit stores: GCC turns the C loop into a memset call per column */
        const int32_t z = 0;
        for (int32_t m = rg->rw; m > 0; --m, d += cs)
            __asm volatile("strd %1, %1, [%0]\n\tstrd %1, %1, [%0, #8]" : : "r"(d), "r"(z)
                           : "memory");
#else
        for (int32_t m = 0; m < rg->rw; ++m, d += cs) d[0] = d[1] = d[2] = d[3] = 0;
#endif
    }
}

/* Per (output row, channel) context of the row loops; the field offsets are used by the
   assembly (bias 0, mult 4, off 8, t 12, C 16, o 20, n 24, weights 32). */
typedef struct {
    int32_t bias, mult, off, t, C;
    uint32_t o; /* output pointer (32-bit target; unused by the C paths) */
    int32_t n, pad;
    int32_t w[]; /* K * NW words (slot-ordered weights) */
} dwk_ctx;

#define DW_NW(K, S) ((S) == 1 ? (K) - 1 : (K) / 2 + 1)

/* Channel weights wc (K x K int8, pre-scaled by 2^lsh) into ws, kernel row r at slot r
   (NW words per slot): A[i] = (w[2i], w[2i+1]), i < h, then B[i] = (w[2i+1], w[2i+2])
   (stride 1) or (w[2h], 0) (stride 2). Rows whose bit is set in padmask (input row
   outside the image) get zeros, so a padding row needs no data in its slot. */
TT_INLINE void dw_pack_ctx(int32_t *ws, const int8_t *wc, uint32_t padmask, int32_t lsh,
                           const int K, const int S)
{
    const int h = K / 2, NW = DW_NW(K, S);
    TT_UNROLL
    for (int r = 0; r < K; ++r, wc += K, ws += NW) {
        if (padmask >> r & 1) {
            TT_UNROLL
            for (int i = 0; i < NW; ++i) ws[i] = 0;
            continue;
        }
        int32_t v[7];
        TT_UNROLL
        for (int i = 0; i < K; ++i) v[i] = (int32_t)((uint32_t)(int32_t)wc[i] << lsh);
        TT_UNROLL
        for (int i = 0; i < h; ++i) ws[i] = tt_pkhbt_lsl16(v[2 * i], v[2 * i + 1]);
        if (S == 1) {
            TT_UNROLL
            for (int i = 0; i < h; ++i) ws[h + i] = tt_pkhbt_lsl16(v[2 * i + 1], v[2 * i + 2]);
        } else {
            ws[h] = (int32_t)((uint32_t)v[2 * h] & 0xFFFFu);
        }
    }
}

#if TT_DSP_NATIVE && TT_DW_BIG
/* Depthwise 5x5 / 7x7 row loops (tt_dwconv_s8.c), 4 outputs per iteration, full int8
   output range; the context cx carries the output pointer and the block count. */
static void dw5_s1_blocks(const int32_t *col, dwk_ctx *cx);
static void dw5_s2_blocks(const int32_t *col, dwk_ctx *cx);
static void dw7_s1_blocks(const int32_t *col, dwk_ctx *cx);
static void dw7_s2_blocks(const int32_t *col, dwk_ctx *cx);
/* the same for the double ring */
static void dw5_s1_blocks_dbl(const int32_t *col, dwk_ctx *cx);
static void dw5_s2_blocks_dbl(const int32_t *col, dwk_ctx *cx);
static void dw7_s1_blocks_dbl(const int32_t *col, dwk_ctx *cx);
static void dw7_s2_blocks_dbl(const int32_t *col, dwk_ctx *cx);
#endif

#if TT_DSP_NATIVE
/* 3x3, stride 1 and 2 (stride 1: 60 instructions per 36 MACs, stride 2: 65): for each of nch channels (contexts CW words apart, ring columns
   and outputs 1 byte/word apart), nb blocks of 4 outputs, full int8 output range.
   col: ring column of the first output of channel 0; slots are 16 bytes apart, columns
   C1 bytes (48 for the ring of 3 slots, 16 * TT_DW_MAP_ROWS for the whole-map layout);
   ADV = 2 * C1 (stride 1) or 4 * C1 (stride 2) bytes per block, REWIND: subtracting nb
   times ADV from col (shifts of nb that add up to ADV). */
#define DW3_REWIND(SH) "sub    %[col], %[col], %[nb], lsl #" SH "\n\t"
#define DW3_CH_STEP(REWIND)                                                  \
    REWIND                                                                   \
    "add    %[col], %[col], #4\n\t"                                          \
    "mul    %[T], %[T], %[nb]\n\t"                                           \
    "sub    %[o], %[o], %[T], lsl #2\n\t"                                    \
    "add    %[o], %[o], #1\n\t"                                              \
    "add    %[cx], %[cx], %[cwb]\n\t"                                        \
    "subs   %[nch], %[nch], #1\n\t"                                          \
    "bne    0b\n"

#define DW3S1_SLOT(C1, wofs, sofs)                               \
    "ldrd   %[A], %[B], [%[cx], #" wofs "]\n\t"                  \
    "ldr    %[P], [%[col], #" sofs "]\n\t"                       \
    "smlad  %[a0], %[P], %[A], %[a0]\n\t"                        \
    "smlatb %[a1], %[P], %[A], %[a1]\n\t"                        \
    "ldr    %[P], [%[col], #" C1 " + " sofs "]\n\t"              \
    "smlabt %[a0], %[P], %[B], %[a0]\n\t"                        \
    "smlad  %[a1], %[P], %[B], %[a1]\n\t"                        \
    "smlad  %[a2], %[P], %[A], %[a2]\n\t"                        \
    "smlatb %[a3], %[P], %[A], %[a3]\n\t"                        \
    "ldr    %[P], [%[col], #2 * " C1 " + " sofs "]\n\t"          \
    "smlabt %[a2], %[P], %[B], %[a2]\n\t"                        \
    "smlad  %[a3], %[P], %[B], %[a3]\n\t"

/* requantize, store the 4 outputs (channel stride T), step to the next block */
#define DW3_BLOCK_END(ADV)                                       \
    "ldrd   %[A], %[B], [%[cx], #4]\n\t"                         \
    "smmla  %[a0], %[a0], %[A], %[B]\n\t"                        \
    "smmla  %[a1], %[a1], %[A], %[B]\n\t"                        \
    "smmla  %[a2], %[a2], %[A], %[B]\n\t"                        \
    "smmla  %[a3], %[a3], %[A], %[B]\n\t"                        \
    "ldrd   %[P], %[T], [%[cx], #12]\n\t"                        \
    "asr    %[a0], %[a0], %[P]\n\t"                              \
    "asr    %[a1], %[a1], %[P]\n\t"                              \
    "asr    %[a2], %[a2], %[P]\n\t"                              \
    "asr    %[a3], %[a3], %[P]\n\t"                              \
    "ssat   %[a0], #8, %[a0]\n\t"                                \
    "ssat   %[a1], #8, %[a1]\n\t"                                \
    "ssat   %[a2], #8, %[a2]\n\t"                                \
    "ssat   %[a3], #8, %[a3]\n\t"                                \
    "strb   %[a0], [%[o]]\n\t"                                   \
    "strb   %[a1], [%[o], %[T]]\n\t"                             \
    "add    %[o], %[o], %[T], lsl #1\n\t"                        \
    "strb   %[a2], [%[o]]\n\t"                                   \
    "strb   %[a3], [%[o], %[T]]\n\t"                             \
    "add    %[o], %[o], %[T], lsl #1\n\t"                        \
    "add    %[col], %[col], #" ADV "\n\t"                        \
    "subs   %[n], %[n], #1\n\t"                                  \
    "bne    1b\n\t"

#define DW3_OPERANDS                                                                   \
    : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [A] "=&r"(A),  \
      [B] "=&r"(B), [P] "=&r"(P), [T] "=&r"(T), [n] "=&r"(n), [col] "+r"(col),       \
      [o] "+r"(o), [cx] "+r"(cx), [nch] "+r"(nch)                                     \
    : [nb] "r"(nb), [cwb] "i"(4 * (8 + 3 * 2))                                        \
    : "cc", "memory"

/* a row-loop function: per channel nb blocks, each starting with the bias in T */
#define DW3_FN(name, BLOCK)                                                        \
    TT_NOINLINE static void name(const int32_t *col, const dwk_ctx *cx, int8_t *o,    \
                                 int32_t nb, int32_t nch)                             \
    {                                                                               \
        int32_t a0, a1, a2, a3, A, B, P, T, n;                                      \
        __asm volatile(                                                             \
            "0:\n\t"                                                                \
            "mov    %[n], %[nb]\n"                                                  \
            "1:\n\t"                                                                \
            "ldr    %[T], [%[cx]]\n\t"                                              \
            BLOCK                                                                   \
            DW3_OPERANDS);                                                          \
    }

#define DW3_S1_FN(name, C1, ADV, REWIND)                                       \
    DW3_FN(name,                                                                \
           "ldrd   %[A], %[B], [%[cx], #32]\n\t"                                \
           "ldr    %[P], [%[col]]\n\t"                                          \
           "smlad  %[a0], %[P], %[A], %[T]\n\t"                                 \
           "smlatb %[a1], %[P], %[A], %[T]\n\t"                                 \
           "ldr    %[P], [%[col], #" C1 "]\n\t"                                 \
           "smlabt %[a0], %[P], %[B], %[a0]\n\t"                                \
           "smlad  %[a1], %[P], %[B], %[a1]\n\t"                                \
           "smlad  %[a2], %[P], %[A], %[T]\n\t"                                 \
           "smlatb %[a3], %[P], %[A], %[T]\n\t"                                 \
           "ldr    %[P], [%[col], #2 * " C1 "]\n\t"                             \
           "smlabt %[a2], %[P], %[B], %[a2]\n\t"                                \
           "smlad  %[a3], %[P], %[B], %[a3]\n\t"                                \
           DW3S1_SLOT(C1, "40", "16")                                           \
           DW3S1_SLOT(C1, "48", "32")                                           \
           DW3_BLOCK_END(ADV)                                                   \
           DW3_CH_STEP(REWIND))

#define DW3S2_SLOT(C1, wofs, sofs)                               \
    "ldrd   %[A], %[B], [%[cx], #" wofs "]\n\t"                  \
    "ldr    %[P], [%[col], #" sofs "]\n\t"                       \
    "smlad  %[a0], %[P], %[A], %[a0]\n\t"                        \
    "ldr    %[P], [%[col], #" C1 " + " sofs "]\n\t"              \
    "smlabb %[a0], %[P], %[B], %[a0]\n\t"                        \
    "smlad  %[a1], %[P], %[A], %[a1]\n\t"                        \
    "ldr    %[P], [%[col], #2 * " C1 " + " sofs "]\n\t"          \
    "smlabb %[a1], %[P], %[B], %[a1]\n\t"                        \
    "smlad  %[a2], %[P], %[A], %[a2]\n\t"                        \
    "ldr    %[P], [%[col], #3 * " C1 " + " sofs "]\n\t"          \
    "smlabb %[a2], %[P], %[B], %[a2]\n\t"                        \
    "smlad  %[a3], %[P], %[A], %[a3]\n\t"                        \
    "ldr    %[P], [%[col], #4 * " C1 " + " sofs "]\n\t"          \
    "smlabb %[a3], %[P], %[B], %[a3]\n\t"

/* slot 0 of a block, the accumulators starting from the bias in T */
#define DW3S2_SLOT0(C1)                                          \
    "ldrd   %[A], %[B], [%[cx], #32]\n\t"                       \
    "ldr    %[P], [%[col]]\n\t"                                  \
    "smlad  %[a0], %[P], %[A], %[T]\n\t"                         \
    "ldr    %[P], [%[col], #" C1 "]\n\t"                         \
    "smlabb %[a0], %[P], %[B], %[a0]\n\t"                        \
    "smlad  %[a1], %[P], %[A], %[T]\n\t"                         \
    "ldr    %[P], [%[col], #2 * " C1 "]\n\t"                     \
    "smlabb %[a1], %[P], %[B], %[a1]\n\t"                        \
    "smlad  %[a2], %[P], %[A], %[T]\n\t"                         \
    "ldr    %[P], [%[col], #3 * " C1 "]\n\t"                     \
    "smlabb %[a2], %[P], %[B], %[a2]\n\t"                        \
    "smlad  %[a3], %[P], %[A], %[T]\n\t"                         \
    "ldr    %[P], [%[col], #4 * " C1 "]\n\t"                     \
    "smlabb %[a3], %[P], %[B], %[a3]\n\t"

#define DW3_S2_FN(name, C1, ADV, REWIND)                                       \
    DW3_FN(name,                                                                \
           DW3S2_SLOT0(C1)                                                      \
           DW3S2_SLOT(C1, "40", "16")                                           \
           DW3S2_SLOT(C1, "48", "32")                                           \
           DW3_BLOCK_END(ADV)                                                   \
           DW3_CH_STEP(REWIND))

/* the ring of 3 slots: columns 48 bytes apart (2 columns = 96 = 64 + 32 per block at
   stride 1, 4 = 192 = 128 + 64 at stride 2) */
DW3_S1_FN(dw3_s1_rows, "48", "96", DW3_REWIND("6") DW3_REWIND("5"))
DW3_S2_FN(dw3_s2_rows, "48", "192", DW3_REWIND("7") DW3_REWIND("6"))
#if TT_DW_BIG
/* the whole map (TT_DW_MAP_ROWS(3) = 10 slots, tt_dw_map_run): columns 160 bytes apart
   (320 = 256 + 64, 640 = 512 + 128) */
DW3_S1_FN(dw3_s1_map_rows, "160", "320", DW3_REWIND("8") DW3_REWIND("6"))
DW3_S2_FN(dw3_s2_map_rows, "160", "640", DW3_REWIND("9") DW3_REWIND("7"))
#endif
#undef DW3_FN
#undef DW3_S1_FN
#undef DW3_S2_FN
#undef DW3S1_SLOT
#undef DW3S2_SLOT
#undef DW3S2_SLOT0
#undef DW3_BLOCK_END
#undef DW3_OPERANDS
#undef DW3_CH_STEP
#undef DW3_REWIND
#endif

#define DW_OUT(acc) tt_ssat8(tt_smmla((acc), mult, off) >> t)
#define DW_CLAMP(v) do { if (clamp) { v = v < lo ? lo : v; v = v > hi ? hi : v; } } while (0)

/* One output row of one channel. col = ring + channel (column m at col[m * 4K]),
   ws = weights in slot order (DW_NW words per slot, zeros for padding rows). */
TT_INLINE void dw_row_fast(const int32_t *col, dwk_ctx *cx, const tt_rq *q, int8_t *o,
                           int32_t C, int32_t wo, int clamp, int32_t lo, int32_t hi,
                           const int K, const int S, int32_t done, int dbl)
{
    const int32_t *ws = cx->w, bias = cx->bias;
    const int h = K / 2, NW = DW_NW(K, S);
    const int32_t CS = dbl ? 8 * K : 4 * K; /* words per ring column */
    const int32_t mult = q->mult, off = q->off, t = q->t;
    int32_t j0 = 0;
#if TT_DSP_NATIVE
    if (!clamp && wo >= 4 && !done && (K == 3 || TT_DW_BIG)) {
        const int32_t nb = wo / 4;
        if (K == 3) {
            if (S == 1) dw3_s1_rows(col, cx, o, nb, 1);
            else dw3_s2_rows(col, cx, o, nb, 1);
        } else {
#if TT_DW_BIG
            cx->o = (uint32_t)(uintptr_t)o;
            cx->n = nb;
            if (dbl) {
                if (K == 5 && S == 1) dw5_s1_blocks_dbl(col, cx);
                else if (K == 5) dw5_s2_blocks_dbl(col, cx);
                else if (S == 1) dw7_s1_blocks_dbl(col, cx);
                else dw7_s2_blocks_dbl(col, cx);
            } else if (K == 5 && S == 1) {
                dw5_s1_blocks(col, cx);
            } else if (K == 5) {
                dw5_s2_blocks(col, cx);
            } else if (S == 1) {
                dw7_s1_blocks(col, cx);
            } else {
                dw7_s2_blocks(col, cx);
            }
#endif
        }
        done = nb;
    }
#endif
    if (done) {
        j0 = 4 * done;
        col += (S == 1 ? 2 : 4) * CS * done;
        o += (ptrdiff_t)4 * C * done;
    }
    if (S == 1) {
        for (int32_t j = j0; j < wo; j += 4, col += 2 * CS) {
            int32_t a0 = bias, a1 = bias, a2 = bias, a3 = bias;
            TT_UNROLL
            for (int s = 0; s < K; ++s) {
                const int32_t *c = col + 4 * s, *A = ws + s * NW, *B = A + h;
                int32_t P0 = c[0], P1 = c[CS];
                a1 = tt_smlatb(P0, A[0], a1);
                a3 = tt_smlatb(P1, A[0], a3);
                a0 = tt_smlad(P0, A[0], a0);
                TT_UNROLL
                for (int i = 0; i < h; ++i) {
                    int32_t Pn = c[(i + 2) * CS]; /* P[i + 2] */
                    if (i + 1 < h) a0 = tt_smlad(P1, A[i + 1], a0);
                    else a0 = tt_smlabt(P1, B[h - 1], a0);
                    a1 = tt_smlad(P1, B[i], a1);
                    a2 = tt_smlad(P1, A[i], a2);
                    if (i + 1 == h) a2 = tt_smlabt(Pn, B[h - 1], a2);
                    a3 = tt_smlad(Pn, B[i], a3);
                    P1 = Pn;
                }
            }
            int32_t v0 = DW_OUT(a0), v1 = DW_OUT(a1), v2 = DW_OUT(a2), v3 = DW_OUT(a3);
            DW_CLAMP(v0);
            DW_CLAMP(v1);
            DW_CLAMP(v2);
            DW_CLAMP(v3);
            if (TT_LIKELY(j + 4 <= wo)) {
                o[0] = (int8_t)v0;
                o[C] = (int8_t)v1;
                o[2 * C] = (int8_t)v2;
                o[3 * C] = (int8_t)v3;
                o += 4 * C;
            } else {
                o[0] = (int8_t)v0;
                if (j + 1 < wo) o[C] = (int8_t)v1;
                if (j + 2 < wo) o[2 * C] = (int8_t)v2;
            }
        }
    } else {
        for (int32_t j = j0; j < wo; j += 2, col += 2 * CS) {
            int32_t a0 = bias, a1 = bias;
            TT_UNROLL
            for (int s = 0; s < K; ++s) {
                const int32_t *c = col + 4 * s, *A = ws + s * NW;
                TT_UNROLL
                for (int i = 0; i < h; ++i) {
                    a0 = tt_smlad(c[i * CS], A[i], a0);
                    a1 = tt_smlad(c[(i + 1) * CS], A[i], a1);
                }
                a0 = tt_smlabb(c[h * CS], A[h], a0);
                a1 = tt_smlabb(c[(h + 1) * CS], A[h], a1);
            }
            int32_t v0 = DW_OUT(a0), v1 = DW_OUT(a1);
            DW_CLAMP(v0);
            DW_CLAMP(v1);
            o[0] = (int8_t)v0;
            if (TT_LIKELY(j + 1 < wo)) o[C] = (int8_t)v1;
            o += 2 * C;
        }
    }
}

/* NW words (a kernel row of a context) from s to d, both word-aligned; on the target two
   at a time (LDRD / STRD; the compiler copies word by word). */
TT_INLINE void dw_copy_row(int32_t *d, const int32_t *s, const int NW)
{
#if TT_DSP_NATIVE
    int32_t a, b, c, e;
    if (NW == 4 || NW == 6) {
        __asm volatile("ldrd    %0, %1, [%4]\n\t"
                       "ldrd    %2, %3, [%4, #8]\n\t"
                       "strd    %0, %1, [%5]\n\t"
                       "strd    %2, %3, [%5, #8]"
                       : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(e)
                       : "r"(s), "r"(d)
                       : "memory");
        if (NW == 6)
            __asm volatile("ldrd    %0, %1, [%2, #16]\n\t"
                           "strd    %0, %1, [%3, #16]"
                           : "=&r"(a), "=&r"(b)
                           : "r"(s), "r"(d)
                           : "memory");
        return;
    }
    if (NW == 2 || NW == 3) {
        __asm volatile("ldrd    %0, %1, [%2]\n\t"
                       "strd    %0, %1, [%3]"
                       : "=&r"(a), "=&r"(b)
                       : "r"(s), "r"(d)
                       : "memory");
        if (NW == 3) d[2] = s[2];
        return;
    }
    (void)a;
    (void)b;
    (void)c;
    (void)e;
#endif
    TT_UNROLL
    for (int i = 0; i < NW; ++i) d[i] = s[i];
}

/* 3x3 over several rows: the contexts of channel j for the 3 rotations (4 * CW words
   apart, CW = DW_CTX_WORDS(3)): rotation 0 packed, 1 and 2 rotated from it (kernel row
   r in slot (rotation + r) mod 3). */
TT_INLINE void dw3_ctx_rotations(int32_t *cx0, const int8_t *wc, const tt_rq *q,
                                 int32_t bias, int32_t C, const int S)
{
    const int NW = DW_NW(3, S), CW = 8 + 3 * 2;
    for (int r = 0; r < 3; ++r) {
        dwk_ctx *cx = (dwk_ctx *)(void *)(cx0 + r * 4 * CW);
        cx->bias = (int32_t)((uint32_t)bias << q->lsh);
        cx->mult = q->mult;
        cx->off = q->off;
        cx->t = q->t;
        cx->C = C;
    }
    int32_t *w0 = cx0 + 8, *w1 = w0 + 4 * CW, *w2 = w1 + 4 * CW;
    dw_pack_ctx(w0, wc, 0, q->lsh, 3, S);
    for (int i = 0; i < NW; ++i) {
        w1[NW + i] = w2[2 * NW + i] = w0[i];
        w1[2 * NW + i] = w2[i] = w0[NW + i];
        w1[i] = w2[NW + i] = w0[2 * NW + i];
    }
}

/* Context stride in words for a K x K kernel: header + K * NW weights (NW <= K - 1). */
#define DW_CTX_WORDS(K) (8 + (K) * ((K) - 1))
/* Context sets: 5x5 / 7x7 keep one per rotation in scratch, built on first use in each
   channel group. 3x3 keeps one in scratch for a one-row call, refreshed when the ring
   rotates; over several rows, in the 3x3 kernels (tt_dwconv_3x3_s1_s8 / _s2_s8, which
   the models run), its 3 rotation sets live on the stack (in `packed`, which 3x3 does
   not need otherwise), built when the group starts, so that a row does not rewrite the
   contexts (about 40 instructions per channel and row). */
#define DW_NROT(K) ((K) == 3 ? 1 : (K))

#if TT_DSP_NATIVE
/* The whole-map path of the three depthwise kernels, one copy (in tt_dwconv_s8.c, with
   the loops of every kernel size it runs). */
int tt_dw_map_run(const tt_conv_params *p, const int8_t *in, int32_t in_row0, int8_t *out,
                  int32_t out_row0, int32_t y0, int32_t y1, void *scratch, int K, int S);
#if TT_DW_BIG
/* the whole-map 5x5 loops (tt_dwconv_s8.c; 7x7 runs the double ring's, same stride) */
static void dw5_s1_blocks_map(const int32_t *col, dwk_ctx *cx);
static void dw5_s2_blocks_map(const int32_t *col, dwk_ctx *cx);
/* Rows [y0, y1) in the whole-map layout (p->dw_map, TT_DW_MAP_SCRATCH_BYTES): a ring of
   R = TT_DW_MAP_ROWS(K) slots with input row iy in slot iy - (y0 * S - pad), so the K
   rows of every output row are K consecutive slots in kernel order: each input row is
   widened once per group, one context per channel serves all rows, and the rows run
   straight through the row loops (3x3: all channels of a group in one call). Returns 0
   (nothing done) when the call's rows do not fit in R slots, out_w is not a multiple of
   4 or the output range is clamped; dw_dsp then runs the ring. */
TT_INLINE int dw_map_k(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                       int8_t *out, int32_t out_row0, int32_t y0, int32_t y1, void *scratch,
                       int K, int S, const int R)
{
    const int32_t C = p->in_c, H = p->in_h, wo = p->out_w, pad = p->pad;
    const int CW = DW_CTX_WORDS(K);
    const int32_t first = y0 * S - pad, nrows = (y1 - 1 - y0) * S + K;
    if (nrows > R || (wo & 3) || !(p->act_min <= -128 && p->act_max >= 127)) return 0;
    dw_ring rg;
    rg.w = (int32_t *)scratch;
    rg.rw = TT_DW_ROW_WORDS(p->in_w, pad);
    rg.k = R;
    rg.cs = 4 * R;
    rg.dbl = 0;
    int32_t *cxw = rg.w + rg.cs * rg.rw;
    dw_zero_pads(&rg, p);
    /* padding rows: the same slots in every group, zeroed once */
    for (int32_t r = 0; r < nrows; ++r)
        if (first + r < 0 || first + r >= H) dw_zero_slot(&rg, r);
    const int8_t *const w_tail = p->w_tail;
    const int32_t wsp = tt_w_split_at(w_tail, p->w_split, C);
    const int8_t *wrow = wsp > 0 ? p->w : w_tail;
    for (int32_t g = 0; g < C; g += 4) {
        const int32_t nc = C - g < 4 ? C - g : 4;
        const int8_t *wcs[4];
        tt_rq q[4];
        int all_fast = 1;
        for (int32_t j = 0; j < nc; ++j) {
            const int32_t c = g + j;
            wcs[j] = wrow;
            wrow = c + 1 == wsp ? w_tail : wrow + K * K;
            all_fast &= dw_channel_plan(p, c, wcs[j], K, &q[j]);
        }
        if (!all_fast) { /* a channel without a fast plan: the group's direct loops */
            for (int32_t y = y0; y < y1; ++y)
                for (int32_t j = 0; j < nc; ++j)
                    dw_row_slow(p, in, in_row0, out + (ptrdiff_t)(y - out_row0) * wo * C + g + j,
                                y, g + j, K, S);
            continue;
        }
        for (int32_t j = 0; j < nc; ++j) {
            dwk_ctx *cx = (dwk_ctx *)(void *)(cxw + j * CW);
            cx->bias = (int32_t)((uint32_t)p->bias[g + j] << q[j].lsh);
            cx->mult = q[j].mult;
            cx->off = q[j].off;
            cx->t = q[j].t;
            cx->C = C;
            /* the packing unrolled for each kernel size */
            if (K == 3) {
                if (S == 1) dw_pack_ctx(cx->w, wcs[j], 0, q[j].lsh, 3, 1);
                else dw_pack_ctx(cx->w, wcs[j], 0, q[j].lsh, 3, 2);
            } else if (K == 5) {
                if (S == 1) dw_pack_ctx(cx->w, wcs[j], 0, q[j].lsh, 5, 1);
                else dw_pack_ctx(cx->w, wcs[j], 0, q[j].lsh, 5, 2);
            } else if (S == 1) {
                dw_pack_ctx(cx->w, wcs[j], 0, q[j].lsh, 7, 1);
            } else {
                dw_pack_ctx(cx->w, wcs[j], 0, q[j].lsh, 7, 2);
            }
        }
        for (int32_t r = first < 0 ? -first : 0; r < nrows && first + r < H; ++r)
            dw_load_row(p, in, in_row0, first + r, g, nc, &rg, r, R, 0);
        for (int32_t y = y0; y < y1; ++y) {
            int8_t *orow = out + (ptrdiff_t)(y - out_row0) * wo * C + g;
            const int32_t *col = rg.w + 4 * (y - y0) * S;
            if (K == 3) {
                if (S == 1) dw3_s1_map_rows(col, (const dwk_ctx *)(void *)cxw, orow, wo / 4, nc);
                else dw3_s2_map_rows(col, (const dwk_ctx *)(void *)cxw, orow, wo / 4, nc);
                continue;
            }
            for (int32_t j = 0; j < nc; ++j) {
                dwk_ctx *cx = (dwk_ctx *)(void *)(cxw + j * CW);
                cx->o = (uint32_t)(uintptr_t)(orow + j);
                cx->n = wo / 4;
                if (K == 5 && S == 1) dw5_s1_blocks_map(col + j, cx);
                else if (K == 5) dw5_s2_blocks_map(col + j, cx);
                else if (S == 1) dw7_s1_blocks_dbl(col + j, cx);
                else dw7_s2_blocks_dbl(col + j, cx);
            }
        }
    }
    return 1;
}

/* two copies: 3x3, and 5x5 / 7x7 (same slots; K and S at run time) */
int tt_dw_map_run(const tt_conv_params *p, const int8_t *in, int32_t in_row0, int8_t *out,
                  int32_t out_row0, int32_t y0, int32_t y1, void *scratch, int K, int S)
{
    if (K == 3)
        return dw_map_k(p, in, in_row0, out, out_row0, y0, y1, scratch, 3, S,
                        TT_DW_MAP_ROWS(3));
    return dw_map_k(p, in, in_row0, out, out_row0, y0, y1, scratch, K, S, TT_DW_MAP_ROWS(5));
}
#endif /* TT_DW_BIG */
#endif

TT_INLINE void dw_dsp(const tt_conv_params *p, const int8_t *in, int32_t in_row0,
                      int8_t *out, int32_t out_row0, int32_t y0, int32_t y1,
                      void *scratch, const int K, const int S)
{
#if TT_DSP_NATIVE
    /* small maps: the whole-map layout when the plan gave its scratch (the 3x3 kernels
       run 3x3, tt_dwconv_s8 the larger kernels; tt_dw_map_run itself is in
       tt_dwconv_s8.c) */
    if ((K == 3) != TT_DW_BIG && p->dw_map && y1 - y0 > 1 &&
        tt_dw_map_run(p, in, in_row0, out, out_row0, y0, y1, scratch, K, S))
        return;
#endif
    const int32_t C = p->in_c, H = p->in_h, wo = p->out_w, pad = p->pad;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int clamp = !(lo <= -128 && hi >= 127);
    const int NW = DW_NW(K, S), CW = DW_CTX_WORDS(K);
    dw_ring rg;
    rg.w = (int32_t *)scratch;
    rg.rw = TT_DW_ROW_WORDS(p->in_w, pad);
    rg.k = K;
    const int one_row = y1 - y0 == 1;
    /* 5x5 / 7x7 over several rows: a double ring (input row iy in slots iy mod K and
       iy mod K + K, 2K slots per column) where it fits in the layer's scratch (ring plus
       K context sets; it needs twice the ring and one set): the K rows of any output row
       are then slots slot0 .. slot0 + K - 1 in kernel order, so one context set (kernel
       order, built when the channel group starts) serves every row, and no rotation is
       ever built. */
    const int dbl = TT_DW_BIG && K >= 5 && !one_row &&
                    2 * K * rg.rw + CW <= K * rg.rw + K * CW;
    rg.dbl = dbl;
    rg.cs = (dbl ? 8 : 4) * K;
    /* contexts [rotation 0..K-1][channel 0..3]: rotation r serves the output rows whose
       first input row lives in slot r (slot s then holds kernel row (s - r) mod K).
       Padding rows are zero data in their slot, so every row uses a rotation. Rotation
       contexts are built on first use in each channel group. */
    int32_t *cxw = rg.w + rg.cs * rg.rw;
#define DW_CTX(r, j) ((dwk_ctx *)(void *)(cxw + ((r) * 4 + (j)) * CW))
    tt_rq plan[4];
    int fast[4];
    const int8_t *wcs[4];
    int32_t packed[4][7 * 6]; /* several rows: each channel's weights in kernel order */
    /* 3x3 rotation contexts in packed (the 3x3 kernels; tt_dwconv_s8 refreshes one set) */
    const int ctx3 = !TT_DW_BIG && K == 3 && !one_row;
    if (ctx3) cxw = &packed[0][0];
    dw_zero_pads(&rg, p);
    /* split weights (tt_dw_w_row): channels [0, wsp) at w, the rest at w_tail; wrow steps
       over the channels' taps */
    const int8_t *const w_tail = p->w_tail;
    const int32_t wsp = tt_w_split_at(w_tail, p->w_split, C);
    const int8_t *wrow = wsp > 0 ? p->w : w_tail;

    for (int32_t g = 0; g < C; g += 4) {
        const int32_t nc = C - g < 4 ? C - g : 4;
        int all_fast = 1;
        for (int32_t j = 0; j < nc; ++j) {
            const int32_t c = g + j;
            wcs[j] = wrow;
            wrow = c + 1 == wsp ? w_tail : wrow + K * K;
            fast[j] = dw_channel_plan(p, c, wcs[j], K, &plan[j]);
            if (fast[j] && ctx3) {
                dw3_ctx_rotations(cxw + j * CW, wcs[j], &plan[j], p->bias[c], C, S);
            } else if (fast[j] && dbl) {
                dwk_ctx *cx = DW_CTX(0, j);
                cx->bias = (int32_t)((uint32_t)p->bias[c] << plan[j].lsh);
                cx->mult = plan[j].mult;
                cx->off = plan[j].off;
                cx->t = plan[j].t;
                cx->C = C;
                dw_pack_ctx(cx->w, wcs[j], 0, plan[j].lsh, K, S);
            } else if (fast[j] && !one_row) {
                dw_pack_ctx(packed[j], wcs[j], 0, plan[j].lsh, K, S);
            }
            all_fast &= fast[j];
        }
        /* A padding row (input row outside the image) contributes 0: in a one-row call
           (the fused block's pattern) through zero weights in the contexts, built for
           the call anyway; over several rows through a zero-filled slot, so that the
           contexts of each rotation are built once.
           built: bit r set when rotation r's contexts hold all K kernel rows (3x3 with
           one context set: at most one bit; with three: all, from the start); a row with padding rows builds its
           contexts with those rows zeroed and leaves them marked unbuilt */
        uint32_t built = ctx3 ? 7u : dbl ? 0x7Fu : 0u; /* all built: 3x3 over several
                                                         rows, double ring */
        for (int32_t sl = 0; sl < K; ++sl) rg.tag[sl] = -1;
        /* slot of input row iy0: iy0 mod K, kept incrementally (no division per row); a
           one-row call loads all its rows anyway, in kernel order (slot0 = 0) */
        int32_t slot0 = one_row ? 0 : ((y0 * S - pad) % K + K) % K;
        for (int32_t y = y0; y < y1; ++y, slot0 = (slot0 + S) % K) {
            const int32_t iy0 = y * S - pad;
            uint32_t padmask = 0;
            for (int32_t r = 0, slot = slot0; r < K; ++r, slot = slot + 1 == K ? 0 : slot + 1) {
                const int32_t iy = iy0 + r;
                if (iy >= 0 && iy < H) {
                    if (rg.tag[slot] != iy) { /* the ring's column stride as a constant */
                        if (dbl) dw_load_row(p, in, in_row0, iy, g, nc, &rg, slot, K, 1);
                        else dw_load_row(p, in, in_row0, iy, g, nc, &rg, slot, K, 0);
                    }
                } else if (one_row) {
                    padmask |= 1u << r; /* zero weights: the slot's data is not read */
                } else if (rg.tag[slot] != -2) { /* zero data: contexts stay reusable */
                    dw_zero_slot(&rg, slot);
                    rg.tag[slot] = -2;
                }
            }
            const int32_t rot = (DW_NROT(K) == 1 && !ctx3) || dbl ? 0 : slot0;
            const uint32_t key = 1u << slot0;
            /* the ring column of the output row's first kernel row (double ring: slot0) */
            const int32_t *ring = dbl ? rg.w + 4 * slot0 : rg.w;
            if (padmask || !(built & key)) {
                /* the header of a context is the same for every rotation: 3x3 (one
                   context set) writes it once per group (flag HDR) */
                const uint32_t HDR = 1u << 31;
                const int hdr = DW_NROT(K) != 1 || !(built & HDR);
                if (DW_NROT(K) == 1) built = (padmask ? 0 : key) | HDR;
                else built = padmask ? built & ~key : built | key;
                for (int32_t j = 0; j < nc; ++j) {
                    if (!fast[j]) continue;
                    dwk_ctx *cx = DW_CTX(rot, j);
                    if (hdr) {
                        cx->bias = (int32_t)((uint32_t)p->bias[g + j] << plan[j].lsh);
                        cx->mult = plan[j].mult;
                        cx->off = plan[j].off;
                        cx->t = plan[j].t;
                        cx->C = C;
                    }
                    if (one_row) { /* slot0 = 0 */
                        dw_pack_ctx(cx->w, wcs[j], padmask, plan[j].lsh, K, S);
                    } else { /* rotate the group's packed weights: kernel row r to slot0 + r */
                        TT_UNROLL
                        for (int r = 0; r < K; ++r) {
                            int32_t *d = cx->w + (slot0 + r < K ? slot0 + r : slot0 + r - K) * NW;
                            dw_copy_row(d, &packed[j][r * NW], NW);
                        }
                    }
                }
            }
            int8_t *orow = out + (ptrdiff_t)(y - out_row0) * wo * C + g;
            int32_t done = 0;
#if TT_DSP_NATIVE
            if (K == 3 && all_fast && !clamp && wo >= 4) { /* all channels in one call */
                done = wo / 4;
                if (S == 1) dw3_s1_rows(rg.w, DW_CTX(rot, 0), orow, done, nc);
                else dw3_s2_rows(rg.w, DW_CTX(rot, 0), orow, done, nc);
                if (4 * done == wo) continue;
            }
#endif
            for (int32_t j = 0; j < nc; ++j) {
                if (TT_LIKELY(fast[j]))
                    dw_row_fast(ring + j, DW_CTX(rot, j), &plan[j], orow + j, C, wo, clamp, lo,
                                hi, K, S, done, dbl);
                else
                    dw_row_slow(p, in, in_row0, orow + j, y, g + j, K, S);
            }
        }
    }
#undef DW_CTX
}

/* out_w: at most one output more than symmetric padding gives (a right padding that
   differs from the left one, e.g. TensorFlow's 'same' at stride 2: none before, one
   after). The row loops read pair words up to out_w + k / 2 (the pair of the output
   past an odd out_w included), which with one more output stays 3 words inside the
   ring's zeroed margin (TT_DW_ROW_WORDS: 4); anything wider takes the direct loops.
   Rows need no test: every row outside [0, in_h) is a zero slot or has zero weights, so
   any out_h (bottom padding != top) is exact. */
static int dw_dsp_ok(const tt_conv_params *p, int32_t k, int32_t s)
{
    return p->k_h == k && p->k_w == k && p->stride == s && p->pad >= 0 && TT_SQUARE(p) &&
           p->out_w >= 1 && p->out_w <= tt_conv_out_size(p->in_w, k, s, p->pad) + 1;
}

#endif /* TT_DSP */
#endif /* TT_DWCONV_CORE_H */
