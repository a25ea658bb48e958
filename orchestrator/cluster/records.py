"""Session records in Redis: what any engine needs to carry a session on (tutor, student,
knowledge base, bounded history, times), and the deleted sessions whose tokens are refused.

A record expires like the session (ENGINE_SESSION_TTL_S of idleness); the engine holding a
session renews it while the session is used or connected.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from orchestrator.brain.base import ChatTurn
from orchestrator.cluster.keys import Keys


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    tutor_id: int
    student_id: int | str
    kb_id: str | None
    created_at: datetime
    last_activity: datetime
    history: tuple[ChatTurn, ...] = ()


# KEYS: [1] the session's hash, [2] its history. ARGV: [1] time to live (ms), [2] last activity,
# [3] turns kept, [4…] turns to append. Touches nothing of a session that is gone (a hash field
# set on a deleted session would make a record without tutor that never expires); 1 if alive.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if #ARGV > 3 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 4))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
"""


class SessionRecords:
    def __init__(
        self, redis: Redis, keys: Keys, ttl_s: float, history_len: int, revoke_for_s: float
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_ms = int(ttl_s * 1000)
        self._history_len = history_len
        self._revoke_ms = int(revoke_for_s * 1000)
        self._touch = redis.register_script(_TOUCH)

    async def save(self, record: SessionRecord) -> None:
        """Writes the record (and its history, replacing what Redis held)."""
        key = self._keys.session(record.session_id)
        history = self._keys.history(record.session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "tutor_id": record.tutor_id,
                    "student_id": json.dumps(record.student_id),
                    "kb_id": json.dumps(record.kb_id),
                    "created_at": record.created_at.isoformat(),
                    "last_activity": record.last_activity.isoformat(),
                },
            )
            pipe.pexpire(key, self._ttl_ms)
            pipe.delete(history)
            if record.history:
                pipe.rpush(history, *(_json(turn) for turn in record.history[-self._history_len :]))
                pipe.pexpire(history, self._ttl_ms)
            await pipe.execute()

    async def load(self, session_id: str) -> SessionRecord | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys.session(session_id))
            pipe.lrange(self._keys.history(session_id), 0, -1)
            fields, turns = await pipe.execute()
        if "tutor_id" not in fields:  # gone (or never whole)
            return None
        return SessionRecord(
            session_id=session_id,
            tutor_id=int(fields["tutor_id"]),
            student_id=json.loads(fields["student_id"]),
            kb_id=json.loads(fields["kb_id"]),
            created_at=datetime.fromisoformat(fields["created_at"]),
            last_activity=datetime.fromisoformat(fields["last_activity"]),
            history=tuple(ChatTurn(**json.loads(turn)) for turn in turns),
        )

    async def remember(self, session_id: str, turns: Sequence[ChatTurn]) -> None:
        """Appends turns to the session's history (keeping the newest), unless the session
        was deleted or expired meanwhile."""
        args: list[str | int] = [self._ttl_ms, datetime.now(UTC).isoformat(), self._history_len]
        await self._touch(
            keys=[self._keys.session(session_id), self._keys.history(session_id)],
            args=args + [_json(turn) for turn in turns],
        )

    async def renew(self, used: Sequence[tuple[str, datetime]]) -> list[str]:
        """Keeps the records of sessions in use alive, with their last activity; returns the
        sessions whose record is gone (deleted through another engine, or lost)."""
        if not used:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, last_activity in used:
                await self._touch(
                    keys=[self._keys.session(session_id), self._keys.history(session_id)],
                    args=[self._ttl_ms, last_activity.isoformat(), self._history_len],
                    client=pipe,
                )
            renewed = await pipe.execute()
        return [s for (s, _), alive in zip(used, renewed, strict=True) if not alive]

    async def delete(self, session_id: str) -> bool:
        """Deletes the record and refuses the session's tokens from now on; False if unknown."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.session(session_id))
            pipe.delete(self._keys.history(session_id))
            pipe.set(self._keys.revoked(session_id), 1, px=self._revoke_ms)
            existed, *_ = await pipe.execute()
        return bool(existed)

    async def revoked(self, session_id: str) -> bool:
        return bool(await self._redis.exists(self._keys.revoked(session_id)))


def _json(turn: ChatTurn) -> str:
    return json.dumps({"role": turn.role, "content": turn.content})
