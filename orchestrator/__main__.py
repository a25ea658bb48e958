"""`python -m orchestrator`: the engine on ENGINE_PORT (9000), with its embedded Triton."""

from __future__ import annotations

import os

# Before numpy loads: the engine's matrix products are small, and OpenBLAS's idle worker
# threads spin on sched_yield after each one — a whole core burnt per live stream (measured).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import asyncio
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from orchestrator.app import create_app
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings
from orchestrator.ws_protocol import WebSocketProtocol


class EngineServer(uvicorn.Server):
    """uvicorn, except that SIGTERM first drains the engine (`Runtime.drain`): replies in
    flight finish and students go to other engines before the server stops."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        runtime = getattr(self._app.state, "runtime", None)
        if sig != signal.SIGTERM or runtime is None or self._loop is None or self._draining:
            super().handle_exit(sig, frame)
            return
        self._loop.call_soon_threadsafe(self._start_draining, sig, frame)

    def _start_draining(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self._app.state.runtime.drain()
        finally:
            super().handle_exit(sig, frame)


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws=WebSocketProtocol,
        ws_max_size=32 * 1024 * 1024,
        timeout_graceful_shutdown=10,
        loop="asyncio",
    )
    EngineServer(config, app).run()


if __name__ == "__main__":
    main()
