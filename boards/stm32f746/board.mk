# stm32f746: STM32F746G-DISCO, Cortex-M7 at 216 MHz, single-precision FPU.
BOARD_KIND      := cortexm
CROSS           := arm-none-eabi-
BOARD_CFLAGS    := -mcpu=cortex-m7 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard
BOARD_RAM_KB    := 256
# Flash (1 MB, boards/stm32f746/link.ld): sector 0 (32 KB at 0x08000000) holds only the
# vector table, sectors 1-3 and 4 (0x08008000..0x0803FFFF) are the two checkpoint slots
# of boards/stm32f746/flash.c, sectors 5-7 (768 KB at 0x08040000) hold the code,
# read-only data (the model's weights) and the .data image. The budget below is that
# code region (the vector table's few hundred bytes are counted in it too); the slots
# are not available to the firmware.
BOARD_FLASH_KB  := 768
# The rest of sector 0 after the vector table: the compiler places whole constant arrays
# of the model there (section .rodata.tt_lo: the precomputed requantization records
# first, then the largest parameter arrays that still fit), up to this many KB.
BOARD_FLASH_LO_KB := 31
# two checkpoint slots of this size: 96 KB = slot 0, the smaller one (flash.c)
BOARD_CKPT_SLOT_KB := 96
BOARD_STACK     := 8192
BOARD_SRCS      := boards/stm32f746/board.c boards/stm32f746/flash.c
BOARD_LDSCRIPT  := boards/stm32f746/link.ld
# Flash runner: openocd (Debian package openocd) by default; FLASHER=st-flash uses
# stlink-tools' st-flash on an Intel hex file of the ELF (only its loaded sections: a raw
# binary would span, and overwrite, the checkpoint slots between vectors and code).
FLASHER         ?= openocd
ifeq ($(FLASHER),st-flash)
FLASH_CMD        = $(OBJCOPY) -O ihex $(ELF) $(OUT)/firmware.hex && \
                   st-flash --reset --format ihex write $(OUT)/firmware.hex
else
FLASH_CMD        = openocd -f board/stm32f7discovery.cfg -c "program $(ELF) verify reset exit"
endif
