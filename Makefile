# One entry point per job. Each target creates .venv on first use, so a fresh clone needs only
# Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := test,bench,uvloop
# The versions `make test` (and CI) install: the ones the suite last passed with. `make
# constraints` rewrites it from .venv; `make test-latest` tries the newest of everything.
CONSTRAINTS := constraints.txt
LATEST := .venv-latest

.PHONY: setup test lint typecheck pytest demo bench chaos serve dashboard cluster web screenshots \
	clean constraints test-latest

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check reactive_aiops tests benchmarks chaos

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# Pin what .venv has now (run after upgrading there and a green `make test`).
constraints: $(STAMP)
	{ echo "# Tested versions: make test installs with pip -c $(CONSTRAINTS)."; \
	  echo "# Regenerate with make constraints after a green make test."; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > $(CONSTRAINTS)

# Not in CI: a separate venv with the newest release of every dependency (no constraints),
# then the whole of `make test` against it; prints where it differs from constraints.txt.
test-latest:
	test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --upgrade pip
	$(LATEST)/bin/python -m pip install -q -U --upgrade-strategy eager -e '.[$(EXTRAS)]'
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/freeze.txt
	-grep -v '^#' $(CONSTRAINTS) | diff - $(LATEST)/freeze.txt
	$(LATEST)/bin/ruff check --no-cache reactive_aiops tests benchmarks chaos
	$(LATEST)/bin/mypy --cache-dir $(LATEST)/.mypy_cache
	$(LATEST)/bin/pytest -p no:cacheprovider

demo: $(STAMP)
	$(BIN)/python -m reactive_aiops demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# fault scenarios against real server processes and redis-server (not run by CI; docs/reliability.md)
chaos: $(STAMP)
	$(BIN)/python -m chaos

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

# Regenerates every image in docs/img: the web dashboard from a real browser (Debian's chromium +
# chromedriver), the Textual dashboard's scripted-incident and reconnecting SVGs from its Pilot
# tests, and its live SVG from the simulated source (incidents are random in time).
screenshots: $(STAMP)
	$(BIN)/python -m reactive_aiops.ui.web.screenshots docs/img
	REACTIVE_AIOPS_ARTIFACTS=docs/img $(BIN)/pytest -q tests/test_ui_dashboard_app.py
	$(BIN)/python -m reactive_aiops dashboard --duration 15 --rate 300 --seed 5 \
		--screenshot docs/img/dashboard-live.svg

clean:
	rm -rf $(VENV) $(LATEST) .mypy_cache .pytest_cache .ruff_cache .hypothesis
