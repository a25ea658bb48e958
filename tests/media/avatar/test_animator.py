"""The renderer: mouths follow the weights, eyes blink, the head idles, the clock runs on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from media.avatar import draw
from media.avatar.animator import (
    BLEND_TOLERANCE,
    FaceAnimator,
    Sprites,
    _paint,
    blend,
    openness,
    silence,
)
from media.avatar.registry import Avatar, Motion, load_avatar
from media.avatar.visemes import INDEX, VISEMES
from tests.support.rest import check_rest_keys


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Avatar:
    folder = tmp_path_factory.mktemp("avatars")
    draw.write_avatar(draw.STYLES[0], folder)
    return load_avatar(folder / draw.STYLES[0].avatar_id)


def one(viseme: str, frames: int = 1) -> np.ndarray:
    weights = np.zeros((frames, len(VISEMES)), dtype=np.float32)
    weights[:, INDEX[viseme]] = 1.0
    return weights


def mouth_box(avatar: Avatar, margin: int = 8) -> tuple[slice, slice]:
    x, y = avatar.mouth_at
    h, w = avatar.mouths.shape[1:3]
    return slice(y - margin, y + h + margin), slice(x - margin, x + w + margin)


INSIDE = np.array([74, 26, 34])  # the dark inside of the default avatars' open mouths


def dark(frame: np.ndarray) -> int:
    """Pixels showing the inside of the mouth."""
    return int((np.abs(frame.astype(int) - INSIDE).sum(axis=2) < 20).sum())


def test_an_open_vowel_opens_the_mouth_and_silence_closes_it(avatar: Avatar) -> None:
    animator = FaceAnimator(avatar, smoothing=0.0)
    rows, cols = mouth_box(avatar)
    closed, wide = animator.speak(one("sil")), animator.speak(one("aa"))
    assert closed.shape == (1, 512, 512, 3) and closed.dtype == np.uint8
    assert dark(wide[0][rows, cols]) > dark(closed[0][rows, cols]) + 300


def test_mouths_flow_between_shapes_instead_of_popping(avatar: Avatar) -> None:
    still = replace(avatar, motion=Motion(sway_px=0, bob_px=0, nod_px=0))
    rows, cols = mouth_box(still)
    closed = FaceAnimator(still).speak(one("sil"))[0][rows, cols].astype(int)
    frames = FaceAnimator(still, smoothing=0.5).speak(np.concatenate([one("sil", 3), one("aa", 6)]))
    change = [float(np.abs(f[rows, cols].astype(int) - closed).mean()) for f in frames]
    # the frames either side of the switch carry part of the other shape; the rest are pure
    assert change[0] == change[1] == 0.0
    assert 0 < change[2] < change[3] < change[4]
    assert change[4] == change[5] == change[8]


def test_idling_blinks_and_moves_but_keeps_the_mouth_shut(avatar: Avatar) -> None:
    animator = FaceAnimator(avatar)
    frames = animator.idle(25 * 8)
    assert animator.frame == 200
    x, y = avatar.eyes_at
    h, w = avatar.eyes_open.shape[:2]
    eyes = frames[:, y - 4 : y + h + 4, x - 4 : x + w + 4].astype(int)
    whites = (eyes.min(axis=3) > 235).sum(axis=(1, 2))
    assert whites.min() < 0.4 * whites.max()  # some frame has the eyes (nearly) closed
    assert (
        np.abs(frames[1:].astype(int) - frames[:-1]).sum(axis=(1, 2, 3)) > 0
    ).mean() > 0.1  # drifts
    rows, cols = mouth_box(avatar)
    assert max(dark(f[rows, cols]) for f in frames) == 0


def test_the_clock_carries_across_calls(avatar: Avatar) -> None:
    together = FaceAnimator(avatar).idle(60)
    split = FaceAnimator(avatar)
    parts = np.concatenate([split.idle(25), split.idle(35)])
    assert np.array_equal(together, parts)


def test_openness_follows_the_visemes() -> None:
    assert openness(one("aa"))[0] == 1.0 and openness(silence(2)).tolist() == [0.0, 0.0]


def test_frames_at_rest_come_from_the_cache_and_match_the_drawn_ones(avatar: Avatar) -> None:
    cached, drawn = FaceAnimator(avatar, smoothing=0.0), FaceAnimator(avatar, smoothing=0.0)
    almost = silence(60)
    almost[:, INDEX["sil"]], almost[:, INDEX["aa"]] = 0.95, 0.05  # sharpened: 1.5e-4 of "aa"
    fast, slow = cached.speak(silence(60)), drawn.speak(almost)
    assert np.abs(fast.astype(int) - slow).max() <= 1  # blinks and head motion included
    assert len(cached._resting) > 0
    # one cache per avatar, whichever animator (or stream) filled it
    assert drawn._resting is cached._resting and drawn._stills is cached._stills
    assert FaceAnimator(replace(avatar))._resting is not cached._resting


def test_frames_at_rest_in_one_pose_are_one_picture(avatar: Avatar) -> None:
    poses = check_rest_keys(FaceAnimator(avatar))
    assert poses <= 35  # sway ±3 px, bob ±2 px, in whole pixels


def test_a_blend_reads_only_the_shapes_its_frames_weigh() -> None:
    """Rows that together weigh at most BLEND_TOLERANCE in every frame are never read (NaN
    there would show), and the result stays within that share of the full product."""
    rng = np.random.default_rng(3)
    stack = rng.uniform(0, 255, size=(15, 64)).astype(np.float32)
    weights = np.zeros((2, 15), dtype=np.float32)
    weights[:, [2, 7]] = [[0.7, 0.2996], [0.5, 0.4996]]
    weights[:, [4, 9]] = 0.0002  # 0.0004 of each frame, under 1/512
    poisoned = stack.copy()
    poisoned[[0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14]] = np.nan
    result = blend(weights, poisoned)
    assert np.isfinite(result).all()
    assert np.abs(result - weights @ stack).max() <= BLEND_TOLERANCE * 255
    weights[:, 4] = 0.01  # now it counts: that row is read
    assert np.isnan(blend(weights, poisoned)).all()


def test_sprites_cut_to_what_they_cover_paint_as_the_whole_sprites(avatar: Avatar) -> None:
    """A blend of mouths, cut to the box they cover and painted, equals the whole sprites
    blended and composited in floating point (to a level)."""
    sprites = Sprites.of(avatar.mouths)
    assert sprites.height * sprites.width < avatar.mouths.shape[1] * avatar.mouths.shape[2]
    weights = np.random.default_rng(5).dirichlet(np.ones(15), 3).astype(np.float32)
    still = FaceAnimator(avatar)._still(0, 0)
    x, y = avatar.mouth_at
    for row, (colour, cover) in zip(weights, sprites.blend(weights), strict=True):
        painted = still.copy()
        _paint(painted, colour, cover, *sprites.place((x, y)))
        whole = np.tensordot(row, avatar.mouths, axes=1)  # premultiplied RGBA
        expected = still.astype(np.float32)
        h, w = whole.shape[:2]
        region = expected[y : y + h, x : x + w]
        region[...] = region * (1 - whole[..., 3:4]) + whole[..., :3] * 255
        assert np.abs(painted.astype(np.float32) - np.round(expected)).max() <= 1
