# The front door. Every target bootstraps its own virtual environment on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test test-noida lint fmt typecheck schemas migrate clean \
        bench-compliance bench-planner bench-intake bench-visits bench-followup bench-scale

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

## make run: the whole system with embedded defaults and a demo portfolio (Ctrl-C stops it)
run: install
	$(PY) -m deploy.devstack

## make test: formatting, lint, types, then every test (unit, integration, end to end)
test: install lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## make test-noida: the integration suite against noida-db (idempotent producer, disk persistence)
test-noida: install
	$(PY) -m deploy.noida -- $(PY) -m pytest tests/integration -m "not multi_member" $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make schemas: regenerate the checked-in JSON Schemas (refuses breaking changes)
schemas: install
	$(PY) -m shared.events.schemas

migrate: install
	for s in intake planner visits followup; do $(PY) -m services.$$s migrate; done

bench-compliance: install
	$(PY) tests/benchmarks/bench_compliance.py

bench-planner: install
	$(PY) tests/benchmarks/bench_planner.py

bench-intake: install
	$(PY) tests/benchmarks/bench_intake.py

bench-visits: install
	$(PY) tests/benchmarks/bench_visits.py

bench-followup: install
	$(PY) tests/benchmarks/bench_followup.py

bench-scale: install
	$(PY) tests/benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) $(TOOLS) .devstack .pytest_cache .ruff_cache .mypy_cache
