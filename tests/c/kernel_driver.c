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
 * Front ends:
 *   TT_DRIVER_HOST      reads the stream from stdin; per case writes
 *                       i32 status, u32 cycles, i32 n_bytes, bytes (padded to 4).
 *   TT_DRIVER_EMBEDDED  the stream and the expected outputs are compiled in (generated
 *                       header kernel_cases_data.h); prints one text line per case on the
 *                       board's UART: "K <case> <status> <first mismatch or -1> <got>
 *                       <expected> <cycles>", then "DONE <failures>".
 * Status: 0 ok, 1 malformed case, 2 scratch guard overwritten, 3 output guard
 * overwritten, 4 out of memory, 5 unknown op. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "tt_kernels.h"

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
};

#define GUARD 16
#define GUARD_BYTE 0xC3
#define SCRATCH_FILL 0xA5

/* ---- memory ------------------------------------------------------------------------ */
#if defined(TT_DRIVER_HOST)
#define TC_MARK_T int
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static void *allocs[512];
static int n_allocs;
static int tc_mark(void) { return n_allocs; }
static void tc_release(int mark)
{
    while (n_allocs > mark) free(allocs[--n_allocs]);
}
static void *tc_alloc(size_t n)
{
    if (n_allocs == 512) return NULL;
    void *p = malloc(n ? n : 1);
    allocs[n_allocs++] = p;
    return p;
}
static void tc_free_all(void)
{
    while (n_allocs) free(allocs[--n_allocs]);
}
static uint32_t tc_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}
#else
#include "tt_board.h"
#define TC_MARK_T size_t
#ifndef TT_DRIVER_ARENA
#define TT_DRIVER_ARENA (200 * 1024)
#endif
static uint32_t arena_words[TT_DRIVER_ARENA / 4];
static size_t arena_used;
static void *tc_alloc(size_t n)
{
    n = (n + 7u) & ~(size_t)7u;
    if (arena_used + n > sizeof arena_words) return NULL;
    void *p = (uint8_t *)arena_words + arena_used;
    arena_used += n;
    return p;
}
static void tc_free_all(void) { arena_used = 0; }
static size_t tc_mark(void) { return arena_used; }
static void tc_release(size_t mark) { arena_used = mark; }
static uint32_t tc_cycles(void) { return board_cycles(); }
#endif

/* Buffer with guard bytes on both sides. */
static uint8_t *guarded(size_t n)
{
    uint8_t *b = (uint8_t *)tc_alloc(n + 2 * GUARD + 8);
    if (!b) return NULL;
    memset(b, GUARD_BYTE, n + 2 * GUARD + 8);
    return b + GUARD; /* keeps 8-byte alignment: GUARD is a multiple of 8 */
}
static int guard_ok(const uint8_t *p, size_t n)
{
    for (int i = 1; i <= GUARD; ++i)
        if (p[-i] != GUARD_BYTE) return 0;
    for (size_t i = 0; i < GUARD; ++i)
        if (p[n + i] != GUARD_BYTE) return 0;
    return 1;
}

/* ---- stream reader ----------------------------------------------------------------- */
typedef struct {
    const uint8_t *p, *end;
    int err;
} rd_t;

static int32_t rd_i32(rd_t *r)
{
    if (r->end - r->p < 4) {
        r->err = 1;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    return (int32_t)v;
}

/* Next array of the stream, copied into its own exact-size RAM buffer (so sanitizer
   builds see any read past it; on the device weights and activations live in RAM). */
static const void *rd_arr(rd_t *r, int32_t expect)
{
    int32_t n = rd_i32(r);
    size_t padded = ((size_t)n + 3u) & ~(size_t)3u;
    if (r->err || n != expect || (size_t)(r->end - r->p) < padded) {
        r->err = 1;
        return NULL;
    }
    void *a = tc_alloc((size_t)n);
    if (!a) {
        r->err = 1;
        return NULL;
    }
    memcpy(a, r->p, (size_t)n);
    r->p += padded;
    return a;
}

/* Lays out weights w[rows][K] as described for `split` above; returns 0 when out of
   memory or the code is invalid. */
static int split_weights(const int8_t *w, int32_t rows, int32_t K, int32_t code,
                         const int8_t **head, const int8_t **tail, int32_t *split)
{
    if (code == -1) {
        *head = w;
        *tail = NULL;
        *split = rows / 2 + 1;
        return 1;
    }
    if (code < 0) return 0;
    const int32_t sh = code < rows ? code : rows; /* w_split > out_c: all at w */
    const size_t nh = (size_t)sh * (size_t)K, nt = (size_t)(rows - sh) * (size_t)K;
    const size_t n = (size_t)rows * (size_t)K;
    int8_t *h = (int8_t *)tc_alloc(nh), *junk1 = (int8_t *)tc_alloc(n);
    int8_t *t = (int8_t *)tc_alloc(nt), *junk2 = (int8_t *)tc_alloc(n);
    if (!h || !junk1 || !t || !junk2) return 0;
    memcpy(h, w, nh);
    memcpy(t, w + nh, nt);
    /* what a wrong row computation would read instead: every byte differs from the
       weight at the same flat index */
    for (size_t i = 0; i < n; ++i) {
        junk1[i] = (int8_t)(w[i] ^ 0x55);
        junk2[i] = (int8_t)(w[i] ^ 0x2A);
    }
    *head = h;
    *tail = t;
    *split = code;
    return 1;
}

/* ---- one case -------------------------------------------------------------------- */
typedef struct {
    int status;
    uint32_t cycles;
    const int8_t *out;
    int32_t n_out;
} result_t;

typedef void (*conv_fn)(const tt_conv_params *, const int8_t *, int32_t, int8_t *, int32_t,
                        int32_t, int32_t, void *);
typedef size_t (*scratch_fn)(const tt_conv_params *);

static void *make_scratch(size_t n, int *status)
{
    if (n == 0) return NULL;
    uint8_t *s = guarded(n);
    if (!s) *status = 4;
    else memset(s, SCRATCH_FILL, n);
    return s;
}

static void run_conv(rd_t *r, int op, result_t *res)
{
    int32_t np = rd_i32(r);
    int32_t v[15];
    if (np != 14 && np != 15) { r->err = 1; return; }
    for (int i = 0; i < np; ++i) v[i] = rd_i32(r);
    tt_conv_params p;
    p.in_h = v[0]; p.in_w = v[1]; p.in_c = v[2];
    p.out_h = v[3]; p.out_w = v[4]; p.out_c = v[5];
    p.k_h = v[6]; p.k_w = v[7]; p.stride = v[8]; p.pad = v[9];
    p.in_zero = v[10]; p.out_zero = v[11]; p.act_min = v[12]; p.act_max = v[13];
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
    if (r->err) return;
    if (np == 15 && !split_weights(p.w, p.out_c, wcount / (p.out_c ? p.out_c : 1), v[14],
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
    default: fn = tt_dwconv_3x3_s2_s8; sf = tt_dwconv_3x3_s2_s8_scratch_bytes; break;
    }
    const size_t row_out = (size_t)p.out_w * p.out_c, row_in = (size_t)p.in_w * p.in_c;
    const size_t n_out = row_out * (size_t)p.out_h;
    uint8_t *full = guarded(n_out);
    if (!full) { res->status = 4; return; }
    res->out = (const int8_t *)full;
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

static void run_fc(rd_t *r, result_t *res)
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
    res->out = (const int8_t *)out;
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
    res->out = (const int8_t *)out;
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
    res->out = (const int8_t *)out;
    res->n_out = c;
    if (!guard_ok(out, (size_t)c)) res->status = 3;
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
    res->out = (const int8_t *)out;
    res->n_out = (int32_t)n;
    if (!guard_ok(out, n)) res->status = 3;
}

/* Runs the next case of the stream; returns 0 when the stream is malformed. */
static int run_case(rd_t *r, result_t *res)
{
    memset(res, 0, sizeof *res);
    int32_t op = rd_i32(r);
    if (r->err) return 0;
    switch (op) {
    case OP_CONV2D:
    case OP_CONV2D_1X1:
    case OP_DWCONV:
    case OP_DWCONV_3X3_S1:
    case OP_DWCONV_3X3_S2: run_conv(r, op, res); break;
    case OP_FC: run_fc(r, res); break;
    case OP_ADD: run_add(r, res); break;
    case OP_AVGPOOL: run_avgpool(r, res); break;
    case OP_REQUANTIZE: run_requantize(r, res); break;
    default: res->status = 5; return 0;
    }
    if (r->err) {
        res->status = 1;
        return 0;
    }
    return 1;
}

/* ---- front ends -------------------------------------------------------------------- */
#if defined(TT_DRIVER_HOST)

static void put_i32(int32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, stdout);
}

int main(void)
{
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = (uint8_t *)malloc(cap);
    for (;;) {
        if (n == cap) buf = (uint8_t *)realloc(buf, cap *= 2);
        size_t k = fread(buf + n, 1, cap - n, stdin);
        if (k == 0) break;
        n += k;
    }
    rd_t r = {buf, buf + n, 0};
    int32_t nc = rd_i32(&r);
    for (int32_t i = 0; i < nc; ++i) {
        result_t res;
        int ok = run_case(&r, &res);
        put_i32(res.status);
        put_i32((int32_t)res.cycles);
        put_i32(res.status ? 0 : res.n_out);
        if (!res.status) {
            static const uint8_t zeros[4];
            fwrite(res.out, 1, (size_t)res.n_out, stdout);
            fwrite(zeros, 1, (size_t)((4 - (res.n_out & 3)) & 3), stdout);
        }
        tc_free_all();
        if (!ok) break;
    }
    free(buf);
    return fflush(stdout) != 0;
}

#elif defined(TT_DRIVER_EMBEDDED)

/* generated by tests/kernel_cases.py into a folder on the include path */
#include "kernel_cases_data.h" /* tt_case_stream[], tt_case_stream_len, tt_expected[] */

static void put_str(const char *s) { board_puts(s); }
static void put_int(int32_t v)
{
    char d[12];
    int n = 0;
    uint32_t u = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
    if (v < 0) put_str("-");
    do { d[n++] = (char)('0' + u % 10u); u /= 10u; } while (u);
    char s[12];
    int k = 0;
    while (n) s[k++] = d[--n];
    s[k] = 0;
    put_str(s);
}

int main(void)
{
    rd_t r = {tt_case_stream, tt_case_stream + tt_case_stream_len, 0};
    const uint8_t *exp = tt_expected;
    int32_t nc = rd_i32(&r), failures = 0;
    put_str("\r\nBEGIN ");
    put_int(nc);
    put_str(tt_kernels_dsp() ? " dsp" : " portable");
    put_str("\r\n");
    for (int32_t i = 0; i < nc; ++i) {
        result_t res;
        int ok = run_case(&r, &res);
        /* expected: i32 n_bytes + bytes padded to 4 */
        int32_t en = (int32_t)((uint32_t)exp[0] | (uint32_t)exp[1] << 8 | (uint32_t)exp[2] << 16 |
                               (uint32_t)exp[3] << 24);
        const int8_t *e = (const int8_t *)(exp + 4);
        exp += 4 + (((uint32_t)en + 3u) & ~3u);
        int32_t bad = -1, got = 0, want = 0;
        if (!res.status) {
            if (res.n_out != en) {
                bad = res.n_out < en ? res.n_out : en;
            } else {
                for (int32_t j = 0; j < en; ++j)
                    if (res.out[j] != e[j]) { bad = j; got = res.out[j]; want = e[j]; break; }
            }
        }
        if (res.status || bad >= 0) ++failures;
        put_str("K ");
        put_int(i);
        put_str(" ");
        put_int(res.status);
        put_str(" ");
        put_int(bad);
        put_str(" ");
        put_int(got);
        put_str(" ");
        put_int(want);
        put_str(" ");
        put_int((int32_t)res.cycles);
        put_str("\r\n");
        tc_free_all();
        if (!ok) break;
    }
    put_str("DONE ");
    put_int(failures);
    put_str("\r\n");
    return failures ? 1 : 0;
}

#else
#error "define TT_DRIVER_HOST or TT_DRIVER_EMBEDDED"
#endif
