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
	$(BIN)/python -m pip install -qq -e '.[test,distributed]'
	touch $(STAMP)

# `make run` prints a short summary; each step's full output goes to $(OUT)/logs/STEP.log (on a
# failure its last lines are shown). `report` reuses the figures `plot` drew.
LOGS := $(OUT)/logs
define step
	@echo "$(1): $(2) (full output: $(LOGS)/$(1).log)"
	@start=$$(date +%s); $(BIN)/elmoe-dse $(3) > $(LOGS)/$(1).log 2>&1 \
	  || { tail -n 15 $(LOGS)/$(1).log; echo "make run: $(1) failed, see $(LOGS)/$(1).log"; exit 1; }; \
	  echo "  done in $$(( $$(date +%s) - start )) s"
endef

run: install
	@mkdir -p $(LOGS)
	$(call step,reproduce,the paper's headline numbers with prior and posterior bands,reproduce --out $(OUT))
	$(call step,sweep,the paper's design space sweeps/paper.toml,sweep sweeps/paper.toml --out $(OUT))
	$(call step,plot,every figure into $(OUT)/plots,plot $(OUT))
	@echo
	@$(BIN)/elmoe-dse report $(OUT) --summary

lint: install
	$(BIN)/ruff check elmoe_dse tests
	$(BIN)/ruff format --check elmoe_dse tests

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit

# `make bench BENCH_ARGS="--only startup,sweep --repeats 1"`: python -m elmoe_dse.bench --help.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m elmoe_dse.bench $(BENCH_ARGS)

reproduce: install
	$(BIN)/elmoe-dse reproduce --out $(OUT)

# PostgreSQL for the shared-storage test of `optimize` (127.0.0.1 only; installs Debian's
# postgresql package if missing). Run it, then export the printed URL before `make test`.
postgres:
	@.ci/postgres
	@echo 'run the export line above (or: eval "$$(.ci/postgres)"), then make test'

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
