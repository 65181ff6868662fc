/* Flash driver API: what the checkpoint store (tt_ckpt.h) needs from a board's flash.
 *
 * A board reserves TT_FLASH_SLOTS checkpoint slots; each slot is one or more whole erase
 * sectors that its linker script keeps free of code. Three back ends implement it:
 *   stm32f746        the STM32F746's flash controller (boards/stm32f746/flash.c)
 *   qemu-mps2-an500  a NOR model (boards/common/nor_model.c) kept in a file through
 *   host             semihosting (QEMU) or a plain file (host build), so that the
 *                    contents survive a reboot of the firmware.
 * A board without checkpoint flash returns 0 from board_flash_slot_bytes().
 *
 * NOR rules (the real part's and the model's): erase sets every byte of the slot to
 * 0xFF; programming can only clear bits (new = old & data); a power cut during either
 * leaves the bytes being changed in an undefined mix. Offsets and lengths given to
 * board_flash_program are multiples of TT_FLASH_WORD. Every function returns TT_OK,
 * TT_ERR_ARG (slot, offset or length out of range or misaligned) or TT_ERR_FLASH (the
 * controller reported an error; tt_status.h). */
#ifndef TT_FLASH_H
#define TT_FLASH_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TT_FLASH_SLOTS 2
#define TT_FLASH_WORD 4u

/* Capacity of checkpoint slot `slot` (0 or 1) in bytes; 0 when the board has none. */
uint32_t board_flash_slot_bytes(int slot);
/* Erase every sector of the slot (all bytes 0xFF). */
int board_flash_erase(int slot);
/* Program n bytes at offset off of the slot (off and n multiples of TT_FLASH_WORD). */
int board_flash_program(int slot, uint32_t off, const void *src, uint32_t n);
/* Read n bytes at offset off of the slot. */
int board_flash_read(int slot, uint32_t off, void *dst, uint32_t n);

#ifdef __cplusplus
}
#endif
#endif
