"""Where each shared thing lives in Redis, under one prefix (ENGINE_REDIS_PREFIX)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str

    def session(self, session_id: str) -> str:
        """A hash: tutor, student, knowledge base, times, status."""
        return f"{self.prefix}:session:{session_id}"

    def history(self, session_id: str) -> str:
        """A list of chat turns (JSON), the newest last, trimmed to the history's length."""
        return f"{self.prefix}:history:{session_id}"

    def revoked(self, session_id: str) -> str:
        """Present while a deleted session's tokens could still be valid."""
        return f"{self.prefix}:revoked:{session_id}"

    def placement(self, student: str) -> str:
        """The engine a student is placed on."""
        return f"{self.prefix}:placement:{student}"

    @property
    def engines(self) -> str:
        """A set of the engines that have sent a heartbeat (dead ones are dropped lazily)."""
        return f"{self.prefix}:engines"

    def engine(self, engine_id: str) -> str:
        """An engine's heartbeat (a hash that expires unless renewed)."""
        return f"{self.prefix}:engine:{engine_id}"

    def students(self, engine_id: str) -> str:
        """A sorted set: students placed on an engine, scored by when the placement lapses."""
        return f"{self.prefix}:students:{engine_id}"

    def avatar_build(self, avatar_id: str) -> str:
        """A photo avatar's build, as the engine building it last told it."""
        return f"{self.prefix}:avatar-build:{avatar_id}"

    def knowledge_lock(self, kb_id: str) -> str:
        """Held by the engine changing a knowledge base."""
        return f"{self.prefix}:knowledge-lock:{kb_id}"

    @property
    def events(self) -> str:
        """The pub/sub channel of changes every engine must hear of."""
        return f"{self.prefix}:events"


def text(value: bytes | str) -> str:
    """A Redis answer as text (the client decodes them; its types do not say so)."""
    return value.decode() if isinstance(value, bytes) else value
