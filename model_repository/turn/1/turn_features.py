"""Smart-turn v3's input: the turn's last 8 s (zero-padded in front), normalised to zero mean
and unit variance, as Whisper's log-mel window [80, 800] — what its training saw
(transformers' WhisperFeatureExtractor, chunk_length=8, do_normalize=True)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from whisper_features import SAMPLE_RATE, log_mel

SECONDS = 8


def features(audio: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    samples = SECONDS * SAMPLE_RATE
    end = np.asarray(audio, dtype=np.float32)[-samples:]
    padded = np.pad(end, (samples - len(end), 0))
    normalised = (padded - padded.mean()) / np.sqrt(padded.var() + 1e-7)
    return log_mel(normalised, SECONDS)
