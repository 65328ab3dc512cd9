# One entry point per job. Each target creates .venv on first use, so a fresh clone needs only
# Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test lint typecheck pytest demo bench serve dashboard cluster web screenshots clean

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

# `make serve` and `make dashboard URL=...` share the token secret through the environment:
# export REACTIVE_AIOPS_TOKEN_SECRET=$$(openssl rand -hex 32) in the shell that runs both. Without
# it, `make serve` runs `serve --dev` (loopback only, a random secret for that run, a token
# printed). `make dashboard` without URL starts its own embedded server (no secret needed); with
# URL it mints an operator token from the shared secret unless REACTIVE_AIOPS_TOKEN is set.
serve: $(STAMP)
	@if [ -n "$$REACTIVE_AIOPS_TOKEN_SECRET" ]; then exec $(BIN)/python -m reactive_aiops serve; \
	else exec $(BIN)/python -m reactive_aiops serve --dev; fi

dashboard: $(STAMP)
	@if [ -z "$(URL)" ]; then exec $(BIN)/python -m reactive_aiops dashboard; fi; \
	REACTIVE_AIOPS_TOKEN=$${REACTIVE_AIOPS_TOKEN:-$$($(BIN)/python -m reactive_aiops token \
	--sub "$${USER:-operator}" --role operator --ttl 86400)} || exit 2; \
	export REACTIVE_AIOPS_TOKEN; exec $(BIN)/python -m reactive_aiops dashboard --url "$(URL)"

# redis-server + two serve nodes sharing it + the dashboard on node A (docs/scaling.md)
cluster: $(STAMP)
	PY=$(BIN)/python scripts/cluster.sh

web: $(STAMP)
	$(BIN)/python -m reactive_aiops web

# Regenerates docs/img/web-dashboard.png from a real browser (Debian's chromium + chromedriver).
screenshots: $(STAMP)
	$(BIN)/python -m reactive_aiops.ui.web.screenshots docs/img

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
