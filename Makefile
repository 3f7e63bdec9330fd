# Milepost. `make run` starts everything in one process; `make test` runs the whole suite
# against a real Kafka broker and PostgreSQL that it provisions itself.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Outside CI a service that cannot be provisioned is a warning (its tests then skip);
# with CI=true it is a failure.
SERVICES_FLAGS ?= $(if $(filter true,$(CI)),,--optional)
# pytest-xdist workers for the suite, each test file on one worker (its module fixtures set
# up once); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile

include deploy/local/services.mk
include deploy/local/tools.mk

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit lint typecheck bench chaos contracts clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'
	@echo "  services-up      Start (or reuse) local Kafka and PostgreSQL under .cache/"
	@echo "  services-down    Stop them"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,ml]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install Milepost with its dev tools

run: $(STAMP) ## Run every service in one process (bus and SQLite in files under ./.milepost)
	$(BIN)/milepost run

test: $(STAMP) services-up tools ## Run the whole suite on real Kafka + PostgreSQL (provisioned here)
	$(SERVICES_ENV_LOAD) $(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run the tests that need no servers
	$(BIN)/python -m pytest -m "not kafka and not postgres" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: $(STAMP) ## Ruff lint and format check, and the architecture's import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP) ## mypy --strict with the pydantic plugin
	$(BIN)/mypy .

bench: $(STAMP) services-up ## Benchmarks on the real broker, each beside its limit
	$(SERVICES_ENV_LOAD) $(BIN)/python -m tests.benchmarks

chaos: $(STAMP) services-up ## Fault suite in full: faults under load, outputs vs an undisturbed run (CHAOS_ARGS=--help)
	$(SERVICES_ENV_LOAD) MILEPOST_KAFKA_LIBS=$(CURDIR)/.cache/kafka/libs $(BIN)/python -m tests.chaos $(CHAOS_ARGS)

contracts: $(STAMP) ## Regenerate docs/contracts (JSON Schemas, AsyncAPI)
	$(BIN)/milepost contracts export --out docs/contracts

clean: ## Remove the venv, caches and the embedded data folder
	rm -rf $(VENV) .cache .milepost .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
