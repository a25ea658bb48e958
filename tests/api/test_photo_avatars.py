"""Photo avatars end to end: a portrait uploaded over REST becomes an avatar that talks in MP4
replies, through the real face models in Triton; bad pictures are refused clearly and leave
nothing behind; avatars survive restarts and go when deleted."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.harness import portraits
from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.webrtc_client import mouth_inside
from media.avatar.photo.avatar import PhotoAvatar
from tests.api.test_video import FPS, decode, energy_per_frame, video_reply, wav_seconds

pytestmark = pytest.mark.serving


def upload(
    engine: EngineProcess,
    picture: bytes,
    name: str | None = None,
    filename: str = "portrait.png",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.post(
        f"{engine.base_url}/v1/avatars",
        files={"image": (filename, picture, "application/octet-stream")},
        data={"name": name} if name is not None else {},
        headers=headers,
        timeout=60,
    )


def photo_folders(engine: EngineProcess) -> list[str]:
    return sorted(p.name for p in (engine.workdir / "data" / "avatars").iterdir())


def mouth_opening(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The open mouth's inside in each frame (dark pixels in the mouth's box)."""
    x, y, w, h = box
    return np.array([mouth_inside(f, (slice(y, y + h), slice(x, x + w))) for f in frames])


@pytest.fixture(scope="module")
def collins(engine: EngineProcess) -> dict[str, Any]:
    response = upload(engine, portraits.encoded(portraits.astronaut()), name="Dr. Collins")
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_portrait_becomes_an_avatar_that_talks_in_sync(
    engine: EngineProcess, collins: dict[str, Any]
) -> None:
    assert collins["status"] == "ready" and collins["kind"] == "photo", collins
    assert collins["name"] == "Dr. Collins" and (collins["width"], collins["height"]) == (512, 512)
    avatar_id = collins["avatar_id"]
    listed = {a["avatar_id"]: a for a in httpx.get(f"{engine.base_url}/v1/avatars").json()}
    assert listed[avatar_id]["kind"] == "photo" and listed["avatar_tutor_13"]["kind"] == "drawn"
    assert httpx.get(f"{engine.base_url}/v1/avatars/{avatar_id}").json()["status"] == "ready"
    still = httpx.get(f"{engine.base_url}/v1/avatars/{avatar_id}/portrait.png")
    portrait = np.asarray(Image.open(io.BytesIO(still.content)).convert("RGB")).astype(int)

    reply = await video_reply(engine, "What makes a volcano erupt?", avatar_id, 650)
    assert reply["type"] == "video", reply
    frames, audio, rate, seconds = decode(str(reply["video"]))
    assert frames.shape[1:] == (512, 512, 3)
    assert abs(seconds - wav_seconds(str(reply["audio"]))) <= 1 / FPS

    avatar = PhotoAvatar.load(engine.workdir / "data" / "avatars" / avatar_id)
    opening = mouth_opening(frames, avatar.mouth_box)
    loudness = energy_per_frame(audio, rate, len(frames))
    quiet, loud = loudness < 0.05 * loudness.max(), loudness > 0.3 * loudness.max()
    assert opening[loud].mean() > 2 * opening[quiet].mean() + 20, (  # talks, rests in silence
        opening[loud].mean(),
        opening[quiet].mean(),
    )

    def correlation(lag: int) -> float:
        a = opening[max(lag, 0) : len(opening) + min(lag, 0)]
        b = loudness[max(-lag, 0) : len(loudness) + min(-lag, 0)]
        return float(np.corrcoef(a, b)[0, 1])

    best = max(range(-4, 5), key=correlation)
    assert abs(best) <= 1 and correlation(best) > 0.3, {
        lag: round(correlation(lag), 3) for lag in range(-4, 5)
    }
    # everything outside the face's region is the photo itself, in every frame (H.264 aside)
    x0, y0, x1, y1 = avatar.rig.box
    outside = np.ones((512, 512), dtype=bool)
    outside[y0:y1, x0:x1] = False
    assert np.abs(frames[:, outside].astype(int) - portrait[outside]).mean() < 4


async def test_uploads_in_jpeg_and_webp_work_too_and_several_faces_are_told(
    engine: EngineProcess,
) -> None:
    for kind, options in (("JPEG", {"quality": 90}), ("WEBP", {"quality": 90})):
        response = upload(engine, portraits.encoded(portraits.astronaut(), kind, **options))
        assert response.status_code == 201 and response.json()["status"] == "ready", response.text
        assert httpx.delete(f"{engine.base_url}/v1/avatars/{response.json()['avatar_id']}")
    two = upload(engine, portraits.encoded(portraits.two_faces()))
    assert two.status_code == 201, two.text
    assert two.json()["warnings"] == ["2 faces were found; the largest one is animated"]
    httpx.delete(f"{engine.base_url}/v1/avatars/{two.json()['avatar_id']}")


async def test_bad_pictures_get_a_clear_4xx_and_leave_nothing(
    engine: EngineProcess, collins: dict[str, Any]
) -> None:
    before_list = httpx.get(f"{engine.base_url}/v1/avatars").json()
    before_folders = photo_folders(engine)
    png = portraits.encoded(portraits.astronaut())
    huge = portraits.encoded(np.zeros((6500, 6500, 3), dtype=np.uint8))  # 42 MP, few bytes
    small = cv2.resize(portraits.astronaut(), (160, 160), interpolation=cv2.INTER_AREA)
    cases = [
        (b"just some text, not a picture", 415, "not_an_image"),
        (portraits.encoded(portraits.astronaut(), "GIF"), 415, "unsupported_format"),
        (png[: len(png) // 2], 422, "corrupt_image"),
        (huge, 413, "too_many_pixels"),
        (portraits.encoded(portraits.no_face()), 422, "no_face"),
        (portraits.encoded(small), 422, "face_too_small"),
        (portraits.encoded(portraits.mouth_covered()), 422, "mouth_hidden"),
    ]
    for picture, status, code in cases:
        response = upload(engine, picture)
        assert (response.status_code, response.json().get("code")) == (status, code), (
            code,
            response.text,
        )
        assert response.json()["detail"], response.text  # says what is wrong in words
    too_big = upload(engine, b"\0" * (15 * 1024 * 1024 + 1))
    assert too_big.status_code == 413 and "ENGINE_AVATAR_MAX_UPLOAD_BYTES" in too_big.text
    no_file = httpx.post(f"{engine.base_url}/v1/avatars", data={"name": "x"}, timeout=10)
    assert no_file.status_code in (415, 422)
    unnamed = upload(engine, png, name="bad\u0000name")
    assert unnamed.status_code == 422 and "name" in unnamed.text
    assert httpx.get(f"{engine.base_url}/v1/avatars").json() == before_list
    assert photo_folders(engine) == before_folders  # no half-built avatar on disk


async def test_delete_removes_the_avatar_everywhere(engine: EngineProcess) -> None:
    made = upload(engine, portraits.encoded(portraits.astronaut()[:, ::-1].copy())).json()
    avatar_id = made["avatar_id"]
    assert avatar_id in photo_folders(engine)
    assert httpx.delete(f"{engine.base_url}/v1/avatars/{avatar_id}").status_code == 204
    assert httpx.get(f"{engine.base_url}/v1/avatars/{avatar_id}").status_code == 404
    assert avatar_id not in photo_folders(engine)
    reply = await video_reply(engine, "Hello?", avatar_id, 651)
    assert reply["type"] == "error" and reply["code"] == "unknown_avatar"
    assert httpx.delete(f"{engine.base_url}/v1/avatars/{avatar_id}").status_code == 404
    drawn = httpx.delete(f"{engine.base_url}/v1/avatars/avatar_tutor_1")
    assert drawn.status_code == 409


def test_photo_avatars_build_in_the_background_and_persist_behind_the_api_key(
    triton: TritonProcess, tmp_path: Path
) -> None:
    key = "a-very-secret-api-key"
    auth = {"Authorization": f"Bearer {key}"}
    env = {
        "ENGINE_TRITON_URL": triton.grpc_url,
        "ENGINE_API_KEY": key,
        "ENGINE_AVATAR_BUILD_WAIT_S": "0",  # answer at once: 202, then poll
        "ENGINE_MAX_PHOTO_AVATARS": "2",
    }
    first = EngineProcess(tmp_path, env=env).start()
    try:
        picture = portraits.encoded(portraits.astronaut())
        assert upload(first, picture).status_code == 401
        made = upload(first, picture, name="Kept", headers=auth)
        assert made.status_code == 202 and made.json()["status"] == "building", made.text
        avatar_id = made.json()["avatar_id"]
        stages = set()
        deadline = time.monotonic() + 30
        while (state := httpx.get(f"{first.base_url}/v1/avatars/{avatar_id}", headers=auth).json())[
            "status"
        ] == "building" and time.monotonic() < deadline:
            stages.add(state["stage"])
            time.sleep(0.05)
        assert state["status"] == "ready" and state["progress"] == 1.0, state
        assert stages and stages <= {
            "queued",
            "decoding",
            "finding the face",
            "checking the face",
            "rigging",
            "saving",
        }
        assert httpx.get(f"{first.base_url}/v1/avatars/{avatar_id}").status_code == 401
        refused = upload(first, portraits.encoded(portraits.no_face()), headers=auth)
        assert refused.status_code == 202  # found out later: GET tells why, nothing is listed
        while (
            failed := httpx.get(
                f"{first.base_url}/v1/avatars/{refused.json()['avatar_id']}", headers=auth
            ).json()
        )["status"] == "building":
            time.sleep(0.05)
        assert failed["status"] == "failed" and failed["error_code"] == "no_face", failed
        listed = httpx.get(f"{first.base_url}/v1/avatars", headers=auth).json()
        assert refused.json()["avatar_id"] not in {a["avatar_id"] for a in listed}
        second = upload(first, picture, headers=auth)
        assert second.status_code == 202  # the second of two allowed
        full = upload(first, picture, headers=auth)
        assert full.status_code == 409 and full.json()["code"] == "too_many_avatars", full.text
    finally:
        first.stop()
    second = EngineProcess(tmp_path, env=env, port=first.port).start()
    try:
        again = httpx.get(f"{second.base_url}/v1/avatars/{avatar_id}", headers=auth).json()
        assert again["status"] == "ready" and again["name"] == "Kept", again
        assert (
            httpx.delete(f"{second.base_url}/v1/avatars/{avatar_id}", headers=auth).status_code
            == 204
        )
    finally:
        second.stop()
    assert second.stopped_cleanly()
