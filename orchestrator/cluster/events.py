"""Changes every engine must hear of at once, over Redis pub/sub: a session deleted through
one engine closes its sockets on the engine that serves it; a knowledge base changed through
one engine is read again by the others; a photo avatar made or deleted through one engine
appears or goes on the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orchestrator.cluster.keys import Keys

log = logging.getLogger(__name__)


class SessionDeleted(BaseModel):
    type: Literal["session_deleted"] = "session_deleted"
    session_id: str


class KnowledgeChanged(BaseModel):
    type: Literal["knowledge_changed"] = "knowledge_changed"
    kb_id: str
    engine_id: str  # the engine that changed it (it needs no reload)


class AvatarChanged(BaseModel):
    type: Literal["avatar_changed"] = "avatar_changed"
    avatar_id: str
    present: bool  # ready (in the shared folder), or deleted
    engine_id: str  # the engine that made or deleted it


Event = Annotated[SessionDeleted | KnowledgeChanged | AvatarChanged, Field(discriminator="type")]
_events: TypeAdapter[Event] = TypeAdapter(Event)


class Events:
    def __init__(self, redis: Redis, keys: Keys, listener: Redis | None = None) -> None:
        """`listener`: the connection subscriptions wait on (one without a read timeout)."""
        self._redis = redis
        self._listener = listener or redis
        self._channel = keys.events

    async def publish(self, event: SessionDeleted | KnowledgeChanged | AvatarChanged) -> None:
        await self._redis.publish(self._channel, event.model_dump_json())

    async def listen(
        self,
        handle: Callable[[Event], Awaitable[None]],
        missed: Callable[[], Awaitable[None]],
    ) -> None:
        """Hands each event to `handle`, forever; reconnects when Redis goes away, then calls
        `missed` (events sent meanwhile are lost: what they would have said is read again)."""
        subscribed_before = False
        while True:
            try:
                async with self._listener.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if subscribed_before:
                        await missed()
                    subscribed_before = True
                    async for message in pubsub.listen():
                        if message["type"] != "message":
                            continue
                        try:
                            event = _events.validate_json(message["data"])
                        except ValidationError:
                            log.warning("unreadable cluster event", extra={"data": message["data"]})
                            continue
                        try:
                            await handle(event)
                        except RedisError:
                            raise
                        except Exception:  # a bug: the next events must still be heard
                            log.exception("cluster event failed", extra={"event": event.type})
            except (RedisError, OSError) as error:
                log.warning("cluster events lost Redis; retrying", extra={"error": str(error)})
                await asyncio.sleep(1.0)
