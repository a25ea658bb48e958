"""SIGTERM on a lone engine (no Redis): the reply in flight finishes, new sockets are refused
until it is gone, the socket then closes with 1012, and the engine exits cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from benchmarks.harness.cluster import tutors_with_llm
from benchmarks.harness.fake_llm import FakeLLM
from benchmarks.harness.processes import EngineProcess, TritonProcess

pytestmark = pytest.mark.serving


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM(reply="Plants make sugar from light.", delay_s=2.0).start()
    yield server
    server.stop()


async def test_a_lone_engine_drains_on_sigterm(
    triton: TritonProcess, llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("draining")
    engine = EngineProcess(
        workdir,
        env={
            "ENGINE_TRITON_URL": triton.grpc_url,
            "ENGINE_TUTORS_FILE": str(tutors_with_llm(workdir, llm.base_url)),
            "ENGINE_KEEP_WARM_S": "0",
        },
    ).start()
    try:
        session = engine.create_session(tutor_id=41, student_id="drain")
        url = engine.ws_url(session["session_id"], session["engine_token"])
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "text", "content": "A slow question?"}))
            await asyncio.sleep(0.5)  # the tutor is thinking
            assert engine.process is not None
            engine.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            with pytest.raises(InvalidStatus):  # a newcomer: try again later
                await connect(url)
            while (answer := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] in (
                "thinking",
                "listening",
            ):
                pass
            assert answer["type"] == "text" and answer["content"] == llm.reply, answer
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert engine.process.wait(20) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 15
        assert engine.stopped_cleanly()
        assert '"msg": "engine drained"' in engine.log.read_text()
    finally:
        engine.stop()
