"""Tutoring sessions: who is talking to which tutor, their history, and idle expiry."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator.brain.base import ChatTurn
from orchestrator.metrics import ACTIVE_SESSIONS

log = logging.getLogger(__name__)


class SessionLimitReached(Exception):
    """The registry holds its maximum number of sessions."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Session:
    id: str
    tutor_id: int
    student_id: int | str
    kb_id: str | None
    history: deque[ChatTurn]
    created_at: datetime = field(default_factory=utc_now)
    last_activity: datetime = field(default_factory=utc_now)
    status: str = "active"
    connections: int = 0  # open session-based sockets; a connected session never expires
    idle_since: float = 0.0  # on the registry's clock
    reply_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def belongs_to(self, user_id: str) -> bool:
        return str(self.student_id) == user_id

    def remember(self, student_text: str, tutor_text: str) -> None:
        self.history.append(ChatTurn(role="user", content=student_text))
        self.history.append(ChatTurn(role="assistant", content=tutor_text))


class SessionRegistry:
    def __init__(
        self,
        ttl_s: float,
        history_max_turns: int,
        max_sessions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        revoke_for_s: float = 86_400,
    ) -> None:
        """`revoke_for_s`: how long a deleted session's tokens are refused (their lifetime)."""
        self._sessions: dict[str, Session] = {}
        self._deleted: dict[str, float] = {}  # session id → when, on the registry's clock
        self._revoke_for_s = revoke_for_s
        self._ttl_s = ttl_s
        self._history_len = history_max_turns * 2
        self._max_sessions = max_sessions
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, tutor_id: int, student_id: int | str, kb_id: str | None) -> Session:
        self.expire_idle()
        if len(self._sessions) >= self._max_sessions:
            raise SessionLimitReached(
                f"the engine holds its limit of {self._max_sessions} sessions"
            )
        session = Session(
            id=str(uuid.uuid4()),
            tutor_id=tutor_id,
            student_id=student_id,
            kb_id=kb_id,
            history=deque(maxlen=self._history_len),
            idle_since=self._clock(),
        )
        self._sessions[session.id] = session
        ACTIVE_SESSIONS.set(len(self._sessions))
        log.info("session created", extra={"session_id": session.id, "tutor_id": tutor_id})
        return session

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None and self._expired(session):
            self._remove(session, reason="expired")
            return None
        return session

    def delete(self, session_id: str) -> bool:
        session = self._sessions.get(session_id)
        if session is None:
            return False
        self._remove(session, reason="deleted")
        self._deleted[session_id] = self._clock()
        return True

    def revoked(self, session_id: str) -> bool:
        """Whether tokens issued for this session were revoked by deleting it. Tokens stay
        stateless for live sessions; only deleted ones are remembered, while their tokens
        could still be valid."""
        now = self._clock()
        while self._deleted:
            oldest, when = next(iter(self._deleted.items()))
            if now - when <= self._revoke_for_s:
                break
            del self._deleted[oldest]
        return session_id in self._deleted

    def touch(self, session: Session) -> None:
        session.last_activity = utc_now()
        session.idle_since = self._clock()

    def expire_idle(self) -> list[str]:
        expired = [s for s in self._sessions.values() if self._expired(s)]
        for session in expired:
            self._remove(session, reason="expired")
        return [s.id for s in expired]

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.expire_idle()

    def _expired(self, session: Session) -> bool:
        return session.connections == 0 and self._clock() - session.idle_since > self._ttl_s

    def _remove(self, session: Session, reason: str) -> None:
        self._sessions.pop(session.id, None)
        session.status = reason
        ACTIVE_SESSIONS.set(len(self._sessions))
        log.info("session removed", extra={"session_id": session.id, "reason": reason})
