"""Tutoring sessions: who is talking to which tutor, their history, and idle expiry.

With several engines (ENGINE_REDIS_URL) the records live in Redis and this registry holds the
sessions of the students this engine serves: loaded on first use, their turns written through.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.exceptions import RedisError

from orchestrator.brain.base import ChatTurn
from orchestrator.cluster.records import SessionRecord, SessionRecords
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
    shared: SessionRecords | None = field(default=None, repr=False)  # its record in Redis
    renewed_at: float = float("-inf")  # when its shared record was last renewed

    def belongs_to(self, user_id: str) -> bool:
        return str(self.student_id) == user_id

    async def remember(self, student_text: str, tutor_text: str) -> None:
        turns = (
            ChatTurn(role="user", content=student_text),
            ChatTurn(role="assistant", content=tutor_text),
        )
        self.history.extend(turns)
        if self.shared is None:
            return
        try:
            await self.shared.remember(self.id, turns)
        except RedisError as error:  # the reply was heard; this engine still remembers it
            log.warning("turn not shared", extra={"session_id": self.id, "error": str(error)})

    @property
    def record(self) -> SessionRecord:
        return SessionRecord(
            self.id,
            self.tutor_id,
            self.student_id,
            self.kb_id,
            self.created_at,
            self.last_activity,
            tuple(self.history),
        )


class SessionRegistry:
    def __init__(
        self,
        ttl_s: float,
        history_max_turns: int,
        max_sessions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        revoke_for_s: float = 86_400,
        shared: SessionRecords | None = None,
    ) -> None:
        """`revoke_for_s`: how long a deleted session's tokens are refused (their lifetime);
        `shared`: the records every engine reads (None: this engine alone)."""
        self.shared = shared
        self._due: tuple[float, list[str]] = (0.0, [])
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
        """A new session, held here (this engine alone)."""
        self.expire_idle()
        if len(self._sessions) >= self._max_sessions:
            raise SessionLimitReached(
                f"the engine holds its limit of {self._max_sessions} sessions"
            )
        session = self._session(str(uuid.uuid4()), tutor_id, student_id, kb_id)
        self._hold(session)
        log.info("session created", extra={"session_id": session.id, "tutor_id": tutor_id})
        return session

    async def open(self, tutor_id: int, student_id: int | str, kb_id: str | None) -> Session:
        """A new session: held here, or with several engines recorded in Redis for the engine
        the student is placed on (which loads it on first use)."""
        if self.shared is None:
            return self.create(tutor_id, student_id, kb_id)
        session = self._session(str(uuid.uuid4()), tutor_id, student_id, kb_id)
        await self.shared.save(session.record)
        log.info("session created", extra={"session_id": session.id, "tutor_id": tutor_id})
        return session

    def get(self, session_id: str) -> Session | None:
        """A session held here."""
        session = self._sessions.get(session_id)
        if session is not None and self._expired(session):
            self._remove(session, reason="expired")
            return None
        return session

    async def load(self, session_id: str, hold: bool = True) -> Session | None:
        """A session held here, else its shared record (held here from now on if `hold`)."""
        session = self.get(session_id)
        if session is not None or self.shared is None or session_id in self._deleted:
            return session
        record = await self.shared.load(session_id)
        if record is None:
            return None
        session = self.get(session_id)  # loaded by another task meanwhile
        if session is not None:
            return session
        session = self._session(record.session_id, record.tutor_id, record.student_id, record.kb_id)
        session.history.extend(record.history)
        session.created_at = record.created_at
        session.last_activity = record.last_activity
        if hold:
            self._hold(session)
        return session

    def delete(self, session_id: str) -> bool:
        """Forgets a session held here and refuses its tokens from now on."""
        session = self.get(session_id)
        if session is None:
            return False
        self._remove(session, reason="deleted")
        self._deleted[session_id] = self._clock()
        return True

    async def close(self, session_id: str) -> bool:
        """Deletes a session wherever it is; False if it is unknown."""
        held = self.delete(session_id)
        if self.shared is None:
            return held
        return await self.shared.delete(session_id) or held

    async def is_revoked(self, session_id: str) -> bool:
        if self.revoked(session_id):
            return True
        return self.shared is not None and await self.shared.revoked(session_id)

    async def restore(self, session_id: str) -> None:
        """Writes a session held here back to Redis, which lost it (restarted empty)."""
        session = self.get(session_id)
        if session is not None and self.shared is not None:
            await self.shared.save(session.record)
            log.warning("session record restored", extra={"session_id": session_id})

    def forget_student(self, user_id: str) -> None:
        """Drops the sessions of a student held here, who comes back after being served by
        another engine: their records are read again on next use."""
        for session in [s for s in self._sessions.values() if s.belongs_to(user_id)]:
            if not session.connections:  # a socket still bound to it keeps it
                self._remove(session, reason="moved")

    def in_use(self) -> list[tuple[str, datetime]]:
        """Sessions held here that were used since their shared record was renewed, or are
        connected and due a renewal: (id, last activity). They count as renewed once
        `renewed()` says so (a renewal that failed is tried again)."""
        now = self._clock()
        due = [
            session
            for session in self._sessions.values()
            if session.idle_since > session.renewed_at
            or (session.connections and now - session.renewed_at > self._ttl_s / 4)
        ]
        self._due = (now, [session.id for session in due])
        return [(session.id, session.last_activity) for session in due]

    def renewed(self) -> None:
        """The sessions `in_use()` returned last were renewed."""
        when, ids = self._due
        for session_id in ids:
            if (session := self._sessions.get(session_id)) is not None:
                session.renewed_at = when

    def _session(
        self, session_id: str, tutor_id: int, student_id: int | str, kb_id: str | None
    ) -> Session:
        return Session(
            id=session_id,
            tutor_id=tutor_id,
            student_id=student_id,
            kb_id=kb_id,
            history=deque(maxlen=self._history_len),
            idle_since=self._clock(),
            shared=self.shared,
        )

    def _hold(self, session: Session) -> None:
        self._sessions[session.id] = session
        ACTIVE_SESSIONS.set(len(self._sessions))

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
