# Cephalopod's task runner. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=

.PHONY: help run test install install-test lint format bench-crawl bench-stats clean

help:  ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python  ## Install the service into .venv
	$(BIN)/pip install --quiet .
	$(BIN)/pip check

install-test: $(BIN)/python  ## Install the service (editable) and the test tools into .venv
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip check

run: install  ## Install and run the service on the embedded default (SQLite, in-process scheduler)
	$(BIN)/cephalopod geoip update || echo "Geolocation data unavailable: locations stay unknown until 'cephalopod geoip update' succeeds."
	$(BIN)/cephalopod run --host $(HOST) --port $(PORT)

test: install-test lint  ## Install and run the whole test suite (SQLite, PostgreSQL, Redis, Celery, browser-free)
	$(BIN)/pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

lint: $(BIN)/python  ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:  ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-crawl: install-test  ## Crawl benchmark (NUM=10000)
	$(BIN)/python -m benchmarks crawl --num $${NUM:-10000}

bench-stats: install-test  ## Statistics benchmark (NUM=100000)
	$(BIN)/python -m benchmarks stats --num $${NUM:-100000}

clean:  ## Remove the virtualenv and caches (not the instance folder)
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
