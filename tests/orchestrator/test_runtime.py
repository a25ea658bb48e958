"""How the settings assemble the engine's long-lived parts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from orchestrator.runtime import stop_all, triton_supervisor
from orchestrator.settings import Settings


async def test_the_embedded_triton_runs_the_binary_the_operator_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "opt" / "tritonserver" / "bin" / "tritonserver"
    binary.parent.mkdir(parents=True)
    argv = tmp_path / "argv"
    binary.write_text(f'#!/bin/sh\necho "$@" > {argv}\nexit 3\n')
    binary.chmod(0o755)
    monkeypatch.setenv("ENGINE_TRITON_BINARY", str(binary))
    monkeypatch.setenv("ENGINE_DATA_DIR", str(tmp_path / "data"))
    supervisor = triton_supervisor(Settings(_env_file=None))  # type: ignore[call-arg]
    assert supervisor is not None
    supervisor.start()
    try:
        for _ in range(100):
            if argv.exists():
                break
            await asyncio.sleep(0.05)
    finally:
        await supervisor.stop()
    assert "--model-repository=" in argv.read_text()


def test_an_external_triton_starts_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_TRITON_URL", "triton:8001")
    assert triton_supervisor(Settings(_env_file=None)) is None  # type: ignore[call-arg]


async def test_stopping_does_not_wait_forever_on_a_task_that_swallows_its_cancellation() -> None:
    """The engine exits even if a background task (or a library under it) ignores cancel."""
    done = asyncio.Event()

    async def stubborn() -> None:
        while not done.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    tasks = [
        asyncio.create_task(stubborn(), name="stubborn"),
        asyncio.create_task(asyncio.sleep(10), name="polite"),
    ]
    await asyncio.sleep(0)
    started = time.monotonic()
    try:
        assert await stop_all(tasks, timeout_s=0.2) == ["stubborn"]
        assert time.monotonic() - started < 1.0
        assert tasks[1].cancelled()
    finally:
        done.set()
        tasks[0].cancel()
        await asyncio.wait(tasks[:1], timeout=1)
