# syntax=docker/dockerfile:1
# The engine's images. Every build step is a `make` target, exactly as on a developer machine:
#   runtime: the orchestrator (`make install`), started with the command `make run` execs
#   builder: the one-shot model builder (`make system-deps build-env`); it runs `make models`
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml Makefile README.md ./
COPY orchestrator orchestrator
COPY media media
COPY triton_ops triton_ops
COPY webrtc webrtc
COPY config config
COPY model_repository model_repository
COPY avatars/README.md avatars/
# the runtime needs no test or lint tools
RUN make install INSTALL_SPEC=.

FROM base AS runtime
EXPOSE 9000
CMD [".venv/bin/python", "-m", "orchestrator"]

FROM base AS builder
# espeak-ng voices train the lip-sync network; no browser is needed here. CPU PyTorch wheels.
ENV SYSTEM_PACKAGES=espeak-ng \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY benchmarks benchmarks
RUN make system-deps build-env
CMD ["make", "models", "perf-inputs"]
