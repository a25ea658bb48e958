"""Photo-avatar builds as every engine sees them: the state of a build in Redis while one
engine runs it (and its failure for a while after), and an event when the avatar is ready in
the shared folder (ENGINE_PHOTO_AVATARS_DIR) or deleted, so that every engine serves it."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from orchestrator.cluster.events import AvatarChanged, Events
from orchestrator.cluster.keys import Keys

KEPT_S = 3600  # how long a build's last state stays readable


class AvatarBuilds:
    def __init__(self, redis: Redis, keys: Keys, events: Events, engine_id: str) -> None:
        self._redis = redis
        self._keys = keys
        self._events = events
        self._engine_id = engine_id

    async def told(self, avatar_id: str, state: dict[str, Any], ready: bool) -> None:
        """A build's new state; `ready`: the avatar is in the shared folder now."""
        await self._redis.set(self._keys.avatar_build(avatar_id), json.dumps(state), ex=KEPT_S)
        if ready:
            await self._events.publish(
                AvatarChanged(avatar_id=avatar_id, present=True, engine_id=self._engine_id)
            )

    async def read(self, avatar_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._keys.avatar_build(avatar_id))
        return dict(json.loads(raw)) if raw is not None else None

    async def gone(self, avatar_id: str) -> None:
        """The avatar was deleted, or its failure told: nothing of it is kept."""
        await self._redis.delete(self._keys.avatar_build(avatar_id))
        await self._events.publish(
            AvatarChanged(avatar_id=avatar_id, present=False, engine_id=self._engine_id)
        )
