"""Portraits for tests and benchmarks: scikit-image's public-domain NASA portrait (Eileen
Collins), pictures made from it that an avatar build must refuse or handle, and the photo avatar
the engine makes of it."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import httpx
import numpy as np
import numpy.typing as npt
from PIL import Image
from skimage import data

from media.avatar.photo import mesh
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.photo.portrait import Limits, check, frame
from orchestrator.faces import FaceFinder
from orchestrator.triton_client import TritonClient


def astronaut() -> npt.NDArray[np.uint8]:
    picture: npt.NDArray[np.uint8] = data.astronaut()
    return picture


def encoded(picture: npt.NDArray[np.uint8], kind: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture).save(out, format=kind, **options)
    return out.getvalue()


def two_faces() -> npt.NDArray[np.uint8]:
    """The astronaut, and beside her a smaller copy of her head."""
    picture = astronaut().copy()
    head = np.asarray(Image.fromarray(picture[40:240, 140:320]).resize((120, 133)))
    picture[330:463, 10:130] = head
    return picture


def no_face() -> npt.NDArray[np.uint8]:
    picture: npt.NDArray[np.uint8] = data.coffee()
    return picture


def mouth_covered() -> npt.NDArray[np.uint8]:
    """A skin-coloured hand-sized patch over the mouth and chin."""
    picture = astronaut().copy()
    picture[135:185, 185:265] = (205, 160, 135)
    return picture


async def photo_avatar(
    triton_url: str, picture: npt.NDArray[np.uint8], avatar_id: str = "photo_astronaut"
) -> PhotoAvatar:
    """A photo avatar made as the engine makes one: the face found by the models in Triton,
    checked, framed at 512 × 512 and rigged."""
    client = TritonClient(triton_url, 30)
    try:
        found = await FaceFinder(client).find(picture)
    finally:
        await client.close()
    check(picture, found.points, found.presence, Limits())
    portrait, points = frame(picture, found.points, 512, 512)
    return PhotoAvatar.make(avatar_id, "Astronaut", portrait, points, {})


@dataclass(frozen=True)
class Identity:
    """How far frames stray from the portrait outside the mouth, jaw and eyes."""

    min_psnr_db: float  # after a blur of 2.5 px: the head's own sway moves fine detail that far
    max_mean_abs: float  # raw, 0…255

    @classmethod
    def of(cls, avatar: PhotoAvatar, frames: npt.NDArray[np.uint8]) -> Identity:
        keep = np.ones(avatar.portrait.shape[:2], dtype=bool)
        x, y, w, _ = avatar.mouth_box
        unit = avatar.look.unit
        chin = int(avatar.points[mesh.CHIN, 1] + 0.35 * unit)  # the jaw drops while speaking
        keep[
            max(0, y - int(0.1 * unit)) : chin,
            max(0, x - int(0.3 * unit)) : x + w + int(0.3 * unit),
        ] = False
        for _, upper, lower, _ in mesh.EYES:
            eye = avatar.points[upper + lower, :2]
            (x0, y0), (x1, y1) = eye.min(axis=0).astype(int), eye.max(axis=0).astype(int)
            keep[max(0, y0 - 8) : y1 + 8, max(0, x0 - 8) : x1 + 8] = False
        rest = cv2.GaussianBlur(avatar.portrait, (0, 0), 2.5).astype(np.float32)[keep]
        psnr = []
        for picture in frames:
            soft = cv2.GaussianBlur(picture, (0, 0), 2.5).astype(np.float32)[keep]
            psnr.append(10 * math.log10(255**2 / max(float(np.mean((soft - rest) ** 2)), 1e-9)))
        raw = np.abs(frames[:, keep].astype(np.float32) - avatar.portrait[keep]).mean(axis=1)
        return cls(round(min(psnr), 1), round(float(raw.max()), 2))


def upload_astronaut(base_url: str) -> str:
    """The astronaut portrait made into a photo avatar through POST /v1/avatars; its id."""
    response = httpx.post(
        f"{base_url}/v1/avatars",
        files={"image": ("astronaut.png", encoded(astronaut()))},
        timeout=60,
    )
    response.raise_for_status()
    avatar_id: str = response.json()["avatar_id"]
    return avatar_id
