# Chairside: `make run` serves the demo center, `make test` runs lint, types and the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Chairside needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/chairside migrate
	$(BIN)/chairside demo --if-empty
	$(BIN)/chairside serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy app scheduling insurance migrations bench

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/booking.py
	$(BIN)/python bench/courses.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/autobook.py
	$(BIN)/python bench/portal.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
