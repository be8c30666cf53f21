# Everything installs itself into .venv on first use: only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VECTORS := tests/data

.PHONY: all test lint typecheck conformance bench format clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "peercash needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check peercash tests bench
	$(BIN)/ruff format --check peercash tests bench
	$(BIN)/mypy peercash
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n 2 -q tests

format: $(STAMP)
	$(BIN)/ruff format peercash tests bench
	$(BIN)/ruff check --fix peercash tests bench

# The main job until the node exists: every vector file through the engine, one summary per suite.
conformance: $(STAMP)
	@set -e; \
	for s in "script-tests core/script_tests.json" "tx-valid core/tx_valid.json" \
	         "tx-invalid core/tx_invalid.json" "sighash core/sighash.json" \
	         "script-assets core/script_assets_test.json" \
	         "bip340 bips/bip-0340/test-vectors.csv"; do \
	  set -- $$s; printf '%-13s ' "$$1"; \
	  $(BIN)/peercash conformance $$1 $(VECTORS)/$$2 --quiet; \
	done

bench: $(STAMP)
	$(BIN)/python bench/script_validation.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
