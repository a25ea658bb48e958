"""The OpenAI-compatible engine against a loopback server speaking the real streaming format."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from benchmarks.harness.fake_llm import FakeLLM
from benchmarks.harness.processes import free_port
from orchestrator.brain import (
    AIEngine,
    AIEngineError,
    ChatTurn,
    FallbackEngine,
    Passage,
    ReplyRequest,
)
from orchestrator.brain.openai_chat import OpenAIChatEngine
from orchestrator.tutors import LLMEndpoint, TutorProfile

TUTOR = TutorProfile(id=1, name="Ms. Rivera", persona="Kind science tutor.", voice="joe")


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM(delay_s=3.0).start()
    yield server
    server.stop()


def engine_for(base_url: str, model: str, **options: float) -> OpenAIChatEngine:
    endpoint = LLMEndpoint(base_url=base_url, model=model, **options)  # type: ignore[arg-type]
    return OpenAIChatEngine(endpoint, api_key="sk-test")


def request(text: str = "What is photosynthesis?") -> ReplyRequest:
    history = (ChatTurn("user", "Hello"), ChatTurn("assistant", "Hi! What shall we study?"))
    return ReplyRequest(tutor=TUTOR, history=history, student_text=text, session_id="s1")


async def collect(engine: OpenAIChatEngine | FallbackEngine, req: ReplyRequest) -> str:
    return "".join([delta async for delta in engine.stream_reply(req)])


async def test_streams_the_reply_and_sends_persona_history_and_question(llm: FakeLLM) -> None:
    engine = engine_for(llm.base_url, "scripted")
    deltas = [delta async for delta in engine.stream_reply(request())]
    await engine.aclose()
    assert len([d for d in deltas if d]) > 5  # it streamed, not one blob
    assert "".join(deltas).strip() == llm.reply
    sent = llm.requests[-1]
    assert sent["body"]["stream"] is True
    assert sent["headers"]["authorization"] == "Bearer sk-test"
    messages = sent["body"]["messages"]
    assert messages[0]["role"] == "system" and "Kind science tutor." in messages[0]["content"]
    assert [m["content"] for m in messages[1:]] == [
        "Hello",
        "Hi! What shall we study?",
        "What is photosynthesis?",
    ]


async def test_a_slow_endpoint_fails_at_the_first_token_timeout(llm: FakeLLM) -> None:
    engine = engine_for(llm.base_url, "slow", first_token_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(AIEngineError, match="did not answer in time") as caught:
        await collect(engine, request())
    assert time.monotonic() - started < 2.5
    assert caught.value.retryable


@pytest.mark.parametrize(("model", "retryable"), [("fail-500", True), ("fail-400", False)])
async def test_http_errors_become_engine_errors(llm: FakeLLM, model: str, retryable: bool) -> None:
    with pytest.raises(AIEngineError, match="HTTP") as caught:
        await collect(engine_for(llm.base_url, model), request())
    assert caught.value.retryable is retryable


async def test_an_unreachable_endpoint_fails_fast() -> None:
    engine = engine_for(f"http://127.0.0.1:{free_port()}/v1", "scripted")
    with pytest.raises(AIEngineError, match="cannot reach"):
        await collect(engine, request())


class Backup(AIEngine):
    name = "backup"

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        yield f"Backup answer to: {request.student_text}"


async def test_fallback_answers_when_the_endpoint_fails(llm: FakeLLM) -> None:
    engine = FallbackEngine(engine_for(llm.base_url, "fail-500"), Backup())
    reply = await collect(engine, request("Why is the sky blue?"))
    assert reply == "Backup answer to: Why is the sky blue?"


async def test_retrieved_notes_go_to_the_llm(llm: FakeLLM) -> None:
    notes = (
        Passage("Photosynthesis › Where", "It happens in chloroplasts.", 0.7, "photosynthesis"),
    )
    req = ReplyRequest(
        tutor=TUTOR, history=(), student_text="Where?", session_id="s", passages=notes
    )
    await collect(engine_for(llm.base_url, "scripted"), req)
    system = llm.requests[-1]["body"]["messages"][0]["content"]
    assert "[Photosynthesis › Where] It happens in chloroplasts." in system
    assert "say so rather than guess" in system
