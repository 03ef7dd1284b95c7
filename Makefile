# ykt-gate. `make help` lists the targets. Everything a target needs is
# installed by `make setup` (called automatically), so a fresh machine needs
# nothing but Python 3.11 and this repository.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-$(shell cat requirements.txt | sha1sum | cut -c1-12)
YKT := $(BIN)/python -m ykt_tools
export PYTHONPATH := $(CURDIR)/host_tools:$(CURDIR)/firmware

PORT ?= /dev/ttyUSB0
BAUD ?= 460800
BOARD ?= bus_validator
HEAP ?= board
JOBS ?= 2

.PHONY: help setup micropython32 run test test-fast mpy fuzz powercut soak bench flash deploy clean distclean lint

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: PORT=$(PORT) BAUD=$(BAUD) BOARD=$(BOARD) HEAP=$(HEAP)"

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	@printf '#!/bin/sh\nPYTHONPATH="%s/host_tools:%s/firmware$${PYTHONPATH:+:$$PYTHONPATH}" exec "%s/python" -m ykt_tools "$$@"\n' $(CURDIR) $(CURDIR) $(CURDIR)/$(BIN) > $(BIN)/ykt; chmod +x $(BIN)/ykt
	@rm -f $(VENV)/.setup-*; touch $(STAMP)

# Debian packages the tests use: headless Chromium for the dashboard tests,
# GNU Unifont to rebuild the display glyphs. Installed only when missing
# (needs root, as on CI); otherwise those tests say SKIP with the reason.
SYSDEPS := /usr/bin/chromium /usr/share/unifont/unifont.hex
# gcc-multilib brings the 32-bit C library that micropython32 (-m32) links with.
M32LIBC := /usr/lib32/crt1.o
$(M32LIBC): PKG = gcc-multilib
/usr/bin/chromium: PKG = chromium
/usr/share/unifont/unifont.hex: PKG = unifont
$(SYSDEPS) $(M32LIBC):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -q $(PKG) >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q $(PKG) >/dev/null)) \
	  && echo "installed $(PKG)"; \
	else echo "note: $@ missing and not root: the tests that need $(PKG) will skip"; fi

# micropython32: the ESP32-faithful host runtime (docs/runtime.md). The
# 32-bit unix port built from the vendored MicroPython source with the
# firmware (firmware/manifest.py) and the simulated hardware frozen in. Make
# rebuilds it when the firmware, the simulator or the source changes (a
# rebuild after a firmware edit takes a few seconds; a first build ~25 s).
MP32 := build/micropython32/micropython
MP32_TAR := vendor/micropython-1c3c201149-unix-subset.tar.xz
MP32_SRC := build/micropython32/src
MP32_FROZEN := $(shell find firmware host_tools/simhw host_tools/micropython32 -name '*.py' -not -path '*/__pycache__/*' 2>/dev/null | sort)
MP32_FLAGS := CFLAGS_EXTRA=-m32 LDFLAGS_EXTRA=-m32 MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 \
	MICROPY_PY_SSL=1 MICROPY_SSL_AXTLS=1 MICROPY_SSL_MBEDTLS=0 MPY_CROSS_FLAGS=-march=x86 \
	FROZEN_MANIFEST=$(CURDIR)/host_tools/micropython32/manifest.py BUILD=build-ykt

$(MP32): $(MP32_TAR) vendor/SHA256SUMS $(MP32_FROZEN) | $(M32LIBC)
	@if [ ! -f $(M32LIBC) ]; then echo "note: no 32-bit C library (gcc-multilib): micropython32 not built, its runs will skip" >&2; \
	  [ -z "$$CI" ] || exit 1; exit 0; fi
	@cd vendor && sha256sum -c --quiet SHA256SUMS || { echo "vendor/: MicroPython source does not match its SHA-256" >&2; exit 1; }
	@if [ ! -f $(MP32_SRC)/.from-$$(cut -c1-16 vendor/SHA256SUMS) ]; then \
	  rm -rf $(MP32_SRC) && mkdir -p $(MP32_SRC) && tar xJf $(MP32_TAR) -C $(MP32_SRC) \
	  && touch $(MP32_SRC)/.from-$$(cut -c1-16 vendor/SHA256SUMS); fi
	@$(MAKE) -s -C $(MP32_SRC)/micropython/mpy-cross -j$(JOBS) >/dev/null
	@$(MAKE) -s -C $(MP32_SRC)/micropython/ports/unix -j$(JOBS) $(MP32_FLAGS) >$(MP32_SRC)/build.log 2>&1 \
	  || { tail -20 $(MP32_SRC)/build.log >&2; echo "micropython32 build failed (log: $(MP32_SRC)/build.log)" >&2; exit 1; }
	@cp $(MP32_SRC)/micropython/ports/unix/build-ykt/micropython $@
	@echo "built $@: $$($@ -c 'import sys; print(sys.implementation.name, sys.implementation.version[:3], "maxsize", sys.maxsize)')"

micropython32: $(MP32) ## build the ESP32-faithful 32-bit MicroPython, firmware frozen (cached)

setup: $(STAMP) $(MP32) ## create .venv, install the pinned host dependencies, build micropython32 (idempotent)
	@$(BIN)/python -c "import sys; print('setup ok:', sys.version.split()[0])"; $(BIN)/micropython -c "import sys; print('micropython', sys.implementation.version)"

mpy: $(STAMP) ## cross-compile every firmware module with mpy-cross -march=xtensawin
	@$(YKT) build-mpy --out build/mpy

test: $(STAMP) $(SYSDEPS) $(MP32) mpy ## compile firmware, run every test on CPython and MicroPython
	$(BIN)/python -m pytest -q -n $(JOBS) --cov=firmware --cov-report=term:skip-covered -m "not slow" tests

test-fast: $(STAMP) ## CPython-only quick run
	$(BIN)/python -m pytest -q -x -m "not micropython and not slow" tests

run: $(STAMP) ## the main job: simulate a day on a Guangxi line
	@$(YKT) run

fuzz: $(STAMP) ## long fuzzing sweep (>= 1,000,000 inputs) and schemathesis over the API, prints counts
	@$(YKT) fuzz --examples $${FUZZ_EXAMPLES:-1000000}
	@$(YKT) apicheck --max-examples $${API_EXAMPLES:-300}

powercut: $(STAMP) ## full power-cut sweep on MicroPython, prints cut points and violations
	@$(YKT) powercut --full
	@$(YKT) powercut --ring

soak: $(STAMP) $(MP32) ## 24 h, 5,000 riders on three buses, micropython32 at the board's heap (16 KiB reserve)
	@$(YKT) sim --riders 5000 --hours 24 --seed 1 --runtime micropython32 --heap $(HEAP) --json

bench: $(STAMP) ## every benchmark, JSON on stdout
	@$(YKT) bench all --json

flash: $(STAMP) ## flash stock MicroPython then deploy (PORT, BAUD, BOARD, FIRMWARE)
	@$(YKT) flash --port $(PORT) --baud $(BAUD) --board $(BOARD) --firmware $(FIRMWARE)

deploy: $(STAMP) ## push changed firmware files to a device (PORT, BOARD)
	@$(YKT) deploy --port $(PORT) --board $(BOARD)

clean: ## remove build output
	rm -rf build .pytest_cache .coverage

distclean: clean ## also remove the virtual environment
	rm -rf $(VENV)
