"""Keep-warm: while students are connected, their tutor's voice and knowledge model get a tiny
request whenever nothing else used them for an interval; nobody connected, nothing is sent, and
nothing while the only student is still hearing a reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask, until
from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.webrtc_client import LiveClient
from orchestrator.triton_client import TritonClient
from orchestrator.tutors import Voice
from orchestrator.warmth import KeepWarm, WarmRequest
from tests.support.lips import speaking
from tests.support.metrics import scrape
from triton_ops.contracts import TTS

pytestmark = pytest.mark.serving

INTERVAL_S = 0.3


def warmed(engine: EngineProcess) -> dict[str, float]:
    return {
        dict(labels)["model"]: value
        for (name, labels), value in scrape(f"{engine.base_url}/metrics").items()
        if name == "tutor_engine_keep_warm_requests_total"
    }


@pytest.fixture(scope="module")
def warm_engine(
    triton: TritonProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    process = EngineProcess(
        Path(tmp_path_factory.mktemp("warm-engine")),
        env={"ENGINE_TRITON_URL": triton.grpc_url, "ENGINE_KEEP_WARM_S": str(INTERVAL_S)},
    ).start()
    while not process.health().json()["knowledge_ready"]:
        time.sleep(0.2)
    yield process
    process.stop()


async def test_a_connected_students_models_are_kept_warm_and_only_then(
    warm_engine: EngineProcess,
) -> None:
    session = warm_engine.create_session(tutor_id=1, student_id=7)  # English, knowledge base
    await asyncio.sleep(4 * INTERVAL_S)
    assert warmed(warm_engine) == {}  # a session alone, nobody connected: nothing sent

    url = warm_engine.ws_url("user_7", session["engine_token"])
    async with connect(url) as ws:
        await asyncio.sleep(10 * INTERVAL_S)
        during = warmed(warm_engine)
        assert ws.state.name == "OPEN"
    assert 5 <= during.get("tts", 0) <= 11, during
    assert 5 <= during.get("embed", 0) <= 11, during
    assert set(during) == {"tts", "embed"}  # not the Mandarin voice nobody uses, nor the rest

    await asyncio.sleep(2 * INTERVAL_S)  # a request under way when the socket closed lands
    after = warmed(warm_engine)
    await asyncio.sleep(5 * INTERVAL_S)
    assert warmed(warm_engine) == after


async def test_nothing_is_kept_warm_for_a_student_hearing_a_reply_until_it_nears_its_end(
    warm_engine: EngineProcess,
) -> None:
    session = warm_engine.create_session(tutor_id=1, student_id=8)
    url = warm_engine.ws_url("user_8", session["engine_token"])
    async with connect(url, max_size=None) as ws:
        client = LiveClient()
        await client.connect(ws, 8, avatar_id="avatar_tutor_13")
        try:
            await until(lambda: len(client.video) > 10, 10, "streaming video")
            sent = time.monotonic()
            await ask(
                ws,
                type="text_webrtc",
                content="What is a planet?",  # 11 s of speech, spoken by Triton within 2 s
                user_id=8,
                engine_session_id=session["session_id"],
            )
            await until(lambda: speaking(client, sent), 10, "speaking")
            await asyncio.sleep(2.0)
            before = warmed(warm_engine)
            await asyncio.sleep(5.0)
            assert warmed(warm_engine) == before  # 14 of each, were it kept warm
            assert client.audio[-1].value > 0.01 or speaking(client, time.monotonic() - 0.5)

            await until(
                lambda: client.audio[-1].arrived - speaking(client, sent)[-1].arrived > 0.5,
                20,
                "done speaking",
            )
            await asyncio.sleep(3 * INTERVAL_S)
            after = warmed(warm_engine)
            assert after.get("tts", 0) > before.get("tts", 0), (before, after)
            assert after.get("embed", 0) > before.get("embed", 0), (before, after)
        finally:
            await client.close()


async def test_a_model_in_use_is_not_sent_anything_extra(triton: TritonProcess) -> None:
    client = TritonClient(triton.grpc_url, request_timeout_s=30)
    voice = WarmRequest.voice(Voice(model=TTS.name, language="en"))
    keeper = KeepWarm(client, INTERVAL_S, lambda: [voice, voice])
    try:
        assert await keeper.once() == ["tts"]  # never used: due, and asked once
        assert await keeper.once() == []  # it just answered
        await asyncio.sleep(INTERVAL_S / 2)
        await client.infer(voice.contract, voice.inputs)  # a real request, as a reply's
        await asyncio.sleep(INTERVAL_S / 2 + 0.05)
        assert await keeper.once() == []  # used within the interval
        await asyncio.sleep(INTERVAL_S)
        assert await keeper.once() == ["tts"]
    finally:
        await client.close()
