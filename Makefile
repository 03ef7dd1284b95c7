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
HEAP ?= 256K
JOBS ?= 2

.PHONY: help setup run test test-fast mpy fuzz powercut soak bench flash deploy clean distclean lint

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
/usr/bin/chromium: PKG = chromium
/usr/share/unifont/unifont.hex: PKG = unifont
$(SYSDEPS):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -q $(PKG) >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q $(PKG) >/dev/null)) \
	  && echo "installed $(PKG)"; \
	else echo "note: $@ missing and not root: the tests that need $(PKG) will skip"; fi

setup: $(STAMP) ## create .venv and install the pinned host dependencies (idempotent)
	@$(BIN)/python -c "import sys; print('setup ok:', sys.version.split()[0])"; $(BIN)/micropython -c "import sys; print('micropython', sys.implementation.version)"

mpy: $(STAMP) ## cross-compile every firmware module with mpy-cross -march=xtensawin
	@$(YKT) build-mpy --out build/mpy

test: $(STAMP) $(SYSDEPS) mpy ## compile firmware, run every test on CPython and MicroPython
	$(BIN)/python -m pytest -q -n $(JOBS) --cov=firmware --cov-report=term:skip-covered -m "not slow" tests

test-fast: $(STAMP) ## CPython-only quick run
	$(BIN)/python -m pytest -q -x -m "not micropython and not slow" tests

run: $(STAMP) ## the main job: simulate a day on a Guangxi line
	@$(YKT) run

fuzz: $(STAMP) ## long fuzzing sweep (>= 1,000,000 inputs), prints counts
	@$(YKT) fuzz --examples $${FUZZ_EXAMPLES:-1000000}

powercut: $(STAMP) ## full power-cut sweep on MicroPython, prints cut points and violations
	@$(YKT) powercut --full

soak: $(STAMP) ## 24 h of traffic on MicroPython with an ESP32-like heap
	@$(YKT) sim --riders 5000 --hours 24 --seed 1 --runtime micropython --heap $(HEAP) --json

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
