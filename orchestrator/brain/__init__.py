"""The tutor's brain: which AI engine answers for each tutor (`get_ai_engine(tutor_id)`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from orchestrator.brain.base import AIEngine, AIEngineError, ChatTurn, Passage, ReplyRequest
from orchestrator.brain.openai_chat import OpenAIChatEngine
from orchestrator.tutors import TutorCatalog, TutorProfile

__all__ = ["AIEngine", "AIEngineError", "ChatTurn", "EngineRegistry", "Passage", "ReplyRequest"]

log = logging.getLogger(__name__)


class FallbackEngine(AIEngine):
    """Answers with `primary`; if it fails before saying anything, with `fallback`."""

    name = "fallback"

    def __init__(self, primary: AIEngine, fallback: AIEngine) -> None:
        self.primary = primary
        self.fallback = fallback

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        said_something = False
        try:
            async for delta in self.primary.stream_reply(request):
                said_something = said_something or bool(delta.strip())
                yield delta
        except AIEngineError as error:
            if said_something:
                raise
            log.warning(
                "LLM endpoint failed; answering with the embedded engine",
                extra={"session_id": request.session_id, "error": str(error)},
            )
            async for delta in self.fallback.stream_reply(request):
                yield delta

    async def aclose(self) -> None:
        await self.primary.aclose()


class EngineRegistry:
    """One engine per tutor, built from its profile at start-up: the tutor's LLM endpoint if it
    has one, else the embedded engine (the grounded knowledge-base tutor)."""

    def __init__(
        self, tutors: TutorCatalog, environ: Mapping[str, str], embedded: AIEngine
    ) -> None:
        self.embedded = embedded
        self._engines = {tutor.id: self._build(tutor, environ) for tutor in tutors}

    def _build(self, tutor: TutorProfile, environ: Mapping[str, str]) -> AIEngine:
        if tutor.llm is None:
            return self.embedded
        api_key = environ.get(tutor.llm.api_key_env) if tutor.llm.api_key_env else None
        engine: AIEngine = OpenAIChatEngine(tutor.llm, api_key)
        if tutor.llm.fallback_to_embedded:
            engine = FallbackEngine(engine, self.embedded)
        return engine

    def get_ai_engine(self, tutor_id: int) -> AIEngine:
        return self._engines.get(tutor_id, self.embedded)

    async def aclose(self) -> None:
        for engine in self._engines.values():
            await engine.aclose()
