"""A student's microphone for tests and benchmarks: an aiortc audio track that sends, in real
time, whatever it is told to say over a quiet room's noise floor, and (when asked) the
avatar's own voice coming back from the speakers, quieter and later."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.audio import resample, to_int16

RATE = 48_000
PACKET = RATE // 50  # 20 ms


class Microphone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, noise_dbfs: float = -60.0, seed: int = 0) -> None:
        super().__init__()
        self._noise = 10 ** (noise_dbfs / 20)
        self._rng = np.random.default_rng(seed)
        self._speech = np.zeros(0, dtype=np.float32)
        self._speakers = np.zeros(0, dtype=np.float32)
        self.echo_db: float | None = None  # the speakers' way back into the microphone
        self._started: float | None = None
        self._index = 0
        self.said_until = 0.0  # monotonic time the last thing said ends

    def say(self, pcm: npt.NDArray[np.float32], rate: int) -> float:
        """Queues `pcm`; returns the monotonic time at which its last sample is sent."""
        audio = resample(pcm, rate, RATE).astype(np.float32)
        now = time.monotonic()
        queued = len(self._speech) / RATE
        self._speech = np.concatenate([self._speech, audio])
        self.said_until = now + queued + len(audio) / RATE
        return self.said_until

    def speakers(self, pcm: npt.NDArray[np.float32]) -> None:
        """What the student's speakers just played (48 kHz mono): echoed if `echo_db` is set."""
        if self.echo_db is not None:
            self._speakers = np.concatenate([self._speakers, pcm * 10 ** (self.echo_db / 20)])

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._started is None:
            self._started = time.monotonic()
        due = self._started + self._index * PACKET / RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        out = self._noise * self._rng.standard_normal(PACKET)
        for name in ("_speech", "_speakers"):
            buffer = getattr(self, name)
            piece, rest = buffer[:PACKET], buffer[PACKET:]
            out[: len(piece)] += piece
            setattr(self, name, rest)
        frame = av.AudioFrame.from_ndarray(
            to_int16(out.astype(np.float32)).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._index * PACKET
        frame.time_base = Fraction(1, RATE)
        self._index += 1
        return frame
