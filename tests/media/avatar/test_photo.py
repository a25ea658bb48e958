"""Photo avatars in the media layer: the face found in the test portrait by the real face models
(Triton), then framed, rigged and animated — what each viseme, a blink and idle life do to the
picture, and what stays the photo."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from benchmarks.harness import portraits
from benchmarks.harness.portraits import Identity
from benchmarks.harness.processes import TritonProcess
from benchmarks.harness.webrtc_client import mouth_inside
from media.avatar.photo import mesh
from media.avatar.photo.animator import PhotoAnimator
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.photo.portrait import Limits, PortraitError, check, frame, pose
from media.avatar.visemes import INDEX, VISEMES
from orchestrator.faces import FaceFinder, FoundFace
from orchestrator.triton_client import TritonClient
from tests.support.rest import check_rest_keys

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def found(triton: TritonProcess) -> FoundFace:
    async def find() -> FoundFace:
        client = TritonClient(triton.grpc_url, 30)
        try:
            return await FaceFinder(client).find(portraits.astronaut())
        finally:
            await client.close()

    return asyncio.run(find())


@pytest.fixture(scope="module")
def collins(found: FoundFace) -> PhotoAvatar:
    portrait, points = frame(portraits.astronaut(), found.points, 512, 512)
    return PhotoAvatar.make("photo_test", "Collins", portrait, points, {})


def still(avatar: PhotoAvatar, viseme: str) -> np.ndarray:
    """The frame of one pure viseme, with no idle motion or blink."""
    animator = PhotoAnimator(avatar, smoothing=0.0)
    animator._blinks[:] = 10**9
    animator._phase[:] = 0.0  # sin(0): the head at its centre on frame 0
    weights = np.zeros((1, len(VISEMES)), dtype=np.float32)
    weights[0, INDEX[viseme]] = 1.0
    return animator.speak(weights)[0]


def dark_mouth(avatar: PhotoAvatar, picture: np.ndarray) -> int:
    x, y, w, h = avatar.mouth_box
    return int(mouth_inside(picture, (slice(y, y + h), slice(x, x + w))))


def lip_width(avatar: PhotoAvatar, viseme: str) -> float:
    moves = avatar.rig.moves[INDEX[viseme]]
    left, right = mesh.MOUTH_CORNERS
    corners = avatar.points[[left, right], :2] + moves[[left, right]]
    return float(np.linalg.norm(corners[1] - corners[0]))


def test_the_portrait_is_found_and_faces_the_camera(found: FoundFace) -> None:
    assert found.faces == 1 and found.presence > 0.9 and found.score > 0.8
    points = found.points
    # MediaPipe's points land on the face: eyes above the nose above the mouth above the chin
    eyes_y = points[[33, 263], 1].mean()
    assert eyes_y < points[mesh.NOSE_TIP, 1] < points[13, 1] < points[mesh.CHIN, 1]
    assert 170 < points[mesh.NOSE_TIP, 0] < 270 and 90 < eyes_y < 120  # the 512² picture
    facing = pose(points)
    assert abs(facing.yaw) < 10 and min(facing.eye_opening) > 0.2


def test_each_viseme_has_its_own_mouth(collins: PhotoAvatar) -> None:
    rest = still(collins, "sil")
    dark = {v: dark_mouth(collins, still(collins, v)) for v in ("sil", "PP", "ih", "E", "aa")}
    assert dark["aa"] > dark["E"] > dark["ih"] > dark["sil"] + 50, dark  # the jaw opens
    assert dark["PP"] <= dark["sil"], dark  # lips pressed: no inside shows
    assert lip_width(collins, "ou") < 0.8 * lip_width(collins, "sil")  # a pout narrows
    assert lip_width(collins, "E") > lip_width(collins, "sil")  # "ee" spreads the lips
    x, y, w, h = collins.mouth_box
    for viseme in ("aa", "E", "oh"):  # upper and lower teeth, and a dark (not purple) inside
        mouth = still(collins, viseme)[y : y + h, x : x + w].astype(int)
        inside = mouth[mouth.max(axis=2) < 70]
        assert len(inside) > 30 and inside[:, 0].mean() >= inside[:, 2].mean(), viseme
    changed = np.abs(still(collins, "aa").astype(int) - rest).sum(axis=2) > 60
    rows = np.nonzero(changed.any(axis=1))[0]
    lower_lids = collins.points[mesh.RIGHT_EYE_LOWER + mesh.LEFT_EYE_LOWER, 1].max()
    assert rows.min() > lower_lids + 0.3 * collins.look.unit  # the mouth moves, not the eyes


def test_a_blink_closes_both_eyes_and_opens_them_again(collins: PhotoAvatar) -> None:
    blinking, open_eyed = PhotoAnimator(collins), PhotoAnimator(collins)  # same seed, same sway
    open_eyed._blinks[:] = 10**9
    blinking._blinks[:] = 10**9
    blinking._blinks[0] = 10
    frames, reference = blinking.idle(20), open_eyed.idle(20)
    for corners, upper, lower, _ in mesh.EYES:
        x, y = collins.points[upper + lower, :2].mean(axis=0).astype(int)
        box = (slice(None), slice(y - 3, y + 4), slice(x - 6, x + 7))
        eye = frames[box].astype(float).mean(axis=(1, 2, 3))
        seen = reference[box].astype(float).mean(axis=(1, 2, 3))
        assert (eye[11:13] > seen[11:13] + 15).all(), (corners, eye.round(), seen.round())
        assert np.abs(eye[:10] - seen[:10]).max() < 1 and np.abs(eye[16:] - seen[16:]).max() < 1


def test_the_face_keeps_its_identity_idle_and_speaking(collins: PhotoAvatar) -> None:
    animator = PhotoAnimator(collins)
    animator._blinks[:] = 10**9
    rng = np.random.default_rng(0)
    speaking = rng.dirichlet(np.ones(len(VISEMES)) * 0.3, size=50).astype(np.float32)
    frames = np.concatenate([animator.idle(50), animator.speak(speaking)])
    idle, talking = Identity.of(collins, frames[:50]), Identity.of(collins, frames[50:])
    for measured in (idle, talking):
        assert measured.min_psnr_db > 30 and measured.max_mean_abs < 6, (idle, talking)
    # but it is alive: the head sways and breathes (frames are not all the same)
    assert np.abs(frames[0].astype(int) - frames[40]).max() > 20


def test_faces_that_cannot_be_animated_are_refused(found: FoundFace) -> None:
    picture = portraits.astronaut()
    turned = found.points.copy()
    centre = turned.mean(axis=0)
    angle = math.radians(45)
    x, z = turned[:, 0] - centre[0], turned[:, 2] - centre[2]
    turned[:, 0] = centre[0] + x * math.cos(angle) + z * math.sin(angle)
    turned[:, 2] = centre[2] - x * math.sin(angle) + z * math.cos(angle)
    closed = found.points.copy()
    for _, upper, lower, _ in mesh.EYES:
        closed[upper] = closed[lower]
    for points, code in ((turned, "face_turned"), (closed, "eyes_closed")):
        with pytest.raises(PortraitError) as refused:
            check(picture, points, 1.0, Limits())
        assert refused.value.code == code and refused.value.status == 422
    with pytest.raises(PortraitError) as hidden:
        check(picture, found.points, 0.2, Limits())
    assert hidden.value.code == "face_hidden"
    assert check(picture, found.points, found.presence, Limits()).yaw == pose(found.points).yaw


def test_frames_at_rest_in_one_pose_are_one_picture(collins: PhotoAvatar) -> None:
    poses = check_rest_keys(PhotoAnimator(collins))
    assert poses < 120  # of 400 frames at rest: each picture is rendered once per avatar


def test_speech_patches_the_face_below_the_eyes_and_a_blink_the_whole_face(
    collins: PhotoAvatar,
) -> None:
    animator = PhotoAnimator(collins)
    animator._blinks[:] = 10**9
    animator._blinks[0] = 20
    weights = np.zeros((50, len(VISEMES)), dtype=np.float32)
    weights[:, INDEX["aa"]] = 1.0
    edge = weights[:1]
    parts = animator.parts(0, weights, upcoming=edge, previous=edge)
    lids = animator._eyelids(np.arange(len(weights), dtype=np.int64))
    eyes = collins.points[mesh.RIGHT_EYE_UPPER + mesh.LEFT_EYE_UPPER, 1].min()
    lower_lids = collins.points[mesh.RIGHT_EYE_LOWER + mesh.LEFT_EYE_LOWER, 1].max()
    tops = [part.patches[0].y for part in parts]
    assert (lids > 0).any() and (lids == 0).any()
    for top, lid in zip(tops, lids, strict=True):
        assert (top < eyes) if lid > 0 else (top > lower_lids), (top, lid, eyes, lower_lids)
