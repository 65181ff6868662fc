# qemu-mps2-an500: QEMU MPS2 AN500 (Cortex-M7), stand-in for the STM32F746.
BOARD_KIND      := cortexm
CROSS           := arm-none-eabi-
# The AN500 FPGA image has a double-precision FPU; we build for the STM32F746's
# single-precision one so both boards run the same code.
BOARD_CFLAGS    := -mcpu=cortex-m7 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard
BOARD_RAM_KB    := 256
BOARD_FLASH_KB  := 1024
BOARD_STACK     := 8192
# two checkpoint slots of this size (the STM32F746's flash layout; boards/common/nor_model.h)
BOARD_CKPT_SLOT_KB := 96
BOARD_SRCS      := boards/qemu-mps2-an500/board.c boards/common/nor_model.c
BOARD_LDSCRIPT  := boards/qemu-mps2-an500/link.ld
QEMU            := qemu-system-arm
QEMU_FLAGS      := -M mps2-an500 -cpu cortex-m7 -display none -monitor none \
                   -icount shift=0 -semihosting-config enable=on,target=native
# "flash" for an emulated board = boot it in QEMU with the UART on this terminal; its
# checkpoint flash is kept in $(OUT)/nor.bin across boots
FLASH_CMD        = $(QEMU) $(QEMU_FLAGS),arg=firmware,arg=nor=$(OUT)/nor.bin -serial stdio -kernel $(ELF)
