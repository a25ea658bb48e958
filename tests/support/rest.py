"""What `Animator.rest_keys` promises, checked on any animator: frames at rest in one pose are
one picture, and a blink or a moving mouth is never taken for rest."""

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
    frames = animator.speak(weights, upcoming=edge, previous=edge)
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
    return len(by_key)
