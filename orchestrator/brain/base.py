"""The tutor AI engine interface: a reply streams out as text deltas."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from orchestrator.metrics import STAGE_SECONDS
from orchestrator.triton_client import TritonError

if TYPE_CHECKING:
    from orchestrator.tutors import TutorProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatTurn:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Passage:
    """A piece of the knowledge base retrieved for the student's message."""

    title: str
    text: str
    score: float
    document: str


@dataclass(frozen=True)
class ReplyRequest:
    tutor: TutorProfile
    history: Sequence[ChatTurn]
    student_text: str
    session_id: str
    kb_id: str | None = None
    passages: Sequence[Passage] = ()


class AIEngineError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class AIEngine(ABC):
    """Template: `stream_reply` owns metrics and error wrapping; engines implement `_stream`."""

    name: ClassVar[str]

    async def stream_reply(self, request: ReplyRequest) -> AsyncIterator[str]:
        started = time.perf_counter()
        first = True
        try:
            async for delta in self._stream(request):
                if first and delta.strip():
                    first = False
                    STAGE_SECONDS.labels("ai_first_token").observe(time.perf_counter() - started)
                yield delta
        except (AIEngineError, TritonError):  # Triton down is the models' failure, not the engine's
            raise
        except Exception as error:
            log.exception("AI engine failed", extra={"engine": self.name})
            raise AIEngineError(
                f"the tutor's AI engine ({self.name}) failed: {error}", True
            ) from error

    @abstractmethod
    def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        """Yields the reply's text, piece by piece, as it is produced."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing
        """Releases connections the engine holds."""
