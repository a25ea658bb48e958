"""The face in an uploaded picture, found by the two face networks in Triton (face_detect, then
face_mesh twice: the second pass re-centred on the first's points, as MediaPipe does)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.avatar.photo.landmarks import (
    Image,
    Points,
    Region,
    detections,
    letterbox,
    region_around,
    region_of,
    to_picture,
)
from media.avatar.photo.portrait import PortraitError
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import FACE_DETECT, FACE_MESH

_PASSES = 2


@dataclass(frozen=True)
class FoundFace:
    points: Points  # [468, 3] in the picture's pixels
    presence: float  # the mesh's confidence that its crop holds a face
    score: float  # the detector's
    faces: int  # how many the detector found (the largest is this one)


class FaceFinder:
    def __init__(self, triton: TritonClient) -> None:
        self.triton = triton

    async def find(self, picture: Image) -> FoundFace:
        square, box = await asyncio.to_thread(letterbox, picture)
        found = await self.triton.infer(FACE_DETECT, {"IMAGE": square[np.newaxis]})
        faces = detections(found["FACES"][0], box)
        if not faces:
            raise PortraitError("no_face", "no face was found in the picture")
        region: Region = region_of(faces[0])
        points: npt.NDArray[np.float32] = np.zeros((0, 3), np.float32)
        presence = 0.0
        for _ in range(_PASSES):
            crop, affine = await asyncio.to_thread(region.crop, picture)
            mesh = await self.triton.infer(FACE_MESH, {"IMAGE": crop[np.newaxis]})
            points = to_picture(mesh["LANDMARKS"][0], affine)
            presence = float(mesh["PRESENCE"].reshape(-1)[0])
            region = region_around(points)
        return FoundFace(points, presence, faces[0].score, len(faces))
