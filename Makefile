# tinytrain: train int8 neural networks on a 256 KB Cortex-M.
#
#   make demo                       the main job, end to end, on the emulated board
#   make demo-plan                  remake the demo's pinned sparse-update plan
#   make test                       the test suite (sets everything up first)
#   make build BOARD=<board>        build the firmware for a board (see `make boards`)
#   make flash BOARD=stm32f746      flash a real STM32F746G-DISCO (openocd or st-flash);
#     MODEL=mcunet-5fps PLAN=plan.json  the firmware that learns on the device (make -n: commands)
#   make qemu-test                  the tests that run on the emulated board only
#   make bench                      benchmarks (memory, instructions, sparse-update plans
#                                   and accuracy vs the MCUNetV3 paper, PyTorch beside us)
#                                   -> bench/results.json, bench/results.md
#   make eval                       the incremental-training study on MNIST digits (frozen / float /
#                                   int8 / low-bit backward, range functions, grids; a sample on
#                                   QEMU) -> eval/report.md + eval/*.png (EVAL_ARGS="--quick")
#   make zoo-bench                  the reference architectures (ResNet-8, MobileNetV1-0.25, DS-CNN,
#                                   FC autoencoder, LeNet) -> bench/zoo.json, bench/zoo.md
#   make powercut                   cut the power at every flash operation of a checkpoint SAVE
#   make fuzz                       fuzz the device's command dispatcher and settings (libFuzzer,
#     FUZZ_SECONDS=300                ASan/UBSan, tests/fuzz): executions, coverage, crashes
#   make setup                      install system packages and the virtualenv
#   make clean                      remove build outputs
#
# Every target sets up what it needs, idempotently.

SHELL   := /bin/bash
BOARD   ?= qemu-mps2-an500
VENV    := .venv
PY      := $(VENV)/bin/python
APT_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BOARDS  := $(sort $(patsubst boards/%/board.mk,%,$(wildcard boards/*/board.mk)))
PYTEST_ARGS ?=

ifeq ($(filter $(BOARD),$(BOARDS)),)
$(error Unknown BOARD '$(BOARD)'. Available boards: $(BOARDS))
endif

.PHONY: help setup apt venv test qemu-test demo demo-plan build flash bench eval zoo-bench powercut fuzz fuzz-apt boards clean distclean

help:
	@sed -n '1,25p' Makefile | sed 's/^# \{0,1\}//'

boards:
	@echo "Available boards: $(BOARDS)"

# ---- setup ---------------------------------------------------------------------------
setup: apt venv

# System packages: installed only when a tool is missing.
apt: .stamp-apt
.stamp-apt:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
	    && [ -f /usr/lib/arm-none-eabi/newlib/libc.a -o -d /usr/lib/arm-none-eabi/newlib ]; then \
	  echo "system packages: present"; \
	else \
	  echo "system packages: installing $(APT_PKGS)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(APT_PKGS); \
	fi
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "virtualenv: installing pinned requirements, then this project (pip install -e .)"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

# ---- tests ---------------------------------------------------------------------------
test: setup
	$(PY) -m pytest -q -n 2 --dist worksteal tests $(PYTEST_ARGS)

qemu-test: setup
	$(PY) -m pytest -q -m qemu tests $(PYTEST_ARGS)

# ---- firmware ------------------------------------------------------------------------
# `make build` builds the self-test firmware for a board; `make build MODEL=mcunet-5fps`
# a model's inference firmware (`python -m compiler build MODEL --board BOARD`), and with
# PLAN=plan.json (from `python -m compiler plan`) the firmware that learns on the device
# (`... build MODEL --plan PLAN`). Either goes to build/<board>/<model>/ (FW_OUT), which
# `make flash` then flashes as built.
MODEL ?=
PLAN  ?=
ifneq ($(PLAN),)
ifeq ($(MODEL),)
$(error PLAN=$(PLAN) needs MODEL= (the model the plan was made for))
endif
endif
FW_OUT := build/$(BOARD)/$(if $(MODEL),$(patsubst %.json,%,$(patsubst %.onnx,%,$(notdir $(MODEL)))),selftest)

build: $(if $(MODEL),setup,apt)
ifneq ($(MODEL),)
	$(PY) -m compiler build $(MODEL) $(if $(PLAN),--plan $(PLAN) )--board $(BOARD) --out $(FW_OUT)
else
	@$(MAKE) --no-print-directory -f boards/common.mk firmware BOARD=$(BOARD) OUT=$(FW_OUT)
endif

# flashes the ELF `build` just wrote (flash-elf does not relink it)
flash: build
	@$(MAKE) --no-print-directory -f boards/common.mk flash-elf BOARD=$(BOARD) OUT=$(FW_OUT)

# The main job: a real model whose head was pre-trained on clean digits, built with the
# sparse-update plan pinned in bench/plans/demo-mcunet-5fps-80.json, boots on the
# emulated board; a spotlight-shifted MNIST stream is sent to it three times (after a RESET
# each): frozen, head only, sparse plan; the sparse pass is replayed bit for bit on the
# reference. Last line: "frozen X% -> head only Y% -> sparse plan Z% (n=600)".
# Options: make demo DEMO_ARGS="--limit 300 ..." (python -m host.demo --help).
# `make demo-plan` remakes the pinned plan (python -m compiler plan --keep-head on shifted
# digits the stream never sends; about 15 minutes on 2 cores).
DEMO_ARGS ?=
demo: setup
	$(PY) -m host.demo $(DEMO_ARGS)

demo-plan: setup
	$(PY) -m host.demo --make-plan --plan-only $(DEMO_ARGS)

bench: setup
	$(PY) bench/forward.py
	$(PY) bench/train_steps.py
	$(PY) bench/train_profile.py
	$(PY) bench/kernels.py
	$(PY) bench/kernels.py --train
	$(PY) bench/sparse.py
	$(PY) bench/pytorch_compare.py
	$(PY) bench/inq.py
	$(PY) bench/analysis.py

# The incremental-training study reproduced on MNIST digits (eval/study.py): a LeNet
# pre-trained on clean digits (cached in build/eval/), a spotlight-shifted stream,
# prequential accuracy of frozen, float and int8 incremental training, gradient bits x
# range functions, low-bit saved activations / weights, history x epochs x lr grids, 3
# stream orders each; a sample of configurations confirmed bit for bit on QEMU. Runs are
# cached (build/eval/runs/), so a re-run redoes only what changed. -> eval/report.md
EVAL_ARGS ?=
eval: setup
	nice -n 10 $(PY) eval/study.py $(EVAL_ARGS)

# The reference architectures of tests/zoo_models.py, briefly pre-trained on MNIST digits
# 0-4 (bench/zoo_pretrain.py, cached in build/bench/zoo/pretrained): size, memory,
# instructions per inference and training step on QEMU, float / int8 accuracy, and the
# sparse-update plan for 256 / 128 KB on the transfer task (digits 5-9).
zoo-bench: setup
	$(PY) bench/zoo.py

# Power cut before and half way through every flash operation of a SAVE of the demo
# plan's trained arrays (host build, NOR flash model): "N/N recovered (old A, new B)".
powercut: setup
	$(PY) -m host.powercut

# Coverage-guided fuzzing of the device (tests/fuzz/fuzz_device.c: the real device loop
# and runtime_c/apps/device/main.c on a small generated model) with clang's libFuzzer,
# ASan and UBSan, for FUZZ_SECONDS, on the seed corpus tests/fuzz/corpus (new inputs go
# to build/fuzz/corpus, crashes to build/fuzz/artifacts). Fails if it finds a crash.
# The short deterministic gcc run of the same harness is part of `make test`.
# FUZZ_ARGS: more options, e.g. FUZZ_ARGS="--define FZ_NO_CKPT_ORACLE -- -fork=2 -ignore_crashes=1"
# (harness without its SAVE/RESTORE oracle; libFuzzer options after --).
FUZZ_SECONDS ?= 300
FUZZ_ARGS    ?=

fuzz: venv fuzz-apt
	$(PY) tests/fuzz/build.py fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

# clang and its libFuzzer / sanitizer runtimes (libclang-rt-<clang major>-dev), when missing
fuzz-apt:
	@if command -v clang >/dev/null && ls "$$(clang -print-resource-dir)"/lib/*/libclang_rt.fuzzer*.a >/dev/null 2>&1; then \
	  echo "clang + libFuzzer: present"; \
	else \
	  echo "system packages: installing clang and its libFuzzer runtime"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends clang && \
	  v=$$(clang --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -n 1) && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends libclang-rt-$$v-dev; \
	fi

clean:
	rm -rf build .stamp-apt

distclean: clean
	rm -rf $(VENV)
