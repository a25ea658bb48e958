"""The FastAPI application: routes, and the lifespan that opens and closes the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from orchestrator.api import avatars, demo, errors, health, knowledge, sessions, tutors, ws
from orchestrator.metrics import ASYNCIO_TASKS
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await Runtime.start(settings)
        try:
            yield
        finally:
            await app.state.runtime.aclose()

    app = FastAPI(
        title="Tutor Engine",
        version=metadata.version("tutor-engine"),
        summary="Speech, lip-synced video and tutoring replies, served by Triton.",
        lifespan=lifespan,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    errors.install(app)
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(avatars.router)
    app.include_router(tutors.router)
    app.include_router(knowledge.router)
    app.include_router(demo.router)
    app.include_router(ws.router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        ASYNCIO_TASKS.set(len(asyncio.all_tasks()))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
