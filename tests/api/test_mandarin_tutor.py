"""The Mandarin tutor: hears Mandarin, answers in Mandarin with the Mandarin voice."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask, receive, wav_info
from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.scoring import char_errors, traditional_characters
from benchmarks.harness.speech import encode
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import TTS_ZH

pytestmark = pytest.mark.serving


async def test_a_mandarin_question_gets_a_mandarin_spoken_reply(engine: EngineProcess) -> None:
    session = engine.create_session(tutor_id=2, student_id=500)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        reply = await ask(ws, type="text", content="什么是光合作用？")
    assert reply["type"] == "text", reply
    assert "光合作用" in reply["content"] and "植物" in reply["content"]  # from its notes
    rate, seconds = wav_info(reply["audio"])
    assert rate == 24000 and seconds > 2


async def test_mandarin_speech_is_transcribed_in_simplified(
    engine: EngineProcess, triton: TritonProcess
) -> None:
    question = "为什么天空是蓝色的？"
    client = TritonClient(triton.grpc_url, request_timeout_s=60)
    speech = await client.infer(TTS_ZH, {"TEXT": np.array([[question.encode()]], dtype=np.object_)})
    await client.close()
    clip = encode((speech["AUDIO"][0], 24000), "webm")
    session = engine.create_session(tutor_id=2, student_id=501)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        heard = await ask(ws, type="audio", data=base64.b64encode(clip).decode())
        reply = await receive(ws)
    assert heard["type"] == "transcription", heard
    errors, chars = char_errors(question, heard["content"])
    assert errors / chars <= 0.3 and not traditional_characters(heard["content"]), heard
    assert reply["type"] == "text" and wav_info(reply["audio"])[0] == 24000
