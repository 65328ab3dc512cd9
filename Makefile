# One entry point per job. Each target creates .venv on first use, so a fresh clone needs only
# Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test lint typecheck pytest demo bench serve dashboard web screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check reactive_aiops tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m reactive_aiops demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

serve: $(STAMP)
	$(BIN)/python -m reactive_aiops serve

dashboard: $(STAMP)
	$(BIN)/python -m reactive_aiops dashboard

web: $(STAMP)
	$(BIN)/python -m reactive_aiops web

# Regenerates docs/img/web-dashboard.png from a real browser (Debian's chromium + chromedriver).
screenshots: $(STAMP)
	$(BIN)/python -m reactive_aiops.ui.web.screenshots docs/img

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
