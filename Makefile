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
# The package's static checks (settings in pyproject.toml): basedpyright over
# social_pipelines/ (about 15 s cold) and the import contracts of DESIGN.md's layout
# (under a second; cached graphs would only save that second).
TYPECHECK := $(BIN)/basedpyright
IMPORTCHECK := $(BIN)/lint-imports --no-cache --no-logo pyproject.toml

.PHONY: run test dev lint chaos bench coverage clean home

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Dagster reads only $DAGSTER_HOME/dagster.yaml. Install the embedded one there when there is
# none, and replace a copy of it (first line EMBEDDED_MARK, or EARLIER_MARK from before the
# marker) when it differs; any other file (deploy/dagster.yaml, your own) is never touched.
# A home created here gets Dagster's storage initialised once, before any run: runs started
# at once on an uninitialised SQLite home race to create its tables, and the losers can
# leave it with two Alembic heads, which every command refuses from then on.
EMBEDDED_MARK := social_pipelines: embedded default dagster.yaml
EARLIER_MARK := The embedded default: everything under
home:
	@mkdir -p "$(DAGSTER_HOME)"
	@target="$(DAGSTER_HOME)/dagster.yaml"; \
	if [ ! -e "$$target" ]; then \
		cp dagster.yaml "$$target"; \
		if ! DAGSTER_HOME="$(DAGSTER_HOME)" $(BIN)/dagster instance migrate >/dev/null; then \
			rm -f "$$target"; echo "could not initialise Dagster's storage in $(DAGSTER_HOME)" >&2; exit 1; fi; \
		echo "installed dagster.yaml into $(DAGSTER_HOME) and initialised Dagster's storage"; \
	elif ! head -n 1 "$$target" | grep -qF -e '$(EMBEDDED_MARK)' -e '$(EARLIER_MARK)'; then \
		echo "kept $$target: not the embedded default, never overwritten"; \
	elif ! cmp -s dagster.yaml "$$target"; then \
		cp dagster.yaml "$$target"; echo "updated the embedded dagster.yaml in $(DAGSTER_HOME)"; \
	fi

run: $(STAMP) home
	$(BIN)/social-pipelines demo

# The type checker runs before pytest, not beside it: on 2 cores it saved at most a few
# seconds and slowed the timing-sensitive tests (rate limits, leases, chaos) it would share
# the cores with. Most tests wait on servers, leases and settle times rather than compute,
# so they run in four worker processes (pytest-xdist); the chaos tests, which start
# processes of their own, run on one of them one after another (conftest.py), beside the
# rest. Measured on 2 cores: one process 513 s; chaos after the rest 288 s + 274 s.
test: $(STAMP) home
	$(BIN)/ruff check social_pipelines social_pipelines_tests bench
	$(TYPECHECK)
	$(IMPORTCHECK)
	$(BIN)/python -m pytest -q -n 4 --dist loadgroup

chaos: $(STAMP) home
	SOCIAL_CHAOS_LONG=1 $(BIN)/python -m pytest -q -s -ra -m chaos -p no:cacheprovider

bench: $(STAMP) home
	$(BIN)/python bench/client_overhead.py
	$(BIN)/python bench/rate_limit_utilization.py
	$(BIN)/python bench/publish_latency.py
	$(BIN)/python bench/publish_throughput.py
	$(BIN)/python bench/outbox_scale.py

coverage: $(STAMP) home
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage report

lint: $(STAMP)
	$(BIN)/ruff check social_pipelines social_pipelines_tests bench
	$(BIN)/ruff format --check social_pipelines social_pipelines_tests bench
	$(TYPECHECK)
	$(IMPORTCHECK)

# The UI and the daemon (schedules, sensors, queued runs), both on loopback.
dev: $(STAMP) home
	$(BIN)/social-pipelines dev --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache .grimp_cache *.egg-info
