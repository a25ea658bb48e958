"""A `video` reply: speech → lip-sync weights → rendered frames → MP4.

Frames follow one clock per reply: sentence i covers frames round(start_i·fps) up to
round(end_i·fps), so however many sentences there are, the video lasts as long as the
audio to within one frame.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from media.avatar.animator import Frames, animator_for
from media.avatar.registry import AnyAvatar
from media.avatar.visemes import Weights, fit_frames
from media.mp4 import encode_mp4
from media.speech import Speech, join_speech
from orchestrator.lipsync import LipSync
from orchestrator.metrics import timed

log = logging.getLogger(__name__)


def frame_spans(speeches: list[Speech], fps: int) -> list[int]:
    """How many frames each piece of speech gets on the reply's clock."""
    ends = np.cumsum([len(s.pcm) / s.sample_rate for s in speeches])
    bounds = np.concatenate([[0], np.round(ends * fps)]).astype(np.int64)
    return [int(n) for n in np.diff(bounds)]


class TalkingVideo:
    def __init__(self, lipsync: LipSync, fps: int, size: tuple[int, int] | None, crf: int) -> None:
        self.lipsync = lipsync
        self.fps = fps
        self.size = size
        self.crf = crf

    async def weights(
        self, speeches: list[Speech], language: str | None, session_id: str
    ) -> Weights:
        """Every sentence's lip-sync at once (they share Triton batches), on the reply clock."""
        per_sentence = await asyncio.gather(
            *(self.lipsync.weights(speech, language, session_id) for speech in speeches)
        )
        spans = frame_spans(speeches, self.fps)
        fitted = [fit_frames(w, n) for w, n in zip(per_sentence, spans, strict=True)]
        return np.concatenate(fitted)

    async def mp4(
        self, avatar: AnyAvatar, speeches: list[Speech], language: str | None, session_id: str
    ) -> tuple[bytes, Speech]:
        """An MP4 of `avatar` saying `speeches`, and the joined speech it carries."""
        weights = await self.weights(speeches, language, session_id)
        speech = join_speech(speeches)
        with timed("render", log, session_id=session_id, frames=len(weights)):
            frames: Frames = await asyncio.to_thread(animator_for(avatar, self.fps).speak, weights)
        with timed("encode", log, session_id=session_id, frames=len(frames)):
            mp4 = await asyncio.to_thread(
                encode_mp4, frames, speech.pcm, speech.sample_rate, self.fps, self.size, self.crf
            )
        return mp4, speech
