# One entry point per job. Each target creates .venv on first use, so a fresh clone needs only
# Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test lint typecheck pytest demo bench chaos serve dashboard cluster clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check reactive_aiops tests benchmarks chaos

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m reactive_aiops demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# fault scenarios against real server processes and redis-server (not run by CI; docs/reliability.md)
chaos: $(STAMP)
	$(BIN)/python -m chaos

serve: $(STAMP)
	$(BIN)/python -m reactive_aiops serve

dashboard: $(STAMP)
	$(BIN)/python -m reactive_aiops dashboard

# redis-server + two serve nodes sharing it + the dashboard on node A (docs/scaling.md)
cluster: $(STAMP)
	PY=$(BIN)/python scripts/cluster.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
