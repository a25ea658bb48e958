"""Peers end when they should — socket close, idle timeout, shutdown — and leave nothing behind."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.webrtc_client import LiveClient

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def short_lived(
    triton: TritonProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    """User peers idle out after 2 s without a socket."""
    engine = EngineProcess(
        tmp_path_factory.mktemp("peers"),
        env={
            "ENGINE_TRITON_URL": triton.grpc_url,
            "ENGINE_WEBRTC_IDLE_TIMEOUT_S": "2",
            "ENGINE_WEBRTC_SWEEP_INTERVAL_S": "0.5",
        },
    ).start()
    yield engine
    engine.stop()


def metric(engine: EngineProcess, name: str) -> float:
    text = httpx.get(f"{engine.base_url}/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def peers(engine: EngineProcess) -> int:
    count: int = engine.health().json()["webrtc_peers"]
    return count


async def wait_until(condition, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.1)
    return bool(condition())


async def open_and_close_a_session_peer(engine: EngineProcess, student: int) -> None:
    session = engine.create_session(student_id=student)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        client = LiveClient()
        await client.connect(ws, student)
        assert await wait_until(lambda: len(client.video) > 2, 10)
        await client.close()


async def test_fifty_peers_come_and_go_without_leaking(short_lived: EngineProcess) -> None:
    await open_and_close_a_session_peer(short_lived, 800)  # warm-up: first-use allocations
    await asyncio.sleep(1)
    tasks_before = metric(short_lived, "tutor_engine_asyncio_tasks")
    memory_before = metric(short_lived, "process_resident_memory_bytes")
    for n in range(50):
        await open_and_close_a_session_peer(short_lived, 801 + n)
    assert await wait_until(
        lambda: peers(short_lived) == 0, 10
    )  # a session socket's peer dies with it
    await asyncio.sleep(2)
    tasks_after = metric(short_lived, "tutor_engine_asyncio_tasks")
    memory_after = metric(short_lived, "process_resident_memory_bytes")
    assert tasks_after <= tasks_before + 3, (tasks_before, tasks_after)
    assert memory_after - memory_before < 80 * 2**20, (memory_before, memory_after)


async def test_a_user_peer_outlives_its_socket_until_the_idle_timeout(
    short_lived: EngineProcess,
) -> None:
    session = short_lived.create_session(student_id=900)
    async with connect(short_lived.ws_url("user_900", session["engine_token"])) as ws:
        client = LiveClient()
        await client.connect(ws, 900)
        assert await wait_until(lambda: len(client.video) > 2, 10)
    assert peers(short_lived) == 1  # the user may reconnect and keep it
    started = time.monotonic()
    assert await wait_until(lambda: peers(short_lived) == 0, 10)
    assert time.monotonic() - started > 1.0
    await client.close()


async def test_shutdown_closes_every_peer(triton: TritonProcess, tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path, env={"ENGINE_TRITON_URL": triton.grpc_url}).start()
    session = engine.create_session(student_id=901)
    async with connect(engine.ws_url("user_901", session["engine_token"])) as ws:
        client = LiveClient()
        await client.connect(ws, 901)
        assert await wait_until(lambda: len(client.video) > 2, 10)
        assert peers(engine) == 1
        await asyncio.to_thread(engine.stop)
    assert engine.stopped_cleanly()
    assert '"msg": "peer closed"' in engine.log.read_text()
    await client.close()
