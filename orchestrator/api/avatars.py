"""/v1/avatars: the avatars a `text`, `audio`, `text_webrtc` or `webrtc_offer` may ask to see —
drawn ones, and photo avatars made here from an uploaded portrait."""

from __future__ import annotations

import asyncio
import io
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import BaseModel

from media.avatar.animator import animator_for
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.photo.portrait import PortraitError
from media.avatar.registry import AnyAvatar, Avatar
from orchestrator.api.deps import RuntimeDep, require_api_key
from orchestrator.photo_avatars import Build

router = APIRouter(prefix="/v1/avatars", tags=["avatars"], dependencies=[Depends(require_api_key)])

MAX_NAME = 80
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the name field around the picture


class AvatarView(BaseModel):
    avatar_id: str
    name: str
    kind: Literal["drawn", "photo"]
    status: Literal["building", "ready", "failed"]
    width: int | None = None
    height: int | None = None
    stage: str | None = None
    progress: float | None = None
    error_code: str | None = None
    error: str | None = None
    warnings: list[str] = []


def _photo_view(build: Build, runtime: RuntimeDep) -> AvatarView:
    avatar = runtime.avatars.get(build.avatar_id)
    ready = isinstance(avatar, PhotoAvatar) and build.status == "ready"
    return AvatarView(
        avatar_id=build.avatar_id,
        name=build.name,
        kind="photo",
        status=build.status,
        width=avatar.width if ready and avatar else None,
        height=avatar.height if ready and avatar else None,
        stage=build.stage,
        progress=round(build.progress, 2),
        error_code=build.error_code,
        error=build.error,
        warnings=list(build.warnings),
    )


def _drawn_view(avatar: Avatar) -> AvatarView:
    return AvatarView(
        avatar_id=avatar.avatar_id,
        name=avatar.name,
        kind="drawn",
        status="ready",
        width=avatar.width,
        height=avatar.height,
    )


@router.get("", response_model=list[AvatarView], summary="List the avatars (drawn and photo)")
async def list_avatars(runtime: RuntimeDep) -> list[AvatarView]:
    drawn = [runtime.avatars.get(avatar_id) for avatar_id in runtime.avatars.ids]
    return [_drawn_view(a) for a in drawn if isinstance(a, Avatar)] + [
        _photo_view(build, runtime) for build in runtime.photo_avatars.builds()
    ]


@router.get("/{avatar_id}", response_model=AvatarView, summary="One avatar, or a build's state")
async def get_avatar(avatar_id: str, runtime: RuntimeDep) -> AvatarView:
    build = await runtime.photo_avatars.find(avatar_id)
    if build is not None:
        return _photo_view(build, runtime)
    avatar = runtime.avatars.get(avatar_id)
    if not isinstance(avatar, Avatar):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"avatar {avatar_id} not found")
    return _drawn_view(avatar)


@router.get(
    "/{avatar_id}/portrait.png",
    summary="What the avatar looks like at rest (PNG, the video's size)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def avatar_portrait(avatar_id: str, runtime: RuntimeDep) -> Response:
    avatar = runtime.avatars.get(avatar_id)
    if avatar is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"avatar {avatar_id} not found")
    picture = await asyncio.to_thread(_portrait_png, avatar)
    return Response(picture, media_type="image/png", headers={"Cache-Control": "max-age=300"})


def _portrait_png(avatar: AnyAvatar) -> bytes:
    still = avatar.portrait if isinstance(avatar, PhotoAvatar) else animator_for(avatar).idle(1)[0]
    out = io.BytesIO()
    Image.fromarray(still).save(out, format="PNG")
    return out.getvalue()


@router.post(
    "",
    response_model=AvatarView,
    status_code=status.HTTP_201_CREATED,
    summary="Make a photo avatar from a portrait",
    responses={
        202: {"model": AvatarView, "description": "Still building: poll GET /v1/avatars/{id}"},
        413: {"description": "The picture is too large (bytes or pixels)"},
        415: {"description": "Not a JPEG, PNG or WebP picture"},
        422: {"description": "No usable face (none, too small, turned, eyes closed, hidden)"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "image": {"type": "string", "format": "binary"},
                            "name": {"type": "string", "maxLength": MAX_NAME},
                        },
                        "required": ["image"],
                    }
                }
            }
        }
    },
)
async def create_avatar(request: Request, runtime: RuntimeDep) -> Response:
    settings = runtime.settings
    limit = settings.avatar_max_upload_bytes
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send multipart/form-data with the picture in the field `image`",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise _too_large(limit)
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                detail="the form needs the picture as a file in the field `image`",
            )
        data = await upload.read(limit + 1)
        name_field = form.get("name")
    if len(data) > limit:
        raise _too_large(limit)
    if not data:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail="`image` is empty")
    name = (name_field if isinstance(name_field, str) else "").strip() or "Photo tutor"
    if len(name) > MAX_NAME or not name.isprintable():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail=f"`name` must be printable text of at most {MAX_NAME} characters",
        )
    try:
        build = runtime.photo_avatars.start(data, name)
    except PortraitError as error:
        return _refusal(error.status, error.code, str(error))
    try:
        await asyncio.wait_for(build.done.wait(), settings.avatar_build_wait_s)
    except TimeoutError:
        view = _photo_view(build, runtime)
        return JSONResponse(view.model_dump(), status.HTTP_202_ACCEPTED)
    if build.status == "failed":
        await runtime.photo_avatars.forget(build.avatar_id)  # told now: nothing is kept
        return _refusal(build.http_status, build.error_code or "failed", build.error or "")
    view = _photo_view(build, runtime)
    return JSONResponse(
        view.model_dump(),
        status.HTTP_201_CREATED,
        headers={"Location": f"/v1/avatars/{build.avatar_id}"},
    )


@router.delete(
    "/{avatar_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a photo avatar"
)
async def delete_avatar(avatar_id: str, runtime: RuntimeDep) -> Response:
    if await runtime.photo_avatars.delete(avatar_id):
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    if runtime.avatars.get(avatar_id) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"{avatar_id} is a drawn avatar installed with the engine; only photo "
            "avatars can be deleted",
        )
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"avatar {avatar_id} not found")


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        detail=f"the picture is larger than {limit:,} bytes (ENGINE_AVATAR_MAX_UPLOAD_BYTES)",
    )


def _refusal(http_status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": message, "code": code}, http_status)
