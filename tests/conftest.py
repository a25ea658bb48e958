"""Serving tests share one real Triton server and one engine for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.harness.processes import EngineProcess, TritonProcess
from media.avatar import draw
from triton_ops import build_models


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the model files serves them: `make check` leaves it out."""
    for item in items:
        if "model_files" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.serving)


@pytest.fixture(scope="session")
def model_files() -> None:
    """The generated model files Triton needs, and the default avatars (only if missing)."""
    build_models.main([])
    for style in draw.STYLES:
        if not draw.is_current(style, draw.ROOT_AVATARS):
            draw.write_avatar(style, draw.ROOT_AVATARS)


@pytest.fixture(scope="session")
def triton(model_files: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonProcess]:
    server = TritonProcess(tmp_path_factory.mktemp("triton")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def engine(
    triton: TritonProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    """The engine, pointed at the shared Triton (ENGINE_TRITON_URL: the docker-compose shape).
    Keep-warm is off here: its requests would move the counters the batching tests read
    (tests/orchestrator/test_warmth.py runs its own engine)."""
    process = EngineProcess(
        tmp_path_factory.mktemp("engine"),
        env={"ENGINE_TRITON_URL": triton.grpc_url, "ENGINE_KEEP_WARM_S": "0"},
    ).start()
    yield process
    process.stop()
    assert process.stopped_cleanly()
