# elmoe-dse: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT ?= results

.PHONY: install run test lint typecheck unit bench reproduce clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/elmoe-dse reproduce --out $(OUT)
	@echo "outputs: $(OUT)/reproduce/ (cells.csv, systems.csv, systems.parquet, run.json)"

lint: install
	$(BIN)/ruff check elmoe_dse tests
	$(BIN)/ruff format --check elmoe_dse tests

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit

bench: install
	$(BIN)/python -m elmoe_dse.bench

reproduce: install
	$(BIN)/elmoe-dse reproduce --out $(OUT)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
