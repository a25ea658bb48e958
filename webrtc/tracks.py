"""The two tracks a peer sends: both pull from one `AvatarStream`, paced by its clock."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.audio import PLAYBACK_RATE
from webrtc.pictures import I420Planes
from webrtc.stream import AUDIO_FRAME, AvatarStream

VIDEO_CLOCK = 90_000


class AvatarVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, stream: AvatarStream) -> None:
        super().__init__()
        self._stream = stream
        self._index = 0
        # aiortc encodes each frame before it asks for the next: one frame object can be resent
        self._picture: I420Planes | None = None
        self._frame = av.VideoFrame(16, 16, "yuv420p")

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        stream = self._stream
        index = self._index = stream.caught_up(self._index)
        self._index += 1
        await stream.wait_for(index * stream.frame_samples)
        picture = await stream.video(index)
        assert isinstance(picture, np.ndarray), "the stream must draw on an I420 canvas"
        if picture is not self._picture:  # else a picture at rest again: its frame is reused
            self._picture = picture
            self._frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame = self._frame
        frame.pts = index * (VIDEO_CLOCK // stream.fps)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        return frame


OPUS_BITRATE = 64_000  # one voice, mono
SILENCE_PRIMED = 5  # silent packets encoded before one is sent again for the rest of a silence


def opus_encoder() -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate = OPUS_BITRATE
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = PLAYBACK_RATE
    codec.time_base = Fraction(1, PLAYBACK_RATE)
    codec.options = {"application": "voip"}
    return codec


class SpeechAudioTrack(MediaStreamTrack):
    """Hands aiortc Opus packets it encodes itself, which aiortc sends as they are: no trip
    to aiortc's encoder thread every 20 ms and no audio level summed in Python per packet
    (together a third of the event loop's work for an idle stream), and silence, most of an
    avatar's life, is encoded a few times, then its packet is sent again."""

    kind = "audio"

    def __init__(self, stream: AvatarStream) -> None:
        super().__init__()
        self._stream = stream
        self._index = 0
        self._opus = opus_encoder()
        self._silent_run = 0
        self._silence: bytes | None = None

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        index = self._index
        self._index += 1
        await self._stream.wait_for(index * AUDIO_FRAME)
        packet = av.Packet(self._encode(self._stream.audio(index), index))
        packet.pts = index * AUDIO_FRAME
        packet.time_base = Fraction(1, PLAYBACK_RATE)
        return packet

    def _encode(self, samples: npt.NDArray[np.int16], index: int) -> bytes:
        silent = not samples.any()
        self._silent_run = self._silent_run + 1 if silent else 0
        if silent and self._silence is not None and self._silent_run > SILENCE_PRIMED:
            return self._silence
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = PLAYBACK_RATE
        frame.pts = index * AUDIO_FRAME
        frame.time_base = Fraction(1, PLAYBACK_RATE)
        payload = b"".join(bytes(p) for p in self._opus.encode(frame))
        if silent and self._silent_run == SILENCE_PRIMED:
            self._silence = payload
        return payload
