"""How the settings assemble the engine's long-lived parts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orchestrator.runtime import triton_supervisor
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
