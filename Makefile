# Set-up commands for a fresh machine: each target creates .venv if missing and installs through
# constraints.txt (the versions this project is tested with; torch==2.13.0 is the CPU build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt

.PHONY: demo test lint bench bench-full clean install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,data]"

demo: install
	$(BIN)/python -m convseq_neo demo

test: install-test
	$(BIN)/ruff check .
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check .

bench: install-test
	CONVSEQ_DATA_DIR=$${CONVSEQ_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info
