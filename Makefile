# Set-up commands for a fresh machine: each target creates .venv if missing and installs through
# constraints.txt (the versions this project is tested with; torch==2.13.0 is the CPU build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt

.PHONY: demo test lint bench bench-full clean install install-test install-bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,data]"

install-bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,data,bench]"

demo: install
	$(BIN)/python -m convseq_neo demo

# The whole suite and the notebooks; the 25 slowest steps are listed at the end. With CI set (as .ci/run
# does), a test or notebook that needs the CA1 files fails when they are missing instead of skipping.
test: install-test
	$(BIN)/ruff check .
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python -m pytest --durations=25

lint: install-test
	$(BIN)/ruff check .

# The quick set (about 17 min on 2 cores, bench_sensitivity's quick part included) and the full study (hours);
# both write JSON and PNG under benchmarks/results/.
bench: install-bench
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python benchmarks/run_all.py --quick

bench-full: install-bench
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python benchmarks/run_all.py --full

clean:
	rm -rf $(VENV) build *.egg-info
