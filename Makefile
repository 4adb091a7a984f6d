# Set-up commands for a fresh machine: each target creates .venv if missing and installs through
# constraints.txt (the versions this project is tested with; torch==2.13.0 is the CPU build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt

.PHONY: demo test lint bench bench-full docs docs-notebooks dist wheel-check clean install install-test install-bench \
	install-docs install-release

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,data]"

install-bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,data,bench]"

install-docs: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,data,docs]"

install-release: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[release]"

demo: install
	$(BIN)/python -m convseq_neo demo

# The whole suite and the notebooks, a file per worker on every core (pytest-xdist, one thread each), the
# slowest files first (conftest.py's SLOWEST_FIRST); the 25 slowest steps are listed at the end. With CI set (as .ci/run does), a test or notebook that needs
# the CA1 files fails when they are missing instead of skipping.
test: install-test
	$(BIN)/ruff check .
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=25

lint: install-test
	$(BIN)/ruff check .

# The quick set (about 17 min on 2 cores, bench_sensitivity's quick part included) and the full study (hours);
# both write JSON and PNG under benchmarks/results/.
bench: install-bench
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python benchmarks/run_all.py --quick

bench-full: install-bench
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python benchmarks/run_all.py --full

# The documentation site (docs/_build/html), warnings treated as errors, then the landing and detect pages loaded in
# headless Chromium (screenshots in docs/_build/html/_screenshots). The notebooks are rendered with the outputs
# committed in notebooks/ (never executed here); `make docs-notebooks` executes them and writes the outputs back.
docs: install-docs
	rm -rf docs/_build docs/generated docs/auto_examples
	$(BIN)/sphinx-build -b html -W --keep-going docs docs/_build/html
	$(BIN)/python docs/check_rendered.py docs/_build/html

docs-notebooks: install-test
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python docs/execute_notebooks.py

# A wheel and an sdist that twine accepts, then the wheel installed (through the constraints) into a fresh
# environment and smoke-tested from outside the source tree.
dist: install-release
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

wheel-check: dist
	rm -rf build/wheel-venv
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/python -m pip install --quiet --upgrade pip
	build/wheel-venv/bin/python -m pip install --quiet -c $(CONSTRAINTS) dist/*.whl
	cd build && wheel-venv/bin/python ../.ci/smoke_test.py

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build docs/generated docs/auto_examples
