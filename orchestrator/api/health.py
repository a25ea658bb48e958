"""GET /health: the engine and its Triton models, ready or not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.api.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Engine and Triton readiness",
    responses={503: {"description": "Triton or one of its models is not ready"}},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    body: dict[str, Any] = await runtime.health()
    return JSONResponse(body, status_code=200 if body["status"] == "healthy" else 503)


@router.get("/health/live", summary="The orchestrator process answers")
async def live() -> dict[str, str]:
    return {"status": "alive"}
