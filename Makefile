# tinytrain: train int8 neural networks on a 256 KB Cortex-M.
#
#   make demo                       the main job, end to end, on the emulated board
#   make test                       the test suite (sets everything up first)
#   make build BOARD=<board>        build the firmware for a board (see `make boards`)
#   make flash BOARD=stm32f746      flash a real STM32F746G-DISCO (openocd or st-flash)
#   make qemu-test                  the tests that run on the emulated board only
#   make bench                      benchmarks (memory, instructions, sparse-update plans
#                                   and accuracy vs the MCUNetV3 paper) -> bench/results.json
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

.PHONY: help setup apt venv test qemu-test demo build flash bench boards clean distclean

help:
	@sed -n '1,14p' Makefile | sed 's/^# \{0,1\}//'

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
$(VENV)/.stamp: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "virtualenv: installing pinned requirements"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# ---- tests ---------------------------------------------------------------------------
test: setup
	$(PY) -m pytest -q -n 2 tests $(PYTEST_ARGS)

qemu-test: setup
	$(PY) -m pytest -q -m qemu tests $(PYTEST_ARGS)

# ---- firmware ------------------------------------------------------------------------
# `make build` builds the self-test firmware for a board; model firmware comes from
# `python -m compiler build MODEL --board BOARD` (or `make build MODEL=mcunet-5fps`).
MODEL ?=
build: $(if $(MODEL),setup,apt)
ifneq ($(MODEL),)
	$(PY) -m compiler build $(MODEL) --board $(BOARD)
else
	@$(MAKE) --no-print-directory -f boards/common.mk firmware BOARD=$(BOARD) \
	  OUT=build/$(BOARD)/selftest
endif

flash: build
	@$(MAKE) --no-print-directory -f boards/common.mk flash-firmware BOARD=$(BOARD) \
	  OUT=build/$(BOARD)/$(if $(MODEL),$(MODEL),selftest)

# The main job: a real model with a new head, compiled with its on-device training step,
# boots on the emulated board; a spotlight-shifted MNIST stream is sent to it frozen and
# then adapting; the adapting pass is replayed bit for bit on the reference. Last line:
# "frozen X% -> on-device Y% (n=600)". Options: make demo DEMO_ARGS="--size 64 ...".
DEMO_ARGS ?=
demo: setup
	$(PY) -m host.demo $(DEMO_ARGS)

bench: setup
	$(PY) bench/forward.py
	$(PY) bench/train_steps.py
	@if [ -f bench/kernels.py ]; then $(PY) bench/kernels.py; fi
	$(PY) bench/sparse.py

clean:
	rm -rf build .stamp-apt

distclean: clean
	rm -rf $(VENV)
