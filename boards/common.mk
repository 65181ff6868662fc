# Firmware build rules shared by every board. Included by the top-level Makefile and
# usable on its own:
#   make -f boards/common.mk firmware BOARD=qemu-mps2-an500 APP_SRCS="a.c b.c" OUT=build/x
# Variables: BOARD (a folder in boards/), APP_SRCS (the application, with main()),
# OUT (output folder), RUNTIME_SRCS (default: every .c under runtime_c/src, at any
# depth: kernels/, proto/, io/), EXTRA_CFLAGS, EXTRA_INCS (include folders), OPT
# (default -O2), OBJ_CACHE (default build/obj). The runtime's objects are compiled once
# per board, compiler and flags into OBJ_CACHE/<board>-<hash of compiler and flags>/
# (with header dependencies, written atomically so parallel builds can share them); the
# application and the board's own files compile with every build. Floating point (scale factors of the training step) is built with
# -ffp-contract=off: no fused multiply-add, so float32 results are bit-identical with
# the numpy reference.

BOARDS := $(sort $(patsubst boards/%/board.mk,%,$(wildcard boards/*/board.mk)))
BOARD ?= qemu-mps2-an500
ifeq ($(filter $(BOARD),$(BOARDS)),)
$(error Unknown BOARD '$(BOARD)'. Available boards: $(BOARDS))
endif
include boards/$(BOARD)/board.mk

OUT          ?= build/$(BOARD)/selftest
APP_SRCS     ?= runtime_c/apps/selftest/main.c
# every .c below runtime_c/src (any depth), sorted
rwildcard     = $(foreach d,$(wildcard $(1)*),$(call rwildcard,$(d)/,$(2)) $(filter $(subst *,%,$(2)),$(d)))
RUNTIME_SRCS ?= $(sort $(call rwildcard,runtime_c/src/,*.c))
OPT          ?= -O2
PYTHON_SYS   ?= python3

CC      := $(CROSS)gcc
OBJCOPY := $(CROSS)objcopy
ELF     := $(OUT)/firmware.elf
BIN     := $(OUT)/firmware.bin
MAP     := $(OUT)/firmware.map

WARN    := -Wall -Wextra -Wno-unused-parameter
# runtime_c/src/kernels: the kernels' private headers (tt_simd.h, tt_gemm.h, ...)
BASE_INCS := -Iruntime_c/include -Iruntime_c/src/kernels -Iboards/common
INCS    := $(BASE_INCS) $(addprefix -I,$(EXTRA_INCS))
FLAGS   := -std=c99 $(OPT) -g $(WARN) $(BOARD_CFLAGS) -ffp-contract=off -ffunction-sections \
           -fdata-sections -DTT_BOARD_$(subst -,_,$(BOARD))=1 $(EXTRA_CFLAGS)
CFLAGS  := $(FLAGS) $(INCS)
# The runtime does not see EXTRA_INCS (the generated model's folder): its objects are
# the same for every model built with the same flags.
RT_CFLAGS := $(FLAGS) $(BASE_INCS)
OBJ_CACHE ?= build/obj
RT_KEY  := $(shell printf '%s\n' '$(CC)' "$$($(CC) -dumpfullversion 2>&1)" '$(RT_CFLAGS)' | cksum | tr -c '0-9\n' _ | cut -c1-24)
RT_DIR  := $(OBJ_CACHE)/$(BOARD)-$(RT_KEY)
RT_OBJS := $(patsubst %.c,$(RT_DIR)/%.o,$(RUNTIME_SRCS))

ifeq ($(BOARD_KIND),cortexm)
SRCS    := boards/common/cortexm_startup.c $(BOARD_SRCS) $(RT_OBJS) $(APP_SRCS)
LDFLAGS := -T $(BOARD_LDSCRIPT) -Lboards/common -nostartfiles --specs=nano.specs \
           --specs=nosys.specs -Wl,--gc-sections -Wl,-Map=$(MAP) \
           -Wl,--defsym=STACK_SIZE=$(BOARD_STACK) -Wl,--print-memory-usage
LDLIBS  := -lm
else
SRCS    := $(BOARD_SRCS) $(RT_OBJS) $(APP_SRCS)
LDFLAGS := -Wl,--gc-sections -Wl,-Map=$(MAP)
LDLIBS  := -lm
endif

.PHONY: firmware
firmware: $(ELF)

# Relink whenever a source or header may have changed (builds are a few seconds).
.PHONY: FORCE
FORCE:

# One runtime object: compiled to a private name, then renamed into place, so builds
# running at the same time never read a half-written object or dependency file.
$(RT_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(CC) $(RT_CFLAGS) -MMD -MP -MT $@ -MF $@.$$$$.d -c $< -o $@.$$$$.tmp && \
	  mv -f $@.$$$$.d $(@:.o=.d) && mv -f $@.$$$$.tmp $@

-include $(RT_OBJS:.o=.d)

$(ELF): FORCE $(RT_OBJS)
	@mkdir -p $(OUT)
	@echo "  CC+LD   $(ELF)  [$(BOARD)]"
	@$(CC) $(CFLAGS) $(SRCS) $(LDFLAGS) $(LDLIBS) -o $@ > $(OUT)/link.log 2>&1; \
	  rc=$$?; grep -v -e '^Memory region' -e '^ *[A-Za-z0-9_]*: .*%$$' $(OUT)/link.log >&2; \
	  if [ $$rc -ne 0 ]; then \
	    $(PYTHON_SYS) boards/memusage.py --board $(BOARD) --ram-kb $(BOARD_RAM_KB) \
	      --flash-kb $(BOARD_FLASH_KB) --flash-lo-kb $(or $(BOARD_FLASH_LO_KB),0) \
	      --link-log $(OUT)/link.log >&2; exit $$rc; fi
ifeq ($(BOARD_KIND),cortexm)
	@$(OBJCOPY) -O binary $@ $(BIN)
endif
	@$(PYTHON_SYS) boards/memusage.py --board $(BOARD) --ram-kb $(BOARD_RAM_KB) \
	  --flash-kb $(BOARD_FLASH_KB) --flash-lo-kb $(or $(BOARD_FLASH_LO_KB),0) \
	  --stack $(BOARD_STACK) --elf $@ --kind $(BOARD_KIND) \
	  --json $(OUT)/memory.json

.PHONY: flash-firmware
flash-firmware: $(ELF)
	$(FLASH_CMD)

# Flash a firmware already built in OUT (e.g. by `python -m compiler build`), as it is.
.PHONY: flash-elf
flash-elf:
	@test -f $(ELF) || { echo "error: $(ELF) not found: build it first" >&2; exit 2; }
	$(FLASH_CMD)
