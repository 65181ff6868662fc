/* Depthwise convolution (in_c == out_c, multiplier 1): input gradient (transposed
 * depthwise convolution, compiler.ref.grad_ops.conv_grad_input with groups = C).
 *
 * DSP variant (even channels; column stride 1, a kernel reaching more than 8 taps per gx
 * pixel on average, or 3x3 / 5x5 / 7x7 at stride 2 along both axes): channels in chunks of
 * 32, per gx pixel and quad of channels the taps that reach it summed in 4 registers (LDRD
 * t, SUB, LDRD weight pairs, 4 SMLAxy per tap) and stored once:
 *   - runs of gx pixels that reach the same taps (stride 1, all taps of a 3x3 / 5x5 / 7x7
 *     kernel: the inner pixels of a full row; stride 2: per column phase the pixels away
 *     from the left and right edges) go through shape-specialised blocks, channel quads
 *     outer, the pixel loop inside the block, weights at fixed offsets (tt_dwgr);
 *   - at stride 2 the edge pixels take the same blocks one pixel at a time;
 *   - the other pixels (stride 1 edges): all reached rows of 1..7 taps in one block.
 * bench (instructions per MAC): 3x3 s1 2.57-3.04, 5x5 s1 1.76-1.89, 7x7 s1 1.15-1.47,
 * 3x3 s2 4.24, 5x5 s2 2.69, 7x7 s2 2.04-2.15 (before the runs: 2.94-3.29, 1.99-2.08,
 * 1.35-1.61, 5.12, 3.95, 2.76-2.85).
 * Otherwise: channels in chunks of 32; the chunk's weights are paired per tap in
 * scratch ((w[c][tap], w[c+1][tap]) as int16 lanes); per gx row: the row is zeroed, then
 * each tap adds its contribution to all the gx pixels it reaches in one call (two
 * channels per SMLABB + SMLATT, accumulated in gx itself).
 * Stride and padding may differ per axis (TT_STRIDE_W / TT_PAD_W for the columns). */
#include "tt_grad_core.h"

#define TT_DW_GIN_CH 32

size_t tt_dwconv_grad_in_s16_scratch_bytes(const tt_conv_params *p)
{
    return TT_DWCONV_GRAD_IN_S16_SCRATCH_BYTES(p->in_c, p->k_h, p->k_w);
}

#if TT_DSP

/* One tap over `count` gx pixels of a row (g_step, t_step apart): g[c] += t[c] * w[c][tap]
   for the chunk's channels (2 np + odd), 4 channels per iteration (2 t words, 2 weight
   pair words, SMLABB / SMLATT into the 4 accumulators in gx). */
#if TT_DSP_NATIVE
/* nq >= 1 quads: per quad 2 LDR (t), LDRD (weight pairs), 2 LDRD + 2 STRD (gx) and 4
   SMLAxy: 12 instructions for 4 MACs with the loop. */
static TT_GRAD_NOINLINE void tt_dw_gin_quads(int32_t *g, int32_t g_step, const int16_t *t,
                                             int32_t t_step, const int32_t *wsp, int32_t nq,
                                             int32_t count)
{
    for (; count > 0; --count, g += g_step, t += t_step) {
    int32_t *gp = g;
    const int16_t *tp = t, *te = t + 4 * nq;
    const int32_t *wp = wsp;
    int32_t t0, t1, w0, w1, g0, g1, g2, g3;
    __asm volatile("1:\n\t"
                   "ldr %[t0], [%[tp]], #4\n\t"
                   "ldr %[t1], [%[tp]], #4\n\t"
                   "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
                   "ldrd %[g0], %[g1], [%[gp]]\n\t"
                   "ldrd %[g2], %[g3], [%[gp], #8]\n\t"
                   "smlabb %[g0], %[t0], %[w0], %[g0]\n\t"
                   "smlatt %[g1], %[t0], %[w0], %[g1]\n\t"
                   "smlabb %[g2], %[t1], %[w1], %[g2]\n\t"
                   "smlatt %[g3], %[t1], %[w1], %[g3]\n\t"
                   "strd %[g2], %[g3], [%[gp], #8]\n\t"
                   "strd %[g0], %[g1], [%[gp]], #16\n\t"
                   "cmp %[tp], %[te]\n\t"
                   "bne 1b\n\t"
                   : [t0] "=&r"(t0), [t1] "=&r"(t1), [w0] "=&r"(w0), [w1] "=&r"(w1),
                     [g0] "=&r"(g0), [g1] "=&r"(g1), [g2] "=&r"(g2), [g3] "=&r"(g3),
                     [tp] "+r"(tp), [wp] "+r"(wp), [gp] "+r"(gp)
                   : [te] "r"(te)
                   : "cc", "memory");
    }
}
#else
static TT_GRAD_NOINLINE void tt_dw_gin_quads(int32_t *g, int32_t g_step, const int16_t *t,
                                             int32_t t_step, const int32_t *wsp, int32_t nq,
                                             int32_t count)
{
    for (; count > 0; --count, g += g_step, t += t_step) {
    int32_t *gp = g;
    const int16_t *tp = t;
    const int32_t *wp = wsp;
    for (int32_t q = 0; q < nq; ++q, gp += 4, tp += 4, wp += 2) {
        const int32_t t0 = tt_ld32(tp), t1 = tt_ld32(tp + 2), w0 = wp[0], w1 = wp[1];
        gp[0] = tt_smlabb(t0, w0, gp[0]);
        gp[1] = tt_smlatt(t0, w0, gp[1]);
        gp[2] = tt_smlabb(t1, w1, gp[2]);
        gp[3] = tt_smlatt(t1, w1, gp[3]);
    }
    }
}
#endif

/* One tap over `count` gx pixels of a row (g_step, t_step apart): g[c] += t[c] * w[c][tap]
   for the chunk's channels (2 np + odd). */
static void tt_dw_gin_row(int32_t *g, int32_t g_step, const int16_t *t, int32_t t_step,
                          const int32_t *wsp, int32_t np, int32_t odd, int32_t wlast,
                          int32_t count)
{
    const int32_t nq = np / 2;
    if (nq) tt_dw_gin_quads(g, g_step, t, t_step, wsp, nq, count);
    if (!(np & 1) && !odd) return;
    for (; count > 0; --count, g += g_step, t += t_step) {
        int32_t *gp = g + 4 * nq;
        const int16_t *tp = t + 4 * nq;
        if (np & 1) {
            const int32_t t0 = tt_ld32(tp), w0 = wsp[2 * nq];
            gp[0] = tt_smlabb(t0, w0, gp[0]);
            gp[1] = tt_smlatt(t0, w0, gp[1]);
            gp += 2;
            tp += 2;
        }
        if (odd) gp[0] += tp[0] * wlast;
    }
}

/* ---- stride 1 along the columns: accumulation in registers ------------------------------
 * Per gx pixel and channel quad, the reached taps (a run of kx per reached ky row) are
 * summed in 4 registers and stored once. Weights in scratch per quad and tap
 * ((w[c][tap], w[c+1][tap]), (w[c+2][tap], w[c+3][tap])), then per tap the pair of a
 * leftover channel pair. */
typedef struct {
    int32_t nq, taps2;  /* quads; weight words per quad (2 per tap) */
    int32_t nky, nkx;   /* reached rows of taps, taps per row */
    int32_t ch;         /* t elements per pixel */
    int32_t tadj, wadj; /* from the end of a row of taps to the start of the next */
    int32_t full;       /* 3 / 5 / 7: all taps of a square kernel, stride 1 (wadj = 0) */
} tt_dwg_run;

#if TT_DSP_NATIVE
/* One tap of a quad: LDRD t (4 channels), SUB (next t pixel), LDRD weights, 4 SMLAxy. */
#define TT_DWG_TAP                                                                         \
    "ldrd %[t0], %[t1], [%[tp]]\n\t"                                                       \
    "sub %[tp], %[tp], %[cb]\n\t"                                                          \
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"                                                   \
    "smlabb %[g0], %[t0], %[w0], %[g0]\n\t"                                                \
    "smlatt %[g1], %[t0], %[w0], %[g1]\n\t"                                                \
    "smlabb %[g2], %[t1], %[w1], %[g2]\n\t"                                                \
    "smlatt %[g3], %[t1], %[w1], %[g3]\n\t"
#define TT_DWG_OPS                                                                         \
    : [t0] "=&r"(t0), [t1] "=&r"(t1), [w0] "=&r"(w0), [w1] "=&r"(w1), [g0] "+r"(g0),        \
      [g1] "+r"(g1), [g2] "+r"(g2), [g3] "+r"(g3), [tp] "+r"(tp), [wp] "+r"(wp)             \
    : [cb] "r"(cb)                                                                         \
    : "memory"

/* A full row of 3 / 5 / 7 taps, then to the next row (wadj = 0 for full rows, stride 1). */
#define TT_DWG_ROW3 TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP "add %[tp], %[tp], %[ta]\n\t"
#define TT_DWG_ROW5 TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP \
    "add %[tp], %[tp], %[ta]\n\t"
#define TT_DWG_ROW7 TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP TT_DWG_TAP \
    TT_DWG_TAP "add %[tp], %[tp], %[ta]\n\t"
#define TT_DWG_OPS_FULL                                                                    \
    : [t0] "=&r"(t0), [t1] "=&r"(t1), [w0] "=&r"(w0), [w1] "=&r"(w1), [g0] "+r"(g0),        \
      [g1] "+r"(g1), [g2] "+r"(g2), [g3] "+r"(g3), [tp] "+r"(tp), [wp] "+r"(wp)             \
    : [cb] "r"(cb), [ta] "r"(ta)                                                           \
    : "memory"

/* Rows of NX taps until wp reaches we: per tap LDRD t, SUB (ADD ta after a row's last
   tap), LDRD weights, 4 SMLAxy; per row ADD wa, LDR we, CMP, BNE. */
#define TT_DWG_SMLA4                                                                       \
    "smlabb %[g0], %[t0], %[w0], %[g0]\n\t"                                                \
    "smlatt %[g1], %[t0], %[w0], %[g1]\n\t"                                                \
    "smlabb %[g2], %[t1], %[w1], %[g2]\n\t"                                                \
    "smlatt %[g3], %[t1], %[w1], %[g3]\n\t"
#define TT_DWG_ROWS(NX)                                                                    \
    {                                                                                      \
        const int32_t *we = wp + span;                                                     \
        __asm volatile("1:\n\t"                                                            \
                       ".rept " NX " - 1\n\t"                                              \
                       "ldrd %[t0], %[t1], [%[tp]]\n\t"                                    \
                       "sub %[tp], %[tp], %[cb]\n\t"                                       \
                       "ldrd %[w0], %[w1], [%[wp]], #8\n\t" TT_DWG_SMLA4                   \
                       ".endr\n\t"                                                         \
                       "ldrd %[t0], %[t1], [%[tp]]\n\t"                                    \
                       "add %[tp], %[tp], %[ta]\n\t"                                       \
                       "ldrd %[w0], %[w1], [%[wp]], #8\n\t" TT_DWG_SMLA4                   \
                       "add %[wp], %[wp], %[wa]\n\t"                                       \
                       "ldr %[t0], %[we]\n\t"                                              \
                       "cmp %[wp], %[t0]\n\t"                                              \
                       "bne 1b\n\t"                                                        \
                       : [t0] "=&r"(t0), [t1] "=&r"(t1), [w0] "=&r"(w0), [w1] "=&r"(w1),    \
                         [g0] "+r"(g0), [g1] "+r"(g1), [g2] "+r"(g2), [g3] "+r"(g3),        \
                         [tp] "+r"(tp), [wp] "+r"(wp)                                       \
                       : [cb] "r"(cb), [ta] "r"(tl), [wa] "r"(wa), [we] "m"(we)             \
                       : "cc", "memory");                                                  \
    }

/* The quads of one gx pixel: g[c] = sum over the run's taps of t[c] * w[c][tap]
   (t: the first tap's t pixel, word aligned, ch even; w: the first tap's weights). */
/* The quads of a pixel, each summed by BODY (asm over the run from tp / wp). */
#define TT_DWG_QUADS(BODY)                                                                 \
    for (int32_t q = 0; q < nq; ++q, g += 4, t += 4, w += taps2) {                         \
        int32_t g0 = 0, g1 = 0, g2 = 0, g3 = 0, t0, t1, w0, w1;                            \
        const int16_t *tp = t;                                                             \
        const int32_t *wp = w;                                                             \
        BODY;                                                                              \
        g[0] = g0;                                                                         \
        g[1] = g1;                                                                         \
        g[2] = g2;                                                                         \
        g[3] = g3;                                                                         \
    }

static TT_GRAD_NOINLINE void tt_dw_gin_px(int32_t *g, const int16_t *t, const int32_t *w,
                                          const tt_dwg_run *r)
{
    const int32_t nq = r->nq, taps2 = r->taps2, nkx = r->nkx, cb = r->ch * 2, ta = r->tadj * 2;
    switch (r->full) { /* all taps of a 3x3 / 5x5 / 7x7 kernel: rows unrolled too */
    case 3:
        TT_DWG_QUADS(__asm volatile(TT_DWG_ROW3 TT_DWG_ROW3 TT_DWG_ROW3 TT_DWG_OPS_FULL));
        return;
    case 5:
        TT_DWG_QUADS(__asm volatile(TT_DWG_ROW5 TT_DWG_ROW5 TT_DWG_ROW5 TT_DWG_ROW5 TT_DWG_ROW5
                                        TT_DWG_OPS_FULL));
        return;
    case 7:
        TT_DWG_QUADS(__asm volatile(TT_DWG_ROW7 TT_DWG_ROW7 TT_DWG_ROW7 TT_DWG_ROW7 TT_DWG_ROW7
                                        TT_DWG_ROW7 TT_DWG_ROW7 TT_DWG_OPS_FULL));
        return;
    default:
        break;
    }
    /* a run of nkx taps per reached row: the rows in one block (t: ta from a row's last
       tap to the next row's first; weights: wa between rows, up to we) */
    const int32_t tl = r->tadj * 2 - cb, wa = r->wadj * 4, span = r->nky * (r->wadj + 2 * nkx);
    switch (nkx) {
    case 1: TT_DWG_QUADS(TT_DWG_ROWS("1")); return;
    case 2: TT_DWG_QUADS(TT_DWG_ROWS("2")); return;
    case 3: TT_DWG_QUADS(TT_DWG_ROWS("3")); return;
    case 4: TT_DWG_QUADS(TT_DWG_ROWS("4")); return;
    case 5: TT_DWG_QUADS(TT_DWG_ROWS("5")); return;
    case 6: TT_DWG_QUADS(TT_DWG_ROWS("6")); return;
    case 7: TT_DWG_QUADS(TT_DWG_ROWS("7")); return;
    default: break;
    }
    const int32_t nky = r->nky, tadj = r->tadj, wadj = r->wadj;
    TT_DWG_QUADS(for (int32_t ky = nky; ky > 0; --ky, tp += tadj, wp += wadj) {
        for (int32_t k = nkx; k > 0; --k) __asm volatile(TT_DWG_TAP TT_DWG_OPS);
    })
}
#else
static TT_GRAD_NOINLINE void tt_dw_gin_px(int32_t *g, const int16_t *t, const int32_t *w,
                                          const tt_dwg_run *r)
{
    for (int32_t q = 0; q < r->nq; ++q, g += 4, t += 4, w += r->taps2) {
        int32_t g0 = 0, g1 = 0, g2 = 0, g3 = 0;
        const int16_t *tp = t;
        const int32_t *wp = w;
        for (int32_t ky = r->nky; ky > 0; --ky, tp += r->tadj, wp += r->wadj) {
            for (int32_t k = r->nkx; k > 0; --k, tp -= r->ch, wp += 2) {
                const int32_t t0 = tt_ld32(tp), t1 = tt_ld32(tp + 2);
                g0 = tt_smlabb(t0, wp[0], g0);
                g1 = tt_smlatt(t0, wp[0], g1);
                g2 = tt_smlabb(t1, wp[1], g2);
                g3 = tt_smlatt(t1, wp[1], g3);
            }
        }
        g[0] = g0;
        g[1] = g1;
        g[2] = g2;
        g[3] = g3;
    }
}
#endif

/* ---- runs of gx pixels that reach the same taps (tt_dwgr) --------------------------------
 * Stride 2 along both axes (3x3 / 5x5 / 7x7): away from the left and right edges, the
 * gx pixels of one column phase (px = ix + pad_w even, or odd) all reach the same taps:
 * nx = (kw + 1) / 2 or kw / 2 columns of taps (stored consecutively, phase-major) in the
 * ny rows of taps of their gx row; such a run is 2 gx pixels and 1 t pixel apart.
 * Stride 1, all taps of a 3x3 / 5x5 / 7x7 kernel: the inner pixels of a row whose pixels
 * reach every row of taps, 1 gx pixel and 1 t pixel apart.
 * Per channel quad: the ny x nx taps of a pixel summed in 4 registers (the first by
 * SMULxy, no zeroing), the weights read at offsets fixed by (ny, nx, kw, stride), stored
 * by 2 STRD; the pixel loop is in the same block (TT_DWGR_FN). */
#define TT_DWG2_SHAPE(p)                                                                   \
    ((p)->stride == 2 && TT_STRIDE_W(p) == 2 && (p)->k_h == (p)->k_w &&                    \
     ((p)->k_w == 3 || (p)->k_w == 5 || (p)->k_w == 7))

typedef struct {
    int32_t nq, n;    /* quads; pixels in the run (n >= 1) */
    int32_t taps2;    /* weight words per quad */
    int32_t ch, trow; /* t elements per pixel, per row */
} tt_dwg2_run;

#if TT_DSP_NATIVE
/* One pixel: ny rows of nx taps; t walks back ch per tap (cb bytes) and a row up (rj
   bytes from a row's last tap to the next row's first), the weights at
   i * rs + j * 8 bytes; then the 4 sums are stored, t moves to the next pixel's first
   tap (rn bytes on) and gx 2 pixels on (4 cb bytes), until gx reaches ge. */
#define TT_DWG2_LOOP                                                                       \
    "1:\n\t"                                                                               \
    ".set .Ltt_i, 0\n\t"                                                                   \
    ".rept %c[ny]\n\t"                                                                     \
    ".set .Ltt_j, 0\n\t"                                                                   \
    ".rept %c[nx]\n\t"                                                                     \
    "ldrd %[t0], %[t1], [%[tp]]\n\t"                                                       \
    "ldrd %[w0], %[w1], [%[wp], #(.Ltt_i * %c[rs] + .Ltt_j * 8)]\n\t"                      \
    ".if .Ltt_i + .Ltt_j\n\t"                                                              \
    "smlabb %[g0], %[t0], %[w0], %[g0]\n\t"                                                \
    "smlatt %[g1], %[t0], %[w0], %[g1]\n\t"                                                \
    "smlabb %[g2], %[t1], %[w1], %[g2]\n\t"                                                \
    "smlatt %[g3], %[t1], %[w1], %[g3]\n\t"                                                \
    ".else\n\t"                                                                            \
    "smulbb %[g0], %[t0], %[w0]\n\t"                                                       \
    "smultt %[g1], %[t0], %[w0]\n\t"                                                       \
    "smulbb %[g2], %[t1], %[w1]\n\t"                                                       \
    "smultt %[g3], %[t1], %[w1]\n\t"                                                       \
    ".endif\n\t"                                                                           \
    ".if .Ltt_j < %c[nx] - 1\n\t"                                                          \
    "sub %[tp], %[tp], %[cb]\n\t"                                                          \
    ".elseif .Ltt_i < %c[ny] - 1\n\t"                                                      \
    "sub %[tp], %[tp], %[rj]\n\t"                                                          \
    ".endif\n\t"                                                                           \
    ".set .Ltt_j, .Ltt_j + 1\n\t"                                                          \
    ".endr\n\t"                                                                            \
    ".set .Ltt_i, .Ltt_i + 1\n\t"                                                          \
    ".endr\n\t"                                                                            \
    "strd %[g0], %[g1], [%[gp]]\n\t"                                                       \
    "strd %[g2], %[g3], [%[gp], #8]\n\t"                                                   \
    "ldr %[t0], %[rn]\n\t"                                                                 \
    "add %[tp], %[tp], %[t0]\n\t"                                                          \
    "add %[gp], %[gp], %[cb], lsl %[gs]\n\t"                                               \
    "ldr %[t0], %[ge]\n\t"                                                                 \
    "cmp %[gp], %[t0]\n\t"                                                                 \
    "bne 1b\n\t"

#define TT_DWGR_FN(NAME, NY, NX, KW, S)                                                    \
    static TT_GRAD_NOINLINE void NAME(int32_t *g, const int16_t *t, const int32_t *w,        \
                                      const tt_dwg2_run *r)                                \
    {                                                                                      \
        const int32_t cb = r->ch * 2, rj = (r->trow - ((NX) - 1) * r->ch) * 2;             \
        const int32_t rn = (((NY) - 1) * r->trow + (NX) * r->ch) * 2;                      \
        const int32_t taps2 = r->taps2, nq = r->nq, gspan = r->n * (S) * r->ch;            \
        for (int32_t q = 0; q < nq; ++q, g += 4, t += 4, w += taps2) {                     \
            int32_t *gp = g, *ge = g + gspan;                                              \
            const int16_t *tp = t;                                                         \
            int32_t g0, g1, g2, g3, t0, t1, w0, w1;                                        \
            __asm volatile(TT_DWG2_LOOP                                                    \
                           : [g0] "=&r"(g0), [g1] "=&r"(g1), [g2] "=&r"(g2),                \
                             [g3] "=&r"(g3), [t0] "=&r"(t0), [t1] "=&r"(t1),                \
                             [w0] "=&r"(w0), [w1] "=&r"(w1), [tp] "+r"(tp), [gp] "+r"(gp)   \
                           : [wp] "r"(w), [cb] "r"(cb), [rj] "r"(rj), [rn] "m"(rn),         \
                             [ge] "m"(ge), [ny] "i"(NY), [nx] "i"(NX),                     \
                             [rs] "i"(8 * (KW) * (S)), [gs] "i"(S)                              \
                           : "cc", "memory");                                              \
        }                                                                                  \
    }
#else
#define TT_DWGR_FN(NAME, NY, NX, KW, S)                                                    \
    static TT_GRAD_NOINLINE void NAME(int32_t *g, const int16_t *t, const int32_t *w,        \
                                      const tt_dwg2_run *r)                                \
    {                                                                                      \
        for (int32_t q = 0; q < r->nq; ++q, g += 4, t += 4, w += r->taps2) {               \
            int32_t *gp = g;                                                               \
            const int16_t *tp = t;                                                         \
            for (int32_t m = 0; m < r->n; ++m, gp += (S) * r->ch, tp += r->ch) {           \
                int32_t g0 = 0, g1 = 0, g2 = 0, g3 = 0;                                    \
                for (int32_t i = 0; i < (NY); ++i) {                                       \
                    for (int32_t j = 0; j < (NX); ++j) {                                   \
                        const int16_t *tk = tp - i * r->trow - j * r->ch;                  \
                        const int32_t *wk = w + 2 * (KW) * (S) * i + 2 * j;                \
                        const int32_t ta = tt_ld32(tk), tb = tt_ld32(tk + 2);              \
                        g0 = tt_smlabb(ta, wk[0], g0);                                     \
                        g1 = tt_smlatt(ta, wk[0], g1);                                     \
                        g2 = tt_smlabb(tb, wk[1], g2);                                     \
                        g3 = tt_smlatt(tb, wk[1], g3);                                     \
                    }                                                                      \
                }                                                                          \
                gp[0] = g0;                                                                \
                gp[1] = g1;                                                                \
                gp[2] = g2;                                                                \
                gp[3] = g3;                                                                \
            }                                                                              \
        }                                                                                  \
    }
#endif

#define TT_DWG2_FN(NAME, NY, NX, KW) TT_DWGR_FN(NAME, NY, NX, KW, 2)

/* stride 1: the gx pixels of a row that reach all taps (full rows of taps and columns) */
TT_DWGR_FN(tt_dwg1_3, 3, 3, 3, 1)
TT_DWGR_FN(tt_dwg1_5, 5, 5, 5, 1)
TT_DWGR_FN(tt_dwg1_7, 7, 7, 7, 1)

static void (*const tt_dwg1_fns[3])(int32_t *, const int16_t *, const int32_t *,
                                    const tt_dwg2_run *) = {tt_dwg1_3, tt_dwg1_5, tt_dwg1_7};

/* the shapes: ny = 1 .. (kw + 1) / 2 rows of nx = 1 .. (kw + 1) / 2 taps (a run: nx =
   (kw + 1) / 2 or kw / 2; single pixels at the left and right edges: fewer) */
TT_DWG2_FN(tt_dwg2_3_11, 1, 1, 3)
TT_DWG2_FN(tt_dwg2_3_12, 1, 2, 3)
TT_DWG2_FN(tt_dwg2_3_21, 2, 1, 3)
TT_DWG2_FN(tt_dwg2_3_22, 2, 2, 3)
TT_DWG2_FN(tt_dwg2_5_11, 1, 1, 5)
TT_DWG2_FN(tt_dwg2_5_12, 1, 2, 5)
TT_DWG2_FN(tt_dwg2_5_13, 1, 3, 5)
TT_DWG2_FN(tt_dwg2_5_21, 2, 1, 5)
TT_DWG2_FN(tt_dwg2_5_22, 2, 2, 5)
TT_DWG2_FN(tt_dwg2_5_23, 2, 3, 5)
TT_DWG2_FN(tt_dwg2_5_31, 3, 1, 5)
TT_DWG2_FN(tt_dwg2_5_32, 3, 2, 5)
TT_DWG2_FN(tt_dwg2_5_33, 3, 3, 5)
TT_DWG2_FN(tt_dwg2_7_11, 1, 1, 7)
TT_DWG2_FN(tt_dwg2_7_12, 1, 2, 7)
TT_DWG2_FN(tt_dwg2_7_13, 1, 3, 7)
TT_DWG2_FN(tt_dwg2_7_14, 1, 4, 7)
TT_DWG2_FN(tt_dwg2_7_21, 2, 1, 7)
TT_DWG2_FN(tt_dwg2_7_22, 2, 2, 7)
TT_DWG2_FN(tt_dwg2_7_23, 2, 3, 7)
TT_DWG2_FN(tt_dwg2_7_24, 2, 4, 7)
TT_DWG2_FN(tt_dwg2_7_31, 3, 1, 7)
TT_DWG2_FN(tt_dwg2_7_32, 3, 2, 7)
TT_DWG2_FN(tt_dwg2_7_33, 3, 3, 7)
TT_DWG2_FN(tt_dwg2_7_34, 3, 4, 7)
TT_DWG2_FN(tt_dwg2_7_41, 4, 1, 7)
TT_DWG2_FN(tt_dwg2_7_42, 4, 2, 7)
TT_DWG2_FN(tt_dwg2_7_43, 4, 3, 7)
TT_DWG2_FN(tt_dwg2_7_44, 4, 4, 7)

typedef void (*tt_dwg2_fn)(int32_t *, const int16_t *, const int32_t *, const tt_dwg2_run *);

/* [kw / 2 - 1][ny - 1][nx - 1] */
static const tt_dwg2_fn tt_dwg2_fns[3][4][4] = {
    {{tt_dwg2_3_11, tt_dwg2_3_12}, {tt_dwg2_3_21, tt_dwg2_3_22}},
    {{tt_dwg2_5_11, tt_dwg2_5_12, tt_dwg2_5_13},
     {tt_dwg2_5_21, tt_dwg2_5_22, tt_dwg2_5_23},
     {tt_dwg2_5_31, tt_dwg2_5_32, tt_dwg2_5_33}},
    {{tt_dwg2_7_11, tt_dwg2_7_12, tt_dwg2_7_13, tt_dwg2_7_14},
     {tt_dwg2_7_21, tt_dwg2_7_22, tt_dwg2_7_23, tt_dwg2_7_24},
     {tt_dwg2_7_31, tt_dwg2_7_32, tt_dwg2_7_33, tt_dwg2_7_34},
     {tt_dwg2_7_41, tt_dwg2_7_42, tt_dwg2_7_43, tt_dwg2_7_44}},
};

/* ch even, t word aligned, kw <= TT_DW_GIN_KW: per gx pixel the reached taps summed in
   registers (tt_dw_gin_px), the leftover channel pair and odd channel in C. The taps of a
   weight row are stored phase-major (kx = 0, sw, 2 sw, ..., then 1, 1 + sw, ...): the
   taps that reach a gx pixel are then consecutive in each row, their t pixels ch apart. */
#define TT_DW_GIN_KW 16

static void dw_gin_regs(const tt_conv_params *p, const int16_t *t, int32_t t_row0, int32_t *gx,
                        int32_t gx_row0, int32_t y0, int32_t y1, int32_t *ws)
{
    const int32_t ch = p->in_c, kh = p->k_h, kw = p->k_w, s = p->stride, pad = p->pad;
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p);
    const int32_t ho = p->out_h, wo = p->out_w, wi = p->in_w, taps = kh * kw;
    const int32_t full = kh == kw && s == 1 && sw == 1 && (kw == 3 || kw == 5 || kw == 7) ? kw : 0;
    int32_t pos[TT_DW_GIN_KW]; /* stored position of tap column kx */
    for (int32_t r = 0, n = 0; r < sw && r < kw; ++r)
        for (int32_t kx = r; kx < kw; kx += sw) pos[kx] = n++;
    /* stride 2 (tt_dwg2_fns): per column phase (px & 1), the run of gx pixels (first
       ra[ph], 2 apart, nr[ph] of them) that reach all the phase's tap columns */
    const int32_t s2 = TT_DWG2_SHAPE(p);
    int32_t ra[2] = {0, 0}, nr[2] = {0, 0};
    /* stride 1, all taps (full): the gx pixels f0 .. f0 + nf - 1 of a row reach every tap
       column (the run of the rows that reach every row of taps: tt_dwg1_fns) */
    int32_t f0 = 0, nf = 0;
    if (full) {
        const int32_t f1 = wo - 1 - pw < wi - 1 ? wo - 1 - pw : wi - 1;
        f0 = kw - 1 - pw > 0 ? kw - 1 - pw : 0;
        nf = f1 >= f0 ? f1 - f0 + 1 : 0;
    }
    for (int32_t ix = 0; s2 && ix < wi; ++ix) {
        const int32_t px = ix + pw, ph = px & 1, lo = px - (wo - 1) * 2;
        const int32_t kx0 = lo > 0 ? lo : ph, hi = px < kw - 1 ? px : kw - 1;
        if (kx0 == ph && hi >= kx0 && (hi - kx0) / 2 + 1 == (kw + 1 - ph) / 2) {
            if (!nr[ph]) ra[ph] = ix;
            ++nr[ph];
        }
    }
    for (int32_t c0 = 0; c0 < ch; c0 += TT_DW_GIN_CH) {
        const int32_t nc = ch - c0 < TT_DW_GIN_CH ? ch - c0 : TT_DW_GIN_CH;
        const int32_t np = nc / 2, nq = np / 2, odd = nc & 1, pair = np & 1;
        for (int32_t q = 0; q < nq; ++q) {
            const int8_t *wa = tt_dw_w_row(p, c0 + 4 * q), *wb = tt_dw_w_row(p, c0 + 4 * q + 1);
            const int8_t *wc = tt_dw_w_row(p, c0 + 4 * q + 2), *wd = tt_dw_w_row(p, c0 + 4 * q + 3);
            int32_t *wq = ws + q * taps * 2;
            for (int32_t ky = 0, tap = 0; ky < kh; ++ky, wq += kw * 2) {
                for (int32_t kx = 0; kx < kw; ++kx, ++tap) {
                    int32_t *at = wq + pos[kx] * 2;
                    at[0] = tt_pkhbt_lsl16(wa[tap], wb[tap]);
                    at[1] = tt_pkhbt_lsl16(wc[tap], wd[tap]);
                }
            }
        }
        int32_t *wpair = ws + nq * taps * 2; /* the leftover pair (np odd) */
        if (pair) {
            const int8_t *wa = tt_dw_w_row(p, c0 + 4 * nq), *wb = tt_dw_w_row(p, c0 + 4 * nq + 1);
            for (int32_t ky = 0, tap = 0; ky < kh; ++ky)
                for (int32_t kx = 0; kx < kw; ++kx, ++tap)
                    wpair[ky * kw + pos[kx]] = tt_pkhbt_lsl16(wa[tap], wb[tap]);
        }
        const int8_t *wl = tt_dw_w_row(p, c0 + nc - 1); /* last channel (odd nc) */
        tt_dwg_run r;
        r.nq = nq;
        r.taps2 = taps * 2;
        r.ch = ch;
        for (int32_t iy = y0; iy < y1; ++iy) {
            int32_t *g = gx + (ptrdiff_t)(iy - gx_row0) * wi * ch + c0;
            /* reached rows of taps: ky = ky0, ky0 + s, ... (oy = oy0, oy0 - 1, ...) */
            int32_t ky0 = (iy + pad) % s;
            while (ky0 < kh && (iy + pad - ky0) / s >= ho) ky0 += s;
            int32_t nky = 0;
            for (int32_t ky = ky0; ky < kh && iy + pad - ky >= 0; ky += s) ++nky;
            const int32_t oy0 = (iy + pad - ky0) / s;
            const int16_t *trow = t + (ptrdiff_t)(oy0 - t_row0) * wo * ch + c0;
            const int32_t frun = nf && nq && nky == kh;
            if (frun) {
                tt_dwg2_run rr = {nq, nf, taps * 2, ch, wo * ch};
                tt_dwg1_fns[kw / 2 - 1](g + (ptrdiff_t)f0 * ch, trow + (ptrdiff_t)(f0 + pw) * ch,
                                        ws + ky0 * kw * 2, &rr);
            }
            const int32_t runs = s2 && nq && nky > 0;
            if (runs) {
                const tt_dwg2_run r2 = {nq, 0, taps * 2, ch, wo * ch};
                for (int32_t ph = 0; ph < 2; ++ph) {
                    if (!nr[ph]) continue;
                    tt_dwg2_run rr = r2;
                    rr.n = nr[ph];
                    tt_dwg2_fns[kw / 2 - 1][nky - 1][(kw + 1 - ph) / 2 - 1](
                        g + (ptrdiff_t)ra[ph] * ch, trow + (ptrdiff_t)((ra[ph] + pw - ph) / 2) * ch,
                        ws + (ky0 * kw + pos[ph]) * 2, &rr);
                }
            }
            for (int32_t ix = 0; ix < wi; ++ix) {
                int32_t *gp = g + (ptrdiff_t)ix * ch;
                /* reached tap columns kx0, kx0 + sw, ... (ox = ox0, ox0 - 1, ...) */
                const int32_t px = ix + pw, lo = px - (wo - 1) * sw;
                const int32_t kx0 = lo > 0 ? lo : px % sw;
                const int32_t hi = px < kw - 1 ? px : kw - 1;
                const int32_t nkx = hi >= kx0 ? (hi - kx0) / sw + 1 : 0;
                if (nky <= 0 || nkx <= 0) {
                    memset(gp, 0, (size_t)nc * 4u);
                    continue;
                }
                r.nky = nky;
                r.nkx = nkx;
                r.tadj = (nkx - wo) * ch;
                r.wadj = (s * kw - nkx) * 2;
                r.full = nky == kh && nkx == kw ? full : 0;
                const int16_t *tp = trow + (ptrdiff_t)((px - kx0) / sw) * ch;
                const int32_t tap0 = ky0 * kw + pos[kx0];
                const int32_t ph = px & 1;
                if ((runs && (uint32_t)(ix - ra[ph]) < (uint32_t)(2 * nr[ph])) ||
                    (frun && (uint32_t)(ix - f0) < (uint32_t)nf)) {
                    /* done by the run */
                } else if (runs) { /* a pixel at the left or right edge */
                    tt_dwg2_run r1 = {nq, 1, taps * 2, ch, wo * ch};
                    tt_dwg2_fns[kw / 2 - 1][nky - 1][nkx - 1](gp, tp, ws + tap0 * 2, &r1);
                } else if (nq) {
                    tt_dw_gin_px(gp, tp, ws + tap0 * 2, &r);
                }
                if (!pair && !odd) continue;
                int32_t a0 = 0, a1 = 0, a2 = 0;
                const int16_t *tr = tp + 4 * nq;
                for (int32_t k = 0, ky = ky0; k < nky; ++k, tr -= (ptrdiff_t)wo * ch, ky += s) {
                    for (int32_t j = 0; j < nkx; ++j) {
                        const int16_t *tk = tr - (ptrdiff_t)j * ch;
                        if (pair) {
                            const int32_t t0 = tt_ld32(tk), w0 = wpair[ky * kw + pos[kx0] + j];
                            a0 = tt_smlabb(t0, w0, a0);
                            a1 = tt_smlatt(t0, w0, a1);
                        }
                        if (odd) a2 += tk[2 * pair] * wl[ky * kw + kx0 + j * sw];
                    }
                }
                int32_t *gl = gp + 4 * nq;
                if (pair) {
                    gl[0] = a0;
                    gl[1] = a1;
                    gl += 2;
                }
                if (odd) gl[0] = a2;
            }
        }
    }
}

/* Any stride: per gx row, the row zeroed, then each tap added to all the gx pixels it
   reaches (tt_dw_gin_row). */
static void dw_gin_taps(const tt_conv_params *p, const int16_t *t, int32_t t_row0, int32_t *gx,
                        int32_t gx_row0, int32_t y0, int32_t y1, int32_t *ws)
{
    const int32_t ch = p->in_c, kh = p->k_h, kw = p->k_w, s = p->stride, pad = p->pad;
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p); /* columns (per-axis geometry) */
    const int32_t ho = p->out_h, wo = p->out_w, wi = p->in_w, taps = kh * kw;
    for (int32_t c0 = 0; c0 < ch; c0 += TT_DW_GIN_CH) {
        const int32_t nc = ch - c0 < TT_DW_GIN_CH ? ch - c0 : TT_DW_GIN_CH;
        const int32_t np = nc / 2, odd = nc & 1;
        for (int32_t q = 0; q < np; ++q) {
            const int8_t *wa = tt_dw_w_row(p, c0 + 2 * q), *wb = tt_dw_w_row(p, c0 + 2 * q + 1);
            for (int32_t tap = 0; tap < taps; ++tap)
                ws[tap * np + q] = tt_pack16(wa[tap], wb[tap]);
        }
        const int8_t *wl = tt_dw_w_row(p, c0 + nc - 1); /* last channel (odd nc) */
        for (int32_t iy = y0; iy < y1; ++iy) {
            int32_t *g = gx + (ptrdiff_t)(iy - gx_row0) * wi * ch + c0;
            for (int32_t ix = 0; ix < wi; ++ix)
                memset(g + (ptrdiff_t)ix * ch, 0, (size_t)nc * 4u);
            for (int32_t ky = 0; ky < kh; ++ky) {
                const int32_t py = iy + pad - ky;
                if (py < 0 || py % s) continue;
                const int32_t oy = py / s;
                if (oy >= ho) continue;
                const int16_t *trow = t + (ptrdiff_t)(oy - t_row0) * wo * ch + c0;
                for (int32_t kx = 0; kx < kw; ++kx) {
                    /* gx column ix = ox * sw + kx - pw for the ox in [lo, hi) */
                    int32_t lo, hi;
                    tt_tap_range(wi, wo, kx - pw, sw, &lo, &hi);
                    if (hi <= lo) continue;
                    const int32_t tap = ky * kw + kx;
                    tt_dw_gin_row(g + (ptrdiff_t)(lo * sw + kx - pw) * ch, sw * ch,
                                  trow + (ptrdiff_t)lo * ch, ch, ws + tap * np, np, odd, wl[tap],
                                  hi - lo);
                }
            }
        }
    }
}

TT_KERNEL void tt_dwconv_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                                     int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                                     void *scratch)
{
    /* registers unless the channels are odd, t is not word aligned or a strided kernel
       reaches too few taps per gx pixel (the tap path wins below about 8: 3x3 / 5x5 s2) */
    const int32_t sw = TT_STRIDE_W(p);
    if (p->k_w <= TT_DW_GIN_KW && !(p->in_c & 1) && !((uintptr_t)t & 3u) &&
        (sw == 1 || p->k_h * p->k_w > 8 * p->stride * sw || TT_DWG2_SHAPE(p)))
        dw_gin_regs(p, t, t_row0, gx, gx_row0, y0, y1, (int32_t *)scratch);
    else
        dw_gin_taps(p, t, t_row0, gx, gx_row0, y0, y1, (int32_t *)scratch);
}

#else /* portable */

/* g[c] += t[c] * w[c][tap] for the channels [c0, c1) whose tap is at wk (taps apart). */
TT_INLINE void dw_gin_channels(int32_t *g, const int16_t *tp, const int8_t *wk, int32_t c0,
                               int32_t c1, int32_t taps)
{
    for (int32_t c = c0; c < c1; ++c, wk += taps) g[c] += tp[c] * *wk;
}

TT_KERNEL void tt_dwconv_grad_in_s16(const tt_conv_params *p, const int16_t *t, int32_t t_row0,
                                     int32_t *gx, int32_t gx_row0, int32_t y0, int32_t y1,
                                     void *scratch)
{
    (void)scratch;
    const int32_t ch = p->in_c, kh = p->k_h, kw = p->k_w, s = p->stride, pad = p->pad;
    const int32_t sw = TT_STRIDE_W(p), pw = TT_PAD_W(p); /* columns (per-axis geometry) */
    const int32_t ho = p->out_h, wo = p->out_w, wi = p->in_w, taps = kh * kw;
    const int32_t split = tt_w_split_at(p->w_tail, p->w_split, ch); /* channels at p->w */
    for (int32_t iy = y0; iy < y1; ++iy) {
        int32_t *g = gx + (ptrdiff_t)(iy - gx_row0) * wi * ch;
        for (int32_t ix = 0; ix < wi; ++ix, g += ch) {
            for (int32_t c = 0; c < ch; ++c) g[c] = 0;
            for (int32_t ky = 0; ky < kh; ++ky) {
                const int32_t py = iy + pad - ky;
                if (py < 0 || py % s) continue;
                const int32_t oy = py / s;
                if (oy >= ho) continue;
                for (int32_t kx = 0; kx < kw; ++kx) {
                    const int32_t px = ix + pw - kx;
                    if (px < 0 || px % sw) continue;
                    const int32_t ox = px / sw;
                    if (ox >= wo) continue;
                    const int16_t *tp = t + ((ptrdiff_t)(oy - t_row0) * wo + ox) * ch;
                    const int32_t tap = ky * kw + kx;
                    if (split > 0) dw_gin_channels(g, tp, p->w + tap, 0, split, taps);
                    if (split < ch) dw_gin_channels(g, tp, p->w_tail + tap, split, ch, taps);
                }
            }
        }
    }
}
#endif /* TT_DSP */
