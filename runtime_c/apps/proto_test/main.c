/* Protocol test firmware: the device loop (tt_proto.h) with a tiny but real int8
 * learner behind it, so tests can check SAMPLE semantics end to end on the host build
 * (pty) and on QEMU (socket). Not a neural network; a reproducible stand-in with the
 * same shape of state (int8 weights updated in place with a learning rate).
 *
 * Model input: 16x16x3 uint8 (SAMPLE images are resized to it by the device loop).
 * Features:    x8 = pixel - 128 (int8); 4x4 average pooling -> 4x4x3 = 48 int8,
 *              f = floor((sum of the 16 values + 8) / 16).
 * Classes:     4, each an int8 centroid c[k][48] plus a sample count n[k].
 * Predict:     d[k] = sum_f (f - c[k][f])^2 over classes with n[k] > 0;
 *              pred = argmin d (lowest index on ties), 0 if no class has samples;
 *              logits q[k] = -128 if n[k] == 0 else max(-127, -((d[k] + 8) >> 4)),
 *              logit_scale 0.25, zero point 0; loss = softmax cross-entropy (float32).
 * Train:       labelled, not NO_TRAIN, "enabled" != 0, and the application's count
 *              of such samples is a multiple of "train_every":
 *              n[k] == 0: c[k] = f; else c[k][f] += floor(((f - c[k][f]) * lr_q8 + 128)
 *              / 256) with lr_q8 = (int)(lr * 256 + 0.5) (SET "lr", default 0.5);
 *              n[k] += 1.
 * Settings:    lr (f32, 0 < lr <= 1), train_every (i32, 1..1000), enabled (i32, 0/1);
 *              GET also knows "name" (str).
 * Blob 0:      the state image (216 bytes): magic u32 'NCC1', classes u16,
 *              features u16, n[4] u32, c[4][48] int8.
 * SAVE/RESTORE: a RAM checkpoint (the flash slots are the persistence layer's job);
 * EXIT: board_exit(code).
 */
#include <math.h>
#include <string.h>
#include "tt_board.h"
#include "tt_proto.h"

#ifndef TT_PROTO_TEST_HASH
#define TT_PROTO_TEST_HASH "c0ffee00c0ffee00c0ffee00c0ffee00"
#endif

#define IN_H 16
#define IN_W 16
#define IN_C 3
#define CLASSES 4
#define POOL 4
#define FEATS ((IN_H / POOL) * (IN_W / POOL) * IN_C)
#define MAGIC 0x3143434Eu  /* "NCC1" */
#define OFF_COUNT 8
#define OFF_CENT (OFF_COUNT + 4 * CLASSES)
#define STATE_BYTES (OFF_CENT + CLASSES * FEATS)

static uint8_t input_img[IN_H * IN_W * IN_C];
static uint8_t state[STATE_BYTES], staging[STATE_BYTES], checkpoint[STATE_BYTES];
static uint32_t checkpoint_no;
static int lr_q8 = 128, train_every = 1, enabled = 1;
static float lr_f = 0.5f;
static uint32_t trainable_seen;

static int32_t floor_shift(int32_t x, int s)
{
    return x >= 0 ? x >> s : -(int32_t)(((uint32_t)(-x) + (1u << s) - 1u) >> s);
}

static void state_init(uint8_t *st)
{
    memset(st, 0, STATE_BYTES);
    tt_put_u32le(st, MAGIC);
    tt_put_u16le(st + 4, CLASSES);
    tt_put_u16le(st + 6, FEATS);
}

static int8_t *centroid(int k) { return (int8_t *)(state + OFF_CENT + k * FEATS); }
static uint32_t count(int k) { return tt_get_u32le(state + OFF_COUNT + 4 * k); }

static void features(int8_t *f)
{
    int n = 0;
    for (int by = 0; by < IN_H / POOL; ++by)
        for (int bx = 0; bx < IN_W / POOL; ++bx)
            for (int c = 0; c < IN_C; ++c) {
                int32_t s = 0;
                for (int y = 0; y < POOL; ++y)
                    for (int x = 0; x < POOL; ++x)
                        s += (int32_t)input_img[((by * POOL + y) * IN_W + bx * POOL + x) * IN_C + c] - 128;
                f[n++] = (int8_t)floor_shift(s + 8, 4);
            }
}

static uint8_t *app_input(void *ctx) { (void)ctx; return input_img; }

static int app_sample(void *ctx, uint16_t label, uint8_t flags, tt_sample_result *res,
                      const char **msg)
{
    (void)ctx; (void)msg;
    int8_t f[FEATS];
    int32_t d[CLASSES];
    uint32_t t0 = board_cycles();
    features(f);
    int pred = -1;
    for (int k = 0; k < CLASSES; ++k) {
        d[k] = -1;
        if (!count(k)) continue;
        const int8_t *c = centroid(k);
        int32_t s = 0;
        for (int i = 0; i < FEATS; ++i) s += ((int32_t)f[i] - c[i]) * ((int32_t)f[i] - c[i]);
        d[k] = s;
        if (pred < 0 || s < d[pred]) pred = k;
    }
    res->pred = (uint16_t)(pred < 0 ? 0 : pred);
    int8_t q[CLASSES];
    for (int k = 0; k < CLASSES; ++k) {
        int32_t v = d[k] < 0 ? -128 : -((d[k] + 8) >> 4);
        if (d[k] >= 0 && v < -127) v = -127;
        q[k] = (int8_t)v;
    }
    res->logit_scale = 0.25f;
    res->logit_zero_point = 0;
    if (res->logits) {
        int n = CLASSES < res->logits_cap ? CLASSES : res->logits_cap;
        for (int k = 0; k < n; ++k) res->logits[k] = q[k];
        res->n_logits = (uint16_t)n;
    }
    if (label != TT_LABEL_NONE) {
        float m = -1e30f, s = 0.0f;
        for (int k = 0; k < CLASSES; ++k) if (0.25f * q[k] > m) m = 0.25f * q[k];
        for (int k = 0; k < CLASSES; ++k) s += expf(0.25f * q[k] - m);
        res->loss = m + logf(s) - 0.25f * q[label];
        res->flags |= TT_RESULT_HAS_LOSS;
    }
    uint32_t t1 = board_cycles();
    res->cycles_predict = t1 - t0;
    if (label != TT_LABEL_NONE && !(flags & TT_SAMPLE_NO_TRAIN) && enabled) {
        trainable_seen++;
        if (trainable_seen % (uint32_t)train_every == 0) {
            int8_t *c = centroid(label);
            uint32_t n = count(label);
            for (int i = 0; i < FEATS; ++i) {
                if (n == 0) {
                    c[i] = f[i];
                } else {
                    int32_t v = c[i] + floor_shift(((int32_t)f[i] - c[i]) * lr_q8 + 128, 8);
                    c[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
                }
            }
            if (n != 0xFFFFFFFFu) tt_put_u32le(state + OFF_COUNT + 4 * label, n + 1u);
            res->flags |= TT_RESULT_TRAINED;
        }
    }
    res->cycles_train = board_cycles() - t1;
    return 0;
}

static int app_set(void *ctx, const char *key, uint8_t key_len, uint8_t vtype,
                   const uint8_t *val, uint16_t val_len, const char **msg)
{
    (void)ctx; (void)val_len;
    if (tt_proto_key_is(key, key_len, "lr")) {
        if (vtype != TT_VAL_F32) { *msg = "lr is a float"; return TT_ERR_VALUE; }
        float v = tt_get_f32le(val);
        if (!(v > 0.0f && v <= 1.0f)) { *msg = "lr must be in (0, 1]"; return TT_ERR_VALUE; }
        lr_f = v;
        lr_q8 = (int)(v * 256.0f + 0.5f);
        if (lr_q8 < 1) lr_q8 = 1;
        return 0;
    }
    int is_every = tt_proto_key_is(key, key_len, "train_every");
    if (is_every || tt_proto_key_is(key, key_len, "enabled")) {
        if (vtype != TT_VAL_I32) { *msg = "integer expected"; return TT_ERR_VALUE; }
        int32_t v = (int32_t)tt_get_u32le(val);
        if (is_every) {
            if (v < 1 || v > 1000) { *msg = "train_every must be in 1..1000"; return TT_ERR_VALUE; }
            train_every = (int)v;
        } else {
            if (v != 0 && v != 1) { *msg = "enabled is 0 or 1"; return TT_ERR_VALUE; }
            enabled = (int)v;
        }
        return 0;
    }
    *msg = "unknown key";
    return TT_ERR_KEY;
}

static int app_get(void *ctx, const char *key, uint8_t key_len, uint8_t *vtype, uint8_t *val,
                   uint16_t *val_len, const char **msg)
{
    (void)ctx;
    if (tt_proto_key_is(key, key_len, "lr")) {
        *vtype = TT_VAL_F32; tt_put_f32le(val, lr_f); *val_len = 4; return 0;
    }
    int is_every = tt_proto_key_is(key, key_len, "train_every");
    if (is_every || tt_proto_key_is(key, key_len, "enabled")) {
        *vtype = TT_VAL_I32;
        tt_put_u32le(val, (uint32_t)(is_every ? train_every : enabled));
        *val_len = 4;
        return 0;
    }
    if (tt_proto_key_is(key, key_len, "name")) {
        static const char name[] = "proto_test";
        uint16_t n = (uint16_t)(sizeof name - 1) < *val_len ? (uint16_t)(sizeof name - 1) : *val_len;
        *vtype = TT_VAL_STR; memcpy(val, name, n); *val_len = n; return 0;
    }
    *msg = "unknown key";
    return TT_ERR_KEY;
}

static int app_save(void *ctx, uint32_t *arg, const char **msg)
{
    (void)ctx; (void)msg;
    memcpy(checkpoint, state, STATE_BYTES);
    *arg = ++checkpoint_no;
    return 0;
}

static int app_restore(void *ctx, uint32_t *arg, const char **msg)
{
    (void)ctx;
    if (!checkpoint_no) { *msg = "no checkpoint saved"; return TT_ERR_STATE; }
    memcpy(state, checkpoint, STATE_BYTES);
    *arg = checkpoint_no;
    return 0;
}

static int app_reset(void *ctx, uint8_t what, const char **msg)
{
    (void)ctx; (void)msg;
    if (what & TT_RESET_WEIGHTS) state_init(state);
    if (what & TT_RESET_HISTORY) trainable_seen = 0;
    return 0;
}

static int app_blob_size(void *ctx, uint8_t blob, uint32_t *size, const char **msg)
{
    (void)ctx;
    if (blob != TT_BLOB_WEIGHTS) { *msg = "no such blob"; return TT_ERR_PAYLOAD; }
    *size = STATE_BYTES;
    return 0;
}

static int app_blob_read(void *ctx, uint8_t blob, uint32_t offset, uint8_t *dst, uint32_t n,
                         const char **msg)
{
    (void)ctx; (void)blob; (void)msg;
    memcpy(dst, state + offset, n);   /* offset + n <= size: checked by the device loop */
    return 0;
}

static int app_blob_begin(void *ctx, uint8_t blob, uint32_t size, const char **msg)
{
    (void)ctx;
    if (blob != TT_BLOB_WEIGHTS) { *msg = "no such blob"; return TT_ERR_PAYLOAD; }
    if (size != STATE_BYTES) { *msg = "state image is 216 bytes"; return TT_ERR_VALUE; }
    return 0;
}

static int app_blob_write(void *ctx, uint8_t blob, uint32_t offset, const uint8_t *src,
                          uint32_t n, const char **msg)
{
    (void)ctx; (void)blob; (void)msg;
    memcpy(staging + offset, src, n);  /* bounded by the size given to blob_begin */
    return 0;
}

static int app_blob_commit(void *ctx, uint8_t blob, const char **msg)
{
    (void)ctx; (void)blob;
    if (tt_get_u32le(staging) != MAGIC || tt_get_u16le(staging + 4) != CLASSES ||
        tt_get_u16le(staging + 6) != FEATS) {
        *msg = "not a state image of this model";
        return TT_ERR_VALUE;
    }
    memcpy(state, staging, STATE_BYTES);
    return 0;
}

static void app_exit(void *ctx, uint8_t code)
{
    (void)ctx;
#ifdef TT_BOARD_host
    /* the host board's pty vanishes with the process, unread bytes with it: give the
       host 100 ms to read the OK reply (board_cycles() counts nanoseconds there) */
    uint32_t t0 = board_cycles();
    while (board_cycles() - t0 < 100000000u) {}
#endif
    board_exit(code);
}

static const tt_device_info info = {
    .model_hash = TT_PROTO_TEST_HASH,
    .plan = "nearest-centroid test learner: 48 int8 features, 4 classes, in-place int8 update",
    .in_h = IN_H, .in_w = IN_W, .in_c = IN_C, .num_classes = CLASSES,
    .ram_used = sizeof input_img + 3 * STATE_BYTES, .ram_budget = 256u * 1024u,
    .flash_used = 0, .flash_budget = 1024u * 1024u,
    .arena_bytes = sizeof input_img, .trainable_bytes = STATE_BYTES,
};

static const tt_device_ops ops = {
    .ctx = 0, .info = &info, .input = app_input, .sample = app_sample,
    .set = app_set, .get = app_get, .save = app_save, .restore = app_restore,
    .reset = app_reset, .blob_size = app_blob_size, .blob_read = app_blob_read,
    .blob_begin = app_blob_begin, .blob_write = app_blob_write,
    .blob_commit = app_blob_commit, .exit = app_exit,
};

int main(void)
{
    state_init(state);
    return tt_device_run(&ops);
}
