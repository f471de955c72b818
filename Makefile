# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.riskops-installed

.PHONY: setup demo test lint format down status bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@set -o pipefail; $(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[dev]' 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $(STAMP)
	@echo "riskops: virtualenv ready in $(VENV)"

demo: setup
	$(BIN)/riskops demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

status: setup
	$(BIN)/riskops status

down: setup
	$(BIN)/riskops down

bench: setup
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/feature_build.py
	$(BIN)/python benchmarks/training.py

clean:
	rm -rf $(VENV) .riskops .pytest_cache .ruff_cache
