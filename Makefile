# Targets document themselves: `make help` lists every line that starts with "name: ## text".
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: help install run test test-unit lint format typecheck retrain repro bench bench-quick clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@command -v $(PYTHON_BIN) >/dev/null || { echo "needs $(PYTHON_BIN) (Python 3.11) on PATH"; exit 1; }
	test -d $(VENV) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED) ## create .venv and install the project with its dev tools

run: $(INSTALLED) ## start Redis, MLflow and the workers locally; train a first model if none
	$(PY) -m services.stack

test: $(INSTALLED) lint typecheck ## lint, type-check and run every test (unit and integration)
	$(PY) -m pytest

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

repro: $(INSTALLED) ## experimentation mode: the stages in-process (dvc repro); PRICE_CATEGORY_PROMOTE_EXPERIMENT=1 may deploy
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH dvc repro

bench: $(INSTALLED) ## serving benchmarks, medians of 3 runs; writes bench/results.md and .png
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } || { echo "needs wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) -m bench

bench-quick: $(INSTALLED) ## the same, one short run per point (under 5 minutes)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } || { echo "needs wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) -m bench --quick

clean: ## remove caches and processed data (keeps .venv and local state)
	rm -rf .pytest_cache .mypy_cache .ruff_cache data/processed
