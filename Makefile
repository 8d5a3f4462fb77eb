# elmoe-dse: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT ?= results

.PHONY: install run test lint typecheck unit bench reproduce clean postgres

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/elmoe-dse reproduce --out $(OUT)
	$(BIN)/elmoe-dse sweep sweeps/paper.toml --out $(OUT)
	$(BIN)/elmoe-dse plot $(OUT)
	$(BIN)/elmoe-dse report $(OUT)
	@echo "outputs in $(OUT)/: report.md and report.html (start here), plots/*.png,"
	@echo "  results.parquet + run.json (paper sweep), reproduce/ (paper targets: cells.csv, run.json)"

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

# PostgreSQL for the shared-storage test of `optimize` (127.0.0.1 only; installs Debian's
# postgresql package if missing). Run it, then export the printed URL before `make test`.
postgres:
	@.ci/postgres
	@echo 'run the export line above (or: eval "$$(.ci/postgres)"), then make test'

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
