# Tutor Engine. `make run` starts the engine (Triton included); `make test` runs the tests.
# Both install what is missing first; re-running them when nothing changed is quick.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
INSTALL_SPEC ?= .[dev]

# Debian packages, installed if missing: espeak-ng (voices that are not ours, for training the
# lip-sync network and for tests), chromium (the browser the tests play video and WebRTC in) and
# docker-compose (the tests resolve docker-compose.gpu.yml with it; no Docker engine is needed),
# redis-server and haproxy (the scale-out tests run several engines behind them).
SYSTEM_PACKAGES ?= espeak-ng chromium docker-compose redis-server haproxy

.PHONY: install build-env models perf-inputs system-deps run test check lint lint-build format clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '$(INSTALL_SPEC)'
	@touch $@

install: $(INSTALLED)

# The build-only environment (.venv-build: PyTorch, TensorFlow, the reference runtimes); `models`
# makes it on first use.
build-env: $(INSTALLED)
	@$(BIN)/python -m triton_ops.build_models --environment-only

# Generated model files (ONNX exports, patched voices, the lip-sync network) and the default
# avatars; only what is missing or stale.
models: $(INSTALLED) system-deps
	@$(BIN)/python -m triton_ops.build_models
	@$(BIN)/python -m media.avatar.draw --if-stale

# perf_analyzer's --input-data files, made from real speech and text (benchmarks/README.md)
perf-inputs: $(INSTALLED)
	@$(BIN)/python -m benchmarks.perf_analyzer.make_inputs

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing$$missing (apt)"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

run: models
	exec $(BIN)/python -m orchestrator

# Tests talk to 127.0.0.1 only. Where we may (root, with unshare and ip), they run in a network
# namespace holding nothing but loopback, so no test can reach another address even by mistake.
test: models system-deps
	@if [ "$$(id -u)" = 0 ] && command -v ip >/dev/null && unshare --net true 2>/dev/null; then \
	  echo "tests run in a loopback-only network namespace"; \
	  unshare --net sh -c 'ip link set lo up && exec $(BIN)/python -m pytest $(PYTEST_ARGS)'; \
	else \
	  $(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi

# The fast loop: lint and the tests that need no model files (seconds, nothing built).
check: $(INSTALLED)
	@$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q -m "not serving" $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy orchestrator media triton_ops webrtc benchmarks
	@# every model's entry file is model.py: one mypy run per model folder
	for model in model_repository/*/1; do $(BIN)/mypy $$model/*.py || exit 1; done

# The build scripts, typechecked against the build environment they run in.
lint-build: build-env
	$(BIN)/mypy --python-executable .venv-build/bin/python triton_ops/whisper/*.py triton_ops/zhtts/*.py triton_ops/lipsync/*.py triton_ops/embed/*.py triton_ops/faces/*.py

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-build var .pytest_cache .mypy_cache .ruff_cache
	git clean -fdX model_repository
