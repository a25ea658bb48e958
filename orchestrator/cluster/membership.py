"""Engines announce themselves in Redis: a heartbeat that lapses when the engine dies, with its
public URL, its load and whether it drains. An engine is live while its heartbeat is."""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from orchestrator.cluster.keys import Keys, text


@dataclass(frozen=True)
class Load:
    """What an engine is doing now."""

    sockets: int
    peers: int
    replies: int
    capacity: int


@dataclass(frozen=True)
class EngineState:
    engine_id: str
    url: str
    draining: bool
    load: Load
    beat_at: float  # the engine's clock (Unix time) at its last heartbeat


class Membership:
    def __init__(
        self, redis: Redis, keys: Keys, engine_id: str, url: str, dead_after_s: float
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.engine_id = engine_id
        self.url = url
        self._dead_after_ms = int(dead_after_s * 1000)
        self.draining = False

    async def beat(self, load: Load) -> None:
        key = self._keys.engine(self.engine_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "url": self.url,
                    "draining": int(self.draining),
                    "sockets": load.sockets,
                    "peers": load.peers,
                    "replies": load.replies,
                    "capacity": load.capacity,
                    "beat_at": time.time(),
                },
            )
            pipe.pexpire(key, self._dead_after_ms)
            pipe.sadd(self._keys.engines, self.engine_id)
            await pipe.execute()

    async def leave(self) -> None:
        """Gone at once, rather than when the heartbeat lapses (an orderly exit)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.engine(self.engine_id))
            pipe.srem(self._keys.engines, self.engine_id)
            await pipe.execute()

    async def engine(self, engine_id: str) -> EngineState | None:
        """A live engine's state; None once its heartbeat lapsed."""
        fields = await self._redis.hgetall(self._keys.engine(engine_id))
        if not fields:
            return None
        return EngineState(
            engine_id=engine_id,
            url=text(fields["url"]),
            draining=fields["draining"] == "1",
            load=Load(
                sockets=int(fields["sockets"]),
                peers=int(fields["peers"]),
                replies=int(fields["replies"]),
                capacity=int(fields["capacity"]),
            ),
            beat_at=float(fields["beat_at"]),
        )
