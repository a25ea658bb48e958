"""Tutors backed by an OpenAI-compatible endpoint, end to end through the engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask
from benchmarks.harness.fake_llm import FakeLLM
from benchmarks.harness.processes import EngineProcess, TritonProcess

pytestmark = pytest.mark.serving

TUTORS = """
[voices.joe]
model = "tts"
language = "en"
{tutors}
"""
TUTOR = """
[[tutors]]
id = {id}
name = "Tutor {id}"
persona = "Persona of tutor {id}."
voice = "joe"
[tutors.llm]
base_url = "{url}"
model = "{model}"
api_key_env = "FAKE_LLM_KEY"
first_token_timeout_s = 1.5
fallback_to_embedded = {fallback}
"""


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM(delay_s=5).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llm_engine(
    triton: TritonProcess, llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    workdir: Path = tmp_path_factory.mktemp("llm-engine")
    tutors = [
        (30, "scripted", "false"),
        (31, "fail-500", "false"),
        (32, "fail-500", "true"),
        (33, "slow", "false"),
    ]
    body = "".join(TUTOR.format(id=i, url=llm.base_url, model=m, fallback=f) for i, m, f in tutors)
    (workdir / "tutors.toml").write_text(TUTORS.format(tutors=body))
    engine = EngineProcess(
        workdir,
        env={
            "ENGINE_TRITON_URL": triton.grpc_url,
            "ENGINE_TUTORS_FILE": str(workdir / "tutors.toml"),
            "FAKE_LLM_KEY": "sk-from-env",
        },
    ).start()
    yield engine
    engine.stop()


async def test_the_llm_reply_is_spoken_and_the_history_goes_back(
    llm_engine: EngineProcess, llm: FakeLLM
) -> None:
    session = llm_engine.create_session(tutor_id=30, student_id=9)
    async with connect(llm_engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        first = await ask(ws, type="text", content="How do plants eat?")
        second = await ask(ws, type="text", content="And at night?")
    assert first["type"] == "text" and first["content"] == llm.reply and first["audio"]
    assert second["type"] == "text"
    sent = llm.requests[-1]
    assert sent["headers"]["authorization"] == "Bearer sk-from-env"
    contents = [m["content"] for m in sent["body"]["messages"]]
    assert contents[1:] == ["How do plants eat?", llm.reply, "And at night?"]
    assert "Persona of tutor 30." in contents[0]


@pytest.mark.parametrize(("tutor", "words"), [(31, "HTTP 500"), (33, "did not answer in time")])
async def test_a_failing_endpoint_is_a_clear_error(
    llm_engine: EngineProcess, tutor: int, words: str
) -> None:
    session = llm_engine.create_session(tutor_id=tutor, student_id=9)
    async with connect(llm_engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        reply = await ask(ws, type="text", content="Hello?")
        assert reply["type"] == "error" and reply["code"] == "ai_engine_error", reply
        assert words in reply["content"] and reply["retryable"] is True
        assert reply["engine_session_id"] == session["session_id"]


async def test_fallback_answers_with_the_embedded_engine(llm_engine: EngineProcess) -> None:
    session = llm_engine.create_session(tutor_id=32, student_id=9)
    async with connect(llm_engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        reply = await ask(ws, type="text", content="What is gravity?")
    # the embedded engine answers; this tutor has no knowledge base, and it says so
    assert reply["type"] == "text" and "don't have any notes" in reply["content"] and reply["audio"]
