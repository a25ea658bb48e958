"""What `Animator.rest_keys` and `Animator.parts` promise, checked on any animator: frames at
rest in one pose are one picture, a blink or a moving mouth is never taken for rest, and each
frame is its pose's picture at rest with its patches over it."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from media.avatar.animator import Animator
from media.avatar.visemes import INDEX, silence


def check_rest_keys(animator: Animator, idle: int = 400) -> int:
    """Renders `idle` frames at rest, then a second of speech and a second of rest again, from
    frame 0; returns how many different pictures at rest the stretch needs."""
    speech = np.zeros((25, len(INDEX)), dtype=np.float32)
    speech[:, INDEX["aa"]] = 1.0
    weights = np.concatenate([silence(idle), speech, silence(25)])
    edge = silence(1)
    keys = animator.rest_keys(0, weights, upcoming=edge, previous=edge)
    frames = animator.speak(weights, upcoming=edge)
    lids = animator._eyelids(np.arange(len(weights), dtype=np.int64))

    assert all(key is None for key in keys[idle : idle + 25])  # speaking
    assert keys[idle - 1] is None and keys[idle + 25] is None  # blending into speech and out
    assert all(key is None for key, lid in zip(keys, lids, strict=True) if lid > 0)
    assert (lids > 0).any()  # a blink was in the stretch
    by_key: dict[object, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        if key is not None:
            by_key[key].append(index)
    resting = sum(len(indexes) for indexes in by_key.values())
    assert resting > 0.8 * idle
    for indexes in by_key.values():
        for index in indexes[1:]:
            assert np.array_equal(frames[index], frames[indexes[0]]), (index, indexes[0])

    parts = animator.parts(0, weights, upcoming=edge, previous=edge)
    assert [None if part.patches else part.pose for part in parts] == keys
    height, width = frames.shape[1:3]
    for index, part in enumerate(parts):
        for patch in part.patches:
            h, w = patch.pixels.shape[:2]
            assert patch.x % 2 == patch.y % 2 == h % 2 == w % 2 == 0
            assert patch.x + w <= width and patch.y + h <= height
            assert h * w < 0.5 * height * width  # a patch, not a frame
        made = part.over(animator.rest_picture(part.pose))
        assert np.abs(made.astype(int) - frames[index]).max() <= 1, index
    # as a stream asks for them: two frames at a time
    rows = np.concatenate([edge, weights, edge])  # row k + 1 is frame k's
    for index in range(0, idle + 50, 2):
        pair = animator.parts(
            index,
            rows[index + 1 : index + 3],
            upcoming=rows[index + 3 : index + 4],
            previous=rows[index : index + 1],
        )
        assert [None if part.patches else part.pose for part in pair] == keys[index : index + 2]
    return len(by_key)
