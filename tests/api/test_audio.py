"""`audio` messages end to end: speech in every browser format → transcription → spoken reply."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask, receive, send
from benchmarks.harness.processes import EngineProcess
from benchmarks.harness.scoring import wer
from benchmarks.harness.speech import (
    CONTAINERS,
    encode,
    espeak_speech,
    piper_speech,
    silence,
    with_noise,
)
from media.audio import to_int16

pytestmark = pytest.mark.serving

QUESTION = "Why do plants need sunlight?"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("container", sorted(CONTAINERS))
async def test_speech_in_each_format_is_heard_and_answered(
    engine: EngineProcess, container: str
) -> None:
    session = engine.create_session(student_id=300)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        heard = await ask(ws, type="audio", data=b64(encode(piper_speech(QUESTION), container)))
        reply = await receive(ws)
    assert heard["type"] == "transcription" and heard["role"] == "user", heard
    assert wer(QUESTION, heard["content"]) <= 0.2, heard
    assert heard["engine_session_id"] == session["session_id"]
    assert reply["type"] == "text" and reply["audio"]
    assert "photosynthesis" in reply["content"].lower()  # the reply answers what was heard


async def test_raw_pcm_with_its_sample_rate(engine: EngineProcess) -> None:
    pcm, rate = piper_speech(QUESTION)
    session = engine.create_session(student_id=301)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        raw = to_int16(pcm).astype("<i2").tobytes()
        heard = await ask(ws, type="audio", data=b64(raw), format="pcm_s16le", sample_rate=rate)
        await receive(ws)
    assert heard["type"] == "transcription" and wer(QUESTION, heard["content"]) <= 0.2


async def test_another_voice_and_noise_are_heard(engine: EngineProcess) -> None:
    sentence = "What is the boiling point of water?"
    session = engine.create_session(student_id=302)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        for audio in (
            espeak_speech(sentence, "en-gb"),
            with_noise(piper_speech(sentence), snr_db=15),
        ):
            heard = await ask(ws, type="audio", data=b64(encode(audio, "webm")))
            await receive(ws)
            assert heard["type"] == "transcription" and wer(sentence, heard["content"]) <= 0.3, (
                heard
            )


async def test_bad_audio_gets_clear_errors_and_the_session_lives_on(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=303)
    cases = [
        ("not base64 at all!", "invalid_audio", "base64"),
        (b64(b"definitely not an audio file" * 10), "invalid_audio", "could not decode"),
        (b64(encode(silence(2.0, 16000), "wav")), "no_speech", "silent"),
        (
            b64(encode(silence(31.0, 16000), "webm")),
            "invalid_audio",
            "longer than the limit of 30 s",
        ),
        (b64(b"\x00" * (9 * 1024 * 1024)), "audio_too_large", "limit"),
    ]
    async with connect(
        engine.ws_url(session["session_id"], session["engine_token"]), max_size=None
    ) as ws:
        for data, code, words in cases:
            reply = await ask(ws, type="audio", data=data)
            assert (
                reply["type"] == "error" and reply["code"] == code and words in reply["content"]
            ), reply
        raw = await ask(ws, type="audio", data=b64(b"\x01\x02\x03"), format="pcm_s16le")
        assert raw["code"] == "invalid_audio" and "sample_rate" in raw["content"]
        heard = await ask(ws, type="audio", data=b64(encode(piper_speech("Hello again."), "ogg")))
        assert heard["type"] == "transcription"
        assert (await receive(ws))["type"] == "text"
    state = httpx.get(f"{engine.base_url}/v1/sessions/{session['session_id']}").json()
    assert state["turns"] == 1  # failed utterances leave no trace in the history


async def test_two_users_speaking_at_once_get_their_own_transcripts(engine: EngineProcess) -> None:
    lines = {"user_310": "Why does ice float on water?", "user_311": "What makes a volcano erupt?"}
    topics = {"user_310": "ice", "user_311": "magma"}

    async def speak(user: str, line: str) -> tuple[dict[str, object], dict[str, object]]:
        session = engine.create_session(student_id=int(user.removeprefix("user_")))
        async with connect(engine.ws_url(user, session["engine_token"])) as ws:
            data = b64(encode(piper_speech(line), "webm"))
            await send(ws, type="audio", data=data, engine_session_id=session["session_id"])
            return await receive(ws), await receive(ws)

    results = await asyncio.gather(*(speak(user, line) for user, line in lines.items()))
    for (heard, reply), (user, line) in zip(results, lines.items(), strict=True):
        assert heard["type"] == "transcription" and wer(line, str(heard["content"])) <= 0.2, heard
        assert reply["type"] == "text" and topics[user] in str(reply["content"]).lower(), reply
