# Tutor Engine. `make run` starts the engine (Triton included); `make test` runs the tests.
# Both install what is missing first; re-running them when nothing changed is quick.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install models run test lint format clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(INSTALLED)

# Generated model files (ONNX exports, patched voices); only what is missing or stale.
models: $(INSTALLED)
	@$(BIN)/python -m triton.build_models

run: models
	exec $(BIN)/python -m orchestrator

test: models
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: models
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy orchestrator triton
	$(BIN)/mypy --python-executable .venv-build/bin/python triton/whisper/*.py triton/zhtts/*.py

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-build var .pytest_cache .mypy_cache .ruff_cache
	git clean -fdX model_repository
