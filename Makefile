# The two commands a newcomer needs: `make run` and `make test`.
# Both create the virtualenv on first use and reinstall when pyproject.toml changes.
# `make run` installs what serving needs; `make test`, `make lint` add the dev tools
# (pytest, Playwright, mypy, ruff), `make demo` the demo's scikit-learn.
# uv installs when it is on PATH (much faster); pip otherwise.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV ?= $(shell command -v uv 2>/dev/null)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# the suite runs in parallel (pytest-xdist): at least 3 workers, since many tests wait on
# servers they start; `make test PYTEST_WORKERS=0` runs it in one process
PYTEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(max(3, os.cpu_count() or 1))")
DEPS := pyproject.toml clients/python/pyproject.toml
DEV_EXTRAS := '.[dev,demo]'  # a variable: a comma in $(call ...) would split the argument

.PHONY: run test lint format typecheck bench demo clean

ifneq ($(UV),)
define install
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python $(1)
endef
else
define install
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(1)
endef
endif

# serving: the service and the Python client (`driftdesk status`, `export`, `evaluate`)
$(VENV)/.installed-serve: $(DEPS)
	$(call install,-e . -e clients/python)
	@touch $@

$(VENV)/.installed-demo: $(VENV)/.installed-serve
	$(call install,-e '.[demo]' -e clients/python)
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-serve
	$(call install,-e $(DEV_EXTRAS) -e clients/python)
	@touch $@ $(VENV)/.installed-demo

run: $(VENV)/.installed-serve
	$(BIN)/driftdesk serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict clients/python/driftdesk_client
	$(BIN)/python tools/check_imports.py  # the dependency rule of docs/architecture.md

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/drift_speed.py
	$(BIN)/python bench/drift_quality.py
	$(BIN)/python bench/queue_throughput.py
	$(BIN)/python bench/ui_queue.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/client_log.py

demo: $(VENV)/.installed-demo
	$(BIN)/driftdesk demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
