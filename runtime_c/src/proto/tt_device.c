/* Serial protocol: the device main loop (tt_proto.h, host/PROTOCOL.md). No malloc; the
 * receive and reply buffers are static, sized by TT_PROTO_MAX_PAYLOAD and
 * TT_PROTO_MAX_REPLY. */
#include <string.h>
#include "tt_board.h"
#include "tt_proto.h"
#include "tt_resize.h"

/* ---- device loop ------------------------------------------------------------------ */

#define RX_CAP (TT_PROTO_OVERHEAD + TT_PROTO_MAX_PAYLOAD)
#define TX_CAP (TT_PROTO_OVERHEAD + TT_PROTO_MAX_REPLY)

static struct {
    int ready;
    tt_cobs_decoder dec;
    tt_device_stats stats;
    /* last reply to a CRC-valid request, resent for a duplicate of that request */
    size_t tx_len;
    int cache_valid;
    uint16_t cache_seq, cache_crc;
    /* upload in progress */
    int up_open;
    uint8_t up_blob;
    uint32_t up_total, up_done, up_crc, up_expect;
    uint8_t rx[RX_CAP];
    uint8_t tx[TX_CAP];
} g;

size_t tt_device_state_bytes(void) { return sizeof g; }

const tt_device_stats *tt_device_get_stats(void)
{
    return &g.stats;
}

static void init_once(void)
{
    if (g.ready) return;
    tt_cobs_init(&g.dec, g.rx, RX_CAP);
    g.ready = 1;
}

/* Reply under construction: payload at g.tx + header. */
typedef struct {
    uint8_t type;
    uint16_t len;
    uint8_t *p;      /* payload start */
} reply_t;

#define REPLY_CAP ((uint16_t)TT_PROTO_MAX_REPLY)

/* (a function, so that a limit of 65535 does not make the test "always false") */
static int fits_reply(uint32_t n)
{
    return n <= (uint32_t)TT_PROTO_MAX_REPLY;
}

static size_t put_error(uint8_t *payload, size_t cap, uint8_t code, uint8_t req_type,
                        uint32_t arg, const char *text)
{
    payload[0] = code;
    payload[1] = req_type;
    tt_put_u32le(payload + 2, arg);
    size_t n = TT_ERROR_FIXED_BYTES;
    if (text) {
        size_t room = cap - n;
        if (room > TT_ERR_TEXT_MAX) room = TT_ERR_TEXT_MAX;
        while (*text && room) { payload[n++] = (uint8_t)*text++; --room; }
    }
    return n;
}

/* Framing-level error: answered from a small stack buffer so the cached reply
   survives. seq is taken from the frame when it was long enough to hold one. */
static void send_frame_error(int code, const uint8_t *frame, size_t n)
{
    uint8_t buf[TT_PROTO_OVERHEAD + TT_ERROR_FIXED_BYTES + TT_ERR_TEXT_MAX];
    static const char *const text[] = {"", "bad COBS encoding", "frame too long",
                                       "truncated packet", "bad crc"};
    uint16_t seq = n >= 4 ? tt_get_u16le(frame + 2) : 0;
    uint8_t req_type = n >= 2 ? frame[1] : 0;
    uint32_t arg = code == TT_ERR_TOO_LONG ? (uint32_t)TT_PROTO_MAX_PAYLOAD : (uint32_t)n;
    size_t len = put_error(buf + TT_PROTO_HEADER_BYTES, TT_ERROR_FIXED_BYTES + TT_ERR_TEXT_MAX,
                           (uint8_t)code, req_type, arg,
                           code >= 1 && code <= 4 ? text[code] : "frame error");
    size_t total = tt_proto_seal(buf, TT_MSG_ERROR, seq, (uint16_t)len);
    g.stats.frame_errors++;
    tt_cobs_write_frame(buf, total);
}

static int fail(reply_t *r, int code, uint8_t req_type, uint32_t arg, const char *text)
{
    /* an application must not claim a transmission error (the host would resend) */
    if (code <= TT_ERR_LAST_TRANSMISSION || code > 255) code = TT_ERR_APP;
    r->type = TT_MSG_ERROR;
    r->len = (uint16_t)put_error(r->p, REPLY_CAP, (uint8_t)code, req_type, arg, text);
    return code;
}

static void ok(reply_t *r, uint32_t arg)
{
    tt_put_u32le(r->p, arg);
    r->len = TT_OK_BYTES;
}

/* u8 length + bytes, truncated so that `reserve` more bytes still fit after it. */
static uint16_t put_str8(uint8_t *p, uint16_t at, const char *s, uint16_t reserve)
{
    if ((uint32_t)at + 1u + reserve > REPLY_CAP) return at;
    size_t n = s ? strlen(s) : 0;
    size_t room = REPLY_CAP - at - 1u - reserve;
    if (n > 255) n = 255;
    if (n > room) n = room;
    p[at] = (uint8_t)n;
    if (n) memcpy(p + at + 1, s, n);
    return (uint16_t)(at + 1u + n);
}

static uint16_t caps(const tt_device_ops *ops)
{
    uint16_t c = (1u << TT_MSG_HELLO) | (1u << TT_MSG_ECHO) | (1u << TT_MSG_STATS);
    if (ops->sample && ops->input) c |= 1u << TT_MSG_SAMPLE;
    if (ops->set) c |= 1u << TT_MSG_SET;
    if (ops->get) c |= 1u << TT_MSG_GET;
    if (ops->save) c |= 1u << TT_MSG_SAVE;
    if (ops->restore) c |= 1u << TT_MSG_RESTORE;
    c |= 1u << TT_MSG_RESET;  /* RESET_STATS always works */
    if (ops->blob_size && ops->blob_read) c |= 1u << TT_MSG_DOWNLOAD;
    if (ops->blob_begin && ops->blob_write && ops->blob_commit)
        c |= (1u << TT_MSG_UPLOAD_BEGIN) | (1u << TT_MSG_UPLOAD) | (1u << TT_MSG_UPLOAD_END);
    if (ops->exit) c |= 1u << TT_MSG_EXIT;
    return c;
}

static void do_hello(const tt_device_ops *ops, reply_t *r)
{
    static const tt_device_info none = {0};
    const tt_device_info *in = ops->info ? ops->info : &none;
    uint8_t *p = r->p;
    /* the fixed part always fits: TT_PROTO_MIN_MAX_REPLY >= TT_INFO_FIXED_BYTES + 3 */
    memset(p, 0, TT_INFO_FIXED_BYTES);
    p[0] = TT_PROTO_VERSION;
    tt_put_u16le(p + 2, caps(ops));
    tt_put_u16le(p + 4, (uint16_t)TT_PROTO_MAX_PAYLOAD);
    tt_put_u16le(p + 6, (uint16_t)TT_PROTO_MAX_REPLY);
    tt_put_u16le(p + 8, in->in_h);
    tt_put_u16le(p + 10, in->in_w);
    p[12] = in->in_c;
    p[13] = in->model_flags;
    tt_put_u16le(p + 14, in->num_classes);
    tt_put_u32le(p + 16, in->ram_used);
    tt_put_u32le(p + 20, in->ram_budget);
    tt_put_u32le(p + 24, in->flash_used);
    tt_put_u32le(p + 28, in->flash_budget);
    tt_put_u32le(p + 32, in->arena_bytes);
    tt_put_u32le(p + 36, in->trainable_bytes);
    uint16_t at = TT_INFO_FIXED_BYTES;
    at = put_str8(p, at, in->model_hash, 3);
    at = put_str8(p, at, board_name, 2);
    at = put_str8(p, at, in->plan, 1);
    at = put_str8(p, at, ops->status ? ops->status(ops->ctx) : "", 0);
    r->len = at;
}

static int do_sample(const tt_device_ops *ops, const tt_packet *q, reply_t *r)
{
    const uint8_t t = TT_MSG_SAMPLE;
    const tt_device_info *in = ops->info;
    if (!ops->sample || !ops->input || !in) return fail(r, TT_ERR_UNSUPPORTED, t, 0, "no sample handler");
    if (q->len < TT_SAMPLE_HEADER_BYTES) return fail(r, TT_ERR_PAYLOAD, t, q->len, "sample header short");
    const uint8_t *p = q->payload;
    uint16_t label = tt_get_u16le(p);
    uint8_t flags = p[2], c = p[3];
    uint16_t h = tt_get_u16le(p + 4), w = tt_get_u16le(p + 6);
    if (flags & ~TT_SAMPLE_FLAGS_ALL) return fail(r, TT_ERR_PAYLOAD, t, flags, "unknown sample flags");
    if (label != TT_LABEL_NONE && label >= in->num_classes)
        return fail(r, TT_ERR_PAYLOAD, t, label, "label out of range");
    if (flags & TT_SAMPLE_RAW) { /* the int8 model input itself: h*w*c must be its size */
        uint32_t n = (uint32_t)h * w * c, want = (uint32_t)in->in_h * in->in_w * in->in_c;
        if (n != (uint32_t)q->len - TT_SAMPLE_HEADER_BYTES)
            return fail(r, TT_ERR_PAYLOAD, t, n, "sample size != h*w*c");
        if (n != want) return fail(r, TT_ERR_PAYLOAD, t, want, "raw sample size != model input");
        uint8_t *dst = ops->input(ops->ctx);
        if (!dst) return fail(r, TT_ERR_STATE, t, 0, "model input unavailable");
        memcpy(dst, p + TT_SAMPLE_HEADER_BYTES, n);
    } else {
        if (h < 1 || w < 1 || h > TT_RESIZE_MAX_DIM || w > TT_RESIZE_MAX_DIM || c < 1 || c > TT_RESIZE_MAX_C)
            return fail(r, TT_ERR_PAYLOAD, t, 0, "bad image shape");
        uint32_t n = (uint32_t)h * w * c;
        if (n != (uint32_t)q->len - TT_SAMPLE_HEADER_BYTES)
            return fail(r, TT_ERR_PAYLOAD, t, n, "image size != h*w*c");
        if (!tt_resize_channels_ok(c, in->in_c))
            return fail(r, TT_ERR_PAYLOAD, t, c, "unsupported channel count");
        uint8_t *dst = ops->input(ops->ctx);
        if (!dst || tt_resize_u8(p + TT_SAMPLE_HEADER_BYTES, h, w, c, dst, in->in_h, in->in_w, in->in_c,
                                 (flags & TT_SAMPLE_BILINEAR) ? TT_RESIZE_BILINEAR : TT_RESIZE_NEAREST))
            return fail(r, TT_ERR_STATE, t, 0, "model input unavailable");
    }

    tt_sample_result res;
    memset(&res, 0, sizeof res);
    res.logit_scale = 1.0f;
    if (flags & TT_SAMPLE_LOGITS) {
        uint16_t room = (uint16_t)(REPLY_CAP - TT_RESULT_FIXED_BYTES);
        res.logits = (int8_t *)(r->p + TT_RESULT_FIXED_BYTES);
        res.logits_cap = in->num_classes < room ? in->num_classes : room;
    }
    const char *msg = 0;
    uint32_t t0 = board_cycles();
    int e = ops->sample(ops->ctx, label, flags, &res, &msg);
    uint32_t t1 = board_cycles();
    if (e) return fail(r, e, t, 0, msg ? msg : "sample failed");
    if (res.cycles_predict == 0 && res.cycles_train == 0) res.cycles_predict = t1 - t0;
    if (res.n_logits > res.logits_cap) res.n_logits = res.logits_cap;

    uint8_t f = res.flags & (TT_RESULT_TRAINED | TT_RESULT_HAS_LOSS | TT_RESULT_SCORE);
    g.stats.samples++;
    if (f & TT_RESULT_SCORE) { /* an anomaly score: no class, no label */
        f |= TT_RESULT_HAS_LOSS;
    } else if (label != TT_LABEL_NONE) {
        f |= TT_RESULT_LABELLED;
        g.stats.labelled++;
        if (res.pred == label) { f |= TT_RESULT_CORRECT; g.stats.correct++; }
    } else {
        f &= (uint8_t)~TT_RESULT_HAS_LOSS;
    }
    if (f & TT_RESULT_TRAINED) g.stats.trained++;
    if (res.logits) f |= TT_RESULT_HAS_LOGITS;
    g.stats.last_predict_cycles = res.cycles_predict;
    g.stats.last_train_cycles = res.cycles_train;

    uint8_t *o = r->p;
    tt_put_u16le(o, res.pred);
    o[2] = f;
    o[3] = 0;
    tt_put_f32le(o + 4, (f & TT_RESULT_HAS_LOSS) ? res.loss : 0.0f);
    tt_put_u32le(o + 8, res.cycles_predict);
    tt_put_u32le(o + 12, res.cycles_train);
    tt_put_u32le(o + 16, g.stats.samples);
    tt_put_f32le(o + 20, res.logit_scale);
    o[24] = (uint8_t)res.logit_zero_point;
    o[25] = 0;
    uint16_t nl = res.logits ? res.n_logits : 0;
    tt_put_u16le(o + 26, nl);
    r->len = (uint16_t)(TT_RESULT_FIXED_BYTES + nl);
    return 0;
}

static void do_stats(const tt_packet *q, reply_t *r)
{
    const tt_device_stats *s = &g.stats;
    const uint32_t v[9] = {s->samples, s->labelled, s->correct, s->trained,
                           s->last_predict_cycles, s->last_train_cycles,
                           s->frames_ok, s->frame_errors, s->duplicates};
    for (int i = 0; i < 9; ++i) tt_put_u32le(r->p + 4 * i, v[i]);
    r->len = TT_STATS_BYTES;
    if (q->len >= 1 && (q->payload[0] & TT_STATS_CLEAR)) memset(&g.stats, 0, sizeof g.stats);
}

static int do_set_get(const tt_device_ops *ops, const tt_packet *q, reply_t *r)
{
    const uint8_t t = q->type;
    if (q->len < 1) return fail(r, TT_ERR_PAYLOAD, t, 0, "empty key");
    uint8_t klen = q->payload[0];
    if (klen == 0 || klen > TT_KEY_MAX || 1u + klen > q->len)
        return fail(r, TT_ERR_PAYLOAD, t, klen, "bad key length");
    const char *key = (const char *)q->payload + 1;
    const char *msg = 0;
    if (t == TT_MSG_SET) {
        if (!ops->set) return fail(r, TT_ERR_UNSUPPORTED, t, 0, "no set handler");
        if (1u + klen + 1u > q->len) return fail(r, TT_ERR_PAYLOAD, t, 0, "missing value type");
        uint8_t vt = q->payload[1 + klen];
        const uint8_t *val = q->payload + 2 + klen;
        uint16_t vlen = (uint16_t)(q->len - 2u - klen);
        if (vt != TT_VAL_I32 && vt != TT_VAL_F32 && vt != TT_VAL_STR)
            return fail(r, TT_ERR_PAYLOAD, t, vt, "bad value type");
        if (vt != TT_VAL_STR && vlen != 4) return fail(r, TT_ERR_PAYLOAD, t, vlen, "value must be 4 bytes");
        int e = ops->set(ops->ctx, key, klen, vt, val, vlen, &msg);
        if (e) return fail(r, e, t, 0, msg ? msg : "set failed");
        ok(r, 0);
        return 0;
    }
    if (!ops->get) return fail(r, TT_ERR_UNSUPPORTED, t, 0, "no get handler");
    if (1u + klen != q->len) return fail(r, TT_ERR_PAYLOAD, t, q->len, "trailing bytes after key");
    uint8_t vt = 0;
    uint16_t vlen = (uint16_t)(REPLY_CAP - 1u);
    int e = ops->get(ops->ctx, key, klen, &vt, r->p + 1, &vlen, &msg);
    if (e) return fail(r, e, t, 0, msg ? msg : "get failed");
    if (vlen > REPLY_CAP - 1u) vlen = (uint16_t)(REPLY_CAP - 1u);
    r->p[0] = vt;
    r->len = (uint16_t)(1u + vlen);
    return 0;
}

static int do_simple(const tt_device_ops *ops, const tt_packet *q, reply_t *r)
{
    const uint8_t t = q->type;
    const char *msg = 0;
    uint32_t arg = 0;
    int e;
    if (t == TT_MSG_RESET) {
        if (q->len != 1) return fail(r, TT_ERR_PAYLOAD, t, q->len, "reset takes one byte");
        uint8_t what = q->payload[0];
        if (what == 0 || (what & ~TT_RESET_ALL)) return fail(r, TT_ERR_PAYLOAD, t, what, "bad reset flags");
        if (what & (uint8_t)~TT_RESET_STATS) {
            if (!ops->reset) return fail(r, TT_ERR_UNSUPPORTED, t, 0, "no reset handler");
            e = ops->reset(ops->ctx, (uint8_t)(what & ~TT_RESET_STATS), &msg);
            if (e) return fail(r, e, t, 0, msg ? msg : "reset failed");
        }
        if (what & TT_RESET_STATS) memset(&g.stats, 0, sizeof g.stats);
        ok(r, 0);
        return 0;
    }
    int (*fn)(void *, uint32_t *, const char **) = t == TT_MSG_SAVE ? ops->save : ops->restore;
    if (q->len != 0) return fail(r, TT_ERR_PAYLOAD, t, q->len, "no payload expected");
    if (!fn) return fail(r, TT_ERR_UNSUPPORTED, t, 0, t == TT_MSG_SAVE ? "no save handler" : "no restore handler");
    e = fn(ops->ctx, &arg, &msg);
    if (e) return fail(r, e, t, 0, msg ? msg : "failed");
    ok(r, arg);
    return 0;
}

static int do_download(const tt_device_ops *ops, const tt_packet *q, reply_t *r)
{
    const uint8_t t = TT_MSG_DOWNLOAD;
    if (!ops->blob_size || !ops->blob_read) return fail(r, TT_ERR_UNSUPPORTED, t, 0, "no download handler");
    if (q->len != TT_DOWNLOAD_BYTES) return fail(r, TT_ERR_PAYLOAD, t, q->len, "download request size");
    uint8_t blob = q->payload[0];
    uint32_t off = tt_get_u32le(q->payload + 2);
    uint32_t want = tt_get_u16le(q->payload + 6);
    uint32_t total = 0;
    const char *msg = 0;
    int e = ops->blob_size(ops->ctx, blob, &total, &msg);
    if (e) return fail(r, e, t, blob, msg ? msg : "no such blob");
    if (off > total) return fail(r, TT_ERR_OFFSET, t, total, "offset beyond blob");
    uint32_t room = REPLY_CAP - TT_DATA_FIXED_BYTES;
    uint32_t n = total - off;
    if (n > want) n = want;
    if (n > room) n = room;
    if (n) {
        e = ops->blob_read(ops->ctx, blob, off, r->p + TT_DATA_FIXED_BYTES, n, &msg);
        if (e) return fail(r, e, t, off, msg ? msg : "read failed");
    }
    r->p[0] = blob;
    r->p[1] = 0;
    tt_put_u32le(r->p + 2, total);
    tt_put_u32le(r->p + 6, off);
    r->len = (uint16_t)(TT_DATA_FIXED_BYTES + n);
    return 0;
}

static int do_upload(const tt_device_ops *ops, const tt_packet *q, reply_t *r)
{
    const uint8_t t = q->type;
    const char *msg = 0;
    int e;
    if (!ops->blob_begin || !ops->blob_write || !ops->blob_commit)
        return fail(r, TT_ERR_UNSUPPORTED, t, 0, "no upload handler");
    if (t == TT_MSG_UPLOAD_BEGIN) {
        if (q->len != TT_UPLOAD_BEGIN_BYTES) return fail(r, TT_ERR_PAYLOAD, t, q->len, "upload_begin size");
        g.up_open = 0;
        uint8_t blob = q->payload[0];
        uint32_t total = tt_get_u32le(q->payload + 2);
        e = ops->blob_begin(ops->ctx, blob, total, &msg);
        if (e) return fail(r, e, t, total, msg ? msg : "upload refused");
        g.up_open = 1;
        g.up_blob = blob;
        g.up_total = total;
        g.up_done = 0;
        g.up_crc = 0;
        g.up_expect = tt_get_u32le(q->payload + 6);
        ok(r, 0);
        return 0;
    }
    if (!g.up_open) return fail(r, TT_ERR_STATE, t, 0, "no upload open");
    if (t == TT_MSG_UPLOAD) {
        if (q->len < TT_UPLOAD_FIXED_BYTES) return fail(r, TT_ERR_PAYLOAD, t, q->len, "upload header short");
        if (q->payload[0] != g.up_blob) return fail(r, TT_ERR_STATE, t, g.up_blob, "other blob open");
        uint32_t off = tt_get_u32le(q->payload + 2);
        uint32_t n = (uint32_t)q->len - TT_UPLOAD_FIXED_BYTES;
        if (off != g.up_done) return fail(r, TT_ERR_OFFSET, t, g.up_done, "expected another offset");
        if (n > g.up_total - g.up_done) return fail(r, TT_ERR_OFFSET, t, g.up_total, "beyond blob size");
        if (n) {
            e = ops->blob_write(ops->ctx, g.up_blob, off, q->payload + TT_UPLOAD_FIXED_BYTES, n, &msg);
            if (e) { g.up_open = 0; return fail(r, e, t, off, msg ? msg : "write failed"); }
            g.up_crc = tt_proto_crc32(g.up_crc, q->payload + TT_UPLOAD_FIXED_BYTES, n);
            g.up_done += n;
        }
        ok(r, g.up_done);
        return 0;
    }
    /* UPLOAD_END */
    if (q->len != 1) return fail(r, TT_ERR_PAYLOAD, t, q->len, "upload_end takes one byte");
    if (q->payload[0] != g.up_blob) return fail(r, TT_ERR_STATE, t, g.up_blob, "other blob open");
    g.up_open = 0;
    if (g.up_done != g.up_total) return fail(r, TT_ERR_OFFSET, t, g.up_done, "upload incomplete");
    if (g.up_crc != g.up_expect) return fail(r, TT_ERR_BLOB_CRC, t, g.up_crc, "blob crc32 mismatch");
    e = ops->blob_commit(ops->ctx, g.up_blob, &msg);
    if (e) return fail(r, e, t, 0, msg ? msg : "commit refused");
    ok(r, g.up_total);
    return 0;
}

static void send_reply(void)
{
    tt_cobs_write_frame(g.tx, g.tx_len);
}

static void handle_packet(const tt_device_ops *ops, const tt_packet *q, int parse_err)
{
    g.stats.frames_ok++;
    if (g.cache_valid && q->seq == g.cache_seq && q->crc == g.cache_crc) {
        g.stats.duplicates++;
        send_reply();
        return;
    }
    reply_t r = {(uint8_t)(q->type | TT_MSG_REPLY_BIT), 0, g.tx + TT_PROTO_HEADER_BYTES};
    int exit_code = -1;
    if (parse_err == TT_ERR_VERSION) {
        fail(&r, TT_ERR_VERSION, q->type, TT_PROTO_VERSION, "unsupported protocol version");
    } else if (parse_err == TT_ERR_LENGTH) {
        fail(&r, TT_ERR_LENGTH, q->type, (uint32_t)q->len, "len field mismatch");
    } else {
        switch (q->type) {
        case TT_MSG_HELLO: do_hello(ops, &r); break;
        case TT_MSG_ECHO:
            if (!fits_reply(q->len)) { fail(&r, TT_ERR_PAYLOAD, q->type, REPLY_CAP, "echo longer than max reply"); break; }
            memmove(r.p, q->payload, q->len);
            r.len = q->len;
            break;
        case TT_MSG_SAMPLE: do_sample(ops, q, &r); break;
        case TT_MSG_STATS:
            if (q->len > 1) { fail(&r, TT_ERR_PAYLOAD, q->type, q->len, "stats takes 0 or 1 byte"); break; }
            do_stats(q, &r);
            break;
        case TT_MSG_SET:
        case TT_MSG_GET: do_set_get(ops, q, &r); break;
        case TT_MSG_SAVE:
        case TT_MSG_RESTORE:
        case TT_MSG_RESET: do_simple(ops, q, &r); break;
        case TT_MSG_DOWNLOAD: do_download(ops, q, &r); break;
        case TT_MSG_UPLOAD_BEGIN:
        case TT_MSG_UPLOAD:
        case TT_MSG_UPLOAD_END: do_upload(ops, q, &r); break;
        case TT_MSG_EXIT:
            if (!ops->exit) { fail(&r, TT_ERR_UNSUPPORTED, q->type, 0, "exit not supported"); break; }
            if (q->len != 1) { fail(&r, TT_ERR_PAYLOAD, q->type, q->len, "exit takes one byte"); break; }
            exit_code = q->payload[0];
            ok(&r, 0);
            break;
        default:
            fail(&r, TT_ERR_UNKNOWN_TYPE, q->type, q->type, "unknown message type");
            break;
        }
    }
    g.tx_len = tt_proto_seal(g.tx, r.type, q->seq, r.len);
    g.cache_valid = 1;
    g.cache_seq = q->seq;
    g.cache_crc = q->crc;
    send_reply();
    if (exit_code >= 0) ops->exit(ops->ctx, (uint8_t)exit_code);
}

void tt_device_feed(const tt_device_ops *ops, uint8_t byte)
{
    init_once();
    int r = tt_cobs_feed(&g.dec, byte);
    if (r == TT_COBS_MORE) return;
    size_t n = g.dec.len;
    if (r < 0) {
        send_frame_error(-r, g.rx, n);
    } else {
        tt_packet q;
        int e = tt_proto_parse(g.rx, n, &q);
        if (e == TT_ERR_SHORT || e == TT_ERR_CRC)
            send_frame_error(e, g.rx, n);
        else
            handle_packet(ops, &q, e);
    }
    tt_cobs_restart(&g.dec);
}

int tt_device_run(const tt_device_ops *ops)
{
    init_once();
    for (;;) {
        int c = board_uart_getc();
        if (c < 0) return 0;
        tt_device_feed(ops, (uint8_t)c);
    }
}
