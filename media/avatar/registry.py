"""Avatars on disk, loaded at start-up: drawn ones (the folder format in avatars/README.md) and
photo ones (media/avatar/photo/avatar.py), which the engine also adds and removes while it runs."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from media.avatar.photo.avatar import RECORD, PhotoAvatar
from media.avatar.visemes import VISEMES

log = logging.getLogger(__name__)

Layer = npt.NDArray[np.float32]  # premultiplied RGBA in [0, 1], [H, W, 4]


class Motion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sway_px: float = Field(default=3.0, ge=0, le=40)
    bob_px: float = Field(default=2.0, ge=0, le=40)
    nod_px: float = Field(default=2.0, ge=0, le=40, description="dip of the head while it speaks")
    blink_interval_s: tuple[float, float] = (2.5, 6.0)
    seed: int = 0


class AvatarFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    size: tuple[int, int]  # width, height
    eyes_at: tuple[int, int]  # top-left of the eye sprites on the head layer
    mouth_center: tuple[int, int]
    motion: Motion = Motion()


@dataclass(frozen=True)
class Avatar:
    avatar_id: str
    name: str
    width: int
    height: int
    background: Layer  # RGB as RGBA with alpha 1
    head: Layer
    front: Layer | None
    eyes_open: Layer
    eyes_closed: Layer
    eyes_at: tuple[int, int]
    mouths: npt.NDArray[np.float32]  # [15, h, w, 4], in VISEMES order
    mouth_at: tuple[int, int]  # top-left of the mouth sprites on the head layer
    motion: Motion


class AvatarError(ValueError):
    """An avatar folder that does not follow the format; the message says what is wrong."""


def _layer(path: Path, size: tuple[int, int] | None = None) -> Layer:
    if not path.is_file():
        raise AvatarError(f"missing {path.name}")
    with Image.open(path) as image:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    if size is not None and (rgba.shape[1], rgba.shape[0]) != size:
        raise AvatarError(
            f"{path.name} is {rgba.shape[1]}×{rgba.shape[0]}, expected {size[0]}×{size[1]}"
        )
    rgba[..., :3] *= rgba[..., 3:4]
    return rgba


def load_avatar(folder: Path) -> Avatar:
    try:
        spec = AvatarFile.model_validate(
            tomllib.loads((folder / "avatar.toml").read_text(encoding="utf-8"))
        )
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as error:
        raise AvatarError(f"avatar.toml: {error}") from error
    size = spec.size
    eyes_open = _layer(folder / "eyes_open.png")
    eyes_closed = _layer(folder / "eyes_closed.png", (eyes_open.shape[1], eyes_open.shape[0]))
    mouths = [_layer(folder / "mouth" / f"{viseme}.png") for viseme in VISEMES]
    if len({m.shape for m in mouths}) != 1:
        raise AvatarError("mouth sprites differ in size")
    mouth_h, mouth_w = mouths[0].shape[:2]
    mouth_at = (spec.mouth_center[0] - mouth_w // 2, spec.mouth_center[1] - mouth_h // 2)
    for name, (x, y), (w, h) in (
        ("eyes", spec.eyes_at, eyes_open.shape[1::-1]),
        ("mouth", mouth_at, (mouth_w, mouth_h)),
    ):
        if x < 0 or y < 0 or x + w > size[0] or y + h > size[1]:
            raise AvatarError(f"the {name} sprites fall outside the {size[0]}×{size[1]} frame")
    background = _layer(folder / "background.png", size)
    background[..., 3] = 1.0
    head = _layer(folder / "head.png", size)
    front_path = folder / "front.png"
    front = _layer(front_path, size) if front_path.exists() else None
    reach = int(max(spec.motion.sway_px, spec.motion.bob_px + spec.motion.nod_px)) + 1
    sprites = (
        ("eyes", spec.eyes_at, np.maximum(eyes_open[..., 3], eyes_closed[..., 3])),
        ("mouth", mouth_at, np.max([m[..., 3] for m in mouths], axis=0)),
    )
    for name, (x, y), drawn in sprites:
        h, w = drawn.shape
        box = (slice(max(0, y - reach), y + h + reach), slice(max(0, x - reach), x + w + reach))
        if float(head[y : y + h, x : x + w, 3][drawn > 0].min(initial=1.0)) < 0.99:
            raise AvatarError(f"head.png must be opaque wherever the {name} sprites draw")
        if front is not None and float(front[box][..., 3].max()) > 0.0:
            raise AvatarError(f"front.png must not reach the {name} sprites")
    return Avatar(
        avatar_id=folder.name,
        name=spec.name,
        width=size[0],
        height=size[1],
        background=background,
        head=head,
        front=front,
        eyes_open=eyes_open,
        eyes_closed=eyes_closed,
        eyes_at=spec.eyes_at,
        mouths=np.stack(mouths),
        mouth_at=mouth_at,
        motion=spec.motion,
    )


AnyAvatar = Avatar | PhotoAvatar


class AvatarRegistry:
    def __init__(self, avatars: dict[str, AnyAvatar]) -> None:
        self._avatars = avatars

    @classmethod
    def load(cls, folders: list[Path], photos: Path | None = None) -> AvatarRegistry:
        """Every `<folder>/<avatar_id>/avatar.toml`, and every `<photos>/<avatar_id>/` photo
        avatar; a broken avatar is logged and skipped."""
        avatars: dict[str, AnyAvatar] = {}
        for root in folders:
            for folder in sorted(p.parent for p in root.glob("*/avatar.toml")):
                try:
                    avatars[folder.name] = load_avatar(folder)
                except AvatarError as error:
                    log.error(
                        "avatar skipped", extra={"avatar_id": folder.name, "error": str(error)}
                    )
        if photos is not None:
            for folder in sorted(p.parent for p in photos.glob(f"*/{RECORD}")):
                try:
                    avatars[folder.name] = PhotoAvatar.load(folder)
                except (OSError, ValueError, KeyError) as error:
                    log.error(
                        "photo avatar skipped",
                        extra={"avatar_id": folder.name, "error": str(error)},
                    )
        log.info("avatars loaded", extra={"avatars": sorted(avatars)})
        return cls(avatars)

    @property
    def ids(self) -> list[str]:
        return sorted(self._avatars)

    def get(self, avatar_id: str) -> AnyAvatar | None:
        return self._avatars.get(avatar_id)

    def add(self, avatar: AnyAvatar) -> None:
        self._avatars[avatar.avatar_id] = avatar

    def remove(self, avatar_id: str) -> AnyAvatar | None:
        return self._avatars.pop(avatar_id, None)

    def __len__(self) -> int:
        return len(self._avatars)
