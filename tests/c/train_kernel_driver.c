/* Test / benchmark driver for the training kernels (runtime_c/include/tt_train_kernels.h)
 * and the scalar helpers of tt_train_math.h.
 *
 * Input: a binary stream of cases written by tests/train_kernel_cases.py (little endian):
 *     i32 n_cases, then per case
 *     i32 op, i32 n_params, i32 params[n_params], i32 n_arrays,
 *     arrays (op-specific order), each as i32 n_bytes + bytes padded to 4.
 * Floats travel as their bit patterns. Every output and scratch buffer has guard bytes
 * on both sides; scratch is filled with garbage before each call. The output of a case
 * is one byte string (op-specific; the kernel's return code first where it has one),
 * compared byte for byte, so float32 results are compared as exact bit patterns.
 * Input gradients of convolutions can be computed in bands (an int32 array of (y0, y1)
 * pairs): each band gets an exact-size copy of the t rows it needs and its own guarded
 * output buffer.
 * Split weights (tt_kernels.h w_tail / w_split): the ops that take weights accept one
 * optional extra parameter after their own ones, `split`: -1 -> w_tail = NULL with a
 * nonzero w_split (must be ignored); s >= 0 -> output channels [0, s) in one buffer at
 * w, [s, out_c) in another at w_tail (w_split = s; s > out_c: all at w). Input
 * gradients: exact-size
 * buffers, each followed by a garbage block (a wrong row computation reads wrong
 * weights or trips a sanitizer). Weight updates: the kernel's w (= p.w) is a guarded
 * buffer of the s head channels, the tail is a separate read-only copy; the output is
 * then the return code, the head and the (unchanged) tail, i.e. the same bytes as
 * unsplit. Without it: w_tail = NULL, w_split = 0.
 *
 * Front ends (stdin/stdout on the host, compiled-in cases on the board, where the loss
 * is compared with a relative tolerance), guard bytes and status codes:
 * driver_common.h. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "tt_train_kernels.h"
#include "driver_common.h"

enum {
    OP_Q31 = 1,
    OP_EXPF = 2,
    OP_ROUND = 3,
    OP_HASH = 4,
    OP_FIXED_ROUND = 5,
    OP_UPDATE_KEY = 6,
    OP_QUANT_F32 = 7,
    OP_SOFTMAX = 8,
    OP_GRAD_RANGE = 9,
    OP_REQUANT_GRAD = 10,
    OP_ADD_GRADS = 11,
    OP_PRESCALE = 12,
    OP_MASK_PACK = 13,
    OP_GRAD_MASK = 14,
    OP_AVGPOOL_GRAD = 15,
    OP_CONV2D_GRAD_IN = 16,
    OP_CONV2D_1X1_GRAD_IN = 17,
    OP_DWCONV_GRAD_IN = 18,
    OP_FC_GRAD_IN = 19,
    OP_CONV2D_GRAD_W = 20,
    OP_CONV2D_1X1_GRAD_W = 21,
    OP_DWCONV_GRAD_W = 22,
    OP_FC_GRAD_W = 23,
    OP_BIAS = 24,
    OP_FACTORS = 25,
    OP_MAXPOOL_GRAD = 26,
    OP_LUT_GRAD = 27,
    OP_MUL_GRAD = 28,
    OP_MUL_GATE_GRAD = 29,
    OP_CONCAT_GRAD = 30,
    OP_AVG_POOL_GRAD = 40,
    OP_MSE = 31,
    OP_GRAD_IN_TWO_PASS = 41,
};

#define MAX_PARAMS 32
#define MAX_ARRAYS 8

/* The next array (any size), in its own exact-size RAM buffer (rd_array). */
typedef struct {
    void *p;
    int32_t n; /* bytes */
} arr_t;

static arr_t rd_arr(rd_t *r)
{
    arr_t a = {NULL, 0};
    int32_t n = 0;
    void *p = rd_array(r, -1, &n);
    if (p) {
        a.p = p;
        a.n = n;
    }
    return a;
}

/* ---- one case -------------------------------------------------------------------- */
typedef tc_result result_t; /* out: guarded, filled by out_put */

typedef struct {
    int32_t np, na;
    int32_t v[MAX_PARAMS];
    arr_t a[MAX_ARRAYS];
} case_t;

static float f32_of(int32_t bits) { return tt_f32_from_bits((uint32_t)bits); }

static int out_alloc(result_t *res, int32_t n)
{
    res->out = guarded((size_t)n);
    if (!res->out) {
        res->status = 4;
        return 0;
    }
    res->cap = n;
    res->n_out = 0;
    return 1;
}
static void out_put(result_t *res, const void *p, int32_t n)
{
    if (res->n_out + n > res->cap) {
        res->status = 1;
        return;
    }
    memcpy(res->out + res->n_out, p, (size_t)n);
    res->n_out += n;
}
static void out_i32(result_t *res, int32_t v) { out_put(res, &v, 4); }
static void out_f32(result_t *res, float v) { out_put(res, &v, 4); }
static void out_i64(result_t *res, int64_t v) { out_put(res, &v, 8); }

static void check_scratch(result_t *res, const void *s, size_t n)
{
    if (s && !guard_ok((const uint8_t *)s, n) && !res->status) res->status = 2;
}
/* Kernel output written into a guarded buffer, then appended to the result. */
static uint8_t *kbuf(result_t *res, size_t n)
{
    uint8_t *b = guarded(n);
    if (!b) res->status = 4;
    return b;
}
static void kbuf_done(result_t *res, const uint8_t *b, size_t n)
{
    if (!guard_ok(b, n) && !res->status) res->status = 3;
    out_put(res, b, (int32_t)n);
}

#define NEED(cond)             \
    do {                       \
        if (!(cond)) {         \
            res->status = 1;   \
            return;            \
        }                      \
    } while (0)

static tt_grad_range range_of(int32_t kind, int32_t k)
{
    tt_grad_range r;
    r.kind = kind;
    r.k = k;
    return r;
}

static void conv_params(const case_t *c, tt_conv_params *p)
{
    memset(p, 0, sizeof *p);
    p->in_h = c->v[0]; p->in_w = c->v[1]; p->in_c = c->v[2];
    p->out_h = c->v[3]; p->out_w = c->v[4]; p->out_c = c->v[5];
    p->k_h = c->v[6]; p->k_w = c->v[7]; p->stride = c->v[8]; p->pad = c->v[9];
    p->in_zero = c->v[10];
}

/* Per-axis geometry from an optional array of two int32 (stride_w, pad_w); 0: bad size. */
static int axis_params(const arr_t *a, tt_conv_params *p)
{
    if (a->n != 8) return 0;
    const int32_t *g = (const int32_t *)a->p;
    p->stride_w = g[0];
    p->pad_w = g[1];
    return 1;
}

static void sgd_params(const case_t *c, int32_t at, const float *s_w, tt_sgd_params *u)
{
    u->lr = f32_of(c->v[at]);
    u->s_gy = f32_of(c->v[at + 1]);
    u->s_x = f32_of(c->v[at + 2]);
    u->k = c->v[at + 3];
    u->rounding = c->v[at + 4];
    u->key = (uint32_t)c->v[at + 5];
    u->qas_off = c->v[at + 6];
    u->s_w = s_w;
}

typedef void (*gin_fn)(const tt_conv_params *, const int16_t *, int32_t, int32_t *, int32_t,
                       int32_t, int32_t, void *);
typedef int (*gw_fn)(const tt_conv_params *, const int8_t *, const int8_t *, int8_t *,
                     const tt_sgd_params *, void *);

static void run_op(int32_t op, const case_t *c, result_t *res)
{
    const int32_t *v = c->v;
    switch (op) {
    case OP_Q31: {
        NEED(c->na == 1);
        const int32_t n = c->a[0].n / 4;
        if (!out_alloc(res, 12 * n)) return;
        const float *x = (const float *)c->a[0].p;
        uint32_t t0 = tc_cycles();
        for (int32_t i = 0; i < n; ++i) {
            int32_t m, s;
            int st = tt_q31_of_f32(x[i], &m, &s);
            out_i32(res, st);
            out_i32(res, m);
            out_i32(res, s);
        }
        res->cycles = tc_cycles() - t0;
        return;
    }
    case OP_EXPF:
    case OP_ROUND: {
        NEED(c->na == 1);
        const int32_t n = c->a[0].n / 4;
        if (!out_alloc(res, 4 * n)) return;
        const float *x = (const float *)c->a[0].p;
        uint32_t t0 = tc_cycles();
        for (int32_t i = 0; i < n; ++i)
            out_f32(res, op == OP_EXPF ? tt_expf(x[i]) : tt_round_half_away_f32(x[i]));
        res->cycles = tc_cycles() - t0;
        return;
    }
    case OP_HASH: {
        NEED(c->np == 1 && c->na == 1);
        const int32_t n = c->a[0].n / 4;
        if (!out_alloc(res, 4 * n)) return;
        const uint32_t *idx = (const uint32_t *)c->a[0].p;
        for (int32_t i = 0; i < n; ++i) out_i32(res, (int32_t)tt_hash32(idx[i], (uint32_t)v[0]));
        return;
    }
    case OP_UPDATE_KEY: {
        NEED(c->na == 1);
        const int32_t n = c->a[0].n / 12;
        if (!out_alloc(res, 4 * n)) return;
        const uint32_t *t = (const uint32_t *)c->a[0].p;
        for (int32_t i = 0; i < n; ++i)
            out_i32(res, (int32_t)tt_update_key(t[3 * i], t[3 * i + 1], t[3 * i + 2]));
        return;
    }
    case OP_FIXED_ROUND: {
        NEED(c->np == 1 && c->na == 3);
        const int32_t n = c->a[0].n / 8;
        NEED(c->a[1].n == 4 * n && c->a[2].n == 4 * n);
        if (!out_alloc(res, 8 * n)) return;
        const int64_t *x = (const int64_t *)c->a[0].p;
        const int32_t *tot = (const int32_t *)c->a[1].p;
        const uint32_t *rnd = (const uint32_t *)c->a[2].p;
        for (int32_t i = 0; i < n; ++i) out_i64(res, tt_fixed_round(x[i], tot[i], v[0], rnd[i]));
        return;
    }
    case OP_QUANT_F32: {
        NEED(c->np == 3 && c->na == 1);
        const int32_t n = c->a[0].n / 4;
        if (!out_alloc(res, 8 + n)) return;
        uint8_t *q = kbuf(res, (size_t)n);
        if (!q) return;
        float sc = 0.0f;
        uint32_t t0 = tc_cycles();
        int st = tt_quantize_grad_f32((const float *)c->a[0].p, n, v[0], range_of(v[1], v[2]),
                                      (int8_t *)q, &sc);
        res->cycles = tc_cycles() - t0;
        out_i32(res, st);
        kbuf_done(res, q, (size_t)n);
        out_f32(res, sc);
        return;
    }
    case OP_SOFTMAX: {
        /* c, s_y, z_y, label, bits, kind, k, in_place */
        NEED(c->np == 8 && c->na == 1 && c->a[0].n == v[0]);
        const int32_t n = v[0];
        if (!out_alloc(res, 12 + n)) return;
        uint8_t *q = kbuf(res, (size_t)n);
        if (!q) return;
        const int8_t *logits = (const int8_t *)c->a[0].p;
        if (v[7]) {
            memcpy(q, logits, (size_t)n);
            logits = (const int8_t *)q;
        }
        const size_t ns = tt_softmax_xent_grad_s8_scratch_bytes(n);
        void *s = make_scratch(ns, &res->status);
        if (res->status) return;
        float sc = 0.0f, loss = 0.0f;
        uint32_t t0 = tc_cycles();
        int st = tt_softmax_xent_grad_s8(logits, n, f32_of(v[1]), v[2], v[3], v[4],
                                         range_of(v[5], v[6]), (int8_t *)q, &sc, &loss, s);
        res->cycles = tc_cycles() - t0;
        check_scratch(res, s, ns);
        out_i32(res, st);
        kbuf_done(res, q, (size_t)n);
        out_f32(res, sc);
        out_f32(res, loss); /* loose */
        return;
    }
    case OP_MSE: {
        /* n, s_y, bits, kind, k, in_place; arrays y, target */
        NEED(c->np == 6 && c->na == 2 && c->a[0].n == v[0] && c->a[1].n == v[0]);
        const int32_t n = v[0];
        if (!out_alloc(res, 12 + n)) return;
        uint8_t *q = kbuf(res, (size_t)n);
        if (!q) return;
        const int8_t *y = (const int8_t *)c->a[0].p;
        if (v[5]) {
            memcpy(q, y, (size_t)n);
            y = (const int8_t *)q;
        }
        const size_t ns = tt_mse_grad_s8_scratch_bytes(n);
        void *s = make_scratch(ns, &res->status);
        if (res->status) return;
        float sc = 0.0f, loss = 0.0f;
        uint32_t t0 = tc_cycles();
        int st = tt_mse_grad_s8(y, (const int8_t *)c->a[1].p, n, f32_of(v[1]), v[2],
                                range_of(v[3], v[4]), (int8_t *)q, &sc, &loss, s);
        res->cycles = tc_cycles() - t0;
        check_scratch(res, s, ns);
        out_i32(res, st);
        kbuf_done(res, q, (size_t)n);
        out_f32(res, sc);
        out_f32(res, loss); /* exact */
        return;
    }
    case OP_GRAD_RANGE: {
        NEED(c->np == 2 && c->na == 1);
        if (!out_alloc(res, 8)) return;
        out_i64(res, tt_grad_range_s32((const int32_t *)c->a[0].p, c->a[0].n / 4,
                                       range_of(v[0], v[1])));
        return;
    }
    case OP_REQUANT_GRAD: {
        /* acc_scale, bits, kind, k, has_r, r_lo, r_hi, want_stat, in_place */
        NEED(c->np == 9 && c->na == 1);
        const int32_t n = c->a[0].n / 4;
        if (!out_alloc(res, 16 + n)) return;
        const int64_t r = (int64_t)(((uint64_t)(uint32_t)v[6] << 32) | (uint32_t)v[5]);
        int64_t stat = -12345;
        float sc = 0.0f;
        uint8_t *q;
        int st;
        uint32_t t0;
        if (v[8]) { /* out aliases acc */
            uint8_t *b = kbuf(res, (size_t)n * 4);
            if (!b) return;
            memcpy(b, c->a[0].p, (size_t)n * 4);
            t0 = tc_cycles();
            st = tt_requant_grad_s8((const int32_t *)(void *)b, n, f32_of(v[0]), v[1],
                                    range_of(v[2], v[3]), v[4] ? &r : NULL, (int8_t *)b, &sc,
                                    v[7] ? &stat : NULL);
            res->cycles = tc_cycles() - t0;
            if (!guard_ok(b, (size_t)n * 4)) res->status = 3;
            q = b;
            out_i32(res, st);
            out_put(res, q, n);
        } else {
            q = kbuf(res, (size_t)n);
            if (!q) return;
            t0 = tc_cycles();
            st = tt_requant_grad_s8((const int32_t *)c->a[0].p, n, f32_of(v[0]), v[1],
                                    range_of(v[2], v[3]), v[4] ? &r : NULL, (int8_t *)q, &sc,
                                    v[7] ? &stat : NULL);
            res->cycles = tc_cycles() - t0;
            out_i32(res, st);
            kbuf_done(res, q, (size_t)n);
        }
        out_f32(res, sc);
        out_i64(res, stat);
        return;
    }
    case OP_ADD_GRADS: {
        /* s1, s2, bits, kind, k, alias (0 none, 1 q1, 2 q2) */
        NEED(c->np == 6 && c->na == 2 && c->a[0].n == c->a[1].n);
        const int32_t n = c->a[0].n;
        if (!out_alloc(res, 8 + n)) return;
        uint8_t *q = kbuf(res, (size_t)n);
        if (!q) return;
        const int8_t *q1 = (const int8_t *)c->a[0].p, *q2 = (const int8_t *)c->a[1].p;
        memset(q, 0, (size_t)n);
        if (v[5] == 1) {
            memcpy(q, q1, (size_t)n);
            q1 = (const int8_t *)q;
        } else if (v[5] == 2) {
            memcpy(q, q2, (size_t)n);
            q2 = (const int8_t *)q;
        }
        float sc = 0.0f;
        const size_t ns = tt_add_grads_s8_scratch_bytes(n);
        void *s = make_scratch(ns, &res->status);
        if (res->status) return;
        uint32_t t0 = tc_cycles();
        int st = tt_add_grads_s8(q1, f32_of(v[0]), q2, f32_of(v[1]), n, v[2],
                                 range_of(v[3], v[4]), (int8_t *)q, &sc, s);
        res->cycles = tc_cycles() - t0;
        check_scratch(res, s, ns);
        out_i32(res, st);
        kbuf_done(res, q, (size_t)n);
        out_f32(res, sc);
        return;
    }
    case OP_PRESCALE: {
        NEED(c->np == 2 && c->na == 3);
        const int32_t px = v[0], ch = v[1];
        NEED(c->a[0].n == px * ch && c->a[1].n == 4 * ch && c->a[2].n == 4 * ch);
        const size_t nb = (size_t)px * ch * 2;
        if (!out_alloc(res, (int32_t)nb)) return;
        uint8_t *t = kbuf(res, nb);
        if (!t) return;
        uint32_t t0 = tc_cycles();
        tt_grad_prescale_s16((const int8_t *)c->a[0].p, px, ch, (const int32_t *)c->a[1].p,
                             (const int32_t *)c->a[2].p, (int16_t *)(void *)t);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, t, nb);
        return;
    }
    case OP_MASK_PACK: {
        /* n, act_min, act_max, bit0; y, initial mask */
        NEED(c->np == 4 && c->na == 2 && c->a[0].n == v[0]);
        const size_t nm = (size_t)c->a[1].n;
        NEED(nm >= TT_MASK_BYTES(v[0] + v[3]));
        if (!out_alloc(res, (int32_t)nm)) return;
        uint8_t *m = kbuf(res, nm);
        if (!m) return;
        memcpy(m, c->a[1].p, nm);
        uint32_t t0 = tc_cycles();
        tt_clamp_mask_pack_s8((const int8_t *)c->a[0].p, v[0], v[1], v[2], m, v[3]);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, m, nm);
        return;
    }
    case OP_GRAD_MASK: {
        NEED(c->np == 2 && c->na == 2 && c->a[0].n == v[0]);
        NEED((size_t)c->a[1].n >= TT_MASK_BYTES(v[0] + v[1]));
        const size_t n = (size_t)v[0];
        if (!out_alloc(res, (int32_t)n)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        memcpy(g, c->a[0].p, n);
        uint32_t t0 = tc_cycles();
        tt_grad_mask_s8((int8_t *)g, v[0], (const uint8_t *)c->a[1].p, v[1]);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        return;
    }
    case OP_MAXPOOL_GRAD: {
        /* 9 params [+ stride_w, pad_w: per axis] */
        const tt_pool_params p = {.in_h = v[0], .in_w = v[1], .c = v[2], .out_h = v[3],
                                  .out_w = v[4], .k_h = v[5], .k_w = v[6], .stride = v[7],
                                  .pad = v[8], .stride_w = c->np == 11 ? v[9] : 0,
                                  .pad_w = c->np == 11 ? v[10] : 0};
        NEED((c->np == 9 || c->np == 11) && c->na == 2 && c->a[0].n == v[0] * v[1] * v[2]
             && c->a[1].n == v[3] * v[4] * v[2]);
        const size_t n = 4 * (size_t)v[0] * v[1] * v[2];
        if (!out_alloc(res, (int32_t)n)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        uint32_t t0 = tc_cycles();
        tt_maxpool_grad_s8(&p, (const int8_t *)c->a[0].p, (const int8_t *)c->a[1].p, (int32_t *)g);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        return;
    }
    case OP_AVG_POOL_GRAD: { /* h, w, c, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_h, pad_w */
        tt_pool_params p = {.in_h = v[0], .in_w = v[1], .c = v[2], .out_h = v[3], .out_w = v[4],
                            .k_h = v[5], .k_w = v[6], .stride = v[7], .pad = v[9]};
        if (v[8] != v[7] || v[10] != v[9]) { p.stride_w = v[8]; p.pad_w = v[10]; }
        NEED(c->np == 11 && c->na == 1 && c->a[0].n == v[3] * v[4] * v[2]);
        const size_t n = 4 * (size_t)v[0] * v[1] * v[2];
        if (!out_alloc(res, (int32_t)n)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        uint32_t t0 = tc_cycles();
        tt_avgpool_window_grad_s8(&p, (const int8_t *)c->a[0].p, (int32_t *)g);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        return;
    }
    case OP_LUT_GRAD: {
        /* n; dtable (int16 x 256), x, gy -> int32 acc */
        NEED(c->np == 1 && c->na == 3 && c->a[0].n == 512 && c->a[1].n == v[0]
             && c->a[2].n == v[0] && v[0] > 0);
        const size_t n = 4 * (size_t)v[0];
        if (!out_alloc(res, (int32_t)n)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        uint32_t t0 = tc_cycles();
        tt_lut_grad_s8((const int16_t *)c->a[0].p, (const int8_t *)c->a[1].p,
                       (const int8_t *)c->a[2].p, (int32_t *)(void *)g, v[0]);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        return;
    }
    case OP_MUL_GRAD: {
        /* pixels, c, z_other, bcast; gy, other -> int32 acc [pixels][c] */
        NEED(c->np == 4 && c->na == 2 && v[0] > 0 && v[1] > 0 && c->a[0].n == v[0] * v[1]
             && c->a[1].n == (v[3] ? v[1] : v[0] * v[1]));
        const size_t n = 4 * (size_t)v[0] * v[1];
        if (!out_alloc(res, (int32_t)n)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        uint32_t t0 = tc_cycles();
        tt_mul_grad_s8((const int8_t *)c->a[0].p, (const int8_t *)c->a[1].p, v[2], v[0], v[1],
                       v[3], (int32_t *)(void *)g);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        return;
    }
    case OP_MUL_GATE_GRAD: {
        /* pixels, c, z_a; gy, a -> int32 acc [c] */
        NEED(c->np == 3 && c->na == 2 && v[0] > 0 && v[1] > 0 && c->a[0].n == v[0] * v[1]
             && c->a[1].n == v[0] * v[1]);
        const size_t n = 4 * (size_t)v[1];
        if (!out_alloc(res, (int32_t)n)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        memset(g, 0x5A, n);
        uint32_t t0 = tc_cycles();
        tt_mul_gate_grad_s8((const int8_t *)c->a[0].p, (const int8_t *)c->a[1].p, v[2], v[0], v[1],
                            (int32_t *)(void *)g);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        return;
    }
    case OP_CONCAT_GRAD: {
        /* pixels, out_c, c0, c; gy -> int8 gx [pixels][c] */
        NEED(c->np == 4 && c->na == 1 && v[0] > 0 && v[3] > 0 && v[2] >= 0
             && v[2] + v[3] <= v[1] && c->a[0].n == v[0] * v[1]);
        const size_t n = (size_t)v[0] * v[3];
        if (!out_alloc(res, (int32_t)n)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        uint32_t t0 = tc_cycles();
        tt_concat_grad_s8((const int8_t *)c->a[0].p, v[0], v[1], v[2], v[3], (int8_t *)g);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        return;
    }
    case OP_AVGPOOL_GRAD: {
        NEED(c->np == 4 && c->na == 1 && c->a[0].n == v[2]);
        const size_t n = (size_t)v[0] * v[1] * v[2];
        if (!out_alloc(res, (int32_t)n + 4)) return;
        uint8_t *g = kbuf(res, n);
        if (!g) return;
        float sc = 0.0f;
        uint32_t t0 = tc_cycles();
        tt_avgpool_grad_s8((const int8_t *)c->a[0].p, f32_of(v[3]), v[0], v[1], v[2],
                           (int8_t *)g, &sc);
        res->cycles = tc_cycles() - t0;
        kbuf_done(res, g, n);
        out_f32(res, sc);
        return;
    }
    case OP_CONV2D_GRAD_IN:
    case OP_CONV2D_1X1_GRAD_IN:
    case OP_DWCONV_GRAD_IN: {
        /* conv params (11) [+ split]; t (int16), w, bands (int32 pairs, empty: one full
           call) [, geometry of the columns (int32 stride_w, pad_w): per axis] */
        NEED((c->np == 11 || c->np == 12) && (c->na == 3 || c->na == 4));
        tt_conv_params p;
        conv_params(c, &p);
        NEED(c->na == 3 || axis_params(&c->a[3], &p));
        const int dw = op == OP_DWCONV_GRAD_IN;
        const size_t row_t = (size_t)p.out_w * p.out_c, row_g = (size_t)p.in_w * p.in_c;
        NEED((size_t)c->a[0].n == 2 * row_t * p.out_h);
        const int32_t K = p.k_h * p.k_w * (dw ? 1 : p.in_c);
        NEED(c->a[1].n == p.out_c * K);
        p.w = (const int8_t *)c->a[1].p;
        NEED(c->np == 11 || split_weights(p.w, p.out_c, K, v[11], &p.w, &p.w_tail, &p.w_split));
        const int16_t *t = (const int16_t *)c->a[0].p;
        const int32_t nb = c->a[2].n / 8;
        const int32_t *bands = (const int32_t *)c->a[2].p;
        gin_fn fn;
        size_t ns;
        if (op == OP_CONV2D_GRAD_IN) {
            fn = tt_conv2d_grad_in_s16;
            ns = tt_conv2d_grad_in_s16_scratch_bytes(&p);
        } else if (op == OP_CONV2D_1X1_GRAD_IN) {
            fn = tt_conv2d_1x1_grad_in_s16;
            ns = tt_conv2d_1x1_grad_in_s16_scratch_bytes(&p);
        } else {
            fn = tt_dwconv_grad_in_s16;
            ns = tt_dwconv_grad_in_s16_scratch_bytes(&p);
        }
        const size_t n_out = row_g * p.in_h * 4;
        if (!out_alloc(res, (int32_t)n_out)) return;
        void *s = make_scratch(ns, &res->status);
        if (res->status) return;
        if (nb == 0) {
            uint8_t *g = kbuf(res, n_out);
            if (!g) return;
            memset(g, 0x5A, n_out);
            uint32_t t0 = tc_cycles();
            fn(&p, t, 0, (int32_t *)(void *)g, 0, 0, p.in_h, s);
            res->cycles = tc_cycles() - t0;
            check_scratch(res, s, ns);
            kbuf_done(res, g, n_out);
            return;
        }
        uint8_t *full = res->out;
        for (int32_t b = 0; b < nb && !res->status; ++b) {
            const int32_t y0 = bands[2 * b], y1 = bands[2 * b + 1];
            NEED(0 <= y0 && y0 <= y1 && y1 <= p.in_h);
            int32_t r0, r1;
            tt_grad_in_band_rows(&p, y0, y1, &r0, &r1);
            const TC_MARK_T mark = tc_mark();
            const size_t n_t = row_t * (size_t)(r1 - r0) * 2, n_b = row_g * (size_t)(y1 - y0) * 4;
            int16_t *bt = (int16_t *)tc_alloc(n_t); /* exact size, no guard */
            uint8_t *bo = guarded(n_b);
            if (!bt || !bo) {
                res->status = 4;
                return;
            }
            memcpy(bt, t + row_t * (size_t)r0, n_t);
            memset(bo, 0x5A, n_b);
            if (s) memset(s, SCRATCH_FILL, ns);
            uint32_t t0 = tc_cycles();
            fn(&p, bt, r0, (int32_t *)(void *)bo, y0, y0, y1, s);
            res->cycles += tc_cycles() - t0;
            if (!guard_ok(bo, n_b)) res->status = 3;
            check_scratch(res, s, ns);
            memcpy(full + row_g * 4 * (size_t)y0, bo, n_b);
            tc_release(mark);
        }
        res->n_out = (int32_t)n_out;
        return;
    }
    case OP_GRAD_IN_TWO_PASS: {
        /* conv params (11), band kernel (0 conv2d, 1 1x1, 2 dwconv), t_scale, rows, bits,
           kind, k, prescale (0: t given; 1: gy int8 + mult + shift); t (int16) or gy, mult,
           shift; w [, geometry of the columns] */
        NEED(c->np == 18);
        const int pre = v[17] != 0, nw = pre ? 3 : 1;
        NEED(c->na == nw + 1 || c->na == nw + 2);
        tt_conv_params p;
        conv_params(c, &p);
        NEED(c->na == nw + 1 || axis_params(&c->a[nw + 1], &p));
        const int32_t K = p.k_h * p.k_w * (v[11] == 2 ? 1 : p.in_c);
        const size_t n_t = (size_t)p.out_w * p.out_c * p.out_h;
        NEED((size_t)c->a[0].n == (pre ? 1 : 2) * n_t);
        NEED(!pre || (c->a[1].n == 4 * p.out_c && c->a[2].n == 4 * p.out_c));
        NEED(c->a[nw].n == p.out_c * K && v[11] >= 0 && v[11] <= 2);
        p.w = (const int8_t *)c->a[nw].p;
        const gin_fn fns[3] = {tt_conv2d_grad_in_s16, tt_conv2d_1x1_grad_in_s16,
                               tt_dwconv_grad_in_s16};
        const size_t bs = v[11] == 0 ? tt_conv2d_grad_in_s16_scratch_bytes(&p)
                          : v[11] == 1 ? tt_conv2d_1x1_grad_in_s16_scratch_bytes(&p)
                                       : tt_dwconv_grad_in_s16_scratch_bytes(&p);
        const size_t ns = tt_conv_grad_in_two_pass_s8_scratch_bytes(&p, v[13], pre, bs);
        const size_t n = (size_t)p.in_h * p.in_w * p.in_c;
        if (!out_alloc(res, (int32_t)n + 8)) return;
        uint8_t *g = kbuf(res, n);
        void *s = make_scratch(ns, &res->status);
        if (!g || res->status) return;
        float sc = 0.0f;
        uint32_t t0 = tc_cycles();
        const int st = tt_conv_grad_in_two_pass_s8(
            fns[v[11]], &p, pre ? NULL : (const int16_t *)c->a[0].p,
            pre ? (const int8_t *)c->a[0].p : NULL, pre ? (const int32_t *)c->a[1].p : NULL,
            pre ? (const int32_t *)c->a[2].p : NULL, f32_of(v[12]), v[13], v[14],
            range_of(v[15], v[16]), (int8_t *)g, &sc, s);
        res->cycles = tc_cycles() - t0;
        check_scratch(res, s, ns);
        out_i32(res, st);
        kbuf_done(res, g, n);
        out_f32(res, sc);
        return;
    }
    case OP_FC_GRAD_IN: {
        /* ci, co, batch [+ split]; t, w */
        NEED((c->np == 3 || c->np == 4) && c->na == 2);
        tt_fc_params p;
        memset(&p, 0, sizeof p);
        p.in_c = v[0];
        p.out_c = v[1];
        const int32_t batch = v[2];
        NEED(c->a[0].n == 2 * batch * p.out_c && c->a[1].n == p.in_c * p.out_c);
        p.w = (const int8_t *)c->a[1].p;
        NEED(c->np == 3 || split_weights(p.w, p.out_c, p.in_c, v[3], &p.w, &p.w_tail, &p.w_split));
        const size_t n_out = (size_t)batch * p.in_c * 4, ns = tt_fc_grad_in_s16_scratch_bytes(&p);
        if (!out_alloc(res, (int32_t)n_out)) return;
        uint8_t *g = kbuf(res, n_out);
        void *s = make_scratch(ns, &res->status);
        if (!g || res->status) return;
        uint32_t t0 = tc_cycles();
        tt_fc_grad_in_s16(&p, (const int16_t *)c->a[0].p, (int32_t *)(void *)g, batch, s);
        res->cycles = tc_cycles() - t0;
        check_scratch(res, s, ns);
        kbuf_done(res, g, n_out);
        return;
    }
    case OP_CONV2D_GRAD_W:
    case OP_CONV2D_1X1_GRAD_W:
    case OP_DWCONV_GRAD_W: {
        /* conv params (11) + sgd (7) [+ split]; gy, x, w, s_w [, geometry of the columns
           (int32 stride_w, pad_w): per axis] */
        NEED((c->np == 18 || c->np == 19) && (c->na == 4 || c->na == 5));
        tt_conv_params p;
        conv_params(c, &p);
        NEED(c->na == 4 || axis_params(&c->a[4], &p));
        const int dw = op == OP_DWCONV_GRAD_W;
        NEED(c->a[0].n == p.out_h * p.out_w * p.out_c && c->a[1].n == p.in_h * p.in_w * p.in_c);
        const int32_t nw = p.out_c * p.k_h * p.k_w * (dw ? 1 : p.in_c);
        NEED(c->a[2].n == nw && c->a[3].n == 4 * p.out_c);
        tt_sgd_params u;
        sgd_params(c, 11, (const float *)c->a[3].p, &u);
        gw_fn fn;
        size_t ns;
        if (op == OP_CONV2D_GRAD_W) {
            fn = tt_conv2d_grad_w_update_s8;
            ns = tt_conv2d_grad_w_update_s8_scratch_bytes(&p);
        } else if (op == OP_CONV2D_1X1_GRAD_W) {
            fn = tt_conv2d_1x1_grad_w_update_s8;
            ns = tt_conv2d_1x1_grad_w_update_s8_scratch_bytes(&p);
        } else {
            fn = tt_dwconv_grad_w_update_s8;
            ns = tt_dwconv_grad_w_update_s8_scratch_bytes(&p);
        }
        const int32_t code = c->np == 19 ? v[18] : -2;
        NEED(code >= -2);
        if (!out_alloc(res, 4 + nw)) return;
        /* split s: the kernel's w holds the s head channels only */
        const int32_t nh = code >= 0 && code < p.out_c ? nw / p.out_c * code : nw;
        uint8_t *w = kbuf(res, (size_t)nh);
        uint8_t *tail = code >= 0 ? (uint8_t *)tc_alloc((size_t)(nw - nh)) : NULL;
        void *s = make_scratch(ns, &res->status);
        if (!w || (code >= 0 && !tail) || res->status) {
            res->status = res->status ? res->status : 4;
            return;
        }
        memcpy(w, c->a[2].p, (size_t)nh);
        if (tail) memcpy(tail, (const uint8_t *)c->a[2].p + nh, (size_t)(nw - nh));
        p.w = (const int8_t *)w;
        p.w_tail = code >= 0 ? (const int8_t *)tail : NULL;
        p.w_split = code >= 0 ? code : (code == -1 ? p.out_c / 2 + 1 : 0);
        uint32_t t0 = tc_cycles();
        int st = fn(&p, (const int8_t *)c->a[0].p, (const int8_t *)c->a[1].p, (int8_t *)w, &u, s);
        res->cycles = tc_cycles() - t0;
        check_scratch(res, s, ns);
        out_i32(res, st);
        kbuf_done(res, w, (size_t)nh);
        if (tail) out_put(res, tail, nw - nh);
        return;
    }
    case OP_FC_GRAD_W: {
        /* ci, co, batch, in_zero + sgd (7) [+ split]; gy, x, w, s_w */
        NEED((c->np == 11 || c->np == 12) && c->na == 4);
        tt_fc_params p;
        memset(&p, 0, sizeof p);
        p.in_c = v[0];
        p.out_c = v[1];
        p.in_zero = v[3];
        const int32_t batch = v[2], nw = p.in_c * p.out_c;
        NEED(c->a[0].n == batch * p.out_c && c->a[1].n == batch * p.in_c);
        NEED(c->a[2].n == nw && c->a[3].n == 4 * p.out_c);
        tt_sgd_params u;
        sgd_params(c, 4, (const float *)c->a[3].p, &u);
        const size_t ns = tt_fc_grad_w_update_s8_scratch_bytes(&p, batch);
        const int32_t code = c->np == 12 ? v[11] : -2;
        NEED(code >= -2);
        if (!out_alloc(res, 4 + nw)) return;
        const int32_t nh = code >= 0 && code < p.out_c ? p.in_c * code : nw;
        uint8_t *w = kbuf(res, (size_t)nh);
        uint8_t *tail = code >= 0 ? (uint8_t *)tc_alloc((size_t)(nw - nh)) : NULL;
        void *s = make_scratch(ns, &res->status);
        if (!w || (code >= 0 && !tail) || res->status) {
            res->status = res->status ? res->status : 4;
            return;
        }
        memcpy(w, c->a[2].p, (size_t)nh);
        if (tail) memcpy(tail, (const uint8_t *)c->a[2].p + nh, (size_t)(nw - nh));
        p.w = (const int8_t *)w;
        p.w_tail = code >= 0 ? (const int8_t *)tail : NULL;
        p.w_split = code >= 0 ? code : (code == -1 ? p.out_c / 2 + 1 : 0);
        uint32_t t0 = tc_cycles();
        int st = tt_fc_grad_w_update_s8(&p, (const int8_t *)c->a[0].p, (const int8_t *)c->a[1].p,
                                        batch, (int8_t *)w, &u, s);
        res->cycles = tc_cycles() - t0;
        check_scratch(res, s, ns);
        out_i32(res, st);
        kbuf_done(res, w, (size_t)nh);
        if (tail) out_put(res, tail, nw - nh);
        return;
    }
    case OP_BIAS: {
        /* pixels, c, lr, s_gy, s_x, k, qas_off; gy, s_w, bias */
        NEED(c->np == 7 && c->na == 3);
        const int32_t px = v[0], ch = v[1];
        NEED(c->a[0].n == px * ch && c->a[1].n == 4 * ch && c->a[2].n == 4 * ch);
        tt_sgd_params u;
        u.lr = f32_of(v[2]);
        u.s_gy = f32_of(v[3]);
        u.s_x = f32_of(v[4]);
        u.k = v[5];
        u.rounding = TT_ROUND_NEAREST;
        u.key = 0;
        u.qas_off = v[6];
        u.s_w = (const float *)c->a[1].p;
        if (!out_alloc(res, 4 + 4 * ch)) return;
        uint8_t *b = kbuf(res, (size_t)ch * 4);
        if (!b) return;
        memcpy(b, c->a[2].p, (size_t)ch * 4);
        uint32_t t0 = tc_cycles();
        int st = tt_bias_grad_update_s32((const int8_t *)c->a[0].p, px, ch, &u,
                                         (int32_t *)(void *)b);
        res->cycles = tc_cycles() - t0;
        out_i32(res, st);
        kbuf_done(res, b, (size_t)ch * 4);
        return;
    }
    case OP_FACTORS: {
        /* rows of (lr, s_gy, s_x, s_w) -> weight, bias, plain factor, input grad scale */
        NEED(c->na == 1);
        const int32_t n = c->a[0].n / 16;
        if (!out_alloc(res, 16 * n)) return;
        const float *f = (const float *)c->a[0].p;
        for (int32_t i = 0; i < n; ++i, f += 4) {
            out_f32(res, tt_weight_factor(f[0], f[1], f[2], f[3]));
            out_f32(res, tt_bias_factor(f[0], f[1], f[2], f[3]));
            out_f32(res, tt_weight_factor_plain(f[0], f[1], f[2], f[3]));
            out_f32(res, tt_input_grad_scale(f[1], f[3]));
        }
        return;
    }
    default:
        res->status = 5;
        return;
    }
}

/* Runs the next case of the stream; returns 0 when the stream is malformed. */
static int run_case(rd_t *r, result_t *res)
{
    memset(res, 0, sizeof *res);
    case_t c;
    int32_t op = rd_i32(r);
    c.np = rd_i32(r);
    if (r->err || c.np < 0 || c.np > MAX_PARAMS) {
        res->status = 1;
        return 0;
    }
    for (int i = 0; i < c.np; ++i) c.v[i] = rd_i32(r);
    c.na = rd_i32(r);
    if (r->err || c.na < 0 || c.na > MAX_ARRAYS) {
        res->status = 1;
        return 0;
    }
    for (int i = 0; i < c.na; ++i) c.a[i] = rd_arr(r);
    if (r->err) {
        res->status = 1;
        return 0;
    }
    run_op(op, &c, res);
    if (res->status == 0 && !guard_ok(res->out, (size_t)res->cap)) res->status = 3;
    return res->status != 5;
}

/* ---- front ends (driver_common.h) --------------------------------------------------- */
#if defined(TT_DRIVER_HOST)

int main(void) { return tc_host_main(run_case); }

#else

/* generated by tests/train_kernel_cases.py into a folder on the include path */
#include "train_cases_data.h" /* tt_case_stream[], tt_case_stream_len, tt_expected[] */

int main(void)
{
    return tc_embedded_main(run_case, tt_case_stream, tt_case_stream_len, tt_expected,
                            tt_train_kernels_dsp());
}

#endif
