# stm32f746: STM32F746G-DISCO, Cortex-M7 at 216 MHz, single-precision FPU.
BOARD_KIND      := cortexm
CROSS           := arm-none-eabi-
BOARD_CFLAGS    := -mcpu=cortex-m7 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard
BOARD_RAM_KB    := 256
BOARD_FLASH_KB  := 1024
BOARD_STACK     := 8192
BOARD_SRCS      := boards/stm32f746/board.c
BOARD_LDSCRIPT  := boards/stm32f746/link.ld
# Flash runner: openocd (Debian package openocd) by default; FLASHER=st-flash uses
# stlink-tools' st-flash on the raw binary instead.
FLASHER         ?= openocd
ifeq ($(FLASHER),st-flash)
FLASH_CMD        = st-flash --reset write $(BIN) 0x08000000
else
FLASH_CMD        = openocd -f board/stm32f7discovery.cfg -c "program $(ELF) verify reset exit"
endif
