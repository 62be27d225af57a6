# Two commands on a fresh machine: `make run` and `make test`. Everything they need is
# installed here, into .venv, from the package registry.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: run test dev lint chaos bench coverage clean home

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Dagster reads only $DAGSTER_HOME/dagster.yaml: install ours there when missing or older.
home:
	@mkdir -p "$(DAGSTER_HOME)"
	@if [ ! -f "$(DAGSTER_HOME)/dagster.yaml" ] || [ dagster.yaml -nt "$(DAGSTER_HOME)/dagster.yaml" ]; then \
		cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"; echo "installed dagster.yaml into $(DAGSTER_HOME)"; fi

run: $(STAMP) home
	$(BIN)/social-pipelines demo

test: $(STAMP) home
	$(BIN)/ruff check social_pipelines social_pipelines_tests bench
	$(BIN)/python -m pytest -q

chaos: $(STAMP) home
	SOCIAL_CHAOS_LONG=1 $(BIN)/python -m pytest -q -m chaos -p no:cacheprovider

bench: $(STAMP) home
	$(BIN)/python bench/client_overhead.py
	$(BIN)/python bench/rate_limit_utilization.py

coverage: $(STAMP) home
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage report

lint: $(STAMP)
	$(BIN)/ruff check social_pipelines social_pipelines_tests bench
	$(BIN)/ruff format --check social_pipelines social_pipelines_tests bench

# The UI and the daemon (schedules, sensors, queued runs), both on loopback.
dev: $(STAMP) home
	$(BIN)/social-pipelines dev --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
