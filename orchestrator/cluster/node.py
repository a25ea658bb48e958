"""This engine as one of several: its Redis connection, its heartbeat, and the shared
records, placement and events it uses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from redis import exceptions
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from orchestrator.cluster.avatar_builds import AvatarBuilds
from orchestrator.cluster.events import Events
from orchestrator.cluster.keys import Keys
from orchestrator.cluster.membership import Load, Membership
from orchestrator.cluster.placement import Placed, Placement
from orchestrator.cluster.records import SessionRecords
from orchestrator.metrics import CLUSTER_EVENTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeSettings:
    redis_url: str
    prefix: str
    engine_id: str
    public_url: str
    heartbeat_s: float
    dead_after_s: float
    session_ttl_s: float
    history_len: int
    revoke_for_s: float


@dataclass(frozen=True)
class Serving:
    """What the heartbeat reports and renews: this engine's load, the students it serves and
    the sessions in use here (id, last activity), and whom to tell once they are renewed."""

    load: Load
    students: list[str]
    sessions: Sequence[tuple[str, datetime]]
    renewed: Callable[[], None]


class ClusterNode:
    def __init__(self, settings: NodeSettings, redis: Redis, listener: Redis | None = None) -> None:
        keys = Keys(settings.prefix)
        self.keys = keys
        self.settings = settings
        self.redis = redis
        self.engine_id = settings.engine_id
        self.records = SessionRecords(
            redis, keys, settings.session_ttl_s, settings.history_len, settings.revoke_for_s
        )
        self.placement = Placement(redis, keys, settings.session_ttl_s)
        self.membership = Membership(
            redis, keys, settings.engine_id, settings.public_url, settings.dead_after_s
        )
        self.listener = listener
        self.events = Events(redis, keys, listener)
        self.avatar_builds = AvatarBuilds(redis, keys, self.events, settings.engine_id)

    @classmethod
    async def join(cls, settings: NodeSettings) -> ClusterNode:
        """Connects to Redis (failing here, at start, if it cannot)."""
        redis = Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=30,
            # a pooled connection to a Redis that restarted fails once: try again on a new one
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            retry_on_error=[exceptions.ConnectionError, exceptions.TimeoutError],
        )
        await redis.ping()
        listener = Redis.from_url(  # waits on subscriptions: no read timeout
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        return cls(settings, redis, listener)

    def knowledge_lock(self, kb_id: str) -> Lock:
        """The lock an engine holds while it changes a knowledge base (embedding a long
        document takes a while; a lock left by a dead engine lapses)."""
        return Lock(self.redis, self.keys.knowledge_lock(kb_id), timeout=600, blocking_timeout=600)

    async def place(self, student: str, here: bool = False, down: str | None = None) -> Placed:
        """The student's engine; `here`: prefer this one if the student must move; `down`: an
        engine the front door found down."""
        if down == self.engine_id:
            down = None
        return await self.placement.place(student, self.engine_id if here else None, down)

    async def url_of(self, engine_id: str) -> str | None:
        state = await self.membership.engine(engine_id)
        return state.url if state is not None else None

    async def drain(self, load: Load) -> None:
        """Takes no new students from now on (told to every engine at once)."""
        self.membership.draining = True
        await self.membership.beat(load)

    async def heartbeat_forever(
        self,
        serving: Callable[[], Serving],
        gone: Callable[[list[str]], Awaitable[None]],
        elsewhere: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        """Beats every `heartbeat_s`; hands `gone` the sessions used here whose shared record
        vanished, and `elsewhere` the students served here who are placed on another engine.
        Redis outages are logged and outlived."""
        while True:
            now = serving()
            try:
                await self.membership.beat(now.load)
                moved = await self.placement.renew(self.engine_id, now.students)
                if moved:
                    await elsewhere(moved)
                vanished = await self.records.renew(now.sessions)
                now.renewed()
                if vanished:
                    await gone(vanished)
            except RedisError as error:
                CLUSTER_EVENTS.labels("heartbeat_failed").inc()
                log.warning("heartbeat failed", extra={"error": str(error)})
            except Exception:  # a bug: the heartbeat must go on, or every student would move
                CLUSTER_EVENTS.labels("heartbeat_failed").inc()
                log.exception("heartbeat failed")
            await asyncio.sleep(self.settings.heartbeat_s)

    async def leave(self) -> None:
        try:
            await self.membership.leave()
        except RedisError as error:
            log.warning("could not leave the cluster", extra={"error": str(error)})
        await self.redis.aclose()
        if self.listener is not None:
            await self.listener.aclose()
