"""/v1/sessions: the web backend opens, reads and closes tutoring sessions."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from orchestrator.api.deps import RuntimeDep, require_api_key
from orchestrator.cluster.placement import NoEngine
from orchestrator.metrics import timed
from orchestrator.sessions import Session, SessionLimitReached

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/v1/sessions", tags=["sessions"], dependencies=[Depends(require_api_key)]
)


class CreateSession(BaseModel):
    tutor_id: int = Field(examples=[1])
    student_id: int | Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")] = (
        Field(examples=[123])
    )
    kb_id: str | None = Field(default=None, max_length=128, examples=["science"])


class SessionCreated(BaseModel):
    session_id: str
    engine_url: str
    engine_token: str
    status: Literal["active"] = "active"


class SessionView(BaseModel):
    session_id: str
    tutor_id: int
    student_id: int | str
    kb_id: str | None
    status: str
    created_at: datetime
    last_activity: datetime
    turns: int

    @classmethod
    def of(cls, session: Session) -> SessionView:
        return cls(
            session_id=session.id,
            tutor_id=session.tutor_id,
            student_id=session.student_id,
            kb_id=session.kb_id,
            status=session.status,
            created_at=session.created_at,
            last_activity=session.last_activity,
            turns=len(session.history) // 2,
        )


def engine_url(request: Request, public_url: str | None, session_id: str) -> str:
    if public_url:
        base = public_url
    else:
        forwarded = request.headers.get("x-forwarded-proto", request.url.scheme)
        scheme = "wss" if forwarded in ("https", "wss") else "ws"
        host = (
            request.headers.get("x-forwarded-host")
            or request.headers.get("host")
            or request.url.netloc
        )
        base = f"{scheme}://{host}"
    return f"{base}/ws/ws/{session_id}"


@router.post("", response_model=SessionCreated, summary="Open a session")
async def create_session(
    body: CreateSession, request: Request, runtime: RuntimeDep
) -> SessionCreated:
    if runtime.tutors.get(body.tutor_id) is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail=f"unknown tutor_id {body.tutor_id}; configured tutors: {runtime.tutors.ids}",
        )
    public_url = runtime.settings.public_url
    try:
        if runtime.cluster is not None:  # the student's engine, which may be another one
            with timed("placement", log):
                placed = await runtime.cluster.place(str(body.student_id))
            public_url = await runtime.cluster.url_of(placed.engine_id)
            if public_url is None:
                raise NoEngine(f"engine {placed.engine_id} stopped while placing; please retry")
        session = await runtime.sessions.open(body.tutor_id, body.student_id, body.kb_id)
    except (SessionLimitReached, NoEngine) as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error)) from error
    return SessionCreated(
        session_id=session.id,
        engine_url=engine_url(request, public_url, session.id),
        engine_token=runtime.tokens.issue(session.id, session.student_id),
    )


async def _found(runtime: RuntimeDep, session_id: str) -> Session:
    session = await runtime.sessions.load(session_id, hold=False)
    if session is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"session {session_id} not found")
    return session


@router.get("/{session_id}", response_model=SessionView, summary="Read a session")
async def get_session(session_id: str, runtime: RuntimeDep) -> SessionView:
    return SessionView.of(await _found(runtime, session_id))


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Close a session")
async def delete_session(session_id: str, runtime: RuntimeDep) -> Response:
    if not await runtime.sessions.close(session_id):  # its tokens are refused from now on
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"session {session_id} not found")
    await runtime.session_deleted(session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
