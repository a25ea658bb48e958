"""GET /v1/tutors: the tutors sessions can be opened with, as config/tutors.toml defines them."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from orchestrator.api.deps import RuntimeDep, require_api_key

router = APIRouter(prefix="/v1/tutors", tags=["tutors"], dependencies=[Depends(require_api_key)])


class TutorView(BaseModel):
    id: int
    name: str
    persona: str
    language: str | None
    voice: str
    avatar: str | None
    kb_id: str | None
    llm: bool  # answers through an LLM endpoint (else the embedded engine)


@router.get("", response_model=list[TutorView], summary="List the configured tutors")
async def list_tutors(runtime: RuntimeDep) -> list[TutorView]:
    return [
        TutorView(
            id=t.id,
            name=t.name,
            persona=t.persona,
            language=t.language,
            voice=t.voice,
            avatar=t.avatar,
            kb_id=t.kb_id,
            llm=t.llm is not None,
        )
        for t in runtime.tutors
    ]
