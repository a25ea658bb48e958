"""The engine's WebSocket: `/ws/{connection_id}` and `/ws/ws/{connection_id}` (backend proxies)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket, status

from orchestrator.connection import Connection, authenticate
from orchestrator.metrics import ACTIVE_CONNECTIONS
from orchestrator.runtime import Runtime
from orchestrator.tokens import InvalidToken

router = APIRouter()
log = logging.getLogger(__name__)


@router.websocket("/ws/{connection_id}")
@router.websocket("/ws/ws/{connection_id}")
async def engine_socket(websocket: WebSocket, connection_id: str, token: str | None = None) -> None:
    runtime: Runtime = websocket.app.state.runtime
    try:
        identity = authenticate(connection_id, token, runtime.tokens, runtime.sessions)
    except InvalidToken as error:
        log.info("socket refused", extra={"connection_id": connection_id, "reason": str(error)})
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(error))
        return
    await websocket.accept()
    ACTIVE_CONNECTIONS.inc()
    log.info("socket open", extra={"connection_id": connection_id, "mode": identity.mode})
    try:
        await Connection(websocket, identity, runtime).serve()
    finally:
        ACTIVE_CONNECTIONS.dec()
        log.info("socket closed", extra={"connection_id": connection_id})
