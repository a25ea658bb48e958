"""The face models (photo avatars) in Triton: the detector finds the test portrait's face and
its keypoints, the mesh puts its points on that face, and concurrent requests share one
execution without changing anyone's answer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from benchmarks.harness import portraits
from benchmarks.harness.triton_stats import batch_sizes, settled_counts
from media.avatar.photo.landmarks import detections, letterbox, region_of
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import FACE_DETECT, FACE_MESH

pytestmark = pytest.mark.serving


async def test_the_detector_finds_one_face_with_its_keypoints(client: TritonClient) -> None:
    square, box = letterbox(portraits.astronaut())
    faces = (await client.infer(FACE_DETECT, {"IMAGE": square[np.newaxis]}))["FACES"][0]
    assert faces.shape == (1, 17) and faces[0, 0] > 0.8
    (found,) = detections(faces, box)
    right_eye, left_eye, nose, mouth = found.keypoints[:4]
    x0, y0, x1, y1 = found.box
    assert 170 < x0 < x1 < 290 and 70 < y0 < y1 < 190  # the astronaut's face in the 512² picture
    assert right_eye[0] < nose[0] < left_eye[0] and right_eye[1] < nose[1] < mouth[1]
    empty, _ = letterbox(portraits.no_face())
    none = (await client.infer(FACE_DETECT, {"IMAGE": empty[np.newaxis]}))["FACES"][0]
    assert none.shape == (0, 17)


async def test_mesh_requests_batch_and_keep_their_own_answers(client: TritonClient) -> None:
    picture = portraits.astronaut()
    square, box = letterbox(picture)
    faces = (await client.infer(FACE_DETECT, {"IMAGE": square[np.newaxis]}))["FACES"][0]
    region = region_of(detections(faces, box)[0])
    crops = [region.crop(picture)[0], region.crop(picture[:, ::-1].copy())[0]] * 4

    async def mesh(crop: np.ndarray) -> dict[str, np.ndarray]:
        return await client.infer(FACE_MESH, {"IMAGE": crop[np.newaxis]})

    alone = [await mesh(crop) for crop in crops[:2]]
    assert alone[0]["PRESENCE"][0, 0] > 0.9 and alone[0]["LANDMARKS"].shape == (1, 468, 3)
    for _ in range(5):
        await settled_counts(client, FACE_MESH.name)
        before = await batch_sizes(client, FACE_MESH.name)
        answers = await asyncio.gather(*(mesh(crop) for crop in crops))
        await settled_counts(client, FACE_MESH.name, quiet_s=0.2)
        ran = await batch_sizes(client, FACE_MESH.name)
        ran.subtract(before)
        if any(size > 1 and count > 0 for size, count in ran.items()):
            break
    assert any(size > 1 and count > 0 for size, count in ran.items()), ran  # a batch formed
    for index, answer in enumerate(answers):
        reference = alone[index % 2]["LANDMARKS"]
        assert np.abs(answer["LANDMARKS"] - reference).max() < 1e-4
