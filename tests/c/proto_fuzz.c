/* Host driver for tests/test_protocol.py: the real protocol code (runtime_c/src/proto,
 * io/tt_resize.c) built natively, normally under AddressSanitizer + UBSan.
 *
 *   proto_fuzz loop    the device loop with a fake application: serial line =
 *                      stdin/stdout; at end of input prints "calls sample=<n> set=<n>
 *                      commit=<n>" on stderr and exits 0.
 *   proto_fuzz resize  records on stdin: sh u16, sw u16, sc u8, dh u16, dw u16, dc u8,
 *                      mode u8, sh*sw*sc bytes; for each: status u8 (0 ok, 1 refused),
 *                      then dh*dw*dc bytes if ok.
 *   proto_fuzz cobs    records on stdin: n u32 + n bytes; for each: m u32 + m bytes of
 *                      tt_cobs_encode output; also checks that the streaming decoder
 *                      gives the input back (aborts otherwise).
 * Build with -DTT_PROTO_MAX_PAYLOAD=... -DTT_PROTO_MAX_REPLY=... to test small limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tt_board.h"
#include "tt_proto.h"
#include "tt_resize.h"

/* ---- board stand-in ---------------------------------------------------------------- */
const char board_name[] = "fuzz-driver-board-with-a-long-name";
void board_init(void) {}
void board_uart_write(const void *buf, size_t n) { fwrite(buf, 1, n, stdout); }
int board_uart_getc(void) { int c = getchar(); return c == EOF ? -1 : c; }
static uint32_t fake_cycles;
uint32_t board_cycles(void) { return fake_cycles += 7; }
void board_exit(int code) { fflush(stdout); exit(code); }
void board_report(const char *line) { fputs(line, stderr); }
void board_puts(const char *s) { board_uart_write(s, strlen(s)); }

/* ---- fake application ---------------------------------------------------------------- */
#define H 8
#define W 8
#define C 3
#define NCLS 5
#define BLOB_MAX 700
static uint8_t image[H * W * C];
static uint8_t blob[BLOB_MAX], staging[BLOB_MAX];
static uint32_t blob_len = 333, staging_len;
static unsigned n_sample, n_set, n_commit;
static int32_t k_value;

static uint8_t *f_input(void *ctx) { (void)ctx; return image; }

static int f_sample(void *ctx, uint16_t label, uint8_t flags, tt_sample_result *res, const char **msg)
{
    (void)ctx; (void)flags; (void)msg;
    unsigned s = 0;
    for (size_t i = 0; i < sizeof image; ++i) s += image[i];
    n_sample++;
    res->pred = (uint16_t)(s % NCLS);
    res->loss = 1.5f;
    res->flags = TT_RESULT_HAS_LOSS | (label != TT_LABEL_NONE ? TT_RESULT_TRAINED : 0);
    res->logit_scale = 0.5f;
    res->logit_zero_point = -3;
    if (res->logits) {
        /* write exactly logits_cap entries: ASan catches any overrun of the reply */
        for (uint16_t k = 0; k < res->logits_cap; ++k) res->logits[k] = (int8_t)(k * 11);
        res->n_logits = NCLS;
    }
    return s % 97 == 13 ? TT_ERR_APP : 0;   /* sometimes fail, with the default text */
}

static int f_set(void *ctx, const char *key, uint8_t key_len, uint8_t vtype, const uint8_t *val,
                 uint16_t val_len, const char **msg)
{
    (void)ctx; (void)val_len;
    n_set++;
    if (!tt_proto_key_is(key, key_len, "k")) { *msg = "unknown key"; return TT_ERR_KEY; }
    if (vtype != TT_VAL_I32) return TT_ERR_VALUE;
    k_value = (int32_t)tt_get_u32le(val);
    return 0;
}

static int f_get(void *ctx, const char *key, uint8_t key_len, uint8_t *vtype, uint8_t *val,
                 uint16_t *val_len, const char **msg)
{
    (void)ctx;
    if (tt_proto_key_is(key, key_len, "k")) {
        *vtype = TT_VAL_I32; tt_put_u32le(val, (uint32_t)k_value); *val_len = 4; return 0;
    }
    if (tt_proto_key_is(key, key_len, "long")) {   /* longer than any reply: truncated */
        *vtype = TT_VAL_STR;
        memset(val, 'x', *val_len);
        return 0;
    }
    *msg = "a very long error message that is longer than the limit of forty-eight bytes";
    return TT_ERR_KEY;
}

static uint32_t saves;
static int f_save(void *ctx, uint32_t *arg, const char **msg) { (void)ctx; (void)msg; *arg = ++saves; return 0; }
static int f_restore(void *ctx, uint32_t *arg, const char **msg)
{
    (void)ctx;
    if (!saves) { *msg = "nothing saved"; return TT_ERR_STATE; }
    *arg = saves;
    return 0;
}
static int f_reset(void *ctx, uint8_t what, const char **msg) { (void)ctx; (void)what; (void)msg; return 0; }
static int f_blob_size(void *ctx, uint8_t b, uint32_t *size, const char **msg)
{
    (void)ctx; (void)msg;
    if (b != 0) return TT_ERR_PAYLOAD;
    *size = blob_len;
    return 0;
}
static int f_blob_read(void *ctx, uint8_t b, uint32_t off, uint8_t *dst, uint32_t n, const char **msg)
{
    (void)ctx; (void)b; (void)msg;
    if (off + n > blob_len) abort();            /* the device loop must have checked */
    memcpy(dst, blob + off, n);
    return 0;
}
static int f_blob_begin(void *ctx, uint8_t b, uint32_t size, const char **msg)
{
    (void)ctx; (void)msg;
    if (b != 0 || size > BLOB_MAX) return TT_ERR_VALUE;
    staging_len = size;
    return 0;
}
static int f_blob_write(void *ctx, uint8_t b, uint32_t off, const uint8_t *src, uint32_t n, const char **msg)
{
    (void)ctx; (void)b; (void)msg;
    if (off + n > staging_len) abort();         /* the device loop must have checked */
    memcpy(staging + off, src, n);
    return 0;
}
static int f_blob_commit(void *ctx, uint8_t b, const char **msg)
{
    (void)ctx; (void)b; (void)msg;
    n_commit++;
    memcpy(blob, staging, staging_len);
    blob_len = staging_len;
    return 0;
}

static const tt_device_info info = {
    .model_hash = "f00dfeedf00dfeedf00dfeedf00dfeed",
    .plan = "fuzz: a plan description long enough to be truncated when the reply limit is small",
    .in_h = H, .in_w = W, .in_c = C, .num_classes = NCLS,
    .ram_used = 1, .ram_budget = 2, .flash_used = 3, .flash_budget = 4, .arena_bytes = 5,
    .trainable_bytes = 6,
};

static const tt_device_ops ops = {
    .info = &info, .input = f_input, .sample = f_sample, .set = f_set, .get = f_get,
    .save = f_save, .restore = f_restore, .reset = f_reset, .blob_size = f_blob_size,
    .blob_read = f_blob_read, .blob_begin = f_blob_begin, .blob_write = f_blob_write,
    .blob_commit = f_blob_commit, .exit = NULL,
};

/* ---- modes ---------------------------------------------------------------------------- */
static int read_exact(void *p, size_t n) { return fread(p, 1, n, stdin) == n; }

static int mode_resize(void)
{
    uint8_t hdr[11];
    static uint8_t src[1 << 20], dst[1 << 20];
    while (read_exact(hdr, sizeof hdr)) {
        int sh = tt_get_u16le(hdr), sw = tt_get_u16le(hdr + 2), sc = hdr[4];
        int dh = tt_get_u16le(hdr + 5), dw = tt_get_u16le(hdr + 7), dc = hdr[9], mode = hdr[10];
        size_t n = (size_t)sh * sw * sc, m = (size_t)dh * dw * dc;
        if (n > sizeof src || m > sizeof dst) return 3;
        if (!read_exact(src, n)) return 4;
        /* exact-size heap copies so ASan sees any out-of-bounds access */
        uint8_t *s = malloc(n ? n : 1), *d = malloc(m ? m : 1);
        memcpy(s, src, n);
        int r = tt_resize_u8(s, sh, sw, sc, d, dh, dw, dc, mode);
        uint8_t st = r == 0 ? 0 : 1;
        fwrite(&st, 1, 1, stdout);
        if (r == 0) fwrite(d, 1, m, stdout);
        free(s);
        free(d);
    }
    return 0;
}

static int mode_cobs(void)
{
    uint8_t len[4];
    while (read_exact(len, 4)) {
        uint32_t n = tt_get_u32le(len);
        uint8_t *in = malloc(n ? n : 1), *enc = malloc(n + n / 254 + 2), *dec = malloc(n ? n : 1);
        if (!read_exact(in, n)) return 4;
        size_t m = tt_cobs_encode(in, n, enc, n + n / 254 + 1);
        if (m == 0) abort();
        for (size_t i = 0; i < m; ++i) if (enc[i] == 0) abort();
        tt_cobs_decoder d;
        tt_cobs_init(&d, dec, n);
        for (size_t i = 0; i < m; ++i) if (tt_cobs_feed(&d, enc[i]) != TT_COBS_MORE) abort();
        int r = tt_cobs_feed(&d, 0);
        if (r != TT_COBS_FRAME) abort();
        if (d.len != n || memcmp(dec, in, n) != 0) abort();
        /* one byte less of room must overflow */
        if (n) {
            tt_cobs_init(&d, dec, n - 1);
            for (size_t i = 0; i < m; ++i) tt_cobs_feed(&d, enc[i]);
            if (tt_cobs_feed(&d, 0) != -TT_ERR_TOO_LONG) abort();
        }
        uint8_t ml[4];
        tt_put_u32le(ml, (uint32_t)m);
        fwrite(ml, 1, 4, stdout);
        fwrite(enc, 1, m, stdout);
        free(in); free(enc); free(dec);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "loop";
    if (!strcmp(mode, "resize")) return mode_resize();
    if (!strcmp(mode, "cobs")) return mode_cobs();
    int r = tt_device_run(&ops);
    fflush(stdout);
    fprintf(stderr, "calls sample=%u set=%u commit=%u\n", n_sample, n_set, n_commit);
    return r;
}
