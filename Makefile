# The two commands a newcomer needs: `make run` and `make test`.
# Both create the virtualenv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint format typecheck bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/driftdesk serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict clients/python/driftdesk_client
	$(BIN)/python tools/check_imports.py  # the dependency rule of docs/architecture.md

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/drift_speed.py
	$(BIN)/python bench/drift_quality.py
	$(BIN)/python bench/queue_throughput.py
	$(BIN)/python bench/ui_queue.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/client_log.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
