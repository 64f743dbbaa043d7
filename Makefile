# fraudsvc: the front door. `make help` lists the targets; CI runs `make test`.
#
# Every target bootstraps its own environment: a private copy of uv in .tools/ (installed with
# the system's Python and pip), then .venv/ built exactly from uv.lock. No manual venv or pip step.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(UV_VERSION)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

DATA_CSV ?= data/transactions.parquet

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON)
	@rm -f $(VENV)/.installed-*
	@touch $@

.PHONY: venv
venv: $(STAMP) ## build the environment (.venv) exactly from uv.lock

$(DATA_CSV): | $(STAMP)
	$(BIN)/fraudsvc generate --out $@

.PHONY: data
data: $(DATA_CSV) ## generate the synthetic data set (DATA_CSV) unless it exists

.PHONY: demo
demo: $(STAMP) ## the whole service on this machine: data, model, web, worker, a replay, the proof
	$(BIN)/python -m fraudsvc.demo $(DEMO_ARGS)

.PHONY: train
train: $(DATA_CSV) ## generate data if missing, train, evaluate, register and promote in MLflow
	$(BIN)/fraudsvc train --data $(DATA_CSV)

.PHONY: test
test: lint typecheck pytest ## everything CI runs: ruff, mypy, pytest

.PHONY: lint
lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check fraudsvc tests
	$(BIN)/ruff format --check fraudsvc tests

.PHONY: typecheck
typecheck: $(STAMP) ## mypy (strict)
	$(BIN)/mypy

.PHONY: pytest
pytest: $(STAMP) ## the test suite (real PostgreSQL, Redis and a temporary MLflow store)
	$(BIN)/pytest

.PHONY: format
format: $(STAMP) ## rewrite the code with ruff's formatter and safe fixes
	$(BIN)/ruff check --fix fraudsvc tests
	$(BIN)/ruff format fraudsvc tests

.PHONY: bench
bench: $(STAMP) ## benchmarks; writes data/reports/bench.{json,md}
	$(BIN)/python -m tests.bench

.PHONY: drills
drills: $(STAMP) ## fault drills at 300 req/s (Redis restart, worker/web SIGKILL, PostgreSQL restart/hang)
	$(BIN)/python -m tests.drills

.PHONY: fuzz
fuzz: $(STAMP) ## long schemathesis run against the API's own schema (make test runs a short one)
	FRAUDSVC_FUZZ_EXAMPLES=$${FRAUDSVC_FUZZ_EXAMPLES:-500} $(BIN)/pytest tests/fuzz -p no:logging

.PHONY: rules
rules: $(STAMP) ## regenerate deploy/base/prometheusrule.yaml from observability/prometheus/alerts.yml
	$(BIN)/python deploy/prometheusrule.py

.PHONY: clean
clean: ## remove the environments and caches (keeps data/)
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .hypothesis

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'
