# host: native executable (gcc), for fast tests and fuzzing. No memory budget is
# enforced by the linker; the budget figures are those of the target it stands in for.
BOARD_KIND      := host
CROSS           :=
BOARD_CFLAGS    :=
BOARD_RAM_KB    := 256
BOARD_FLASH_KB  := 1024
BOARD_STACK     := 8192
BOARD_SRCS      := boards/host/board.c
BOARD_LDSCRIPT  :=
FLASH_CMD        = TT_PTY=1 $(ELF)
