"""`python -m orchestrator`: the engine on ENGINE_PORT (9000), with its embedded Triton."""

from __future__ import annotations

import os

# Before numpy loads: the engine's matrix products are small, and OpenBLAS's idle worker
# threads spin on sched_yield after each one — a whole core burnt per live stream (measured).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import uvicorn

from orchestrator.app import create_app
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings
from orchestrator.ws_protocol import WebSocketProtocol


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws=WebSocketProtocol,
        ws_max_size=32 * 1024 * 1024,
        timeout_graceful_shutdown=10,
        loop="asyncio",
    )


if __name__ == "__main__":
    main()
