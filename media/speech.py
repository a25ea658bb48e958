"""A piece of the tutor's speech: samples, and which phoneme sounds when."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Speech:
    text: str
    pcm: npt.NDArray[np.float32]  # mono, [-1, 1]
    sample_rate: int
    phonemes: tuple[str, ...]
    durations: npt.NDArray[np.int32]  # samples per phoneme; sums to len(pcm)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / self.sample_rate


def join_speech(parts: list[Speech]) -> Speech:
    if not parts:
        raise ValueError("nothing to join")
    return Speech(
        text=" ".join(part.text for part in parts),
        pcm=np.concatenate([part.pcm for part in parts]),
        sample_rate=parts[0].sample_rate,
        phonemes=tuple(p for part in parts for p in part.phonemes),
        durations=np.concatenate([part.durations for part in parts]),
    )
