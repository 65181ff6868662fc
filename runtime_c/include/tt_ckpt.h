/* Checkpoint store: the trained state in flash, two slots (tt_flash.h), so that a power
 * cut at any instant leaves either the previous or the new checkpoint, never a mix.
 *
 * A slot holds a header (below) followed by the payload. A slot is valid only when its
 * magic, format version and sizes are right, its CRC-32 matches, and its model and
 * plan hashes are the firmware's. The newest valid slot (highest sequence number) is
 * the checkpoint. A save writes the other slot in this order: erase, payload, header;
 * the header (with its CRC) goes last, so a slot whose write was interrupted never
 * validates. The CRC covers the payload, then the header up to the crc field.
 *
 * The same image (header + payload) is what the host downloads and uploads
 * (blob TT_BLOB_CHECKPOINT); compiler/target/checkpoint.py reads it. */
#ifndef TT_CKPT_H
#define TT_CKPT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TT_CKPT_MAGIC 0x4B435454u /* "TTCK" little-endian */
#define TT_CKPT_VERSION 1u
#define TT_CKPT_MODEL_HASH_BYTES 64u /* hex sha256 of the model */
#define TT_CKPT_PLAN_HASH_BYTES 16u  /* hex, identifies the trained-array layout */

typedef struct {
    uint32_t magic;
    uint16_t version;
    uint16_t header_bytes;   /* sizeof(tt_ckpt_header) */
    uint32_t seq;            /* 1, 2, ...: the newest valid slot wins */
    uint32_t payload_bytes;
    char model_hash[TT_CKPT_MODEL_HASH_BYTES];
    char plan_hash[TT_CKPT_PLAN_HASH_BYTES];
    uint32_t crc;            /* CRC-32 (zlib) of payload, then the bytes above */
} tt_ckpt_header;
#define TT_CKPT_HEADER_BYTES 100u

/* What a checkpoint must match: the firmware's model and plan, and its payload size. */
typedef struct {
    const char *model_hash;  /* strings; only their first *_HASH_BYTES count */
    const char *plan_hash;
    uint32_t payload_bytes;
} tt_ckpt_id;

/* Payload source for a save: copy n bytes at offset off of the payload to dst. */
typedef void (*tt_ckpt_source)(void *ctx, uint32_t off, uint8_t *dst, uint32_t n);

/* Largest payload the board's slots hold (0: no checkpoint flash). */
uint32_t tt_ckpt_capacity(void);
/* The newest valid slot for id: its index (0/1) and sequence number, or -1. */
int tt_ckpt_newest(const tt_ckpt_id *id, uint32_t *seq);
/* Write a new checkpoint into the slot that is not the newest valid one; *seq = its
   sequence number. Returns TT_OK or a tt_status.h code. */
int tt_ckpt_save(const tt_ckpt_id *id, tt_ckpt_source src, void *ctx, uint32_t *seq);
/* Read n payload bytes at offset off of slot `slot`. */
int tt_ckpt_read(int slot, uint32_t off, void *dst, uint32_t n);
/* Erase both slots (factory state). */
int tt_ckpt_erase_all(void);
/* Fill *h for a payload whose CRC-32 (zlib, from 0) is payload_crc. */
void tt_ckpt_make_header(tt_ckpt_header *h, const tt_ckpt_id *id, uint32_t seq,
                         uint32_t payload_crc);
/* Check a header (magic, version, sizes, hashes) against id; 0 when it matches. */
int tt_ckpt_check_header(const tt_ckpt_header *h, const tt_ckpt_id *id);
/* CRC of a header given its payload's CRC (what h->crc must equal). */
uint32_t tt_ckpt_crc(const tt_ckpt_header *h, uint32_t payload_crc);

/* Staged write of an uploaded checkpoint straight into the free slot: begin (erases
   it), write payload bytes in order (any lengths), commit with the uploaded header,
   which must match id and whose CRC must match the data; the slot then becomes the
   newest (a new sequence number). Until commit, the live checkpoint is untouched. A
   tt_ckpt_save or tt_ckpt_erase_all in between cancels the staged upload (its next
   write or commit fails). */
int tt_ckpt_stage_begin(const tt_ckpt_id *id);
int tt_ckpt_stage_write(const uint8_t *src, uint32_t n);
int tt_ckpt_stage_commit(const tt_ckpt_id *id, const tt_ckpt_header *uploaded, uint32_t *seq,
                         int *slot);

#ifdef __cplusplus
}
#endif
#endif
