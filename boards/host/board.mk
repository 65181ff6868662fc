# host: native executable (gcc), for fast tests and fuzzing. No memory budget is
# enforced by the linker; the budget figures are those of the target it stands in for.
BOARD_KIND      := host
CROSS           :=
BOARD_CFLAGS    :=
BOARD_RAM_KB    := 256
BOARD_FLASH_KB  := 1024
BOARD_STACK     := 8192
# two checkpoint slots of this size (the STM32F746's flash layout; boards/common/nor_model.h)
BOARD_CKPT_SLOT_KB := 96
BOARD_SRCS      := boards/host/board.c boards/common/nor_model.c
BOARD_LDSCRIPT  :=
FLASH_CMD        = TT_PTY=1 $(ELF)
