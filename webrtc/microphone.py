"""The student's microphone: the audio track their browser sends on the user's peer, decoded
by aiortc (Opus), mixed to mono and resampled to 16 kHz (libswresample, keeping its filter
state from packet to packet), and handed on as it arrives."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

LISTENING_RATE = 16_000

Hear = Callable[[npt.NDArray[np.float32]], Awaitable[None]]


async def listen(track: MediaStreamTrack, hear: Hear | None) -> None:
    """Reads `track` until it ends, passing each piece of 16 kHz mono audio to `hear`. With
    nobody to hear it, the track is still read (and dropped): aiortc queues what it receives
    without bound."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=LISTENING_RATE)
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            if hear is None:
                continue
            for piece in resampler.resample(frame):
                await hear(piece.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    log.info("microphone ended")
