/* Device application: a compiled model that keeps learning on the board, behind the
 * serial protocol (tt_proto.h; host side: host/stream.py).
 *
 * SAMPLE (prequential: every labelled sample is predicted before it is trained on)
 *   The device loop resizes the image to the model input (uint8 HWC); tt_model_pixel_lut
 *   turns it into the int8 input. Then, with h = "history":
 *   - not trainable (unlabelled, NO_TRAIN flag, "enabled" 0, or not the train_every-th
 *     trainable sample): a forward pass; RESULT = its prediction;
 *   - h == 0 (online SGD): one training step on the sample; RESULT = the prediction of
 *     that step's forward pass, i.e. made with the weights before the update;
 *   - h > 0 (history buffer): a forward pass gives the prediction; the sample is
 *     stored (as frozen-prefix features when those are smaller than the input, else as
 *     the int8 input) with its label; when h samples are stored, "epochs" passes over
 *     them in storage order (one SGD step each) run, and the buffer empties (the
 *     optimizer is plain SGD: no state to reset between rounds). RESULT.trained is set
 *     on the sample that completed a round.
 *   The loss in RESULT is softmax cross-entropy of the prediction's logits (float32).
 * SET / GET keys: lr (f32, (0, 1]; the classifier's), lr_body (f32, [0, 1]; the layers
 *   below the classifier; 0 = the classifier alone learns), history (i32, 0..TT_HISTORY_MAX), epochs (i32,
 *   1..64), train_every (i32, 1..1000), enabled (i32, 0/1), bits (i32, 2..8),
 *   rounding (i32: 0 stochastic, 1 nearest, 2 truncate), seed (i32); GET also "name".
 * RESET weights: compiled-in weights, step counter 0; RESET history: empties the buffer.
 * SAVE / RESTORE: a RAM checkpoint of the trained arrays (when TT_CHECKPOINT is 1).
 * DOWNLOAD blob 0: the trained arrays in tt_trained_ptr order (weights int8 OHWI,
 *   biases int32 little-endian). UPLOAD blob 0: same layout, staged then committed
 *   (when TT_CHECKPOINT is 1; the staging buffer doubles as the checkpoint).
 */
#include <math.h>
#include <string.h>
#include "tt_board.h"
#include "tt_model.h"
#include "tt_proto.h"

#ifndef TT_HISTORY_MAX
#define TT_HISTORY_MAX 16
#endif
#ifndef TT_CHECKPOINT
#define TT_CHECKPOINT 0
#endif
#ifndef TT_MODEL_PLAN
#define TT_MODEL_PLAN "compiled training plan"
#endif

#if TT_MODEL_FEATURE_BYTES > 0 && TT_MODEL_FEATURE_BYTES < TT_MODEL_INPUT_BYTES
#define STORE_FEATURES 1
#define ITEM_BYTES TT_MODEL_FEATURE_BYTES
#else
#define STORE_FEATURES 0
#define ITEM_BYTES TT_MODEL_INPUT_BYTES
#endif

static uint8_t input_img[TT_MODEL_IN_H * TT_MODEL_IN_W * TT_MODEL_IN_C];
#if TT_HISTORY_MAX > 0
static uint8_t history[TT_HISTORY_MAX][ITEM_BYTES];
static uint8_t history_label[TT_HISTORY_MAX];
#endif
static int32_t hist_len, hist_cap, epochs = 1, train_every = 1, enabled = 1;
static uint32_t trainable_seen;
#if TT_CHECKPOINT
static uint8_t staging[TT_MODEL_TRAINED_BYTES];
static uint32_t checkpoint_no;
#endif

static int argmax(const int8_t *v, int n)
{
    int k = 0;
    for (int i = 1; i < n; ++i)
        if (v[i] > v[k]) k = i;
    return k;
}

static float xent(const int8_t *q, int n, int label)
{
    float m = -1e30f, s = 0.0f;
    for (int k = 0; k < n; ++k) {
        float z = TT_MODEL_OUTPUT_SCALE * (float)(q[k] - TT_MODEL_OUTPUT_ZERO);
        if (z > m) m = z;
    }
    for (int k = 0; k < n; ++k)
        s += expf(TT_MODEL_OUTPUT_SCALE * (float)(q[k] - TT_MODEL_OUTPUT_ZERO) - m);
    return m + logf(s) - TT_MODEL_OUTPUT_SCALE * (float)(q[label] - TT_MODEL_OUTPUT_ZERO);
}

static int train_round(void)
{
    int rc = 0;
#if TT_HISTORY_MAX > 0
    for (int32_t e = 0; e < epochs; ++e)
        for (int32_t i = 0; i < hist_len; ++i) {
#if STORE_FEATURES
            rc |= tt_model_train_step_features(history[i], history_label[i]);
#else
            memcpy(tt_model_input(), history[i], TT_MODEL_INPUT_BYTES);
            rc |= tt_model_train_step(history_label[i]);
#endif
        }
#endif
    hist_len = 0;
    return rc;
}

static uint8_t *app_input(void *ctx) { (void)ctx; return input_img; }

static int app_sample(void *ctx, uint16_t label, uint8_t flags, tt_sample_result *res,
                      const char **msg)
{
    (void)ctx;
    if (label != TT_LABEL_NONE && label >= TT_MODEL_OUTPUT_BYTES) {
        *msg = "label out of range";
        return TT_ERR_VALUE;
    }
    int8_t *x = tt_model_input();
    for (int i = 0; i < TT_MODEL_INPUT_BYTES; ++i) x[i] = tt_model_pixel_lut[input_img[i]];
    int trainable = label != TT_LABEL_NONE && !(flags & TT_SAMPLE_NO_TRAIN) && enabled;
    if (trainable && (++trainable_seen % (uint32_t)train_every) != 0) trainable = 0;
    const int8_t *logits;
    int rc = 0;
    uint32_t t0 = board_cycles(), t1;
    if (trainable && hist_cap == 0) {
        rc = tt_model_train_step(label);
        t1 = board_cycles();
        logits = tt_train_logits;
        res->cycles_train = t1 - t0;
        res->flags |= TT_RESULT_TRAINED;
    } else {
        tt_model_forward();
        t1 = board_cycles();
        logits = tt_model_output();
        static int8_t pred_logits[TT_MODEL_OUTPUT_BYTES];
        memcpy(pred_logits, logits, TT_MODEL_OUTPUT_BYTES);
        logits = pred_logits;
#if TT_HISTORY_MAX > 0
        if (trainable) {
#if STORE_FEATURES
            tt_model_save_features(history[hist_len]);
#else
            memcpy(history[hist_len], x, TT_MODEL_INPUT_BYTES);
#endif
            history_label[hist_len] = (uint8_t)label;
            if (++hist_len >= hist_cap) {
                rc = train_round();
                res->flags |= TT_RESULT_TRAINED;
            }
            res->cycles_train = board_cycles() - t1;
        }
#endif
    }
    res->cycles_predict = t1 - t0;
    res->pred = (uint16_t)argmax(logits, TT_MODEL_OUTPUT_BYTES);
    res->logit_scale = TT_MODEL_OUTPUT_SCALE;
    res->logit_zero_point = (int8_t)TT_MODEL_OUTPUT_ZERO;
    if (res->logits) {
        int n = TT_MODEL_OUTPUT_BYTES < res->logits_cap ? TT_MODEL_OUTPUT_BYTES : res->logits_cap;
        memcpy(res->logits, logits, (size_t)n);
        res->n_logits = (uint16_t)n;
    }
    if (label != TT_LABEL_NONE) {
        res->loss = xent(logits, TT_MODEL_OUTPUT_BYTES, label);
        res->flags |= TT_RESULT_HAS_LOSS;
    }
    if (rc) {
        *msg = "training step failed (bad setting?)";
        return TT_ERR_APP;
    }
    return 0;
}

static int int_setting(const char *key, uint8_t key_len, const char *name, int32_t lo,
                       int32_t hi, uint8_t vtype, const uint8_t *val, int32_t *out,
                       const char **msg, int *rc)
{
    if (!tt_proto_key_is(key, key_len, name)) return 0;
    if (vtype != TT_VAL_I32) {
        *msg = "integer expected";
        *rc = TT_ERR_VALUE;
        return 1;
    }
    int32_t v = (int32_t)tt_get_u32le(val);
    if (v < lo || v > hi) {
        *msg = "value out of range";
        *rc = TT_ERR_VALUE;
        return 1;
    }
    *out = v;
    *rc = 0;
    return 1;
}

static int app_set(void *ctx, const char *key, uint8_t key_len, uint8_t vtype,
                   const uint8_t *val, uint16_t val_len, const char **msg)
{
    (void)ctx;
    (void)val_len;
    int rc;
    int32_t v;
    if (tt_proto_key_is(key, key_len, "lr")) {
        if (vtype != TT_VAL_F32) { *msg = "lr is a float"; return TT_ERR_VALUE; }
        float f = tt_get_f32le(val);
        if (!(f > 0.0f && f <= 1.0f)) { *msg = "lr must be in (0, 1]"; return TT_ERR_VALUE; }
        tt_train_cfg.lr = f;
        return 0;
    }
    if (tt_proto_key_is(key, key_len, "lr_body")) {
        if (vtype != TT_VAL_F32) { *msg = "lr_body is a float"; return TT_ERR_VALUE; }
        float f = tt_get_f32le(val);
        if (!(f >= 0.0f && f <= 1.0f)) { *msg = "lr_body must be in [0, 1]"; return TT_ERR_VALUE; }
        tt_train_cfg.lr_body = f;
        return 0;
    }
    if (int_setting(key, key_len, "history", 0, TT_HISTORY_MAX, vtype, val, &v, msg, &rc)) {
        if (!rc) {
            hist_cap = v;
            hist_len = 0;
        }
        return rc;
    }
    if (int_setting(key, key_len, "epochs", 1, 64, vtype, val, &epochs, msg, &rc)) return rc;
    if (int_setting(key, key_len, "train_every", 1, 1000, vtype, val, &train_every, msg, &rc))
        return rc;
    if (int_setting(key, key_len, "enabled", 0, 1, vtype, val, &enabled, msg, &rc)) return rc;
    if (int_setting(key, key_len, "bits", 2, 8, vtype, val, &tt_train_cfg.bits, msg, &rc)) return rc;
    if (int_setting(key, key_len, "rounding", 0, 2, vtype, val, &tt_train_cfg.rounding, msg, &rc))
        return rc;
    if (int_setting(key, key_len, "seed", -0x7FFFFFFF, 0x7FFFFFFF, vtype, val, &v, msg, &rc)) {
        if (!rc) tt_train_cfg.seed = (uint32_t)v;
        return rc;
    }
    *msg = "unknown key";
    return TT_ERR_KEY;
}

static int app_get(void *ctx, const char *key, uint8_t key_len, uint8_t *vtype, uint8_t *val,
                   uint16_t *val_len, const char **msg)
{
    (void)ctx;
    if (tt_proto_key_is(key, key_len, "lr") || tt_proto_key_is(key, key_len, "lr_body")) {
        *vtype = TT_VAL_F32;
        tt_put_f32le(val, key_len == 2 ? tt_train_cfg.lr : tt_train_cfg.lr_body);
        *val_len = 4;
        return 0;
    }
    struct { const char *name; int32_t value; } ints[] = {
        {"history", hist_cap}, {"epochs", epochs}, {"train_every", train_every},
        {"enabled", enabled}, {"bits", tt_train_cfg.bits}, {"rounding", tt_train_cfg.rounding},
        {"seed", (int32_t)tt_train_cfg.seed}, {"step", (int32_t)tt_train_step_count},
    };
    for (unsigned i = 0; i < sizeof ints / sizeof ints[0]; ++i)
        if (tt_proto_key_is(key, key_len, ints[i].name)) {
            *vtype = TT_VAL_I32;
            tt_put_u32le(val, (uint32_t)ints[i].value);
            *val_len = 4;
            return 0;
        }
    if (tt_proto_key_is(key, key_len, "name")) {
        static const char name[] = TT_MODEL_NAME;
        uint16_t n = (uint16_t)(sizeof name - 1) < *val_len ? (uint16_t)(sizeof name - 1) : *val_len;
        *vtype = TT_VAL_STR;
        memcpy(val, name, n);
        *val_len = n;
        return 0;
    }
    *msg = "unknown key";
    return TT_ERR_KEY;
}

static void copy_trained(uint8_t *dst, int to_model)
{
    uint32_t pos = 0;
    for (int i = 0; i < TT_TRAINED_ARRAYS; ++i) {
        if (to_model) memcpy(tt_trained_ptr[i], dst + pos, tt_trained_bytes[i]);
        else memcpy(dst + pos, tt_trained_ptr[i], tt_trained_bytes[i]);
        pos += tt_trained_bytes[i];
    }
}

static int app_save(void *ctx, uint32_t *arg, const char **msg)
{
    (void)ctx;
#if TT_CHECKPOINT
    (void)msg;
    copy_trained(staging, 0);
    *arg = ++checkpoint_no;
    return 0;
#else
    (void)arg;
    *msg = "built without checkpoint memory";
    return TT_ERR_UNSUPPORTED;
#endif
}

static int app_restore(void *ctx, uint32_t *arg, const char **msg)
{
    (void)ctx;
#if TT_CHECKPOINT
    if (!checkpoint_no) { *msg = "no checkpoint saved"; return TT_ERR_STATE; }
    copy_trained(staging, 1);
    *arg = checkpoint_no;
    return 0;
#else
    (void)arg;
    *msg = "built without checkpoint memory";
    return TT_ERR_UNSUPPORTED;
#endif
}

static int app_reset(void *ctx, uint8_t what, const char **msg)
{
    (void)ctx;
    (void)msg;
    if (what & TT_RESET_WEIGHTS) tt_model_reset_trained();
    if (what & TT_RESET_HISTORY) {
        hist_len = 0;
        trainable_seen = 0;
    }
    return 0;
}

static int app_blob_size(void *ctx, uint8_t blob, uint32_t *size, const char **msg)
{
    (void)ctx;
    if (blob != TT_BLOB_WEIGHTS) { *msg = "no such blob"; return TT_ERR_PAYLOAD; }
    *size = TT_MODEL_TRAINED_BYTES;
    return 0;
}

static int app_blob_read(void *ctx, uint8_t blob, uint32_t offset, uint8_t *dst, uint32_t n,
                         const char **msg)
{
    (void)ctx;
    (void)blob;
    (void)msg;
    uint32_t pos = 0;
    for (int i = 0; i < TT_TRAINED_ARRAYS && n; ++i) {
        uint32_t sz = tt_trained_bytes[i];
        if (offset < pos + sz) {
            uint32_t a = offset - pos, k = sz - a < n ? sz - a : n;
            memcpy(dst, (const uint8_t *)tt_trained_ptr[i] + a, k);
            dst += k;
            offset += k;
            n -= k;
        }
        pos += sz;
    }
    return 0;
}

#if TT_CHECKPOINT
static int app_blob_begin(void *ctx, uint8_t blob, uint32_t size, const char **msg)
{
    (void)ctx;
    if (blob != TT_BLOB_WEIGHTS) { *msg = "no such blob"; return TT_ERR_PAYLOAD; }
    if (size != TT_MODEL_TRAINED_BYTES) { *msg = "wrong size for this model"; return TT_ERR_VALUE; }
    return 0;
}

static int app_blob_write(void *ctx, uint8_t blob, uint32_t offset, const uint8_t *src,
                          uint32_t n, const char **msg)
{
    (void)ctx;
    (void)blob;
    (void)msg;
    memcpy(staging + offset, src, n);
    return 0;
}

static int app_blob_commit(void *ctx, uint8_t blob, const char **msg)
{
    (void)ctx;
    (void)blob;
    (void)msg;
    copy_trained(staging, 1);
    return 0;
}
#endif

static void app_exit(void *ctx, uint8_t code)
{
    (void)ctx;
#ifdef TT_BOARD_host
    uint32_t t0 = board_cycles();  /* let the host read the OK before the pty goes */
    while (board_cycles() - t0 < 100000000u) {}
#endif
    board_exit(code);
}

static const tt_device_info info = {
    .model_hash = TT_MODEL_HASH,
    .plan = TT_MODEL_PLAN,
    .in_h = TT_MODEL_IN_H, .in_w = TT_MODEL_IN_W, .in_c = TT_MODEL_IN_C,
    .num_classes = TT_MODEL_OUTPUT_BYTES,
    .ram_used = TT_ARENA_BYTES + TT_BOARD_STACK_BYTES + TT_MODEL_TRAINED_BYTES,
    .ram_budget = TT_BOARD_RAM_BYTES, .flash_used = 0, .flash_budget = 1024u * 1024u,
    .arena_bytes = TT_ARENA_BYTES, .trainable_bytes = TT_MODEL_TRAINED_BYTES,
};

static const tt_device_ops ops = {
    .ctx = 0, .info = &info, .input = app_input, .sample = app_sample,
    .set = app_set, .get = app_get, .save = app_save, .restore = app_restore,
    .reset = app_reset, .blob_size = app_blob_size, .blob_read = app_blob_read,
#if TT_CHECKPOINT
    .blob_begin = app_blob_begin, .blob_write = app_blob_write, .blob_commit = app_blob_commit,
#endif
    .exit = app_exit,
};

int main(void)
{
    return tt_device_run(&ops);
}
