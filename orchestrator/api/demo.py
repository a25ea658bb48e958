"""The browser demo: plain HTML and JavaScript, no build step (orchestrator/static/demo.html)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(include_in_schema=False)
PAGE = Path(__file__).resolve().parent.parent / "static" / "demo.html"


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/demo")


@router.get("/demo")
async def demo() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")
