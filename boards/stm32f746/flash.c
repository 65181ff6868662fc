/* stm32f746: checkpoint flash (tt_flash.h) on the embedded flash controller. Register
   addresses and bit positions from the STM32F74x reference manual (RM0385, "Embedded
   Flash memory"); 32-bit parallelism (PSIZE x32) needs VDD 2.7-3.6 V (3.3 V on the
   DISCO board).

   Slots (boards/stm32f746/link.ld, which keeps code out of them):
     slot 0 = sectors 1-3 (3 x 32 KB at 0x08008000), slot 1 = sector 4 (128 KB at
     0x08020000). Both report 96 KB, the smaller size, so either holds any checkpoint.

   The part has a single bank and no read-while-write: while a sector erases (hundreds
   of ms per 32 KB sector, over a second for the 128 KB one: see the datasheet's
   t_ERASE) or a word programs, every fetch from flash (code included) stalls until the
   controller is done; bytes arriving on the UART meanwhile may overrun. No interrupt
   is used.

   Caches: board.c does not enable the Cortex-M7 L1 caches (SCB_CCR.DC stays 0), so a
   read after erase/program sees the flash itself. Should the D-cache ever be turned on,
   the lines of the changed range are invalidated by address (DCIMVAC) after every
   operation, so the memcpy reads below are never served stale. */
#include <stdint.h>
#include <string.h>
#include "cortexm.h"
#include "tt_flash.h"
#include "tt_status.h"

/* Return codes (tt_status.h). */
#define FLASH_ERR_SLOT   TT_ERR_ARG   /* slot is not 0 or 1 */
#define FLASH_ERR_RANGE  TT_ERR_ARG   /* offset/length misaligned or past the slot */
#define FLASH_ERR_HW     TT_ERR_FLASH /* controller error flag, still locked, or verify */

#define FLASH_BASE   0x40023C00u
#define FLASH_KEYR   REG32(FLASH_BASE + 0x04u)
#define FLASH_SR     REG32(FLASH_BASE + 0x0Cu)
#define FLASH_CR     REG32(FLASH_BASE + 0x10u)

#define FLASH_KEY1   0x45670123u
#define FLASH_KEY2   0xCDEF89ABu

#define SR_EOP       (1u << 0)
#define SR_OPERR     (1u << 1)
#define SR_WRPERR    (1u << 4)
#define SR_PGAERR    (1u << 5)
#define SR_PGPERR    (1u << 6)
#define SR_ERSERR    (1u << 7)
#define SR_BSY       (1u << 16)
#define SR_ERRORS    (SR_OPERR | SR_WRPERR | SR_PGAERR | SR_PGPERR | SR_ERSERR)

#define CR_PG        (1u << 0)
#define CR_SER       (1u << 1)
#define CR_MER       (1u << 2)
#define CR_SNB_POS   3u
#define CR_SNB_MASK  (0xFu << CR_SNB_POS)
#define CR_PSIZE_MASK (3u << 8)
#define CR_PSIZE_X32 (2u << 8)
#define CR_STRT      (1u << 16)
#define CR_LOCK      (1u << 31)

/* Cortex-M7 cache maintenance (ARMv7-M ARM, B2.2.7; cache lines of 32 bytes). */
#define SCB_DCIMVAC  REG32(0xE000EF5Cu)
#define CCR_DC       (1u << 16)
#define DCACHE_LINE  32u

/* Flash geometry (RM0385, table "STM32F74xxx/75xxx flash memory organization"). */
#define FLASH_MEM    0x08000000u
#define SECTOR4      0x08020000u
#define SECTOR5      0x08040000u

/* From link.ld. */
extern const uint8_t _ckpt_slot0_start[], _ckpt_slot0_end[];
extern const uint8_t _ckpt_slot1_start[], _ckpt_slot1_end[];

static uintptr_t slot_start(int slot)
{
    return slot == 0 ? (uintptr_t)_ckpt_slot0_start : (uintptr_t)_ckpt_slot1_start;
}

static uintptr_t slot_end(int slot)
{
    return slot == 0 ? (uintptr_t)_ckpt_slot0_end : (uintptr_t)_ckpt_slot1_end;
}

/* Sector holding flash address a (a inside the 1 MB). */
static uint32_t sector_of(uintptr_t a)
{
    if (a < SECTOR4) return (uint32_t)((a - FLASH_MEM) / (32u * 1024u));
    if (a < SECTOR5) return 4u;
    return 5u + (uint32_t)((a - SECTOR5) / (256u * 1024u));
}

uint32_t board_flash_slot_bytes(int slot)
{
    if (slot != 0 && slot != 1) return 0;
    uintptr_t n0 = slot_end(0) - slot_start(0), n1 = slot_end(1) - slot_start(1);
    return (uint32_t)(n0 < n1 ? n0 : n1);
}

/* Is [off, off + n) inside the slot's usable capacity? (no overflow for any off, n) */
static int in_slot(int slot, uint32_t off, uint32_t n)
{
    uint32_t cap = board_flash_slot_bytes(slot);
    return off <= cap && n <= cap - off;
}

static void dcache_invalidate(uintptr_t a, uint32_t n)
{
    if (!(SCB_CCR & CCR_DC) || n == 0) return;
    uintptr_t end = a + n;
    tt_dsb();
    for (a &= ~(uintptr_t)(DCACHE_LINE - 1u); a < end; a += DCACHE_LINE)
        SCB_DCIMVAC = (uint32_t)a;
    tt_dsb();
    tt_isb();
}

static void wait_idle(void)
{
    while (FLASH_SR & SR_BSY) {}
}

/* Error flags of the last operation, cleared (rc_w1) when set. */
static uint32_t take_errors(void)
{
    uint32_t err = FLASH_SR & SR_ERRORS;
    if (err) FLASH_SR = err | SR_EOP;
    return err;
}

/* Wait for the controller, clear stale flags, unlock FLASH_CR. A second key sequence
   while unlocked would lock FLASH_CR until reset, hence the check of LOCK first. */
static int flash_open(void)
{
    wait_idle();
    FLASH_SR = SR_EOP | SR_ERRORS;
    if (FLASH_CR & CR_LOCK) {
        FLASH_KEYR = FLASH_KEY1;
        FLASH_KEYR = FLASH_KEY2;
    }
    return (FLASH_CR & CR_LOCK) ? FLASH_ERR_HW : 0;
}

static void flash_close(void)
{
    wait_idle();
    FLASH_CR &= ~(CR_PG | CR_SER | CR_MER | CR_SNB_MASK);
    FLASH_CR |= CR_LOCK;
}

int board_flash_erase(int slot)
{
    if (slot != 0 && slot != 1) return FLASH_ERR_SLOT;
    uintptr_t start = slot_start(slot), end = slot_end(slot);
    int rc = flash_open();
    if (rc) return rc;
    for (uint32_t s = sector_of(start), last = sector_of(end - 1u); s <= last && !rc; ++s) {
        FLASH_CR = (FLASH_CR & ~CR_PSIZE_MASK) | CR_PSIZE_X32;
        FLASH_CR = (FLASH_CR & ~(CR_PG | CR_MER | CR_SNB_MASK)) | CR_SER | (s << CR_SNB_POS);
        FLASH_CR |= CR_STRT;
        tt_dsb();
        wait_idle();
        if (take_errors()) rc = FLASH_ERR_HW;
        FLASH_CR &= ~(CR_SER | CR_SNB_MASK);
    }
    flash_close();
    dcache_invalidate(start, (uint32_t)(end - start));
    if (rc) return rc;
    /* blank check: erase sets every byte to 0xFF (a few ms against seconds of erase) */
    for (const volatile uint32_t *p = (const volatile uint32_t *)start;
         p < (const volatile uint32_t *)end; ++p)
        if (*p != 0xFFFFFFFFu) return FLASH_ERR_HW;
    return 0;
}

int board_flash_program(int slot, uint32_t off, const void *src, uint32_t n)
{
    if (slot != 0 && slot != 1) return FLASH_ERR_SLOT;
    if (off % TT_FLASH_WORD || n % TT_FLASH_WORD || !in_slot(slot, off, n))
        return FLASH_ERR_RANGE;
    if (n == 0) return 0;
    const uint8_t *s = (const uint8_t *)src;
    uintptr_t base = slot_start(slot) + off;
    int rc = flash_open();
    if (rc) return rc;
    FLASH_CR = (FLASH_CR & ~CR_PSIZE_MASK) | CR_PSIZE_X32;
    FLASH_CR = (FLASH_CR & ~(CR_SER | CR_MER | CR_SNB_MASK)) | CR_PG;
    for (uint32_t i = 0; i < n && !rc; i += 4u) {
        volatile uint32_t *dst = (volatile uint32_t *)(base + i);
        uint32_t w;
        memcpy(&w, s + i, 4); /* src may be unaligned */
        uint32_t old = *dst;
        if ((old & w) == old) continue; /* clears no bit: leave the word alone */
        *dst = w;
        tt_dsb();
        wait_idle();
        int err = take_errors() != 0;
        dcache_invalidate((uintptr_t)dst, 4u);
        /* verify: programming only clears bits, so the word reads old & data (data
           itself when it was erased) */
        if (err || *dst != (old & w)) rc = FLASH_ERR_HW;
    }
    flash_close();
    return rc;
}

int board_flash_read(int slot, uint32_t off, void *dst, uint32_t n)
{
    if (slot != 0 && slot != 1) return FLASH_ERR_SLOT;
    if (!in_slot(slot, off, n)) return FLASH_ERR_RANGE;
    if (n) memcpy(dst, (const void *)(slot_start(slot) + off), n);
    return 0;
}
