/* NOR flash model: tt_flash.h over a memory image (see nor_model.h). */
#include <string.h>
#include "nor_model.h"
#include "tt_flash.h"
#include "tt_status.h"

uint32_t tt_nor_cut_at;
int tt_nor_cut_half;
uint32_t tt_nor_ops;

static uint32_t slot_base(int slot)
{
    return slot == 0 ? 0u : TT_NOR_SLOT0_SECTORS * TT_NOR_SECTOR_BYTES;
}

static uint32_t slot_span(int slot)
{
    return slot == 0 ? TT_NOR_SLOT0_SECTORS * TT_NOR_SECTOR_BYTES : TT_NOR_SLOT1_BYTES;
}

uint32_t board_flash_slot_bytes(int slot)
{
    if (slot < 0 || slot >= TT_FLASH_SLOTS) return 0;
    return TT_NOR_SLOT0_SECTORS * TT_NOR_SECTOR_BYTES; /* the smaller slot */
}

/* Counts one operation; 1 when the power fails during it. */
static int next_op_fails(void)
{
    ++tt_nor_ops;
    return tt_nor_cut_at != 0 && tt_nor_ops == tt_nor_cut_at;
}

static void cut(uint32_t off, uint32_t n)
{
    if (n) board_nor_persist(off, n);
    board_nor_power_cut();
}

static void erase_sector(uint32_t off, uint32_t n)
{
    uint8_t *m = board_nor_image() + off;
    if (next_op_fails()) {
        /* half way: the first half of the sector is erased, the rest is not yet */
        if (tt_nor_cut_half) memset(m, 0xFF, n / 2);
        cut(off, tt_nor_cut_half ? n / 2 : 0);
    }
    memset(m, 0xFF, n);
    board_nor_persist(off, n);
}

int board_flash_erase(int slot)
{
    if (slot < 0 || slot >= TT_FLASH_SLOTS) return TT_ERR_ARG;
    uint32_t base = slot_base(slot), span = slot_span(slot);
    uint32_t sector = slot == 0 ? TT_NOR_SECTOR_BYTES : TT_NOR_SLOT1_BYTES;
    for (uint32_t o = 0; o < span; o += sector) erase_sector(base + o, sector);
    return 0;
}

int board_flash_program(int slot, uint32_t off, const void *src, uint32_t n)
{
    if (slot < 0 || slot >= TT_FLASH_SLOTS) return TT_ERR_ARG;
    if (off % TT_FLASH_WORD || n % TT_FLASH_WORD) return TT_ERR_ARG;
    if (off > slot_span(slot) || n > slot_span(slot) - off) return TT_ERR_ARG;
    uint8_t *m = board_nor_image() + slot_base(slot) + off;
    const uint8_t *s = (const uint8_t *)src;
    if (next_op_fails()) {
        if (tt_nor_cut_half) {
            /* the first half of the words are programmed, the next one only partly
               (some of the bits it clears are cleared), the rest not at all */
            uint32_t words = n / TT_FLASH_WORD, done = words / 2;
            for (uint32_t i = 0; i < done * TT_FLASH_WORD; ++i) m[i] &= s[i];
            if (done < words)
                for (uint32_t i = done * TT_FLASH_WORD; i < (done + 1) * TT_FLASH_WORD; ++i)
                    m[i] &= (uint8_t)(s[i] | 0xF0u);
        }
        cut(slot_base(slot) + off, tt_nor_cut_half ? n : 0);
    }
    for (uint32_t i = 0; i < n; ++i) m[i] &= s[i];
    board_nor_persist(slot_base(slot) + off, n);
    return 0;
}

int board_flash_read(int slot, uint32_t off, void *dst, uint32_t n)
{
    if (slot < 0 || slot >= TT_FLASH_SLOTS) return TT_ERR_ARG;
    if (off > slot_span(slot) || n > slot_span(slot) - off) return TT_ERR_ARG;
    memcpy(dst, board_nor_image() + slot_base(slot) + off, n);
    return 0;
}
