/* Test / benchmark driver for the int8 forward kernels (runtime_c/include/tt_kernels.h).
 *
 * Input: a binary stream of cases written by tests/kernel_cases.py (little endian):
 *     i32 n_cases, then per case
 *     i32 op, i32 n_params, i32 params[n_params], i32 n_bands, i32 bands[2 * n_bands],
 *     arrays (op-specific order), each as i32 n_bytes + bytes padded to 4.
 * Split weights (conv family and fc): one optional extra parameter after the op's own
 * ones, `split`: -1 -> w_tail = NULL with a nonzero w_split (must be ignored); s >= 0 ->
 * output channels [0, s) in one exact-size buffer at w, [s, out_c) in another at w_tail
 * (w_split = s; s > out_c: all at w), with garbage blocks after each so that a kernel
 * reading a channel
 * through the wrong piece gets wrong weights (or a sanitizer error). Without it:
 * w_tail = NULL, w_split = 0 (a zero-initialised struct).
 * Bands: each (y0, y1) is computed by a separate call on an exact-size copy of the input
 * rows it needs (in_row0 = first row) into an exact-size band output buffer (out_row0 =
 * y0), so band execution, row offsets and out-of-bounds accesses are all exercised.
 * n_bands = 0: one full-tensor call directly on the case's input.
 * Every output and scratch buffer has guard bytes on both sides, scratch is filled
 * with garbage before each call.
 *
 * Front ends (stdin/stdout on the host, compiled-in cases on the board), guard bytes and
 * status codes: driver_common.h. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "tt_kernels.h"

#ifndef TT_DRIVER_ARENA
#define TT_DRIVER_ARENA (200 * 1024)
#endif
#include "driver_common.h"

enum {
    OP_CONV2D = 1,
    OP_CONV2D_1X1 = 2,
    OP_DWCONV = 3,
    OP_DWCONV_3X3_S1 = 4,
    OP_DWCONV_3X3_S2 = 5,
    OP_FC = 6,
    OP_ADD = 7,
    OP_AVGPOOL = 8,
    OP_REQUANTIZE = 9,
    OP_DWCONV_WRAPPER = 10,
    OP_MAXPOOL = 11,
    OP_CONCAT = 12,
    OP_MUL = 13,
    OP_LUT = 14,
    OP_AVGPOOL_REQUANT = 40,
    OP_AVG_POOL = 41,
    OP_RQ_FLAG = 0x100,
    OP_MAP_FLAG = 0x200,
};

/* ---- one case -------------------------------------------------------------------- */
typedef tc_result result_t;

/* The next array of the stream, which must have exactly `expect` bytes. */
static const void *rd_arr(rd_t *r, int32_t expect) { return rd_array(r, expect, NULL); }

typedef void (*conv_fn)(const tt_conv_params *, const int8_t *, int32_t, int8_t *, int32_t,
                        int32_t, int32_t, void *);
typedef size_t (*scratch_fn)(const tt_conv_params *);

static void run_conv(rd_t *r, int op, int rq, int map, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[17];
    if (np < 14 || np > 17) { r->err = 1; return; }
    for (int i = 0; i < np; ++i) v[i] = rd_i32(r);
    tt_conv_params p = {0}; /* stride_w = 0: square geometry */
    p.in_h = v[0]; p.in_w = v[1]; p.in_c = v[2];
    p.out_h = v[3]; p.out_w = v[4]; p.out_c = v[5];
    p.k_h = v[6]; p.k_w = v[7]; p.stride = v[8]; p.pad = v[9];
    p.in_zero = v[10]; p.out_zero = v[11]; p.act_min = v[12]; p.act_max = v[13];
    /* per-axis geometry: stride_w, pad_w after the 14 (16 or 17 params); the split, when
       present, is always the last (an odd count) */
    if (np >= 16) { p.stride_w = v[14]; p.pad_w = v[15]; }
    const int32_t split_at = (np & 1) ? np - 1 : -1;
    int32_t nb = rd_i32(r);
    if (r->err || nb < 0 || nb > 64) { r->err = 1; return; }
    int32_t bands[128];
    for (int i = 0; i < 2 * nb; ++i) bands[i] = rd_i32(r);
    const int dw = op != OP_CONV2D && op != OP_CONV2D_1X1;
    const int32_t wcount = p.out_c * p.k_h * p.k_w * (dw ? 1 : p.in_c);
    const int8_t *x = (const int8_t *)rd_arr(r, p.in_h * p.in_w * p.in_c);
    p.w = (const int8_t *)rd_arr(r, wcount);
    p.bias = (const int32_t *)rd_arr(r, 4 * p.out_c);
    p.mult = (const int32_t *)rd_arr(r, 4 * p.out_c);
    p.shift = (const int32_t *)rd_arr(r, 4 * p.out_c);
    p.w_tail = NULL;
    p.w_split = 0;
    p.rq = rq ? (const int16_t *)rd_arr(r, 2 * p.out_c) : NULL;
    p.dw_map = map;
    if (r->err) return;
    if (split_at >= 0 && !split_weights(p.w, p.out_c, wcount / (p.out_c ? p.out_c : 1), v[split_at],
                                   &p.w, &p.w_tail, &p.w_split)) {
        res->status = 4;
        return;
    }

    conv_fn fn;
    scratch_fn sf;
    switch (op) {
    case OP_CONV2D: fn = tt_conv2d_s8; sf = tt_conv2d_s8_scratch_bytes; break;
    case OP_CONV2D_1X1: fn = tt_conv2d_1x1_s8; sf = tt_conv2d_1x1_s8_scratch_bytes; break;
    case OP_DWCONV: fn = tt_dwconv_s8; sf = tt_dwconv_s8_scratch_bytes; break;
    case OP_DWCONV_3X3_S1: fn = tt_dwconv_3x3_s1_s8; sf = tt_dwconv_3x3_s1_s8_scratch_bytes; break;
    case OP_DWCONV_3X3_S2: fn = tt_dwconv_3x3_s2_s8; sf = tt_dwconv_3x3_s2_s8_scratch_bytes; break;
    default: fn = tt_dwconv_wrapper_s8; sf = tt_dwconv_wrapper_s8_scratch_bytes; break;
    }
    const size_t row_out = (size_t)p.out_w * p.out_c, row_in = (size_t)p.in_w * p.in_c;
    const size_t n_out = row_out * (size_t)p.out_h;
    uint8_t *full = guarded(n_out);
    if (!full) { res->status = 4; return; }
    res->out = full;
    res->n_out = (int32_t)n_out;
    const size_t ns = sf(&p);
    uint8_t *scratch = (uint8_t *)make_scratch(ns, &res->status);
    if (res->status) return;
    if (nb == 0) {
        uint32_t t0 = tc_cycles();
        fn(&p, x, 0, (int8_t *)full, 0, 0, p.out_h, scratch);
        res->cycles = tc_cycles() - t0;
        if (!guard_ok(full, n_out)) res->status = 3;
    } else {
        for (int b = 0; b < nb && !res->status; ++b) {
            const int32_t y0 = bands[2 * b], y1 = bands[2 * b + 1];
            int32_t r0, r1;
            tt_band_in_rows(&p, y0, y1, &r0, &r1);
            const TC_MARK_T mark = tc_mark();
            const size_t n_in = row_in * (size_t)(r1 - r0), n_band = row_out * (size_t)(y1 - y0);
            /* exact size, no guard: a sanitizer build catches any read outside it */
            uint8_t *bin = (uint8_t *)tc_alloc(n_in), *bout = guarded(n_band);
            if (!bin || !bout) { res->status = 4; break; }
            memcpy(bin, x + row_in * (size_t)r0, n_in);
            memset(bout, 0x5A, n_band);
            if (scratch) memset(scratch, SCRATCH_FILL, ns);
            uint32_t t0 = tc_cycles();
            fn(&p, (const int8_t *)bin, r0, (int8_t *)bout, y0, y0, y1, scratch);
            res->cycles += tc_cycles() - t0;
            if (!guard_ok(bout, n_band)) res->status = 3;
            memcpy(full + row_out * (size_t)y0, bout, n_band);
            tc_release(mark);
        }
    }
    if (scratch && !guard_ok(scratch, ns)) res->status = 2;
}

static void run_fc(rd_t *r, int rq, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[8];
    if (np != 7 && np != 8) { r->err = 1; return; }
    for (int i = 0; i < np; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    tt_fc_params p;
    p.in_c = v[0]; p.out_c = v[1]; p.in_zero = v[2]; p.out_zero = v[3];
    p.act_min = v[4]; p.act_max = v[5];
    const int32_t batch = v[6];
    const int8_t *x = (const int8_t *)rd_arr(r, batch * p.in_c);
    p.w = (const int8_t *)rd_arr(r, p.out_c * p.in_c);
    p.bias = (const int32_t *)rd_arr(r, 4 * p.out_c);
    p.mult = (const int32_t *)rd_arr(r, 4 * p.out_c);
    p.shift = (const int32_t *)rd_arr(r, 4 * p.out_c);
    p.w_tail = NULL;
    p.w_split = 0;
    p.rq = rq ? (const int16_t *)rd_arr(r, 2 * p.out_c) : NULL;
    if (r->err) return;
    if (np == 8 && !split_weights(p.w, p.out_c, p.in_c, v[7], &p.w, &p.w_tail, &p.w_split)) {
        res->status = 4;
        return;
    }
    const size_t n_out = (size_t)batch * p.out_c, ns = tt_fc_s8_scratch_bytes(&p);
    uint8_t *out = guarded(n_out);
    uint8_t *scratch = (uint8_t *)make_scratch(ns, &res->status);
    if (!out || res->status) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_fc_s8(&p, x, (int8_t *)out, batch, scratch);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = (int32_t)n_out;
    if (!guard_ok(out, n_out)) res->status = 3;
    if (scratch && !guard_ok(scratch, ns)) res->status = 2;
}

static void run_add(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[12];
    if (np != 12) { r->err = 1; return; }
    for (int i = 0; i < 12; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    tt_add_params p;
    p.z1 = v[0]; p.z2 = v[1]; p.zo = v[2]; p.m1 = v[3]; p.s1 = v[4]; p.m2 = v[5];
    p.s2 = v[6]; p.mo = v[7]; p.so = v[8]; p.act_min = v[9]; p.act_max = v[10];
    const int32_t n = v[11];
    const int8_t *a = (const int8_t *)rd_arr(r, n), *b = (const int8_t *)rd_arr(r, n);
    if (r->err) return;
    uint8_t *out = guarded((size_t)n);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_add_s8(&p, a, b, (int8_t *)out, n);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = n;
    if (!guard_ok(out, (size_t)n)) res->status = 3;
}

static void run_avgpool(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    if (np != 3) { r->err = 1; return; }
    const int32_t h = rd_i32(r), w = rd_i32(r), c = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    const int8_t *x = (const int8_t *)rd_arr(r, h * w * c);
    if (r->err) return;
    uint8_t *out = guarded((size_t)c);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_avgpool_global_s8(x, h, w, c, (int8_t *)out);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = c;
    if (!guard_ok(out, (size_t)c)) res->status = 3;
}

static void run_maxpool(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[11] = {0};
    if (np != 9 && np != 11) { r->err = 1; return; } /* 11: + stride_w, pad_w (per axis) */
    for (int i = 0; i < np; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    const tt_pool_params p = {.in_h = v[0], .in_w = v[1], .c = v[2], .out_h = v[3], .out_w = v[4],
                              .k_h = v[5], .k_w = v[6], .stride = v[7], .pad = v[8],
                              .stride_w = v[9], .pad_w = v[10]};
    const int8_t *x = (const int8_t *)rd_arr(r, p.in_h * p.in_w * p.c);
    if (r->err) return;
    const size_t n = (size_t)p.out_h * p.out_w * p.c;
    uint8_t *out = guarded(n);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_maxpool_s8(&p, x, (int8_t *)out);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = (int32_t)n;
    if (!guard_ok(out, n)) res->status = 3;
}

static void run_avgpool_requant(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[7];
    if (np != 7) { r->err = 1; return; }
    for (int i = 0; i < 7; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    const int32_t h = v[0], w = v[1], c = v[2];
    const int8_t *x = (const int8_t *)rd_arr(r, h * w * c);
    if (r->err) return;
    uint8_t *out = guarded((size_t)c);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_avgpool_global_requant_s8(x, h, w, c, v[3], v[4], v[5], v[6], (int8_t *)out);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = c;
    if (!guard_ok(out, (size_t)c)) res->status = 3;
}

/* params: h, w, c, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_h, pad_w, in_zero,
   out_zero, count_include_pad, n_mult; arrays: x, mult, shift (one unused entry when
   n_mult = 0: the kernel then gets NULL tables). */
static void run_avg_pool(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[15];
    if (np != 15) { r->err = 1; return; }
    for (int i = 0; i < 15; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    tt_avgpool_params p = {.pool = {.in_h = v[0], .in_w = v[1], .c = v[2], .out_h = v[3],
                                    .out_w = v[4], .k_h = v[5], .k_w = v[6], .stride = v[7],
                                    .pad = v[9]},
                           .in_zero = v[11], .out_zero = v[12], .count_include_pad = v[13],
                           .n_mult = v[14]};
    if (v[8] != v[7] || v[10] != v[9]) { p.pool.stride_w = v[8]; p.pool.pad_w = v[10]; }
    const int32_t nt = v[14] > 0 ? v[14] : 1;
    const int8_t *x = (const int8_t *)rd_arr(r, p.pool.in_h * p.pool.in_w * p.pool.c);
    const int32_t *m = (const int32_t *)rd_arr(r, 4 * nt);
    const int32_t *sh = (const int32_t *)rd_arr(r, 4 * nt);
    if (r->err) return;
    if (v[14] > 0) { p.mult = m; p.shift = sh; }
    const size_t n = (size_t)p.pool.out_h * p.pool.out_w * p.pool.c;
    uint8_t *out = guarded(n);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_avgpool_s8(&p, x, (int8_t *)out);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = (int32_t)n;
    if (!guard_ok(out, n)) res->status = 3;
}

static void run_concat(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[3 + 4 * 8];
    if (np < 7 || np > 3 + 4 * 8 || (np - 3) % 4) { r->err = 1; return; }
    for (int i = 0; i < np; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    const int32_t n_in = v[0], pixels = v[1], out_zero = v[2];
    if (n_in != (np - 3) / 4) { r->err = 1; return; }
    tt_concat_input in[8];
    int32_t out_c = 0;
    for (int32_t i = 0; i < n_in; ++i) {
        in[i].c = v[3 + 4 * i];
        in[i].zero = v[4 + 4 * i];
        in[i].mult = v[5 + 4 * i];
        in[i].shift = v[6 + 4 * i];
        in[i].data = (const int8_t *)rd_arr(r, pixels * in[i].c);
        out_c += in[i].c;
    }
    if (r->err) return;
    const size_t n = (size_t)pixels * out_c;
    uint8_t *out = guarded(n);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_concat_s8(in, n_in, pixels, out_zero, (int8_t *)out);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = (int32_t)n;
    if (!guard_ok(out, n)) res->status = 3;
}

static void run_mul(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[10];
    if (np != 10) { r->err = 1; return; }
    for (int i = 0; i < 10; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    const tt_mul_params p = {.za = v[0], .zb = v[1], .zo = v[2], .mult = v[3], .shift = v[4],
                             .act_min = v[5], .act_max = v[6]};
    const int32_t pixels = v[7], c = v[8], bcast = v[9];
    const int8_t *a = (const int8_t *)rd_arr(r, pixels * c);
    const int8_t *b = (const int8_t *)rd_arr(r, bcast ? c : pixels * c);
    if (r->err) return;
    const size_t n = (size_t)pixels * c;
    uint8_t *out = guarded(n);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_mul_s8(&p, a, b, (int8_t *)out, pixels, c, bcast);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = (int32_t)n;
    if (!guard_ok(out, n)) res->status = 3;
}

static void run_lut(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    if (np != 1) { r->err = 1; return; }
    const int32_t n = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    const int8_t *table = (const int8_t *)rd_arr(r, 256);
    const int8_t *x = (const int8_t *)rd_arr(r, n);
    if (r->err) return;
    uint8_t *out = guarded((size_t)n);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_lut_s8(table, x, (int8_t *)out, n);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = n;
    if (!guard_ok(out, (size_t)n)) res->status = 3;
}

static void run_requantize(rd_t *r, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[5];
    if (np != 5) { r->err = 1; return; }
    for (int i = 0; i < 5; ++i) v[i] = rd_i32(r);
    if (rd_i32(r) != 0) { r->err = 1; return; }
    const int32_t rows = v[0], c = v[1];
    const int32_t *acc = (const int32_t *)rd_arr(r, 4 * rows * c);
    const int32_t *mult = (const int32_t *)rd_arr(r, 4 * c);
    const int32_t *shift = (const int32_t *)rd_arr(r, 4 * c);
    if (r->err) return;
    const size_t n = (size_t)rows * c;
    uint8_t *out = guarded(n);
    if (!out) { res->status = 4; return; }
    uint32_t t0 = tc_cycles();
    tt_requantize_s8(acc, (int8_t *)out, rows, c, mult, shift, v[2], v[3], v[4]);
    res->cycles = tc_cycles() - t0;
    res->out = out;
    res->n_out = (int32_t)n;
    if (!guard_ok(out, n)) res->status = 3;
}

/* Runs the next case of the stream; returns 0 when the stream is malformed. */
static int run_case(rd_t *r, result_t *res)
{
    memset(res, 0, sizeof *res);
    int32_t op = rd_i32(r);
    if (r->err) return 0;
    /* OP_RQ_FLAG: a conv-family or fc case whose precomputed requantization records
       (tt_kernels.h, "Precomputed records") follow its other arrays */
    const int rq = (op & OP_RQ_FLAG) != 0;
    /* OP_MAP_FLAG: a depthwise 3x3 case run with dw_map set (the whole-map scratch) */
    const int map = (op & OP_MAP_FLAG) != 0;
    op &= ~(OP_RQ_FLAG | OP_MAP_FLAG);
    switch (op) {
    case OP_CONV2D:
    case OP_CONV2D_1X1:
    case OP_DWCONV:
    case OP_DWCONV_3X3_S1:
    case OP_DWCONV_3X3_S2:
    case OP_DWCONV_WRAPPER: run_conv(r, op, rq, map, res); break;
    case OP_FC: run_fc(r, rq, res); break;
    case OP_ADD: run_add(r, res); break;
    case OP_AVGPOOL: run_avgpool(r, res); break;
    case OP_REQUANTIZE: run_requantize(r, res); break;
    case OP_MAXPOOL: run_maxpool(r, res); break;
    case OP_CONCAT: run_concat(r, res); break;
    case OP_MUL: run_mul(r, res); break;
    case OP_LUT: run_lut(r, res); break;
    case OP_AVGPOOL_REQUANT: run_avgpool_requant(r, res); break;
    case OP_AVG_POOL: run_avg_pool(r, res); break;
    default: res->status = 5; return 0;
    }
    if (r->err) {
        res->status = 1;
        return 0;
    }
    return 1;
}

/* ---- front ends (driver_common.h) --------------------------------------------------- */
#if defined(TT_DRIVER_HOST)

int main(void) { return tc_host_main(run_case); }

#else

/* generated by tests/kernel_cases.py into a folder on the include path */
#include "kernel_cases_data.h" /* tt_case_stream[], tt_case_stream_len, tt_expected[] */

int main(void)
{
    return tc_embedded_main(run_case, tt_case_stream, tt_case_stream_len, tt_expected,
                            tt_kernels_dsp());
}

#endif
