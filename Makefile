PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install install-dev run worker test test-fast lint fmt bench contact-sheets migrations

$(BIN)/python:
	$(PY) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -r requirements.txt

install-dev: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -r requirements-dev.txt

run: install
	PORT=$(PORT) $(BIN)/python scripts/run.py

worker: install
	$(BIN)/python manage.py qcluster

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && DEBUG=1 $(BIN)/mypy

fmt: install-dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: install-dev
	$(BIN)/python bench/engine.py && $(BIN)/python bench/formats.py && $(BIN)/python bench/encoder.py && $(BIN)/python bench/web.py && $(BIN)/python bench/batches.py && $(BIN)/python bench/poll_latency.py && $(BIN)/python bench/upstream.py

contact-sheets: install-dev
	$(BIN)/python bench/contact_sheets.py

migrations:
	rm -f generator/migrations/0001_initial.py && $(BIN)/python manage.py makemigrations generator -n initial -v 0
