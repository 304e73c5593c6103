# Two commands: `make run` serves on the embedded SQLite database; `make test` runs every check.
# Nothing but Python 3.11+ and make is needed: the first run creates .venv and installs the locked dependencies.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV ?= $(BIN)/uv
# Tools that cannot share the app's venv (requirements-tools.in says why): the generated-client test runs them.
TOOLS := .venv-tools
HOST ?= 127.0.0.1
PORT ?= 8000
# The browser tests drive Debian's Chromium (tests/clinical/test_report_browser.py); `make test` installs it if missing.
CHROMIUM := /usr/bin/chromium
# R's haven reads the SPSS and Stata exports back in tests/research/test_missing.py; `make test` installs it if missing.
R_HAVEN := /usr/lib/R/site-library/haven/DESCRIPTION
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck pytest tools migrate lock clean help bench bench-smoke

help:
	@echo "make run   - set up, migrate the SQLite database, serve on http://$(HOST):$(PORT)"
	@echo "make test  - set up, then ruff, mypy, import-linter, alembic check and the test suite"
	@echo "make bench - the benchmark against a bare reference app, on SQLite and a throwaway PostgreSQL"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.installed: $(BIN)/uv requirements.lock pyproject.toml
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

$(TOOLS)/.installed: requirements-tools.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) venv --quiet --allow-existing --python $(PYTHON) $(TOOLS)
	UV_PYTHON_DOWNLOADS=never $(UV) pip install --quiet --python $(TOOLS)/bin/python -r requirements-tools.lock
	touch $@

tools: $(TOOLS)/.installed

migrate: $(VENV)/.installed
	$(BIN)/python -m app migrate

run: migrate
	$(BIN)/uvicorn app.asgi:app --host $(HOST) --port $(PORT) --no-access-log

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy
	$(BIN)/lint-imports

$(CHROMIUM):
	@echo "== installing Debian's chromium for the browser tests"
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null

$(R_HAVEN):
	@echo "== installing Debian's R and haven for the export read-back tests"
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends r-base-core r-cran-haven >/dev/null

pytest: $(VENV)/.installed $(CHROMIUM) $(R_HAVEN) $(TOOLS)/.installed
	$(BIN)/python -m pytest --cov --cov-report=term $(PYTEST_ARGS)
	$(BIN)/coverage report --include='app/scoring/*' --fail-under=100

test: lint typecheck pytest

bench: $(VENV)/.installed
	scripts/with-postgres.sh $(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(VENV)/.installed
	$(BIN)/python -m bench.run --smoke --output var/bench-smoke.json

lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --group dev --python-version 3.11 --universal --quiet -o requirements.lock
	$(BIN)/uv pip compile requirements-tools.in --python-version 3.11 --universal --quiet -o requirements-tools.lock

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .coverage htmlcov
