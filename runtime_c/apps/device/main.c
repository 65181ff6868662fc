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
 *   augment 1 (history of inputs only): each step of a round trains on its stored input
 *     randomly shifted (pad with the input zero point and crop, up to augment_shift
 *     pixels each way) and mirrored left-right with probability 1/2; the random draw is
 *     a hash of (seed, the step counter), so the reference replay reproduces it.
 *   The loss in RESULT is softmax cross-entropy of the prediction's logits (float32).
 * An mse model (TT_MODEL_LOSS_MSE, an autoencoder: the target of a sample is its own
 *   input requantized, tt_model_target_of_input) learns from unlabelled samples: a
 *   labelled SAMPLE is refused, every sample is trainable (NO_TRAIN, enabled and
 *   train_every as above), the history stores each sample's target with it, and RESULT
 *   carries TT_RESULT_SCORE: loss = the anomaly score, the mse of the prediction's output
 *   against the target (bit-exact with compiler.ref.grad_ops.mse_grad's loss), pred 0.
 * TT_SAMPLE_RAW: the SAMPLE is the int8 model input itself (the host quantized it with
 *   the model's input scale and zero point); no pixel table.
 * SET / GET keys: lr (f32, (0, 1]; the classifier's), lr_body (f32, [0, 1]; the layers
 *   below the classifier; 0 = the classifier alone learns), history (i32, 0..TT_HISTORY_MAX), epochs (i32,
 *   1..64), train_every (i32, 1..1000), enabled (i32, 0/1), bits (i32, 2..8),
 *   rounding (i32: 0 stochastic, 1 nearest, 2 truncate), seed (i32); GET also "name".
 *   augment (i32, 0/1: augmentation in history rounds; 1 is refused when the history
 *   stores features, the model is an mse autoencoder or its input is flat, 1 x 1 x F),
 *   augment_shift (i32, 0..AUG_SHIFT_MAX = min(in_h, in_w) / 2; default
 *   min(in_h, in_w) / 8).
 *   range, loss_range (string: the gradient range function of every gradient / of the
 *   loss gradient: "max", "max/2", "max/4", "3*max/4" or "mean*K" with K 1..64; not
 *   kept in checkpoints: a boot starts from the compiled-in ones).
 *   autosave (i32, 0..1000000: SAVE after every that many trained samples, 0 = off).
 *   GET also: name, step, samples (SAMPLE requests since the factory state), resume_at
 *   (samples the trained state includes: a stream resumes after a reset from there),
 *   checkpoint (sequence number of the last checkpoint saved or restored, 0: none),
 *   booted (1: this boot restored a checkpoint), capacity (payload bytes a slot holds).
 * RESET weights: compiled-in weights, step counter 0, sample counters 0; RESET history:
 *   drops the buffered samples (the counters go back to the last completed round, i.e.
 *   to resume_at); RESET checkpoints: erases both flash slots (factory state).
 * Checkpoints (TT_PERSIST, on by default; tt_ckpt.h): the payload is the state block
 *   (counters and settings, STATE_BYTES) followed by the trained arrays. Boot restores
 *   the newest valid checkpoint of this model and plan, else keeps the compiled-in
 *   weights; INFO's status line says which. SAVE writes the older slot; RESTORE reloads
 *   the newest. With samples in the history buffer, a checkpoint holds the state as of
 *   the last completed round (resume_at counts up to there), so that replaying the
 *   samples after resume_at reproduces the uninterrupted run exactly.
 * DOWNLOAD blob 0: the trained arrays in tt_trained_ptr order (weights int8 OHWI,
 *   biases int32 little-endian). Blob 1: the live state as a checkpoint image (header +
 *   payload). UPLOAD blob 1: a checkpoint image, refused unless it is for this model and
 *   plan; staged straight into the free flash slot, live once its CRC checks.
 */
#include <math.h>
#include <string.h>
#include "tt_board.h"
#include "tt_ckpt.h"
#include "tt_model.h"
#include "tt_proto.h"

#ifndef TT_HISTORY_MAX
#define TT_HISTORY_MAX 16
#endif
#ifndef TT_PERSIST
#define TT_PERSIST 1
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

/* The protocol resizes a received image (uint8 HWC) straight into the model input's
   arena bytes (app_input); app_sample turns it into the int8 input there, in place: the
   arena holds nothing between two calls into the model. */
#if TT_HISTORY_MAX > 0
static uint8_t history[TT_HISTORY_MAX][ITEM_BYTES];
static uint8_t history_label[TT_HISTORY_MAX];
#endif
#ifdef TT_MODEL_LOSS_MSE
#ifndef TT_MODEL_TARGET_OF_INPUT
#error "the device app trains an mse model on its own input: output size must equal input size"
#endif
#define MODEL_FLAGS TT_INFO_LOSS_MSE
#if TT_HISTORY_MAX > 0
static int8_t history_target[TT_HISTORY_MAX][TT_MODEL_OUTPUT_BYTES];
#endif
/* The loss of tt_mse_grad_s8 (same float32 operations in the same order). */
static float mse_score(const int8_t *y, const int8_t *t)
{
    float total = 0.0f;
    for (int32_t i = 0; i < TT_MODEL_OUTPUT_BYTES; ++i) {
        const float e = (float)((int32_t)y[i] - (int32_t)t[i]) * TT_MODEL_OUTPUT_SCALE;
        const float e2 = e * e;
        total = i == 0 ? e2 : total + e2;
    }
    return total / (float)TT_MODEL_OUTPUT_BYTES;
}
#else
#define MODEL_FLAGS 0
#endif
static int32_t hist_len, hist_cap, epochs = 1, train_every = 1, enabled = 1;

/* ---- augmentation of the stored inputs in history rounds (SET augment) --------------- */
#define AUG_MIN_HW (TT_MODEL_IN_H < TT_MODEL_IN_W ? TT_MODEL_IN_H : TT_MODEL_IN_W)
#define AUG_SHIFT_DEFAULT (AUG_MIN_HW / 8)
#define AUG_SHIFT_MAX (AUG_MIN_HW / 2)
#define AUG_SALT 0x41554731u
#if STORE_FEATURES || defined(TT_MODEL_LOSS_MSE) || (TT_MODEL_IN_H == 1 && TT_MODEL_IN_W == 1)
#define AUG_POSSIBLE 0
#else
#define AUG_POSSIBLE 1
#endif
static int32_t augment, augment_shift = AUG_SHIFT_DEFAULT;

#if TT_HISTORY_MAX > 0 && AUG_POSSIBLE
/* dst (the model input) = the stored input src, mirrored left-right when bit 0 of the
   draw is set, then shifted: dst(y, x) = mirrored(y + dy, x + dx), the input zero point
   where that falls outside; dx, dy in [-augment_shift, augment_shift] from the draw's
   bits 1..15 and 16..31. The draw is tt_hash32(step, tt_hash32(seed, AUG_SALT)) for the
   training step about to run (compiler.ref.augment is the reference). */
static void augment_into(int8_t *dst, const uint8_t *src)
{
    enum { H = TT_MODEL_IN_H, W = TT_MODEL_IN_W, C = TT_MODEL_IN_C };
    const uint32_t h = tt_hash32(tt_train_step_count, tt_hash32(tt_train_cfg.seed, AUG_SALT));
    const uint32_t span = 2u * (uint32_t)augment_shift + 1u;
    const int flip = (int)(h & 1u);
    const int32_t dx = (int32_t)(((h >> 1) & 0x7FFFu) % span) - augment_shift;
    const int32_t dy = (int32_t)((h >> 16) % span) - augment_shift;
    const int zero = (int)(int8_t)TT_MODEL_INPUT_ZERO;
    for (int32_t y = 0; y < H; ++y) {
        int8_t *row = dst + (size_t)y * W * C;
        const int32_t sy = y + dy;
        if (sy < 0 || sy >= H) {
            memset(row, zero, (size_t)W * C);
            continue;
        }
        const uint8_t *srow = src + (size_t)sy * W * C;
        for (int32_t x = 0; x < W; ++x) {
            const int32_t fx = x + dx; /* column of the mirrored image */
            if (fx < 0 || fx >= W)
                memset(row + x * C, zero, C);
            else
                memcpy(row + x * C, srow + (size_t)(flip ? W - 1 - fx : fx) * C, C);
        }
    }
}
#endif
static uint32_t trainable_seen;
/* SAMPLE requests since the factory state; the values of both counters when the history
   buffer was last empty (the state a checkpoint holds) */
static uint32_t seen, seen_clean, trainable_seen_clean;
static int32_t autosave;
static uint32_t trained_since_save;
static uint32_t ckpt_seq;
static int booted_from_ckpt;
static uint32_t boot_seq, boot_resume_at;
static int save_checkpoint(uint32_t *seq, const char **msg);

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
#ifdef TT_MODEL_LOSS_MSE
            memcpy(tt_train_target, history_target[i], TT_MODEL_OUTPUT_BYTES);
#endif
            rc |= tt_model_train_step_features(history[i], history_label[i]);
#else
#if AUG_POSSIBLE
            if (augment)
                augment_into(tt_model_input(), history[i]);
            else
#endif
                memcpy(tt_model_input(), history[i], TT_MODEL_INPUT_BYTES);
#ifdef TT_MODEL_LOSS_MSE
            memcpy(tt_train_target, history_target[i], TT_MODEL_OUTPUT_BYTES);
#endif
            rc |= tt_model_train_step(history_label[i]);
#endif
        }
#endif
    hist_len = 0;
    return rc;
}

static uint8_t *app_input(void *ctx) { (void)ctx; return (uint8_t *)tt_model_input(); }

static int app_sample(void *ctx, uint16_t label, uint8_t flags, tt_sample_result *res,
                      const char **msg)
{
    (void)ctx;
    if (label != TT_LABEL_NONE && label >= TT_MODEL_OUTPUT_BYTES) {
        *msg = "label out of range";
        return TT_ERR_VALUE;
    }
    int8_t *x = tt_model_input();
    const uint8_t *img = (const uint8_t *)x; /* the image, converted in place */
    if (flags & TT_SAMPLE_RAW) {
        /* already the int8 input */
    } else {
#if defined(TT_MODEL_INPUT_BGR) && TT_MODEL_INPUT_BGR
        /* a BGR model: channel c of its input is channel 2 - c of the received RGB pixel */
        for (int i = 0; i < TT_MODEL_INPUT_BYTES; i += 3) {
            const uint8_t px[3] = {img[i], img[i + 1], img[i + 2]};
            for (int c = 0; c < 3; ++c)
                x[i + c] = tt_model_pixel_lut[TT_MODEL_PIXEL_LUTS == 1 ? 0 : c][px[2 - c]];
        }
#elif TT_MODEL_PIXEL_LUTS == 1
        for (int i = 0; i < TT_MODEL_INPUT_BYTES; ++i) x[i] = tt_model_pixel_lut[0][img[i]];
#else /* per-channel input normalization: channel c of each pixel has its own table */
        for (int i = 0, c = 0; i < TT_MODEL_INPUT_BYTES; ++i) {
            x[i] = tt_model_pixel_lut[c][img[i]];
            if (++c == TT_MODEL_PIXEL_LUTS) c = 0;
        }
#endif
    }
#ifdef TT_MODEL_LOSS_MSE
    if (label != TT_LABEL_NONE) {
        *msg = "this model learns without labels (mse)";
        return TT_ERR_VALUE;
    }
    /* the target now: the forward pass may reuse the input's arena bytes */
    static int8_t target[TT_MODEL_OUTPUT_BYTES];
    tt_model_target_of_input(x, target);
    memcpy(tt_train_target, target, TT_MODEL_OUTPUT_BYTES);
    const int labelled = 1;
#else
    const int labelled = label != TT_LABEL_NONE;
#endif
    ++seen;
    int trainable = labelled && !(flags & TT_SAMPLE_NO_TRAIN) && enabled;
    if (trainable && (++trainable_seen % (uint32_t)train_every) != 0) trainable = 0;
    if (trainable) ++trained_since_save;
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
#if TT_HISTORY_MAX > 0 && !STORE_FEATURES
        /* the input now: the forward pass may reuse its arena bytes */
        if (trainable) memcpy(history[hist_len], x, TT_MODEL_INPUT_BYTES);
#endif
#if TT_HISTORY_MAX > 0 && STORE_FEATURES
        /* the sample's features, copied out during the pass (they do not outlive it) */
        if (trainable) tt_model_forward_saving_features(history[hist_len]);
        else tt_model_forward();
#else
        tt_model_forward();
#endif
        t1 = board_cycles();
        logits = tt_model_output();
        static int8_t pred_logits[TT_MODEL_OUTPUT_BYTES];
        memcpy(pred_logits, logits, TT_MODEL_OUTPUT_BYTES);
        logits = pred_logits;
#if TT_HISTORY_MAX > 0
        if (trainable) {
            history_label[hist_len] = (uint8_t)label;
#ifdef TT_MODEL_LOSS_MSE
            memcpy(history_target[hist_len], target, TT_MODEL_OUTPUT_BYTES);
#endif
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
#ifdef TT_MODEL_LOSS_MSE
    res->pred = 0;
    res->loss = mse_score(logits, target);
    res->flags |= TT_RESULT_HAS_LOSS | TT_RESULT_SCORE;
#else
    if (label != TT_LABEL_NONE) {
        res->loss = xent(logits, TT_MODEL_OUTPUT_BYTES, label);
        res->flags |= TT_RESULT_HAS_LOSS;
    }
#endif
    if (rc) {
        *msg = "training step failed (bad setting?)";
        return TT_ERR_APP;
    }
    if (hist_len == 0) {
        seen_clean = seen;
        trainable_seen_clean = trainable_seen;
        if (autosave > 0 && trained_since_save >= (uint32_t)autosave) {
            uint32_t seq;
            const char *m;
            if (save_checkpoint(&seq, &m) != 0) {
                *msg = "trained, but the autosave failed";
                return TT_ERR_APP;
            }
        }
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

/* "max", "max/2", "max/4", "3*max/4", "mean*K" (K 1..64) -> *r; 0, or -1 when not one. */
static int range_of_text(const uint8_t *t, uint16_t n, tt_grad_range *r)
{
    static const char *const names[] = {"max", "max/2", "max/4", "3*max/4"};
    static const tt_grad_range ranges[] = {
        {TT_RANGE_SHIFT, 0}, {TT_RANGE_SHIFT, 1}, {TT_RANGE_SHIFT, 2}, {TT_RANGE_SHIFT3, 2}};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; ++i)
        if (n == strlen(names[i]) && memcmp(t, names[i], n) == 0) {
            *r = ranges[i];
            return 0;
        }
    if (n < 6 || n > 7 || memcmp(t, "mean*", 5) != 0) return -1;
    int32_t k = 0;
    for (uint16_t i = 5; i < n; ++i) {
        if (t[i] < '0' || t[i] > '9') return -1;
        k = 10 * k + (t[i] - '0');
    }
    if (t[5] == '0' || k < 1 || k > 64) return -1;
    r->kind = TT_RANGE_MEAN;
    r->k = k;
    return 0;
}

/* The name of a range function (range_of_text's inverse) into buf; its length. */
static uint16_t range_text(tt_grad_range r, uint8_t *buf)
{
    if (r.kind == TT_RANGE_MEAN) {
        memcpy(buf, "mean*", 5);
        uint16_t n = 5;
        if (r.k >= 10) buf[n++] = (uint8_t)('0' + r.k / 10);
        buf[n++] = (uint8_t)('0' + r.k % 10);
        return n;
    }
    const char *s = r.kind == TT_RANGE_SHIFT3 ? "3*max/4" : r.k == 0 ? "max" : r.k == 1 ? "max/2" : "max/4";
    const uint16_t n = (uint16_t)strlen(s);
    memcpy(buf, s, n);
    return n;
}

static int app_set(void *ctx, const char *key, uint8_t key_len, uint8_t vtype,
                   const uint8_t *val, uint16_t val_len, const char **msg)
{
    (void)ctx;
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
    if (int_setting(key, key_len, "autosave", 0, 1000000, vtype, val, &autosave, msg, &rc)) {
#if !TT_PERSIST
        if (!rc && autosave) { autosave = 0; *msg = "built without checkpoints"; return TT_ERR_VALUE; }
#endif
        return rc;
    }
    if (int_setting(key, key_len, "train_every", 1, 1000, vtype, val, &train_every, msg, &rc))
        return rc;
    if (int_setting(key, key_len, "enabled", 0, 1, vtype, val, &enabled, msg, &rc)) return rc;
    if (int_setting(key, key_len, "bits", 2, 8, vtype, val, &tt_train_cfg.bits, msg, &rc)) return rc;
    if (int_setting(key, key_len, "rounding", 0, 2, vtype, val, &tt_train_cfg.rounding, msg, &rc))
        return rc;
    if (int_setting(key, key_len, "augment", 0, 1, vtype, val, &v, msg, &rc)) {
        if (rc) return rc;
#if !AUG_POSSIBLE
        if (v) {
#if STORE_FEATURES
            *msg = "augment: history stores features, not inputs";
#elif defined(TT_MODEL_LOSS_MSE)
            *msg = "augment: not for an mse model";
#else
            *msg = "augment: the input is not an image";
#endif
            return TT_ERR_VALUE;
        }
#endif
        augment = v;
        return 0;
    }
    if (int_setting(key, key_len, "augment_shift", 0, AUG_SHIFT_MAX, vtype, val, &augment_shift,
                    msg, &rc))
        return rc;
    if (int_setting(key, key_len, "seed", -0x7FFFFFFF, 0x7FFFFFFF, vtype, val, &v, msg, &rc)) {
        if (!rc) tt_train_cfg.seed = (uint32_t)v;
        return rc;
    }
    if (tt_proto_key_is(key, key_len, "range") || tt_proto_key_is(key, key_len, "loss_range")) {
        tt_grad_range r;
        if (vtype != TT_VAL_STR) { *msg = "range is a string"; return TT_ERR_VALUE; }
        if (range_of_text(val, val_len, &r)) {
            *msg = "range: max, max/2, max/4, 3*max/4 or mean*K (K 1..64)";
            return TT_ERR_VALUE;
        }
        if (key_len == 5) tt_train_cfg.range = r;
        else tt_train_cfg.loss_range = r;
        return 0;
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
        {"autosave", autosave}, {"samples", (int32_t)seen}, {"resume_at", (int32_t)seen_clean},
        {"checkpoint", (int32_t)ckpt_seq}, {"booted", booted_from_ckpt},
        {"augment", augment}, {"augment_shift", augment_shift},
#if TT_PERSIST
        {"capacity", (int32_t)tt_ckpt_capacity()},
#endif
    };
    for (unsigned i = 0; i < sizeof ints / sizeof ints[0]; ++i)
        if (tt_proto_key_is(key, key_len, ints[i].name)) {
            *vtype = TT_VAL_I32;
            tt_put_u32le(val, (uint32_t)ints[i].value);
            *val_len = 4;
            return 0;
        }
    if ((tt_proto_key_is(key, key_len, "range") || tt_proto_key_is(key, key_len, "loss_range")) &&
        *val_len >= 7) {
        *vtype = TT_VAL_STR;
        *val_len = range_text(key_len == 5 ? tt_train_cfg.range : tt_train_cfg.loss_range, val);
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

/* ---- the trained state: state block + trained arrays --------------------------------- */
#define STATE_WORDS 16
#define STATE_BYTES (4 * STATE_WORDS)
#define STATE_VERSION 2u /* 2: words 14, 15 = augment, augment_shift; 1 (older): 0, 0 */
#define PAYLOAD_BYTES (STATE_BYTES + TT_MODEL_TRAINED_BYTES)

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void state_encode(uint8_t *b)
{
    const uint32_t v[STATE_WORDS] = {
        STATE_VERSION, seen_clean, trainable_seen_clean, tt_train_step_count, tt_train_cfg.seed,
        f32_bits(tt_train_cfg.lr), f32_bits(tt_train_cfg.lr_body), (uint32_t)hist_cap,
        (uint32_t)epochs, (uint32_t)train_every, (uint32_t)enabled, (uint32_t)tt_train_cfg.bits,
        (uint32_t)tt_train_cfg.rounding, (uint32_t)autosave, (uint32_t)augment,
        (uint32_t)augment_shift};
    for (int i = 0; i < STATE_WORDS; ++i) tt_put_u32le(b + 4 * i, v[i]);
}

/* 0 when every value of a state block is in range (the SET ranges), else nonzero. */
static int state_check(const uint8_t *b)
{
    uint32_t v[STATE_WORDS];
    for (int i = 0; i < STATE_WORDS; ++i) v[i] = tt_get_u32le(b + 4 * i);
    float lr = bits_f32(v[5]), lr_body = bits_f32(v[6]);
    if (v[0] == STATE_VERSION &&
        (v[14] > (AUG_POSSIBLE ? 1u : 0u) || v[15] > (uint32_t)AUG_SHIFT_MAX))
        return 1;
    return (v[0] != STATE_VERSION && v[0] != 1u) || !(lr > 0.0f && lr <= 1.0f) || !(lr_body >= 0.0f && lr_body <= 1.0f) ||
           v[7] > (uint32_t)TT_HISTORY_MAX || v[8] < 1 || v[8] > 64 || v[9] < 1 || v[9] > 1000 ||
           v[10] > 1 || v[11] < 2 || v[11] > 8 || v[12] > 2 || v[13] > 1000000;
}

/* Applies a state block; 0, or nonzero (nothing changed) when a value is out of range. */
static int state_decode(const uint8_t *b)
{
    if (state_check(b)) return 1;
    uint32_t v[STATE_WORDS];
    for (int i = 0; i < STATE_WORDS; ++i) v[i] = tt_get_u32le(b + 4 * i);
    float lr = bits_f32(v[5]), lr_body = bits_f32(v[6]);
    seen = seen_clean = v[1];
    trainable_seen = trainable_seen_clean = v[2];
    tt_train_step_count = v[3];
    tt_train_cfg.seed = v[4];
    tt_train_cfg.lr = lr;
    tt_train_cfg.lr_body = lr_body;
    hist_cap = (int32_t)v[7];
    hist_len = 0;
    epochs = (int32_t)v[8];
    train_every = (int32_t)v[9];
    enabled = (int32_t)v[10];
    tt_train_cfg.bits = (int32_t)v[11];
    tt_train_cfg.rounding = (int32_t)v[12];
    autosave = (int32_t)v[13];
    augment = v[0] == STATE_VERSION ? (int32_t)v[14] : 0;
    augment_shift = v[0] == STATE_VERSION ? (int32_t)v[15] : AUG_SHIFT_DEFAULT;
    trained_since_save = 0;
    return 0;
}

/* n bytes of the trained arrays (concatenated in tt_trained_ptr order) at offset off */
static void arrays_read(uint32_t off, uint8_t *dst, uint32_t n)
{
    uint32_t pos = 0;
    for (int i = 0; i < TT_TRAINED_ARRAYS && n; ++i) {
        uint32_t sz = tt_trained_bytes[i];
        if (off < pos + sz) {
            uint32_t a = off - pos, k = sz - a < n ? sz - a : n;
            memcpy(dst, (const uint8_t *)tt_trained_ptr[i] + a, k);
            dst += k;
            off += k;
            n -= k;
        }
        pos += sz;
    }
}

/* n bytes of the payload (state block, then the arrays) at offset off */
static void payload_read(void *ctx, uint32_t off, uint8_t *dst, uint32_t n)
{
    (void)ctx;
    if (off < STATE_BYTES) {
        uint8_t st[STATE_BYTES];
        state_encode(st);
        uint32_t k = STATE_BYTES - off < n ? STATE_BYTES - off : n;
        memcpy(dst, st + off, k);
        dst += k;
        off += k;
        n -= k;
    }
    if (n) arrays_read(off - STATE_BYTES, dst, n);
}

#if TT_PERSIST
static const tt_ckpt_id ckpt_id = {TT_MODEL_HASH, TT_MODEL_PLAN_HASH, PAYLOAD_BYTES};

/* Make the checkpoint in `slot` (already validated) the live state. */
static int load_slot(int slot)
{
    uint8_t st[STATE_BYTES];
    if (tt_ckpt_read(slot, 0, st, STATE_BYTES) != 0) return TT_ERR_STATE;
    if (state_decode(st) != 0) return TT_ERR_VALUE;
    uint32_t pos = STATE_BYTES;
    for (int i = 0; i < TT_TRAINED_ARRAYS; ++i) {
        if (tt_ckpt_read(slot, pos, tt_trained_ptr[i], tt_trained_bytes[i]) != 0) return TT_ERR_STATE;
        pos += tt_trained_bytes[i];
    }
    return 0;
}

static int save_checkpoint(uint32_t *seq, const char **msg)
{
    int e = tt_ckpt_save(&ckpt_id, payload_read, 0, seq);
    if (e) {
        *msg = PAYLOAD_BYTES > tt_ckpt_capacity() ? "checkpoint larger than a flash slot"
                                                  : "flash write failed";
        return TT_ERR_APP;
    }
    ckpt_seq = *seq;
    trained_since_save = 0;
    return 0;
}

static int app_save(void *ctx, uint32_t *arg, const char **msg)
{
    (void)ctx;
    return save_checkpoint(arg, msg);
}

static int app_restore(void *ctx, uint32_t *arg, const char **msg)
{
    (void)ctx;
    uint32_t seq;
    int slot = tt_ckpt_newest(&ckpt_id, &seq);
    if (slot < 0) { *msg = "no checkpoint in flash"; return TT_ERR_STATE; }
    int e = load_slot(slot);
    if (e) { *msg = "checkpoint state invalid"; return e; }
    ckpt_seq = seq;
    *arg = seq;
    return 0;
}
#else
static int save_checkpoint(uint32_t *seq, const char **msg)
{
    (void)seq;
    *msg = "built without checkpoints";
    return TT_ERR_UNSUPPORTED;
}
#endif

static int app_reset(void *ctx, uint8_t what, const char **msg)
{
    (void)ctx;
    if (what & TT_RESET_WEIGHTS) {
        tt_model_reset_trained();
        hist_len = 0;
        seen = seen_clean = trainable_seen = trainable_seen_clean = 0;
        trained_since_save = 0;
    }
    if (what & TT_RESET_HISTORY) { /* drop the buffered samples: back to the last round */
        hist_len = 0;
        seen = seen_clean;
        trainable_seen = trainable_seen_clean;
    }
    if (what & TT_RESET_CHECKPOINTS) {
#if TT_PERSIST
        if (tt_ckpt_erase_all() != 0) { *msg = "flash erase failed"; return TT_ERR_APP; }
        ckpt_seq = 0;
#else
        *msg = "built without checkpoints";
        return TT_ERR_UNSUPPORTED;
#endif
    }
    return 0;
}

#if TT_PERSIST
static tt_ckpt_header dl_header; /* header of the checkpoint image being downloaded */
#endif

static int app_blob_size(void *ctx, uint8_t blob, uint32_t *size, const char **msg)
{
    (void)ctx;
    if (blob == TT_BLOB_WEIGHTS) { *size = TT_MODEL_TRAINED_BYTES; return 0; }
#if TT_PERSIST
    if (blob == TT_BLOB_CHECKPOINT) { *size = TT_CKPT_HEADER_BYTES + PAYLOAD_BYTES; return 0; }
#endif
    *msg = "no such blob";
    return TT_ERR_PAYLOAD;
}

static int app_blob_read(void *ctx, uint8_t blob, uint32_t offset, uint8_t *dst, uint32_t n,
                         const char **msg)
{
    (void)ctx;
    (void)msg;
    if (blob == TT_BLOB_WEIGHTS) {
        arrays_read(offset, dst, n);
        return 0;
    }
#if TT_PERSIST
    if (offset < TT_CKPT_HEADER_BYTES) { /* the header of the live state, made afresh */
        uint8_t buf[256];
        uint32_t crc = 0;
        for (uint32_t o = 0; o < PAYLOAD_BYTES; o += sizeof buf) {
            uint32_t k = PAYLOAD_BYTES - o < sizeof buf ? PAYLOAD_BYTES - o : (uint32_t)sizeof buf;
            payload_read(0, o, buf, k);
            crc = tt_proto_crc32(crc, buf, k);
        }
        tt_ckpt_make_header(&dl_header, &ckpt_id, ckpt_seq, crc);
    }
    if (offset < TT_CKPT_HEADER_BYTES) {
        uint32_t k = TT_CKPT_HEADER_BYTES - offset < n ? TT_CKPT_HEADER_BYTES - offset : n;
        memcpy(dst, (const uint8_t *)&dl_header + offset, k);
        dst += k;
        offset += k;
        n -= k;
    }
    if (n) payload_read(0, offset - TT_CKPT_HEADER_BYTES, dst, n);
#endif
    return 0;
}

#if TT_PERSIST
static tt_ckpt_header up_header;
static uint8_t up_state[STATE_BYTES]; /* the upload's state block, checked before commit */

static int app_blob_begin(void *ctx, uint8_t blob, uint32_t size, const char **msg)
{
    (void)ctx;
    if (blob != TT_BLOB_CHECKPOINT) { *msg = "upload a checkpoint (blob 1)"; return TT_ERR_PAYLOAD; }
    if (size != TT_CKPT_HEADER_BYTES + PAYLOAD_BYTES) {
        *msg = "checkpoint size is not this model's";
        return TT_ERR_VALUE;
    }
    if (tt_ckpt_stage_begin(&ckpt_id) != 0) { *msg = "flash erase failed"; return TT_ERR_APP; }
    return 0;
}

static int app_blob_write(void *ctx, uint8_t blob, uint32_t offset, const uint8_t *src,
                          uint32_t n, const char **msg)
{
    (void)ctx;
    (void)blob;
    if (offset < TT_CKPT_HEADER_BYTES) {
        uint32_t k = TT_CKPT_HEADER_BYTES - offset < n ? TT_CKPT_HEADER_BYTES - offset : n;
        memcpy((uint8_t *)&up_header + offset, src, k);
        src += k;
        offset += k;
        n -= k;
        if (offset == TT_CKPT_HEADER_BYTES && tt_ckpt_check_header(&up_header, &ckpt_id) != 0) {
            *msg = "checkpoint is for another model or plan";
            return TT_ERR_VALUE;
        }
    }
    if (offset < TT_CKPT_HEADER_BYTES + STATE_BYTES && n) {
        uint32_t a = offset - TT_CKPT_HEADER_BYTES;
        uint32_t k = STATE_BYTES - a < n ? STATE_BYTES - a : n;
        memcpy(up_state + a, src, k);
    }
    if (n && tt_ckpt_stage_write(src, n) != 0) {
        *msg = "flash write failed (or upload cancelled by SAVE)";
        return TT_ERR_APP;
    }
    return 0;
}

static int app_blob_commit(void *ctx, uint8_t blob, const char **msg)
{
    (void)ctx;
    (void)blob;
    uint32_t seq;
    int slot;
    if (state_check(up_state) != 0) { /* refused before it can become the newest */
        *msg = "checkpoint state block out of range";
        return TT_ERR_VALUE;
    }
    if (tt_ckpt_stage_commit(&ckpt_id, &up_header, &seq, &slot) != 0) {
        *msg = "checkpoint rejected (other model, or its crc)";
        return TT_ERR_VALUE;
    }
    if (load_slot(slot) != 0) { *msg = "checkpoint state invalid"; return TT_ERR_VALUE; }
    ckpt_seq = seq;
    return 0;
}
#endif

static char *put_uint(char *p, uint32_t v)
{
    char d[10];
    int n = 0;
    do { d[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) *p++ = d[--n];
    return p;
}

static const char *app_status(void *ctx)
{
    (void)ctx;
#if TT_PERSIST
    static char line[72];
    if (!booted_from_ckpt) return "booted with the compiled-in weights (no checkpoint)";
    static const char a[] = "booted from checkpoint ", b[] = " (resume at sample ";
    char *p = line;
    memcpy(p, a, sizeof a - 1);
    p = put_uint(p + sizeof a - 1, boot_seq);
    memcpy(p, b, sizeof b - 1);
    p = put_uint(p + sizeof b - 1, boot_resume_at);
    *p++ = ')';
    *p = 0;
    return line;
#else
    return "compiled-in weights (built without checkpoints)";
#endif
}

static void app_exit(void *ctx, uint8_t code)
{
    (void)ctx;
#ifdef TT_BOARD_host
    uint32_t t0 = board_cycles();  /* let the host read the OK before the pty goes */
    while (board_cycles() - t0 < 100000000u) {}
#endif
    board_exit(code);
}

/* A flat input of more than 255 features (in_c is a byte on the wire) is described as a
   1 x F image of one channel: same bytes, same order. */
#if TT_MODEL_IN_C > 255
#define INFO_H 1
#define INFO_W (TT_MODEL_IN_H * TT_MODEL_IN_W * TT_MODEL_IN_C)
#define INFO_C 1
#else
#define INFO_H TT_MODEL_IN_H
#define INFO_W TT_MODEL_IN_W
#define INFO_C TT_MODEL_IN_C
#endif

static const tt_device_info info = {
    .model_hash = TT_MODEL_HASH,
    .plan = TT_MODEL_PLAN,
    .in_h = INFO_H, .in_w = INFO_W, .in_c = INFO_C,
    .num_classes = TT_MODEL_OUTPUT_BYTES,
    .ram_used = TT_ARENA_BYTES + TT_BOARD_STACK_BYTES + TT_MODEL_TRAINED_BYTES,
    .ram_budget = TT_BOARD_RAM_BYTES, .flash_used = 0, .flash_budget = 1024u * 1024u,
    .arena_bytes = TT_ARENA_BYTES, .trainable_bytes = TT_MODEL_TRAINED_BYTES,
    .model_flags = MODEL_FLAGS,
};

static const tt_device_ops ops = {
    .ctx = 0, .info = &info, .input = app_input, .sample = app_sample,
    .set = app_set, .get = app_get,
    .reset = app_reset, .blob_size = app_blob_size, .blob_read = app_blob_read,
#if TT_PERSIST
    .save = app_save, .restore = app_restore,
    .blob_begin = app_blob_begin, .blob_write = app_blob_write, .blob_commit = app_blob_commit,
#endif
    .exit = app_exit, .status = app_status,
};

/* Boot: the newest valid checkpoint of this model and plan, else the compiled-in state. */
static void boot_restore(void)
{
#if TT_PERSIST
    uint32_t seq;
    int slot = tt_ckpt_newest(&ckpt_id, &seq);
    if (slot >= 0 && load_slot(slot) == 0) {
        ckpt_seq = boot_seq = seq;
        boot_resume_at = seen_clean;
        booted_from_ckpt = 1;
    } else if (slot >= 0) {
        tt_model_reset_trained(); /* a state block that does not decode: start clean */
    }
#endif
}

int main(void)
{
    boot_restore();
    return tt_device_run(&ops);
}
