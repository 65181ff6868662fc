/* Serial protocol between the host and the firmware: framing, packets, message
 * payloads and the device main loop. The prose specification is host/PROTOCOL.md;
 * host/protocol.py is the Python side. Every `#define TT_<NAME> <integer>` below has a
 * twin `<NAME>` in host/protocol.py (except TT_COBS_MORE / TT_COBS_FRAME, return codes
 * of the C decoder API); tests/test_protocol.py checks they agree.
 *
 * Wire format (all multi-byte fields little-endian):
 *   frame  = 0x00, COBS(packet), 0x00          (empty frames are ignored)
 *   packet = version u8 | type u8 | seq u16 | len u16 | payload[len] | crc16 u16
 *   crc16  = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
 *            xor) over version..payload; stored little-endian.
 * Every complete non-empty frame the device receives gets exactly one reply frame with
 * the request's seq. Replies to CRC-valid requests are cached: a request with the same
 * seq and the same crc16 as the previous CRC-valid request gets the cached reply again
 * and is not executed twice.
 *
 * No malloc, no printf; buffers are static and sized at compile time by
 * TT_PROTO_MAX_PAYLOAD (largest request payload) and TT_PROTO_MAX_REPLY (largest reply
 * payload), which an application may set with -D.
 */
#ifndef TT_PROTO_H
#define TT_PROTO_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "tt_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- packet --------------------------------------------------------------------- */
#define TT_PROTO_VERSION            1
#define TT_PROTO_HEADER_BYTES       6    /* version, type, seq, len */
#define TT_PROTO_CRC_BYTES          2
#define TT_PROTO_OVERHEAD           8    /* header + crc */
/* Default request payload limit: a SAMPLE carrying a 64x64x3 image (8 + 12288). */
#define TT_PROTO_DEFAULT_MAX_PAYLOAD 12296
/* Default reply payload limit: a 1024-byte DOWNLOAD chunk plus its header, or a RESULT
   with up to 1060 logits. */
#define TT_PROTO_DEFAULT_MAX_REPLY  1088
#define TT_PROTO_MIN_MAX_PAYLOAD    64
#define TT_PROTO_MIN_MAX_REPLY      64

#ifndef TT_PROTO_MAX_PAYLOAD
#define TT_PROTO_MAX_PAYLOAD TT_PROTO_DEFAULT_MAX_PAYLOAD
#endif
#ifndef TT_PROTO_MAX_REPLY
#define TT_PROTO_MAX_REPLY TT_PROTO_DEFAULT_MAX_REPLY
#endif
#if TT_PROTO_MAX_PAYLOAD < TT_PROTO_MIN_MAX_PAYLOAD || TT_PROTO_MAX_PAYLOAD > 65535
#error "TT_PROTO_MAX_PAYLOAD must be in [TT_PROTO_MIN_MAX_PAYLOAD, 65535]"
#endif
#if TT_PROTO_MAX_REPLY < TT_PROTO_MIN_MAX_REPLY || TT_PROTO_MAX_REPLY > 65535
#error "TT_PROTO_MAX_REPLY must be in [TT_PROTO_MIN_MAX_REPLY, 65535]"
#endif

/* ---- message types (requests 0x01..0x7E; reply type = request type | 0x80) ------ */
#define TT_MSG_HELLO         0x01  /* -> INFO */
#define TT_MSG_ECHO          0x02  /* -> ECHO_REPLY (same payload) */
#define TT_MSG_SAMPLE        0x03  /* -> RESULT */
#define TT_MSG_STATS         0x04  /* -> STATS_REPLY */
#define TT_MSG_SET           0x05  /* -> OK */
#define TT_MSG_GET           0x06  /* -> VALUE */
#define TT_MSG_SAVE          0x07  /* -> OK (arg: application value, e.g. checkpoint no.) */
#define TT_MSG_RESTORE       0x08  /* -> OK */
#define TT_MSG_RESET         0x09  /* -> OK */
#define TT_MSG_DOWNLOAD      0x0A  /* -> DATA */
#define TT_MSG_UPLOAD_BEGIN  0x0B  /* -> OK */
#define TT_MSG_UPLOAD        0x0C  /* -> OK (arg: next expected offset) */
#define TT_MSG_UPLOAD_END    0x0D  /* -> OK */
#define TT_MSG_EXIT          0x0E  /* -> OK, then the application's exit hook */
#define TT_MSG_LAST_REQUEST  0x0E
#define TT_MSG_REPLY_BIT     0x80
#define TT_MSG_INFO          0x81
#define TT_MSG_ECHO_REPLY    0x82
#define TT_MSG_RESULT        0x83
#define TT_MSG_STATS_REPLY   0x84
#define TT_MSG_VALUE         0x86
#define TT_MSG_DATA          0x8A
#define TT_MSG_ERROR         0xFF

/* ---- error codes (ERROR payload: code u8, req_type u8, arg u32, text) ------------ */
/* Wire codes, not the kernels' status codes: only 0 (TT_OK) means the same in both
   (tt_status.h). */
/* Transmission errors: the frame could not be trusted. Not cached; the host resends
   the same packet (same seq) a bounded number of times. */
#define TT_ERR_COBS          1   /* invalid COBS encoding (truncated block) */
#define TT_ERR_TOO_LONG      2   /* decoded frame larger than the buffer; arg = max payload */
#define TT_ERR_SHORT         3   /* fewer than 8 bytes: truncated packet */
#define TT_ERR_CRC           4   /* crc16 mismatch */
#define TT_ERR_LAST_TRANSMISSION 4
/* Request errors: the packet arrived intact but cannot be executed. */
#define TT_ERR_VERSION       5   /* arg = the device's protocol version */
#define TT_ERR_LENGTH        6   /* len field != payload bytes; arg = the len field */
#define TT_ERR_UNKNOWN_TYPE  7   /* arg = the type */
#define TT_ERR_PAYLOAD       8   /* malformed payload for this type */
#define TT_ERR_UNSUPPORTED   9   /* the application provides no handler */
#define TT_ERR_KEY           10  /* SET/GET: unknown key */
#define TT_ERR_VALUE         11  /* SET: value rejected (type or range) */
#define TT_ERR_STATE         12  /* not possible now (no checkpoint, no upload open...) */
#define TT_ERR_OFFSET        13  /* UPLOAD/DOWNLOAD offset; arg = expected offset / size */
#define TT_ERR_BLOB_CRC      14  /* UPLOAD_END: crc32 mismatch; arg = crc32 received */
#define TT_ERR_APP           15  /* application failure (see text); also replaces any
                                    transmission code a callback returns */
#define TT_ERR_TEXT_MAX      48  /* longest error text, bytes */

/* ---- payload layouts (byte sizes of the fixed parts) ----------------------------- */
/* INFO: proto_version u8, reserved u8, caps u16 (bit t: request type t handled),
   max_payload u16, max_reply u16, in_h u16, in_w u16, in_c u8, model_flags u8
   (TT_INFO_*; 0 before them), num_classes u16, ram_used u32, ram_budget u32, flash_used u32, flash_budget u32,
   arena_bytes u32, trainable_bytes u32, then three strings (u8 length + bytes):
   model_hash, board, plan. */
#define TT_INFO_FIXED_BYTES  40
#define TT_INFO_LOSS_MSE     0x01  /* model_flags: an autoencoder trained with the mse loss on
                                      unlabelled samples (RESULT carries the anomaly score) */
/* SAMPLE: label u16 (TT_LABEL_NONE = unlabelled), flags u8, c u8, h u16, w u16, then
   h*w*c uint8 pixels, row-major HWC; with TT_SAMPLE_RAW, h*w*c == the model's input size
   int8 values already quantized with the model's input scale and zero point (no resize,
   no pixel table; e.g. h = 1, w = F, c = 1 for a flat input of F features). */
#define TT_SAMPLE_HEADER_BYTES 8
#define TT_LABEL_NONE        0xFFFF
#define TT_SAMPLE_LOGITS     0x01  /* return logits in RESULT */
#define TT_SAMPLE_BILINEAR   0x02  /* resize bilinear (default nearest) */
#define TT_SAMPLE_NO_TRAIN   0x04  /* predict (and score) only, even if labelled */
#define TT_SAMPLE_RAW        0x08  /* the payload is the int8 model input itself */
#define TT_SAMPLE_FLAGS_ALL  0x0F
/* RESULT: pred u16, flags u8, reserved u8, loss f32, cycles_predict u32,
   cycles_train u32, sample_index u32, logit_scale f32, logit_zero_point i8,
   reserved u8, n_logits u16, then n_logits int8. */
#define TT_RESULT_FIXED_BYTES 28
#define TT_RESULT_TRAINED    0x01
#define TT_RESULT_LABELLED   0x02
#define TT_RESULT_CORRECT    0x04
#define TT_RESULT_HAS_LOSS   0x08
#define TT_RESULT_HAS_LOGITS 0x10
#define TT_RESULT_SCORE      0x20  /* loss is the anomaly score (the reconstruction mse of an
                                      unsupervised model, labelled or not); pred is 0 */
/* STATS request: empty or flags u8. STATS_REPLY: nine u32 in this order: samples,
   labelled, correct, trained, last_predict_cycles, last_train_cycles, frames_ok,
   frame_errors, duplicates. */
#define TT_STATS_CLEAR       0x01  /* clear the counters after replying */
#define TT_STATS_BYTES       36
/* SET: key_len u8, key, vtype u8, value. GET: key_len u8, key. VALUE: vtype u8, value.
   TT_VAL_I32 / TT_VAL_F32: 4 bytes; TT_VAL_STR: the rest of the payload. */
#define TT_VAL_I32           1
#define TT_VAL_F32           2
#define TT_VAL_STR           3
#define TT_KEY_MAX           32
/* OK: arg u32 (meaning depends on the request; 0 if none). */
#define TT_OK_BYTES          4
/* RESET: what u8. */
#define TT_RESET_WEIGHTS     0x01  /* trained weights back to the compiled-in ones */
#define TT_RESET_STATS       0x02  /* the device loop's counters */
#define TT_RESET_HISTORY     0x04  /* the application's sample history */
#define TT_RESET_CHECKPOINTS 0x08  /* erase the flash checkpoints (factory state) */
#define TT_RESET_ALL         0x0F
/* DOWNLOAD: blob u8, reserved u8, offset u32, max_len u16.
   DATA: blob u8, reserved u8, total u32, offset u32, then the bytes. */
#define TT_DOWNLOAD_BYTES    8
#define TT_DATA_FIXED_BYTES  10
/* UPLOAD_BEGIN: blob u8, reserved u8, total u32, crc32 u32 (zlib/IEEE CRC-32 of the
   whole blob). UPLOAD: blob u8, reserved u8, offset u32, then the bytes (offsets must
   follow each other). UPLOAD_END: blob u8. */
#define TT_UPLOAD_BEGIN_BYTES 10
#define TT_UPLOAD_FIXED_BYTES 6
#define TT_BLOB_WEIGHTS      0     /* the trained arrays (application-defined image) */
#define TT_BLOB_CHECKPOINT   1     /* a checkpoint image: header + payload (tt_ckpt.h) */
/* EXIT: code u8. */
#define TT_ERROR_FIXED_BYTES 6

/* ---- little-endian helpers ------------------------------------------------------- */
static inline uint16_t tt_get_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t tt_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void tt_put_u16le(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void tt_put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline float tt_get_f32le(const uint8_t *p)
{
    uint32_t u = tt_get_u32le(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline void tt_put_f32le(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    tt_put_u32le(p, u);
}

/* ---- checksums -------------------------------------------------------------------- */
/* CRC-16/CCITT-FALSE; start with crc = 0xFFFF (check("123456789") = 0x29B1). */
uint16_t tt_proto_crc16(uint16_t crc, const uint8_t *data, size_t n);
/* CRC-32 (IEEE, as zlib.crc32); start with crc = 0 (check("123456789") = 0xCBF43926). */
uint32_t tt_proto_crc32(uint32_t crc, const uint8_t *data, size_t n);

/* ---- COBS ------------------------------------------------------------------------- */
/* Streaming decoder: fed one byte at a time, writes the decoded frame into buf (at most
   cap bytes; never more). */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;          /* decoded bytes so far (not counting bytes dropped on overflow) */
    uint8_t remaining;   /* data bytes left in the current COBS block */
    uint8_t pending_zero;/* a zero goes before the next block */
    uint8_t overflow;    /* frame longer than cap: discard until the delimiter */
    uint8_t started;     /* at least one byte of this frame seen */
} tt_cobs_decoder;

/* Results of tt_cobs_feed. */
#define TT_COBS_MORE   0   /* need more bytes (also: empty frame ignored) */
#define TT_COBS_FRAME  1   /* buf[0..len) holds a complete decoded frame */
/* negative: -TT_ERR_COBS or -TT_ERR_TOO_LONG; buf[0..len) holds what was decoded */

void tt_cobs_init(tt_cobs_decoder *d, uint8_t *buf, size_t cap);
int tt_cobs_feed(tt_cobs_decoder *d, uint8_t byte);
/* Re-arm for the next frame (call after TT_COBS_FRAME / an error has been handled). */
void tt_cobs_restart(tt_cobs_decoder *d);
/* COBS-encode data[0..n) into out (capacity cap, needs n + n/254 + 1 bytes); no
   delimiters. Returns the encoded length, or 0 if cap is too small. */
size_t tt_cobs_encode(const uint8_t *data, size_t n, uint8_t *out, size_t cap);
/* COBS-encode data[0..n) and write it with board_uart_write, between two delimiters,
   without an intermediate buffer. */
void tt_cobs_write_frame(const uint8_t *data, size_t n);

/* ---- packets ---------------------------------------------------------------------- */
typedef struct {
    uint8_t version, type;
    uint16_t seq, len, crc;
    const uint8_t *payload;
} tt_packet;

/* Check a decoded frame: length, crc, version, len field (in this order). Returns 0 or
   TT_ERR_SHORT / TT_ERR_CRC / TT_ERR_VERSION / TT_ERR_LENGTH; fills *p as far as it
   could be read. */
int tt_proto_parse(const uint8_t *frame, size_t n, tt_packet *p);
/* Write header + crc around a payload already at buf + TT_PROTO_HEADER_BYTES.
   Returns the packet length (payload_len + TT_PROTO_OVERHEAD). */
size_t tt_proto_seal(uint8_t *buf, uint8_t type, uint16_t seq, uint16_t payload_len);

/* ---- device main loop ------------------------------------------------------------- */
typedef struct {
    const char *model_hash;   /* hex string identifying the compiled model */
    const char *plan;         /* short human-readable training plan */
    uint16_t in_h, in_w;      /* model input (the image SAMPLE inputs are resized to) */
    uint8_t in_c;
    uint16_t num_classes;
    uint32_t ram_used, ram_budget, flash_used, flash_budget, arena_bytes, trainable_bytes;
    uint8_t model_flags;      /* TT_INFO_LOSS_MSE */
} tt_device_info;

typedef struct {
    /* filled by the application */
    uint16_t pred;
    uint8_t flags;            /* TT_RESULT_TRAINED, TT_RESULT_HAS_LOSS, TT_RESULT_SCORE (the device adds
                                 LABELLED, CORRECT and HAS_LOGITS) */
    float loss;               /* softmax cross-entropy of the prediction (if labelled) */
    uint32_t cycles_predict, cycles_train;
    float logit_scale;        /* logit = logit_scale * (q - logit_zero_point) */
    int8_t logit_zero_point;
    uint16_t n_logits;        /* how many of logits[] were written (<= logits_cap) */
    /* provided by the device loop */
    int8_t *logits;           /* NULL unless TT_SAMPLE_LOGITS was requested */
    uint16_t logits_cap;
} tt_sample_result;

/* Callbacks return 0 (TT_OK) or one of the wire TT_ERR_* codes above (a failed kernel
   or training step is TT_ERR_APP, see tt_status.h); they may point *msg at a short
   static text for the ERROR reply. A NULL callback answers TT_ERR_UNSUPPORTED. */
typedef struct tt_device_ops {
    void *ctx;
    const tt_device_info *info;
    /* Where SAMPLE writes the resized uint8 HWC image (in_h * in_w * in_c bytes). */
    uint8_t *(*input)(void *ctx);
    /* Predict on the image in input() (before any training on it); then train if
       label != TT_LABEL_NONE and !(flags & TT_SAMPLE_NO_TRAIN) as the application's
       schedule says. */
    int (*sample)(void *ctx, uint16_t label, uint8_t flags, tt_sample_result *res,
                  const char **msg);
    int (*set)(void *ctx, const char *key, uint8_t key_len, uint8_t vtype,
               const uint8_t *val, uint16_t val_len, const char **msg);
    /* *val_len: in = capacity of val, out = bytes written */
    int (*get)(void *ctx, const char *key, uint8_t key_len, uint8_t *vtype, uint8_t *val,
               uint16_t *val_len, const char **msg);
    int (*save)(void *ctx, uint32_t *arg, const char **msg);
    int (*restore)(void *ctx, uint32_t *arg, const char **msg);
    int (*reset)(void *ctx, uint8_t what, const char **msg);
    int (*blob_size)(void *ctx, uint8_t blob, uint32_t *size, const char **msg);
    int (*blob_read)(void *ctx, uint8_t blob, uint32_t offset, uint8_t *dst, uint32_t n,
                     const char **msg);
    int (*blob_begin)(void *ctx, uint8_t blob, uint32_t size, const char **msg);
    int (*blob_write)(void *ctx, uint8_t blob, uint32_t offset, const uint8_t *src,
                      uint32_t n, const char **msg);
    /* All bytes received and crc32 verified: make the blob live (or reject it). */
    int (*blob_commit)(void *ctx, uint8_t blob, const char **msg);
    /* EXIT: called after the OK reply has been sent. */
    void (*exit)(void *ctx, uint8_t code);
    /* One line on the state the application booted into (e.g. which checkpoint it
       restored), sent as INFO's fourth string; may be NULL. */
    const char *(*status)(void *ctx);
} tt_device_ops;

typedef struct {
    uint32_t samples, labelled, correct, trained;
    uint32_t last_predict_cycles, last_train_cycles;
    uint32_t frames_ok, frame_errors, duplicates;
} tt_device_stats;

/* Serve requests from board_uart_getc() forever; returns 0 when it reports end of
   input (host build). */
int tt_device_run(const tt_device_ops *ops);
/* One received byte (for applications with their own receive loop). Replies are
   written with board_uart_write before it returns. */
void tt_device_feed(const tt_device_ops *ops, uint8_t byte);
const tt_device_stats *tt_device_get_stats(void);
/* RAM of the device loop's own state (frame buffers, counters), for the compiler's
   memory model of the device application. */
size_t tt_device_state_bytes(void);
/* Key comparison helper for SET/GET handlers. */
int tt_proto_key_is(const char *key, uint8_t key_len, const char *name);

#ifdef __cplusplus
}
#endif
#endif
