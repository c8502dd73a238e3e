# swapcam: `make live` sets up and runs the live swap; `make test` sets up and runs the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# onnxruntime flavour: cpu or gpu (exactly one is installed; they overwrite each other).
ORT ?= cpu
# torch 2.13.0 is a local CPU build on the CPU machines; a bare `torch` would pull a CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(ORT)
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install live test test-fast bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(ORT),train,eval,dev]"
	touch $(STAMP)

install: $(STAMP)

live: install
	$(BIN)/python run_live.py $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/swapcam bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
