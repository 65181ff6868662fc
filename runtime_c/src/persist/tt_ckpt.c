/* Checkpoint store over the flash driver (tt_ckpt.h, tt_flash.h). */
#include <string.h>
#include "tt_ckpt.h"
#include "tt_flash.h"
#include "tt_proto.h"
#include "tt_status.h"

_Static_assert(sizeof(tt_ckpt_header) == TT_CKPT_HEADER_BYTES, "checkpoint header layout");
_Static_assert(TT_CKPT_HEADER_BYTES % TT_FLASH_WORD == 0, "header must be whole flash words");

#define CHUNK 1024u /* bytes per flash program operation and per read (stack buffer) */

/* An upload being staged into the free slot (tt_ckpt_stage_*). A save or an erase
   cancels it: they write that slot themselves. */
static struct {
    int open, slot;
    uint32_t seq, done;
    uint32_t crc;
    uint8_t tail[TT_FLASH_WORD];
    uint32_t tail_n;
} stage;

static void copy_hash(char *dst, const char *src, uint32_t cap)
{
    uint32_t i = 0;
    for (; src && src[i] && i < cap; ++i) dst[i] = src[i];
    for (; i < cap; ++i) dst[i] = 0;
}

uint32_t tt_ckpt_crc(const tt_ckpt_header *h, uint32_t payload_crc)
{
    return tt_proto_crc32(payload_crc, (const uint8_t *)h, offsetof(tt_ckpt_header, crc));
}

void tt_ckpt_make_header(tt_ckpt_header *h, const tt_ckpt_id *id, uint32_t seq,
                         uint32_t payload_crc)
{
    memset(h, 0, sizeof *h);
    h->magic = TT_CKPT_MAGIC;
    h->version = TT_CKPT_VERSION;
    h->header_bytes = TT_CKPT_HEADER_BYTES;
    h->seq = seq;
    h->payload_bytes = id->payload_bytes;
    copy_hash(h->model_hash, id->model_hash, TT_CKPT_MODEL_HASH_BYTES);
    copy_hash(h->plan_hash, id->plan_hash, TT_CKPT_PLAN_HASH_BYTES);
    h->crc = tt_ckpt_crc(h, payload_crc);
}

int tt_ckpt_check_header(const tt_ckpt_header *h, const tt_ckpt_id *id)
{
    tt_ckpt_header want;
    tt_ckpt_make_header(&want, id, 0, 0);
    if (h->magic != TT_CKPT_MAGIC || h->version != TT_CKPT_VERSION ||
        h->header_bytes != TT_CKPT_HEADER_BYTES || h->payload_bytes != id->payload_bytes)
        return TT_ERR_ARG;
    if (memcmp(h->model_hash, want.model_hash, TT_CKPT_MODEL_HASH_BYTES) != 0 ||
        memcmp(h->plan_hash, want.plan_hash, TT_CKPT_PLAN_HASH_BYTES) != 0)
        return TT_ERR_ARG;
    return TT_OK;
}

uint32_t tt_ckpt_capacity(void)
{
    uint32_t a = board_flash_slot_bytes(0), b = board_flash_slot_bytes(1);
    uint32_t c = a < b ? a : b;
    return c > TT_CKPT_HEADER_BYTES ? c - TT_CKPT_HEADER_BYTES : 0;
}

/* CRC-32 of n payload bytes of a slot, read back from flash. */
static int slot_payload_crc(int slot, uint32_t n, uint32_t *crc)
{
    uint8_t buf[CHUNK];
    uint32_t c = 0;
    for (uint32_t off = 0; off < n; off += CHUNK) {
        uint32_t k = n - off < CHUNK ? n - off : CHUNK;
        int e = board_flash_read(slot, TT_CKPT_HEADER_BYTES + off, buf, k);
        if (e) return e;
        c = tt_proto_crc32(c, buf, k);
    }
    *crc = c;
    return TT_OK;
}

/* 1 when slot holds a valid checkpoint for id (its header in *h). */
static int slot_valid(int slot, const tt_ckpt_id *id, tt_ckpt_header *h)
{
    if (id->payload_bytes > tt_ckpt_capacity()) return 0;
    if (board_flash_read(slot, 0, h, sizeof *h) != TT_OK) return 0;
    if (tt_ckpt_check_header(h, id) != TT_OK) return 0;
    uint32_t crc;
    if (slot_payload_crc(slot, h->payload_bytes, &crc) != TT_OK) return 0;
    return tt_ckpt_crc(h, crc) == h->crc;
}

/* sequence numbers wrap: a is newer than b when (a - b) mod 2^32 is in 1..2^31-1 */
static int newer(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

int tt_ckpt_newest(const tt_ckpt_id *id, uint32_t *seq)
{
    int best = -1;
    uint32_t best_seq = 0;
    for (int s = 0; s < TT_FLASH_SLOTS; ++s) {
        tt_ckpt_header h;
        if (!slot_valid(s, id, &h)) continue;
        if (best < 0 || newer(h.seq, best_seq)) {
            best = s;
            best_seq = h.seq;
        }
    }
    if (seq) *seq = best < 0 ? 0 : best_seq;
    return best;
}

int tt_ckpt_read(int slot, uint32_t off, void *dst, uint32_t n)
{
    return board_flash_read(slot, TT_CKPT_HEADER_BYTES + off, dst, n);
}

int tt_ckpt_erase_all(void)
{
    stage.open = 0;
    int e = TT_OK;
    for (int s = 0; s < TT_FLASH_SLOTS; ++s)
        if (board_flash_slot_bytes(s)) e |= board_flash_erase(s);
    return e ? TT_ERR_FLASH : TT_OK;
}

/* Writes the header last, after checking the payload read back from flash. */
static int finish(int slot, const tt_ckpt_id *id, uint32_t seq, uint32_t expect_crc)
{
    uint32_t crc;
    int e = slot_payload_crc(slot, id->payload_bytes, &crc);
    if (e) return e;
    if (crc != expect_crc) return TT_ERR_FLASH; /* did not read back as written */
    tt_ckpt_header h;
    tt_ckpt_make_header(&h, id, seq, crc);
    e = board_flash_program(slot, 0, &h, sizeof h);
    if (e) return e;
    tt_ckpt_header back;
    e = board_flash_read(slot, 0, &back, sizeof back);
    if (e) return e;
    return memcmp(&back, &h, sizeof h) == 0 ? TT_OK : TT_ERR_FLASH;
}

static int target_slot(const tt_ckpt_id *id, uint32_t *next_seq)
{
    uint32_t seq;
    int cur = tt_ckpt_newest(id, &seq);
    *next_seq = cur < 0 ? 1u : seq + 1u;
    if (*next_seq == 0) *next_seq = 1u;
    return cur == 0 ? 1 : 0;
}

int tt_ckpt_save(const tt_ckpt_id *id, tt_ckpt_source src, void *ctx, uint32_t *seq)
{
    stage.open = 0; /* an upload staged in the free slot is cancelled, not mixed in */
    if (id->payload_bytes == 0 || id->payload_bytes > tt_ckpt_capacity()) return TT_ERR_ARG;
    uint32_t next;
    int slot = target_slot(id, &next);
    int e = board_flash_erase(slot);
    if (e) return e;
    uint8_t buf[CHUNK];
    uint32_t crc = 0, n = id->payload_bytes;
    for (uint32_t off = 0; off < n; off += CHUNK) {
        uint32_t k = n - off < CHUNK ? n - off : CHUNK;
        src(ctx, off, buf, k);
        crc = tt_proto_crc32(crc, buf, k);
        uint32_t kw = (k + TT_FLASH_WORD - 1u) / TT_FLASH_WORD * TT_FLASH_WORD;
        memset(buf + k, 0xFF, kw - k); /* pad the last word with erased bytes */
        e = board_flash_program(slot, TT_CKPT_HEADER_BYTES + off, buf, kw);
        if (e) return e;
    }
    e = finish(slot, id, next, crc);
    if (e) return e;
    if (seq) *seq = next;
    return TT_OK;
}

/* ---- staged upload ------------------------------------------------------------------ */

int tt_ckpt_stage_begin(const tt_ckpt_id *id)
{
    stage.open = 0;
    if (id->payload_bytes == 0 || id->payload_bytes > tt_ckpt_capacity()) return TT_ERR_ARG;
    stage.slot = target_slot(id, &stage.seq);
    int e = board_flash_erase(stage.slot);
    if (e) return e;
    stage.done = stage.crc = stage.tail_n = 0;
    stage.open = 1;
    return TT_OK;
}

int tt_ckpt_stage_write(const uint8_t *src, uint32_t n)
{
    if (!stage.open) return TT_ERR_ARG;
    stage.crc = tt_proto_crc32(stage.crc, src, n);
    while (n) {
        /* fill the partial word first, then whole words straight from src */
        if (stage.tail_n || n < TT_FLASH_WORD) {
            stage.tail[stage.tail_n++] = *src++;
            --n;
            if (stage.tail_n == TT_FLASH_WORD) {
                int e = board_flash_program(stage.slot, TT_CKPT_HEADER_BYTES + stage.done,
                                            stage.tail, TT_FLASH_WORD);
                if (e) { stage.open = 0; return e; }
                stage.done += TT_FLASH_WORD;
                stage.tail_n = 0;
            }
            continue;
        }
        uint32_t k = n / TT_FLASH_WORD * TT_FLASH_WORD;
        if (k > CHUNK) k = CHUNK;
        uint8_t buf[CHUNK];
        memcpy(buf, src, k);
        int e = board_flash_program(stage.slot, TT_CKPT_HEADER_BYTES + stage.done, buf, k);
        if (e) { stage.open = 0; return e; }
        stage.done += k;
        src += k;
        n -= k;
    }
    return TT_OK;
}

int tt_ckpt_stage_commit(const tt_ckpt_id *id, const tt_ckpt_header *uploaded, uint32_t *seq,
                         int *slot)
{
    if (!stage.open) return TT_ERR_ARG;
    stage.open = 0;
    if (stage.tail_n) {
        memset(stage.tail + stage.tail_n, 0xFF, TT_FLASH_WORD - stage.tail_n);
        int e = board_flash_program(stage.slot, TT_CKPT_HEADER_BYTES + stage.done, stage.tail,
                                    TT_FLASH_WORD);
        if (e) return e;
        stage.done += stage.tail_n;
        stage.tail_n = 0;
    }
    if (stage.done != id->payload_bytes || tt_ckpt_check_header(uploaded, id) != TT_OK)
        return TT_ERR_ARG;
    if (tt_ckpt_crc(uploaded, stage.crc) != uploaded->crc) return TT_ERR_ARG;
    int e = finish(stage.slot, id, stage.seq, stage.crc);
    if (e) return e;
    if (seq) *seq = stage.seq;
    if (slot) *slot = stage.slot;
    return TT_OK;
}
