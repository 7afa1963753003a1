# The README's commands. Everything runs from a project-local virtualenv (.venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The peer of the front-door comparison (FastAPI + RQ) lives in its own virtualenv only.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=
# pytest-xdist worker processes of `make test` (0: one process). Most tests wait on Redis,
# subprocesses or leases rather than compute, so two halve the wall time on two cores.
# A file's tests stay together, in order, on one worker (its module fixtures start once).
TEST_WORKERS ?= 2
PYTEST_WORKERS := -n $(TEST_WORKERS) --dist loadfile

.PHONY: demo test lint format bench chaos busy-suite samples image-check clean

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

# As root on Debian/Ubuntu, apt-get first installs what the suites need and is missing
# (redis-server, nginx, prometheus, chromium and the like: .ci/system-deps). Otherwise the
# suites that need a missing tool skip, and the run's last line names them and the fix
# (without redis-server, which every suite needs, the run stops with exit status 1).
test: $(STAMP)  ## the whole suite, against private redis-server processes
	@.ci/system-deps --best-effort
	$(BIN)/pytest $(PYTEST_WORKERS)

lint: $(STAMP)  ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) $(BENCH_STAMP)  ## render benchmark, then AgentLink vs FastAPI + RQ (~10-13 min; BENCH_ARGS=--quick ~7)
	@.ci/system-deps --best-effort --bench
	$(BIN)/python -m bench.render
	$(BENCH_VENV)/bin/python -m bench.frontdoor $(BENCH_ARGS)

samples: $(STAMP)  ## render both reports for three suburbs into samples/, with a PNG of every page
	$(BIN)/python -m agentlink.reports.samples --out samples

chaos: $(STAMP)  ## kill -9 workers and Redis under load, count lost and duplicated jobs
	$(BIN)/python -m bench.chaos

busy-suite: $(STAMP)  ## the whole suite 3 times while CPU hogs keep every core busy (~25 min)
	$(BIN)/python -m bench.busy_suite --runs 3 -- $(PYTEST_WORKERS)

image-check:  ## ops/Dockerfile's install steps in a fresh venv, then imports and a render (~30 s, PyPI)
	$(PYTHON) ops/image_check.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache reports samples
