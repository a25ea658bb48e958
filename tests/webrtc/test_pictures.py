"""A stream's YUV pictures: a frame made from its pose's picture at rest and its converted
patches is the frame converted whole, exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media.avatar import draw
from media.avatar.animator import FaceAnimator
from media.avatar.registry import Avatar, load_avatar
from media.avatar.visemes import INDEX, silence
from webrtc.pictures import I420, to_i420


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Avatar:
    folder: Path = tmp_path_factory.mktemp("avatars")
    draw.write_avatar(draw.STYLES[0], folder)
    return load_avatar(folder / draw.STYLES[0].avatar_id)


def test_patched_pictures_are_the_frames_converted_whole(avatar: Avatar) -> None:
    talking = np.random.default_rng(3).dirichlet(np.ones(len(INDEX)), 150).astype(np.float32)
    weights = np.concatenate([talking, silence(150)])  # speech, then rest with blinks
    animator = FaceAnimator(avatar)
    frames = animator.speak(weights, upcoming=silence(1))
    parts = animator.parts(0, weights, upcoming=silence(1), previous=silence(1))
    canvas = I420()
    patched = blinks = 0
    for frame, part in zip(frames, parts, strict=True):
        base = canvas.whole(animator.rest_picture(part.pose))
        made = canvas.patched(base, part)
        whole = to_i420(frame)
        assert made.shape == whole.shape and not np.shares_memory(made, base)
        assert np.array_equal(made, whole)  # swscale's chroma filter parted them by 2 levels
        patched += bool(part.patches)
        blinks += any(patch.y < avatar.mouth_at[1] - 20 for patch in part.patches)
    assert patched >= 150 and blinks > 0
