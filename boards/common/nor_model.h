/* NOR flash model behind the flash driver API (tt_flash.h) for the boards that have no
 * flash controller of their own (qemu-mps2-an500, host). It has the STM32F746's slot
 * geometry: slot 0 = three 32 KB sectors, slot 1 = one 128 KB sector (both hold
 * 96 KB), and behaves like the real part: erase sets a whole sector to 0xFF, programming
 * only clears bits, and a power cut in the middle of either leaves a mix of old and new.
 *
 * The board keeps the image in memory and makes it persistent (a file on the host
 * build, a semihosting file on QEMU): it provides the three hooks below.
 *
 * Power-cut simulation: tt_nor_cut_at = k (1-based) cuts the power at the k-th erase or
 * program operation since boot: before it changes anything, or (tt_nor_cut_half) half
 * way through it; the image is persisted and board_nor_power_cut() never returns. */
#ifndef TT_NOR_MODEL_H
#define TT_NOR_MODEL_H
#include <stdint.h>

#define TT_NOR_SECTOR_BYTES (32u * 1024u)
#define TT_NOR_SLOT0_SECTORS 3u
#define TT_NOR_SLOT1_BYTES (128u * 1024u)
#define TT_NOR_BYTES (TT_NOR_SLOT0_SECTORS * TT_NOR_SECTOR_BYTES + TT_NOR_SLOT1_BYTES)

/* board hooks */
uint8_t *board_nor_image(void);                   /* TT_NOR_BYTES of memory */
void board_nor_persist(uint32_t off, uint32_t n); /* image[off, off+n) changed */
void board_nor_power_cut(void) __attribute__((noreturn));

/* power-cut simulation (set by the board at boot, e.g. from the environment) */
extern uint32_t tt_nor_cut_at;
extern int tt_nor_cut_half;
/* erase and program operations since boot */
extern uint32_t tt_nor_ops;
#endif
