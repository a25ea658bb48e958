"""A photo avatar: the framed portrait, its face-mesh points, and what is made from them once
(the rig, and the look of the mouth's inside and of closed eyes). On disk, a folder:

    portrait.png   the framed portrait, the video's size
    points.npy     [468, 3] float32 face-mesh points in the portrait's pixels
    avatar.json    name, seed, where the face was found and how (PhotoRecord)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from media.avatar.photo import mesh
from media.avatar.photo.mesh import FaceFrame
from media.avatar.photo.rig import Rig, build

PORTRAIT, POINTS, RECORD, RIG = "portrait.png", "points.npy", "avatar.json", "rig.npz"

Colour = tuple[int, int, int]


@dataclass
class Eye:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the rig's region
    closed: npt.NDArray[np.float32]  # the eye shut: lid skin and a lash line
    mask: npt.NDArray[np.float32]  # [h, w, 1] where the patch covers the open eye


@dataclass
class Look:
    unit: float  # eye distance, pixels
    rest_gaps: npt.NDArray[np.float32]  # the photo's own gap between the inner lips
    teeth: Colour
    lower_teeth: Colour
    tongue: Colour
    eyes: list[Eye] = field(default_factory=list)

    def cavity(self, height: int, width: int) -> npt.NDArray[np.uint8]:
        """The inside of the mouth: dark red-brown, darker deeper down."""
        depth = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        top, bottom = np.array([70, 30, 26], np.float32), np.array([28, 11, 9], np.float32)
        column = top * (1 - depth) + bottom * depth
        return np.ascontiguousarray(np.broadcast_to(column, (height, width, 3)).astype(np.uint8))

    def close_eyes(self, face: npt.NDArray[np.uint8], lids: float) -> None:
        share = float(np.clip((lids - 0.3) / 0.6, 0, 1))
        share = share * share * (3 - 2 * share)
        for eye in self.eyes:
            x0, y0, x1, y1 = eye.box
            region = face[y0:y1, x0:x1]
            alpha = eye.mask * share
            region[...] = (region * (1 - alpha) + eye.closed * alpha + 0.5).astype(np.uint8)


@dataclass
class PhotoAvatar:
    avatar_id: str
    name: str
    portrait: npt.NDArray[np.uint8]  # [H, W, 3] RGB
    points: npt.NDArray[np.float32]  # [468, 3]
    record: dict[str, Any]
    rig: Rig
    look: Look
    seed: int = 0

    @property
    def width(self) -> int:
        return int(self.portrait.shape[1])

    @property
    def height(self) -> int:
        return int(self.portrait.shape[0])

    @property
    def mouth_box(self) -> tuple[int, int, int, int]:
        """x, y, w, h around the lips, with room for the jaw to drop."""
        lips = self.points[mesh.UPPER_LIP_OUTER + mesh.LOWER_LIP_OUTER, :2]
        (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
        drop = 0.3 * self.look.unit
        return int(x0), int(y0), int(x1 - x0), int(y1 - y0 + drop)

    @classmethod
    def make(
        cls,
        avatar_id: str,
        name: str,
        portrait: npt.NDArray[np.uint8],
        points: npt.NDArray[np.float32],
        record: dict[str, Any],
        rig: Rig | None = None,
    ) -> PhotoAvatar:
        rig = rig or build(points, portrait.shape[1], portrait.shape[0])
        seed = int.from_bytes(avatar_id.encode()[-4:].rjust(4, b"\0"), "big")
        return cls(
            avatar_id, name, portrait, points, record, rig, _look(portrait, points, rig), seed
        )

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.portrait).save(folder / PORTRAIT)
        np.save(folder / POINTS, self.points)
        self.rig.save(folder / RIG)
        record = {"name": self.name, **self.record}
        (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> PhotoAvatar:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        with Image.open(folder / PORTRAIT) as image:
            portrait = np.asarray(image.convert("RGB"))
        points = np.load(folder / POINTS).astype(np.float32)
        if points.shape != (468, 3):
            raise ValueError(f"{POINTS} holds {points.shape}, not 468 points")
        name = str(record.pop("name", folder.name))
        return cls.make(folder.name, name, portrait, points, record, Rig.load(folder / RIG))


def _look(portrait: npt.NDArray[np.uint8], points: npt.NDArray[np.float32], rig: Rig) -> Look:
    unit = FaceFrame.of(points).unit
    xy = points[:, :2]
    gaps = (xy[mesh.LOWER_LIP_INNER, 1] - xy[mesh.UPPER_LIP_INNER, 1]).astype(np.float32)
    skin = _median(portrait, xy[[205, 425, 50, 280]], radius=max(2, int(unit * 0.05)))
    brightness = float(np.clip(np.mean(skin) / 170.0, 0.65, 1.05))
    teeth = np.array([236, 230, 214], np.float32) * brightness
    if gaps[3:-3].max() > 0.05 * unit:  # the photo shows teeth: take their colour
        inner = np.zeros(portrait.shape[:2], np.uint8)
        cv2.fillPoly(
            inner,
            [np.round(xy[mesh.UPPER_LIP_INNER + mesh.LOWER_LIP_INNER[::-1]]).astype(np.int32)],
            (1,),
        )
        pixels = portrait[inner.astype(bool)].astype(np.float32)
        if len(pixels) > 20:
            light = pixels[pixels.sum(axis=1) >= np.percentile(pixels.sum(axis=1), 70)]
            teeth = np.median(light, axis=0)
    tongue = np.array([150, 72, 66], np.float32) * 0.75 * brightness
    x0, y0 = rig.box[:2]
    eyes = [
        _closed_eye(portrait, xy, corners, upper, lower, (x0, y0), unit)
        for corners, upper, lower, _ in mesh.EYES
    ]
    return Look(
        unit=unit,
        rest_gaps=gaps,
        teeth=_colour(teeth),
        lower_teeth=_colour(teeth * 0.82),
        tongue=_colour(tongue),
        eyes=eyes,
    )


def _colour(rgb: npt.NDArray[np.float32]) -> Colour:
    r, g, b = (int(np.clip(v, 0, 255)) for v in rgb)
    return (r, g, b)


def _median(
    picture: npt.NDArray[np.uint8], centres: npt.NDArray[np.float32], radius: int
) -> npt.NDArray[np.float32]:
    patches = [
        picture[
            max(0, int(y) - radius) : int(y) + radius, max(0, int(x) - radius) : int(x) + radius
        ].reshape(-1, 3)
        for x, y in centres
    ]
    result: npt.NDArray[np.float32] = np.median(np.concatenate(patches), axis=0).astype(np.float32)
    return result


def _closed_eye(
    portrait: npt.NDArray[np.uint8],
    xy: npt.NDArray[np.float32],
    corners: tuple[int, int],
    upper: list[int],
    lower: list[int],
    origin: tuple[int, int],
    unit: float,
) -> Eye:
    """The eye shut: its opening filled from the lid skin around it (inpainting), and a lash
    line along the lower lid, where closed lids meet."""
    contour = xy[mesh.eye_polygon(corners, upper, lower)]
    pad = int(0.12 * unit) + 2
    (x0, y0), (x1, y1) = (
        np.floor(contour.min(axis=0)).astype(int) - pad,
        np.ceil(contour.max(axis=0)).astype(int) + pad,
    )
    x0, y0 = max(x0, origin[0]), max(y0, origin[1])
    patch = np.ascontiguousarray(portrait[y0:y1, x0:x1])
    local = contour - np.array([x0, y0], np.float32)
    drawn = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(drawn, [np.round(local * 4).astype(np.int32)], (255,), cv2.LINE_AA, 2)
    hole = np.asarray(
        cv2.dilate(drawn, np.ones((3, 3), np.uint8), iterations=max(1, int(unit * 0.02))), np.uint8
    )
    filled = cv2.inpaint(patch, hole, max(3, int(unit * 0.06)), cv2.INPAINT_TELEA)
    closed = np.asarray(
        cv2.GaussianBlur(filled.astype(np.float32), (0, 0), max(0.8, unit * 0.01)), np.float32
    )
    lashes = np.concatenate(
        [
            local[:1],
            xy[lower] - np.array([x0, y0]) - [0, 0.012 * unit],
            local[len(upper) + 1 : len(upper) + 2],
        ]
    )
    lash_colour = tuple(float(v) for v in np.percentile(patch.reshape(-1, 3), 5, axis=0) * 1.1)
    cv2.polylines(
        closed,
        [np.round(lashes * 4).astype(np.int32)],
        False,
        lash_colour,
        max(1, round(unit * 0.025)),
        cv2.LINE_AA,
        2,
    )
    soft = cv2.GaussianBlur(hole.astype(np.float32) / 255, (0, 0), max(0.8, unit * 0.015))
    mask = np.asarray(soft, np.float32)[..., None]
    return Eye(
        box=(x0 - origin[0], y0 - origin[1], x1 - origin[0], y1 - origin[1]),
        closed=closed,
        mask=mask,
    )
