# harness-operator. Every target installs what it needs (idempotently) into caches
# outside the work tree, keyed by version: see docs/development.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

HARNESS_CACHE ?= $(HOME)/.cache/harness-operator
export HARNESS_CACHE
CACHE := $(HARNESS_CACHE)
UV_VERSION := 0.13.8
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON ?= python3.11
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_CACHE_DIR ?= $(CACHE)/uv-cache

.PHONY: help docs venv build requirements dist cluster cluster-down cluster-status test test-unit test-integration lint fmt crds crds-check demo bench clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --quiet
	@touch $@

venv: $(VENV)/.synced ## create the virtualenv from uv.lock

build: ## build or fetch the local cluster's binaries (cached by version)
	@bash cluster/build.sh all

cluster: venv ## start the local cluster if not running; last line: export KUBECONFIG=...
	@$(PY) cluster/localcluster.py up

cluster-down: ## stop everything `make cluster` started
	@$(PY) cluster/localcluster.py down

cluster-status: ## show the running cluster's endpoints
	@$(PY) cluster/localcluster.py status

test: venv build ## the whole suite: unit + integration on the local cluster (starts/stops it)
	@$(VENV)/bin/pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing" >&2; exit 1; fi; exit $$rc

test-unit: venv ## unit tests only (no cluster)
	@$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing" >&2; exit 1; fi; exit $$rc

lint: venv ## ruff and mypy --strict
	$(VENV)/bin/ruff check operator tests cluster bench scripts examples
	$(VENV)/bin/ruff format --check operator tests cluster bench scripts examples
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict --python-version 3.11 examples/harness-app/src

fmt: venv ## format and autofix
	$(VENV)/bin/ruff format operator tests cluster bench scripts examples
	$(VENV)/bin/ruff check --fix operator tests cluster bench scripts examples

docs: crds ## same as crds (docs/api.md is generated with the CRD)

requirements: venv ## export uv.lock as requirements.lock (the operator image installs it)
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt -q -o requirements.lock

crds: venv ## regenerate crds/, docs/api.md and the chart's values.yaml/values.schema.json from the pydantic models
	$(PY) -m harness_operator.api.crdgen
	$(PY) -m harness_operator.api.docs
	rm -rf charts/harness-operator/files/crds && mkdir -p charts/harness-operator/files/crds
	cp crds/*.yaml charts/harness-operator/files/crds/
	$(PY) scripts/chartschema.py

crds-check: venv ## fail when crds/, docs/api.md or the chart's values schema are stale
	$(PY) -m harness_operator.api.crdgen --check
	$(PY) -m harness_operator.api.docs --check
	$(PY) scripts/chartschema.py --check

demo: venv build ## the operator on the local cluster: a healthy release promoted, a bad one rolled back
	@$(PY) scripts/demo.py

bench: venv build ## benchmarks; each figure printed as NAME: value [unit]
	@$(PY) bench/run.py

dist: venv ## build the operator's wheel and sdist into dist/ (the plugin installs from it)
	rm -rf dist && $(UV) build --quiet --out-dir dist
	@ls dist

clean: ## remove the virtualenv (caches stay; see docs/development.md)
	rm -rf $(VENV)
