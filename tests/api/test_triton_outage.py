"""When Triton dies: /health says so, requests get a clear error fast, and service comes back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask
from benchmarks.harness.processes import EngineProcess, TritonProcess

pytestmark = pytest.mark.serving


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not {what} after {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - started


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_embedded_triton_is_restarted_after_it_dies(
    model_files: None, tmp_path: Path
) -> None:
    engine = EngineProcess(tmp_path, env={"ENGINE_TRITON_RESTART_BACKOFF_S": "0.5"}).start()
    try:
        wait_for(lambda: engine.health().json()["knowledge_ready"], 60, "knowledge loaded")
        triton = engine.health().json()["triton"]
        assert triton["mode"] == "embedded" and triton["state"] == "ready"
        session = engine.create_session(student_id=5)
        async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
            assert (await ask(ws, type="text", content="Before the crash?"))["type"] == "text"

            os.kill(triton["pid"], signal.SIGKILL)
            wait_for(lambda: engine.health().status_code == 503, 10, "reported down")

            started = time.monotonic()
            reply = await ask(ws, type="text", content="During the outage?", timeout_s=40)
            if reply["type"] == "error":  # answered while Triton was down
                assert reply["code"] == "speech_unavailable" and reply["retryable"] is True
                assert time.monotonic() - started < 35  # the request timeout, never a hang

            wait_for(lambda: engine.health().status_code == 200, 120, "restarted")
            health = engine.health().json()["triton"]
            assert health["restarts"] == 1 and health["pid"] != triton["pid"]
            reply = await ask(ws, type="text", content="After the restart?")
            assert reply["type"] == "text" and reply["audio"]
    finally:
        engine.stop()
    assert engine.stopped_cleanly()
    new_pid = health["pid"]
    wait_for(lambda: not alive(new_pid), 10, "stopped with the engine")


async def test_an_external_triton_restart_restores_service(
    model_files: None, tmp_path: Path
) -> None:
    triton = TritonProcess(tmp_path / "triton").start()
    engine = EngineProcess(tmp_path / "engine", env={"ENGINE_TRITON_URL": triton.grpc_url}).start()
    try:
        wait_for(lambda: engine.health().json()["knowledge_ready"], 60, "knowledge loaded")
        session = engine.create_session(student_id=6)
        async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
            triton.stop()
            assert engine.health().status_code == 503
            started = time.monotonic()
            reply = await ask(ws, type="text", content="Anyone there?")
            assert reply["type"] == "error" and reply["code"] == "speech_unavailable", reply
            assert reply["retryable"] is True and "unavailable" in reply["content"]
            assert time.monotonic() - started < 10

            triton.start()  # same ports, as a container restart would
            wait_for(lambda: engine.health().status_code == 200, 30, "reconnected")
            reply = await ask(ws, type="text", content="Back again?")
            assert reply["type"] == "text" and reply["audio"]
    finally:
        engine.stop()
        triton.stop()
