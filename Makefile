# The README's commands. Everything runs from a project-local virtualenv (.venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The peer of the front-door comparison (FastAPI + RQ) lives in its own virtualenv only.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=

.PHONY: demo test lint format bench chaos image-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e . fastapi rq 'uvicorn[standard]'
	touch $(BENCH_STAMP)

demo: $(STAMP)  ## run the whole pipeline locally and print where the PDFs are
	$(BIN)/agentlink demo

test: $(STAMP)  ## the whole suite, against private redis-server processes
	$(BIN)/pytest

lint: $(STAMP)  ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) $(BENCH_STAMP)  ## render benchmark, then AgentLink vs FastAPI + RQ (~10 min; BENCH_ARGS=--quick ~7)
	$(BIN)/python -m bench.render
	$(BENCH_VENV)/bin/python -m bench.frontdoor $(BENCH_ARGS)

chaos: $(STAMP)  ## kill -9 workers and Redis under load, count lost and duplicated jobs
	$(BIN)/python -m bench.chaos

image-check:  ## ops/Dockerfile's install steps in a fresh venv, then imports and a render (~30 s, PyPI)
	$(PYTHON) ops/image_check.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache reports
