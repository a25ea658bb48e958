"""A reply's data path: student text → AI engine → sentences → TTS, each stage streaming.

Each sentence goes to TTS the moment it is complete, while the engine keeps writing, so the
first words can be spoken before the whole reply exists; sentences come out in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from media.speech import Speech
from orchestrator.brain import AIEngineError, EngineRegistry, Passage, ReplyRequest
from orchestrator.knowledge.store import KnowledgeStore
from orchestrator.metrics import STAGE_SECONDS, timed
from orchestrator.sentences import sentences
from orchestrator.sessions import Session
from orchestrator.tts import TextToSpeech
from orchestrator.tutors import TutorCatalog, TutorProfile, Voice

log = logging.getLogger(__name__)

KNOWLEDGE_WAIT_S = 10.0


@dataclass(frozen=True)
class SpokenSentence:
    text: str
    speech: Speech | None  # None: nothing speakable in it (e.g. only symbols)


def joiner(tutor: TutorProfile) -> str:
    """How sentences join back into text: Chinese has no spaces between them."""
    return "" if tutor.language == "zh" else " "


def speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class Conversation:
    def __init__(
        self,
        tutors: TutorCatalog,
        engines: EngineRegistry,
        tts: TextToSpeech,
        knowledge: KnowledgeStore | None = None,
        retrieval_k: int = 3,
        max_sentence_chars: int = 240,
    ) -> None:
        self.tutors = tutors
        self.engines = engines
        self.tts = tts
        self.knowledge = knowledge
        self.retrieval_k = retrieval_k
        self.max_sentence_chars = max_sentence_chars

    async def retrieve(self, kb_id: str | None, text: str, session_id: str) -> tuple[Passage, ...]:
        """The knowledge base's passages nearest the student's message (none without a KB)."""
        if self.knowledge is None or not kb_id:
            return ()
        if not self.knowledge.ready.is_set():  # just started: the notes are being loaded
            try:
                await asyncio.wait_for(self.knowledge.ready.wait(), KNOWLEDGE_WAIT_S)
            except TimeoutError as error:
                raise AIEngineError(
                    "the tutor's notes are still loading; retry shortly", True
                ) from error
        if self.knowledge.get(kb_id) is None:
            return ()
        with timed("retrieve", log, session_id=session_id, kb_id=kb_id) as stage:
            hits = await self.knowledge.search(kb_id, text, self.retrieval_k)
            stage["best"] = round(hits[0].score, 3) if hits else None
        return tuple(Passage(h.chunk.title, h.chunk.text, h.score, h.chunk.document) for h in hits)

    def tutor_of(self, session: Session) -> TutorProfile:
        tutor = self.tutors.get(session.tutor_id)
        if tutor is None:  # the profile file changed under a live session
            raise AIEngineError(f"tutor {session.tutor_id} is no longer configured", False)
        return tutor

    async def reply(self, session: Session, student_text: str) -> AsyncIterator[SpokenSentence]:
        """Yields the tutor's reply sentence by sentence, spoken; remembers it when done."""
        started = time.monotonic()
        tutor = self.tutor_of(session)
        voice = self.tutors.voice_of(tutor)
        kb_id = session.kb_id or tutor.kb_id
        request = ReplyRequest(
            tutor=tutor,
            history=tuple(session.history),
            student_text=student_text,
            session_id=session.id,
            kb_id=kb_id,
            passages=await self.retrieve(kb_id, student_text, session.id),
        )
        engine = self.engines.get_ai_engine(session.tutor_id)
        queue: asyncio.Queue[asyncio.Task[SpokenSentence] | Exception | None] = asyncio.Queue()

        timeline = Timeline(started)
        first_spoken = False

        async def write() -> None:
            before: asyncio.Task[SpokenSentence] | None = None
            try:
                with timed("ai_engine", log, session_id=session.id, engine=engine.name):
                    async for sentence in sentences(
                        engine.stream_reply(request), self.max_sentence_chars
                    ):
                        before = asyncio.create_task(
                            self._speak(sentence, voice, session.id, before, timeline)
                        )
                        queue.put_nowait(before)
            except Exception as error:
                queue.put_nowait(error)
            else:
                queue.put_nowait(None)

        spoken: list[str] = []
        writer = asyncio.create_task(write())
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                sentence = await item
                if not first_spoken and sentence.speech is not None:
                    # the student's words → the reply's first speech, ready to play
                    STAGE_SECONDS.labels("tts_first_audio").observe(time.monotonic() - started)
                    first_spoken = True
                spoken.append(sentence.text)
                yield sentence
        finally:
            writer.cancel()
            while not queue.empty():
                _discard(queue.get_nowait())
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if not spoken:
            raise AIEngineError("the tutor's AI engine returned an empty reply", retryable=True)
        await session.remember(student_text, joiner(tutor).join(spoken))

    async def _speak(
        self,
        text: str,
        voice: Voice,
        session_id: str,
        before: asyncio.Task[SpokenSentence] | None,
        timeline: Timeline,
    ) -> SpokenSentence:
        """A reply's sentences are spoken one after another, each due when the speech before
        it will have played (the first as soon as it can be): the voice serves whoever's
        speech runs out first (tts.SpeechTurns)."""
        if before is not None:
            await asyncio.wait([before])  # not `await before`: cancelling this one spares it
            if before.cancelled() or before.exception() is not None:
                return SpokenSentence(text, None)  # the reply ends there; nobody hears this
        if not speakable(text):
            return SpokenSentence(text, None)
        speech = await self.tts.synthesize(text, voice, session_id, due=timeline.due())
        timeline.spoken(speech.seconds)
        return SpokenSentence(text, speech)


@dataclass
class Timeline:
    """When a reply's speech will have played, as far as it is synthesized: from when its first
    speech was ready, it plays on without gaps."""

    started: float  # monotonic: the student's words arrived
    first_ready: float | None = None
    seconds: float = 0.0

    def due(self) -> float:
        return self.started if self.first_ready is None else self.first_ready + self.seconds

    def spoken(self, seconds: float) -> None:
        if self.first_ready is None:
            self.first_ready = time.monotonic()
        self.seconds += seconds


def _discard(item: asyncio.Task[SpokenSentence] | Exception | None) -> None:
    """Cancels a sentence nobody will hear; a failure it already had is not reported twice."""
    if isinstance(item, asyncio.Task):
        item.cancel()
        if item.done() and not item.cancelled():
            item.exception()
