# Cephalopod's task runner. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=
# Debian's Chromium drives the browser tier (Playwright cannot download browsers here)
CHROMIUM ?= /usr/bin/chromium

.PHONY: help run test install install-test lint audit format bench-crawl bench-stats bench-web clean

help:  ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python  ## Install the service into .venv
	$(BIN)/pip install --quiet .
	$(BIN)/pip check

install-test: $(BIN)/python $(CHROMIUM)  ## Install the service (editable), the test tools and Chromium
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip check
	@# the bytecode pip writes for an installed package (PYTHONDONTWRITEBYTECODE would
	@# leave every command of the suite compiling the package anew)
	$(BIN)/python -m compileall -q cephalopod

# Only when the file is missing: a fresh CI machine (root) gets Debian's chromium, quietly.
$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests (apt-get install chromium)"
	@{ command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
	  >/dev/null; } || { echo "error: could not install chromium with apt-get (root needed);" \
	  "install Debian's chromium package, or set CHROMIUM=/path/to/it" >&2; exit 1; }
	@test -x $(CHROMIUM) || { echo "error: $(CHROMIUM) still missing after apt-get" >&2; exit 1; }

run: install  ## Install and run the service on the embedded default (SQLite, in-process scheduler)
	$(BIN)/cephalopod geoip update || echo "Geolocation data unavailable: locations stay unknown until 'cephalopod geoip update' succeeds."
	$(BIN)/cephalopod run --host $(HOST) --port $(PORT)

test: install-test lint audit  ## Install and run the whole test suite (SQLite, PostgreSQL, Redis, Celery, browser)
	$(BIN)/pytest -n 2 -p no:cacheprovider --ignore=tests/browser $(PYTEST_ARGS)
	@# the browser tier in a process of its own: Playwright's sync API keeps an event loop
	@# running in its worker, where the crawler tests' asyncio.run() would then refuse to run
	$(BIN)/pytest -n 2 -p no:cacheprovider tests/browser $(PYTEST_ARGS)

lint: $(BIN)/python  ## ruff check + format check + mypy on the package
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

audit: install-test  ## pip-audit of the installed pinned dependencies (skips, saying so, without a vulnerability service)
	$(BIN)/python scripts/audit.py

format:  ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-crawl: install-test  ## Crawl benchmark (NUM=10000)
	$(BIN)/python -m benchmarks crawl --num $${NUM:-10000}

bench-stats: install-test  ## Statistics benchmark (NUM=100000)
	$(BIN)/python -m benchmarks stats --num $${NUM:-100000}

# PG_URL names the PostgreSQL server (and a database to administer it from): the suite
# creates a database of its own there and drops it at the end
bench-web: install-test  ## Web interface benchmark on SQLite, then PostgreSQL (NUM=100000, PG_URL)
	$(BIN)/python -m benchmarks web --num $${NUM:-100000}
	$(BIN)/python -m benchmarks web --num $${NUM:-100000} \
	  --dburl $${PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}

clean:  ## Remove the virtualenv and caches (not the instance folder)
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
