"""GET /v1/avatars: the avatar_ids a `text` or `audio` message may ask to see."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from orchestrator.api.deps import RuntimeDep, require_api_key

router = APIRouter(prefix="/v1/avatars", tags=["avatars"], dependencies=[Depends(require_api_key)])


class AvatarView(BaseModel):
    avatar_id: str
    name: str
    width: int
    height: int


@router.get("", response_model=list[AvatarView], summary="List the installed avatars")
async def list_avatars(runtime: RuntimeDep) -> list[AvatarView]:
    views = []
    for avatar_id in runtime.avatars.ids:
        avatar = runtime.avatars.get(avatar_id)
        assert avatar is not None
        views.append(
            AvatarView(
                avatar_id=avatar_id, name=avatar.name, width=avatar.width, height=avatar.height
            )
        )
    return views
