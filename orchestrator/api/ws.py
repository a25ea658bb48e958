"""The engine's WebSocket: `/ws/{connection_id}` and `/ws/ws/{connection_id}` (backend proxies)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from orchestrator.cluster.front_door import ROUTED_FOR
from orchestrator.cluster.placement import NoEngine
from orchestrator.connection import Connection, Identity, authenticate
from orchestrator.messages import ErrorMessage
from orchestrator.metrics import ACTIVE_CONNECTIONS, CLUSTER_EVENTS
from orchestrator.runtime import Runtime
from orchestrator.tokens import InvalidToken

router = APIRouter()
log = logging.getLogger(__name__)

# A socket that reached an engine its student is not placed on is told where to go (an
# `error` with code engine_moved and engine_url); unless the client leaves first, it is then
# closed with this code.
MOVED = 4302


@router.websocket("/ws/{connection_id}")
@router.websocket("/ws/ws/{connection_id}")
async def engine_socket(websocket: WebSocket, connection_id: str, token: str | None = None) -> None:
    runtime: Runtime = websocket.app.state.runtime
    if runtime.draining and runtime.cluster is None:  # stopping: connect again after it
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="the engine is draining")
        return
    try:
        identity = await authenticate(connection_id, token, runtime.tokens, runtime.sessions)
        if not await _served_here(websocket, connection_id, identity, runtime):
            return
    except InvalidToken as error:
        log.info("socket refused", extra={"connection_id": connection_id, "reason": str(error)})
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(error))
        return
    except (RedisError, NoEngine) as error:
        log.warning("socket refused", extra={"connection_id": connection_id, "error": str(error)})
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason=str(error)[:120])
        return
    await websocket.accept()
    ACTIVE_CONNECTIONS.inc()
    log.info("socket open", extra={"connection_id": connection_id, "mode": identity.mode})
    try:
        await Connection(websocket, identity, runtime).serve()
    finally:
        ACTIVE_CONNECTIONS.dec()
        log.info("socket closed", extra={"connection_id": connection_id})


async def _served_here(
    websocket: WebSocket, connection_id: str, identity: Identity, runtime: Runtime
) -> bool:
    """With several engines: whether this engine serves the socket's student (taking them if
    their engine died or drains); if another does, the socket is told where and closed."""
    cluster = runtime.cluster
    if cluster is None:
        return True
    # The front door names the engine a path was for (front_door.py); it sent the socket here
    # instead because its checks find that engine down, sooner than its heartbeat lapses.
    meant_for = websocket.headers.get(ROUTED_FOR)
    placed = await cluster.place(identity.user_id, here=True, down=meant_for)
    if placed.engine_id == cluster.engine_id:
        if placed.moved:  # what this engine may still hold of the student is stale
            CLUSTER_EVENTS.labels("student_taken").inc()
            runtime.sessions.forget_student(identity.user_id)
        if identity.session_id is not None:
            await runtime.sessions.load(identity.session_id)
        return True
    url = await cluster.url_of(placed.engine_id)
    await websocket.accept()
    moved = ErrorMessage(
        code="engine_moved",
        content=f"this student is served by engine {placed.engine_id}: connect to engine_url",
        engine_url=f"{url}/ws/ws/{connection_id}" if url else None,
        retryable=True,
    )
    await websocket.send_text(moved.to_json())
    with contextlib.suppress(TimeoutError, WebSocketDisconnect):  # the client leaves on reading it
        async with asyncio.timeout(2.0):
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
    if websocket.application_state == WebSocketState.CONNECTED:
        await websocket.close(code=MOVED, reason=f"served by {placed.engine_id}")
    log.info("socket sent on", extra={"connection_id": connection_id, "engine": placed.engine_id})
    return False
