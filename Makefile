# Chairside: `make run` serves the demo center, `make test` runs lint, types, import contracts,
# the OpenAPI linters and the suite.
#
# Installs come from uv.lock, exactly: uv checks that the lock still matches pyproject.toml (it
# stops with an error when it does not, rather than resolving again) and writes the locked
# packages out with their hashes; pip installs those, so the machine's pip configuration
# (index, mirrors, find-links, certificates) applies. After changing dependencies in
# pyproject.toml, run `make lock` and commit uv.lock with it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_VERSION := 26.3
UV_VERSION := 0.13.9
TOOLS := $(VENV)/.tools-pip-$(PIP_VERSION)-uv-$(UV_VERSION)
UV := UV_PYTHON=$(BIN)/python UV_PYTHON_DOWNLOADS=never $(BIN)/uv
LOCKED := $(VENV)/requirements.lock.txt

.PHONY: run test lint typecheck contracts openapi-lint pytest bench lock clean
# One step at a time, even under -j: `make test` runs lint, typecheck, contracts, openapi-lint,
# pytest in order.
.NOTPARALLEL:

$(TOOLS):
	@$(PYTHON) -c 'import sys; sys.exit("Chairside needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION) uv==$(UV_VERSION)
	@touch $@

$(STAMP): pyproject.toml uv.lock $(TOOLS)
	$(UV) export --no-config --locked --offline --quiet --extra dev --no-emit-project \
	    --format requirements.txt --output-file $(LOCKED) \
	  || { echo 'uv.lock is out of date with pyproject.toml: run `make lock` and commit uv.lock' >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --only-binary :all: -r $(LOCKED)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $@

# Re-resolve uv.lock after a change to pyproject.toml (packages already locked keep their
# versions; `$(BIN)/uv lock --upgrade-package NAME` moves one on).
lock: $(TOOLS)
	$(UV) lock --system-certs

run: $(STAMP)
	$(BIN)/chairside migrate
	$(BIN)/chairside demo --if-empty
	$(BIN)/chairside serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy app core patients scheduling insurance pharmacy migrations bench tests

contracts: $(STAMP)
	$(BIN)/lint-imports

# Redocly's and Spectral's OpenAPI rules on /openapi.json, written out without a server. The
# linters are npm packages, pinned in tools/openapi-lint's lock, installed (`npm ci`, with no
# install scripts) only when that lock changes.
OPENAPI_LINT := tools/openapi-lint
OPENAPI_LINT_STAMP := $(OPENAPI_LINT)/node_modules/.installed
OPENAPI_SPEC := var/openapi.json
OPENAPI_ENV := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

$(OPENAPI_LINT_STAMP): $(OPENAPI_LINT)/package.json $(OPENAPI_LINT)/package-lock.json
	cd $(OPENAPI_LINT) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

openapi-lint: $(STAMP) $(OPENAPI_LINT_STAMP)
	$(BIN)/chairside openapi --out $(OPENAPI_SPEC)
	$(OPENAPI_ENV) $(OPENAPI_LINT)/node_modules/.bin/redocly lint --config redocly.yaml \
	    --format stylish $(OPENAPI_SPEC)
	$(OPENAPI_LINT)/node_modules/.bin/spectral lint --ruleset .spectral.yaml \
	    --fail-severity=warn $(OPENAPI_SPEC)

# Two workers (pytest-xdist), each test file whole on one: the module-scoped servers and
# databases start once, and a worker's waits on servers, schedulers and browsers overlap the
# other's work. `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=20

test: lint typecheck contracts openapi-lint pytest

# Each prints its figures next to a floor measured in the same run, and its goals met or not.
bench: $(STAMP)
	$(BIN)/python -m bench.booking
	$(BIN)/python -m bench.booking --db postgresql --workers 2 --scheduler
	$(BIN)/python -m bench.statements
	$(BIN)/python -m bench.courses
	$(BIN)/python -m bench.sweep
	$(BIN)/python -m bench.autobook
	$(BIN)/python -m bench.night
	$(BIN)/python -m bench.portal
	$(BIN)/python -m bench.board
	$(BIN)/python -m bench.vials
	$(BIN)/python -m bench.demand
	$(BIN)/python -m bench.optimiser

clean:
	rm -rf $(VENV) var build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis \
	    .schemathesis .import_linter_cache $(OPENAPI_LINT)/node_modules
