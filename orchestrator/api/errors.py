"""Every REST error is JSON: a client's mistake a 4xx saying what is wrong, a fault of ours a 500.

FastAPI's own 422 echoes the offending input back, and input that cannot be written as JSON (a
NaN, a lone UTF-16 surrogate) turned a client's mistake into a text/plain 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value if isinstance(value, int) else str(value)


def problems(error: RequestValidationError) -> list[dict[str, Any]]:
    """What is wrong with the request, without the input that was wrong."""
    return [
        {
            "loc": [_printable(part) for part in issue.get("loc", ())],
            "msg": _printable(issue.get("msg", "invalid")),
            "type": _printable(issue.get("type", "invalid")),
        }
        for issue in error.errors()
    ]


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": problems(error)}, status.HTTP_422_UNPROCESSABLE_ENTITY)


async def server_fault(request: Request, error: Exception) -> JSONResponse:
    log.error("request failed", exc_info=error, extra={"path": request.url.path})
    return JSONResponse(
        {"detail": "the engine failed to answer; please retry"},
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


async def shared_state_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.error("Redis failed", extra={"path": request.url.path, "error": str(error)})
    return JSONResponse(
        {"detail": f"the engines' shared state (Redis) is unavailable; please retry: {error}"},
        status.HTTP_503_SERVICE_UNAVAILABLE,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(RedisError, shared_state_unavailable)
    app.add_exception_handler(Exception, server_fault)
