"""The checks every model that hears speech makes of a request's AUDIO (16 kHz samples)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000


def audio_problem(audio: npt.NDArray[Any], minimum: int, maximum: int, least: str) -> str | None:
    """Why `audio` cannot be served, or None: fewer than `minimum` samples (`least` says what
    that is to the caller), more than `maximum`, or samples that are not finite."""
    if audio.size < minimum:
        return f"AUDIO has {audio.size} samples; at least {least} is needed"
    if audio.size > maximum:
        return f"AUDIO is {audio.size / SAMPLE_RATE:.1f} s; the limit is {maximum // SAMPLE_RATE} s"
    if not np.isfinite(audio).all():
        return "AUDIO holds NaN or infinite samples"
    return None
