# Targets document themselves: `make help` lists every line that starts with "name: ## text".
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: help install lock run test test-containers test-unit lint format typecheck retrain repro bench bench-quick bench-explain soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Every package, direct or not, at the version and hashes of the lock; the project itself
# editable on top (built by the locked setuptools, hence no build isolation).
$(INSTALLED): pyproject.toml requirements-dev.lock
	@command -v $(PYTHON_BIN) >/dev/null || { echo "needs $(PYTHON_BIN) (Python 3.11) on PATH"; exit 1; }
	test -d $(VENV) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(INSTALLED) ## create .venv and install the project with its dev tools

# The build backend is locked too: the image and `make install` build the project offline.
LOCK := UV_CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/uv pip compile --quiet --universal \
	--python-version 3.11 --generate-hashes --upgrade
lock: $(INSTALLED) ## re-pin every dependency with its hashes (requirements.lock, requirements-dev.lock)
	echo "setuptools>=68" | $(LOCK) pyproject.toml - -o requirements.lock
	echo "setuptools>=68" | $(LOCK) pyproject.toml - --extra dev -o requirements-dev.lock

run: $(INSTALLED) ## start Redis, MLflow and the workers locally; train a first model if none
	$(PY) -m services.stack

test: $(INSTALLED) lint typecheck ## lint, type-check and run every test (unit, integration, reliability, containers)
	$(PY) -m pytest -m "not containers"
	$(MAKE) --no-print-directory test-containers

# After the rest, alone: building images and training in containers takes both cores, which
# the reliability suite's latency checks must not share.
test-containers: $(INSTALLED) ## the compose stack built offline and run on a real Docker engine
	$(PY) -m pytest -n 0 -m containers tests/containers

test-unit: $(INSTALLED) ## the fast, pure tests only
	$(PY) -m pytest tests/unit

lint: $(INSTALLED) ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(INSTALLED) ## apply ruff's formatting and safe fixes
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

typecheck: $(INSTALLED) ## mypy on shared/ and services/
	$(PY) -m mypy

retrain: $(INSTALLED) ## queue a pipeline run through the running gateway and follow it
	$(VENV)/bin/price-category retrain --wait

dvc.yaml: shared/pipeline.py services/workers/dvc_stages.py ## regenerate dvc.yaml from the pipeline's declaration
	$(PY) -m services.workers.dvc_stages

repro: $(INSTALLED) ## experimentation mode: the stages in-process (dvc repro); PRICE_CATEGORY_PROMOTE_EXPERIMENT=1 may deploy
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH dvc repro

bench: $(INSTALLED) ## serving benchmarks, medians of 3 runs; writes bench/results.md and .png
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } || { echo "needs wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) -m bench

bench-quick: $(INSTALLED) ## the same, one short run per point (under 5 minutes)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } || { echo "needs wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) -m bench --quick

bench-explain: $(INSTALLED) ## a steady client beside 4 explaining ones, with and without admission control
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } || { echo "needs wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) -m bench.explain

soak: $(INSTALLED) ## a month of traffic (3M listings, 100k prices) with faults, checked; writes bench/soak.md
	$(PY) -m bench.soak

clean: ## remove caches and processed data (keeps .venv and local state)
	rm -rf .pytest_cache .mypy_cache .ruff_cache data/processed
