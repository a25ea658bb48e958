"""Lip-sync stage: speech in, the weight of each viseme in every video frame out.

Two sources: the `lipsync` model in Triton, which hears any audio (the default), and the
exact phoneme timings our own TTS reports, for replies in our own voices.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import numpy.typing as npt

from media.audio import resample
from media.avatar.visemes import INDEX, VISEMES, Weights, resolve
from media.speech import Speech
from orchestrator.metrics import timed
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import LIPSYNC

log = logging.getLogger(__name__)

MODEL_RATE = 16_000
Source = Literal["model", "alignment"]


def alignment_weights(speech: Speech, fps: int, alphabet: str) -> Weights:
    """Each frame's share of each viseme, from the TTS's per-phoneme sample counts."""
    visemes = resolve(list(speech.phonemes), alphabet)
    ends = np.cumsum(speech.durations.astype(np.int64))
    starts = ends - speech.durations
    count = max(1, round(len(speech.pcm) / speech.sample_rate * fps))
    edges = np.arange(count + 1) * speech.sample_rate / fps
    weights = np.zeros((count, len(VISEMES)), dtype=np.float32)
    for start, end, viseme in zip(starts, ends, visemes, strict=True):
        first = int(start * fps // speech.sample_rate)
        last = min(count - 1, int(max(end - 1, start) * fps // speech.sample_rate))
        for frame in range(first, last + 1):
            overlap = min(end, edges[frame + 1]) - max(start, edges[frame])
            if overlap > 0:
                weights[frame, INDEX[viseme]] += overlap
    totals = weights.sum(axis=1, keepdims=True)
    weights[totals[:, 0] == 0, INDEX["sil"]] = 1.0
    result: Weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    return result


def lead(weights: Weights, frames: float) -> Weights:
    """The mouth `frames` (may be fractional) ahead of the sound: frame f shows what the speech
    says at f + frames, interpolated; the last frames hold the final shape."""
    if frames <= 0 or len(weights) < 2:
        return weights
    at = np.minimum(np.arange(len(weights)) + frames, len(weights) - 1)
    below = np.floor(at).astype(np.int64)
    above = np.minimum(below + 1, len(weights) - 1)
    share = (at - below)[:, np.newaxis].astype(np.float32)
    led: Weights = (1 - share) * weights[below] + share * weights[above]
    return led


class LipSync:
    def __init__(
        self, triton: TritonClient, fps: int, source: Source = "model", lead_s: float = 0.0
    ) -> None:
        """`lead_s`: how far the mouth moves ahead of the sound (lips anticipate speech)."""
        self._triton = triton
        self.fps = fps
        self.source = source
        self.lead_s = lead_s

    async def weights(
        self, speech: Speech, language: str | None, session_id: str = "", first: bool = False
    ) -> Weights:
        """`first`: the first sentence of a live reply, which nothing else may delay. Speech in
        our own voices carries its exact phoneme timings, so it starts from them instead of
        waiting for the network (the rest of the reply is heard by the network while the
        first sentence plays)."""
        weights = await self._heard(speech, language, session_id, first)
        return lead(weights, self.lead_s * self.fps)

    async def _heard(
        self, speech: Speech, language: str | None, session_id: str, first: bool
    ) -> Weights:
        aligned = self.source == "alignment" or (first and len(speech.durations) > 0)
        with timed(
            "lipsync",
            log,
            session_id=session_id,
            source="alignment" if aligned else "model",
            audio_s=round(speech.seconds, 2),
        ):
            if aligned:
                return alignment_weights(speech, self.fps, "pinyin" if language == "zh" else "ipa")
            audio: npt.NDArray[np.float32] = resample(speech.pcm, speech.sample_rate, MODEL_RATE)
            out = await self._triton.infer(
                LIPSYNC, {"AUDIO": audio.reshape(1, -1)}, request_id=session_id
            )
            visemes: Weights = out["VISEMES"][0].astype(np.float32)
            return visemes
