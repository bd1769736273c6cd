# Two commands for a fresh machine with Python 3.11+, make and git:
#   make up    - the platform on the embedded default (broker + Postgres started for you)
#   make test  - lint, types and every test tier whose prerequisites exist
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up test test-faults lint types pytest bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

up: $(BIN)/.installed
	$(BIN)/tenure up --demo

test: lint types pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/python -m pytest -p no:cacheprovider -m "not soak" --durations=15 $(PYTEST_ARGS)

# The fault matrix (each part of `tenure up` killed under a steady stream, on both brokers)
# and the freshness/scale benchmarks' smoke runs: ~7 minutes, separate from the default test
# run; CI runs it after `make test`.
test-faults: $(BIN)/.installed
	$(BIN)/python -m pytest -p no:cacheprovider -m soak $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .tenure .mypy_cache .ruff_cache
