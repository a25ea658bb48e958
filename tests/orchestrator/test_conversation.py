"""The reply pipeline streams: sentence one is spoken while the engine is still writing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from media.speech import Speech
from orchestrator.brain import AIEngine, AIEngineError, ReplyRequest
from orchestrator.conversation import Conversation
from orchestrator.sessions import SessionRegistry
from orchestrator.settings import Settings
from orchestrator.tutors import TutorCatalog, Voice


class GatedEngine(AIEngine):
    """Writes one sentence, then waits until it is told to write the rest."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        yield "First sentence here. "
        await self.gate.wait()
        yield "Second one. 😊"


class FailingEngine(AIEngine):
    name = "failing"

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        yield "Half a"
        raise ConnectionError("dropped")


class RecordingTTS:
    """Speaks a second of silence per sentence, taking `takes_s` to do it."""

    def __init__(self, engine: GatedEngine | None = None, takes_s: float = 0.0) -> None:
        self.spoken: list[str] = []
        self.calls: list[tuple[str, float | None, float, float]] = []  # text, due, began, done
        self.engine = engine
        self.takes_s = takes_s

    async def synthesize(
        self, text: str, voice: Voice, session_id: str = "", due: float | None = None
    ) -> Speech:
        began = time.monotonic()
        self.spoken.append(text)
        if self.engine is not None and text.startswith("First"):
            self.engine.gate.set()  # only reachable if TTS starts before the engine finishes
        await asyncio.sleep(self.takes_s)
        self.calls.append((text, due, began, time.monotonic()))
        pcm = np.zeros(22050, dtype=np.float32)
        return Speech(text, pcm, 22050, ("^", "$"), np.array([50, 50], dtype=np.int32))


class Engines:
    def __init__(self, engine: AIEngine) -> None:
        self.engine = engine

    def get_ai_engine(self, tutor_id: int) -> AIEngine:
        return self.engine


def conversation(engine: AIEngine, tts: RecordingTTS) -> Conversation:
    tutors = TutorCatalog.load(Settings().tutors_file)
    return Conversation(tutors, Engines(engine), tts)  # type: ignore[arg-type]


async def test_the_first_sentence_is_spoken_before_the_reply_is_complete() -> None:
    engine = GatedEngine()
    tts = RecordingTTS(engine)
    session = SessionRegistry(60, 5).create(1, 7, None)
    parts = await asyncio.wait_for(
        _collect(conversation(engine, tts).reply(session, "hello")), timeout=5
    )
    assert [p.text for p in parts] == ["First sentence here.", "Second one.", "😊"]
    assert tts.spoken == ["First sentence here.", "Second one."]  # nothing to say in "😊"
    assert parts[2].speech is None
    assert [t.content for t in session.history] == ["hello", "First sentence here. Second one. 😊"]


class ThreeSentences(AIEngine):
    name = "three"

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        yield "One. 😊. Two. Three."


async def test_each_sentence_is_due_when_the_speech_before_it_has_played() -> None:
    """Sentences are synthesized one after another, each due one second (its predecessors'
    speech) later than the one before, counted from when the first was ready; a sentence with
    nothing to say keeps its place in the line."""
    tts = RecordingTTS(takes_s=0.05)
    session = SessionRegistry(60, 5).create(1, 7, None)
    asked = time.monotonic()
    await _collect(conversation(ThreeSentences(), tts).reply(session, "count"))
    (first, due1, _, ready), (_, due2, began2, done2), (_, due3, began3, _) = tts.calls
    assert [text for text, *_ in tts.calls] == ["One.", "Two.", "Three."]  # 😊: nothing to say
    assert first == "One." and due1 is not None and asked <= due1 <= began2
    assert began2 >= ready and began3 >= done2  # in turn, not all at once
    assert due2 == pytest.approx(ready + 1.0, abs=0.02)
    assert due3 == pytest.approx(ready + 2.0, abs=0.02)


async def test_an_engine_failure_surfaces_and_history_stays_clean() -> None:
    session = SessionRegistry(60, 5).create(1, 7, None)
    with pytest.raises(AIEngineError, match="dropped"):
        await _collect(conversation(FailingEngine(), RecordingTTS()).reply(session, "hello"))
    assert list(session.history) == []


async def _collect(replies: AsyncIterator[object]) -> list:  # type: ignore[type-arg]
    return [part async for part in replies]
