"""Caches that live as long as one avatar object: what one animator or stream makes of an
avatar (a still of the head in one pose, a picture at rest) serves all the others."""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from typing import Any

_CACHES: dict[tuple[int, Hashable], dict[Hashable, Any]] = {}


def avatar_cache(avatar: object, kind: Hashable) -> dict[Hashable, Any]:
    """The cache of `kind` for `avatar`, emptied when the avatar is gone. Entries are shared
    between threads: never change one once it is in."""
    key = (id(avatar), kind)
    if key not in _CACHES:
        _CACHES[key] = {}
        weakref.finalize(avatar, _CACHES.pop, key, None)
    return _CACHES[key]
