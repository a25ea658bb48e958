"""/v1/knowledge-bases: the documents each tutor teaches from (add, list, delete, search)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from orchestrator.api.deps import RuntimeDep, require_api_key
from orchestrator.knowledge.store import Document, KnowledgeError
from orchestrator.messages import parse_json
from orchestrator.triton_client import TritonError

router = APIRouter(
    prefix="/v1/knowledge-bases", tags=["knowledge bases"], dependencies=[Depends(require_api_key)]
)
TEXT_TYPES = {".md", ".markdown", ".txt"}


class KnowledgeBaseView(BaseModel):
    kb_id: str
    title: str
    language: str
    documents: int
    chunks: int


class DocumentView(BaseModel):
    doc_id: str
    name: str
    chunks: int
    sha256: str
    added_at: str

    @classmethod
    def of(cls, document: Document) -> DocumentView:
        return cls(**document.__dict__)


class NewDocument(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["photosynthesis.md"])
    text: str = Field(min_length=1)
    language: Literal["en", "zh"] | None = Field(
        default=None, description="For a new knowledge base."
    )
    title: str | None = None


class HitView(BaseModel):
    doc_id: str
    title: str
    text: str
    score: float


@router.get("", response_model=list[KnowledgeBaseView], summary="List knowledge bases")
async def list_bases(runtime: RuntimeDep) -> list[KnowledgeBaseView]:
    views = []
    for kb_id in runtime.knowledge.ids:
        base = runtime.knowledge.get(kb_id)
        assert base is not None
        views.append(
            KnowledgeBaseView(
                kb_id=kb_id,
                title=base.title,
                language=base.language,
                documents=len(base.documents),
                chunks=len(base.chunks),
            )
        )
    return views


@router.get("/{kb_id}/documents", response_model=list[DocumentView], summary="List documents")
async def list_documents(kb_id: str, runtime: RuntimeDep) -> list[DocumentView]:
    base = runtime.knowledge.get(kb_id)
    if base is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"knowledge base {kb_id} not found")
    return [DocumentView.of(d) for d in base.documents.values()]


@router.post(
    "/{kb_id}/documents",
    response_model=DocumentView,
    status_code=status.HTTP_201_CREATED,
    summary="Add or replace a document",
    description="JSON `{name, text, language?, title?}`, or a multipart upload of a `.md`, "
    "`.txt` or `.pdf` file (field `file`, optional field `language`). The knowledge base is "
    "created on its first document. A document with the same name is replaced.",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": NewDocument.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "language": {"type": "string", "enum": ["en", "zh"]},
                        },
                        "required": ["file"],
                    }
                },
            }
        }
    },
)
async def add_document(kb_id: str, request: Request, runtime: RuntimeDep) -> DocumentView:
    document = await _read_document(request, runtime.settings.max_document_chars)
    try:
        added = await runtime.knowledge.add_document(
            kb_id, document.name, document.text, document.language, document.title
        )
    except KnowledgeError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=str(error)) from error
    except TritonError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"cannot embed the document now: {error}"
        ) from error
    await runtime.knowledge_changed(kb_id)
    return DocumentView.of(added)


@router.delete(
    "/{kb_id}/documents/{doc_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a document",
)
async def delete_document(kb_id: str, doc_id: str, runtime: RuntimeDep) -> Response:
    if not await runtime.knowledge.delete_document(kb_id, doc_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"document {doc_id} not found in {kb_id}"
        )
    await runtime.knowledge_changed(kb_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{kb_id}/search", response_model=list[HitView], summary="Search by meaning")
async def search(
    kb_id: str,
    runtime: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=20)] = 3,
) -> list[HitView]:
    if runtime.knowledge.get(kb_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"knowledge base {kb_id} not found")
    hits = await runtime.knowledge.search(kb_id, q, k)
    return [
        HitView(doc_id=h.chunk.document, title=h.chunk.title, text=h.chunk.text, score=h.score)
        for h in hits
    ]


async def _read_document(request: Request, max_chars: int) -> NewDocument:
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, detail="the form needs a file field"
            )
        text = _text_of(upload.filename, await upload.read())
        language = form.get("language")
        fields = {"name": upload.filename, "text": text, "language": language or None}
    elif kind.startswith("application/json"):
        try:
            fields = parse_json(await request.body())
        except ValueError as error:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail=f"the body is {error}"
            ) from error
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send application/json or multipart/form-data",
        )
    try:
        document = NewDocument.model_validate(fields)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from error
    if len(document.text) > max_chars:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=f"the document has {len(document.text)} characters; the limit is {max_chars}",
        )
    return document


def _text_of(filename: str, data: bytes) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix in TEXT_TYPES:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, detail="the file is not UTF-8 text"
            ) from error
    if suffix == ".pdf":
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            return "\n\n".join(
                page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages
            )
        except PdfReadError as error:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, detail=f"unreadable PDF: {error}"
            ) from error
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"{suffix or 'this'} files are not supported: .md, .txt or .pdf",
    )
