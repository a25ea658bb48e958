"""The embedded Triton's supervisor against the real binary: a killed server leaves nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from benchmarks.harness.processes import free_port
from triton_ops.repository import REPOSITORY
from triton_ops.server import TritonLaunch, TritonSupervisor, process_group

pytestmark = pytest.mark.serving


def stubs(group: int) -> list[int]:
    """The Python-backend stubs in a process group."""
    found = []
    for pid in process_group(group):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("triton_python"):
            found.append(pid)
    return found


async def test_no_backend_stub_outlives_a_killed_server(model_files: None, tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    repository.mkdir()
    shutil.copy(REPOSITORY / "graph_runners.py", repository)
    shutil.copytree(REPOSITORY / "embed_zh", repository / "embed_zh")  # one Python model
    supervisor = TritonSupervisor(
        TritonLaunch(repository, tmp_path / "triton", free_port(), free_port(), free_port()),
        backoff_s=0.1,
    )
    supervisor.start()
    try:
        for _ in range(3):
            assert await supervisor.wait_ready(120), supervisor.last_error
            server = supervisor.pid
            assert server is not None and stubs(server), "the model runs in a stub"
            os.kill(server, signal.SIGKILL)
            for _ in range(400):  # the supervisor notices, reaps and starts another
                if supervisor.pid not in (None, server):
                    break
                await asyncio.sleep(0.05)
            assert supervisor.restarts >= 1
            assert process_group(server) == [], "the dead server's stubs were reaped"
        assert await supervisor.wait_ready(120)
    finally:
        await supervisor.stop()
    assert process_group(supervisor.pid or 0) == []
